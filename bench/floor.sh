#!/bin/sh
# pidzero against the floor (bench/micro/src/bin/floor.rs: a bare two-thread
# read-format-write pipeline) and `gen | cat`, one generator of 2,000,000
# lines to /dev/shm, RUNS (default 9) alternating rounds; prints each round's
# wall times in ms and the medians. See BENCHMARKS.md.
set -eu
cd "$(dirname "$0")/.."
runs=${1:-9}
dir=${PIDZERO_BENCH_DIR:-/dev/shm/pidzero-floor}
cargo build --release --quiet
cargo build --release --quiet --manifest-path bench/micro/Cargo.toml
mkdir -p target/bench "$dir/conf"
rustc -O --edition 2021 -o target/bench/gen bench/gen.rs
gen=$(pwd)/target/bench/gen
printf '[{"name":"g0","command":["%s","g0","2000000","4096"]}]\n' "$gen" >"$dir/conf/daemons.json"
printf '{"log":{"format":"json","log_to_file":true,"log_to_stdout":false,"file_path":"%s/pidzero.log","max_file_size":0},"api":{"socket":null}}\n' \
    "$dir" >"$dir/conf/config.json"
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
: >"$dir/times"
for _ in $(seq "$runs"); do
    t=$(date +%s%N); "$gen" g0 2000000 4096 | cat >"$dir/cat.out"; c=$(ms "$t")
    rm -f "$dir/pidzero.log"
    t=$(date +%s%N); target/release/pidzero --config-dir "$dir/conf" >/dev/null; p=$(ms "$t")
    test "$(grep -c '"source":"g0"' "$dir/pidzero.log")" = 2000000
    f=$(bench/micro/target/release/floor "$gen" 2000000 "$dir/floor.out")
    echo "cat $c pidzero $p floor ${f%.*}" | tee -a "$dir/times"
done
for name in cat pidzero floor; do
    printf '%s median %s ms\n' "$name" \
        "$(awk -v n="$name" '{for (i = 1; i < NF; i += 2) if ($i == n) print $(i + 1)}' "$dir/times" | median)"
done
rm -rf "$dir"
