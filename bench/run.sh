#!/bin/sh
# The log-throughput benchmark: builds pidzero (release) and the two
# dependency-free helpers, then runs bench/bench.rs (see its header and
# BENCHMARKS.md). Arguments are passed on: [TOTAL_LINES [RUNS [CHUNK]]].
# DIR defaults to /dev/shm/pidzero-bench (override with PIDZERO_BENCH_DIR).
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet
mkdir -p target/bench
rustc -O --edition 2021 -o target/bench/gen bench/gen.rs
rustc -O --edition 2021 -o target/bench/bench bench/bench.rs
exec target/bench/bench target/release/pidzero target/bench/gen \
    "${PIDZERO_BENCH_DIR:-/dev/shm/pidzero-bench}" "$@"
