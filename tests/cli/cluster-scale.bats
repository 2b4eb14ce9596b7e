#!/usr/bin/env bats
# The cluster's metadata at scale (issue 22), cheaply (tests/bench/
# cluster-scale.sh measures the real targets at 3,000 and more): three
# brokers with 3 topics of CLUSTER_SCALE_PER_TOPIC (400) partitions each; a
# kill -9 of a broker that leads a third of them moves every one in batched
# metadata commands, and produce to them resumes. The replica managers
# follow a burst of 200 created topics topic by changed topic, and a broker
# back from a kill -9 rejoins the ISR of 300 partitions in batched commands.

bats_require_minimum_version 1.5.0
load helpers
load cluster_lib

setup() {
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    PER=${CLUSTER_SCALE_PER_TOPIC:-400}
    ALL=$((3 * PER))
    # Every broker holds every partition (2 descriptors each).
    [ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((2 * ALL + 2000)) ] ||
        skip "ulimit -n is $(ulimit -n): $ALL partitions on each broker need about $((2 * ALL + 100))"
    CLUSTER_SET="--set broker.session.timeout.ms=2000"
}

teardown() {
    cluster_stop
    return 0
}

# leaders_of NODE TOPIC: "partition leader" lines as NODE describes TOPIC.
leaders_of() {
    stream-topics -b "$(node_addr "$1")" --timeout-ms 5000 describe "$2" --json 2>/dev/null |
        jq -r '.topics[0].partitions[] | "\(.partition) \(.leader)"'
}

@test "1,200 partitions on three brokers: kill -9 of one, every partition led again in batches, produce resumes" {
    cluster_start 3
    local t k i
    for t in 0 1 2; do
        run stream-topics --timeout-ms 120000 create "s$t" -p "$PER" -r 3
        assert_success
    done
    # Every broker has made every partition (off its loop) and knows its
    # leader.
    for k in 1 2 3; do
        for ((i = 0; i < 600; i++)); do
            [ "$(for t in 0 1 2; do leaders_of "$k" "s$t"; done | awk '$2 >= 1' | wc -l)" = "$ALL" ] &&
                break
            sleep 0.1
        done
        [ "$i" -lt 600 ]
    done
    # The victim: a broker that is not the controller, leading about a third.
    local ctl victim
    ctl=$(stream-topics cluster --json | jq -r '.leader_id')
    victim=$((ctl % 3 + 1))
    leaders_of 1 s0 | awk -v v="$victim" '$2 == v { print $1 }' >"$BATS_TEST_TMPDIR/led"
    [ "$(wc -l <"$BATS_TEST_TMPDIR/led")" -ge $((PER * 3 / 10)) ]
    local t0 t1
    t0=$(date +%s%N)
    node_kill "$victim"
    # Generous bound (ASan, a busy machine): the session is 2 s, kill -9
    # closes the heartbeat connection, so it is fenced at once.
    cluster_wait_json 20 ".offline_count == 0 and .under_replicated_count == $ALL and
        ([.brokers[] | select(.fenced)] | length) == 1"
    t1=$(date +%s%N)
    echo "# every partition led again $(((t1 - t0) / 1000000)) ms after kill -9 of node $victim" >&3
    # No partition names the dead broker as leader or in its ISR.
    local alive=$((victim % 3 + 1))
    for t in 0 1 2; do
        run --separate-stderr bash -c "stream-topics -b '$(node_addr "$alive")' describe s$t --json |
            jq -e --argjson v $victim '[.topics[0].partitions[] | select(.leader == \$v or
                (.isr | index(\$v)))] | length == 0'"
        assert_success
    done
    # The controller moved them in alter_partitions of up to 1,000 changes
    # (an ISR change for every partition, a third of them leader moves).
    grep -hE "leaders moved in all \([0-9]+ changes, in batches of 1000\)" "$CLUSTER_DIR"/n*/log
    # Produce with acks=all to a sample of the partitions the victim led.
    local p
    for p in $(shuf -n 20 "$BATS_TEST_TMPDIR/led"); do
        run stream-pub -b "$(node_addr "$alive")" -t s0 -p "$p" --acks all <<<"after-$p"
        assert_success
    done
}

# synced_topics K: the topics node K's replica syncs have looked at since it
# started (its debug log says after each sync).
synced_topics() {
    grep -o 'replica sync of [0-9]* topic(s), [0-9]* in all' "$CLUSTER_DIR/n$1/log" |
        tail -n 1 | awk '{ print $(NF - 2) }'
}

@test "200 topics created in a burst: each broker's replica syncs look at each changed topic, not at every topic each time" {
    cluster_start 3
    local names=() i k
    for ((i = 0; i < 200; i++)); do names+=("m$i"); done
    run stream-topics --timeout-ms 120000 create "${names[@]}" -p 1 -r 3
    assert_success
    # Every broker made them all (off its loop, a job each, a sync after
    # each job) and knows every leader.
    for k in 1 2 3; do
        for ((i = 0; i < 600; i++)); do
            [ "$(find "$CLUSTER_DIR/n$k/data" -maxdepth 1 -name 'm*-0' | wc -l)" -eq 200 ] &&
                [ "$(leaders_of "$k" m199 | awk '$2 >= 1' | wc -l)" -eq 1 ] && break
            sleep 0.1
        done
        [ "$i" -lt 600 ]
    done
    # A sync re-reading every topic of the metadata after each made topic
    # looked at some 200 x 200 / 2 = 20,000; by changed topics, a few per
    # topic (its create, its leader and ISR, its job's end).
    for k in 1 2 3; do
        echo "node $k: $(synced_topics "$k") topics looked at by replica syncs"
        [ "$(synced_topics "$k")" -lt 1000 ]
    done
    # And they serve: a record to the last topic, read back from another broker.
    echo x | stream-pub -t m199 --acks all
    run stream-sub -b "$(node_addr 2)" -t m199 -e -f '%s\n'
    assert_output x
}

# applied_index: the metadata's applied index as the cluster command tells.
applied_index() { stream-topics --timeout-ms 5000 cluster --json | jq -r '.applied_index'; }

@test "a broker back from kill -9 rejoins the ISR of 300 partitions in a few metadata commands" {
    cluster_start 3
    run stream-topics --timeout-ms 60000 create r -p 300 -r 3
    assert_success
    cluster_wait_json 60 ".under_replicated_count == 0 and .offline_count == 0"
    local ctl victim a0 a1
    ctl=$(stream-topics cluster --json | jq -r '.leader_id')
    victim=$((ctl % 3 + 1))
    node_kill "$victim"
    cluster_wait_json 30 ".under_replicated_count == 300 and .offline_count == 0"
    a0=$(applied_index)
    node_start "$victim"
    # Back, it catches up and each leader asks it into the ISR of every
    # partition: one alter_partition command each made some 300 entries
    # of the metadata log; batched, a few (with its registration).
    cluster_wait_json 60 ".under_replicated_count == 0 and .offline_count == 0"
    a1=$(applied_index)
    echo "metadata entries while node $victim rejoined 300 ISRs: $((a1 - a0))"
    grep -h "isr change(s) proposed in one alter_partitions" "$CLUSTER_DIR"/n*/log | tail -n 5
    [ $((a1 - a0)) -lt 100 ]
}
