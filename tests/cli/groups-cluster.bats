#!/usr/bin/env bats
# Consumer groups on a 3-broker cluster: __consumer_offsets is a replicated
# topic created through the controller at the first group request; the
# coordinator of a group is the leader of its partition of it; killing that
# broker with kill -9 moves the coordinator, with the committed offsets, to
# the new leader, and a stream-sub -g member carries on there: every record
# delivered exactly once, committed offsets never going back.
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
