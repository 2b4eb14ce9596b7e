#!/usr/bin/env bash
# The `make bench` driver: runs every benchmark binary built from tests/bench/*.c.
#
#   tests/bench/run.sh BUILD_DIR
#
# Benchmarks write real data, so they run on a real disk: BENCH_DIR (default
# BUILD_DIR/bench-data, on the same file system as the build) must not be a
# tmpfs, where fdatasync costs nothing and durability numbers mean nothing.
# Sizes: LOG_BENCH_MB (default 1024) for log_bench; CLEANER_BENCH_MB (1024),
# CLEANER_BENCH_KEYS (1000000) and CLEANER_BENCH_RUNS (3: it prints each run's
# ratios against dd and the medians) for cleaner_bench. Never part of `make check`.
set -euo pipefail
# The brokers started here leave port 9092 (the Kafka listener's) alone.
export STREAM_KAFKA_LISTEN=off
export STREAM_METRICS_LISTEN=off
build=${1:?usage: tests/bench/run.sh BUILD_DIR}
build=$(cd "$build" && pwd)
data=${BENCH_DIR:-$build/bench-data}
mkdir -p "$data"
fstype=$(stat -f -c %T "$data")
echo "bench: data in $data ($fstype), $(df -h --output=avail "$data" | tail -1 | tr -d ' ') free"
if [ "$fstype" = tmpfs ] || [ "$fstype" = ramfs ]; then
    echo "bench: warning: $data is in memory; set BENCH_DIR to a directory on disk" >&2
fi
export LOG_BENCH_DIR=$data
status=0
shopt -s nullglob
for b in "$build"/bench/*; do
    [ -x "$b" ] || continue
    # Load generators driven by scale.sh and http-sink.sh, not benchmarks
    # of their own.
    case ${b##*/} in idle_consumers | idle_floor | scale_load | http_endpoint) continue ;; esac
    echo "== ${b##*/}"
    "$b" || status=1
done
echo "== client.sh"
BENCH_DIR=$data "$(dirname "$0")/client.sh" "$build" || status=1
echo "== groups.sh"; BENCH_DIR=$data "$(dirname "$0")/groups.sh" "$build" || status=1
echo "== http-sink.sh"; BENCH_DIR=$data "$(dirname "$0")/http-sink.sh" "$build" || status=1
echo "== tls.sh"; BENCH_DIR=$data "$(dirname "$0")/tls.sh" "$build" || status=1
echo "== scale.sh"; BENCH_DIR=$data "$(dirname "$0")/scale.sh" "$build" || status=1
echo "== proc.sh"; BENCH_DIR=$data "$(dirname "$0")/proc.sh" "$build" || status=1
echo "== http-source.sh"; BENCH_DIR=$data "$(dirname "$0")/http-source.sh" "$build" || status=1
echo "== metrics.sh"; BENCH_DIR=$data "$(dirname "$0")/metrics.sh" "$build" || status=1
rmdir "$data" 2>/dev/null || true
exit $status
