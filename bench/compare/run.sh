#!/usr/bin/env bash
# pidzero against every init Debian packages: tini, tini-static, dumb-init,
# catatonit, s6 (s6-svscan) and supervisord. One invocation measures every
# row of the comparison: idle RSS and wake-ups with 10 daemons (control API
# on), start and stop of 100 daemons, the scaling series (start, stop, RSS at
# 100, 300 and 1,000 daemons, hence the RSS per extra daemon), SIGTERM -> exit
# with one child, signal forwarding latency, orphan reaping, binary sizes
# (pidzero dynamic and static). Each row names its best anchor (the best
# figure among the other inits) and pidzero's ratio to it.
# See the section "Against tini, dumb-init and supervisord" of BENCHMARKS.md.
#
#   bench/compare/run.sh            # RUNS=5 by default; run as root (unshare)
#
# Environment: RUNS (runs per figure, default 5), SCALE (daemon counts of the
# scaling series, default "100 300 1000"), SCALE_RUNS (runs of the scaling
# series above 100 daemons, default 3), SV_ORPHAN_RUNS (runs of the slow
# supervisord orphan cases, default 1), PIDZERO_COMPARE_DIR (scratch
# directory, default /dev/shm/pidzero-compare), PIDZERO_STATIC=0 to skip the
# static build, REPORT_ONLY=1 to print the report of the last results again.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
RUNS=${RUNS:-5}
SCALE=${SCALE:-100 300 1000}
SCALE_RUNS=${SCALE_RUNS:-3}
SV_ORPHAN_RUNS=${SV_ORPHAN_RUNS:-1}
W=${PIDZERO_COMPARE_DIR:-/dev/shm/pidzero-compare}
IDLE_SECS=5
SIGNALS=50
ORPHANS=2000

[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (unshare --pid, apt-get)" >&2; exit 1; }

# --- tools ------------------------------------------------------------------
need=()
command -v tini >/dev/null || need+=(tini)
command -v tini-static >/dev/null || need+=(tini)
command -v dumb-init >/dev/null || need+=(dumb-init)
command -v catatonit >/dev/null || need+=(catatonit)
command -v s6-svscan >/dev/null || need+=(s6)
command -v supervisord >/dev/null || need+=(supervisor)
command -v unshare >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The Debian package may have started a system supervisord; it is not ours.

TRIPLE=x86_64-unknown-linux-gnu
[ -n "${REPORT_ONLY:-}" ] || cargo build --release --quiet
if [ "${PIDZERO_STATIC:-1}" != 0 ] && [ -z "${REPORT_ONLY:-}" ]; then
    # The static, stripped binary for scratch images (see README).
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --quiet --target $TRIPLE
fi
mkdir -p target/compare
rustc -O --edition 2021 -o target/compare/cmp bench/compare/cmp.rs
PZ=$ROOT/target/release/pidzero
PZS=$ROOT/target/$TRIPLE/release/pidzero
[ "${PIDZERO_STATIC:-1}" != 0 ] || PZS=
C=$ROOT/target/compare/cmp
TINI=$(command -v tini)
TINIS=$(command -v tini-static)
DUMB=$(command -v dumb-init)
CATA=$(command -v catatonit)
S6=$(command -v s6-svscan)
SUPD=$(command -v supervisord)
# Every init runs in its own PID namespace with the environment a container
# gets from Docker (PATH, HOSTNAME, HOME), not this shell's: each daemon
# carries a copy of its environment, so the shell's would inflate the figures
# per daemon of pidzero, supervisord and s6 alike.
U=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOSTNAME=bench HOME=/root
    unshare --pid --fork --mount-proc)

# --- configurations -----------------------------------------------------------
RES=$W/results.txt
if [ -n "${REPORT_ONLY:-}" ]; then
    # Print the report of the results already in $RES again (sizes and the
    # figures derived from the others are taken anew).
    [ -s "$RES" ] || { echo "run.sh: REPORT_ONLY: no $RES" >&2; exit 1; }
    grep -v -e '^size\.' -e '^perd\.' "$RES" >"$RES.new" || true
    mv "$RES.new" "$RES"
    RUNS=$(awk '$1 == "idle.rss_kib" && $2 == "pidzero"' "$RES" | wc -l)
else
    rm -rf "$W"
    mkdir -p "$W/empty" "$W/sv"
    : >"$RES"
fi
COUNTS=$(printf '%s\n' 1 10 100 $SCALE | sort -nu | tr '\n' ' ')

. "$ROOT/bench/compare/workloads.sh"
s6_dir() { # N: an s6 scan directory with N sleep services
    local d=$W/s6-$1 i
    for ((i = 1; i <= $1; i++)); do
        mkdir -p "$d/s$i"
        printf '#!/bin/sh\nexec sleep 100000\n' >"$d/s$i/run"
        chmod +x "$d/s$i/run"
    done
}
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
for n in $COUNTS; do
    pz_dir "pz$n" "$n"
    s6_dir "$n"
    {
        sv_conf "sv$n"
        for ((i = 1; i <= n; i++)); do printf '[program:s%d]\ncommand=sleep 100000\n' "$i"; done
    } >"$W/sv$n.conf"
done
mkdir -p "$W/pzsig"
printf '{"api": {"socket": "%s/pzsig/pidzero.sock"}}\n' "$W" >"$W/pzsig/config.json"
printf '[{"name": "recv", "command": ["%s", "recv", "%s/sig.txt"]}]\n' "$C" "$W" >"$W/pzsig/daemons.json"
for mode in stream burst; do
    {
        sv_conf "svorph-$mode"
        printf '[program:orphans]\ncommand=%s orphans %d %s %s/orph.txt\nautorestart=false\nstartsecs=0\n' \
            "$C" "$ORPHANS" "$mode" "$W"
    } >"$W/svorph-$mode.conf"
done

# The inits, in the order of the table's columns. pidzero-- is pidzero with a
# main command (`pidzero -- CMD`, like tini); the anchors are the other inits.
INITS=(pidzero pidzero-- pidzero-static tini tini-static dumb-init catatonit s6 supervisord)
ANCHORS=(tini tini-static dumb-init catatonit s6 supervisord)
declare -A BIN=([pidzero]=$PZ [pidzero--]=$PZ [pidzero-static]=$PZS [tini]=$TINI [tini-static]=$TINIS
    [dumb-init]=$DUMB [catatonit]=$CATA [s6]=$S6 [supervisord]=$SUPD)
# daemons INIT N: sets CMD to the command under which INIT runs N `sleep`
# daemons; empty when INIT has no such form (pidzero-- runs one command).
daemons() {
    local b=${BIN[$1]}
    CMD=()
    [ -n "$b" ] || return 0
    case $1 in
    pidzero | pidzero-static) CMD=("$b" --config-dir "$W/pz$2") ;;
    tini | tini-static | catatonit) CMD=("$b" -- sh "$W/sleeps.sh" "$2") ;;
    dumb-init) CMD=("$b" sh "$W/sleeps.sh" "$2") ;;
    s6) if [ "$2" -gt 400 ]; then CMD=("$b" -c $(($2 + 100)) "$W/s6-$2"); else CMD=("$b" "$W/s6-$2"); fi ;;
    supervisord) CMD=("$b" -c "$W/sv$2.conf") ;;
    esac
}
# child INIT PROGRAM ARGS...: sets CMD to INIT running PROGRAM as its one
# command; empty for the inits that have no such form.
child() {
    local i=$1 b=${BIN[$1]}
    shift
    CMD=()
    [ -n "$b" ] || return 0
    case $i in
    pidzero-- | pidzero-static) CMD=("$b" --config-dir "$W/empty" -- "$@") ;; # pidzero-static: orphans only
    tini | tini-static | catatonit) CMD=("$b" -- "$@") ;;
    dumb-init) CMD=("$b" "$@") ;;
    esac
}

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

[ -n "${REPORT_ONLY:-}" ] || for ((run = 1; run <= RUNS; run++)); do
    echo "run $run/$RUNS ..." >&2
    for i in "${INITS[@]}"; do
        daemons "$i" 10
        [ ${#CMD[@]} -eq 0 ] || measure idle "$i" idle 10 $IDLE_SECS "$LOG" -- "${U[@]}" "${CMD[@]}"
    done
    for n in $SCALE; do
        [ "$n" -le 100 ] || [ "$run" -le "$SCALE_RUNS" ] || continue
        for i in "${INITS[@]}"; do
            daemons "$i" "$n"
            [ ${#CMD[@]} -eq 0 ] || measure "ss$n" "$i" startstop "$n" "$LOG" -- "${U[@]}" "${CMD[@]}"
        done
    done
    # SIGTERM -> exit with one child: a daemon of daemons.json (pidzero, s6,
    # supervisord) or the init's one command (pidzero --, tini, dumb-init, catatonit).
    for i in "${INITS[@]}"; do
        case $i in pidzero | pidzero-static | s6 | supervisord) daemons "$i" 1 ;; *) child "$i" sleep 100000 ;; esac
        [ ${#CMD[@]} -eq 0 ] || measure ss1 "$i" startstop 1 "$LOG" -- "${U[@]}" "${CMD[@]}"
    done
    # SIGUSR1 forwarding; s6 and supervisord forward no signal to their services.
    for i in "${INITS[@]}"; do
        case $i in
        pidzero | pidzero-static) CMD=(); [ -z "${BIN[$i]}" ] || CMD=("${BIN[$i]}" --config-dir "$W/pzsig") ;;
        s6 | supervisord) continue ;;
        *) child "$i" "$C" recv "$W/sig.txt" ;;
        esac
        [ ${#CMD[@]} -eq 0 ] || measure sig "$i" signal $SIGNALS "$W/sig.txt" "$LOG" -- "${U[@]}" "${CMD[@]}"
    done
    for mode in stream burst; do
        for i in "${INITS[@]}"; do
            case $i in
            pidzero | s6) continue ;; # pidzero runs the workload as pidzero --
            supervisord)
                [ "$run" -le "$SV_ORPHAN_RUNS" ] || continue
                CMD=("$SUPD" -c "$W/svorph-$mode.conf")
                ;;
            *) child "$i" "$C" orphans $ORPHANS $mode "$W/orph.txt" ;;
            esac
            [ ${#CMD[@]} -eq 0 ] || measure "orph_$mode" "$i" orphanrun "$W/orph.txt" "$LOG" -- "${U[@]}" "${CMD[@]}"
        done
    done
done

# --- sizes ----------------------------------------------------------------------
fsize() { stat -L -c %s "$1"; }
record size pidzero "bytes=$(fsize "$PZ")"
[ -z "$PZS" ] || record size pidzero-static "bytes=$(fsize "$PZS")"
for i in tini tini-static dumb-init catatonit; do record size "$i" "bytes=$(fsize "${BIN[$i]}")"; done
# s6: s6-svscan, s6-supervise and the libraries they load besides libc.
S6SUP=$(command -v s6-supervise)
libs6=$(ldd "$S6" "$S6SUP" | awk '/=> \//{print $3}' | sort -u | grep -v -e libc.so -e ld-linux || true)
s6_bytes=$(($(fsize "$S6") + $(fsize "$S6SUP")))
for l in $libs6; do s6_bytes=$((s6_bytes + $(fsize "$l"))); done
record size s6 "bytes=$s6_bytes"
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
# Memory per extra idle daemon, from the scaling series: (figure at the
# largest count - figure at 100) / (largest - 100), for the RSS of PID 1 and
# the PSS of its supervision tree.
big=$(printf '%s\n' $SCALE | sort -n | tail -1)
if [ "$big" -gt 100 ]; then
    for i in "${INITS[@]}"; do
        for k in rss_kib tree_kib; do
            a=$(med "ss$big.$k" "$i")
            b=$(med "ss100.$k" "$i")
            [ "$a" = - ] || [ "$b" = - ] ||
                echo "perd.$k $i $(awk -v a="$a" -v b="$b" -v n=$((big - 100)) 'BEGIN {print (a - b) / n}')" >>"$RES"
        done
    done
fi
nruns() { awk -v m="$1" -v i="$2" '$1 == m && $2 == i' "$RES" | wc -l; }
fmt() { # VALUE SCALE DECIMALS
    if [ "$1" = - ]; then echo -; else awk -v v="$1" -v s="$2" -v d="$3" 'BEGIN {printf "%.*f", d, v * s}'; fi
}
ratio() { # A B -> A / B, or "-" when either is missing or B is not above 0
    if [ "$1" = - ] || [ "$2" = - ] || awk -v b="$2" 'BEGIN {exit !(b <= 0)}'; then echo -; else awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; fi
}
# row LABEL METRIC SCALE DECIMALS [ANCHOR...]: every init's median, the best
# anchor (the lowest figure among the other inits, or among the ANCHORs
# given) and pidzero's ratios to it.
row() {
    local i v best=- bi=- line="| $1 |" anchors=("${ANCHORS[@]}")
    local -A val
    [ $# -le 4 ] || anchors=("${@:5}")
    for i in "${INITS[@]}"; do
        val[$i]=$(med "$2" "$i")
        line="$line $(fmt "${val[$i]}" "$3" "$4") |"
    done
    for i in "${anchors[@]}"; do
        v=${val[$i]}
        [ "$v" != - ] || continue
        if [ "$best" = - ] || awk -v a="$v" -v b="$best" 'BEGIN {exit !(a < b)}'; then best=$v bi=$i; fi
    done
    line="$line $bi $(fmt "$best" "$3" "$4") |"
    for i in pidzero pidzero-- pidzero-static; do line="$line $(ratio "${val[$i]}" "$best") |"; done
    echo "$line"
}

echo
echo "pidzero $(git rev-parse --short HEAD), $(date -u), nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), Linux $(uname -r), load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
echo "medians of $RUNS runs (scaling above 100 daemons: $SCALE_RUNS; supervisord orphans: $SV_ORPHAN_RUNS); lower is better everywhere."
echo "best anchor: the best figure among ${ANCHORS[*]}; ÷ best: pidzero's figure divided by it."
echo
echo "| measure | pidzero | pidzero -- | pidzero static | tini | tini-static | dumb-init | catatonit | s6 | supervisord | best anchor | pidzero ÷ best | pidzero -- ÷ best | static ÷ best |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
row "idle RSS of PID 1, 10 daemons, API on (KiB)" idle.rss_kib 1 0
row "idle PSS of PID 1, 10 daemons (KiB)" idle.pss_kib 1 0
row "idle PSS of the supervision tree, 10 daemons (KiB)" idle.tree_kib 1 0
row "idle wake-ups of PID 1 in ${IDLE_SECS} s, 10 daemons" idle.wakeups 1 0
for n in $SCALE; do
    row "start $n daemons: launch → $n running (ms)" "ss$n.start_s" 1000 1
    row "stop $n daemons: SIGTERM → exit (ms)" "ss$n.stop_s" 1000 1
    row "RSS of PID 1, $n daemons (KiB)" "ss$n.rss_kib" 1 0
    row "PSS of the supervision tree, $n daemons (KiB)" "ss$n.tree_kib" 1 0
done
if [ "$big" -gt 100 ]; then
    row "RSS of PID 1 per extra idle daemon, 100 → $big (KiB)" perd.rss_kib 1 1
    row "PSS of the supervision tree per extra idle daemon, 100 → $big (KiB)" perd.tree_kib 1 1
fi
row "SIGTERM → exit, one child (ms)" ss1.stop_s 1000 3
row "SIGUSR1 forwarded to the child, median of $SIGNALS (µs)" sig.median_us 1 0
row "$ORPHANS orphans exiting as forked: first fork → none left (ms)" orph_stream.reap_s 1000 0
row "$ORPHANS orphans exiting at once: release → none left (ms)" orph_burst.reap_s 1000 0
row "binary size, stripped (KiB)" size.bytes 0.0009765625 0
row "static binary size, stripped (KiB): static anchors only" size.bytes 0.0009765625 0 tini-static catatonit
echo
echo "SIGUSR1 and SIGTERM with one child: pidzero (static too) runs the child as a daemon of daemons.json (so"
echo "do s6 and supervisord), pidzero -- and the others as their command; s6 and supervisord forward no SIGUSR1."
echo "Orphans: pidzero runs the workload as pidzero -- (so does pidzero static); s6 is left out."
echo "threads of the init while idle: $(for i in "${INITS[@]}"; do printf '%s %s  ' "$i" "$(med idle.threads "$i")"; done)"
echo "signal forwarding, worst of the per-run maxima (µs): $(for i in pidzero pidzero-- pidzero-static tini tini-static dumb-init catatonit; do
    printf '%s %s  ' "$i" "$(awk -v i="$i" '$1 == "sig.max_us" && $2 == i {print $3}' "$RES" | sort -g | tail -1)"; done)"
echo "signals received, fewest in a run (of $SIGNALS): $(for i in pidzero pidzero-- pidzero-static tini tini-static dumb-init catatonit; do
    printf '%s %s  ' "$i" "$(awk -v i="$i" '$1 == "sig.received" && $2 == i {print $3}' "$RES" | sort -g | head -1)"; done)"
echo "orphan fork phase (ms, median): $(for i in pidzero-- pidzero-static tini tini-static dumb-init catatonit supervisord; do
    printf '%s %s  ' "$i" "$(fmt "$(med orph_stream.fork_s "$i")" 1000 0)"; done)"
echo "orphans left at the end: $(awk '$1 ~ /left$/ && $3 != 0 {printf "%s %s=%s ", $1, $2, $3; n++} END {if (!n) print "none"}' "$RES")"
echo "s6 size: s6-svscan + s6-supervise + $(for l in $libs6; do printf '%s ' "$(basename "$l")"; done)"
echo "supervisord size: supervisor package files $((sv_pkg / 1024)) KiB + $py $((py_bin / 1024)) KiB" \
    "+ /usr/lib/$(basename "$py") $((py_lib / 1024)) KiB (python3-pkg-resources and shared libraries not counted)"
echo "runs per figure ($(
    IFS=/
    echo "${INITS[*]}"
)): $(for k in idle.rss_kib ss100.start_s ss100.stop_s "ss$big.stop_s" ss1.stop_s sig.median_us orph_stream.reap_s; do
    printf '%s ' "$k $(for i in "${INITS[@]}"; do printf '%s/' "$(nruns "$k" "$i")"; done)"
done)"
echo "raw results: $RES"
