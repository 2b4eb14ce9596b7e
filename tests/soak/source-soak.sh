#!/usr/bin/env bash
# source-soak.sh - kill -9 of `stream-pub --url --follow --resume` under
# load, again and again: the topic must end up holding every event the
# server sent exactly once, in order (issue 19).
#
#   tests/soak/source-soak.sh BUILD_DIR [KILLS] [EVENTS]   (make soak-source)
#
# Against the programs in BUILD_DIR: one broker, a topic of one partition,
# and tests/cli/http_source_server.py serving /sse?n=EVENTS (default
# SOURCE_SOAK_EVENTS, else 200,000) at SOURCE_SOAK_RATE (10,000) events a
# second, so that the kills fall mid-stream: event I has id I and
# data "event-I", and starts after the request's Last-Event-ID. KILLS times
# (default SOURCE_SOAK_KILLS, else 25) a `stream-pub --follow --resume` is
# started, left to publish for a random 0.2-1.2 s once the topic has grown,
# and killed with SIGKILL (acks=all, so whatever was acknowledged is on
# disk; what was in flight may or may not be). A last run is left to reach
# the end and stopped with SIGTERM. The checker then reads the topic: the
# values must be event-1 .. event-EVENTS with nothing missing or repeated,
# and each record's id header must be its event's id. --resume takes the
# id of the last stored record, and the idempotent producer stores a
# partition's batches only in order, so exactly-once is the rule here.
# tests/cli/stream-pub-url.bats runs this with 3 kills and 20,000 events.
#
# Output is TAP, one test, with the figures as comments; exit status 0 only
# when the checker passed. SOURCE_SOAK_DIR=DIR keeps the files there.
set -u
export STREAM_KAFKA_LISTEN=off
export STREAM_METRICS_LISTEN=off
build=${1:?usage: tests/soak/source-soak.sh BUILD_DIR [KILLS] [EVENTS]}
kills=${2:-${SOURCE_SOAK_KILLS:-25}}
events=${3:-${SOURCE_SOAK_EVENTS:-200000}}
rate=${SOURCE_SOAK_RATE:-10000}
case $kills$events in '' | *[!0-9]*) echo "source-soak.sh: KILLS and EVENTS are whole numbers" >&2; exit 2 ;; esac
build=$(cd "$build" && pwd) || exit 2
here=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$build:$PATH"
if [ -n "${SOURCE_SOAK_DIR:-}" ]; then
    dir=$SOURCE_SOAK_DIR
    rm -rf "$dir"
    mkdir -p "$dir"
else
    dir=$(mktemp -d "${TMPDIR:-/tmp}/stream-source-soak.XXXXXX")
fi
pids=()
pub_pid=

fail() {
    echo "not ok 1 - source soak: $*"
    echo "# files in $dir"
    tail -5 "$dir/pub.log" 2>/dev/null | sed 's/^/# /'
    exit 1
}

cleanup() {
    local p
    for p in ${pub_pid:-} "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null
    done
    wait 2>/dev/null
}
trap cleanup EXIT

# Waits up to $1 seconds for the file $2 to be non-empty.
wait_file() {
    local i
    for ((i = 0; i < $1 * 20; i++)); do
        [ -s "$2" ] && return 0
        sleep 0.05
    done
    return 1
}

stream-broker --listen 127.0.0.1:0 --data-dir "$dir/data" --ready-file "$dir/broker.ready" \
    </dev/null >"$dir/broker.log" 2>&1 &
pids+=($!)
wait_file 20 "$dir/broker.ready" || fail "the broker did not start"
export STREAM_BROKERS=$(cat "$dir/broker.ready")
/usr/bin/python3 "$here/cli/http_source_server.py" "$dir/port" --log "$dir/requests.log" \
    </dev/null >"$dir/server.log" 2>&1 &
pids+=($!)
wait_file 20 "$dir/port" || fail "the HTTP server did not start"
url="http://127.0.0.1:$(cat "$dir/port")/sse?n=$events&rate=$rate"
stream-topics create events -p 1 || fail "cannot create the topic"

# The offset after the topic's last record (0 when empty).
end_offset() {
    local o
    o=$(stream-sub -t events -p 0 -o -1 -e -f '%o\n' 2>/dev/null | tail -1)
    echo $((${o:--1} + 1))
}

start_pub() {
    stream-pub -t events -q --url "$url" --follow --resume </dev/null >>"$dir/pub.log" 2>&1 &
    pub_pid=$!
}

started=$(date +%s)
for ((k = 1; k <= kills; k++)); do
    before=$(end_offset)
    start_pub
    # Once it publishes (or the stream is done), let it run a little, then kill.
    for ((i = 0; i < 600; i++)); do
        [ "$(end_offset)" -gt "$before" ] || [ "$before" -ge "$events" ] && break
        kill -0 "$pub_pid" 2>/dev/null || fail "stream-pub exited before kill $k"
        sleep 0.05
    done
    sleep "0.$((2 + RANDOM % 10))"
    kill -KILL "$pub_pid" 2>/dev/null
    wait "$pub_pid" 2>/dev/null
    pub_pid=
    echo "# kill $k: end offset $(end_offset)"
done

# The last run goes to the end (and has its handlers once it has asked).
asked=$(wc -l <"$dir/requests.log")
start_pub
for ((i = 0; i < 600; i++)); do
    [ "$(wc -l <"$dir/requests.log")" -gt "$asked" ] && break
    sleep 0.05
done
for ((i = 0; i < 6000; i++)); do
    [ "$(end_offset)" -ge "$events" ] && break
    kill -0 "$pub_pid" 2>/dev/null || fail "the last stream-pub exited"
    sleep 0.1
done
kill -TERM "$pub_pid"
wait "$pub_pid"
rc=$?
pub_pid=
[ "$rc" -eq 0 ] || fail "the last stream-pub exited $rc after SIGTERM"

# The checker: every event once, in order, its id in its header.
stream-sub -t events -p 0 -o beginning -e -f '%h %s\n' >"$dir/topic.txt" ||
    fail "cannot read the topic back"
bad=$(awk -v n="$events" '
    { want = NR; if ($2 != "event-" want || $1 != "id=" want ",event=tick") { print "record " NR - 1 ": " $0 " (expected event-" want ")"; exit } }
    END { if (NR != n) print NR " records, expected " n }' "$dir/topic.txt")
[ -z "$bad" ] || fail "$bad"
reconnects=$(grep -c '^/sse ' "$dir/requests.log")
echo "ok 1 - source soak: $kills kills of stream-pub --follow --resume, $events events exactly once in order ($reconnects requests, $(($(date +%s) - started)) s)"
[ -n "${SOURCE_SOAK_DIR:-}" ] || rm -rf "$dir"
exit 0
