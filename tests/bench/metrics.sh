#!/usr/bin/env bash
# metrics.sh - what GET /metrics costs (issue 17): the part of `make bench`
# that measures the scrape.
#
#   tests/bench/metrics.sh [BUILD_DIR]      (default: build)
#
# Starts two brokers on free loopback ports, data in temp dirs on a real
# disk: one serving metrics (--metrics-listen on a free port), one with
# --metrics-listen off. Each gets 1,000 partitions (10 topics of 100, a
# few records in each), so a scrape has a thousand partitions' series to
# write. Then:
#   1. scrape time: SCRAPES (default 50) GETs of /metrics from curl, one
#      after another, on the idle broker: median and max time_total, and
#      the page size;
#   2. produce cost: REPS (3) rounds, each a stream-bench produce of
#      RECORDS (5,000,000) 100-byte records, acks=1, to one partition of
#      the broker without metrics, then the same to the broker with metrics
#      while curl scrapes it every second; the two are run one after the
#      other, never at once, so they share the machine the same way. Prints
#      the medians (records/s, p99 ms) and on/off ratios.
# Prints the load (uptime) first: figures from a loaded machine are only
# worth their ratios.
#
# Environment: BENCH_METRICS_RECORDS, BENCH_METRICS_REPS, BENCH_METRICS_SCRAPES,
# BENCH_DIR (where the temp dirs go; see lib.sh).
set -euo pipefail
export STREAM_KAFKA_LISTEN=off
export STREAM_METRICS_LISTEN=off

build=$(cd "${1:-build}" && pwd)
records=${BENCH_METRICS_RECORDS:-5000000}
reps=${BENCH_METRICS_REPS:-3}
scrapes=${BENCH_METRICS_SCRAPES:-50}
for p in stream-broker stream-bench stream-topics; do
    [ -x "$build/$p" ] || { echo "metrics.sh: $build/$p is missing (make all)" >&2; exit 1; }
done
command -v curl >/dev/null || { echo "metrics.sh: curl is missing" >&2; exit 1; }

. "$(dirname "$0")/lib.sh"
tmp=$(bench_tmpdir metrics "$build") || exit 1
pids=()
scraper=
cleanup() {
    [ -z "$scraper" ] || kill "$scraper" 2>/dev/null || true
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { # start NAME ARGS...: a broker whose address lands in $tmp/NAME.ready
    local name=$1
    shift
    "$build/stream-broker" --listen 127.0.0.1:0 --data-dir "$tmp/$name" \
        --ready-file "$tmp/$name.ready" --log-level info "$@" </dev/null 2>"$tmp/$name.log" &
    pids+=($!)
    for _ in $(seq 200); do
        [ -s "$tmp/$name.ready" ] && return 0
        sleep 0.05
    done
    cat "$tmp/$name.log" >&2
    exit 1
}
start on --metrics-listen 127.0.0.1:0
start off --metrics-listen off
on=$(cat "$tmp/on.ready")
off=$(cat "$tmp/off.ready")
mport=$(sed -n 's|.*metrics on http://127\.0\.0\.1:\([0-9]*\)/metrics.*|\1|p' "$tmp/on.log")
url="http://127.0.0.1:$mport/metrics"

echo "metrics benchmark: $(nproc) CPUs, load:$(uptime | sed 's/.*load average//')"
for b in "$on" "$off"; do
    "$build/stream-bench" produce -b "$b" -t wide --topics 10 --partitions 100 -n 100000 \
        -s 100 --acks 1 -q --json >/dev/null
done

curl -sS -o "$tmp/page" "$url"
series=$(grep -vc '^#' "$tmp/page")
for _ in $(seq "$scrapes"); do
    curl -sS -o /dev/null -w '%{time_total}\n' "$url"
done >"$tmp/scrape-times"

for r in $(seq "$reps"); do
    echo "  round $r/$reps ..." >&2
    "$build/stream-bench" produce -b "$off" -t "p-$r" -n "$records" -s 100 --acks 1 -q --json \
        >>"$tmp/off.json"
    (while :; do curl -sS -o /dev/null "$url" || true; sleep 1; done) &
    scraper=$!
    "$build/stream-bench" produce -b "$on" -t "p-$r" -n "$records" -s 100 --acks 1 -q --json \
        >>"$tmp/on.json"
    kill "$scraper"
    wait "$scraper" 2>/dev/null || true
    scraper=
    "$build/stream-topics" -b "$off" delete "p-$r"
    "$build/stream-topics" -b "$on" delete "p-$r"
    sync
done

python3 - "$tmp" "$series" "$(wc -c <"$tmp/page")" "$records" <<'EOF'
import json, statistics, sys, os
tmp, series, size, records = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
times = [float(l) * 1000 for l in open(os.path.join(tmp, "scrape-times")) if l.strip()]
print()
print(f"scrape of 1,000 partitions ({series} series, {size / 1024:.0f} KiB): "
      f"median {statistics.median(times):.2f} ms, max {max(times):.2f} ms "
      f"over {len(times)} scrapes (curl's time_total; target < 50 ms)")
def runs(name):
    with open(os.path.join(tmp, name + ".json")) as fh:
        return [json.loads(l) for l in fh if l.strip()]
off, on = runs("off"), runs("on")
med = lambda rs, f: statistics.median(f(r) for r in rs)
rps = lambda r: r["records_per_sec"]
p99 = lambda r: r["latency_ms"]["p99"]
print(f"produce {records} x 100 B, acks=1, one partition, medians of {len(off)} rounds:")
print(f"  {'metrics':<28} {'records/s':>12} {'p99 ms':>8}")
print(f"  {'off':<28} {med(off, rps):>12.0f} {med(off, p99):>8.3f}")
print(f"  {'on, scraped every second':<28} {med(on, rps):>12.0f} {med(on, p99):>8.3f}")
print(f"  on/off: records/s {med(on, rps) / med(off, rps) * 100:.1f}%, "
      f"p99 {med(on, p99) / med(off, p99) * 100:.0f}% (target: throughput >= 98%)")
print("  rounds (off, on records/s): " +
      ", ".join(f"{rps(a):.0f}/{rps(b):.0f}" for a, b in zip(off, on)))
EOF
