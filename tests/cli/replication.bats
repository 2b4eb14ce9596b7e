#!/usr/bin/env bats
# Replication and failover on three brokers on loopback: RF=3 topics,
# acks=all over the ISR, leaders killed with kill -9 and paused with
# SIGSTOP under load, min.insync.replicas, and the replica fetch refusing
# what it must. Every run ends with the checkers: every acknowledged record
# stored exactly once and in order (crashcheck.py), and every broker's log
# a prefix of the others' (replicacheck.py, from the segment files).
#
# The long version (50+ leader kills) is tests/soak/cluster-soak.sh
# (make soak-cluster); here REPL_KILLS (default 4) kills keep make check
# within its budget.

load helpers
load faults/lib
load cluster_lib

setup() {
    BG_PIDS=()
    # Quick failure detection, as the failover benchmark measures it.
    CLUSTER_SET="--set broker.session.timeout.ms=1000 --set segment.bytes=262144"
}

teardown() {
    local p
    for p in "${BG_PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null
    done
    for p in "${BG_PIDS[@]}"; do
        wait "$p" 2>/dev/null
    done
    cluster_stop
    netns_teardown
    return 0
}

isr_is() { [ "$(isr_of "$1" "$2")" = "$3" ]; }

data_dirs() {
    local k
    for ((k = 1; k <= CLUSTER_N; k++)); do
        echo "$CLUSTER_DIR/n$k/data"
    done
}

# Every acknowledged record of DIR/acks is stored once, in order; the
# replicas' logs agree ($2: --same once all caught up).
check_run() {
    local dir=$1 topic=$2 parts=$3
    shift 3
    stream-sub -t "$topic" -e -f '%p %o %v\n' >"$dir/stored"
    run python3 "$FAULTS_DIR/crashcheck.py" check --log "$dir/stored" --exactly-once \
        "$dir"/acks/ack.*
    printf '%s\n' "$output" | sed 's/^/# /' >&3
    assert_success
    cluster_stop
    # shellcheck disable=SC2046
    run python3 "$FAULTS_DIR/replicacheck.py" prefix --topic "$topic" --partitions "$parts" "$@" \
        $(data_dirs)
    printf '%s\n' "$output" | sed 's/^/# /' >&3
    assert_success
}

@test "RF=3 acks=all: every record on every replica, consumers read it through the leader" {
    cluster_start 3
    run stream-topics create r -p 2 -r 3
    assert_success
    wait_leader r 0 -1 5 >/dev/null
    wait_leader r 1 -1 5 >/dev/null
    run part_json r 0
    assert_success
    jq -e '(.replicas | length) == 3 and (.isr | length) == 3 and .leader_epoch >= 0' <<<"$output"
    local dir=$BATS_TEST_TMPDIR/run
    mkdir -p "$dir/acks"
    python3 "$FAULTS_DIR/crashcheck.py" gen 10000000 --rate 20000 | head -n 3000 |
        stream-pub -t r --acks all -K : --ack-log "$dir/acks/ack.10000000"
    [ "$(wc -l <"$dir/acks/ack.10000000")" -eq 3000 ]
    # Consumers see everything once the ISR has it on disk.
    run stream-sub -t r -e -c 3000 -f '%v\n'
    assert_success
    [ "${#lines[@]}" -eq 3000 ]
    # The same records are on all three brokers, batch for batch.
    wait_for 10 bash -c "[ \"\$(stream-topics describe r --json | jq '[.topics[0].partitions[].isr | length] | min')\" = 3 ]"
    check_run "$dir" r 2 --same
}

@test "kill -9 the partition leader under acks=all load: nothing acknowledged lost or duplicated" {
    local kills=${REPL_KILLS:-4} k leader next dir=$BATS_TEST_TMPDIR/run
    cluster_start 3
    stream-topics create f -p 1 -r 3 --config min.insync.replicas=2
    leader=$(wait_leader f 0 -1 5)
    background publish_loop "$dir" 0 f --acks all -q
    for ((k = 1; k <= kills; k++)); do
        sleep 1
        leader=$(leader_of f 0)
        node_kill "$leader" KILL
        next=$(wait_leader f 0 "$leader" 5)
        echo "# kill $k: node $leader -> node $next" >&3
        sleep 0.5
        node_start "$leader"
    done
    sleep 1
    touch "$dir/stop"
    wait "$BG_PID"
    # The returning leaders truncated what they alone had, and caught up.
    wait_for 15 bash -c "[ \"\$(stream-topics describe f --json | jq '.topics[0].partitions[0].isr | length')\" = 3 ]"
    [ "$(cat "$dir"/acks/ack.* | wc -l)" -gt 100 ]
    check_run "$dir" f 1 --same
}

@test "SIGSTOP the leader past the session timeout: fenced, a new leader; SIGCONT: it rejoins" {
    local leader next dir=$BATS_TEST_TMPDIR/run
    cluster_start 3
    stream-topics create s -p 1 -r 3
    leader=$(wait_leader s 0 -1 5)
    background publish_loop "$dir" 0 s --acks all -q
    sleep 1
    node_kill "$leader" STOP
    next=$(wait_leader s 0 "$leader" 5)
    cluster_wait_json 5 ".brokers[] | select(.node_id == $leader) | .fenced"
    sleep 1
    node_kill "$leader" CONT
    # Fenced while paused, it comes back as a follower and catches up.
    wait_for 15 bash -c "[ \"\$(stream-topics describe s --json | jq '.topics[0].partitions[0].isr | length')\" = 3 ]"
    [ "$(leader_of s 0)" = "$next" ]
    touch "$dir/stop"
    wait "$BG_PID"
    check_run "$dir" s 1 --same
}

@test "cut the leader off the network (namespaces): a new leader; healed, it truncates and rejoins" {
    if [ "$(id -u)" != 0 ] || ! ip netns list >/dev/null 2>&1; then
        skip "needs root and network namespaces (ip netns)"
    fi
    local leader next dir=$BATS_TEST_TMPDIR/run
    netns_setup 3
    cluster_start 3
    stream-topics create n -p 1 -r 3 --config min.insync.replicas=2
    leader=$(wait_leader n 0 -1 5)
    background publish_loop "$dir" 0 n --acks all -q
    sleep 1
    # Still running, unreachable: no connection closes, so only the session
    # timeout tells the controller (or, if it was the controller, the
    # others elect a new one first).
    netns_cut "$leader"
    next=$(wait_leader n 0 "$leader" 10)
    echo "# cut node $leader: node $next leads" >&3
    sleep 2
    netns_heal "$leader"
    wait_for 20 bash -c "[ \"\$(stream-topics describe n --json | jq '.topics[0].partitions[0].isr | length')\" = 3 ]"
    sleep 1
    touch "$dir/stop"
    wait "$BG_PID"
    [ "$(cat "$dir"/acks/ack.* | wc -l)" -gt 100 ]
    check_run "$dir" n 1 --same
}

@test "min.insync.replicas=2: with the ISR down to the leader acks=all is refused, acks=1 works" {
    cluster_start 3
    stream-topics create m -p 1 -r 2 --config min.insync.replicas=2
    local leader other
    leader=$(wait_leader m 0 -1 5)
    other=$(part_json m 0 | jq --argjson l "$leader" '.replicas[] | select(. != $l)')
    echo one | stream-pub -t m --acks all
    # The other replica dies: fenced, out of the ISR (the quorum still has
    # two of its three voters).
    node_kill "$other" KILL
    wait_for 10 bash -c "[ \"\$(stream-topics describe m --json | jq -c '.topics[0].partitions[0].isr')\" = '[$leader]' ]"
    run stream-pub -t m --acks all --retries 0 <<<"two"
    assert_failure
    assert_output --regexp "ENOTENOUGHREPLICAS|not enough in-sync replicas|min.insync.replicas is 2"
    run stream-pub -t m --acks 1 <<<"three"
    assert_success
    # Back: it catches up, rejoins the ISR, and acks=all works again.
    node_start "$other"
    wait_for 15 bash -c "[ \"\$(stream-topics describe m --json | jq '.topics[0].partitions[0].isr | length')\" = 2 ]"
    echo four | stream-pub -t m --acks all
    run stream-sub -t m -e -f '%v\n'
    assert_success
    assert_output --regexp '^one
(two
)?three
four$'
}

@test "SIGTERM the leader, then the controller: acks=all goes on while each is down" {
    # A stopping broker leaves every ISR; a leader must not go on waiting
    # for it (it once asked a stopping follower back into the ISR after its
    # last fetch and held the high watermark until that broker came back).
    local dir=$BATS_TEST_TMPDIR/run k victim n
    cluster_start 3
    stream-topics create cs -p 1 -r 3 --config min.insync.replicas=2
    wait_leader cs 0 -1 5 >/dev/null
    mkdir -p "$dir"
    : >"$dir/acks"
    python3 "$FAULTS_DIR/faultclient.py" acker "$STREAM_BROKERS" --topic cs --out "$dir/acks" \
        --stop-file "$dir/stop" &
    BG_PIDS+=($!)
    for k in leader controller; do
        wait_for 10 bash -c "[ \$(wc -l <'$dir/acks') -ge 50 ]"
        if [ "$k" = leader ]; then
            victim=$(leader_of cs 0)
        else
            victim=$(stream-topics --timeout-ms 1000 cluster --json | jq -r .leader_id)
        fi
        node_kill "$victim" TERM
        wait "${CPIDS[$victim]}"
        CPIDS[$victim]=
        n=$(wc -l <"$dir/acks")
        # Acknowledged by the others while it is down.
        wait_for 10 bash -c "[ \$(wc -l <'$dir/acks') -ge $((n + 100)) ]"
        node_start "$victim"
        cluster_wait_json 15 "all(.brokers[]; .fenced == false)"
        wait_for 15 isr_is cs 0 1,2,3
    done
    touch "$dir/stop"
    wait "${BG_PIDS[0]}"
    # One acknowledgement per offset, each readable.
    run python3 -c '
import sys
offs = [int(l.split()[2]) for l in open(sys.argv[1])]
assert len(offs) == len(set(offs)), "an offset acknowledged twice"
assert offs == sorted(offs), "offsets out of order"
print(len(offs))' "$dir/acks"
    assert_success
    local acked=$output
    run bash -c "stream-sub -t cs -e | wc -l"
    assert_success
    [ "$output" -ge "$acked" ]
}

@test "replica fetch: a stale leader epoch, an unknown broker, a consumer at a follower" {
    cluster_start 3
    stream-topics create e -p 1 -r 3
    local leader follower
    leader=$(wait_leader e 0 -1 5)
    follower=$((leader % 3 + 1))
    echo x | stream-pub -t e --acks all
    # A consumer asking a follower is told who leads.
    run faultclient request "$(node_addr "$follower")" fetch \
        '{"topics": [{"name": "e", "partitions": [{"partition": 0, "offset": 0}]}]}'
    assert_success
    assert_output --partial '"err": 17'
    assert_output --partial "node $leader does"
    # A replica fetch with an epoch older than the leader's.
    run faultclient request "$(node_addr "$leader")" fetch \
        "{\"replica_id\": $follower, \"topics\": [{\"name\": \"e\", \"partitions\": [{\"partition\": 0, \"offset\": 0, \"leader_epoch\": 0, \"durable_offset\": 0}]}]}"
    assert_success
    epoch=$(part_json e 0 | jq .leader_epoch)
    if [ "$epoch" -gt 0 ]; then assert_output --partial '"err": 39'; fi
    # A broker id that is no replica of the partition.
    run faultclient request "$(node_addr "$leader")" fetch \
        '{"replica_id": 77, "topics": [{"name": "e", "partitions": [{"partition": 0, "offset": 0}]}]}'
    assert_success
    assert_output --partial '"err": 40'
    # Nothing changed: the record is there once.
    run stream-sub -t e -e -f '%v\n'
    assert_success
    assert_output x
}

@test "rolling restart (SIGTERM each broker in turn): the producer sees no error, stores nothing twice; the group gets everything once" {
    local k dir=$BATS_TEST_TMPDIR/run
    cluster_start 3 --set group.min.session.timeout.ms=500
    stream-topics create roll -p 3 -r 3 --config min.insync.replicas=2
    for k in 0 1 2; do wait_leader roll "$k" -1 5 >/dev/null; done
    mkdir -p "$dir"
    # One producer run for the whole restart (a failure would end it with
    # status 1), and one group member.
    python3 "$FAULTS_DIR/crashcheck.py" gen 10000000 --rate 2000 --stop-file "$dir/stop" |
        stream-pub -t roll --acks all --ack-log "$dir/ack.10000000" 2>"$dir/pub.err" &
    local pub=$!
    background stream-sub -g roller -t roll -f '%p %o %v\n' --session-timeout-ms 1500 \
        --commit-interval-ms 200 >"$dir/group.out" 2>"$dir/group.err"
    local sub=$BG_PID
    # Both are running (the producer has its id and acknowledgements,
    # the member its partitions) before the first broker stops.
    wait_for 15 bash -c "[ -s '$dir/ack.10000000' ] && [ -s '$dir/group.out' ]"
    sleep 0.5
    for k in 1 2 3; do
        node_restart "$k"
        wait_for 15 bash -c "[ \"\$(stream-topics describe roll --json 2>/dev/null | jq '[.topics[0].partitions[].isr | length] | min' 2>/dev/null)\" = 3 ]"
    done
    sleep 1
    touch "$dir/stop"
    wait "$pub" || { cat "$dir/pub.err" >&3; false; }
    # The member reads everything, then leaves.
    local n
    n=$(wc -l <"$dir/ack.10000000")
    wait_for 30 bash -c "[ \$(wc -l <'$dir/group.out') -ge $n ]"
    kill -TERM "$sub"
    wait "$sub"
    run cat "$dir/pub.err"
    assert_output ""
    stream-sub -t roll -e -f '%p %o %v\n' >"$dir/stored"
    run python3 "$FAULTS_DIR/crashcheck.py" check --log "$dir/stored" --exactly-once \
        "$dir/ack.10000000"
    printf '%s\n' "$output" | sed 's/^/# /' >&3
    assert_success
    # Every acknowledged record delivered to the group exactly once: when
    # the coordinator moves, the member joins the new one and its partitions,
    # given back, go on from its own position, not from its last commit.
    run group_exactly_once "$dir/ack.10000000" "$dir/group.out"
    printf '%s\n' "$output" | sed 's/^/# /' >&3
    assert_success
}
