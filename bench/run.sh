#!/usr/bin/env bash
# rampart vs nginx: throughput, latency, CPU per request, RSS, idle keep-alive memory
# (and, with SCENARIOS=ws, memory per idle WebSocket and WebSocket round trips).
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
#   SCENARIOS        load scenarios, in order (default "small 64k https-small https-handshake"):
#                      small            GET /small over plain HTTP/1.1 keep-alive
#                      64k              GET /64k over plain HTTP/1.1 keep-alive
#                      https-small      GET /small over HTTPS (HTTP/1.1) keep-alive
#                      https-handshake  GET /small over HTTPS with `Connection: close`: a new TCP
#                                       connection and TLS handshake for every request
#                      ws               (not in the default list) WebSockets to a Python echo origin:
#                                       round trips/s and CPU per round trip with WS_CLIENTS
#                                       connections, then RSS per idle WebSocket with WS_CONNS
#                                       connections; runs after the idle keep-alive test. Needs the
#                                       python3 `websockets` package (pip install websockets)
#   WS_CONNS         ws: idle WebSocket connections for the memory test (default 5000; 0 = skip it)
#   WS_CLIENTS       ws: connections sending messages back to back in the round-trip test (default 50)
#   CERT_DIR         certificates for the https scenarios (default certs-example/out, created
#                    with certs-example/make-certs.sh if missing): localhost.pem (chain),
#                    localhost-key.pem, ca.pem
#
# Only 127.0.0.1 is used: origin :18000, nginx :18080, rampart :18081, rampart admin :18090,
# for the https scenarios nginx :18443 and rampart :18444 (TLS), for ws the echo origin :18001.
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
SCENARIOS=${SCENARIOS:-small small-limited 64k https-small https-handshake}
WS_CONNS=${WS_CONNS:-5000}
WS_CLIENTS=${WS_CLIENTS:-50}
OUT_FILE=$BENCH_DIR/last-run.txt

ORIGIN_PORT=18000
NGINX_PORT=18080
RAMPART_PORT=18081
ADMIN_PORT=18090
NGINX_TLS_PORT=18443
WS_ORIGIN_PORT=18001
RAMPART_TLS_PORT=18444
HOST=127.0.0.1

die() { echo "bench/run.sh: $*" >&2; exit 1; }
log() { echo "[bench] $*" >&2; }

for v in DURATION ROUNDS WARMUP CONNS IDLE_CONNS NGINX_KEEPALIVE RAMPART_KEEPALIVE PROXY_CPU LOAD_CPU WS_CONNS WS_CLIENTS; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer, got '${!v}'"
done
(( DURATION >= 1 )) || die "DURATION must be >= 1"
(( ROUNDS >= 1 )) || die "ROUNDS must be >= 1"
(( CONNS >= 1 )) || die "CONNS must be >= 1"
(( WS_CLIENTS >= 1 )) || die "WS_CLIENTS must be >= 1"

read -r -a SCENARIO_LIST <<<"$SCENARIOS"
(( ${#SCENARIO_LIST[@]} >= 1 )) || die "SCENARIOS is empty"
TLS_NEEDED=0
WS_NEEDED=0
for sc in "${SCENARIO_LIST[@]}"; do
    case $sc in
        small | 64k | small-limited | small-guarded | tryfiles-miss | tryfiles-distinct | json-gzip) ;;
        https-small | https-handshake) TLS_NEEDED=1 ;;
        ws) WS_NEEDED=1 ;;
        *) die "unknown scenario '$sc' in SCENARIOS (known: small 64k small-limited small-guarded tryfiles-miss tryfiles-distinct json-gzip https-small https-handshake ws)" ;;
    esac
done
# The wrk scenarios, in order (ws has its own section after the idle keep-alive test).
WRK_SCENARIOS=()
for sc in "${SCENARIO_LIST[@]}"; do
    [[ $sc == ws ]] || WRK_SCENARIOS+=("$sc")
done

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
if (( WS_NEEDED )); then
    python3 -c 'import websockets.asyncio.client, websockets.asyncio.server' 2>/dev/null ||
        die "the ws scenario needs the python3 'websockets' package (>= 13): pip install websockets"
fi

# ---------------------------------------------------------------- certificates (https scenarios)
if (( TLS_NEEDED )); then
    command -v openssl >/dev/null || die "the https scenarios need 'openssl' (s_client, and make-certs.sh)"
    if [[ -z ${CERT_DIR:-} ]]; then
        CERT_DIR=$ROOT/certs-example/out
        # idempotent: keeps existing files
        "$ROOT/certs-example/make-certs.sh" >/dev/null || die "certs-example/make-certs.sh failed"
    fi
    [[ $CERT_DIR == /* ]] || CERT_DIR=$CALLER_PWD/$CERT_DIR
    TLS_CERT=$CERT_DIR/localhost.pem
    TLS_KEY=$CERT_DIR/localhost-key.pem
    TLS_CA=$CERT_DIR/ca.pem
    for f in "$TLS_CERT" "$TLS_KEY" "$TLS_CA"; do
        [[ -r $f ]] || die "certificate file missing or unreadable: $f"
    done
    # wrk sends the URL's host as SNI. An IP address there is not allowed (RFC 6066); rustls
    # ignores it and logs a WARN line per handshake, which would put rampart's log writes
    # into the handshake numbers. So the https URLs use "localhost", if that is 127.0.0.1.
    TLS_HOST=localhost
    first=$(python3 -c 'import socket; print(socket.getaddrinfo("localhost", None, proto=socket.IPPROTO_TCP)[0][4][0])' 2>/dev/null || true)
    if [[ $first != "$HOST" ]]; then
        log "WARNING: localhost resolves to '$first' first, not $HOST; wrk will use https://$HOST (IP as SNI: rampart logs a rustls WARN per handshake)"
        TLS_HOST=$HOST
    fi
fi

CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------- file descriptors
# Idle test: the holder and the proxy each need IDLE_CONNS descriptors (plus some).
# ws memory test: the proxy needs two per WebSocket (client side + upstream side).
FD_NEED=$IDLE_CONNS
(( WS_NEEDED && 2 * WS_CONNS > FD_NEED )) && FD_NEED=$(( 2 * WS_CONNS ))
want_nofile=$(( FD_NEED + 4096 ))
(( want_nofile >= 65536 )) || want_nofile=65536
ulimit -n "$want_nofile" 2>/dev/null || {
    hard=$(ulimit -Hn)
    [[ $hard == unlimited ]] && hard=$want_nofile
    ulimit -n "$hard" 2>/dev/null || true
}
NOFILE=$(ulimit -n)
[[ $NOFILE == unlimited ]] && NOFILE=$want_nofile
(( NOFILE >= FD_NEED + 256 )) ||
    die "open-file limit is $NOFILE, too low for IDLE_CONNS=$IDLE_CONNS / ws with WS_CONNS=$WS_CONNS (raise the hard limit or lower them)"
WORKER_CONNECTIONS=20000
(( WORKER_CONNECTIONS >= FD_NEED + 1024 )) || WORKER_CONNECTIONS=$(( FD_NEED + 1024 ))

# ---------------------------------------------------------------- ports free?
ports_to_check=($ORIGIN_PORT $NGINX_PORT $RAMPART_PORT $ADMIN_PORT $NGINX_TLS_PORT $RAMPART_TLS_PORT)
(( WS_NEEDED )) && ports_to_check+=("$WS_ORIGIN_PORT")
for p in "${ports_to_check[@]}"; do
    if (exec 3<>"/dev/tcp/$HOST/$p") 2>/dev/null; then
        die "port $HOST:$p is already in use (a leftover benchmark process?)"
    fi
done

# ---------------------------------------------------------------- temp dir and cleanup
TMP=$(mktemp -d /tmp/rampart-bench.XXXXXX)
chmod 755 "$TMP"   # the nginx workers may run as an unprivileged user and must read the origin file
CLEANUP_LOGS=("$TMP/origin/error.log" "$TMP/nginx/error.log" "$TMP/rampart/rampart.log" "$TMP/ws-origin/stderr.log")
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

# ---------------------------------------------------------------- helpers
http_body() {  # http_body PORT PATH [SCHEME] -> body on stdout, fails on non-2xx / no answer
    local scheme=${3:-http}
    if [[ $scheme == https ]]; then  # verifies the chain against the example CA
        curl -fsS --max-time 2 --noproxy '*' --cacert "$TLS_CA" --resolve "$TLS_HOST:$1:$HOST" "https://$TLS_HOST:$1$2"
    else
        curl -fsS --max-time 2 --noproxy '*' "http://$HOST:$1$2"
    fi
}

wait_http() {  # wait_http NAME PID PORT PATH EXPECTED_BODY LOGFILE [SCHEME]: bounded (10 s)
    local name=$1 pid=$2 port=$3 path=$4 expect=$5 logf=$6 scheme=${7:-http} i body
    for (( i = 0; i < 100; i++ )); do
        proc_alive "$pid" || { [[ -s $logf ]] && cat "$logf" >&2; die "$name exited during startup"; }
        if body=$(http_body "$port" "$path" "$scheme" 2>/dev/null) && [[ $body == "$expect" ]]; then
            return 0
        fi
        sleep 0.1
    done
    die "$name did not answer GET $path over $scheme on :$port with '$expect' within 10 s (log: $logf)"
}

proc_running() {  # proc_running PID: exists and has not exited (a zombie child counts as exited)
    local st
    st=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $st && $st != Z ]]
}

wait_line() {  # wait_line NAME PID FILE REGEX SECONDS ERRFILE: until FILE has a line matching REGEX
    local name=$1 pid=$2 file=$3 re=$4 secs=$5 errf=$6 i
    for (( i = 0; i < secs * 10; i++ )); do
        grep -qE -- "$re" "$file" 2>/dev/null && return 0
        if ! proc_running "$pid"; then
            grep -qE -- "$re" "$file" 2>/dev/null && return 0
            [[ -s $errf ]] && cat "$errf" >&2
            die "$name exited early"
        fi
        sleep 0.1
    done
    [[ -s $errf ]] && cat "$errf" >&2
    die "$name: no line matching '$re' in $file within ${secs}s"
}

tcp_passive_opens() {  # TCP connections accepted so far in this network namespace (all processes)
    awk '$1 == "Tcp:" { if (!n) { for (i = 2; i <= NF; i++) if ($i == "PassiveOpens") c = i; n = 1 } else print $c }' /proc/net/snmp
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
mkdir -p "$TMP/origin/www" "$TMP/origin/tmp" "$TMP/tryfiles"
echo "a file" > "$TMP/tryfiles/present.txt"   # the try_files root: no /tf/ in it
head -c 65536 /dev/urandom > "$TMP/origin/www/64k"
# json-gzip: 64 KiB of realistic JSON (repetitive keys, varied values).
python3 -c 'import json,random; random.seed(7); print(json.dumps([{"id": i, "name": "user%d" % i, "email": "user%d@example.com" % i, "score": random.random(), "tags": ["a","b","c"][: i % 3 + 1]} for i in range(700)])[:65536])' > "$TMP/origin/www/64k.json"
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
        location = /rl/small { default_type text/plain; return 200 "ok\n"; }
        location = /guard/small { default_type text/plain; return 200 "ok\n"; }
        location /tf/ { default_type text/plain; return 200 "ok\n"; }
        location = /64k   { }
        location = /64k.json { default_type application/json; gzip off; }
        location /        { return 404; }
    }
}
EOF

# ---------------------------------------------------------------- proxy nginx (PROXY_CPU)
mkdir -p "$TMP/nginx/tmp"
# Every proxying location's directives, as the reference configs write them.
# rampart always sends X-Forwarded-Host and X-Request-Id upstream and returns
# X-Request-Id to the client (spec: Upstreams); nginx does the same here so
# that both proxies do the same work.
cat > "$TMP/nginx/proxy_headers.conf" <<'EOF'
proxy_set_header Host $host;
proxy_set_header X-Real-IP $remote_addr;
proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
proxy_set_header X-Forwarded-Proto $scheme;
proxy_set_header X-Forwarded-Host $host;
proxy_set_header X-Request-Id $request_id;
add_header X-Request-Id $request_id always;
EOF
cat > "$TMP/nginx/proxy.conf" <<EOF
proxy_pass http://origin;
proxy_http_version 1.1;
proxy_set_header Connection "";
include $TMP/nginx/proxy_headers.conf;
EOF
nginx_proxy_location() {  # the same proxying on the plain and the TLS server
    sed "s|TMPDIR|$TMP|" <<'EOF'
        # tryfiles-*: files first (none there), then the app
        location /tf/ {
            root TMPDIR/tryfiles;
            try_files $uri @app;
        }
        location @app {
            include TMPDIR/nginx/proxy.conf;
        }
        # small-guarded: allow + auth_basic + limit_conn, all admitting
        location /guard/ {
            allow 127.0.0.1;
            deny all;
            auth_basic "bench";
            auth_basic_user_file TMPDIR/htpasswd;
            limit_conn benchconn 65535;
            include TMPDIR/nginx/proxy.conf;
        }
        # small-limited: a rate limit that never rejects (the cost of checking it)
        location /rl/ {
            limit_req zone=bench burst=100000 nodelay;
            include TMPDIR/nginx/proxy.conf;
        }
        location / {
            include TMPDIR/nginx/proxy.conf;
        }
EOF
}
nginx_ws_upstream() {  # ws scenario only: the WebSocket echo origin (no keepalive: tunnels are not reused)
    (( WS_NEEDED )) || return 0
    cat <<EOF
    upstream ws_origin {
        server $HOST:$WS_ORIGIN_PORT;
    }
EOF
}
nginx_ws_location() {  # ws scenario only (plain server): WebSocket tunnels, same headers as location /
    (( WS_NEEDED )) || return 0
    sed "s|TMPDIR|$TMP|" <<'EOF'
        location /ws/ {
            proxy_pass http://ws_origin;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 1d;         # rampart: read_timeout = "1d" on the route
            include TMPDIR/nginx/proxy_headers.conf;
        }
EOF
}
nginx_tls_server() {  # only with an https scenario; HTTP/1.1 only (no `http2` on the listen)
    (( TLS_NEEDED )) || return 0
    cat <<EOF
    server {
        listen $HOST:$NGINX_TLS_PORT ssl backlog=4096;
        ssl_certificate     $TLS_CERT;
        ssl_certificate_key $TLS_KEY;
        ssl_protocols TLSv1.2 TLSv1.3;   # rampart: protocols = ["TLSv1.2", "TLSv1.3"]
        # ciphers, curves, session tickets/cache: nginx/OpenSSL defaults (see bench/README.md)
$(nginx_proxy_location)
    }
EOF
}
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
    limit_req_zone \$binary_remote_addr zone=bench:10m rate=1000000r/s;
    limit_conn_zone \$binary_remote_addr zone=benchconn:10m;
    # json-gzip: the same compression settings as rampart's [servers.compression]
    gzip on;
    gzip_comp_level 3;
    gzip_min_length 1024;
    gzip_proxied any;
    gzip_vary on;
    gzip_types application/json;
    upstream origin {
        server $HOST:$ORIGIN_PORT;
        keepalive $NGINX_KEEPALIVE;
        keepalive_requests 10000000;
    }
$(nginx_ws_upstream)
    server {
        listen $HOST:$NGINX_PORT backlog=4096;
$(nginx_proxy_location)
$(nginx_ws_location)
    }
$(nginx_tls_server)
}
EOF

# ---------------------------------------------------------------- rampart (PROXY_CPU)
mkdir -p "$TMP/rampart"
{
    echo "# rampart under test: the equivalent of the nginx config next to it."
    rampart_config "$RAMPART_KEEPALIVE"
} > "$TMP/rampart/rampart.toml"
if (( WS_NEEDED )); then
    cat >> "$TMP/rampart/rampart.toml" <<EOF

# ws scenario: WebSocket tunnels to the echo origin (nginx: location /ws/, proxy_read_timeout 1d).
[[servers.routes]]
prefix = "/ws/"
upstream = "ws"
read_timeout = "1d"               # upgraded connections idle out on the route's read timeout

[upstreams.ws]
servers = [{ addr = "$HOST:$WS_ORIGIN_PORT" }]
EOF
fi
if (( TLS_NEEDED )); then
    cat >> "$TMP/rampart/rampart.toml" <<EOF

# The same, over TLS (https scenarios), HTTP/1.1 only like the nginx TLS server.
[[servers]]
name = "bench-tls"
listen = ["$HOST:$RAMPART_TLS_PORT"]
http2 = false                     # no h2 in ALPN; nginx's TLS server has no http2 either
security_headers = false          # nginx adds none either (this would add HSTS on TLS)

[servers.tls]
cert = "$TLS_CERT"
key = "$TLS_KEY"
protocols = ["TLSv1.2", "TLSv1.3"]   # nginx: ssl_protocols TLSv1.2 TLSv1.3

[[servers.routes]]
prefix = "/"
upstream = "origin"
EOF
fi

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

if (( WS_NEEDED )); then
    mkdir -p "$TMP/ws-origin"
    log "starting WebSocket echo origin (python3 bench/ws_echo.py) on $HOST:$WS_ORIGIN_PORT (CPU $LOAD_CPU)"
    taskset -c "$LOAD_CPU" python3 "$BENCH_DIR/ws_echo.py" "$HOST" "$WS_ORIGIN_PORT" </dev/null \
        >"$TMP/ws-origin/stdout.log" 2>"$TMP/ws-origin/stderr.log" &
    WS_ORIGIN_PID=$!   # taskset execs, so this is python itself
    PIDS+=("$WS_ORIGIN_PID")
    wait_line "WebSocket echo origin" "$WS_ORIGIN_PID" "$TMP/ws-origin/stdout.log" '^LISTENING' 10 "$TMP/ws-origin/stderr.log"
fi

log "starting nginx proxy on $HOST:$NGINX_PORT (CPU $PROXY_CPU)"
taskset -c "$PROXY_CPU" "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' \
    >"$TMP/nginx/stdout.log" 2>&1 &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
wait_http "nginx" "$NGINX_PID" "$NGINX_PORT" /small "ok" "$TMP/nginx/error.log"
(( TLS_NEEDED )) && wait_http "nginx (TLS)" "$NGINX_PID" "$NGINX_TLS_PORT" /small "ok" "$TMP/nginx/error.log" https
NGINX_WORKERS=$(pgrep -P "$NGINX_PID" || true)
[[ -n $NGINX_WORKERS ]] || die "nginx proxy has no worker process"
(( $(wc -w <<<"$NGINX_WORKERS") == 1 )) || die "expected 1 nginx worker, found: $NGINX_WORKERS"
NGINX_WORKER=$NGINX_WORKERS

log "starting rampart on $HOST:$RAMPART_PORT (CPU $PROXY_CPU): $RAMPART_BIN"
taskset -c "$PROXY_CPU" "$RAMPART_BIN" run -c "$TMP/rampart/rampart.toml" >"$TMP/rampart/rampart.log" 2>&1 &
RAMPART_PID=$!   # taskset execs, so this is rampart itself
PIDS+=("$RAMPART_PID")
wait_http "rampart" "$RAMPART_PID" "$RAMPART_PORT" /small "ok" "$TMP/rampart/rampart.log"
(( TLS_NEEDED )) && wait_http "rampart (TLS)" "$RAMPART_PID" "$RAMPART_TLS_PORT" /small "ok" "$TMP/rampart/rampart.log" https
# admin /healthz must answer 200 (body not checked)
for (( i = 0; i < 100; i++ )); do
    http_body "$ADMIN_PORT" /healthz >/dev/null 2>&1 && break
    proc_alive "$RAMPART_PID" || die "rampart exited during startup"
    sleep 0.1
done
(( i < 100 )) || die "rampart admin did not answer GET /healthz on :$ADMIN_PORT within 10 s"

# Sanity: both proxies deliver the same bodies.
sanity_urls=("http://$HOST:$NGINX_PORT/64k" "http://$HOST:$RAMPART_PORT/64k")
(( TLS_NEEDED )) && sanity_urls+=("https://$TLS_HOST:$NGINX_TLS_PORT/64k" "https://$TLS_HOST:$RAMPART_TLS_PORT/64k")
for url in "${sanity_urls[@]}"; do
    tls_args=()
    if [[ $url == https://* ]]; then
        p=${url#https://*:}
        tls_args=(--cacert "$TLS_CA" --resolve "$TLS_HOST:${p%%/*}:$HOST")
    fi
    size=$(curl -fsS --max-time 5 --noproxy '*' "${tls_args[@]}" -o /dev/null -w '%{size_download}' "$url") ||
        die "GET $url failed"
    [[ $size == 65536 ]] || die "GET $url returned $size bytes, expected 65536"
done

proxy_port() { [[ $1 == nginx ]] && echo "$NGINX_PORT" || echo "$RAMPART_PORT"; }
proxy_tls_port() { [[ $1 == nginx ]] && echo "$NGINX_TLS_PORT" || echo "$RAMPART_TLS_PORT"; }
proxy_cpu_pids() { [[ $1 == nginx ]] && echo "$NGINX_PID $NGINX_WORKER" || echo "$RAMPART_PID"; }
proxy_mem_pid() { [[ $1 == nginx ]] && echo "$NGINX_WORKER" || echo "$RAMPART_PID"; }
ws_port() { [[ $1 == direct ]] && echo "$WS_ORIGIN_PORT" || proxy_port "$1"; }

# Sanity (ws): a WebSocket echo works directly and through both proxies.
if (( WS_NEEDED )); then
    for target in direct nginx rampart; do
        port=$(ws_port "$target")
        timeout 30 taskset -c "$LOAD_CPU" python3 "$BENCH_DIR/ws_rate.py" "$HOST" "$port" /ws/check 2 0 \
            </dev/null >"$TMP/ws-origin/check-$target.txt" 2>&1 ||
            { cat "$TMP/ws-origin/check-$target.txt" >&2; die "WebSocket echo via $target (ws://$HOST:$port/ws/check) failed"; }
    done
fi
scenario_path() {
    case $1 in
        64k) echo /64k ;;
        json-gzip) echo /64k.json ;;
        small-limited) echo /rl/small ;;
        small-guarded) echo /guard/small ;;
        tryfiles-miss | tryfiles-distinct) echo /tf/small ;;
        *) echo /small ;;
    esac
}
scenario_url() {  # scenario_url SCENARIO PROXY
    case $1 in
        https-*) echo "https://$TLS_HOST:$(proxy_tls_port "$2")$(scenario_path "$1")" ;;
        *) echo "http://$HOST:$(proxy_port "$2")$(scenario_path "$1")" ;;
    esac
}
scenario_wrk_args() {  # extra wrk arguments of SCENARIO, one per line
    [[ $1 == json-gzip ]] && printf '%s\n' -H 'Accept-Encoding: gzip'
    [[ $1 == small-guarded ]] && printf '%s\n' -H "Authorization: $BENCH_AUTHORIZATION"
    [[ $1 == tryfiles-distinct ]] && printf '%s\n' -s "$BENCH_DIR/distinct_paths.lua"
    [[ $1 == https-handshake ]] && printf '%s\n' -H 'Connection: close'
    return 0
}

# ---------------------------------------------------------------- TLS parameters (https scenarios)
# Printed in the report header, so it shows that both proxies negotiate the same thing.
TLS_FILE="$TMP/tls.txt"
: >"$TLS_FILE"
s_client() {  # s_client PORT ARGS...: bounded openssl s_client to PORT, SNI localhost
    local port=$1
    shift
    timeout 5 openssl s_client -connect "$HOST:$port" -servername localhost "$@"
}
CLOSE_REQ=$'GET /small HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
if (( TLS_NEEDED )); then
    declare -A TLS_PARAMS=()
    for proxy in nginx rampart; do
        port=$(proxy_tls_port "$proxy")
        # negotiated protocol + cipher ("New, TLSv1.3, Cipher is ..."), key exchange group and
        # ALPN (offering h2 and http/1.1); s_client's "Protocol :"/"Cipher :" session lines say
        # the same again (and only when a session ticket came in), so they are dropped.
        s_client "$port" -alpn h2,http/1.1 </dev/null >"$TMP/s_client-$proxy.txt" 2>/dev/null || true
        TLS_PARAMS[$proxy]=$(grep -E 'Protocol|Cipher|Temp Key' "$TMP/s_client-$proxy.txt" |
            sed -nE 's/^(New|Reused), //p; s/^[[:space:]]*(Server Temp Key: .*)/\1/p' | sort -r |
            awk '!seen[$0]++' | paste -sd ';' | sed 's/;/; /g')
        [[ -n ${TLS_PARAMS[$proxy]} ]] || die "openssl s_client could not connect to $proxy on :$port"
        alpn=$(grep -E 'ALPN' "$TMP/s_client-$proxy.txt" | head -n 1 | sed -E 's/^[[:space:]]+//')
        # Session resumption: one connection saves the session (incl. TLS 1.3 tickets, read
        # before the server closes), a second one offers it.
        sess="$TMP/sess-$proxy.pem"
        { printf '%s' "$CLOSE_REQ" | s_client "$port" -ign_eof -sess_out "$sess" >/dev/null 2>&1; } || true
        resumed=$( { printf '%s' "$CLOSE_REQ" | s_client "$port" -ign_eof -sess_in "$sess" 2>/dev/null || true; } |
            awk '/^(New|Reused), / { print $1; exit }' | tr -d ,)
        case $resumed in
            Reused) resumed=yes ;;
            New) resumed=no ;;
            *) resumed="unknown" ;;
        esac
        # Connection: close over TLS: the proxy must answer and then close (s_client -quiet
        # waits for the close; the 5 s timeout says it did not) and should say so in a header.
        rc=0
        resp=$(printf '%s' "$CLOSE_REQ" | s_client "$port" -quiet 2>/dev/null | tr -d '\r') || rc=$?
        if (( rc == 124 )); then
            closes="does NOT close the connection (still open after 5 s)"
            log "WARNING: $proxy does not close the TLS connection after a 'Connection: close' request"
        elif ! grep -q '^ok$' <<<"$resp"; then
            closes="no valid answer (s_client exit $rc)"
            log "WARNING: $proxy: no valid answer to a 'Connection: close' request over TLS"
        elif grep -qi '^connection: *close' <<<"$resp"; then
            closes="answers and closes, with 'Connection: close'"
        else
            closes="answers and closes, but without a 'Connection: close' header"
            log "WARNING: $proxy closes after 'Connection: close' without saying so (wrk counts that as a read error)"
        fi
        printf '%-8s :%s  %s; %s\n%-8s         resumption offered (s_client -sess_in): %s; on Connection: close: %s\n' \
            "$proxy" "$port" "${TLS_PARAMS[$proxy]}" "${alpn:-ALPN ?}" "" "$resumed" "$closes" >>"$TLS_FILE"
    done
    [[ ${TLS_PARAMS[nginx]} == "${TLS_PARAMS[rampart]}" ]] ||
        log "WARNING: nginx and rampart negotiate different TLS parameters (see the report header)"
fi

# ---------------------------------------------------------------- load runs
RAW="$TMP/raw"
mkdir -p "$RAW"
RESULTS="$TMP/results.tsv"   # scenario proxy round rps p50_ms p99_ms requests cpu_s errors new_conns
RSS_FILE="$TMP/rss.tsv"      # scenario proxy rss_kib
: >"$RESULTS"
: >"$RSS_FILE"

run_wrk() {  # run_wrk URL SECONDS OUTFILE [WRK ARGS...]
    local url=$1 secs=$2 out=$3 pid rc=0
    shift 3
    taskset -c "$LOAD_CPU" "$WRK" -t1 -c"$CONNS" -d"${secs}s" --latency "$@" "$url" >"$out" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait "$pid" || rc=$?
    unset 'PIDS[${#PIDS[@]}-1]'
    (( rc == 0 )) || { cat "$out" >&2; die "wrk failed (exit $rc) against $url"; }
}

for scenario in "${WRK_SCENARIOS[@]}"; do
    mapfile -t wrk_args < <(scenario_wrk_args "$scenario")
    if (( WARMUP > 0 )); then
        for proxy in nginx rampart; do
            log "warm-up $scenario $proxy (${WARMUP}s)"
            run_wrk "$(scenario_url "$scenario" "$proxy")" "$WARMUP" "$RAW/warmup-$scenario-$proxy.txt" "${wrk_args[@]}"
        done
    fi
    for (( round = 1; round <= ROUNDS; round++ )); do
        for proxy in nginx rampart; do
            url=$(scenario_url "$scenario" "$proxy")
            pids=$(proxy_cpu_pids "$proxy")
            out="$RAW/$scenario-$proxy-$round.txt"
            log "run $scenario $proxy round $round/$ROUNDS (${DURATION}s)"
            # shellcheck disable=SC2086
            t0=$(cpu_ticks $pids)
            c0=$(tcp_passive_opens)
            run_wrk "$url" "$DURATION" "$out" "${wrk_args[@]}"
            c1=$(tcp_passive_opens)
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
            new_conns=$(( c1 - c0 ))
            if [[ $scenario == https-handshake ]] && (( requests > 0 && new_conns * 10 < requests * 9 )); then
                log "WARNING: $proxy $scenario round $round: only $new_conns new connections for $requests requests (Connection: close not honoured?)"
            fi
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scenario" "$proxy" "$round" "$rps" \
                "$(to_ms "$p50")" "$(to_ms "$p99")" "$requests" "$cpu_s" "$errors" "$new_conns" >>"$RESULTS"
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

# ---------------------------------------------------------------- ws: WebSocket round trips, idle WebSocket memory
WS_RATE_FILE="$TMP/ws-rate.tsv"   # target round round_trips seconds errors cpu_s
WS_RSS_FILE="$TMP/ws-rss.tsv"     # proxy rss_kib (after the round-trip runs)
WS_MEM_FILE="$TMP/ws-mem.tsv"     # proxy conns_ok conns_failed still_open upstream_conns rss_before_kib rss_after_kib
: >"$WS_RATE_FILE"
: >"$WS_RSS_FILE"
: >"$WS_MEM_FILE"

upstream_ws_conns() {  # established TCP connections to the ws origin (counted on the connecting side)
    awk -v p=":$(printf '%04X' "$WS_ORIGIN_PORT")" \
        'NR > 1 && $4 == "01" && substr($3, length($3) - 4) == p { n++ } END { print n + 0 }' /proc/net/tcp
}

ws_rate_run() {  # ws_rate_run TARGET SECONDS OUTFILE: sets WS_RT WS_SECS WS_ERR WS_CPU
    local target=$1 secs=$2 out=$3 rpid pids= t0 t1 ok failed
    [[ $target == direct ]] || pids=$(proxy_cpu_pids "$target")
    : >"$out"
    # ws_rate.py stops on SIGTERM, when this script dies (it watches its parent) and after 15 min.
    taskset -c "$LOAD_CPU" python3 "$BENCH_DIR/ws_rate.py" "$HOST" "$(ws_port "$target")" /ws/rate \
        "$WS_CLIENTS" "$secs" </dev/null >"$out" 2>"$out.err" &
    rpid=$!
    PIDS+=("$rpid")
    wait_line "ws_rate.py ($target)" "$rpid" "$out" '^READY ' $(( WS_CLIENTS / 10 + 30 )) "$out.err"
    read -r _ ok failed < <(grep '^READY ' "$out")
    (( failed == 0 )) || { cat "$out.err" >&2; die "ws_rate.py: $failed of $WS_CLIENTS WebSocket connections via $target failed"; }
    # shellcheck disable=SC2086
    t0=$(cpu_ticks $pids)
    kill -USR1 "$rpid"
    wait_line "ws_rate.py ($target)" "$rpid" "$out" '^DONE ' $(( secs + 60 )) "$out.err"
    # shellcheck disable=SC2086
    t1=$(cpu_ticks $pids)
    stop_pid "$rpid"
    unset 'PIDS[${#PIDS[@]}-1]'
    read -r _ WS_RT WS_SECS WS_ERR < <(grep '^DONE ' "$out")
    (( WS_ERR == 0 )) || { log "WARNING: ws via $target: $WS_ERR connections failed during the run:"; cat "$out.err" >&2; }
    if [[ -n $pids ]]; then
        WS_CPU=$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" 'BEGIN { printf "%.3f", (b - a) / hz }')
    else
        WS_CPU=nan
    fi
}

wait_upstream_ws_closed() {  # bounded (15 s): the proxy has closed its tunnels to the ws origin
    local i
    for (( i = 0; i < 150; i++ )); do
        (( $(upstream_ws_conns) == 0 )) && return 0
        sleep 0.1
    done
    log "WARNING: $(upstream_ws_conns) connections to the ws origin still open 15 s after the clients left"
}

if (( WS_NEEDED )); then
    # Round trips: WS_CLIENTS connections, each sending a message and waiting for the echo,
    # back to back. "direct" (client -> echo origin, no proxy) shows what the load core
    # (Python client + Python origin on LOAD_CPU) can do at most.
    if (( WARMUP > 0 )); then
        for proxy in nginx rampart; do
            log "warm-up ws $proxy (${WARMUP}s)"
            ws_rate_run "$proxy" "$WARMUP" "$RAW/warmup-ws-$proxy.txt"
        done
    fi
    for (( round = 1; round <= ROUNDS; round++ )); do
        for target in direct nginx rampart; do
            log "run ws round trips $target round $round/$ROUNDS (${DURATION}s, $WS_CLIENTS connections)"
            ws_rate_run "$target" "$DURATION" "$RAW/ws-$target-$round.txt"
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$round" "$WS_RT" "$WS_SECS" "$WS_ERR" "$WS_CPU" >>"$WS_RATE_FILE"
        done
    done
    for proxy in nginx rampart; do
        printf '%s\t%s\n' "$proxy" "$(rss_kib "$(proxy_mem_pid "$proxy")")" >>"$WS_RSS_FILE"
    done

    # Memory per idle WebSocket: like the idle keep-alive test, with WS_CONNS WebSockets
    # (each one also holds an upstream connection in the proxy).
    if (( WS_CONNS > 0 )); then
        for proxy in nginx rampart; do
            port=$(proxy_port "$proxy")
            mpid=$(proxy_mem_pid "$proxy")
            wait_upstream_ws_closed
            sleep 1
            before=$(rss_kib "$mpid")
            log "ws idle test $proxy: opening $WS_CONNS WebSocket connections"
            hout="$RAW/ws-hold-$proxy.txt"
            : >"$hout"
            # The holder stops on SIGTERM (what stop_pid/cleanup send), when this script dies
            # (it watches its parent pid) and after 15 minutes at most.
            taskset -c "$LOAD_CPU" python3 "$BENCH_DIR/ws_hold.py" "$HOST" "$port" "$WS_CONNS" /ws/hold \
                </dev/null >"$hout" 2>"$RAW/ws-hold-$proxy.err" &
            hpid=$!
            PIDS+=("$hpid")
            # bounded: 1 s per 20 connections (Python handshakes on both ends), at least 60 s
            wait_line "ws_hold.py ($proxy)" "$hpid" "$hout" '^READY ' $(( WS_CONNS / 20 + 60 )) "$RAW/ws-hold-$proxy.err"
            read -r _ ok failed < <(grep '^READY ' "$hout")
            (( failed == 0 )) || { log "WARNING: $failed of $WS_CONNS WebSocket connections via $proxy failed:"; cat "$RAW/ws-hold-$proxy.err" >&2; }
            (( ok > 0 )) || die "no WebSocket connection via $proxy succeeded"
            sleep 1
            after=$(rss_kib "$mpid")
            upstream=$(upstream_ws_conns)
            kill -USR1 "$hpid"
            for (( i = 0; i < 50; i++ )); do grep -q '^OPEN ' "$hout" && break; sleep 0.1; done
            still=$(awk '/^OPEN / { print $2 }' "$hout")
            [[ -n $still ]] || still=nan
            [[ $still == "$ok" ]] || log "WARNING: $proxy closed some idle WebSockets: $still of $ok still open"
            [[ $upstream == "$ok" ]] || log "WARNING: $proxy has $upstream upstream connections for $ok WebSockets"
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$proxy" "$ok" "$failed" "$still" "$upstream" "$before" "$after" >>"$WS_MEM_FILE"
            stop_pid "$hpid"
            unset 'PIDS[${#PIDS[@]}-1]'
        done
        wait_upstream_ws_closed
    fi
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
    if (( ${#WRK_SCENARIOS[@]} > 0 )); then
        echo "load:    wrk -t1 -c$CONNS -d${DURATION}s --latency, $ROUNDS interleaved round(s) per proxy, ${WARMUP}s warm-up"
    else
        echo "load:    no wrk scenario"
    fi
    echo "         scenarios: ${SCENARIO_LIST[*]}"
    if (( WS_NEEDED )); then
        echo "ws:      Python ($(python3 -c 'import sys, websockets; print("%d.%d.%d" % sys.version_info[:3], "websockets", websockets.__version__)' 2>/dev/null)) echo origin :$WS_ORIGIN_PORT and clients on CPU $LOAD_CPU;"
        echo "         round trips: $WS_CLIENTS connections x ${DURATION}s, $ROUNDS interleaved round(s), ${WARMUP}s warm-up; idle: $WS_CONNS connections"
    fi
    if [[ -s $TLS_FILE ]]; then
        echo "tls:     openssl s_client -servername localhost -alpn h2,http/1.1 (wrk: SNI $TLS_HOST, no ALPN)"
        sed 's/^/         /' "$TLS_FILE"
    fi
    echo
    WS_RATE_FILE=$WS_RATE_FILE WS_RSS_FILE=$WS_RSS_FILE WS_MEM_FILE=$WS_MEM_FILE WS_CLIENTS=$WS_CLIENTS \
        python3 - "$RESULTS" "$RSS_FILE" "$IDLE_FILE" "$NGINX_MASTER_RSS" "${WRK_SCENARIOS[@]}" <<'PYEOF'
import os
import statistics
import sys

results_f, rss_f, idle_f, master_rss = sys.argv[1:5]
scenarios = sys.argv[5:]


def tsv(path):
    return [line.rstrip("\n").split("\t") for line in open(path) if line.strip()]


rows = tsv(results_f)
rss = {(s, p): int(k) for s, p, k in tsv(rss_f)}
idle = tsv(idle_f)


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def ratio(a, b):
    return f"{a / b:.2f}x" if b and a == a and b == b else "n/a"


DESC = {
    "small": "GET /small (3-byte body)",
    "small-limited": "GET /rl/small: as small, through a rate limit that never rejects",
    "small-guarded": "GET /guard/small: as small, through allow, auth (htpasswd, apr1) and a conn_limit that all admit",
    "tryfiles-miss": "GET /tf/small: as small, through try_files that finds no file (the same path every time)",
    "tryfiles-distinct": "GET /tf/d<N>/x: through try_files, every request a path never asked before",
    "64k": "GET /64k (64 KiB body)",
    "json-gzip": "GET /64k.json with Accept-Encoding: gzip: the proxy compresses (gzip level 3 both)",
    "https-small": "GET /small over HTTPS (HTTP/1.1, keep-alive)",
    "https-handshake": "GET /small over HTTPS, 'Connection: close': new connection + TLS handshake per request",
}

for scenario in scenarios:
    hs = scenario == "https-handshake"
    print(f"== {scenario}: {DESC[scenario]}")
    hdr = (f"{'proxy':<14}{'handshakes/s' if hs else 'req/s':>12}{'p50 ms':>10}{'p99 ms':>10}"
           f"{'CPU-s/100k':>12}{'RSS MiB':>10}{'errors':>8}" + (f"{'conns/req':>11}" if hs else ""))
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
        conns = med([int(r[9]) / int(r[6]) for r in rs if int(r[6]) > 0])
        vals[proxy] = (rps, p50, p99, cpu, mem)
        print(f"{proxy:<14}{rps:>12.0f}{p50:>10.3f}{p99:>10.3f}{cpu:>12.3f}{mem:>10.1f}{err:>8}"
              + (f"{conns:>11.3f}" if hs else ""))
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

ws_rate = tsv(os.environ["WS_RATE_FILE"])
ws_rss = {p: int(k) for p, k in tsv(os.environ["WS_RSS_FILE"])}
ws_mem = tsv(os.environ["WS_MEM_FILE"])
if ws_rate:
    print(f"== ws round trips: {os.environ['WS_CLIENTS']} WebSocket connections, each sends a 32-byte message and waits for the echo")
    hdr = f"{'proxy':<14}{'msgs/s':>12}{'CPU-s/100k':>12}{'RSS MiB':>10}{'errors':>8}"
    print(hdr)
    print("-" * len(hdr))
    vals = {}
    for target in ("direct", "nginx", "rampart"):
        rs = [r for r in ws_rate if r[0] == target]
        if not rs:
            continue
        rate = med([int(r[2]) / float(r[3]) for r in rs if float(r[3]) > 0])
        cpu = med([float(r[5]) / int(r[2]) * 100000 for r in rs if r[5] != "nan" and int(r[2]) > 0])
        err = sum(int(r[4]) for r in rs)
        vals[target] = (rate, cpu, ws_rss.get(target, 0) / 1024)
        if target == "direct":
            print(f"{'direct (none)':<14}{rate:>12.0f}{'-':>12}{'-':>10}{err:>8}")
        else:
            print(f"{target:<14}{rate:>12.0f}{cpu:>12.3f}{vals[target][2]:>10.1f}{err:>8}")
    if "nginx" in vals and "rampart" in vals:
        n, r = vals["nginx"], vals["rampart"]
        print(f"{'rampart/nginx':<14}" + "".join(f"{ratio(a, b):>{w}}" for a, b, w in zip(r, n, (12, 12, 10))))
    print()

if ws_mem:
    print("== idle WebSocket connections (each did one echo, then stays open idle; the proxy also holds its upstream connection)")
    hdr = (f"{'proxy':<14}{'conns':>8}{'open':>8}{'upstream':>10}{'RSS before MiB':>16}"
           f"{'RSS after MiB':>15}{'KiB/conn':>10}")
    print(hdr)
    print("-" * len(hdr))
    kib = {}
    for proxy, ok, failed, still, upstream, before, after in ws_mem:
        ok, before, after = int(ok), int(before), int(after)
        per = (after - before) / ok if ok else float("nan")
        kib[proxy] = per
        print(f"{proxy:<14}{ok:>8}{still:>8}{upstream:>10}{before / 1024:>16.1f}{after / 1024:>15.1f}{per:>10.2f}")
    if "nginx" in kib and "rampart" in kib:
        print(f"{'rampart/nginx':<14}{'':>8}{'':>8}{'':>10}{'':>16}{'':>15}{ratio(kib['rampart'], kib['nginx']):>10}")
    print()

ws_notes = bool(ws_rate or ws_mem)
if scenarios:
    print("Notes: req/s, p50, p99 and CPU-s/100k are medians over rounds. CPU-s/100k = CPU seconds")
    print("(user+system, /proc/PID/stat; nginx: master + worker) the proxy used per 100,000 requests.")
    print(f"RSS = VmRSS after the scenario's runs (nginx: the worker only; its master had {int(master_rss) / 1024:.1f} MiB).")
    print("errors = wrk non-2xx responses + socket errors, summed over rounds (must be 0).")
if "https-handshake" in scenarios:
    print("handshakes/s = req/s with 'Connection: close'. conns/req = TCP connections accepted on the")
    print("machine during the run (kernel Tcp PassiveOpens) per request; must be ~1.000 (one connection")
    print("and TLS handshake per request). wrk offers each new connection the TLS session of the one")
    print("before, so these are resumed handshakes (TLS 1.3 PSK + X25519, no certificate signature).")
if idle or not ws_notes:
    print("open = idle connections the proxy still kept open when the RSS was read (must equal conns).")
if ws_notes:
    print("ws: msgs/s = round trips/s (one 32-byte binary frame each way through the proxy), median over")
    print("rounds; CPU-s/100k = proxy CPU seconds (nginx: master + worker) per 100,000 round trips.")
    print("The Python client and the Python echo origin share the load core, so msgs/s is mostly limited")
    print("by them, not by the proxy (compare with the direct row: no proxy); compare CPU-s/100k.")
    print("RSS = VmRSS after the round-trip runs (nginx: the worker only). errors = connections that failed")
    print("during the runs (must be 0). Idle WebSockets: KiB/conn = proxy RSS (after - before) / conns,")
    print("which includes the upstream connection each tunnel holds; open = WebSockets still open when the")
    print("RSS was read, upstream = established connections to the echo origin then (both must equal conns).")
PYEOF
} | tee "$OUT_FILE"

log "table written to $OUT_FILE"
