#!/usr/bin/env bash
# http-source.sh - the HTTP source against plain stream-pub, same run: the
# source part of `make bench` (issue 19; target: the SSE source at >= 50%
# of stream-pub from a file).
#
#   tests/bench/http-source.sh [BUILD_DIR]      (default: build)
#
# One broker on loopback with its data on a real disk. RECORDS events of
# 100-byte data are written once as a Server-Sent Events body (id, event,
# data, as a server sends them) and once as a file of the same values, one
# per line. Then, REPS times, alternating: `stream-pub --url` reads the
# event stream from tests/cli/http_source_server.py (its /file/NAME.sse:
# the whole body in large writes, so the server is not what is measured)
# into a topic of one partition, and `stream-pub < file` publishes the
# lines to another with the same two headers as constants (-H), both with
# the default acks=all. Prints each run's records/s, the medians and the
# ratio source/file, with the load (uptime) before and after.
#
# Environment: BENCH_SOURCE_RECORDS (default 1000000), BENCH_REPS (3),
# BENCH_DIR (where the temp dir goes; see lib.sh).
set -euo pipefail
export STREAM_KAFKA_LISTEN=off
export STREAM_METRICS_LISTEN=off

build=$(cd "${1:-build}" && pwd)
here=$(cd "$(dirname "$0")/.." && pwd)
records=${BENCH_SOURCE_RECORDS:-1000000}
reps=${BENCH_REPS:-3}
export PATH="$build:$PATH"

. "$(dirname "$0")/lib.sh"
tmp=$(bench_tmpdir source "$build") || exit 1
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stream-broker --listen 127.0.0.1:0 --data-dir "$tmp/data" --ready-file "$tmp/ready" \
    --log-level warn </dev/null 2>"$tmp/broker.log" &
pids+=($!)
bench_wait_file "$tmp/ready"
export STREAM_BROKERS=$(cat "$tmp/ready")
/usr/bin/python3 "$here/cli/http_source_server.py" "$tmp/port" --dir "$tmp" </dev/null \
    >"$tmp/server.log" 2>&1 &
pids+=($!)
bench_wait_file "$tmp/port"
url="http://127.0.0.1:$(cat "$tmp/port")/file/events.sse"

# The same 100-byte values both ways.
awk -v n="$records" 'BEGIN {
    pad = sprintf("%100s", ""); gsub(/ /, "x", pad)
    for (i = 1; i <= n; i++) {
        v = substr("event-" i "-" pad, 1, 100)
        print "id: " i "\nevent: tick\ndata: " v "\n" > "'"$tmp"'/events.sse"
        print v > "'"$tmp"'/events.txt"
    }
}'

now() { date +%s.%N; }
rate() { awk -v n="$records" -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", n / (b - a) }'; }

echo "http-source: $records records of 100 B, acks=all, $reps runs each; load before:$(uptime | sed 's/.*load average://')"
src_rates=() file_rates=()
for ((r = 1; r <= reps; r++)); do
    stream-topics create "sse$r" -p 1 >/dev/null
    stream-topics create "file$r" -p 1 >/dev/null
    t0=$(now)
    stream-pub -t "sse$r" -q --url "$url"
    t1=$(now)
    stream-pub -t "file$r" -q -H id=1000000 -H event=tick <"$tmp/events.txt"
    t2=$(now)
    src_rates+=("$(rate "$t0" "$t1")")
    file_rates+=("$(rate "$t1" "$t2")")
    n=$(stream-sub -t "sse$r" -p 0 -o -1 -e -f '%o\n')
    [ "$((n + 1))" -eq "$records" ] || { echo "http-source.sh: sse$r holds $((n + 1)) records" >&2; exit 1; }
    echo "  run $r: source ${src_rates[-1]} records/s, file ${file_rates[-1]} records/s"
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ms=$(median "${src_rates[@]}")
mf=$(median "${file_rates[@]}")
echo "http-source: medians: --url (SSE) $ms records/s, file $mf records/s, ratio $(awk -v a="$ms" -v b="$mf" 'BEGIN { printf "%.0f%%", 100 * a / b }') (target >= 50%)"
echo "http-source: load after:$(uptime | sed 's/.*load average://')"
