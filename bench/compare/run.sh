#!/usr/bin/env bash
# pidzero against tini, dumb-init and supervisord: idle RSS and wake-ups,
# start/stop of 100 daemons, orphan reaping, signal forwarding latency, size.
# See the section "Against tini, dumb-init and supervisord" of BENCHMARKS.md.
#
#   bench/compare/run.sh            # RUNS=5 by default; run as root (unshare)
#
# Environment: RUNS (runs per figure, default 5), SV_ORPHAN_RUNS (runs of the
# slow supervisord orphan cases, default 1), PIDZERO_COMPARE_DIR (scratch
# directory, default /dev/shm/pidzero-compare).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
RUNS=${RUNS:-5}
SV_ORPHAN_RUNS=${SV_ORPHAN_RUNS:-1}
W=${PIDZERO_COMPARE_DIR:-/dev/shm/pidzero-compare}
IDLE_SECS=5
SIGNALS=50
ORPHANS=2000

[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (unshare --pid, apt-get)" >&2; exit 1; }

# --- tools ------------------------------------------------------------------
need=()
command -v tini >/dev/null || need+=(tini)
command -v dumb-init >/dev/null || need+=(dumb-init)
command -v supervisord >/dev/null || need+=(supervisor)
command -v unshare >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The Debian package may have started a system supervisord; it is not ours.

cargo build --release --quiet
mkdir -p target/compare
rustc -O --edition 2021 -o target/compare/cmp bench/compare/cmp.rs
PZ=$ROOT/target/release/pidzero
C=$ROOT/target/compare/cmp
TINI=$(command -v tini)
DUMB=$(command -v dumb-init)
SUPD=$(command -v supervisord)
U=(unshare --pid --fork --mount-proc)

# --- configurations -----------------------------------------------------------
rm -rf "$W"
mkdir -p "$W/empty" "$W/sv"
RES=$W/results.txt
: >"$RES"

# A shell that starts N `sleep 100000` and, on SIGTERM, stops them and waits:
# the stand-in for "N daemons" under tini and dumb-init, which run one child.
cat >"$W/sleeps.sh" <<'EOF'
trap 'kill $pids 2>/dev/null; wait; exit 143' TERM
pids=
i=0
while [ "$i" -lt "$1" ]; do sleep 100000 & pids="$pids $!"; i=$((i + 1)); done
wait
EOF

pz_dir() { # NAME N: a pidzero config dir with N sleep daemons
    local d=$W/$1 i
    mkdir -p "$d"
    printf '{"api": {"socket": "%s/pidzero.sock"}}\n' "$d" >"$d/config.json"
    {
        echo "["
        for ((i = 1; i <= $2; i++)); do
            printf '  {"name": "s%d", "command": ["sleep", "100000"]}%s\n' "$i" "$([ "$i" -lt "$2" ] && echo ,)"
        done
        echo "]"
    } >"$d/daemons.json"
}
pz_dir pz10 10
pz_dir pz100 100
mkdir -p "$W/pzsig"
printf '{"api": {"socket": "%s/pzsig/pidzero.sock"}}\n' "$W" >"$W/pzsig/config.json"
printf '[{"name": "recv", "command": ["%s", "recv", "%s/sig.txt"]}]\n' "$C" "$W" >"$W/pzsig/daemons.json"

sv_conf() { # NAME: header of a supervisord config (with its control socket, as usual)
    cat <<EOF
[supervisord]
nodaemon=true
user=root
logfile=$W/sv/$1.log
pidfile=$W/sv/$1.pid
childlogdir=$W/sv
[unix_http_server]
file=$W/sv/$1.sock
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
EOF
}
for n in 10 100; do
    {
        sv_conf "sv$n"
        for ((i = 1; i <= n; i++)); do printf '[program:s%d]\ncommand=sleep 100000\n' "$i"; done
    } >"$W/sv$n.conf"
done
for mode in stream burst; do
    {
        sv_conf "svorph-$mode"
        printf '[program:orphans]\ncommand=%s orphans %d %s %s/orph.txt\nautorestart=false\nstartsecs=0\n' \
            "$C" "$ORPHANS" "$mode" "$W"
    } >"$W/svorph-$mode.conf"
done

# --- measurements ---------------------------------------------------------------
# record METRIC INIT OUTPUT_OF_cmp: appends "metric.key init value" per key=value
record() {
    local kv
    for kv in $3; do echo "$1.${kv%%=*} $2 ${kv#*=}" >>"$RES"; done
}

# measure METRIC INIT CMP_ARGS... -- INIT_CMD...: one run; a failed run is reported
# and left out of the medians (the report shows how many runs each figure has).
LOG=$W/init.log
measure() {
    local m=$1 i=$2 out
    shift 2
    if out=$("$C" "$@"); then record "$m" "$i" "$out"; else echo "run.sh: $m $i failed (see $LOG)" >&2; fi
}
idle() { measure idle "$1" idle 10 $IDLE_SECS "$LOG" -- "${U[@]}" "${@:2}"; }
startstop() { measure ss "$1" startstop 100 "$LOG" -- "${U[@]}" "${@:2}"; }
sig() { measure sig "$1" signal $SIGNALS "$W/sig.txt" "$LOG" -- "${U[@]}" "${@:2}"; }
orph() { measure "orph_$2" "$1" orphanrun "$W/orph.txt" "$LOG" -- "${U[@]}" "${@:3}"; }

for ((run = 1; run <= RUNS; run++)); do
    echo "run $run/$RUNS ..." >&2
    idle pidzero "$PZ" --config-dir "$W/pz10"
    idle tini "$TINI" -- sh "$W/sleeps.sh" 10
    idle dumb-init "$DUMB" sh "$W/sleeps.sh" 10
    idle supervisord "$SUPD" -c "$W/sv10.conf"

    startstop pidzero "$PZ" --config-dir "$W/pz100"
    startstop tini "$TINI" -- sh "$W/sleeps.sh" 100
    startstop dumb-init "$DUMB" sh "$W/sleeps.sh" 100
    startstop supervisord "$SUPD" -c "$W/sv100.conf"

    sig pidzero "$PZ" --config-dir "$W/pzsig"
    sig pidzero-- "$PZ" --config-dir "$W/empty" -- "$C" recv "$W/sig.txt"
    sig tini "$TINI" -- "$C" recv "$W/sig.txt"
    sig dumb-init "$DUMB" "$C" recv "$W/sig.txt"

    for mode in stream burst; do
        orph pidzero $mode "$PZ" --config-dir "$W/empty" -- "$C" orphans $ORPHANS $mode "$W/orph.txt"
        orph tini $mode "$TINI" -- "$C" orphans $ORPHANS $mode "$W/orph.txt"
        orph dumb-init $mode "$DUMB" "$C" orphans $ORPHANS $mode "$W/orph.txt"
        if [ "$run" -le "$SV_ORPHAN_RUNS" ]; then
            orph supervisord $mode "$SUPD" -c "$W/svorph-$mode.conf"
        fi
    done
done

# --- sizes ----------------------------------------------------------------------
fsize() { stat -L -c %s "$1"; }
record size pidzero "bytes=$(fsize "$PZ")"
record size tini "bytes=$(fsize "$TINI")"
record size dumb-init "bytes=$(fsize "$DUMB")"
sv_pkg=$(dpkg -L supervisor | while read -r f; do if [ -f "$f" ] && [ ! -L "$f" ]; then stat -c %s "$f"; fi; done |
    awk '{s += $1} END {print s + 0}')
py=$(readlink -f "$(head -1 "$SUPD" | sed 's/^#! *//; s/ .*//')") # the interpreter supervisord runs on
py_bin=$(fsize "$py")
py_lib=$(du -sb "/usr/lib/$(basename "$py")" | cut -f1)
record size supervisord "bytes=$((sv_pkg + py_bin + py_lib))"

# --- report ----------------------------------------------------------------------
med() { # METRIC INIT -> median (or "-")
    awk -v m="$1" -v i="$2" '$1 == m && $2 == i {print $3}' "$RES" | sort -g |
        awk '{v[NR] = $1} END {if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
nruns() { awk -v m="$1" -v i="$2" '$1 == m && $2 == i' "$RES" | wc -l; }
fmt() { # VALUE SCALE DECIMALS
    if [ "$1" = - ]; then echo -; else awk -v v="$1" -v s="$2" -v d="$3" 'BEGIN {printf "%.*f", d, v * s}'; fi
}
ratio() {
    if [ "$1" = - ] || [ "$2" = - ] || awk -v b="$2" 'BEGIN {exit !(b == 0)}'; then echo -; else awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; fi
}
row() { # LABEL METRIC SCALE DECIMALS [PIDZERO_KEY]
    local pk=${5:-pidzero} p t d s
    p=$(med "$2" "$pk")
    t=$(med "$2" tini)
    d=$(med "$2" dumb-init)
    s=$(med "$2" supervisord)
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$1" \
        "$(fmt "$p" "$3" "$4")" "$(fmt "$t" "$3" "$4")" "$(fmt "$d" "$3" "$4")" "$(fmt "$s" "$3" "$4")" \
        "$(ratio "$p" "$t")" "$(ratio "$p" "$d")" "$(ratio "$p" "$s")"
}

echo
echo "pidzero $(git rev-parse --short HEAD), $(date -u), nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), Linux $(uname -r)"
echo "medians of $RUNS runs (supervisord orphans: $SV_ORPHAN_RUNS); ratios are pidzero / baseline (lower is better everywhere)"
echo
echo "| measure | pidzero | tini | dumb-init | supervisord | ÷ tini | ÷ dumb-init | ÷ supervisord |"
echo "|---|---|---|---|---|---|---|---|"
row "idle RSS of the init, 10 daemons (KiB)" idle.rss_kib 1 0
row "idle wake-ups of the init in ${IDLE_SECS} s, 10 daemons" idle.wakeups 1 0
row "start 100 daemons: launch → 100 running (ms)" ss.start_s 1000 1
row "stop 100 daemons: SIGTERM → exit (ms)" ss.stop_s 1000 1
row "signal forwarding, median of $SIGNALS (µs), pidzero daemon" sig.median_us 1 0
row "signal forwarding, median of $SIGNALS (µs), pidzero -- CMD" sig.median_us 1 0 pidzero--
row "$ORPHANS orphans exiting as forked: first fork → none left (ms)" orph_stream.reap_s 1000 0
row "$ORPHANS orphans exiting at once: release → none left (ms)" orph_burst.reap_s 1000 0
row "binary size (KiB)" size.bytes 0.0009765625 0
echo
echo "threads of the init while idle: pidzero $(med idle.threads pidzero), tini $(med idle.threads tini)," \
    "dumb-init $(med idle.threads dumb-init), supervisord $(med idle.threads supervisord)"
echo "signal forwarding, worst of the per-run maxima (µs): pidzero $(awk '$1=="sig.max_us" && $2=="pidzero"{print $3}' "$RES" | sort -g | tail -1)," \
    "pidzero -- $(awk '$1=="sig.max_us" && $2=="pidzero--"{print $3}' "$RES" | sort -g | tail -1)," \
    "tini $(awk '$1=="sig.max_us" && $2=="tini"{print $3}' "$RES" | sort -g | tail -1)," \
    "dumb-init $(awk '$1=="sig.max_us" && $2=="dumb-init"{print $3}' "$RES" | sort -g | tail -1)"
echo "signals received, fewest in a run (of $SIGNALS): $(for i in pidzero pidzero-- tini dumb-init; do
    printf '%s %s  ' "$i" "$(awk -v i=$i '$1 == "sig.received" && $2 == i {print $3}' "$RES" | sort -g | head -1)"; done)"
echo "orphan fork phase (ms, median): $(for i in pidzero tini dumb-init supervisord; do printf '%s %s  ' "$i" "$(fmt "$(med orph_stream.fork_s $i)" 1000 0)"; done)"
echo "orphans left at the end: $(awk '$1 ~ /left$/ && $3 != 0 {printf "%s %s=%s ", $1, $2, $3; n++} END {if (!n) print "none"}' "$RES")"
echo "supervisord size: supervisor package files $((sv_pkg / 1024)) KiB + $py $((py_bin / 1024)) KiB" \
    "+ /usr/lib/$(basename "$py") $((py_lib / 1024)) KiB (python3-pkg-resources and shared libraries not counted)"
echo "runs per figure (pidzero/tini/dumb-init/supervisord): $(for k in idle.rss_kib ss.start_s sig.median_us orph_stream.reap_s orph_burst.reap_s; do
    printf '%s ' "$k $(nruns $k pidzero)/$(nruns $k tini)/$(nruns $k dumb-init)/$(nruns $k supervisord)"; done)"
echo "raw results: $RES"
