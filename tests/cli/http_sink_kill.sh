#!/usr/bin/env bash
# http_sink_kill.sh - kill -9 of `stream-sub --post -g` under load, then the
# checker (http_sink_check.py): nothing acknowledged lost, duplicates only
# as replays after a kill, order per partition kept, committed offsets never
# ahead of what the endpoint took.
#
#   tests/cli/http_sink_kill.sh BUILD_DIR KILLS [DIR]
#
# http-sink.bats runs it with 3 kills (make check); tests/soak/http-sink-soak.sh
# with HTTP_SINK_SOAK_KILLS (25) (make soak-http-sink, part of make
# soak-connect). Against the programs in BUILD_DIR: one broker, a topic of
# 4 partitions, a producer writing keyed records (acks=all) at about
# HTTP_SINK_KILL_RATE (2000) records/s the whole time, the endpoint
# (http_sink_server.py) answering 500 to 5% of requests and taking 0-20 ms
# to answer, and `stream-sub -g G --post` (batches of 50, 4 in flight,
# commits every 100 ms, a session timeout of 1 s so a killed member's
# partitions move on soon) killed with SIGKILL KILLS times, 0.3-1.2 s apart,
# and started again each time. After each kill the group's committed
# offsets are checked against what the endpoint took. Then the producer
# stops, a last run with -e catches up, and the final check compares the
# endpoint's records with the whole topic. DIR (default: a temp dir,
# removed on success) keeps the files. Prints TAP-style "# " lines and
# "ok"/"not ok"; exits 0 only when every check passed.
set -u
export STREAM_KAFKA_LISTEN=off
build=${1:?usage: http_sink_kill.sh BUILD_DIR KILLS [DIR]}
kills=${2:?usage: http_sink_kill.sh BUILD_DIR KILLS [DIR]}
build=$(cd "$build" && pwd) || exit 2
here=$(cd "$(dirname "$0")" && pwd)
export PATH="$build:$PATH"
rate=${HTTP_SINK_KILL_RATE:-2000}
keep=
if [ -n "${3:-}" ]; then
    dir=$3
    rm -rf "$dir"
    mkdir -p "$dir"
    keep=1
else
    dir=$(mktemp -d)
fi
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
}
trap cleanup EXIT
fail() {
    echo "not ok - $*"
    echo "# files kept in $dir"
    exit 1
}

wait_file() { # FILE: up to 20 s for it to be non-empty
    local i
    for ((i = 0; i < 400; i++)); do
        [ -s "$1" ] && return 0
        sleep 0.05
    done
    return 1
}

stream-broker --listen 127.0.0.1:0 --data-dir "$dir/data" --ready-file "$dir/ready" \
    --set group.min.session.timeout.ms=500 </dev/null >"$dir/broker.log" 2>&1 3>&- &
pids+=($!)
wait_file "$dir/ready" || fail "broker did not start"
export STREAM_BROKERS=$(cat "$dir/ready")
stream-topics create t -p 4 || fail "cannot create the topic"

/usr/bin/python3 "$here/http_sink_server.py" --port-file "$dir/port" --out "$dir/received" \
    --fail-rate 0.05 --slow-random 20 --seed "${HTTP_SINK_KILL_SEED:-$$}" </dev/null 3>&- &
pids+=($!)
wait_file "$dir/port" || fail "the endpoint did not start"
url=http://127.0.0.1:$(cat "$dir/port")/in

# The load: keyed records "k:N" at about $rate/s, N counting up.
/usr/bin/python3 -c '
import sys, time
rate = int(sys.argv[1]); n = 0; step = max(1, rate // 50)
while True:
    sys.stdout.write("".join("k%d:%d\n" % (i % 16, i) for i in range(n, n + step)))
    sys.stdout.flush(); n += step; time.sleep(0.02)
' "$rate" 2>/dev/null | stream-pub -t t -K: 2>"$dir/pub.log" 3>&- &
pub=$!
pids+=($pub)

# (An array, not a function: `func &` would put a subshell between $! and
# the stream-sub that kill -9 must hit.)
sink=(stream-sub -t t -g G --post "$url" --post-batch 50 --post-in-flight 4
    --commit-interval-ms 100 --session-timeout-ms 1000 --post-retries 1000)

for ((k = 1; k <= kills; k++)); do
    "${sink[@]}" 2>>"$dir/sink.log" 3>&- &
    sp=$!
    sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", 0.3 + (r % 90) / 100 }')"
    kill -KILL "$sp" 2>/dev/null
    wait "$sp" 2>/dev/null
    stream-topics group G --json >"$dir/group.json" 2>>"$dir/sink.log" ||
        fail "kill $k: cannot read the group's offsets"
    /usr/bin/python3 "$here/http_sink_check.py" committed "$dir/received" "$dir/group.json" \
        >"$dir/check.out" 2>&1 || fail "kill $k: $(cat "$dir/check.out")"
done
echo "# $kills kills: $(cat "$dir/check.out")"

kill -TERM "$pub" 2>/dev/null
wait "$pub" 2>/dev/null
# The last run reads to the end offsets as they are now, then commits;
# first the killed member's session ends, so the partitions are free.
for ((i = 0; i < 200; i++)); do
    stream-topics group G --json 2>/dev/null | grep -q '"members":\[\]' && break
    sleep 0.05
done
# The last run reads to the end offsets as they are now, then commits.
"${sink[@]}" -e -v 2>>"$dir/sink.log" 3>&- || fail "the last run failed: $(tail -3 "$dir/sink.log")"
stream-sub -t t -e --json >"$dir/topic.json" || fail "cannot read the topic"
/usr/bin/python3 "$here/http_sink_check.py" final "$dir/received" "$dir/topic.json" \
    "$((kills + 1))" >"$dir/check.out" 2>&1 || fail "final check: $(cat "$dir/check.out")"
stream-topics group G --json >"$dir/group.json"
/usr/bin/python3 "$here/http_sink_check.py" committed "$dir/received" "$dir/group.json" \
    >/dev/null 2>&1 || fail "after the last run: committed offsets ahead of delivery"
echo "# $(cat "$dir/check.out")"
echo "ok - kill -9 of stream-sub --post -g $kills times: nothing lost, order kept"
[ -n "$keep" ] || rm -rf "$dir"
exit 0
