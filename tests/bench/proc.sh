#!/usr/bin/env bash
# proc.sh - stream-proc's cost: `stream-proc ... -- cat` against the pipe it
# replaces, `stream-sub -g ... -e | stream-pub`, on the same data in the
# same run (issue 19's benchmark; part of `make bench`).
#
#   tests/bench/proc.sh [BUILD_DIR]      (default: build)
#
# Starts stream-broker on a free loopback port with its data in a temp dir
# on a real disk, publishes PROC_BENCH_RECORDS (default 1,000,000) 100-byte
# values to a topic of 4 partitions, then REPS times, alternating: the pipe
# (a group of its own each time, reading to the end, publishing with acks
# all) and stream-proc with `cat` as the command (a group of its own, -e,
# acks all), each into a fresh topic. Prints the median records/s of each
# and stream-proc's over the pipe's (the issue asks for at least 0.30), and
# checks that every run published every record.
#
# Environment: PROC_BENCH_RECORDS, PROC_BENCH_REPS (3), BENCH_DIR (where the
# temp dir goes).
set -euo pipefail
export STREAM_KAFKA_LISTEN=off
export STREAM_METRICS_LISTEN=off

build=$(cd "${1:-build}" && pwd)
records=${PROC_BENCH_RECORDS:-1000000}
reps=${PROC_BENCH_REPS:-3}
for p in stream-broker stream-pub stream-sub stream-proc stream-topics; do
    [ -x "$build/$p" ] || { echo "proc.sh: $build/$p is missing (make all)" >&2; exit 1; }
done
export PATH="$build:$PATH"

. "$(dirname "$0")/lib.sh"
tmp=$(bench_tmpdir proc "$build") || exit 1
broker_pid=
cleanup() {
    bench_stop_broker
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_start_broker "$tmp"

echo "stream-proc benchmark: $records records of 100 B, broker $STREAM_BROKERS, $(nproc) CPUs, load $(uptime | sed 's/.*load average: //')"
stream-topics create in -p 4
awk -v n="$records" 'BEGIN { v = sprintf("%0100d", 0); for (i = 0; i < n; i++) print v }' |
    stream-pub -t in --linger-ms 20

# run NAME CMD...: the records/s of one run (the output topic must then hold
# every record).
now() { date +%s.%N; }
run() {
    local out=$1 t0 t1
    shift
    stream-topics create "$out" -p 4
    t0=$(now)
    "$@"
    t1=$(now)
    local n
    n=$(stream-topics describe "$out" --json | jq '[.topics[0].partitions[].high_watermark] | add')
    [ "$n" -eq "$records" ] || { echo "proc.sh: $out holds $n records, not $records" >&2; exit 1; }
    awk -v n="$records" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f\n", n / (b - a) }'
}

pipe_rates=() proc_rates=()
for ((r = 1; r <= reps; r++)); do
    pipe_rates+=("$(run "pipe$r" sh -c "stream-sub -t in -g pipe$r -e | stream-pub -t pipe$r")")
    proc_rates+=("$(run "proc$r" stream-proc -t in -g proc$r --to "proc$r" -e -- cat)")
    echo "  run $r: pipe ${pipe_rates[-1]} records/s, stream-proc ${proc_rates[-1]} records/s"
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
pipe=$(median "${pipe_rates[@]}")
proc=$(median "${proc_rates[@]}")
printf '%-44s %12s\n' "stream-sub -g -e | stream-pub (records/s)" "$pipe" \
    "stream-proc -e -- cat (records/s)" "$proc"
awk -v a="$proc" -v b="$pipe" 'BEGIN { printf "%-44s %12.2f  (issue 19 asks >= 0.30)\n", "stream-proc / pipe", a / b }'
echo "load after: $(uptime | sed 's/.*load average: //')"
