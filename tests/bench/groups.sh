#!/usr/bin/env bash
# groups.sh - consumer groups under measurement (issue 4's benchmark):
#
#   tests/bench/groups.sh [BUILD_DIR]      (default: build)
#
# Starts stream-broker on a free loopback port with its data in a temp dir on
# a real disk, then measures, BENCH_REPS times each (medians reported):
#
#   rebalance on join   a stable group of stream-sub -g members on a topic of
#                       BENCH_GROUP_PARTITIONS partitions; one more member is
#                       started; time until every partition is owned again
#                       (describe_group says stable, every member has its
#                       share). Measured for the 2nd and the 3rd member.
#   rebalance on kill   kill -9 of one of three members; time until the two
#                       others own every partition. Bounded below by the
#                       session timeout (BENCH_SESSION_MS, asked for by the
#                       members; the broker's minimum is lowered to allow it).
#   group consume       BENCH_GROUP_RECORDS records of 100 bytes read with
#                       `stream-sub -g G -e` by 1 member and by 3 members
#                       started together (time from start until all have
#                       exited, joins and rebalances included), next to a
#                       standalone `stream-sub -e` for reference.
#
# "Owned again" is observed by polling `stream-topics group G --json` (each
# poll takes a few ms: that is the resolution). Stops the broker and removes
# the temp dir at the end.
#
# Environment: BENCH_GROUP_RECORDS (default 3000000), BENCH_GROUP_PARTITIONS
# (12), BENCH_SESSION_MS (3000), BENCH_REPS (3), BENCH_DIR (where the temp
# dir goes; default the first of $TMPDIR, /var/tmp, /tmp, the build dir that
# is not tmpfs).
set -euo pipefail
# The brokers started here leave port 9092 (the Kafka listener's) alone.
export STREAM_KAFKA_LISTEN=off
export STREAM_METRICS_LISTEN=off

build=$(cd "${1:-build}" && pwd)
records=${BENCH_GROUP_RECORDS:-3000000}
partitions=${BENCH_GROUP_PARTITIONS:-12}
session=${BENCH_SESSION_MS:-3000}
reps=${BENCH_REPS:-3}
for p in stream-broker stream-bench stream-topics stream-sub; do
    [ -x "$build/$p" ] || { echo "groups.sh: $build/$p is missing (make all)" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "groups.sh: needs jq" >&2; exit 1; }
PATH="$build:$PATH"

# A temp dir on a real disk.
. "$(dirname "$0")/lib.sh"
tmp=$(bench_tmpdir groups "$build") || exit 1
broker_pid=
members=()
cleanup() {
    local p
    for p in "${members[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    if [ -n "$broker_pid" ]; then
        kill -TERM "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stream-broker --listen 127.0.0.1:0 --data-dir "$tmp/data" --ready-file "$tmp/ready" \
    --log-level warn --set "group.min.session.timeout.ms=$session" \
    </dev/null 2>"$tmp/broker.log" &
broker_pid=$!
for _ in $(seq 200); do
    [ -s "$tmp/ready" ] && break
    kill -0 "$broker_pid" 2>/dev/null || { cat "$tmp/broker.log" >&2; exit 1; }
    sleep 0.05
done
[ -s "$tmp/ready" ] || { echo "groups.sh: broker not ready" >&2; exit 1; }
export STREAM_BROKERS
STREAM_BROKERS=$(cat "$tmp/ready")

echo "group benchmark: broker $STREAM_BROKERS, data in $tmp ($(fstype "$tmp")), $(nproc) CPUs"
echo "  $partitions partitions, session timeout $session ms, $records records of 100 bytes," \
    "$reps repetitions, medians"

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# member GROUP TOPIC: a following stream-sub -g in the background.
member() {
    stream-sub -g "$1" -t "$2" -f '%o\n' --session-timeout-ms "$session" \
        >/dev/null 2>>"$tmp/members.log" &
    members+=("$!")
    last_member=$!
}

# owned GROUP N: true when the group is stable with N members that own
# every partition between them, each its fair share.
owned() {
    stream-topics group "$1" --json 2>/dev/null | jq -e --argjson n "$2" --argjson p "$partitions" '
        .state == "stable" and (.members | length) == $n and
        ([.members[].assignment[].partitions[]] | length) == $p and
        all(.members[]; ([.assignment[].partitions[]] | length) >= (($p / $n) | floor))' \
        >/dev/null
}

# wait_owned GROUP N: polls until owned; prints the ms it took from $t0.
wait_owned() {
    local i
    for ((i = 0; i < 3000; i++)); do
        if owned "$1" "$2"; then
            echo $(($(now_ms) - t0))
            return 0
        fi
    done
    echo "groups.sh: group $1 never had $2 members owning every partition" >&2
    stream-topics group "$1" >&2
    exit 1
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

# ---- rebalance times ---------------------------------------------------------
stream-topics create rb -p "$partitions"
: >"$tmp/join2" >"$tmp/join3" >"$tmp/kill"
for r in $(seq "$reps"); do
    echo "  rebalance repetition $r/$reps ..." >&2
    g=rb-$r
    members=()
    member "$g" rb
    t0=$(now_ms)
    wait_owned "$g" 1 >/dev/null
    t0=$(now_ms)
    member "$g" rb
    wait_owned "$g" 2 >>"$tmp/join2"
    t0=$(now_ms)
    member "$g" rb
    wait_owned "$g" 3 >>"$tmp/join3"
    t0=$(now_ms)
    kill -KILL "${members[0]}"
    wait "${members[0]}" 2>/dev/null || true
    wait_owned "$g" 2 >>"$tmp/kill"
    for p in "${members[@]:1}"; do
        kill -TERM "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    members=()
done

# ---- throughput -----------------------------------------------------------------
echo "  producing $records records ..." >&2
stream-bench produce -t tp -n "$records" -s 100 --acks 1 --partitions "$partitions" -q --json \
    >"$tmp/produce.json"
total=$(stream-topics describe tp --json | jq '[.topics[0].partitions[].high_watermark] | add')

# consume_run NAME MEMBERS: MEMBERS stream-sub -e started together; prints
# "records elapsed_ms".
consume_run() {
    local group=$1 n=$2 i t_start pids=()
    t_start=$(now_ms)
    for ((i = 0; i < n; i++)); do
        if [ "$group" = none ]; then
            stream-sub -t tp -e -f '%v\n' | wc -l >"$tmp/count.$i" &
        else
            stream-sub -g "$group" -t tp -e -f '%v\n' | wc -l >"$tmp/count.$i" &
        fi
        pids+=("$!")
    done
    # A member may find nothing left for it (exit status 3).
    for p in "${pids[@]}"; do wait "$p" || [ $? -eq 3 ]; done
    local elapsed=$(($(now_ms) - t_start)) got=0
    for ((i = 0; i < n; i++)); do got=$((got + $(cat "$tmp/count.$i"))); done
    echo "$got $elapsed"
}

: >"$tmp/c0" >"$tmp/c1" >"$tmp/c3"
for r in $(seq "$reps"); do
    echo "  consume repetition $r/$reps ..." >&2
    consume_run none 1 >>"$tmp/c0"
    consume_run "tp1-$r" 1 >>"$tmp/c1"
    consume_run "tp3-$r" 3 >>"$tmp/c3"
done
for f in c0 c1 c3; do
    while read -r got ms; do
        [ "$got" -ge "$total" ] || { echo "groups.sh: $f read $got of $total records" >&2; exit 1; }
    done <"$tmp/$f"
done

rate() { # rate FILE: median records/s
    awk -v total="$total" '{ print int(total * 1000 / $2) }' "$tmp/$1" | median
}
ms() { median <"$tmp/$1"; }
dups() { # records read beyond the total, 3 members (rebalance re-reads), max over runs
    awk -v total="$total" '{ d = $1 - total; if (d > m) m = d } END { print m + 0 }' "$tmp/$1"
}

echo
printf '%-44s %12s\n' "measurement" "median"
printf '%-44s %9s ms\n' "rebalance: 2nd member joins (1 -> 2)" "$(ms join2)"
printf '%-44s %9s ms\n' "rebalance: 3rd member joins (2 -> 3)" "$(ms join3)"
printf '%-44s %9s ms\n' "rebalance: kill -9 of 1 of 3 members" "$(ms kill)"
printf '%-44s %9s /s\n' "consume, standalone stream-sub -e" "$(rate c0)"
printf '%-44s %9s /s\n' "consume, group of 1 (stream-sub -g -e)" "$(rate c1)"
printf '%-44s %9s /s\n' "consume, group of 3 started together" "$(rate c3)"
echo
echo "$total records of 100 bytes in $partitions partitions; session timeout $session ms" \
    "(the kill figure includes it); group runs include joining and rebalancing;" \
    "records read twice by the 3-member runs (handed over mid-read): at most $(dups c3)."
