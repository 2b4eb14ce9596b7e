#!/usr/bin/env bats
# Data-only brokers: a stream-broker whose --node-id is not among the
# --cluster voters finds the controller by asking the voters on their Raft
# addresses, registers and heartbeats like any broker, follows the metadata
# over its link (fetch_metadata: the commands since its copy, the whole image
# only for its first copy of a run), holds replicas, leads partitions, is
# fenced when killed and catches up when restarted; one started before any
# voter waits for the quorum.

load helpers
load faults/lib
load cluster_lib

setup() {
    # Quick failure detection, as replication.bats.
    CLUSTER_SET="--set broker.session.timeout.ms=1000"
}

teardown() {
    cluster_stop
    return 0
}

# Node 4 is registered, unfenced, and a broker but not a voter.
DATAONLY_JOINED='(.brokers | length) == 4 and all(.brokers[]; .fenced == false)
    and ([.voters[].node_id] | index(4) | not)'

@test "a data-only broker joins, holds a replica, leads, is fenced when killed and catches up when back" {
    cluster_start 3
    dataonly_start 4
    cluster_wait_json 5 "$DATAONLY_JOINED"
    # It answers describe_cluster from its copy of the metadata.
    run stream-topics -b "$(node_addr 4)" cluster --json
    assert_success
    jq -e '.node_id == 4 and .leader_id >= 1 and (.brokers | length) == 4
        and (.voters | length) == 3' <<<"$output"
    # RF=4 on 4 partitions: a replica of each on node 4, and it leads one.
    run stream-topics create d -p 4 -r 4
    assert_success
    local p i
    for ((i = 0; i < 60; i++)); do
        p=$(stream-topics -b "$(node_addr 4)" describe d --json 2>/dev/null | jq -r '
            [.topics[0].partitions[] | select((.replicas | sort) == [1, 2, 3, 4])] as $a
            | if ($a | length) == 4 then ($a[] | select(.leader == 4) | .partition) else empty end' \
            2>/dev/null || true)
        [ -n "$p" ] && break
        sleep 0.05
    done
    [ -n "$p" ]
    # acks=all produce and consume through it (the partition it leads).
    seq 1 200 | stream-pub -b "$(node_addr 4)" -t d -p "$p" --acks all
    run stream-sub -b "$(node_addr 4)" -t d -p "$p" -e -f '%v\n'
    assert_success
    [ "${#lines[@]}" -eq 200 ]
    # kill -9: fenced, its leadership moves.
    node_kill 4
    cluster_wait_json 3 '.brokers[] | select(.node_id == 4) | .fenced and .leaderships == 0'
    local l
    l=$(wait_leader d "$p" 4 3)
    seq 201 300 | stream-pub -t d -p "$p" --acks all
    # Back: registered again, in the ISR again, its log the leader's.
    dataonly_start 4
    cluster_wait_json 5 "$DATAONLY_JOINED"
    for ((i = 0; i < 100; i++)); do
        [ "$(isr_of d "$p")" = 1,2,3,4 ] && break
        sleep 0.05
    done
    [ "$(isr_of d "$p")" = 1,2,3,4 ]
    run stream-sub -b "$(node_addr "$l")" -t d -p "$p" -e -f '%v\n'
    [ "${#lines[@]}" -eq 300 ]
    cluster_stop
    run python3 "$FAULTS_DIR/replicacheck.py" prefix --topic d --partitions 4 --same \
        "$CLUSTER_DIR"/n{1,2,3,4}/data
    printf '%s\n' "$output" | sed 's/^/# /' >&3
    assert_success
}

@test "a data-only broker started before any voter waits, then joins" {
    cluster_plan 3
    dataonly_start 4
    local i k
    for ((i = 0; i < 50; i++)); do
        grep -q "no voter names a controller yet" "$CLUSTER_DIR/n4/log" && break
        sleep 0.1
    done
    grep -q "no voter names a controller yet" "$CLUSTER_DIR/n4/log"
    for k in 1 2 3; do
        node_start "$k"
    done
    cluster_wait_json 10 "$DATAONLY_JOINED"
    # Its own copy of the metadata shows it registered too (it follows the
    # controller's image a heartbeat later): only then is a SIGTERM a
    # controlled shutdown rather than a plain stop.
    # Up to 15 s (ASan beside other tests in make check): a SIGTERM before
    # it would be a plain stop, and the check below would fail for that.
    for ((i = 0; i < 150; i++)); do
        stream-topics -b "$(node_addr 4)" --timeout-ms 1000 cluster --json 2>/dev/null |
            jq -e '.brokers[] | select(.node_id == 4) | .fenced == false' >/dev/null && break
        sleep 0.1
    done
    [ "$i" -lt 150 ] || { echo "node 4 never saw itself registered and unfenced" >&2; false; }
    # SIGTERM: controlled shutdown, as any broker.
    node_kill 4 TERM
    timeout 10 tail --pid="${CPIDS[4]}" -f /dev/null
    grep -q "controlled shutdown: this broker is fenced and leads nothing" "$CLUSTER_DIR/n4/log"
}

@test "a data-only broker follows metadata changes by deltas; restarted behind, it starts from the image" {
    cluster_start 3
    dataonly_start 4
    cluster_wait_json 5 "$DATAONLY_JOINED"
    local log=$CLUSTER_DIR/n4/log
    grep -q "following the metadata from the controller (index" "$log"
    # Changes while it follows: each reaches it as the commands since its
    # copy, never as the whole image.
    run stream-topics create dl -p 600 -r 3
    assert_success
    run stream-topics alter dl -c retention.ms=60000
    assert_success
    local i n
    for ((i = 0; i < 100; i++)); do
        n=$(stream-topics -b "$(node_addr 4)" describe dl --json 2>/dev/null |
            jq '[.topics[0].partitions[] | select(.leader >= 1)] | length' 2>/dev/null || true)
        [ "$n" = 600 ] && stream-topics -b "$(node_addr 4)" describe dl --json |
            jq -e '.topics[0].configs["retention.ms"] == "60000" or
                   (.topics[0].configs[]? | select(.name == "retention.ms") | .value == "60000")' \
                >/dev/null 2>&1 && break
        sleep 0.1
    done
    [ "$n" = 600 ]
    grep -q "by deltas" "$log"
    run grep -c "by the whole image" "$log"
    [ "$output" = 0 ]
    # The change that moves 200 leaderships (node 1 killed) arrives as deltas
    # too: a few KB for 600 partitions.
    node_kill 1
    cluster_wait_json 10 '.offline_count == 0 and ([.brokers[] | select(.fenced)] | length) == 1'
    run grep -c "by the whole image" "$log"
    [ "$output" = 0 ]
    # Killed, then changes it misses: back, its first copy is the image (at
    # least as new as those changes), then deltas again.
    node_kill 4
    run stream-topics create dl2 -p 10 -r 2
    assert_success
    dataonly_start 4
    for ((i = 0; i < 100; i++)); do
        stream-topics -b "$(node_addr 4)" describe dl2 --json 2>/dev/null |
            jq -e '.topics[0].partitions | length == 10' >/dev/null 2>&1 && break
        sleep 0.1
    done
    [ "$(grep -c 'following the metadata from the controller (index' "$log")" = 2 ]
    local before
    before=$(grep -c "by deltas" "$log")
    run stream-topics alter dl2 -c retention.ms=1000
    assert_success
    for ((i = 0; i < 100; i++)); do
        [ "$(grep -c "by deltas" "$log")" -gt "$before" ] && break
        sleep 0.1
    done
    [ "$(grep -c "by deltas" "$log")" -gt "$before" ]
}
