#!/usr/bin/env bash
# rampart vs nginx: throughput, latency, CPU per request, RSS, idle keep-alive memory.
#
#   cargo build --release && bench/run.sh
#
# Environment (all optional):
#   RAMPART_BIN      rampart binary (default target/release/rampart, relative to the repo root)
#   DURATION         seconds per wrk run (default 10)
#   ROUNDS           measured rounds per scenario and proxy, interleaved (default 3)
#   WARMUP           seconds of unmeasured wrk load per scenario and proxy first (default 2; 0 = none)
#   CONNS            wrk connections (default 50)
#   IDLE_CONNS       idle keep-alive connections for the memory test (default 5000; 0 = skip)
#   NGINX_KEEPALIVE  nginx `upstream { keepalive N; }` (default 1024)
#   RAMPART_KEEPALIVE  rampart `[upstreams.origin] keepalive` (default 1024)
#   PROXY_CPU        CPU the proxy under test is pinned to (default 0)
#   LOAD_CPU         CPU wrk, the origin and the idle-connection holder are pinned to (default 1)
#   KEEP_TMP=1       keep the temp dir (configs, logs, raw wrk output) after the run
#
# Only 127.0.0.1 is used: origin :18000, nginx :18080, rampart :18081, rampart admin :18090.
# With 2 cores, wrk and the origin share core 1; that is the same for both proxies, and the
# proxy under test has core 0 to itself. See bench/README.md.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
CALLER_PWD=$PWD

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-50}
IDLE_CONNS=${IDLE_CONNS:-5000}
NGINX_KEEPALIVE=${NGINX_KEEPALIVE:-1024}
RAMPART_KEEPALIVE=${RAMPART_KEEPALIVE:-1024}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
KEEP_TMP=${KEEP_TMP:-0}
OUT_FILE=$BENCH_DIR/last-run.txt

ORIGIN_PORT=18000
NGINX_PORT=18080
RAMPART_PORT=18081
ADMIN_PORT=18090
HOST=127.0.0.1

die() { echo "bench/run.sh: $*" >&2; exit 1; }
log() { echo "[bench] $*" >&2; }

for v in DURATION ROUNDS WARMUP CONNS IDLE_CONNS NGINX_KEEPALIVE RAMPART_KEEPALIVE PROXY_CPU LOAD_CPU; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer, got '${!v}'"
done
(( DURATION >= 1 )) || die "DURATION must be >= 1"
(( ROUNDS >= 1 )) || die "ROUNDS must be >= 1"
(( CONNS >= 1 )) || die "CONNS must be >= 1"

# ---------------------------------------------------------------- rampart binary
RAMPART_BIN=${RAMPART_BIN:-target/release/rampart}
if [[ $RAMPART_BIN != /* ]]; then
    if [[ -e $CALLER_PWD/$RAMPART_BIN ]]; then
        RAMPART_BIN=$CALLER_PWD/$RAMPART_BIN
    else
        RAMPART_BIN=$ROOT/$RAMPART_BIN
    fi
fi
if [[ ! -f $RAMPART_BIN || ! -x $RAMPART_BIN ]]; then
    die "rampart binary not found or not executable: $RAMPART_BIN
    Build it first:   cargo build --release && bench/run.sh
    or point to one:  RAMPART_BIN=target/debug/rampart bench/run.sh   (debug numbers are meaningless)"
fi
case $RAMPART_BIN in
    */debug/*) BUILD_KIND="DEBUG build - numbers are meaningless for performance" ;;
    */release/*) BUILD_KIND="release build" ;;
    *) BUILD_KIND="unknown build profile" ;;
esac

# ---------------------------------------------------------------- tools
NGINX=/usr/sbin/nginx
[[ -x $NGINX ]] || NGINX=$(command -v nginx || true)
WRK=$(command -v wrk || true)
if [[ -z $NGINX || -z $WRK ]]; then
    log "nginx and/or wrk missing; installing nginx-light wrk with apt-get"
    SUDO=
    if (( EUID != 0 )); then
        command -v sudo >/dev/null || die "need root (or sudo) to apt-get install nginx-light wrk"
        SUDO=sudo
    fi
    # policy-rc.d is not touched: if the package starts the system nginx on :80, that is
    # outside this benchmark (it uses only ports 180xx).
    $SUDO apt-get update
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y nginx-light wrk
    NGINX=/usr/sbin/nginx
    [[ -x $NGINX ]] || NGINX=$(command -v nginx || true)
    WRK=$(command -v wrk || true)
    [[ -n $NGINX && -n $WRK ]] || die "nginx/wrk still missing after apt-get install"
fi
for t in taskset python3 curl getconf awk; do
    command -v "$t" >/dev/null || die "required tool '$t' not found"
done
taskset -c "$PROXY_CPU" true 2>/dev/null || die "cannot pin to CPU $PROXY_CPU (PROXY_CPU); this machine has $(nproc) CPU(s)"
taskset -c "$LOAD_CPU" true 2>/dev/null || die "cannot pin to CPU $LOAD_CPU (LOAD_CPU); this machine has $(nproc) CPU(s)"
[[ $PROXY_CPU != "$LOAD_CPU" ]] || log "WARNING: PROXY_CPU == LOAD_CPU; proxy and load generator share a core"

CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------- file descriptors
# Idle test: the holder and the proxy each need IDLE_CONNS descriptors (plus some).
want_nofile=$(( IDLE_CONNS + 4096 ))
(( want_nofile >= 65536 )) || want_nofile=65536
ulimit -n "$want_nofile" 2>/dev/null || {
    hard=$(ulimit -Hn)
    [[ $hard == unlimited ]] && hard=$want_nofile
    ulimit -n "$hard" 2>/dev/null || true
}
NOFILE=$(ulimit -n)
[[ $NOFILE == unlimited ]] && NOFILE=$want_nofile
(( NOFILE >= IDLE_CONNS + 256 )) ||
    die "open-file limit is $NOFILE, too low for IDLE_CONNS=$IDLE_CONNS (raise the hard limit or lower IDLE_CONNS)"
WORKER_CONNECTIONS=20000
(( WORKER_CONNECTIONS >= IDLE_CONNS + 1024 )) || WORKER_CONNECTIONS=$(( IDLE_CONNS + 1024 ))

# ---------------------------------------------------------------- ports free?
for p in $ORIGIN_PORT $NGINX_PORT $RAMPART_PORT $ADMIN_PORT; do
    if (exec 3<>"/dev/tcp/$HOST/$p") 2>/dev/null; then
        die "port $HOST:$p is already in use (a leftover benchmark process?)"
    fi
done

# ---------------------------------------------------------------- temp dir and cleanup
TMP=$(mktemp -d /tmp/rampart-bench.XXXXXX)
chmod 755 "$TMP"   # the nginx workers may run as an unprivileged user and must read the origin file
declare -a PIDS=()  # every background process we started, in start order

proc_alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }

stop_pid() {  # stop_pid PID: TERM, wait up to 5 s, then KILL (its children too)
    local pid=$1 kids i
    proc_alive "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
    kids=$(pgrep -P "$pid" 2>/dev/null || true)
    kill -TERM "$pid" 2>/dev/null || true
    for (( i = 0; i < 50; i++ )); do
        proc_alive "$pid" || break
        sleep 0.1
    done
    if proc_alive "$pid"; then
        log "pid $pid did not stop on SIGTERM within 5 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    for k in $kids; do
        for (( i = 0; i < 30; i++ )); do proc_alive "$k" || break; sleep 0.1; done
        kill -KILL "$k" 2>/dev/null || true
    done
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local i
    for (( i = ${#PIDS[@]} - 1; i >= 0; i-- )); do
        stop_pid "${PIDS[i]}"
    done
    if (( rc != 0 && rc != 130 && rc != 143 )); then
        for f in "$TMP"/origin/error.log "$TMP"/nginx/error.log "$TMP"/rampart/rampart.log; do
            if [[ -s $f ]]; then
                echo "----- last lines of $f" >&2
                tail -n 20 "$f" >&2
            fi
        done
    fi
    if [[ $KEEP_TMP == 1 ]]; then
        log "temp dir kept: $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers
http_body() {  # http_body PORT PATH -> body on stdout, fails on non-2xx / no answer
    curl -fsS --max-time 2 --noproxy '*' "http://$HOST:$1$2"
}

wait_http() {  # wait_http NAME PID PORT PATH EXPECTED_BODY LOGFILE: bounded (10 s)
    local name=$1 pid=$2 port=$3 path=$4 expect=$5 logf=$6 i body
    for (( i = 0; i < 100; i++ )); do
        proc_alive "$pid" || { [[ -s $logf ]] && cat "$logf" >&2; die "$name exited during startup"; }
        if body=$(http_body "$port" "$path" 2>/dev/null) && [[ $body == "$expect" ]]; then
            return 0
        fi
        sleep 0.1
    done
    die "$name did not answer GET $path on :$port with '$expect' within 10 s (log: $logf)"
}

cpu_ticks() {  # cpu_ticks PID... -> utime+stime summed, in clock ticks
    local t=0 pid v
    for pid in "$@"; do
        v=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat") || die "process $pid is gone"
        t=$(( t + v ))
    done
    echo "$t"
}

rss_kib() {  # rss_kib PID -> VmRSS in KiB
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" || die "process $1 is gone"
}

to_ms() {  # wrk duration ("850.00us", "1.23ms", "2.01s", "1.00m") -> milliseconds
    awk -v x="$1" 'BEGIN {
        if (x ~ /us$/) { sub(/us$/, "", x); printf "%.4f", x / 1000 }
        else if (x ~ /ms$/) { sub(/ms$/, "", x); printf "%.4f", x }
        else if (x ~ /s$/) { sub(/s$/, "", x); printf "%.4f", x * 1000 }
        else if (x ~ /m$/) { sub(/m$/, "", x); printf "%.4f", x * 60000 }
        else if (x ~ /h$/) { sub(/h$/, "", x); printf "%.4f", x * 3600000 }
        else { printf "nan" }
    }'
}

# ---------------------------------------------------------------- origin (nginx on LOAD_CPU)
mkdir -p "$TMP/origin/www" "$TMP/origin/tmp"
head -c 65536 /dev/urandom > "$TMP/origin/www/64k"
chmod 644 "$TMP/origin/www/64k"

nginx_common_http() {  # temp paths inside $1 (nginx's compiled-in ones are under /var/lib/nginx)
    cat <<EOF
    client_body_temp_path $1/tmp/body;
    proxy_temp_path       $1/tmp/proxy;
    fastcgi_temp_path     $1/tmp/fastcgi;
    uwsgi_temp_path       $1/tmp/uwsgi;
    scgi_temp_path        $1/tmp/scgi;
    access_log off;
    server_tokens off;
EOF
}

cat > "$TMP/origin/nginx.conf" <<EOF
# Benchmark origin: fast, keep-alive, never the bottleneck's cause of difference.
worker_processes 1;
worker_rlimit_nofile $NOFILE;
pid $TMP/origin/nginx.pid;
lock_file $TMP/origin/nginx.lock;
error_log $TMP/origin/error.log warn;
events { worker_connections $WORKER_CONNECTIONS; }
http {
$(nginx_common_http "$TMP/origin")
    types { }
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 10000000;   # never close the proxies' upstream connections
    keepalive_timeout 300s;
    server {
        listen $HOST:$ORIGIN_PORT backlog=4096;
        root $TMP/origin/www;
        location = /small { default_type text/plain; return 200 "ok\n"; }
        location = /64k   { }
        location /        { return 404; }
    }
}
EOF

# ---------------------------------------------------------------- proxy nginx (PROXY_CPU)
mkdir -p "$TMP/nginx/tmp"
cat > "$TMP/nginx/nginx.conf" <<EOF
# nginx as the reverse proxy under test, set up like the reference configs
# (/work/shared/reference/*.nginx.conf), with logging off and limits raised.
worker_processes 1;
worker_rlimit_nofile $NOFILE;
pid $TMP/nginx/nginx.pid;
lock_file $TMP/nginx/nginx.lock;
error_log $TMP/nginx/error.log warn;
events { worker_connections $WORKER_CONNECTIONS; }
http {
$(nginx_common_http "$TMP/nginx")
    keepalive_timeout 75s;         # same as rampart's default keepalive_timeout
    keepalive_requests 10000000;   # rampart (pingora) has no per-connection request cap
    upstream origin {
        server $HOST:$ORIGIN_PORT;
        keepalive $NGINX_KEEPALIVE;
        keepalive_requests 10000000;
    }
    server {
        listen $HOST:$NGINX_PORT backlog=4096;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Real-IP \$remote_addr;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            # rampart always sends these two upstream and returns X-Request-Id to the
            # client (spec: Upstreams); do the same so both proxies do the same work.
            proxy_set_header X-Forwarded-Host \$host;
            proxy_set_header X-Request-Id \$request_id;
            add_header X-Request-Id \$request_id always;
        }
    }
}
EOF

# ---------------------------------------------------------------- rampart (PROXY_CPU)
mkdir -p "$TMP/rampart"
cat > "$TMP/rampart/rampart.toml" <<EOF
# rampart under test: the equivalent of the nginx config next to it.
[global]
threads = 1
grace_period = "1s"
server_header = false

[log]
level = "warn"
access_log = "off"

[admin]
listen = "$HOST:$ADMIN_PORT"

[upstreams.origin]
servers = [{ addr = "$HOST:$ORIGIN_PORT" }]
keepalive = $RAMPART_KEEPALIVE

[[servers]]
name = "bench"
listen = ["$HOST:$RAMPART_PORT"]
security_headers = false          # nginx adds none either

[[servers.routes]]
prefix = "/"
upstream = "origin"
EOF

"$NGINX" -t -q -p "$TMP/origin" -c "$TMP/origin/nginx.conf" 2>"$TMP/origin/check.log" ||
    { cat "$TMP/origin/check.log" >&2; die "origin nginx config rejected"; }
"$NGINX" -t -q -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" 2>"$TMP/nginx/check.log" ||
    { cat "$TMP/nginx/check.log" >&2; die "proxy nginx config rejected"; }
"$RAMPART_BIN" check -c "$TMP/rampart/rampart.toml" >"$TMP/rampart/check.log" 2>&1 ||
    { cat "$TMP/rampart/check.log" >&2; die "rampart rejected its config ($TMP/rampart/rampart.toml)"; }

# ---------------------------------------------------------------- start everything
log "starting origin nginx on $HOST:$ORIGIN_PORT (CPU $LOAD_CPU)"
taskset -c "$LOAD_CPU" "$NGINX" -p "$TMP/origin" -c "$TMP/origin/nginx.conf" -g 'daemon off;' \
    >"$TMP/origin/stdout.log" 2>&1 &
ORIGIN_PID=$!
PIDS+=("$ORIGIN_PID")
wait_http "origin" "$ORIGIN_PID" "$ORIGIN_PORT" /small "ok" "$TMP/origin/error.log"

log "starting nginx proxy on $HOST:$NGINX_PORT (CPU $PROXY_CPU)"
taskset -c "$PROXY_CPU" "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' \
    >"$TMP/nginx/stdout.log" 2>&1 &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
wait_http "nginx" "$NGINX_PID" "$NGINX_PORT" /small "ok" "$TMP/nginx/error.log"
NGINX_WORKERS=$(pgrep -P "$NGINX_PID" || true)
[[ -n $NGINX_WORKERS ]] || die "nginx proxy has no worker process"
(( $(wc -w <<<"$NGINX_WORKERS") == 1 )) || die "expected 1 nginx worker, found: $NGINX_WORKERS"
NGINX_WORKER=$NGINX_WORKERS

log "starting rampart on $HOST:$RAMPART_PORT (CPU $PROXY_CPU): $RAMPART_BIN"
taskset -c "$PROXY_CPU" "$RAMPART_BIN" run -c "$TMP/rampart/rampart.toml" >"$TMP/rampart/rampart.log" 2>&1 &
RAMPART_PID=$!   # taskset execs, so this is rampart itself
PIDS+=("$RAMPART_PID")
wait_http "rampart" "$RAMPART_PID" "$RAMPART_PORT" /small "ok" "$TMP/rampart/rampart.log"
# admin /healthz must answer 200 (body not checked)
for (( i = 0; i < 100; i++ )); do
    http_body "$ADMIN_PORT" /healthz >/dev/null 2>&1 && break
    proc_alive "$RAMPART_PID" || die "rampart exited during startup"
    sleep 0.1
done
(( i < 100 )) || die "rampart admin did not answer GET /healthz on :$ADMIN_PORT within 10 s"

# Sanity: both proxies deliver the same bodies.
for port in $NGINX_PORT $RAMPART_PORT; do
    size=$(curl -fsS --max-time 5 --noproxy '*' -o /dev/null -w '%{size_download}' "http://$HOST:$port/64k") ||
        die "GET /64k through :$port failed"
    [[ $size == 65536 ]] || die "GET /64k through :$port returned $size bytes, expected 65536"
done

proxy_port() { [[ $1 == nginx ]] && echo "$NGINX_PORT" || echo "$RAMPART_PORT"; }
proxy_cpu_pids() { [[ $1 == nginx ]] && echo "$NGINX_PID $NGINX_WORKER" || echo "$RAMPART_PID"; }
proxy_mem_pid() { [[ $1 == nginx ]] && echo "$NGINX_WORKER" || echo "$RAMPART_PID"; }
scenario_path() { [[ $1 == small ]] && echo /small || echo /64k; }

# ---------------------------------------------------------------- load runs
RAW="$TMP/raw"
mkdir -p "$RAW"
RESULTS="$TMP/results.tsv"   # scenario proxy round rps p50_ms p99_ms requests cpu_s errors
RSS_FILE="$TMP/rss.tsv"      # scenario proxy rss_kib
: >"$RESULTS"
: >"$RSS_FILE"

run_wrk() {  # run_wrk PORT PATH SECONDS OUTFILE
    local port=$1 path=$2 secs=$3 out=$4 pid rc=0
    taskset -c "$LOAD_CPU" "$WRK" -t1 -c"$CONNS" -d"${secs}s" --latency "http://$HOST:$port$path" >"$out" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait "$pid" || rc=$?
    unset 'PIDS[${#PIDS[@]}-1]'
    (( rc == 0 )) || { cat "$out" >&2; die "wrk failed (exit $rc) against :$port$path"; }
}

for scenario in small 64k; do
    path=$(scenario_path "$scenario")
    if (( WARMUP > 0 )); then
        for proxy in nginx rampart; do
            log "warm-up $scenario $proxy (${WARMUP}s)"
            run_wrk "$(proxy_port "$proxy")" "$path" "$WARMUP" "$RAW/warmup-$scenario-$proxy.txt"
        done
    fi
    for (( round = 1; round <= ROUNDS; round++ )); do
        for proxy in nginx rampart; do
            port=$(proxy_port "$proxy")
            pids=$(proxy_cpu_pids "$proxy")
            out="$RAW/$scenario-$proxy-$round.txt"
            log "run $scenario $proxy round $round/$ROUNDS (${DURATION}s)"
            # shellcheck disable=SC2086
            t0=$(cpu_ticks $pids)
            run_wrk "$port" "$path" "$DURATION" "$out"
            # shellcheck disable=SC2086
            t1=$(cpu_ticks $pids)
            rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
            requests=$(awk '/ requests in / { print $1 }' "$out")
            p50=$(awk '$1 == "50%" { print $2 }' "$out")
            p99=$(awk '$1 == "99%" { print $2 }' "$out")
            [[ -n $rps && -n $requests && -n $p50 && -n $p99 ]] || { cat "$out" >&2; die "cannot parse wrk output ($out)"; }
            non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
            sockerr=$(awk '/Socket errors:/ { gsub(/,/, ""); print $4 + $6 + $8 + $10 }' "$out")
            errors=$(( ${non2xx:-0} + ${sockerr:-0} ))
            (( errors == 0 )) || log "WARNING: $proxy $scenario round $round: $errors errors (non-2xx: ${non2xx:-0}, socket: ${sockerr:-0})"
            cpu_s=$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" 'BEGIN { printf "%.3f", (b - a) / hz }')
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scenario" "$proxy" "$round" "$rps" \
                "$(to_ms "$p50")" "$(to_ms "$p99")" "$requests" "$cpu_s" "$errors" >>"$RESULTS"
        done
    done
    for proxy in nginx rampart; do
        printf '%s\t%s\t%s\n' "$scenario" "$proxy" "$(rss_kib "$(proxy_mem_pid "$proxy")")" >>"$RSS_FILE"
    done
done
NGINX_MASTER_RSS=$(rss_kib "$NGINX_PID")

# ---------------------------------------------------------------- idle keep-alive memory
IDLE_FILE="$TMP/idle.tsv"   # proxy conns_ok conns_failed still_open rss_before_kib rss_after_kib
: >"$IDLE_FILE"
if (( IDLE_CONNS > 0 )); then
    for proxy in nginx rampart; do
        port=$(proxy_port "$proxy")
        mpid=$(proxy_mem_pid "$proxy")
        sleep 1
        before=$(rss_kib "$mpid")
        log "idle test $proxy: opening $IDLE_CONNS keep-alive connections"
        hout="$RAW/hold-$proxy.txt"
        : >"$hout"
        # The holder stops on SIGTERM (what stop_pid/cleanup send), when this script dies
        # (it watches its parent pid) and after 10 minutes at most.
        taskset -c "$LOAD_CPU" python3 "$BENCH_DIR/hold_conns.py" "$HOST" "$port" "$IDLE_CONNS" /small \
            </dev/null >"$hout" 2>"$RAW/hold-$proxy.err" &
        hpid=$!
        PIDS+=("$hpid")
        # bounded: 1 s per 100 connections, at least 30 s
        limit=$(( IDLE_CONNS / 100 + 30 ))
        for (( i = 0; i < limit * 10; i++ )); do
            grep -q '^READY ' "$hout" && break
            proc_alive "$hpid" || { cat "$RAW/hold-$proxy.err" >&2; die "hold_conns.py exited early ($proxy)"; }
            sleep 0.1
        done
        grep -q '^READY ' "$hout" || die "hold_conns.py did not open $IDLE_CONNS connections to $proxy within ${limit}s"
        read -r _ ok failed < <(grep '^READY ' "$hout")
        (( failed == 0 )) || { log "WARNING: $failed of $IDLE_CONNS connections to $proxy failed:"; cat "$RAW/hold-$proxy.err" >&2; }
        sleep 1
        after=$(rss_kib "$mpid")
        kill -USR1 "$hpid"
        for (( i = 0; i < 50; i++ )); do grep -q '^OPEN ' "$hout" && break; sleep 0.1; done
        still=$(awk '/^OPEN / { print $2 }' "$hout")
        [[ -n $still ]] || still=nan
        [[ $still == "$ok" ]] || log "WARNING: $proxy closed some idle connections: $still of $ok still open"
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$proxy" "$ok" "$failed" "$still" "$before" "$after" >>"$IDLE_FILE"
        stop_pid "$hpid"
        unset 'PIDS[${#PIDS[@]}-1]'
        # let the proxy notice the closes before the next proxy is measured
        sleep 1
    done
fi

# ---------------------------------------------------------------- report
GIT_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
GIT_DIRTY=$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo "+dirty" || true)
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo unknown)
NGINX_VERSION=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
RAMPART_VERSION=$("$RAMPART_BIN" --version 2>/dev/null | head -n 1 || echo unknown)

{
    echo "rampart vs nginx benchmark  $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "rampart: $RAMPART_BIN ($BUILD_KIND), $RAMPART_VERSION, git $GIT_REV$GIT_DIRTY"
    echo "nginx:   $NGINX_VERSION, worker_processes 1, upstream keepalive $NGINX_KEEPALIVE (rampart: $RAMPART_KEEPALIVE)"
    echo "machine: $(nproc) CPUs, $CPU_MODEL"
    echo "pinning: proxy under test on CPU $PROXY_CPU; wrk + origin nginx on CPU $LOAD_CPU (shared)"
    echo "load:    wrk -t1 -c$CONNS -d${DURATION}s --latency, $ROUNDS interleaved round(s) per proxy, ${WARMUP}s warm-up"
    echo
    python3 - "$RESULTS" "$RSS_FILE" "$IDLE_FILE" "$NGINX_MASTER_RSS" <<'PYEOF'
import statistics
import sys

results_f, rss_f, idle_f, master_rss = sys.argv[1:5]


def tsv(path):
    return [line.rstrip("\n").split("\t") for line in open(path) if line.strip()]


rows = tsv(results_f)
rss = {(s, p): int(k) for s, p, k in tsv(rss_f)}
idle = tsv(idle_f)


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def ratio(a, b):
    return f"{a / b:.2f}x" if b and a == a and b == b else "n/a"


for scenario, desc in (("small", "GET /small (3-byte body)"), ("64k", "GET /64k (64 KiB body)")):
    print(f"== {scenario}: {desc}")
    hdr = f"{'proxy':<14}{'req/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'CPU-s/100k':>12}{'RSS MiB':>10}{'errors':>8}"
    print(hdr)
    print("-" * len(hdr))
    vals = {}
    for proxy in ("nginx", "rampart"):
        rs = [r for r in rows if r[0] == scenario and r[1] == proxy]
        rps = med([float(r[3]) for r in rs])
        p50 = med([float(r[4]) for r in rs])
        p99 = med([float(r[5]) for r in rs])
        cpu = med([float(r[7]) / int(r[6]) * 100000 for r in rs if int(r[6]) > 0])
        mem = rss.get((scenario, proxy), 0) / 1024
        err = sum(int(r[8]) for r in rs)
        vals[proxy] = (rps, p50, p99, cpu, mem)
        print(f"{proxy:<14}{rps:>12.0f}{p50:>10.3f}{p99:>10.3f}{cpu:>12.3f}{mem:>10.1f}{err:>8}")
    n, r = vals["nginx"], vals["rampart"]
    print(f"{'rampart/nginx':<14}" + "".join(f"{ratio(a, b):>{w}}" for a, b, w in zip(r, n, (12, 10, 10, 12, 10))))
    print()

if idle:
    print("== idle keep-alive connections (each did one GET /small, then stays open idle)")
    hdr = f"{'proxy':<14}{'conns':>8}{'open':>8}{'RSS before MiB':>16}{'RSS after MiB':>15}{'KiB/conn':>10}"
    print(hdr)
    print("-" * len(hdr))
    kib = {}
    for proxy, ok, failed, still, before, after in idle:
        ok, before, after = int(ok), int(before), int(after)
        per = (after - before) / ok if ok else float("nan")
        kib[proxy] = per
        print(f"{proxy:<14}{ok:>8}{still:>8}{before / 1024:>16.1f}{after / 1024:>15.1f}{per:>10.2f}")
    if "nginx" in kib and "rampart" in kib:
        print(f"{'rampart/nginx':<14}{'':>8}{'':>8}{'':>16}{'':>15}{ratio(kib['rampart'], kib['nginx']):>10}")
    print()

print("Notes: req/s, p50, p99 and CPU-s/100k are medians over rounds. CPU-s/100k = CPU seconds")
print("(user+system, /proc/PID/stat; nginx: master + worker) the proxy used per 100,000 requests.")
print(f"RSS = VmRSS after the scenario's runs (nginx: the worker only; its master had {int(master_rss) / 1024:.1f} MiB).")
print("errors = wrk non-2xx responses + socket errors, summed over rounds (must be 0).")
print("open = idle connections the proxy still kept open when the RSS was read (must equal conns).")
PYEOF
} | tee "$OUT_FILE"

log "table written to $OUT_FILE"
