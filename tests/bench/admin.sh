#!/usr/bin/env bash
# admin.sh - topic admin work at scale on one broker (issue 22's targets):
#
#   tests/bench/admin.sh [BUILD_DIR]      (default: build)
#
#   create    `stream-topics create big --partitions N`: its wall time, and
#             meanwhile the latency of `stream-bench e2e --rate R --acks 1`
#             on another topic (p50, p99, max). Target: <= 2 s for 10,000,
#             with p99 <= 5 ms and max <= 50 ms.
#   delete    `stream-topics delete big`, the same way.
#   restart   the broker's start until its --ready-file, with N partitions
#             (the topic created again): after SIGTERM, and after kill -9
#             with ADMIN_WRITTEN partitions written in the last second
#             before it. Targets: <= 1 s and <= 3 s for 10,000.
#
#   stop      SIGTERM to exit with N partitions (the batched close).
#   2 segments  the N partitions on 1 KiB segments, two runs of stream-pub
#             --acks 1 writing one 1,100-byte record to every partition each
#             (the second rolls every partition within its requests; acks=all
#             would measure N rounds of fdatasyncs on the one flusher), then
#             stream-sub reading all of them back: the wall times, and the
#             partitions with two segments and read back (all N expected),
#             under the open-file limit below.
#
# Environment: ADMIN_PARTITIONS (10000 when the open-file limit holds them,
# else 9000: a partition holds one descriptor, and the budget leaves 256 of
# the limit to connections; ADMIN_NOFILE sets the hard limit first where
# the script may), ADMIN_RATE (1000), ADMIN_WRITTEN (100),
# ADMIN_E2E_SECONDS (5: the e2e's length; the admin command starts a second
# into it), ADMIN_BROKER (default BUILD_DIR/stream-broker), BENCH_DIR (see
# lib.sh). The broker's data dir is on a real disk (not tmpfs); ulimit -n is
# raised to its hard limit; the Kafka listener is off (port 9092 may be
# taken).
set -euo pipefail

build=$(cd "${1:-build}" && pwd)
[ -z "${ADMIN_NOFILE:-}" ] || ulimit -Hn "$ADMIN_NOFILE" 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge 10500 ]; then
    parts=${ADMIN_PARTITIONS:-10000}
else
    parts=${ADMIN_PARTITIONS:-9000}
fi
rate=${ADMIN_RATE:-1000}
written=${ADMIN_WRITTEN:-100}
e2e_seconds=${ADMIN_E2E_SECONDS:-5}
broker_bin=${ADMIN_BROKER:-$build/stream-broker}
export STREAM_KAFKA_LISTEN=off
export STREAM_METRICS_LISTEN=off

. "$(dirname "$0")/lib.sh"
tmp=$(bench_tmpdir admin "$build") || exit 1
broker_pid=
e2e_pid=
cleanup() {
    [ -z "$e2e_pid" ] || kill -TERM "$e2e_pid" 2>/dev/null || true
    [ -z "$broker_pid" ] || { kill -KILL "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true; }
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# start_broker: starts the broker on $tmp/data; ready_ms = ms until ready.
start_broker() {
    rm -f "$tmp/ready"
    local t0
    t0=$(now_ms)
    "$broker_bin" --listen 127.0.0.1:0 --data-dir "$tmp/data" --ready-file "$tmp/ready" \
        --log-level warn </dev/null >/dev/null 2>>"$tmp/broker.log" &
    broker_pid=$!
    for _ in $(seq 6000); do
        [ -s "$tmp/ready" ] && break
        kill -0 "$broker_pid" 2>/dev/null || { cat "$tmp/broker.log" >&2; exit 1; }
        sleep 0.01
    done
    [ -s "$tmp/ready" ] || { echo "admin.sh: broker not ready" >&2; exit 1; }
    ready_ms=$(($(now_ms) - t0))
    STREAM_BROKERS=$(cat "$tmp/ready")
    export STREAM_BROKERS
}
stop_broker() { # SIG
    kill "-$1" "$broker_pid"
    wait "$broker_pid" 2>/dev/null || true
    broker_pid=
}

# during CMD...: runs CMD a second into an e2e of ADMIN_E2E_SECONDS on topic
# e2e; sets result to "<ms of CMD> <p50> <p99> <max>" (e2e latencies in ms).
during() {
    "$build/stream-bench" e2e -t e2e -n $((rate * e2e_seconds)) --rate "$rate" --acks 1 \
        --json -q >"$tmp/e2e.json" 2>"$tmp/e2e.err" &
    e2e_pid=$!
    sleep 1
    local t0 t1
    t0=$(now_ms)
    "$@" >/dev/null
    t1=$(now_ms)
    wait "$e2e_pid" || { cat "$tmp/e2e.err" >&2; exit 1; }
    e2e_pid=
    local lat
    lat=$(sed 's/.*"p50":\([0-9.]*\).*"p99":\([0-9.]*\).*"max":\([0-9.]*\).*/\1 \2 \3/' "$tmp/e2e.json")
    result="$((t1 - t0)) $lat"
}

echo "admin benchmark: broker $broker_bin, data in $tmp ($(fstype "$tmp")), $(nproc) CPUs," \
    "ulimit -n $(ulimit -n)"
start_broker
"$build/stream-topics" create e2e -p 1 >/dev/null
during "$build/stream-topics" create big --partitions "$parts"
read -r c_ms c50 c99 cmax <<<"$result"
during "$build/stream-topics" delete big
read -r d_ms d50 d99 dmax <<<"$result"
"$build/stream-topics" create big --partitions "$parts" >/dev/null
t0=$(now_ms)
stop_broker TERM
stop_ms=$(($(now_ms) - t0))
start_broker
term_ms=$ready_ms
# $written records with distinct keys (about as many partitions), then kill -9
# within the second.
seq "$written" | awk '{ print "k" $1 ":x" }' | "$build/stream-pub" -t big --acks 1 -K : >/dev/null
stop_broker KILL
start_broker
kill9_ms=$ready_ms

# Two segments a partition: one record of 1,100 bytes to each partition,
# twice (JSON lines naming the partition).
"$build/stream-topics" alter big -c segment.bytes=1024 >/dev/null
pad=$(printf '%01100d' 0)
one_each() { # ROUND
    awk -v n="$parts" -v r="$1" -v pad="$pad" 'BEGIN { for (p = 0; p < n; p++)
        printf "{\"partition\":%d,\"key\":\"r%d-%d\",\"value\":\"%s\"}\n", p, r, p, pad }' |
        "$build/stream-pub" -t big --json --acks 1
}
one_each 1
t0=$(now_ms)
one_each 2
roll_ms=$(($(now_ms) - t0))
two_segs=$(find "$tmp/data" -path '*/big-*' -name '*.log' |
    awk -F/ '{ n[$(NF - 1)]++ } END { for (d in n) if (n[d] >= 2) k++; print k + 0 }')
t0=$(now_ms)
read_back=$("$build/stream-sub" -t big -e -f '%p\n' | sort -u | wc -l)
fetch_ms=$(($(now_ms) - t0))
fds=$(find "/proc/$broker_pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
stop_broker TERM

printf '%-40s %10s %10s %10s %10s\n' "what" "ms" "e2e p50" "p99" "max"
printf '%-40s %10s %10s %10s %10s\n' "create --partitions $parts" "$c_ms" "$c50" "$c99" "$cmax"
printf '%-40s %10s %10s %10s %10s\n' "delete ($parts partitions)" "$d_ms" "$d50" "$d99" "$dmax"
printf '%-40s %10s\n' "stop (SIGTERM to exit, $parts)" "$stop_ms"
printf '%-40s %10s\n' "restart after SIGTERM ($parts)" "$term_ms"
printf '%-40s %10s\n' "restart after kill -9 ($written written)" "$kill9_ms"
printf '%-40s %10s   %s\n' "2 segments: produce, one each ($parts)" "$roll_ms" \
    "$two_segs partitions with 2 segments; broker held $fds descriptors of $(ulimit -n)"
printf '%-40s %10s   %s\n' "2 segments: fetch all ($parts)" "$fetch_ms" \
    "$read_back partitions read back"
