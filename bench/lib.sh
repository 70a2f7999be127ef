# Shared by bench/run.sh and bench/callgrind.sh (sourced, not run): the
# background processes a benchmark starts and their cleanup on any exit,
# error or signal. The sourcing script has set TMP (its temp dir), KEEP_TMP,
# CLEANUP_LOGS (glob patterns of logs whose last lines are shown when it
# fails) and defined log().

declare -a PIDS=()  # every background process started, in start order

proc_alive() {  # proc_alive PID: exists and has not exited
    # kill -0 is not enough: an exited child not waited for yet is a zombie,
    # which kill -0 still reports as alive.
    local st
    [[ -n ${1:-} ]] || return 1
    st=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $st && $st != Z ]]
}

wait_exit() {  # wait_exit PID SECONDS: true once PID has exited, false if it is still alive then
    local i
    for (( i = 0; i < $2 * 10; i++ )); do
        proc_alive "$1" || return 0
        sleep 0.1
    done
    ! proc_alive "$1"
}

stop_pid() {  # stop_pid PID [SECONDS]: TERM, wait (default 5 s), then KILL, its children too
    local pid=$1 secs=${2:-5} kids k
    if proc_alive "$pid"; then
        kids=$(pgrep -P "$pid" 2>/dev/null || true)
        kill -TERM "$pid" 2>/dev/null || true
        if ! wait_exit "$pid" "$secs"; then
            log "pid $pid did not stop on SIGTERM within ${secs}s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        for k in $kids; do
            wait_exit "$k" 3 || kill -KILL "$k" 2>/dev/null || true
        done
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$? i pat f
    trap - EXIT INT TERM
    for (( i = ${#PIDS[@]} - 1; i >= 0; i-- )); do
        stop_pid "${PIDS[i]}" 10
    done
    if (( rc != 0 && rc != 130 && rc != 143 )); then
        for pat in "${CLEANUP_LOGS[@]}"; do
            for f in $pat; do
                if [[ -s $f ]]; then
                    echo "----- last lines of $f" >&2
                    tail -n 20 "$f" >&2
                fi
            done
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

# The rampart config both scripts measure (bench/run.sh's "small" scenarios,
# the equivalent of its nginx config; bench/callgrind.sh counts the same
# work): rampart_config KEEPALIVE, on stdout. Uses HOST, ADMIN_PORT,
# ORIGIN_PORT and RAMPART_PORT.
# small-guarded: one user, apr1 (`htpasswd -m`), which nginx verifies on
# every request and rampart once per minute. Password "bench".
BENCH_HTPASSWD_LINE='bench:$apr1$saltsalt$xfteRnaTWoICLCllpGzqw/'
BENCH_AUTHORIZATION='Basic YmVuY2g6YmVuY2g='

rampart_config() {
    printf '%s\n' "$BENCH_HTPASSWD_LINE" >"$TMP/htpasswd"
    mkdir -p "$TMP/tryfiles"
    cat <<EOF
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
keepalive = $1

[rate_limits.bench]               # small-limited: never rejects, measures the check
rate = "1000000r/s"

[auth.bench]                      # small-guarded: allow + auth + conn_limit that all admit
htpasswd = "$TMP/htpasswd"
realm = "bench"

[conn_limits.bench]
max = 65535

[[servers]]
name = "bench"
listen = ["$HOST:$RAMPART_PORT"]
security_headers = false          # nginx adds none either

[servers.compression]             # json-gzip; nginx: gzip_comp_level 3, gzip_types application/json
min_length = 1024
types = ["application/json"]

[[servers.routes]]
prefix = "/rl/"
upstream = "origin"
rate_limit = { zone = "bench", burst = 100000, nodelay = true }

[[servers.routes]]
prefix = "/tf/"                   # tryfiles-*: files first (none there), then the app
upstream = "origin"
try_files = { root = "$TMP/tryfiles" }

[[servers.routes]]
prefix = "/guard/"
upstream = "origin"
allow = ["$HOST"]
auth = "bench"
conn_limit = "bench"

[[servers.routes]]
prefix = "/"
upstream = "origin"
EOF
}
