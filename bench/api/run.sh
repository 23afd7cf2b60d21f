#!/bin/sh
# The control API benchmark (see BENCHMARKS.md, "Control API"):
#   GET /health over TCP under wrk, with pidzero idle and while 4 daemons log at
#   full speed, and how much the log throughput drops meanwhile.
#
# Usage: bench/api/run.sh [SECONDS [CONNECTIONS]]   (defaults: 10 s, 16 connections)
#   Then the same connections at a fixed rate (bench/api/load.rs), PIDZERO_BENCH_RATE
#   requests/s in all (20000, the target's figure), with the log drop it causes.
# Env:   PIDZERO_BENCH_PORT (19090), PIDZERO_BENCH_PIN (1: pidzero on CPU 0, the
#        generators and wrk on CPU 1; 0: no pinning). wrk runs at nice -10 so that
#        the generators do not starve it.
#
# Log throughput is read from pidzero's own counter (the sum of
# pidzero_log_records_total over the 4 daemons, two /metrics requests per window):
# a window without load, a window with wrk running, and a second window without
# load; "unloaded" is the mean of the two unloaded windows. Records go to
# pidzero's stdout sink (JSON), redirected to /dev/null.
set -eu
cd "$(dirname "$0")/../.."
SECS=${1:-10}
CONNS=${2:-16}
PORT=${PIDZERO_BENCH_PORT:-19090}
PIN=${PIDZERO_BENCH_PIN:-1}

if ! command -v wrk >/dev/null 2>&1; then
    apt-get install -y wrk >/dev/null
fi
cargo build --release --quiet
mkdir -p target/bench
rustc -O --edition 2021 -o target/bench/gen bench/gen.rs
rustc -O --edition 2021 -o target/bench/load bench/api/load.rs
RATE=${PIDZERO_BENCH_RATE:-20000}
LOAD=$(pwd)/target/bench/load
PZ=$(pwd)/target/release/pidzero
GEN=$(pwd)/target/bench/gen

if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ]; then
    PZ_RUN="taskset -c 0"
    LOAD_RUN="taskset -c 1"
else
    PZ_RUN=""
    LOAD_RUN=""
fi

DIR=$(mktemp -d /dev/shm/pidzero-api-bench.XXXXXX)
PZ_PID=""
cleanup() {
    if [ -n "$PZ_PID" ]; then kill -TERM "$PZ_PID" 2>/dev/null || true; wait "$PZ_PID" 2>/dev/null || true; fi
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

now() { date +%s.%N; }
records() {
    curl -sf "http://127.0.0.1:$PORT/metrics" |
        awk '/^pidzero_log_records_total\{/ { s += $2 } END { printf "%d\n", s }'
}
wait_up() {
    i=0
    until curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 500 ] || { echo "pidzero did not answer on port $PORT" >&2; exit 1; }
        sleep 0.01
    done
}
start_pidzero() { # daemons.json text
    mkdir -p "$DIR/cfg"
    printf '%s\n' "$1" >"$DIR/cfg/daemons.json"
    printf '{"api": {"listen": "127.0.0.1:%s", "socket": null}, "log": {"format": "json"}}\n' \
        "$PORT" >"$DIR/cfg/config.json"
    $PZ_RUN "$PZ" --config-dir "$DIR/cfg" >/dev/null 2>"$DIR/stderr" &
    PZ_PID=$!
    wait_up
}
stop_pidzero() {
    kill -TERM "$PZ_PID"
    wait "$PZ_PID" || true
    PZ_PID=""
}
run_wrk() { # output file
    # wrk shares its core with the 4 generators: at normal priority it gets a
    # fifth of it, and its own wait for the CPU shows up as request latency
    # (p99 of 10-15 ms against 0.6-1.1 ms with this). Needs root; elsewhere
    # nice warns and runs wrk at normal priority.
    nice -n -10 $LOAD_RUN wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "http://127.0.0.1:$PORT/health" >"$1"
}
wrk_summary() { # wrk output file -> "REQ_PER_S P99"
    awk '/^Requests\/sec:/ { r = $2 } $1 == "99%" { p = $2 } END { print r, p }' "$1"
}
window() { # seconds -> lines/s over the window
    r0=$(records); t0=$(now)
    sleep "$1"
    r1=$(records); t1=$(now)
    echo "$r0 $r1 $t0 $t1" | awk '{ printf "%.0f\n", ($2 - $1) / ($4 - $3) }'
}

echo "== $(date -u) | $(nproc) CPUs | $(uname -r) | pin=$PIN | wrk -t1 -c$CONNS -d${SECS}s"

# 1. /health with pidzero idle (one sleeping daemon).
start_pidzero '[{"name": "idle", "command": ["sleep", "100000"]}]'
run_wrk "$DIR/wrk-idle.txt"
stop_pidzero
set -- $(wrk_summary "$DIR/wrk-idle.txt")
IDLE_RPS=$1 IDLE_P99=$2
echo "-- wrk, pidzero idle:"; cat "$DIR/wrk-idle.txt"

# 2. The same while 4 daemons log at full speed.
LOGGERS="["
for i in 0 1 2 3; do
    [ $i = 0 ] || LOGGERS="$LOGGERS,"
    LOGGERS="$LOGGERS{\"name\": \"g$i\", \"command\": \"$LOAD_RUN $GEN g$i 1000000000000\"}"
done
LOGGERS="$LOGGERS]"
start_pidzero "$LOGGERS"
sleep 1 # let the generators get going
BEFORE=$(window "$SECS")
r0=$(records); t0=$(now)
run_wrk "$DIR/wrk-busy.txt"
r1=$(records); t1=$(now)
LOADED=$(echo "$r0 $r1 $t0 $t1" | awk '{ printf "%.0f\n", ($2 - $1) / ($4 - $3) }')
AFTER=$(window "$SECS")
# 3. The same load at a fixed rate (the target's), with its own windows around it.
r0=$(records); t0=$(now)
nice -n -10 $LOAD_RUN "$LOAD" "127.0.0.1:$PORT" "$RATE" "$CONNS" "$SECS" >"$DIR/load.txt"
r1=$(records); t1=$(now)
FIXED=$(echo "$r0 $r1 $t0 $t1" | awk '{ printf "%.0f\n", ($2 - $1) / ($4 - $3) }')
AFTER2=$(window "$SECS")
stop_pidzero
set -- $(wrk_summary "$DIR/wrk-busy.txt")
BUSY_RPS=$1 BUSY_P99=$2
echo "-- wrk, 4 daemons logging at full speed:"; cat "$DIR/wrk-busy.txt"
if [ -s "$DIR/stderr" ]; then echo "-- pidzero stderr:"; cat "$DIR/stderr"; fi

echo "== summary"
echo "GET /health, pidzero idle:     $IDLE_RPS req/s, p99 $IDLE_P99"
echo "GET /health, 4 daemons logging: $BUSY_RPS req/s, p99 $BUSY_P99"
echo "$BEFORE $LOADED $AFTER" | awk '{
    base = ($1 + $3) / 2
    printf "log throughput: %.2f M lines/s before, %.2f M during wrk, %.2f M after; drop %.1f %%\n",
        $1 / 1e6, $2 / 1e6, $3 / 1e6, (base - $2) * 100 / base
}'
echo "GET /health at a fixed rate ($RATE req/s asked, $CONNS connections): $(cat "$DIR/load.txt")"
echo "$AFTER $FIXED $AFTER2" | awk '{
    base = ($1 + $3) / 2
    printf "log throughput: %.2f M lines/s before, %.2f M during the fixed rate, %.2f M after; drop %.1f %%\n",
        $1 / 1e6, $2 / 1e6, $3 / 1e6, (base - $2) * 100 / base
}'
