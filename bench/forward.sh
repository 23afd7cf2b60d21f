#!/bin/sh
# The log-throughput benchmark with a `log.forward` sink beside the file:
# bench/run.sh with PIDZERO_BENCH_FORWARD=1, so that each run also times
# pidzero with file + forward to a local receiver (a thread of the driver
# that reads and counts) and file + forward to a port where nothing
# listens, against the file-only run of the same invocation. Arguments as
# bench/run.sh: [TOTAL_LINES [RUNS [CHUNK]]]. See bench/bench.rs.
set -eu
cd "$(dirname "$0")/.."
PIDZERO_BENCH_FORWARD=1 exec bench/run.sh "$@"
