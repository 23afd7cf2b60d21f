#!/bin/sh
# The log-throughput benchmark: builds pidzero (release) and the two
# dependency-free helpers, then runs bench/bench.rs (see its header and
# BENCHMARKS.md). Arguments are passed on: [TOTAL_LINES [RUNS [CHUNK]]].
# DIR defaults to /dev/shm/pidzero-bench (override with PIDZERO_BENCH_DIR).
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet
# The floor (bench/micro/src/bin/floor.rs), timed beside cat and pidzero.
cargo build --release --quiet --manifest-path bench/micro/Cargo.toml --bin floor
mkdir -p target/bench
rustc -O --edition 2021 -o target/bench/gen bench/gen.rs
rustc -O --edition 2021 -o target/bench/bench bench/bench.rs
PIDZERO_BENCH_FLOOR=bench/micro/target/release/floor \
    exec target/bench/bench target/release/pidzero target/bench/gen \
    "${PIDZERO_BENCH_DIR:-/dev/shm/pidzero-bench}" "$@"
