#!/usr/bin/env bash
# proc-soak.sh - stream-proc killed with SIGKILL again and again under load,
# with a checker after every kill and at the end (issue 19).
#
#   tests/soak/proc-soak.sh BUILD_DIR [KILLS]   (make soak-proc: PROC_SOAK_KILLS, 25;
#                                               tests/cli/stream-proc.bats runs 2)
#
# Against the programs in BUILD_DIR: one broker (sessions may be 500 ms
# short), topics `in` and `out` of 4 partitions, and a producer writing
# keyed records "KEY:SEQ" (16 keys, SEQ counting per key) to `in` with acks
# all, about 2,000 a second, the whole time. KILLS times: a stream-proc
# member (group `soak`, `awk '{ print "out:" $0 }'` as the command: awk
# buffers its output, as filters do) runs for 0.3-1.5 s, is killed with
# SIGKILL, and then tests/soak/proccheck.py checks that the group's
# committed offsets are not ahead of what is in `out`: every input record
# below them has its output there. After the last kill the producer stops,
# a last member processes to the end (-e), and the checker checks it all:
# every record of `in` has its output in `out` at least once, per key in
# order, duplicates only as replays of what came before.
#
# Output is TAP, one test, with the figures as comments; exit status 0
# only when every check held. PROC_SOAK_DIR=DIR keeps the files there.
set -u
export STREAM_KAFKA_LISTEN=off
export STREAM_METRICS_LISTEN=off
build=${1:?usage: tests/soak/proc-soak.sh BUILD_DIR [KILLS]}
kills=${2:-${PROC_SOAK_KILLS:-25}}
case $kills in '' | *[!0-9]*) echo "proc-soak.sh: KILLS must be a whole number" >&2; exit 2 ;; esac
build=$(cd "$build" && pwd) || exit 2
export PATH="$build:$PATH"
here=$(cd "$(dirname "$0")" && pwd)
if [ -n "${PROC_SOAK_DIR:-}" ]; then
    dir=$PROC_SOAK_DIR
    rm -rf "$dir"
    mkdir -p "$dir"
else
    dir=$(mktemp -d "${TMPDIR:-/tmp}/stream-proc-soak.XXXXXX")
fi
broker_pid= gen_pid= proc_pid=

fail() {
    echo "not ok 1 - stream-proc kill -9 soak: $*"
    echo "# files in $dir"
    tail -5 "$dir/proc.err" 2>/dev/null | sed 's/^/# /'
    exit 1
}

cleanup() {
    local p
    for p in $proc_pid $gen_pid $broker_pid; do
        kill -KILL "$p" 2>/dev/null
    done
    wait 2>/dev/null
    [ -n "${PROC_SOAK_DIR:-}" ] || [ "${failed:-1}" = 1 ] || rm -rf "$dir"
}
trap cleanup EXIT
failed=1

# fd 3 may be bats' own: no background process may hold it.
stream-broker --listen 127.0.0.1:0 --data-dir "$dir/data" --ready-file "$dir/ready" \
    --set group.min.session.timeout.ms=500 </dev/null >"$dir/broker.log" 2>&1 3>&- &
broker_pid=$!
for ((i = 0; i < 200; i++)); do
    [ -s "$dir/ready" ] && break
    sleep 0.05
done
[ -s "$dir/ready" ] || fail "the broker did not start"
export STREAM_BROKERS=$(cat "$dir/ready")
stream-topics create in out -p 4 || fail "cannot create the topics"

# The load: 16 keys, SEQ per key, 100 records every 50 ms until stopped.
python3 -u -c '
import itertools, sys, time
seq = {}
for i in itertools.count():
    k = "k%d" % (i % 16)
    seq[k] = seq.get(k, 0) + 1
    sys.stdout.write("%s|%s:%d\n" % (k, k, seq[k]))
    if i % 100 == 99:
        sys.stdout.flush()
        time.sleep(0.05)
' 2>/dev/null 3>&- | stream-pub -t in -K '|' 2>"$dir/pub.err" 3>&- &
gen_pid=$!

member() {
    stream-proc -t in -g soak --to out --session-timeout-ms 1000 --commit-interval-ms 100 \
        --batch 500 "$@" -- awk '{ print "out:" $0 }' 2>>"$dir/proc.err" 3>&- &
    proc_pid=$!
}

snapshot() {
    stream-topics group soak --json >"$dir/group.json" || fail "cannot describe the group"
    stream-sub -t in -e --json >"$dir/in.json" 2>/dev/null
    stream-sub -t out -e --json >"$dir/out.json" 2>/dev/null
}

start=$(date +%s)
for ((k = 1; k <= kills; k++)); do
    member
    sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.3 + 1.2 * r / 32768 }')"
    kill -KILL "$proc_pid"
    wait "$proc_pid" 2>/dev/null
    proc_pid=
    snapshot
    python3 "$here/proccheck.py" committed "$dir/in.json" "$dir/out.json" "$dir/group.json" \
        >"$dir/check.out" 2>&1 || fail "after kill $k: $(head -3 "$dir/check.out")"
    cat "$dir/check.out" >>"$dir/checks.log"
done

# The producer stops (its acknowledged records all count), the dead
# member's session ends, and a last member processes to the end.
kill -TERM "$gen_pid" 2>/dev/null
wait "$gen_pid" 2>/dev/null
gen_pid=
for ((i = 0; i < 200; i++)); do
    stream-topics group soak --json 2>/dev/null | jq -e '.members | length == 0' >/dev/null && break
    sleep 0.05
done
member -e
wait "$proc_pid" || fail "the last stream-proc -e exited with status $?"
proc_pid=
snapshot
jq -e '.total_lag == 0' "$dir/group.json" >/dev/null || fail "lag left after the last run"
python3 "$here/proccheck.py" final "$dir/in.json" "$dir/out.json" >"$dir/check.out" 2>&1 ||
    fail "$(head -3 "$dir/check.out")"
failed=0
echo "ok 1 - stream-proc kill -9 soak: $kills kills in $(($(date +%s) - start)) s"
echo "# after the kills: $(grep -c '^committed ok' "$dir/checks.log") committed checks; the last:"
tail -1 "$dir/checks.log" | sed 's/^/#   /'
sed 's/^/# /' "$dir/check.out"
