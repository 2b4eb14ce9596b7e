#!/usr/bin/env bash
# client.sh - one producer and one consumer against one broker on loopback:
# the client/broker part of `make bench` (issue 3's benchmark; stream-bench(1)).
#
#   tests/bench/client.sh [BUILD_DIR]      (default: build)
#
# Starts stream-broker on a free loopback port with its data in a temp dir on
# a real disk (never tmpfs: acks=all must pay for fdatasync), then, REPS
# times: produce RECORDS 100-byte values with acks=1 and with acks=all, the
# acks=1 run again from one producer to 1,000 partitions (10 topics of 100,
# stream-bench produce --topics 10 --partitions 100), consume the acks=1
# topic from the start, and run e2e at a paced 10,000 records/s for about
# 10 s (acks=1 and acks=all). Prints the median of each figure in one table
# (and the 1,000-partition run's records/s over the one-partition run's),
# stops the broker and removes the temp dir.
#
# Environment: BENCH_RECORDS (default 20000000: 5-20 s a run here), BENCH_REPS (3),
# BENCH_E2E_RATE (10000), BENCH_E2E_SECONDS (10), BENCH_DIR (where the temp
# dir goes; default the first of $TMPDIR, /var/tmp, /tmp, the build dir that
# is not tmpfs).
set -euo pipefail
# The brokers started here leave port 9092 (the Kafka listener's) alone.
export STREAM_KAFKA_LISTEN=off
export STREAM_METRICS_LISTEN=off

build=$(cd "${1:-build}" && pwd)
records=${BENCH_RECORDS:-20000000}
reps=${BENCH_REPS:-3}
rate=${BENCH_E2E_RATE:-10000}
e2e_records=$((rate * ${BENCH_E2E_SECONDS:-10}))
for p in stream-broker stream-bench stream-topics; do
    [ -x "$build/$p" ] || { echo "client.sh: $build/$p is missing (make all)" >&2; exit 1; }
done

# A temp dir on a real disk.
. "$(dirname "$0")/lib.sh"
tmp=$(bench_tmpdir bench "$build") || exit 1
broker_pid=
cleanup() {
    if [ -n "$broker_pid" ]; then
        kill -TERM "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$build/stream-broker" --listen 127.0.0.1:0 --data-dir "$tmp/data" --ready-file "$tmp/ready" \
    --log-level warn </dev/null 2>"$tmp/broker.log" &
broker_pid=$!
for _ in $(seq 200); do
    [ -s "$tmp/ready" ] && break
    kill -0 "$broker_pid" 2>/dev/null || { cat "$tmp/broker.log" >&2; exit 1; }
    sleep 0.05
done
[ -s "$tmp/ready" ] || { echo "client.sh: broker not ready" >&2; exit 1; }
export STREAM_BROKERS
STREAM_BROKERS=$(cat "$tmp/ready")

echo "client benchmark: broker $STREAM_BROKERS, data in $tmp ($(fstype "$tmp")), $(nproc) CPUs"
echo "  produce/consume: $records records of 100 bytes; e2e: $e2e_records records at $rate/s;" \
    "$reps repetitions, medians"

bench() { # bench NAME ARGS...: one stream-bench run, its JSON kept as NAME.json
    local name=$1
    shift
    if ! "$build/stream-bench" "$@" --json -q >>"$tmp/$name.json"; then
        echo "client.sh: stream-bench $* failed" >&2
        exit 1
    fi
}

for r in $(seq "$reps"); do
    echo "  repetition $r/$reps ..." >&2
    bench produce_acks1 produce -t "p1-$r" -n "$records" -s 100 --acks 1
    bench produce_wide produce -t "w-$r" --topics 10 --partitions 100 -n "$records" -s 100 \
        --acks 1
    for i in 0 1 2 3 4 5 6 7 8 9; do
        "$build/stream-topics" delete "w-$r-$i"
    done
    bench produce_acksall produce -t "pall-$r" -n "$records" -s 100 --acks all
    bench consume consume -t "p1-$r"
    # The gigabytes just written are still being written back: let that
    # finish, so the latency runs measure themselves, not the writeback.
    "$build/stream-topics" delete "p1-$r" "pall-$r"
    sync
    bench e2e_acks1 e2e -t "e1-$r" --rate "$rate" -n "$e2e_records" --acks 1
    bench e2e_acksall e2e -t "eall-$r" --rate "$rate" -n "$e2e_records" --acks all
    "$build/stream-topics" delete "e1-$r" "eall-$r"
done

python3 - "$tmp" <<'EOF'
import json, statistics, sys, os
tmp = sys.argv[1]
rows = [
    ("produce 100 B, acks=1", "produce_acks1"),
    ("  to 1000 partitions", "produce_wide"),
    ("produce 100 B, acks=all", "produce_acksall"),
    ("consume 100 B, from start", "consume"),
    ("e2e 100 B, acks=1, paced", "e2e_acks1"),
    ("e2e 100 B, acks=all, paced", "e2e_acksall"),
]
def med(runs, f):
    vals = [f(r) for r in runs]
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None
def fmt(v, spec):
    width = int(spec.split(".")[0])
    return "-".rjust(width) if v is None else format(v, spec)
print()
print(f"{'workload':<28} {'records/s':>12} {'MB/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} {'max ms':>8}")
for label, name in rows:
    with open(os.path.join(tmp, name + ".json")) as fh:
        runs = [json.loads(line) for line in fh if line.strip()]
    lat = lambda k: (lambda r: r["latency_ms"][k] if "latency_ms" in r else None)
    rps = med(runs, lambda r: r.get("records_per_sec"))
    mbps = med(runs, lambda r: r.get("mb_per_sec"))
    if name.startswith("e2e"):
        rps = med(runs, lambda r: r["rate"])  # the paced rate
        mbps = None
    print(f"{label:<28} {fmt(rps, '12.0f')} {fmt(mbps, '9.1f')} {fmt(med(runs, lat('p50')), '8.3f')} "
          f"{fmt(med(runs, lat('p99')), '8.3f')} {fmt(med(runs, lat('p999')), '9.3f')} "
          f"{fmt(med(runs, lat('max')), '8.3f')}")
def runs_of(name):
    with open(os.path.join(tmp, name + ".json")) as fh:
        return [json.loads(line) for line in fh if line.strip()]
one = med(runs_of("produce_acks1"), lambda r: r.get("records_per_sec"))
wide = med(runs_of("produce_wide"), lambda r: r.get("records_per_sec"))
print()
if one and wide:
    print(f"1000 partitions (10 topics x 100) / 1 partition, records/s: {wide / one * 100:.0f}%")
print("produce latency: produce() call to delivery report; e2e: send to receipt. "
      "MB = 10^6 bytes of payload.")
EOF
