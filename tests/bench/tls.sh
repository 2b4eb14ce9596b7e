#!/usr/bin/env bash
# tls.sh - TLS against plain text, side by side in one run (issue 16; part
# of `make bench`): two brokers of this build on one disk, one plain and one
# serving TLS (a certificate made here with openssl), the same workloads on
# each, the two interleaved within each repetition so that load from others
# on the machine falls on both alike:
#   produce 100 B, acks=1     stream-bench produce -s 100 --acks 1
#   consume 1 KiB             stream-bench consume (the records of a
#                             1 KiB --acks 1 produce; over TLS a fetch reads
#                             segment bytes into a buffer and encrypts them
#                             instead of sendfile)
# Prints the median records/s and MB/s of each, TLS / plain, and the
# issue's target (TLS >= 60% of plain) met or not.
#
#   tests/bench/tls.sh BUILD_DIR
#   TLS_BENCH_RECORDS (1000000 x 100 B), TLS_BENCH_RECORDS_1K (300000 x 1 KiB),
#   TLS_BENCH_REPS (3), BENCH_DIR (data; default BUILD_DIR/bench-data)
set -euo pipefail
export STREAM_KAFKA_LISTEN=off STREAM_METRICS_LISTEN=off
build=$(cd "${1:?usage: tests/bench/tls.sh BUILD_DIR}" && pwd)
records=${TLS_BENCH_RECORDS:-1000000}
records_1k=${TLS_BENCH_RECORDS_1K:-300000}
reps=${TLS_BENCH_REPS:-3}
base=${BENCH_DIR:-$build/bench-data}
mkdir -p "$base"
tmp=$(mktemp -d "$base/tls.XXXXXX")
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

cd "$tmp"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout key.pem \
    -out cert.pem -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null

start() { # start NAME ARGS...: a broker; prints its address
    local name=$1
    shift
    "$build/stream-broker" -l 127.0.0.1:0 -d "$tmp/$name" --ready-file "$tmp/$name.ready" \
        --log-level warn "$@" </dev/null 2>"$tmp/$name.log" &
    pids+=($!)
    local i
    for ((i = 0; i < 200; i++)); do
        [ -s "$tmp/$name.ready" ] && return 0
        sleep 0.05
    done
    echo "tls.sh: $name broker did not start" >&2
    cat "$tmp/$name.log" >&2
    exit 1
}
start plain
start tls --tls-cert cert.pem --tls-key key.pem
plain=(-b "$(cat plain.ready)")
tls=(-b "$(cat tls.ready)" --cacert cert.pem)

echo "tls.sh: $records x 100 B, $records_1k x 1 KiB, $reps repetitions; load $(cut -d' ' -f1-3 /proc/loadavg)"
bench() { "$build/stream-bench" "$@" -q --json | tail -n 1; }
: >results
for r in $(seq "$reps"); do
    # Plain first in odd repetitions, TLS first in even ones.
    order=(plain tls)
    [ $((r % 2)) = 0 ] && order=(tls plain)
    for kind in "${order[@]}"; do
        declare -n args=$kind
        sync
        echo "$kind produce100 $(bench produce "${args[@]}" -t "p$r" -n "$records" -s 100 --acks 1)" >>results
    done
    for kind in "${order[@]}"; do
        declare -n args=$kind
        bench produce "${args[@]}" -t "k$r" -n "$records_1k" -s 1k --acks 1 >/dev/null
        sync
        echo "$kind consume1k $(bench consume "${args[@]}" -t "k$r")" >>results
    done
done
python3 - results <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    kind, work, doc = line.split(" ", 2)
    d = json.loads(doc)
    rps = d.get("records_per_sec") or d.get("records_per_second") or d.get("rps")
    mbs = d.get("mb_per_sec") or d.get("MB_per_sec") or d.get("mbps")
    runs.setdefault((kind, work), []).append((rps, mbs))
print("%-22s %14s %10s %14s %10s %8s" % ("workload", "plain rec/s", "MB/s", "TLS rec/s", "MB/s", "TLS/plain"))
ok = True
for work, name in (("produce100", "produce 100 B acks=1"), ("consume1k", "consume 1 KiB")):
    p = statistics.median(r for r, _ in runs[("plain", work)])
    t = statistics.median(r for r, _ in runs[("tls", work)])
    pm = statistics.median(m for _, m in runs[("plain", work)])
    tm = statistics.median(m for _, m in runs[("tls", work)])
    ratio = t / p
    ok = ok and ratio >= 0.6
    print("%-22s %14.0f %10.1f %14.0f %10.1f %7.0f%%  (target >= 60%%: %s)"
          % (name, p, pm, t, tm, 100 * ratio, "met" if ratio >= 0.6 else "NOT met"))
sys.exit(0 if ok else 1)
PY
