#!/usr/bin/env bash
# peers.sh - `make bench-peers`: stream side by side with Redis Streams and
# NATS JetStream, and against the machine's own limits, in one run (issue 6).
#
#   tests/bench/peers.sh [BUILD_DIR]      (default: build; needs `make all`)
#
# What it does:
#  1. Installs the bench-only Debian packages that are missing (apt-get update
#     once, then install; sudo when not root): redis-server, redis-tools
#     (redis-benchmark), nats-server, libnats-dev, libhiredis-dev. `make check`
#     never needs them.
#  2. Builds the helpers in tests/bench/peers/ into BUILD_DIR/peers/ (not
#     BUILD_DIR/bench/, whose every program `make bench` runs): nats_bench
#     (libnats load generator), redis_xread (hiredis XREAD reader),
#     loopback_bw (TCP sender/receiver over 127.0.0.1).
#  3. Starts, on free loopback ports, in one temp dir on a real disk (never
#     tmpfs: durability must cost what it costs): stream-broker; redis-server
#     with appendonly yes, appendfsync everysec, save "" (and automatic AOF
#     rewrites off: a rewrite forks and would compete for the CPUs mid-run;
#     the AOF is rewritten between runs instead); nats-server -js with file
#     storage (-sd). Every server it started is stopped on exit, failure or
#     Ctrl-C.
#  4. Runs each workload on each system REPS times, the systems interleaved
#     within a repetition so that load from others on the machine falls on
#     all of them alike, with `sync` before each measured run:
#       produce 100 B, one producer   stream-bench produce --acks 1
#                                     redis-benchmark -c 1 -P 64 XADD key * f <100 B>
#                                     nats_bench produce (js_PublishAsync, 4096 pending)
#                                     kafka_bench produce (librdkafka, acks=1, through the
#                                     broker's Kafka listener; issue 14)
#       produce 100 B to 1000         stream-bench produce --topics 10 --partitions 100
#       partitions, one producer      --acks 1 (records round-robin over the 10
#                                     topics), against the one-partition stream run
#                                     of the same repetition (right before it)
#       consume 100 B from the start  stream-bench consume
#                                     kafka_bench consume (librdkafka from the start)
#                                     redis_xread (XREAD COUNT 1000, one in flight)
#                                     nats_bench consume (pull consumer, Fetch 1000)
#       produce 1 KiB, acks=all       stream-bench produce --acks all
#                                     vs dd if=/dev/zero bs=1M conv=fdatasync, same bytes
#                                     vs disk_writer (tests/bench/disk_writer.c: the
#                                     broker's durable path at best, 256 KiB writes
#                                     of 1 KiB records group-committed, same bytes,
#                                     once as fast as it can write and once at
#                                     most 4 MiB ahead of the disk: the window of a
#                                     producer, 16 requests of 256 KiB in flight);
#                                     as root, the page cache is dropped before each
#                                     of the three (see "memory" below)
#       consume 1 KiB from the start  stream-bench consume
#                                     vs loopback_bw (one TCP stream, 1 MiB writes)
#       e2e 100 B at 10,000/s         stream-bench e2e --acks 1, --acks all
#                                     vs disk_writer's fdatasync of one 100 B record
#                                     (p99) and its 100 B records written at the same
#                                     rate under group commit, write to on disk (p99)
#  5. Prints one table of medians (records/s, MB/s, p99 latency, stream / x),
#     then the issue's targets with met / not met, and writes
#     BUILD_DIR/bench-peers.tsv (the table) and BUILD_DIR/bench-peers.json
#     (settings, load averages, every run, medians, targets).
#
# Memory: on a virtual machine whose free memory goes back to its host (a
# balloon with free page reporting, as here), the first write to a page
# the page cache takes from free memory faults the page back in from the
# host: 1 GB of acks=1 1 KiB records ran at 2,024 MB/s right after
# `echo 3 > drop_caches` (pages just freed, still backed) and at 574 MB/s
# 25 s later, the broker's CPU 0.42 s against 1.69 s, nearly all of it
# in copy_folio_from_iter_atomic (issue 20's note). dd and disk_writer
# delete their file at the end, so whatever runs next reuses its pages:
# the durable-path comparisons would measure the order of the runs. As
# root, the page cache is dropped right before each of those three runs
# so that they meet the same memory; otherwise a warning says they do not.
#
# MB are 10^6 bytes of payload (values; the Redis field name and ids, NATS
# subjects and stream batch framing are not counted). p99 of a produce is the
# time from handing a record to the client to its acknowledgement (redis-
# benchmark: from writing a pipeline to each reply). Peers' e2e latency is
# not measured.
#
# Environment (defaults keep a run under ~10 minutes on 2 cores):
#   PEERS_RECORDS        100-byte records per produce/consume run (5000000)
#   PEERS_RECORDS_1K     1 KiB records per acks=all/consume run (1000000)
#   PEERS_REPS           repetitions; medians are reported (3)
#   PEERS_E2E_RATE       e2e records/s (10000); PEERS_E2E_SECONDS (10)
#   PEERS_WIDE_TOPICS    topics of the many-partition produce (10)
#   PEERS_WIDE_PARTITIONS partitions of each of those topics (100)
#   PEERS_REDIS_CLIENTS  redis-benchmark -c (1: one producer)
#   PEERS_REDIS_PIPELINE redis-benchmark -P (64)
#   PEERS_REDIS_COUNT    XREAD COUNT (1000)
#   PEERS_NATS_PENDING   js_PublishAsync's MaxPending (4096, near the Go client's 4000)
#   PEERS_NATS_BATCH     pull Fetch batch (1000)
#   PEERS_LOOPBACK_MB    MB sent by loopback_bw per run (4000)
#   BENCH_DIR            where the temp dir goes (default: first of $TMPDIR,
#                        /var/tmp, /tmp, BUILD_DIR that is not tmpfs)
set -euo pipefail
# The brokers started here leave port 9092 (the Kafka listener's) alone.
export STREAM_KAFKA_LISTEN=off
export STREAM_METRICS_LISTEN=off

here=$(cd "$(dirname "$0")" && pwd)
case "${1:-}" in
-h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
esac
build=$(cd "${1:-build}" && pwd)
records=${PEERS_RECORDS:-5000000}
records_1k=${PEERS_RECORDS_1K:-1000000}
reps=${PEERS_REPS:-3}
rate=${PEERS_E2E_RATE:-10000}
e2e_records=$((rate * ${PEERS_E2E_SECONDS:-10}))
redis_clients=${PEERS_REDIS_CLIENTS:-1}
redis_pipeline=${PEERS_REDIS_PIPELINE:-64}
redis_count=${PEERS_REDIS_COUNT:-1000}
nats_pending=${PEERS_NATS_PENDING:-4096}
nats_batch=${PEERS_NATS_BATCH:-1000}
loopback_mb=${PEERS_LOOPBACK_MB:-4000}
wide_topics=${PEERS_WIDE_TOPICS:-10}
wide_partitions=${PEERS_WIDE_PARTITIONS:-100}
for v in records records_1k reps rate e2e_records redis_clients redis_pipeline redis_count \
    nats_pending nats_batch loopback_mb wide_topics wide_partitions; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "peers.sh: $v must be a positive integer" >&2; exit 2; }
done
for p in stream-broker stream-bench stream-topics bench/disk_writer; do
    [ -x "$build/$p" ] || { echo "peers.sh: $build/$p is missing (make all)" >&2; exit 1; }
done
say() { echo "peers: $*" >&2; }

# ---- 1. bench-only dependencies ----------------------------------------------
peer_pkgs=(redis-server redis-tools nats-server libnats-dev libhiredis-dev librdkafka-dev)
missing=()
for p in "${peer_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    sudo=
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# nats-server lives in /usr/sbin, outside a user's usual PATH.
PATH=$PATH:/usr/sbin:/sbin
for p in redis-server redis-benchmark redis-cli nats-server python3 pkg-config; do
    command -v "$p" >/dev/null || { echo "peers.sh: $p not found" >&2; exit 1; }
done

# ---- 2. the helpers ------------------------------------------------------------
bin=$build/peers
mkdir -p "$bin"
cflags=(-std=c17 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
    -Wno-unused-parameter -pthread)
build_helper() { # build_helper NAME PKG-CONFIG-MODULES...
    local name=$1 src=$here/peers/$1.c
    shift
    if [ "$bin/$name" -nt "$src" ] && [ "$bin/$name" -nt "$here/peers/peers.h" ]; then
        return 0
    fi
    # shellcheck disable=SC2046 # pkg-config prints words meant to be split
    "${CC:-cc}" "${cflags[@]}" -o "$bin/$name" "$src" \
        $(if [ $# -gt 0 ]; then pkg-config --cflags --libs "$@"; fi)
}
build_helper nats_bench libnats
build_helper redis_xread hiredis
build_helper loopback_bw
build_helper kafka_bench rdkafka

# ---- 3. the servers ------------------------------------------------------------
# A temp dir on a real disk.
. "$(dirname "$0")/lib.sh"
tmp=$(bench_tmpdir peers "$build") || exit 1
res=$tmp/results
mkdir -p "$res" "$tmp/stream" "$tmp/redis" "$tmp/nats" "$tmp/dd"

pids=()
stop_server() { # SIGTERM, up to 10 s, then SIGKILL
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local status=$? pid
    if [ -n "${child:-}" ]; then # a measured run still going
        kill -TERM "$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
    fi
    for pid in "${pids[@]}"; do
        stop_server "$pid"
    done
    if [ $status = 130 ] || [ $status = 143 ]; then
        say "interrupted; every server stopped"
    elif [ $status -ne 0 ]; then
        say "failed (status $status); the servers' last log lines:"
        tail -n 5 "$tmp"/stream/broker.log "$tmp"/redis/redis.log "$tmp"/nats/nats.log >&2 || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for WHAT PID CMD...: until CMD succeeds (10 s), failing if PID dies.
wait_for() {
    local what=$1 pid=$2 i
    shift 2
    for ((i = 0; i < 200; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        kill -0 "$pid" 2>/dev/null || { say "$what exited before it was ready"; return 1; }
        sleep 0.05
    done
    say "$what not ready after 10 s"
    return 1
}

# The broker's Kafka listener (for kafka_bench) on a free port of its own.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
kafka_port=$(free_port)
"$build/stream-broker" --listen 127.0.0.1:0 --data-dir "$tmp/stream/data" \
    --kafka-listen "127.0.0.1:$kafka_port" \
    --ready-file "$tmp/stream/ready" --log-level warn </dev/null 2>"$tmp/stream/broker.log" &
pids+=($!)
wait_for stream-broker $! test -s "$tmp/stream/ready"
export STREAM_BROKERS
STREAM_BROKERS=$(cat "$tmp/stream/ready")
kafka_brokers=127.0.0.1:$kafka_port

# redis-server cannot pick its own port (--port 0 turns TCP off): take a free
# one from the kernel (free_port, above) and retry if someone else grabs it first.
redis_port=
for _ in 1 2 3 4 5; do
    port=$(free_port)
    redis-server --bind 127.0.0.1 --port "$port" --dir "$tmp/redis" --daemonize no \
        --appendonly yes --appendfsync everysec --save "" --auto-aof-rewrite-percentage 0 \
        --logfile "$tmp/redis/redis.log" </dev/null &
    pid=$!
    pids+=("$pid")
    if wait_for redis-server "$pid" redis-cli -h 127.0.0.1 -p "$port" ping; then
        redis_port=$port
        break
    fi
done
[ -n "$redis_port" ] || { say "redis-server did not start"; exit 1; }
rcli() { redis-cli -h 127.0.0.1 -p "$redis_port" "$@"; }

nats-server -a 127.0.0.1 -p -1 -js -sd "$tmp/nats/store" --ports_file_dir "$tmp/nats" \
    -l "$tmp/nats/nats.log" </dev/null &
nats_pid=$!
pids+=("$nats_pid")
nats_url() { grep -o 'nats://[^"]*' "$tmp"/nats/*.ports 2>/dev/null | head -n 1; }
wait_for nats-server "$nats_pid" nats_url
nats_url=$(nats_url)
# JetStream answers once it is up; the ports file comes a little earlier.
wait_for "nats-server JetStream" "$nats_pid" \
    "$bin/nats_bench" -u "$nats_url" -S READY -s ready.x -n 1 -m 8 produce
"$bin/nats_bench" -u "$nats_url" -S READY delete >/dev/null

# ---- 4. the workloads ------------------------------------------------------------
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
say "stream at $STREAM_BROKERS, redis at 127.0.0.1:$redis_port, nats at $nats_url"
say "data in $tmp ($(fstype "$tmp")); $(nproc) CPUs; load average $load_start"
say "$records x 100 B, $records_1k x 1 KiB, e2e $e2e_records at $rate/s; $reps repetitions"
say "many partitions: $wide_topics topics x $wide_partitions partitions"

value100=$(python3 -c '
x = 2463534242
out = []
for _ in range(100):
    x ^= (x << 13) & 0xFFFFFFFF; x ^= x >> 17; x ^= (x << 5) & 0xFFFFFFFF
    out.append(chr(ord("a") + x % 26))
print("".join(out))')

# run WORKLOAD SYSTEM FORMAT CMD...: one measured run of CMD, whose output
# the FORMAT function turns into a JSON line for results/WORKLOAD.SYSTEM.jsonl
# (json: CMD's last line is one). CMD runs as a direct child so that a signal
# to this script stops it at once (cleanup kills $child). Dirty pages of
# earlier runs are synced first so no run pays for another's writeback.
child=
run() {
    local workload=$1 system=$2 format=$3
    shift 3
    sync
    "$@" >"$tmp/out" 2>"$tmp/err" </dev/null &
    child=$!
    if ! wait "$child"; then
        child=
        say "$workload on $system failed: $*"
        cat "$tmp/err" >&2
        exit 1
    fi
    child=
    "$format" <"$tmp/out" >>"$res/$workload.$system.jsonl"
}
json() { tail -n 1; }
# disk_writer's one JSON line serves two rows: the 1 KiB throughput limit
# and, from its fdatasync and paced phases, the acks=all e2e floor.
writer_json() { tail -n 1 | tee -a "$res/e2e_acksall.writer.jsonl"; }
# As root, drops the page cache before a durable-path run (see "Memory").
can_drop=false
[ -w /proc/sys/vm/drop_caches ] && can_drop=true
$can_drop || say "warning: cannot drop the page cache (not root): the 1 KiB acks=all rows may not meet the same memory"
fresh() { # fresh CMD...: CMD after sync and, as root, an empty page cache
    sync
    if $can_drop; then echo 3 >/proc/sys/vm/drop_caches; fi
    "$@"
}

sbench=("$build/stream-bench" --json -q)

# redis-benchmark --csv (its last line) -> the JSON fields the others print.
redis_csv() {
    python3 -c '
import csv, json, sys
size, n = int(sys.argv[1]), int(sys.argv[2])
row = list(csv.reader(sys.stdin))[-1]
rps, avg, _min, p50, p95, p99, mx = (float(v) for v in row[1:8])
print(json.dumps({"system": "redis", "mode": "produce", "records": n,
                  "records_per_sec": rps, "mb_per_sec": round(rps * size / 1e6, 3),
                  "latency_ms": {"avg": avg, "p50": p50, "p95": p95, "p99": p99, "max": mx}}))
' 100 "$records"
}
redis_check() { # redis_check KEY: every XADD of redis-benchmark made an entry
    # (it completes its last pipeline, so up to clients x pipeline - 1 more)
    local len
    len=$(rcli XLEN "$1")
    if ! [[ $len =~ ^[0-9]+$ ]] || [ "$len" -lt "$records" ] ||
        [ "$len" -ge $((records + redis_clients * redis_pipeline)) ]; then
        say "redis-benchmark: $len entries in $1 after $records XADDs"
        exit 1
    fi
}

# dd's closing line (on its stderr) -> {"system": "disk", "mb_per_sec": ...}
dd_line() {
    rm -f "$tmp/dd/f"
    python3 -c '
import json, re, sys
line = sys.stdin.read().strip().splitlines()[-1]
m = re.match(r"(\d+) bytes .* copied, ([0-9.e+-]+) s", line)
if not m:
    sys.exit("peers.sh: cannot read dd output: " + line)
b, s = int(m.group(1)), float(m.group(2))
print(json.dumps({"system": "disk", "mode": "dd", "bytes": b, "elapsed_s": s,
                  "mb_per_sec": round(b / s / 1e6, 3)}))
' <"$tmp/err"
}
# The disk's sequential write speed: the bytes of the 1 KiB runs, on the data's
# file system, flushed (fdatasync) before dd reports.
dd_mib=$(((records_1k * 1024 + 1048575) / 1048576))
dd_cmd=(env LC_ALL=C dd if=/dev/zero of="$tmp/dd/f" bs=1M count="$dd_mib" conv=fdatasync)
# The bare writer: the same 1 KiB records group-committed, then (same
# process) 2000 fdatasyncs of one 100 B record and 100 B records at the
# e2e rate for the e2e's seconds.
writer_cmd=("$build/bench/disk_writer" --json -n "$records_1k" -s 1024 -S 2000 -r "$rate"
    -T "${PEERS_E2E_SECONDS:-10}" "$tmp/dd")

# Rewrites Redis's AOF down to nothing between runs, outside the measurements.
redis_reset() {
    rcli FLUSHALL >/dev/null
    rcli BGREWRITEAOF >/dev/null
    local i
    for ((i = 0; i < 600; i++)); do
        rcli INFO persistence | grep -q '^aof_rewrite_in_progress:0' &&
            ! rcli INFO persistence | grep -q '^aof_rewrite_scheduled:1' && return 0
        sleep 0.1
    done
    say "redis: AOF rewrite still running after 60 s"
}

t_start=$(date +%s)
for r in $(seq "$reps"); do
    say "repetition $r/$reps ($(($(date +%s) - t_start)) s so far, load $(cut -d' ' -f1 /proc/loadavg))"
    run produce100 stream json "${sbench[@]}" produce -t "p100-$r" -n "$records" -s 100 --acks 1
    # The same records from one producer to many partitions, next to the
    # one-partition run so that both meet the same load.
    run produce_wide stream json "${sbench[@]}" produce -t "w100-$r" --topics "$wide_topics" \
        --partitions "$wide_partitions" -n "$records" -s 100 --acks 1
    for ((i = 0; i < wide_topics; i++)); do
        "$build/stream-topics" delete "w100-$r-$i" >/dev/null
    done
    run produce100 redis redis_csv redis-benchmark -h 127.0.0.1 -p "$redis_port" \
        -c "$redis_clients" -P "$redis_pipeline" -n "$records" --csv XADD "s100-$r" '*' f "$value100"
    redis_check "s100-$r"
    run produce100 nats json "$bin/nats_bench" -u "$nats_url" -S "P100_$r" -s "p100.$r" \
        -n "$records" -m 100 -P "$nats_pending" produce

    # The same records through the Kafka listener, by librdkafka.
    run produce100 kafka json "$bin/kafka_bench" -b "$kafka_brokers" -t "kp100-$r" -n "$records" \
        -m 100 produce

    run consume100 stream json "${sbench[@]}" consume -t "p100-$r"
    run consume100 kafka json "$bin/kafka_bench" -b "$kafka_brokers" -t "kp100-$r" -n "$records" \
        consume
    run consume100 redis json "$bin/redis_xread" -p "$redis_port" -k "s100-$r" -n "$records" \
        -c "$redis_count"
    run consume100 nats json "$bin/nats_bench" -u "$nats_url" -S "P100_$r" -s "p100.$r" \
        -n "$records" -B "$nats_batch" consume

    "$build/stream-topics" delete "p100-$r" >/dev/null
    "$build/stream-topics" delete "kp100-$r" >/dev/null
    "$bin/nats_bench" -u "$nats_url" -S "P100_$r" delete
    redis_reset

    # The disk first in odd repetitions, stream first in even ones.
    if [ $((r % 2)) = 1 ]; then
        fresh run produce1k_all disk dd_line "${dd_cmd[@]}"
        fresh run produce1k_all writer writer_json "${writer_cmd[@]}"
    fi
    fresh run produce1k_all stream json "${sbench[@]}" produce -t "k1-$r" -n "$records_1k" \
        -s 1k --acks all
    if [ $((r % 2)) = 0 ]; then
        fresh run produce1k_all disk dd_line "${dd_cmd[@]}"
        fresh run produce1k_all writer writer_json "${writer_cmd[@]}"
    fi
    run consume1k stream json "${sbench[@]}" consume -t "k1-$r"
    run consume1k loopback json "$bin/loopback_bw" -m "$loopback_mb"
    "$build/stream-topics" delete "k1-$r" >/dev/null

    run e2e_acks1 stream json "${sbench[@]}" e2e -t "e1-$r" --rate "$rate" -n "$e2e_records" \
        --acks 1
    run e2e_acksall stream json "${sbench[@]}" e2e -t "eall-$r" --rate "$rate" \
        -n "$e2e_records" --acks all
    "$build/stream-topics" delete "e1-$r" "eall-$r" >/dev/null
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$(($(date +%s) - t_start))
# The many-partition row's reference: the one-partition runs of this script
# run (report.py ratios a "peer" row's records/s).
cp "$res/produce100.stream.jsonl" "$res/produce_wide.single.jsonl"

# ---- 5. the table ------------------------------------------------------------------
python3 "$here/peers/report.py" "$res" "$build" <<EOF
{"records_100b": $records, "records_1k": $records_1k, "repetitions": $reps,
 "e2e_rate": $rate, "e2e_records": $e2e_records,
 "redis_clients": $redis_clients, "redis_pipeline": $redis_pipeline,
 "redis_xread_count": $redis_count, "nats_max_pending": $nats_pending,
 "nats_fetch_batch": $nats_batch, "loopback_mb": $loopback_mb, "dd_mib": $dd_mib,
 "wide_topics": $wide_topics, "wide_partitions": $wide_partitions,
 "wide_partitions_total": $((wide_topics * wide_partitions)),
 "cpus": $(nproc), "load_start": "$load_start", "load_end": "$load_end",
 "elapsed_s": $elapsed, "data_fs": "$(fstype "$tmp")",
 "redis_version": "$(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')",
 "nats_version": "$(nats-server --version | sed 's/^nats-server: *//')"}
EOF

# ---- 6. the cluster: replication's cost and failover (tests/bench/cluster.sh) --------
say "the cluster rows (tests/bench/cluster.sh)"
"$here/cluster.sh" "$build"
