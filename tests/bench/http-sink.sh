#!/usr/bin/env bash
# http-sink.sh - the HTTP sink's throughput (issue 19's benchmark):
#
#   tests/bench/http-sink.sh [BUILD_DIR]      (default: build; part of make bench)
#
# Starts stream-broker on a free loopback port with its data in a temp dir
# on a real disk, writes BENCH_SINK_RECORDS records of 100 bytes to a topic
# of BENCH_SINK_PARTITIONS partitions, then reads all of them, BENCH_REPS
# times each way (medians reported):
#
#   stdout        stream-sub -t tp -e >/dev/null            (plain, '%v\n')
#   stdout json   stream-sub -t tp -e --json >/dev/null     (the same bytes the sink sends)
#   post          stream-sub -t tp -e --post URL --post-batch 500
#                 to BUILD_DIR/bench/http_endpoint on loopback (a
#                 libmicrohttpd server that reads every body and answers
#                 200; tests/bench/http_endpoint.c), or, when it is not
#                 built, tests/cli/http_sink_server.py
#
# and prints records/s for each and the ratio post / stdout (the issue's
# target: >= 50%). The Python endpoint answers about a thousand requests
# a second on a small machine, so it, not the sink, would be measured; the
# requests/s line says how many requests the endpoint answered. Each run's records
# are counted (the endpoint's byte count against the topic's JSON) so a
# fast but lossy run cannot pass. Stops the broker and removes the temp
# dir at the end.
#
# Environment: BENCH_SINK_RECORDS (default 1000000), BENCH_SINK_PARTITIONS
# (4), BENCH_REPS (3), BENCH_DIR (where the temp dir goes).
set -euo pipefail
export STREAM_KAFKA_LISTEN=off

build=$(cd "${1:-build}" && pwd)
records=${BENCH_SINK_RECORDS:-1000000}
partitions=${BENCH_SINK_PARTITIONS:-4}
reps=${BENCH_REPS:-3}
for p in stream-broker stream-bench stream-topics stream-sub; do
    [ -x "$build/$p" ] || { echo "http-sink.sh: $build/$p is missing (make all)" >&2; exit 1; }
done
PATH="$build:$PATH"
here=$(cd "$(dirname "$0")" && pwd)

. "$here/lib.sh"
tmp=$(bench_tmpdir http-sink "$build") || exit 1
broker_pid=
server_pid=
cleanup() {
    [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
    bench_stop_broker
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_start_broker "$tmp"

if [ -x "$build/bench/http_endpoint" ]; then
    endpoint="http_endpoint (libmicrohttpd)"
    "$build/bench/http_endpoint" "$tmp/port" "$tmp/requests" </dev/null &
else
    endpoint="http_sink_server.py (make bench builds the faster bench/http_endpoint)"
    /usr/bin/python3 "$here/../cli/http_sink_server.py" --port-file "$tmp/port" --out /dev/null \
        --log "$tmp/requests" </dev/null &
fi
server_pid=$!
bench_wait_file "$tmp/port" "$server_pid"
url=http://127.0.0.1:$(cat "$tmp/port")/in

stream-topics create tp -p "$partitions" >/dev/null
stream-bench produce -t tp -n "$records" -s 100 --acks 1 --partitions "$partitions" -q --json \
    >/dev/null
json_bytes=$(stream-sub -t tp -e --json | wc -c)

echo "HTTP sink benchmark: broker $STREAM_BROKERS, data in $tmp ($(fstype "$tmp")), $(nproc) CPUs"
echo "  endpoint: $endpoint"
echo "  $records records of 100 bytes in $partitions partitions, $reps repetitions, medians;" \
    "load: $(cut -d' ' -f1-3 /proc/loadavg)"

# run_secs CMD...: seconds CMD took (wall clock, 3 decimals).
run_secs() {
    local t0 t1
    t0=$(date +%s.%N)
    "$@"
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
to_null() { stream-sub -t tp -e "$@" >/dev/null; }
to_post() { stream-sub -t tp -e --post "$url" --post-batch 500; }

plain=() json=() post=()
for ((r = 1; r <= reps; r++)); do
    plain+=("$(run_secs to_null)")
    json+=("$(run_secs to_null --json)")
    : >"$tmp/requests"
    post+=("$(run_secs to_post)")
    got=$(jq -s 'map(.bytes) | add' "$tmp/requests")
    [ "$got" = "$json_bytes" ] ||
        { echo "http-sink.sh: the endpoint took $got bytes, the topic's JSON is $json_bytes" >&2; exit 1; }
    nreq=$(wc -l <"$tmp/requests")
done
p=$(median "${plain[@]}") j=$(median "${json[@]}") s=$(median "${post[@]}")
awk -v n="$records" -v p="$p" -v j="$j" -v s="$s" -v q="$nreq" 'BEGIN {
    printf "  stdout (%%v)    %8.3f s  %10.0f records/s\n", p, n / p
    printf "  stdout --json  %8.3f s  %10.0f records/s\n", j, n / j
    printf "  --post         %8.3f s  %10.0f records/s  (%d requests, %.0f requests/s)\n", s, n / s, q, q / s
    printf "  post / stdout: %.0f%% (target >= 50%%); post / stdout --json: %.0f%%\n", 100 * p / s, 100 * j / s
}'
