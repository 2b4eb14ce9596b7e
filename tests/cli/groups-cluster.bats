#!/usr/bin/env bats
# Consumer groups on a 3-broker cluster: __consumer_offsets is a replicated
# topic created through the controller at the first group request; the
# coordinator of a group is the leader of its partition of it; killing that
# broker with kill -9 moves the coordinator, with the committed offsets, to
# the new leader, and a stream-sub -g member carries on there: every record
# delivered exactly once, committed offsets never going back. Groups of two
# and three members do the same across a kill -9 of the coordinator and a
# rolling restart: the membership record moves with the coordinator, so
# nobody's partitions change hands and no record comes twice.
#
# One offsets partition (offsets.topic.num.partitions=1), so the group's
# coordinator is the leader of __consumer_offsets-0.

bats_require_minimum_version 1.5.0

load helpers
load faults/lib
load cluster_lib

SESSION=1500

setup() {
    BG_PIDS=()
    CLUSTER_SET="--set broker.session.timeout.ms=1000 --set offsets.topic.num.partitions=1"
    CLUSTER_SET+=" --set group.min.session.timeout.ms=500"
    cd "$BATS_TEST_TMPDIR"
}

teardown() {
    local p
    for p in "${BG_PIDS[@]}"; do
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    cluster_stop
    return 0
}

# The committed offsets of group G as "partition offset" lines, sorted, from
# `stream-topics group G --json` (which finds the coordinator itself).
committed() {
    stream-topics --timeout-ms 2000 group "$1" --json 2>/dev/null |
        jq -r '.offsets[] | select(.offset >= 0) | "\(.partition) \(.offset)"' | sort -n
}

# Sum of the committed offsets of group G ("" when it cannot be asked).
committed_sum() {
    local out
    out=$(committed "$1") || return 1
    awk '{ s += $2 } END { print s + 0 }' <<<"$out"
}

# wait_committed G TOTAL SECS: until the committed offsets add up to TOTAL.
wait_committed() {
    local i s=
    for ((i = 0; i < $3 * 5; i++)); do
        s=$(committed_sum "$1")
        [ "$s" = "$2" ] && return 0
        sleep 0.2
    done
    echo "group $1: committed offsets add up to '$s', not $2, after $3 s" >&2
    stream-topics group "$1" >&2
    return 1
}

# Every committed offset in the file NEW is >= the one in OLD.
never_back() {
    awk 'NR == FNR { old[$1] = $2; next } ($1 in old) && $2 < old[$1] {
        print "partition " $1 ": committed " old[$1] " went back to " $2; bad = 1 }
        END { exit bad }' "$1" "$2"
}

@test "__consumer_offsets is created through the cluster (RF=3, min.insync.replicas=2); find_coordinator names its leader; the others answer ENOTCOORDINATOR" {
    cluster_start 3
    stream-topics create t -p 3 -r 3
    seq 1 30 | stream-pub -t t --acks all
    run stream-sub -g g0 -t t -e -f '%v\n' --session-timeout-ms "$SESSION"
    assert_success
    [ "${#lines[@]}" -eq 30 ]
    run part_json __consumer_offsets 0
    assert_success
    jq -e '(.replicas | length) == 3 and .leader >= 1' <<<"$output"
    run -0 stream-topics describe __consumer_offsets --json
    jq -e '.topics[0].configs | map(select(.name == "min.insync.replicas"))[0].value == "2"' \
        <<<"$output"
    wait_committed g0 30 10
    # find_coordinator from every broker names the leader of __consumer_offsets-0,
    # which alone answers the group's ops: the others say ENOTCOORDINATOR (41)
    # and name it.
    local coord k
    coord=$(leader_of __consumer_offsets 0)
    for k in 1 2 3; do
        run -0 python3 "$FAULTS_DIR/rawreq.py" "$(node_addr "$k")" find_coordinator '{"group": "g0"}'
        jq -e --argjson c "$coord" --arg port "${CPORT[$coord]}" \
            '.err == 0 and .node_id == $c and .host == "127.0.0.1" and (.port | tostring) == $port' \
            <<<"$output"
        run -0 python3 "$FAULTS_DIR/rawreq.py" "$(node_addr "$k")" fetch_offsets '{"group": "g0"}'
        if [ "$k" = "$coord" ]; then
            jq -e '.err == 0' <<<"$output"
        else
            jq -e --arg c "node $coord is" '.err == 41 and (.msg | contains($c))' <<<"$output"
        fi
    done
    # Every broker answers for the group: the describe goes to the coordinator,
    # and the listing asks every broker.
    for k in 1 2 3; do
        run -0 stream-topics -b "$(node_addr "$k")" group g0 --json
        jq -e '.offsets | map(.offset) | add == 30' <<<"$output"
        run -0 stream-topics -b "$(node_addr "$k")" groups --json
        jq -e '[.groups[].group] == ["g0"]' <<<"$output"
    done
}

@test "kill -9 the group coordinator: the member carries on at the new one, nothing twice, commits never go back" {
    cluster_start 3
    stream-topics create t -p 3 -r 3 --config min.insync.replicas=2
    wait_leader t 0 -1 5 >/dev/null
    seq 1 300 | stream-pub -t t --acks all
    stream-sub -g G -t t -f '%p %o %v\n' --session-timeout-ms "$SESSION" \
        --commit-interval-ms 200 >m.out 2>m.err 3>&- &
    BG_PIDS+=($!)
    local member=$!
    wait_for 20 bash -c '[ "$(wc -l <m.out)" -ge 300 ]'
    wait_committed G 300 20
    committed G >before
    local coord next
    coord=$(wait_leader __consumer_offsets 0 -1 5)
    echo "# coordinator: node $coord" >&3
    node_kill "$coord" KILL
    # More records while the coordinator moves (any live broker takes them).
    seq 301 600 | stream-pub -t t --acks all
    next=$(wait_leader __consumer_offsets 0 "$coord" 10)
    echo "# new coordinator: node $next" >&3
    wait_for 30 bash -c '[ "$(cut -d" " -f3 m.out | sort -un | wc -l)" -ge 600 ]' || {
        tail -20 m.err >&3
        false
    }
    wait_committed G 600 30
    committed G >after
    run never_back before after
    assert_success
    # Still the same process, a member of the group at the new coordinator.
    kill -0 "$member"
    run -0 stream-topics group G --json
    jq -e '(.members | length) == 1' <<<"$output"
    # Every record exactly once: the member, given its partitions back by
    # the new coordinator, went on from its own positions, not from its last
    # commit (which the dead coordinator may not even have replicated).
    run bash -c 'cut -d" " -f3 m.out | sort -n | awk "\$1 != NR { exit 1 } END { exit NR != 600 }"'
    assert_success
    # The old coordinator comes back as a follower: the offsets stay where they were.
    node_start "$coord"
    sleep 2
    committed G >again
    run never_back after again
    assert_success
}

# ---- groups of several members across coordinator moves ----

# start_members G N SESSION_MS: N stream-sub -g G members of topic t in the
# background (output mK.out, errors mK.err); MEMBERS holds their pids.
start_members() {
    local k
    MEMBERS=()
    for ((k = 1; k <= $2; k++)); do
        stream-sub -g "$1" -t t -f '%p %o %v\n' --session-timeout-ms "$3" \
            --commit-interval-ms 200 >"m$k.out" 2>"m$k.err" 3>&- &
        BG_PIDS+=($!)
        MEMBERS+=($!)
    done
}

# group_json G: `stream-topics group G --json` ("" when it cannot be asked).
group_json() { stream-topics --timeout-ms 2000 group "$1" --json 2>/dev/null; }

# stable G N: the group is stable with N members, each consuming.
stable() {
    group_json "$1" | jq -e --argjson n "$2" '.state == "stable" and (.members | length) == $n and
        all(.members[]; (.assignment | length) > 0)' >/dev/null
}

# A producer of numbered records at a steady rate for the whole run, its
# acknowledgements in ack.10000000; stopped by stop_producer.
start_producer() {
    python3 "$FAULTS_DIR/crashcheck.py" gen 10000000 --rate 1000 --stop-file stop |
        stream-pub -t t --acks all --ack-log ack.10000000 2>pub.err 3>&- &
    PRODUCER=$!
    BG_PIDS+=($!)
}

stop_producer() {
    touch stop
    wait "$PRODUCER" || { cat pub.err >&3; return 1; }
    run cat pub.err
    assert_output ""
}

# members_done N: every member alive, and their outputs hold as many
# records as were acknowledged (more would be duplicates: the check says).
members_done() {
    local acked k total
    acked=$(wc -l <ack.10000000)
    wait_for 40 bash -c "[ \$(cat m*.out | wc -l) -ge $acked ]" || true
    sleep 1 # a record delivered twice late still shows
    for ((k = 0; k < $1; k++)); do
        kill -0 "${MEMBERS[$k]}" || { echo "member $((k + 1)) died:" && tail -5 "m$((k + 1)).err"; } >&3
    done
    run group_exactly_once ack.10000000 m*.out
    printf '%s\n' "$output" | sed 's/^/# /' >&3
    assert_success
    for ((k = 0; k < $1; k++)); do kill -0 "${MEMBERS[$k]}"; done
}

# group_of N SESSION_MS: topic t (6 partitions, RF=3), a producer and N
# members consuming it as a stable group G; GEN is its generation then.
group_of() {
    cluster_start 3
    stream-topics create t -p 6 -r 3 --config min.insync.replicas=2
    local k
    for k in 0 1 2 3 4 5; do wait_leader t "$k" -1 5 >/dev/null; done
    start_producer
    start_members G "$1" "$2"
    wait_for 30 stable G "$1"
    wait_for 15 bash -c '[ -s ack.10000000 ] && [ -s m1.out ]'
    sleep 1
    GEN=$(group_json G | jq -r .generation)
}

# in_sync: every replica of t and of __consumer_offsets is in sync.
in_sync() {
    local topic
    for topic in t __consumer_offsets; do
        stream-topics describe "$topic" --json 2>/dev/null |
            jq -e '[.topics[0].partitions[].isr | length] | min == 3' >/dev/null || return 1
    done
}

# kill -9 of the coordinator under a group of N members.
coordinator_killed() {
    local n=$1 coord next
    group_of "$n" "$2"
    # A partition whose ISR is down to its leader goes offline with it (no
    # unclean election), and the producer would fail: what is tested here
    # is the coordinator's move.
    wait_for 20 in_sync
    coord=$(wait_leader __consumer_offsets 0 -1 5)
    echo "# $n members, generation $GEN; coordinator: node $coord" >&3
    node_kill "$coord" KILL
    next=$(wait_leader __consumer_offsets 0 "$coord" 10)
    sleep 3 # the producer goes on meanwhile
    stop_producer
    members_done "$n"
    wait_for 10 stable G "$n"
    echo "# new coordinator: node $next; generation $(group_json G | jq -r .generation)" >&3
}

# SIGTERM each broker in turn, restarted, under a group of N members.
rolling_restart() {
    local n=$1 k
    group_of "$n" "$2"
    echo "# $n members, generation $GEN" >&3
    for k in 1 2 3; do
        node_restart "$k"
        # Every replica back in sync before the next broker stops, as a
        # rolling restart does.
        wait_for 20 in_sync
    done
    sleep 1
    stop_producer
    members_done "$n"
    wait_for 10 stable G "$n"
    echo "# generation $(group_json G | jq -r .generation)" >&3
}

@test "kill -9 the coordinator of a group of 2: the members carry on with their partitions, every record once" {
    coordinator_killed 2 "$SESSION"
}

@test "kill -9 the coordinator of a group of 3: the members carry on with their partitions, every record once" {
    coordinator_killed 3 4000
}

@test "rolling restart under a group of 2: no member loses its partitions to another, every record once" {
    rolling_restart 2 "$SESSION"
}

@test "rolling restart under a group of 3: no member loses its partitions to another, every record once" {
    rolling_restart 3 4000
}
