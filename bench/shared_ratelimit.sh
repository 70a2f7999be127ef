#!/usr/bin/env bash
# Shared (Redis) rate-limit zones against local ones, with one and with two
# rampart instances: req/s, p50/p99 latency, and CPU per 100,000 requests
# of rampart and of redis-server. nginx is not measured here: its shared
# limits are nginx Plus only (bench/run.sh's small-limited compares local
# zones with nginx's limit_req).
#
#   RAMPART_BIN   binary (default target/release/rampart, built if missing)
#   DURATION      seconds per wrk run (default 10)
#   CONNS         wrk connections in total (default 50; split over the instances)
#   KEEP_TMP=1    keep the temp dir
#
# Needs wrk, redis-server and nginx (the origin). Loopback only: origin
# :18100, redis :18179, rampart :18181/:18182 (admin :18191/:18192).
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
RAMPART_BIN=${RAMPART_BIN:-$ROOT/target/release/rampart}
DURATION=${DURATION:-10}
CONNS=${CONNS:-50}
KEEP_TMP=${KEEP_TMP:-0}
HOST=127.0.0.1
ORIGIN_PORT=18100
REDIS_PORT=18179
die() { echo "bench/shared_ratelimit.sh: $*" >&2; exit 1; }
log() { echo "[bench] $*" >&2; }
for v in DURATION CONNS; do [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer"; done
for c in wrk redis-server; do command -v "$c" >/dev/null || die "needs $c (Debian package $c)"; done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $NGINX ]] || die "needs nginx (the origin)"
if [[ ! -x $RAMPART_BIN ]]; then
    (cd "$ROOT" && cargo build --release -q) || die "cannot build rampart"
fi

TMP=$(mktemp -d /tmp/rampart-shared-bench.XXXXXX)
CLEANUP_LOGS=("$TMP/*.log")
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

cpu_ticks() {  # utime+stime of the PIDs, in clock ticks
    local t=0 pid
    for pid in "$@"; do
        t=$(( t + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat") ))
    done
    echo "$t"
}
wait_port() {
    local i
    for (( i = 0; i < 100; i++ )); do
        (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    die "nothing listens on $1"
}

# ---- origin: nginx answering "ok" with keep-alive
mkdir -p "$TMP/origin/tmp"
cat > "$TMP/origin/nginx.conf" <<EOF
worker_processes 1;
pid $TMP/origin/nginx.pid;
error_log $TMP/origin.log warn;
events { worker_connections 4096; }
http {
    client_body_temp_path $TMP/origin/tmp;
    proxy_temp_path $TMP/origin/tmp;
    fastcgi_temp_path $TMP/origin/tmp;
    uwsgi_temp_path $TMP/origin/tmp;
    scgi_temp_path $TMP/origin/tmp;
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    server {
        listen $HOST:$ORIGIN_PORT backlog=4096;
        location / { default_type text/plain; return 200 "ok\n"; }
    }
}
EOF
"$NGINX" -p "$TMP/origin" -c "$TMP/origin/nginx.conf" -g 'daemon off;' &
PIDS+=("$!")
wait_port "$ORIGIN_PORT"

# ---- redis: no persistence
redis-server --port "$REDIS_PORT" --bind "$HOST" --save "" --appendonly no \
    --logfile "$TMP/redis.log" &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
wait_port "$REDIS_PORT"

# ---- two rampart instances, same file apart from the ports
rampart_toml() {  # rampart_toml PORT ADMIN_PORT
    cat <<EOF
[global]
threads = 1
grace_period = "1s"

[log]
level = "warn"
access_log = "off"

[admin]
listen = "$HOST:$2"

[upstreams.origin]
servers = [{ addr = "$HOST:$ORIGIN_PORT" }]
keepalive = 1024

[rate_limits.local]               # never rejects: measures the check
rate = "1000000r/s"

[rate_limits.shared]
rate = "1000000r/s"
store = "redis://$HOST:$REDIS_PORT/0"
on_store_error = "deny"           # a store error would show as non-2xx in wrk

[[servers]]
listen = ["$HOST:$1"]
security_headers = false

[[servers.routes]]
prefix = "/local/"
upstream = "origin"
rate_limit = { zone = "local", burst = 100000, nodelay = true }

[[servers.routes]]
prefix = "/shared/"
upstream = "origin"
rate_limit = { zone = "shared", burst = 100000, nodelay = true }
EOF
}
RPIDS=()
for i in 1 2; do
    rampart_toml "1818$i" "1819$i" > "$TMP/rampart$i.toml"
    "$RAMPART_BIN" run -c "$TMP/rampart$i.toml" 2>"$TMP/rampart$i.log" >/dev/null &
    PIDS+=("$!")
    RPIDS+=("$!")
    wait_port "1818$i"
done
sleep 1   # the Redis connections come up

# run NAME INSTANCES PATH: wrk against 1 or 2 instances at once, CONNS split.
RESULTS="$TMP/results.tsv"
run() {
    local name=$1 n=$2 path=$3 i c0 r0 c1 r1 outs=()
    local per=$(( CONNS / n ))
    local pids=("${RPIDS[@]:0:n}")
    # warm-up
    for (( i = 1; i <= n; i++ )); do
        wrk -t1 -c"$per" -d1 "http://$HOST:1818$i$path" >/dev/null &
    done
    wait_wrk
    c0=$(cpu_ticks "${pids[@]}")
    r0=$(cpu_ticks "$REDIS_PID")
    for (( i = 1; i <= n; i++ )); do
        outs+=("$TMP/wrk-$name-$i.txt")
        wrk -t1 -c"$per" -d"$DURATION" --latency "http://$HOST:1818$i$path" >"$TMP/wrk-$name-$i.txt" &
    done
    wait_wrk
    c1=$(cpu_ticks "${pids[@]}")
    r1=$(cpu_ticks "$REDIS_PID")
    python3 - "$name" "$n" "$(( c1 - c0 ))" "$(( r1 - r0 ))" "$(getconf CLK_TCK)" "${outs[@]}" >>"$RESULTS" <<'PY'
import re, sys
name, n, cpu, rcpu, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
reqs = rps = 0.0; p50 = p99 = 0.0; errors = 0
def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v); x = float(m.group(1))
    return x / 1000 if m.group(2) == "us" else x * 1000 if m.group(2) == "s" else x
for f in sys.argv[6:]:
    t = open(f).read()
    reqs += float(re.search(r"(\d+) requests in", t).group(1))
    rps += float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    p50 = max(p50, ms(re.search(r"\s50%\s+(\S+)", t).group(1)))
    p99 = max(p99, ms(re.search(r"\s99%\s+(\S+)", t).group(1)))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", t); errors += int(m.group(1)) if m else 0
per100k = lambda ticks: ticks / hz / reqs * 100000 if reqs else 0
print(f"{name}\t{n}\t{rps:.0f}\t{p50:.2f}\t{p99:.2f}\t{per100k(cpu):.3f}\t{per100k(rcpu):.3f}\t{errors}")
PY
}
wait_wrk() {
    local j
    for j in $(jobs -p); do
        case " ${PIDS[*]} " in *" $j "*) ;; *) wait "$j" ;; esac
    done
}

for round in 1 2 3; do
    log "round $round"
    run local-1 1 /local/small
    run shared-1 1 /shared/small
    run local-2 2 /local/small
    run shared-2 2 /shared/small
done
{
    echo "shared rate limits: $(date -u +%FT%TZ), $(nproc) cores, DURATION=$DURATION CONNS=$CONNS, 3 rounds (median)"
    echo "zone      instances  req/s   p50 ms  p99 ms  rampart CPU-s/100k  redis CPU-s/100k  non-2xx"
    python3 - "$RESULTS" <<'PY'
import sys, statistics as st
rows = {}
for line in open(sys.argv[1]):
    f = line.split("\t"); rows.setdefault((f[0], f[1]), []).append([float(x) for x in f[2:]])
for (name, n), rs in rows.items():
    med = [st.median(c) for c in zip(*rs)]
    print(f"{name.split('-')[0]:<9} {n:>9}  {med[0]:>6.0f}  {med[1]:>6.2f}  {med[2]:>6.2f}  {med[3]:>18.3f}  {med[4]:>16.3f}  {med[5]:>7.0f}")
PY
} | tee "$BENCH_DIR/last-shared-run.txt"
