#!/bin/sh
# pidzero against the floor (bench/micro/src/bin/floor.rs: a bare
# read-format-write pipeline, one reading thread per generator and one
# writer) and `cat`, with 1 generator of 2,000,000 lines and with 4 of
# 500,000 (all writing into one pipe for cat), to /dev/shm; RUNS (default 9)
# alternating rounds. Prints each round's wall times in ms and the medians.
# With PIDZERO_FLOOR_SOCKET=1 each round also times the floor sending the
# same bytes to a local TCP receiver beside the file ("floorsock", see
# floor.rs), and the medians end with floorsock / floor: what a forward
# handler beside the file can cost at least on this machine.
# See BENCHMARKS.md.
set -eu
cd "$(dirname "$0")/.."
runs=${1:-9}
socket=${PIDZERO_FLOOR_SOCKET:-0}
dir=${PIDZERO_BENCH_DIR:-/dev/shm/pidzero-floor}
cargo build --release --quiet
cargo build --release --quiet --manifest-path bench/micro/Cargo.toml
mkdir -p target/bench "$dir/conf1" "$dir/conf4"
rustc -O --edition 2021 -o target/bench/gen bench/gen.rs
gen=$(pwd)/target/bench/gen
for n in 1 4; do
    daemons=""
    for i in $(seq 0 $((n - 1))); do
        daemons="$daemons${daemons:+,}{\"name\":\"g$i\",\"command\":[\"$gen\",\"g$i\",\"$((2000000 / n))\",\"4096\"]}"
    done
    printf '[%s]\n' "$daemons" >"$dir/conf$n/daemons.json"
    printf '{"log":{"format":"json","log_to_file":true,"log_to_stdout":false,"file_path":"%s/pidzero.log","max_file_size":0},"api":{"socket":null}}\n' \
        "$dir" >"$dir/conf$n/config.json"
done
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
# N generators sharing 2,000,000 lines, all into one pipe read by cat.
cat_run() {
    for i in $(seq 0 $(($1 - 1))); do
        "$gen" "g$i" $((2000000 / $1)) 4096 &
    done
    wait
}
: >"$dir/times"
for _ in $(seq "$runs"); do
    for n in 1 4; do
        # Removed first, as the other two do: truncating 200 MB in the
        # timed command would count freeing its pages against cat.
        rm -f "$dir/cat.out"
        t=$(date +%s%N); cat_run "$n" | cat >"$dir/cat.out"; c=$(ms "$t")
        test "$(wc -l <"$dir/cat.out")" = 2000000
        rm -f "$dir/pidzero.log"
        t=$(date +%s%N); target/release/pidzero --config-dir "$dir/conf$n" >/dev/null; p=$(ms "$t")
        test "$(grep -c '"stream":"stdout"' "$dir/pidzero.log")" = 2000000
        # Timed from outside like the other two (its own figure leaves out
        # its start and exit), its output removed first like theirs.
        rm -f "$dir/floor.out"
        t=$(date +%s%N); env -u PIDZERO_FLOOR_SOCKET bench/micro/target/release/floor "$gen" 2000000 "$dir/floor.out" "$n" >/dev/null; f=$(ms "$t")
        test "$(wc -l <"$dir/floor.out")" = 2000000
        extra=""
        if [ "$socket" = 1 ]; then
            rm -f "$dir/floor.out"
            t=$(date +%s%N); PIDZERO_FLOOR_SOCKET=1 bench/micro/target/release/floor "$gen" 2000000 "$dir/floor.out" "$n" >/dev/null; s=$(ms "$t")
            test "$(wc -l <"$dir/floor.out")" = 2000000
            extra=" floorsock $s"
        fi
        echo "generators $n cat $c pidzero $p floor $f$extra" | tee -a "$dir/times"
    done
done
names="cat pidzero floor"
if [ "$socket" = 1 ]; then names="$names floorsock"; fi
for n in 1 4; do
    if [ "$socket" = 1 ]; then
        printf '%s generator(s): throughput with the socket / without (floor time / floorsock time), median of per-round ratios %s\n' "$n" \
            "$(awk -v g="$n" '$2 == g {for (i = 3; i < NF; i += 2) t[$i] = $(i + 1); printf "%.3f\n", t["floor"] / t["floorsock"]}' "$dir/times" | median)"
    fi
    for name in $names; do
        printf '%s generator(s): %s median %s ms\n' "$n" "$name" \
            "$(awk -v g="$n" -v k="$name" '$2 == g {for (i = 3; i < NF; i += 2) if ($i == k) print $(i + 1)}' "$dir/times" | median)"
    done
done
rm -rf "$dir"
