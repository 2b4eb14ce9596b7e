#!/usr/bin/env bash
# offsets-soak.sh - consumer groups committing over and over for a while:
# __consumer_offsets, compacted, must stay under a fixed size (issue 15).
#
#   tests/soak/offsets-soak.sh BUILD_DIR [SECONDS]   (make soak-offsets)
#
# For SECONDS (default $OFFSETS_SOAK_SECONDS, else 600), against the
# programs in BUILD_DIR: one broker with __consumer_offsets in
# OFFSETS_SOAK_PARTITIONS (4) partitions, altered to small segments
# (segment.bytes 16 KiB, segment.ms 2 s, min.cleanable.dirty.ratio 0.2)
# and a cleaner that looks every 500 ms; a producer writing to a topic of 4
# partitions; OFFSETS_SOAK_GROUPS (3) groups of one stream-sub member each,
# committing every OFFSETS_SOAK_COMMIT_MS (50) ms, 20 times faster than the
# issue's "every second", so an hour's commits take 3 minutes; every member
# is restarted every 20-40 s (SIGTERM, or kill -9 one time in three), as
# groups come and go. Every 2 s the bytes of __consumer_offsets' segment
# files (*.log) are summed; after the first minute (warm-up: its segments
# fill and the first cleanings run) none may pass OFFSETS_SOAK_BOUND
# (default 256 KiB: per partition some small cleaned segments and a 16 KiB
# active one), while the records written to it add up to many times that.
#
# Output is TAP, one test, with the figures as comments; exit status 0
# only when the bound held. OFFSETS_SOAK_DIR=DIR keeps the files there.
set -u
export STREAM_KAFKA_LISTEN=off
export STREAM_METRICS_LISTEN=off
build=${1:?usage: tests/soak/offsets-soak.sh BUILD_DIR [SECONDS]}
seconds=${2:-${OFFSETS_SOAK_SECONDS:-600}}
case $seconds in '' | *[!0-9]*) echo "offsets-soak.sh: SECONDS must be a whole number" >&2; exit 2 ;; esac
build=$(cd "$build" && pwd) || exit 2
export PATH="$build:$PATH"
groups=${OFFSETS_SOAK_GROUPS:-3}
commit_ms=${OFFSETS_SOAK_COMMIT_MS:-50}
parts=${OFFSETS_SOAK_PARTITIONS:-4}
bound=${OFFSETS_SOAK_BOUND:-262144}
warmup=60
[ "$seconds" -ge 90 ] || warmup=$((seconds / 2))
if [ -n "${OFFSETS_SOAK_DIR:-}" ]; then
    dir=$OFFSETS_SOAK_DIR
    rm -rf "$dir"
    mkdir -p "$dir"
else
    dir=$(mktemp -d "${TMPDIR:-/tmp}/stream-offsets-soak.XXXXXX")
fi
data=$dir/data
pids=()

fail() {
    echo "not ok 1 - offsets soak: $*"
    echo "# files in $dir"
    tail -20 "$dir/broker.log" | sed 's/^/# /'
    exit 1
}

cleanup() {
    local p
    for p in "${pids[@]}" ${member_pids[@]+"${member_pids[@]}"} ${pub_pid:-}; do
        kill -TERM "$p" 2>/dev/null
    done
    wait 2>/dev/null
}
trap cleanup EXIT

stream-broker --listen 127.0.0.1:0 --data-dir "$data" --ready-file "$dir/ready" \
    --set offsets.topic.num.partitions="$parts" --set log.cleaner.backoff.ms=500 \
    --set log.retention.check.interval.ms=500 </dev/null >"$dir/broker.log" 2>&1 &
pids+=($!)
for ((i = 0; i < 200; i++)); do
    [ -s "$dir/ready" ] && break
    sleep 0.05
done
[ -s "$dir/ready" ] || fail "the broker did not start"
STREAM_BROKERS=$(cat "$dir/ready")
export STREAM_BROKERS

stream-topics create work -p 4 -c retention.bytes=1048576 -c segment.bytes=262144 ||
    fail "cannot create the topic"
# Records trickle in (about 100 a second), so every commit moves.
(
    i=0
    while :; do
        echo "r$i"
        i=$((i + 1))
        sleep 0.01
    done
) | stream-pub -t work -q --linger-ms 5 &
pub_pid=$!

declare -a member_pids member_until
start_member() {
    stream-sub -g "g$1" -t work --commit-interval-ms "$commit_ms" >/dev/null 2>>"$dir/members.err" &
    member_pids[$1]=$!
    member_until[$1]=$((SECONDS + 20 + RANDOM % 21))
}
for ((g = 0; g < groups; g++)); do start_member "$g"; done

# __consumer_offsets appears with the first commit; then its segments shrink.
for ((i = 0; i < 100; i++)); do
    [ -e "$data/__consumer_offsets.topic" ] && break
    sleep 0.1
done
[ -e "$data/__consumer_offsets.topic" ] || fail "no __consumer_offsets after 10 s"
stream-topics alter __consumer_offsets -c segment.bytes=16384 -c segment.ms=2000 \
    -c min.cleanable.dirty.ratio=0.2 || fail "cannot alter __consumer_offsets"

log_bytes() {
    find "$data" -path '*/__consumer_offsets-*' -name '*.log' -printf '%s\n' |
        awk '{ s += $1 } END { print s + 0 }'
}

start=$SECONDS
max_after=0
max_any=0
restarts=0
while [ $((SECONDS - start)) -lt "$seconds" ]; do
    sleep 2
    b=$(log_bytes)
    [ "$b" -gt "$max_any" ] && max_any=$b
    if [ $((SECONDS - start)) -ge "$warmup" ] && [ "$b" -gt "$max_after" ]; then
        max_after=$b
    fi
    for ((g = 0; g < groups; g++)); do
        [ "$SECONDS" -ge "${member_until[$g]}" ] || continue
        if [ $((RANDOM % 3)) -eq 0 ]; then
            kill -KILL "${member_pids[$g]}" 2>/dev/null
        else
            kill -TERM "${member_pids[$g]}" 2>/dev/null
        fi
        wait "${member_pids[$g]}" 2>/dev/null
        restarts=$((restarts + 1))
        start_member "$g"
    done
    kill -0 "${pids[0]}" 2>/dev/null || fail "the broker exited"
done

# Records appended to __consumer_offsets over the run: its end offsets.
written=$(stream-topics describe __consumer_offsets --json |
    jq '[.topics[0].partitions[].log_end_offset] | add')
cleanings=$(grep -c '__consumer_offsets-[0-9]*: cleaned' "$dir/broker.log")
final=$(log_bytes)
summary="$seconds s, $groups groups committing every $commit_ms ms, $restarts member restarts"
echo "# offsets: $summary"
echo "# offsets: $written records appended to __consumer_offsets, $cleanings cleanings;" \
    "segment bytes at most $max_any (after the ${warmup} s warm-up $max_after, at the end $final), bound $bound"
[ "$cleanings" -gt 0 ] || fail "__consumer_offsets was never cleaned"
[ "$max_after" -le "$bound" ] || fail "__consumer_offsets grew to $max_after bytes, past $bound"
echo "ok 1 - offsets soak: __consumer_offsets stayed at most $max_after bytes ($summary)"
[ -n "${OFFSETS_SOAK_DIR:-}" ] || rm -rf "$dir"
exit 0
