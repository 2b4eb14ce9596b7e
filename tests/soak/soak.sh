#!/usr/bin/env bash
# soak.sh - a broker, producers and a consumer group under churn for a
# while, then a check that nothing acknowledged was lost (issue 7).
#
#   tests/soak/soak.sh BUILD_DIR [MINUTES]        (make soak SOAK_MINUTES=N)
#
# For MINUTES (default $SOAK_MINUTES, else 5), against the programs in
# BUILD_DIR:
#   - producers: SOAK_PRODUCERS (5) loops of `stream-pub --acks all` (the
#     idempotent default, generous retries; producer I compresses with the
#     I-th of none, lz4, zstd, snappy, gzip) with --ack-log, each run
#     publishing numbered records (tests/cli/faults/crashcheck.py gen), so a
#     value names its producer run and its place in it;
#   - a consumer group "soakers" of stream-sub -g members writing
#     'PARTITION OFFSET VALUE' lines, one output file per member: every few
#     seconds a member joins, leaves (SIGTERM) or is killed (kill -9),
#     keeping 1 to 4 alive;
#   - retention: small segments and retention.bytes on the topic, checked
#     every second, so segments are deleted while the group reads (sized to
#     keep well ahead of the group's lag: see SOAK_RETAIN); half-way through
#     the topic is altered to retention.ms instead, so both kinds delete;
#   - the broker restarted every 8-16 s, alternately by SIGTERM and kill -9;
#   - the group's committed offsets polled every second
#     (tests/cli/faults/groupcheck.py poll).
# Then the producers stop, the group catches up and leaves, the broker stops,
# and tests/soak/soakcheck.py checks everything and prints the summary.
#
# Output is TAP ("ok 1 - soak ..." or "not ok 1 - soak ...") with the
# summary as comments, so tests/run-tests.sh counts it. Exit status 0 only
# when the check passed.
#
# Environment: SOAK_SEED=N repeats a run's decisions; SOAK_DIR=DIR keeps
# everything there (default: a new /tmp/stream-soak.XXXXXX, removed after
# a passing run unless SOAK_KEEP=1); SOAK_PRODUCERS, SOAK_RATE (records a
# second per producer, default 200), SOAK_PARTITIONS (4); SOAK_RETAIN
# (retention.bytes, default: about 20 s of records).
set -u
# The brokers started here leave port 9092 (the Kafka listener's) alone.
export STREAM_KAFKA_LISTEN=off
export STREAM_METRICS_LISTEN=off
build=${1:?usage: tests/soak/soak.sh BUILD_DIR [MINUTES]}
minutes=${2:-${SOAK_MINUTES:-5}}
here=$(cd "$(dirname "$0")" && pwd)
faults=$(cd "$here/../cli/faults" && pwd)
build=$(cd "$build" && pwd) || exit 2
case $minutes in '' | *[!0-9]*) echo "soak.sh: MINUTES must be a whole number" >&2; exit 2 ;; esac
export PATH="$build:$PATH"
seed=${SOAK_SEED:-$(date +%s)}
RANDOM=$seed
producers=${SOAK_PRODUCERS:-5}
rate=${SOAK_RATE:-200}
partitions=${SOAK_PARTITIONS:-4}
keep=${SOAK_KEEP:-}
if [ -n "${SOAK_DIR:-}" ]; then
    dir=$SOAK_DIR
    keep=1
    rm -rf "$dir"
else
    dir=$(mktemp -d "${TMPDIR:-/tmp}/stream-soak.XXXXXX")
fi
mkdir -p "$dir/acks" "$dir/members" "$dir/pub" || exit 2
dir=$(cd "$dir" && pwd)
# The shell's own complaints (and its "Killed" notes on every kill -9) go
# to soak.err, shown when the run fails; standard output is the TAP.
exec 2>>"$dir/soak.err"

# Keep every program away from the real home and any real broker.
export XDG_DATA_HOME=$dir/xdg
unset STREAM_DATA_DIR STREAM_BROKERS
# ASan's default quarantine (256 MiB a process) would make a dozen
# sanitized processes crowd a small machine; leaks are still reported.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16

# The topic: at the default 1000 records/s, up to 10 KiB/s a partition
# (less where compressed), so 32 KiB segments roll every few seconds and
# 160 KiB (SOAK_RETAIN) keeps 15-25 s a partition -- several times what
# the group ever lags (a dead member's session is 3 s, a restart 1-2 s),
# while the first half of a 1-minute run still deletes. Both scale with
# the rate. The second half keeps 25 s by time instead.
topic=soak
group=soakers
scale=$(((rate * producers + 999) / 1000))
retain=${SOAK_RETAIN:-$((163840 * scale))}
topic_conf=(-c "segment.bytes=$((32768 * scale))" -c "retention.bytes=$retain")
retain_by_time=(-c retention.ms=25000 --delete-config retention.bytes)
codecs=(none lz4 zstd snappy gzip)
broker_conf=(--set log.retention.check.interval.ms=1000 --set group.min.session.timeout.ms=1000
    --set offsets.topic.num.partitions=8)
member_args=(-g "$group" -t "$topic" -f '%p %o %v\n' --session-timeout-ms 3000
    --commit-interval-ms 500)

now() { date +%s.%N; }
ev() { echo "$(now) $*" >>"$dir/events"; }
say() { echo "# $*"; }

# ---- processes -------------------------------------------------------------------

broker_pid= listen=127.0.0.1:0 poller= prod_pids=()
declare -A member_state=() member_name=() # pid -> run|term|kill ; pid -> mN
nmembers=0

alive() { # PID: running (not gone, not a zombie)
    local st
    [ -r "/proc/$1/stat" ] || return 1
    st=$(cut -d')' -f2 "/proc/$1/stat" 2>/dev/null | cut -d' ' -f2)
    [ -n "$st" ] && [ "$st" != Z ]
}

# kill_tree SIG PID: PID and every process below it, by pid.
kill_tree() {
    local sig=$1 pid=$2 c
    for c in $(ps -o pid= --ppid "$pid" 2>/dev/null); do
        kill_tree "$sig" "$c"
    done
    kill "-$sig" "$pid" 2>/dev/null
}

# wait_dead PID SECONDS: until PID has exited (not reaped), or 124 after
# SECONDS. wait_gone PID SECONDS: the same, then reaps it: $? is its status.
wait_dead() {
    local pid=$1 n=$(($2 * 20)) i
    for ((i = 0; i < n; i++)); do
        alive "$pid" || return 0
        sleep 0.05
    done
    return 124
}
wait_gone() {
    wait_dead "$@" || return
    wait "$1" 2>/dev/null
}

cleanup() {
    local p
    touch "$dir/stop" "$dir/poll.stop" 2>/dev/null
    for p in "${!member_state[@]}" "${prod_pids[@]}" $poller $broker_pid; do
        kill_tree KILL "$p"
    done
    wait 2>/dev/null
}
trap cleanup EXIT
trap 'fail "interrupted"' INT TERM

fail() {
    echo "not ok 1 - soak: $*"
    say "seed $seed (SOAK_SEED=$seed repeats the run's decisions), dir $dir (kept)"
    say "broker log $dir/broker.log, last lines:"
    tail -n 20 "$dir/broker.log" 2>/dev/null | sed 's/^/#   /'
    say "the soak's own errors ($dir/soak.err), without its notes on kills:"
    grep -v ' Killed ' "$dir/soak.err" 2>/dev/null | tail -n 20 | sed 's/^/#   /'
    cleanup
    trap - EXIT
    exit 1
}

start_broker() {
    local i
    rm -f "$dir/broker.ready"
    stream-broker --listen "$listen" --data-dir "$dir/data" --ready-file "$dir/broker.ready" \
        "${broker_conf[@]}" </dev/null >>"$dir/broker.log" 2>&1 &
    broker_pid=$!
    for ((i = 0; i < 600; i++)); do
        if [ -s "$dir/broker.ready" ]; then
            listen=$(cat "$dir/broker.ready")
            export STREAM_BROKERS=$listen
            ev broker-start "$broker_pid"
            return 0
        fi
        alive "$broker_pid" || { wait "$broker_pid"; fail "stream-broker exited with $? on start"; }
        sleep 0.05
    done
    fail "stream-broker not ready after 30 s"
}

# restart_broker term|kill
restart_broker() {
    local how=$1 rc=0
    if [ "$how" = term ]; then
        ev broker-term "$broker_pid"
        kill -TERM "$broker_pid"
        wait_gone "$broker_pid" 60 || rc=$?
        [ "$rc" -eq 124 ] && fail "stream-broker did not stop within 60 s of SIGTERM"
        ev broker-exit term "$rc"
    else
        ev broker-kill "$broker_pid"
        kill -KILL "$broker_pid"
        wait_gone "$broker_pid" 30
        ev broker-exit kill 137
    fi
    start_broker
}

# producer I: stream-pub runs one after another until $dir/stop; run N of
# producer I numbers its records from BASE=(I*10000+N)*10^7 on and logs its
# acknowledgements to acks/ack.BASE.
producer() {
    local i=$1 n=0 base rc codec=${codecs[$((($1 - 1) % ${#codecs[@]}))]}
    while [ ! -e "$dir/stop" ]; do
        n=$((n + 1))
        base=$(((i * 10000 + n) * 10000000))
        python3 "$faults/crashcheck.py" gen "$base" --rate "$rate" --stop-file "$dir/stop" |
            stream-pub -t "$topic" --acks all --retries 1000 -z "$codec" \
                --ack-log "$dir/acks/ack.$base" -v \
                2>>"$dir/pub/p$i.err"
        rc=${PIPESTATUS[1]}
        echo "$(now) p$i.$n $rc" >>"$dir/pub/exits"
        [ "$rc" -eq 0 ] || sleep 0.2
    done
}

member_start() {
    nmembers=$((nmembers + 1))
    local name=m$nmembers
    stream-sub "${member_args[@]}" >"$dir/members/$name.out" 2>"$dir/members/$name.err" &
    member_state[$!]=run
    member_name[$!]=$name
    ev member-start "$name" $!
}

live_members() { # pids of members neither stopping nor killed
    local p
    for p in "${!member_state[@]}"; do
        [ "${member_state[$p]}" = run ] && echo "$p"
    done
}

# Reaps members that have exited: "NAME HOW STATUS" to members/exits (HOW:
# term, kill, or self for one that exited by itself).
reap_members() {
    local p rc
    for p in "${!member_state[@]}"; do
        alive "$p" && continue
        rc=0
        wait "$p" 2>/dev/null || rc=$?
        local how=${member_state[$p]}
        [ "$how" = run ] && how=self
        echo "${member_name[$p]} $how $rc" >>"$dir/members/exits"
        ev member-exit "${member_name[$p]}" "$how" "$rc"
        unset "member_state[$p]" "member_name[$p]"
    done
}

# One change to the group: a member joins, leaves or dies; 1 to 4 stay.
member_action() {
    local live n victim r
    mapfile -t live < <(live_members)
    n=${#live[@]}
    r=$((RANDOM % 100))
    if [ "$n" -le 1 ] || { [ "$n" -lt 4 ] && [ "$r" -lt 40 ]; }; then
        member_start
        return
    fi
    victim=${live[$((RANDOM % n))]}
    if [ "$r" -lt 75 ]; then
        member_state[$victim]=term
        ev member-term "${member_name[$victim]}" "$victim"
        kill -TERM "$victim"
    else
        member_state[$victim]=kill
        ev member-kill "${member_name[$victim]}" "$victim"
        kill -KILL "$victim"
    fi
}

caught_up() {
    stream-topics group "$group" --json --timeout-ms 5000 2>/dev/null |
        jq -e --argjson n "$partitions" '(.offsets | length) == $n and .total_lag == 0' >/dev/null
}

# ---- the run ---------------------------------------------------------------------

echo "1..1"
say "soak: $minutes min, seed $seed, dir $dir, build $build"
start_broker
stream-topics create "$topic" -p "$partitions" "${topic_conf[@]}" >/dev/null ||
    fail "cannot create topic $topic"
python3 "$faults/groupcheck.py" poll --group "$group" --topic "$topic" --members "$dir/members" \
    --out "$dir/polls" --every 1 --stop-file "$dir/poll.stop" 2>>"$dir/poll.err" &
poller=$!
for ((i = 1; i <= producers; i++)); do
    producer "$i" &
    prod_pids+=($!)
done
member_start
member_start

end=$((SECONDS + minutes * 60)) half=$((SECONDS + minutes * 30))
next_restart=$((SECONDS + 8 + RANDOM % 9)) next_member=$((SECONDS + 2 + RANDOM % 5))
restart_how=kill
while [ "$SECONDS" -lt "$end" ]; do
    sleep 0.5
    reap_members
    if [ "$SECONDS" -ge "$next_restart" ]; then
        restart_broker "$restart_how"
        [ "$restart_how" = kill ] && restart_how=term || restart_how=kill
        next_restart=$((SECONDS + 8 + RANDOM % 9))
    fi
    if [ -n "$half" ] && [ "$SECONDS" -ge "$half" ]; then
        # A refused alter (say, mid-restart) is tried again next time.
        stream-topics alter "$topic" "${retain_by_time[@]}" >/dev/null &&
            { ev retention-by-time; half=; }
    fi
    if [ "$SECONDS" -ge "$next_member" ]; then
        member_action
        next_member=$((SECONDS + 2 + RANDOM % 5))
    fi
done
ev end-of-churn

# Wind down: the producers finish (every record they read acknowledged or
# given up on), the group catches up with the log and leaves.
touch "$dir/stop"
for p in "${prod_pids[@]}"; do
    wait_gone "$p" 120 || fail "a producer did not finish within 120 s of the end"
done
prod_pids=()
reap_members
[ -n "$(live_members)" ] || member_start
deadline=$((SECONDS + 120))
while [ "$SECONDS" -lt "$deadline" ]; do
    caught_up && break
    reap_members
    [ -n "$(live_members)" ] || member_start
    sleep 0.1
done
caught_up || fail "the group did not catch up within 120 s of the end: $(stream-topics group "$group" 2>&1 | tr '\n' ' ')"
for p in $(live_members); do
    member_state[$p]=term
    ev member-term "${member_name[$p]}" "$p"
    kill -TERM "$p"
done
for p in "${!member_state[@]}"; do
    wait_dead "$p" 60
done
reap_members
[ ${#member_state[@]} -eq 0 ] || fail "members still running 60 s after SIGTERM: ${!member_state[*]}"
touch "$dir/poll.stop"
wait "$poller"
poller=
python3 "$faults/groupcheck.py" poll --group "$group" --topic "$topic" --members "$dir/members" \
    --out "$dir/polls" || fail "the final poll of the group failed"
stream-topics describe "$topic" --json >"$dir/final-describe.json" || fail "describe failed"
ev broker-term "$broker_pid"
kill -TERM "$broker_pid"
rc=0
wait_gone "$broker_pid" 60 || rc=$?
[ "$rc" -eq 124 ] && fail "stream-broker did not stop within 60 s of SIGTERM"
ev broker-exit term "$rc"
broker_pid=

out=$(python3 "$here/soakcheck.py" --dir "$dir" --minutes "$minutes" --seed "$seed" 2>&1)
rc=$?
printf '%s\n' "$out" | sed 's/^/# /'
if [ "$rc" -ne 0 ]; then
    fail "violations found after $minutes min"
fi
echo "ok 1 - soak: $minutes min, seed $seed, nothing acknowledged lost"
[ -n "$keep" ] || rm -rf "$dir"
exit 0
