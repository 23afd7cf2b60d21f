#!/usr/bin/env bash
# The soak: pidzero as PID 1 of a PID namespace for SOAK_SECS (default 600)
# under everything at once, then a check that nothing grew and nothing was lost.
#
#   bench/soak.sh            # run as root (unshare); not part of CI
#   SOAK_SECS=60 bench/soak.sh
#
# Load, all at the same time:
# - crash loops: daemons that exit at once with `restart: always`
#   (`restart_delay` 0, the floor), `on-failure` and `max_restarts`;
# - orphans: a daemon that leaves a background child behind every 50 ms,
#   which pidzero adopts and must reap;
# - a log storm: a daemon that prints numbered lines ("storm N") as fast as
#   the shell can in bursts, to the file sink;
# - API load: clients asking `status`, `logs storm -n 1000` and `/metrics`
#   in a loop, some of them closing the connection before the answer ends.
#
# It prints, at the start (after a warm-up) and at the end: pidzero's open
# descriptors, RSS, zombies in the namespace, records in (the storm's last
# number) and records out (storm records in the file). After a graceful stop
# it checks that the storm's records are exactly 1..N, each once, in order.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECS=${SOAK_SECS:-600}
W=${PIDZERO_SOAK_DIR:-/dev/shm/pidzero-soak}

[ "$(id -u)" = 0 ] || { echo "soak.sh: needs root (unshare --pid)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "soak.sh: needs python3" >&2; exit 1; }

cargo build --release --quiet
PZ=$ROOT/target/release/pidzero

rm -rf "$W"
mkdir -p "$W"
SOCK=$W/pidzero.sock
cat >"$W/config.json" <<EOF
{
  "log": { "log_to_stdout": false, "log_to_file": true, "file_path": "$W/pidzero.log",
           "max_file_size": 0 },
  "api": { "socket": "$SOCK" },
  "shutdown_timeout": 5
}
EOF
cat >"$W/daemons.json" <<'EOF'
[
  { "name": "keeper", "vital": true, "command": ["sleep", "100000"] },
  { "name": "crash-always", "command": ["sh", "-c", "exit 3"], "restart": "always", "restart_delay": 0 },
  { "name": "crash-failure", "command": ["sh", "-c", "exit 1"], "restart": "on-failure", "restart_delay": 0.2 },
  { "name": "crash-max", "command": ["sh", "-c", "exit 2"], "restart": "always", "restart_delay": 0,
    "max_restarts": 50 },
  { "name": "orphans", "command": "while :; do (sleep 0.2 &); sleep 0.05; done" },
  { "name": "storm",
    "command": "i=0; while :; do j=0; while [ $j -lt 500 ]; do i=$((i+1)); j=$((j+1)); echo \"storm $i\"; done; sleep 0.05; done" }
]
EOF

unshare --pid --fork --mount-proc "$PZ" --config-dir "$W" >"$W/stdout" 2>"$W/stderr" &
UNSHARE=$!
PID=
for _ in $(seq 100); do
    PID=$(pgrep -P "$UNSHARE" || true)
    [ -n "$PID" ] && [ -S "$SOCK" ] && break
    sleep 0.1
done
[ -n "$PID" ] || { echo "soak.sh: pidzero did not start" >&2; cat "$W/stderr" >&2; exit 1; }

client() { "$PZ" --socket "$SOCK" "$@"; }

# API load: whole answers, and answers abandoned after 100 bytes.
api_load() {
    local end=$((SECONDS + SECS + 5))
    while [ $SECONDS -lt $end ]; do
        client status >/dev/null 2>&1 || true
        client logs storm -n 1000 >/dev/null 2>&1 || true
        python3 - "$SOCK" <<'PY' || true
import socket, sys
for path in ("/daemons/storm/logs?lines=1000", "/metrics"):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    s.recv(100)
    s.close()
PY
    done
}
api_load &
LOAD=$!

sample() {
    local fds rss zombies last out
    fds=$(find /proc/"$PID"/fd -mindepth 1 -maxdepth 1 | wc -l)
    rss=$(awk '/VmRSS/ {print $2 " " $3}' /proc/"$PID"/status)
    # Zombies are the namespace's processes in state Z (pidzero's children).
    zombies=$(ps -o stat= --ppid "$PID" | grep -c '^Z' || true)
    # One pass over the file, so both figures describe the same moment.
    read -r out last < <(grep -o '"line":"storm [0-9]*"' "$W/pidzero.log" |
        awk '{ n = $2 } END { gsub(/[^0-9]/, "", n); print NR, (n == "" ? 0 : n) }')
    printf '%-6s t=%4ss fds=%s rss=%s zombies=%s storm_last=%s storm_records=%s\n' \
        "$1" "$SECONDS" "$fds" "$rss" "$zombies" "$last" "$out"
}

SECONDS=0
sleep 10
sample start
while [ $SECONDS -lt "$SECS" ]; do
    sleep 60
    [ -d /proc/"$PID" ] || { echo "soak.sh: pidzero died" >&2; cat "$W/stderr" >&2; exit 1; }
    sample "$([ $SECONDS -ge "$SECS" ] && echo end || echo mid)"
done
kill "$LOAD" 2>/dev/null || true
wait "$LOAD" 2>/dev/null || true

metrics=$(python3 - "$SOCK" <<'PY' || true
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while chunk := s.recv(65536):
    data += chunk
print(data.decode(errors="replace"))
PY
)
kill -TERM "$PID"
status=0
wait "$UNSHARE" || status=$?
echo "exit status after SIGTERM: $status"

python3 - "$W/pidzero.log" <<'PY'
import json, sys
nums = []
with open(sys.argv[1], "rb") as f:
    for raw in f:
        r = json.loads(raw)
        if r.get("source") == "storm":
            nums.append(int(r["line"].split()[1]))
ok = nums == list(range(1, len(nums) + 1))
print(f"storm records out: {len(nums)}, last number in: {nums[-1] if nums else 0}, "
      f"exactly 1..N in order: {ok}")
sys.exit(0 if ok else 1)
PY
echo "$metrics" | grep -E '^pidzero_(reaped_total|daemon_restarts_total)' || true
[ "$status" = 0 ] || { echo "soak.sh: pidzero exited $status" >&2; exit 1; }
