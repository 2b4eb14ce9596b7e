#!/usr/bin/env bats
# Compacted topics replicated on three brokers. Every broker cleans its own
# copy, so the leader's log and each follower's have holes where records
# were removed - not the same holes. A follower that was down while the
# leader cleaned fetches from its end, which lies before or inside the
# leader's holes: it must take the batches past them (the log's replica
# append), catch up, and rejoin the ISR. And a follower with holes of its
# own must serve as leader after a failover.
#
# Small segments (1 KiB, 200 ms) and a cleaner that looks every 100 ms make
# what was produced cleanable within a fraction of a second.

bats_require_minimum_version 1.5.0

load helpers
load cluster_lib

setup() {
    CLUSTER_SET="--set broker.session.timeout.ms=1000 --set log.cleaner.backoff.ms=100
        --set log.retention.check.interval.ms=100"
    cd "$BATS_TEST_TMPDIR"
}

teardown() {
    cluster_stop
    return 0
}

create_table() {
    stream-topics create table -p 1 -r 3 -c cleanup.policy=compact -c segment.bytes=1024 \
        -c segment.ms=200 -c min.cleanable.dirty.ratio=0.01 -c delete.retention.ms=600000
}

# Writes round $1 of keys key-1..key-20 (values value-K-ROUND), a batch
# per record, so that cleaning drops whole batches: holes between batches.
write_round() {
    local k
    for k in $(seq 1 20); do echo "key-$k:value-$k-$1"; done |
        stream-pub -t table -K: --batch-bytes 1 --linger-ms 0
}

# Waits up to $2 s until the ISR of table-0 is $1.
wait_isr() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        [ "$(isr_of table 0)" = "$1" ] && return 0
        sleep 0.1
    done
    echo "ISR of table-0 after $2 s: $(isr_of table 0), not $1" >&2
    return 1
}

# Waits (up to 20 s) until node $1's log says it cleaned table-0 at least $2 times.
wait_cleaned() {
    local i
    for ((i = 0; i < 200; i++)); do
        [ "$(grep -c 'table-0: cleaned' "$CLUSTER_DIR/n$1/log")" -ge "$2" ] && return 0
        sleep 0.1
    done
    echo "node $1 cleaned table-0 fewer than $2 times" >&2
    return 1
}

# Waits (up to 20 s) until a full read of table (from node $1) is exactly the
# table of latest values: $2 records, one per key and key-3's tombstone
# (kept delete.retention.ms: a replica or consumer that is behind longer
# than that misses the delete, as in Kafka).
wait_table() {
    local i n=
    for ((i = 0; i < 200; i++)); do
        n=$(stream-sub -b "$(node_addr "$1")" -t table -e | wc -l)
        [ "$n" -eq "$2" ] && break
        sleep 0.1
    done
    if [ "$n" -ne "$2" ]; then
        echo "node $1 serves $n records, not $2:" >&2
        stream-sub -b "$(node_addr "$1")" -t table -e -f '%o %k=%v\n' >&2
        grep 'table-0' "$CLUSTER_DIR/n$1/log" | tail -20 >&2
        return 1
    fi
    run stream-sub -b "$(node_addr "$1")" -t table --latest-per-key -f '%k=%v\n'
    assert_success
    [ "${#lines[@]}" -eq 19 ]
    refute_line --partial 'key-3='
    assert_line 'key-1=value-1-last'
    local k
    for k in 2 4 5 10 20; do assert_line "key-$k=value-$k-8"; done
}

# Node $1's copy of table-0 has holes between batches: a fetch from offset
# 20 (the first overwritten batch, removed) starts past it.
assert_holes() {
    local first
    first=$(stream-sub -b "$(node_addr "$1")" -t table -o 20 -c 1 -f '%o\n')
    [ "$first" -gt 20 ] || { echo "node $1 still has offset 20" >&2 && return 1; }
}

@test "a follower down while the leader cleaned catches up across the holes, rejoins the ISR; failovers serve the latest values" {
    cluster_start 3
    create_table
    wait_isr 1,2,3 15
    write_round 1
    local leader follower
    leader=$(leader_of table 0)
    follower=$((leader % 3 + 1))
    node_kill "$follower"
    wait_isr "$(printf '%s\n' 1 2 3 | grep -vx "$follower" | paste -sd,)" 15
    # Overwritten and deleted while it is down; the leader cleans.
    local r
    for r in 2 3 4 5 6 7 8; do write_round "$r"; done
    printf 'key-1:value-1-last\n' | stream-pub -t table -K:
    printf 'key-3:\n' | stream-pub -t table -K: -Z
    wait_cleaned "$leader" 1
    wait_table "$leader" 20
    assert_holes "$leader"
    # Back: it fetches from its end into the leader's holes.
    local cleaned_before
    cleaned_before=$(grep -c "table-0: cleaned" "$CLUSTER_DIR/n$follower/log" || true)
    node_start "$follower"
    wait_isr 1,2,3 20
    run ! grep -q 'cannot append the leader' "$CLUSTER_DIR/n$follower/log"
    # kill -9 of the leader: the next one (either follower, each with holes
    # of its own cleaning) serves the latest value of every key.
    wait_cleaned "$follower" $((cleaned_before + 1))
    node_kill "$leader"
    local next
    next=$(wait_leader table 0 "$leader" 15)
    wait_table "$next" 20
    assert_holes "$next"
    # Writes go on at the new leader; the old one returns, catches up from
    # the new leader's holes and rejoins.
    printf 'key-2:value-2-after\n' | stream-pub -t table -K:
    node_start "$leader"
    wait_isr 1,2,3 20
    run ! grep -q 'cannot append the leader' "$CLUSTER_DIR/n$leader/log"
    # And a second failover, to whichever replica the controller picks.
    node_kill "$next"
    local third
    third=$(wait_leader table 0 "$next" 15)
    run stream-sub -b "$(node_addr "$third")" -t table --latest-per-key -f '%k=%v\n'
    assert_success
    [ "${#lines[@]}" -eq 19 ]
    assert_line 'key-2=value-2-after'
    assert_line 'key-1=value-1-last'
    refute_line --partial 'key-3='
}

@test "a cluster's __consumer_offsets without compaction (as an older broker made it) is made compacted by the controller" {
    cluster_start 3
    stream-topics create t -p 1 -r 3
    printf 'a\nb\nc\n' | stream-pub -t t
    stream-sub -t t -g g1 -c 2 >/dev/null
    run stream-topics describe __consumer_offsets
    assert_output --regexp 'cleanup\.policy +compact +topic'
    # The old settings, as the metadata of an older cluster holds them.
    stream-topics alter __consumer_offsets -c cleanup.policy=delete -c retention.ms=-1
    local i ctl=
    for ((i = 0; i < 100; i++)); do
        ctl=$(grep -l 'cluster: __consumer_offsets made before compaction' "$CLUSTER_DIR"/n*/log) &&
            break
        sleep 0.1
    done
    [ -n "$ctl" ]
    run stream-topics describe __consumer_offsets
    assert_success
    assert_output --regexp 'cleanup\.policy +compact +topic'
    assert_output --regexp 'retention\.ms +-1 +topic'
    # Every broker's copy took it, and the group's offset is still there.
    local k
    for k in 1 2 3; do
        for ((i = 0; i < 50; i++)); do
            grep -q '^cleanup.policy=compact$' "$CLUSTER_DIR/n$k/data/__consumer_offsets.topic" &&
                break
            sleep 0.1
        done
        grep -q '^cleanup.policy=compact$' "$CLUSTER_DIR/n$k/data/__consumer_offsets.topic"
    done
    run stream-sub -t t -g g1 -e
    assert_success
    assert_output c
}
