#!/usr/bin/env bash
# Deterministic profiles of the rows of bench/compare/run.sh that a loaded
# machine cannot time: what PID 1 does (system calls) and what its memory is
# made of. Counts and sizes, not times, so they can be taken while other work
# runs. See "What bounds each row" in BENCHMARKS.md.
#
#   bench/compare/profile.sh syscalls   # as root: strace counts of PID 1's own threads
#   bench/compare/profile.sh memory     # as root: smaps of PID 1, 10 daemons; RSS at 100 and 1,000
#
# syscalls: for pidzero, tini-static and dumb-init, the system calls of PID 1
# itself (its threads, not its children) for: start 100 sleep daemons and stop
# them (traced from exec to exit), stop 100 (traced from SIGTERM), one SIGUSR1
# forwarded to one child, SIGTERM with one child. pidzero runs the child as a
# daemon of daemons.json and as `pidzero --` (pidzero--). Needs strace.
# memory: Rss by mapping (the binary's file pages, libc, heap, other anonymous
# memory) of pidzero as PID 1 with 10 sleep daemons, dynamic and static, with
# its page faults and threads; then VmRSS with 100 and 1,000 daemons and the
# figure per extra daemon, measured like run.sh (cmp startstop).
#
# Environment: PZ and PZS (the dynamic and static binaries; built when unset),
# PIDZERO_COMPARE_DIR (scratch directory, default /dev/shm/pidzero-profile).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
[ "$(id -u)" = 0 ] || { echo "profile.sh: needs root (unshare --pid)" >&2; exit 1; }
what=${1:-}
case $what in syscalls | memory) ;; *) echo "usage: $0 syscalls|memory" >&2; exit 2 ;; esac
TRIPLE=x86_64-unknown-linux-gnu
if [ -z "${PZ:-}" ]; then cargo build --release --quiet; PZ=$ROOT/target/release/pidzero; fi
if [ -z "${PZS:-}" ]; then
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --quiet --target $TRIPLE
    PZS=$ROOT/target/$TRIPLE/release/pidzero
fi
mkdir -p target/compare
rustc -O --edition 2021 -o target/compare/cmp bench/compare/cmp.rs
C=$ROOT/target/compare/cmp
W=${PIDZERO_COMPARE_DIR:-/dev/shm/pidzero-profile}
rm -rf "$W"
mkdir -p "$W/empty"
# The environment Docker gives a container, as in run.sh.
U=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOSTNAME=bench HOME=/root
    unshare --pid --fork --mount-proc)

. "$ROOT/bench/compare/workloads.sh"
child_of() { pgrep -P "$1" | head -1; }
sleeps_under() { ps -e -o ppid=,comm= | awk -v p="$1" '$2 == "sleep"' | wc -l; }
wait_init() { # UNSHARE_PID: prints the init's pid once it exists
    local i init
    for i in $(seq 1 600); do
        init=$(child_of "$1")
        [ -n "$init" ] && { echo "$init"; return; }
        sleep 0.05
    done
}
wait_sleeps() { # N: until N sleep processes exist (this script's only)
    local i
    for i in $(seq 1 1200); do
        [ "$(ps -e -o comm= | grep -cx sleep)" -ge "$1" ] && return
        sleep 0.05
    done
}
# counts LABEL FILES...: total system calls and the most frequent ones
counts() {
    local label=$1
    shift
    cat "$@" 2>/dev/null | grep -oE '^[a-z_0-9]+\(' | tr -d '(' | sort | uniq -c | sort -rn >"$W/$label.counts"
    printf '%-26s %6d  %s\n' "$label" "$(awk '{s += $1} END {print s + 0}' "$W/$label.counts")" \
        "$(head -10 "$W/$label.counts" | awk '{printf "%s %s, ", $2, $1}')"
}
# attach INIT PREFIX: strace on every thread of INIT (its children are not followed)
attach() {
    strace -ff -o "$2" -p "$(ls /proc/$1/task | paste -sd,)" 2>/dev/null &
    STRACE=$!
    sleep 0.5
}

if [ "$what" = syscalls ]; then
    command -v strace >/dev/null || { echo "profile.sh: needs strace" >&2; exit 1; }
    pz_dir pz100 100
    mkdir -p "$W/pzsig"
    printf '{"api": {"socket": "%s/pzsig/pidzero.sock"}}\n' "$W" >"$W/pzsig/config.json"
    printf '[{"name": "recv", "command": ["%s", "recv", "%s/sig.txt"]}]\n' "$C" "$W" >"$W/pzsig/daemons.json"
    declare -A N100=([pidzero]="$PZ --config-dir $W/pz100"
        [tini-static]="tini-static -- sh $W/sleeps.sh 100" [dumb-init]="dumb-init sh $W/sleeps.sh 100")
    declare -A ONE=([pidzero]="$PZ --config-dir $W/pzsig" [pidzero--]="$PZ --config-dir $W/empty -- $C recv $W/sig.txt"
        [tini-static]="tini-static -- $C recv $W/sig.txt" [dumb-init]="dumb-init $C recv $W/sig.txt")
    echo "system calls of PID 1's own threads: total, then the most frequent"
    for init in pidzero tini-static dumb-init; do
        # start 100 + stop: from the init's exec to its exit
        rm -f "$W"/t.*
        strace -ff -o "$W/t" "${U[@]}" ${N100[$init]} >/dev/null 2>&1 &
        s=$!
        u=
        for i in $(seq 1 600); do u=$(pgrep -P $s -x unshare); [ -n "$u" ] && break; sleep 0.05; done
        init_pid=$(wait_init "$u")
        wait_sleeps 100
        sleep 0.5
        tids=$(ls /proc/$init_pid/task)
        kill -TERM "$init_pid"
        wait $s
        counts "$init start+stop 100" $(for t in $tids; do echo "$W/t.$t"; done)
        # stop 100: from SIGTERM to exit
        "${U[@]}" ${N100[$init]} >/dev/null 2>&1 &
        u=$!
        init_pid=$(wait_init $u)
        wait_sleeps 100
        sleep 0.5
        rm -f "$W"/p.*
        tids=$(ls /proc/$init_pid/task)
        attach "$init_pid" "$W/p"
        kill -TERM "$init_pid"
        wait $u
        sleep 0.2
        kill -INT $STRACE 2>/dev/null
        wait $STRACE
        counts "$init stop 100" $(for t in $tids; do echo "$W/p.$t"; done)
    done
    for init in pidzero pidzero-- tini-static dumb-init; do
        for sig in USR1 TERM; do
            rm -f "$W/sig.txt" "$W"/q.*
            "${U[@]}" ${ONE[$init]} >/dev/null 2>&1 &
            u=$!
            init_pid=$(wait_init $u)
            for i in $(seq 1 600); do pgrep -f "recv $W/sig.txt" >/dev/null && break; sleep 0.05; done
            sleep 0.5
            tids=$(ls /proc/$init_pid/task)
            attach "$init_pid" "$W/q"
            kill -$sig "$init_pid"
            sleep 0.5
            if [ $sig = USR1 ]; then
                # Only the forwarding is traced, not the stop after it.
                kill -INT $STRACE
                wait $STRACE
                kill -TERM "$init_pid"
                wait $u
                label="$init SIGUSR1"
            else
                wait $u
                sleep 0.2
                kill -INT $STRACE 2>/dev/null
                wait $STRACE
                label="$init SIGTERM, one child"
            fi
            counts "$label" $(for t in $tids; do echo "$W/q.$t"; done)
        done
    done
    exit 0
fi

# memory
pz_dir pz10 10
for b in "$PZ" "$PZS"; do
    "${U[@]}" "$b" --config-dir "$W/pz10" >/dev/null 2>&1 &
    u=$!
    init=$(wait_init $u)
    wait_sleeps 10
    sleep 1
    echo "== $b, 10 daemons: Rss by mapping (KiB)"
    exe=$(readlink "/proc/$init/exe")
    awk -v exe="$exe" '/^[0-9a-f]+-[0-9a-f]+ / {
            name = $6; if (name == "") name = "[anonymous]"
            else if (name == exe) name = "the binary"
            else if (name ~ /libc/) name = "libc"
            else if (name ~ /ld-linux/) name = "ld.so"
            else if (name ~ /^\//) name = "other files"
        }
        /^Rss:/ { r[name] += $2 } /^Anonymous:/ { a[name] += $2 }
        END { for (k in r) if (r[k] > 0) printf "  %6d  %-14s (anonymous %d)\n", r[k], k, a[k] }' "/proc/$init/smaps" | sort -rn
    grep -E 'VmRSS|RssAnon|RssFile|Threads' "/proc/$init/status" | tr -s ' \t\n' ' '
    echo "minflt $(awk '{print $10}' "/proc/$init/stat") majflt $(awk '{print $12}' "/proc/$init/stat") binary $(stat -Lc %s "$b") bytes"
    kill -TERM "$init"
    wait $u
done
for b in "$PZ" "$PZS"; do
    rss=()
    for n in 100 1000; do
        pz_dir "pz$n" $n
        out=$("$C" startstop $n "$W/init.log" -- "${U[@]}" "$b" --config-dir "$W/pz$n")
        r=${out#*rss_kib=}
        rss+=("${r%% *}")
    done
    echo "$b: VmRSS 100 daemons ${rss[0]} KiB, 1000 daemons ${rss[1]} KiB, per extra daemon $(awk -v a="${rss[0]}" -v b="${rss[1]}" 'BEGIN {printf "%.1f", (b - a) / 900}') KiB"
done
