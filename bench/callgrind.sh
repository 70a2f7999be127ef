#!/usr/bin/env bash
# Instructions per proxied request, counted by valgrind's callgrind: a repeatable number
# (unlike wall-clock or CPU time) for measuring what one source patch gains or costs.
#
#   bench/callgrind.sh [RAMPART_BIN]
#
# RAMPART_BIN  binary under test: the argument, else $RAMPART_BIN, else target/profiling/rampart
#              (relative paths: to the current directory if the file is there, else to the repo root)
# REQUESTS     requests that make the difference between the two runs (default 4000)
# BASE         requests of the first run (default 1000)
# KEEP_TMP=1   keep the temp dir (configs, logs, callgrind files) after the run
#
# Method: rampart runs under callgrind twice, with the same config and the same client, which
# sends serial GET /small requests over ONE keep-alive connection (each full response is read
# before the next request is sent) through rampart to a local nginx origin. Run 1 sends BASE
# requests, run 2 BASE+REQUESTS. Everything that is not per-request (valgrind start, config
# load, listener setup, the first client and upstream connections, shutdown) is in both totals
# and cancels out in
#     (Ir of run 2 - Ir of run 1) / REQUESTS.
# Callgrind serializes threads and counts guest instructions only, so this does not depend on
# machine load; what remains is work done by timers and idle threads during the longer run.
# The last line stays the total (scripts read it); the two lines before it split off the
# memory-copy functions, which valgrind over-counts (see mem_ir_of).
#
# The rampart config has the shape of bench/run.sh's (threads = 1, access log off, upstream
# "origin" with keepalive 1024, the same servers/routes), so the number is like-for-like with
# the "small" scenario there. Ports (127.0.0.1 only, refused if taken): 18100 origin nginx,
# 18101 rampart, 18102 rampart admin. Needs valgrind, nginx and python3; as root, a missing
# valgrind/nginx is installed with apt-get (nginx-light valgrind).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
CALLER_PWD=$PWD

REQUESTS=${REQUESTS:-4000}
BASE=${BASE:-1000}
KEEP_TMP=${KEEP_TMP:-0}
HOST=127.0.0.1
ORIGIN_PORT=18100
RAMPART_PORT=18101
ADMIN_PORT=18102
STARTUP_SECS=60   # valgrind translating a large Rust binary takes a while before it listens
STOP_SECS=120     # drain (grace_period 1s) plus callgrind writing its output, under valgrind
REQ_PATH=/small

die() { echo "bench/callgrind.sh: $*" >&2; exit 1; }
log() { echo "[callgrind] $*" >&2; }

(( $# <= 1 )) || die "usage: bench/callgrind.sh [RAMPART_BIN]"
for v in REQUESTS BASE; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer, got '${!v}'"
done
(( REQUESTS >= 1 )) || die "REQUESTS must be >= 1"

# ---------------------------------------------------------------- rampart binary
RAMPART_BIN=${1:-${RAMPART_BIN:-target/profiling/rampart}}
if [[ $RAMPART_BIN != /* ]]; then
    if [[ -e $CALLER_PWD/$RAMPART_BIN ]]; then
        RAMPART_BIN=$CALLER_PWD/$RAMPART_BIN
    else
        RAMPART_BIN=$ROOT/$RAMPART_BIN
    fi
fi
[[ -f $RAMPART_BIN && -x $RAMPART_BIN ]] ||
    die "rampart binary not found or not executable: $RAMPART_BIN
    build it first (cargo build --profile profiling) or pass one: bench/callgrind.sh target/release/rampart"

# ---------------------------------------------------------------- tools
find_nginx() {  # Debian puts nginx in /usr/sbin, which is not on every user's PATH
    if [[ -x /usr/sbin/nginx ]]; then echo /usr/sbin/nginx; else command -v nginx || true; fi
}
NGINX=$(find_nginx)
if [[ -z $NGINX ]] || ! command -v valgrind >/dev/null; then
    (( EUID == 0 )) || die "valgrind and nginx are needed (Debian: apt-get install nginx-light valgrind); run as root to have them installed"
    command -v apt-get >/dev/null || die "valgrind and/or nginx missing, and no apt-get to install them"
    log "valgrind and/or nginx missing; installing nginx-light valgrind with apt-get"
    # Keep the package from starting the system nginx on :80 (as .ci/run does): a
    # policy-rc.d that exits 101 forbids service starts; remove it afterwards only if we made it.
    made_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        made_policy=1
    fi
    install_ok=1
    # Lock::Timeout: wait (bounded) for another apt-get, e.g. a build installing its deps.
    apt_opts=(-qq -o DPkg::Lock::Timeout=600)
    if ! { apt-get "${apt_opts[@]}" update &&
        DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y nginx-light valgrind; } >&2; then
        install_ok=0
    fi
    if (( made_policy )); then rm -f /usr/sbin/policy-rc.d; fi
    (( install_ok )) || die "apt-get install nginx-light valgrind failed"
    NGINX=$(find_nginx)
    if [[ -z $NGINX ]] || ! command -v valgrind >/dev/null; then
        die "nginx/valgrind still missing after apt-get install"
    fi
fi
command -v python3 >/dev/null || die "python3 is needed for the client"

# ---------------------------------------------------------------- ports free?
for p in $ORIGIN_PORT $RAMPART_PORT $ADMIN_PORT; do
    if (exec 3<>"/dev/tcp/$HOST/$p") 2>/dev/null; then
        die "port $HOST:$p is already in use (a leftover benchmark process?)"
    fi
done

# ---------------------------------------------------------------- temp dir and cleanup
TMP=$(mktemp -d /tmp/rampart-callgrind.XXXXXX)
chmod 755 "$TMP"   # the nginx worker may run as an unprivileged user
CLEANUP_LOGS=("$TMP/origin/error.log" "$TMP/run*/rampart.log" "$TMP/run*/client.log")
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

# ---------------------------------------------------------------- origin nginx
mkdir -p "$TMP/origin/tmp"
cat >"$TMP/origin/nginx.conf" <<EOF
# Origin for bench/callgrind.sh (only rampart is measured; this just has to answer).
worker_processes 1;
pid $TMP/origin/nginx.pid;
lock_file $TMP/origin/nginx.lock;
error_log $TMP/origin/error.log warn;
events { worker_connections 1024; }
http {
    # temp paths inside the temp dir (nginx's compiled-in ones are under /var/lib/nginx)
    client_body_temp_path $TMP/origin/tmp/body;
    proxy_temp_path       $TMP/origin/tmp/proxy;
    fastcgi_temp_path     $TMP/origin/tmp/fastcgi;
    uwsgi_temp_path       $TMP/origin/tmp/uwsgi;
    scgi_temp_path        $TMP/origin/tmp/scgi;
    access_log off;
    server_tokens off;
    default_type text/plain;
    # nginx closes a keep-alive connection after 1000 requests by default; rampart would then
    # open a new upstream connection mid-run, which is not per-request work.
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    server {
        listen $HOST:$ORIGIN_PORT;
        location / { return 200 "ok\n"; }
    }
}
EOF
"$NGINX" -t -q -p "$TMP/origin" -c "$TMP/origin/nginx.conf" 2>"$TMP/origin/check.log" ||
    { cat "$TMP/origin/check.log" >&2; die "origin nginx config rejected"; }

# ---------------------------------------------------------------- rampart config
# Same shape as bench/run.sh's rampart.toml (minus its ws/TLS parts), so the count is
# for the same per-request work as its "small" scenario.
mkdir -p "$TMP/rampart"
{
    echo "# rampart under callgrind (bench/callgrind.sh): bench/run.sh's config."
    rampart_config 1024
} >"$TMP/rampart/rampart.toml"
"$RAMPART_BIN" check -c "$TMP/rampart/rampart.toml" >"$TMP/rampart/check.log" 2>&1 ||
    { cat "$TMP/rampart/check.log" >&2; die "rampart rejected its config ($TMP/rampart/rampart.toml)"; }

# ---------------------------------------------------------------- client
# Serial keep-alive client: one connection, N requests, each response read in full
# (Content-Length or chunked) and checked before the next request is sent. Fails if the
# server closes the connection, so every request really went over the one connection.
cat >"$TMP/client.py" <<'PYEOF'
import socket
import sys

host, port, n, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
TIMEOUT = 120.0  # per socket operation; a debug build under valgrind is very slow
MAX_HEAD = 65536

sock = socket.create_connection((host, port), timeout=TIMEOUT)
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
buf = b""


def fill():
    global buf
    chunk = sock.recv(65536)
    if not chunk:
        raise SystemExit("server closed the connection")
    buf += chunk


def read_line():
    global buf
    while b"\r\n" not in buf:
        if len(buf) > MAX_HEAD:
            raise SystemExit("line too long")
        fill()
    line, buf = buf.split(b"\r\n", 1)
    return line


def read_exact(k):
    global buf
    while len(buf) < k:
        fill()
    data, buf = buf[:k], buf[k:]
    return data


req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: rampart-callgrind\r\n\r\n" % (path, host, port)).encode()
for i in range(n):
    sock.sendall(req)
    status = read_line().split(b" ", 2)
    if len(status) < 2 or status[1] != b"200":
        raise SystemExit("request %d: unexpected status line %r" % (i, b" ".join(status)))
    headers = {}
    for _ in range(200):  # bounded: at most 200 header lines
        line = read_line()
        if not line:
            break
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip().lower()
    else:
        raise SystemExit("request %d: too many header lines" % i)
    if b"content-length" in headers:
        body = read_exact(int(headers[b"content-length"]))
    elif headers.get(b"transfer-encoding") == b"chunked":
        body = b""
        for _ in range(100000):  # bounded number of chunks
            size = int(read_line().split(b";")[0], 16)
            if size == 0:
                while read_line():  # trailers, up to the empty line
                    pass
                break
            body += read_exact(size)
            read_exact(2)
        else:
            raise SystemExit("request %d: too many chunks" % i)
    else:
        raise SystemExit("request %d: response without length" % i)
    if body != b"ok\n":
        raise SystemExit("request %d: unexpected body %r" % (i, body))
    if headers.get(b"connection") == b"close" and i + 1 < n:
        raise SystemExit("request %d: server sent Connection: close" % i)
sock.close()
print("done %d" % n)
PYEOF

# ---------------------------------------------------------------- helpers
listening() {  # listening PORT: a LISTEN socket on HOST:PORT exists (IPv4 table)
    # Read the kernel's socket table instead of connecting: a probe connection would be
    # extra (and a varying number of) work inside the measured process.
    local hex
    hex=$(printf '0100007F:%04X' "$1")
    awk -v a="$hex" '$2 == a && $4 == "0A" { f = 1 } END { exit !f }' /proc/net/tcp
}

ir_of() {  # ir_of FILE: the program's total Ir from one callgrind output file
    # The "events:" line names the columns; the "summary:" line has the program totals in
    # that order (what callgrind_annotate prints as PROGRAM TOTALS, so the two can be
    # compared); "totals:" (the sum of the cost lines, a few hundred Ir more) is the
    # fallback for files without a summary. Take the Ir column.
    awk '
        /^events:/ { for (i = 2; i <= NF; i++) if ($i == "Ir") col = i - 1 }
        /^summary:/ && col { s = $(col + 1) }
        /^totals:/ && col { t = $(col + 1) }
        END { v = (s != "") ? s : t; if (v == "") exit 1; print v }
    ' "$1"
}

mem_ir_of() {  # mem_ir_of FILE: the Ir spent inside memcpy/memmove/memset (self cost)
    # valgrind executes a `rep movsb` / `rep stosb` one byte per counted instruction, so
    # the copies glibc makes that way (large moves of futures, say) count ~30x what they
    # cost on the CPU. Reported apart, so a change that only moves fewer bytes is not
    # taken for a large CPU gain.
    callgrind_annotate --inclusive=no --auto=no --threshold=100 "$1" 2>/dev/null | awk '
        /mem(cpy|move|set)/ { v = $1; gsub(",", "", v); if (v ~ /^[0-9]+$/) s += v }
        END { print s + 0 }
    '
}

RUN_IR=0
RUN_MEM_IR=0
run_once() {  # run_once NAME REQUESTS: sets RUN_IR to the total Ir of the run
    # (not a $(...) function: in a subshell the PIDS bookkeeping would not reach cleanup)
    local name=$1 n=$2 dir=$TMP/$1 pid cpid i f v
    mkdir -p "$dir"
    log "$name: rampart under callgrind, $n requests"
    valgrind --tool=callgrind --trace-children=no --callgrind-out-file="$dir/cg.%p" \
        "$RAMPART_BIN" run -c "$TMP/rampart/rampart.toml" >"$dir/rampart.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    for (( i = 0; i < STARTUP_SECS * 10; i++ )); do
        listening "$RAMPART_PORT" && break
        proc_alive "$pid" || die "$name: rampart exited during startup (log: $dir/rampart.log)"
        sleep 0.1
    done
    listening "$RAMPART_PORT" || die "$name: rampart not listening on $HOST:$RAMPART_PORT within ${STARTUP_SECS}s"
    # In the background + wait: bash runs the INT/TERM traps (cleanup) only after a foreground
    # command ends, but interrupts `wait` at once.
    python3 "$TMP/client.py" "$HOST" "$RAMPART_PORT" "$n" "$REQ_PATH" >"$dir/client.log" 2>&1 &
    cpid=$!
    PIDS+=("$cpid")
    wait "$cpid" || die "$name: client failed: $(tail -n 1 "$dir/client.log")"
    unset 'PIDS[${#PIDS[@]}-1]'
    # SIGTERM: rampart drains (nothing in flight: the client closed) and exits 0; callgrind
    # writes its output at exit. A SIGKILL would lose the output, so wait generously.
    kill -TERM "$pid" 2>/dev/null || true
    wait_exit "$pid" "$STOP_SECS" || die "$name: rampart did not exit within ${STOP_SECS}s of SIGTERM"
    wait "$pid" || log "$name: WARNING: rampart exited with status $? (log: $dir/rampart.log)"
    unset 'PIDS[${#PIDS[@]}-1]'
    # One file per process (threads are not split by default); sum in case there are several.
    RUN_IR=0
    RUN_MEM_IR=0
    for f in "$dir"/cg.*; do
        [[ -e $f ]] || die "$name: no callgrind output in $dir"
        v=$(ir_of "$f") || die "$name: no Ir total in $f"
        [[ $v =~ ^[0-9]+$ ]] || die "$name: bad Ir total '$v' in $f"
        RUN_IR=$(( RUN_IR + v ))
        RUN_MEM_IR=$(( RUN_MEM_IR + $(mem_ir_of "$f") ))
    done
}

# ---------------------------------------------------------------- run
log "starting origin nginx on $HOST:$ORIGIN_PORT"
"$NGINX" -p "$TMP/origin" -c "$TMP/origin/nginx.conf" -g 'daemon off;' >"$TMP/origin/stdout.log" 2>&1 &
ORIGIN_PID=$!
PIDS+=("$ORIGIN_PID")
for (( i = 0; i < 100; i++ )); do
    listening "$ORIGIN_PORT" && break
    proc_alive "$ORIGIN_PID" || die "origin nginx exited during startup"
    sleep 0.1
done
listening "$ORIGIN_PORT" || die "origin nginx not listening on $HOST:$ORIGIN_PORT within 10 s"

log "binary: $RAMPART_BIN"
run_once run1 "$BASE"
IR1=$RUN_IR
MEM1=$RUN_MEM_IR
run_once run2 $(( BASE + REQUESTS ))
IR2=$RUN_IR
MEM2=$RUN_MEM_IR
DIFF=$(( IR2 - IR1 ))
MEM_DIFF=$(( MEM2 - MEM1 ))
echo "run 1: $BASE requests, total Ir $IR1"
echo "run 2: $(( BASE + REQUESTS )) requests, total Ir $IR2"
(( DIFF > 0 )) || die "run 2 did not execute more instructions than run 1 ($IR2 <= $IR1)"
echo "of which memcpy/memmove/memset per request: $(( (MEM_DIFF + REQUESTS / 2) / REQUESTS ))"
echo "without them per request: $(( (DIFF - MEM_DIFF + REQUESTS / 2) / REQUESTS ))"
echo "instructions per request: $(( (DIFF + REQUESTS / 2) / REQUESTS ))"
