#!/usr/bin/env bats
# Topic admin work at scale (issue 22), cheaply (tests/bench/admin.sh
# measures the real targets): creating and deleting thousands of partitions
# runs off the broker's loop, so another client's produce and fetch keep
# flowing meanwhile; and a kill -9 at any moment of a create or a delete
# leaves the whole topic or none of it.

bats_require_minimum_version 1.5.0
load helpers

setup() {
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    [ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge 5000 ] ||
        skip "ulimit -n is $(ulimit -n): 2,000 partitions need about 4,100 descriptors"
    start_broker
}

teardown() {
    if [ -n "${E2E_PID:-}" ]; then
        kill -TERM "$E2E_PID" 2>/dev/null || true
        wait "$E2E_PID" 2>/dev/null || true
    fi
    stop_broker
}

# e2e_max_ms FILE: the max latency of a stream-bench e2e --json result, in
# whole ms.
e2e_max_ms() { sed 's/.*"max":\([0-9]*\).*/\1/' "$1"; }

@test "creating and deleting 2,000 partitions does not stall another topic's produce and fetch" {
    stream-topics create e2e -p 1
    local out=$BATS_TEST_TMPDIR/e2e.json
    # 5 s at 400 records/s; the create and the delete run within them.
    stream-bench e2e -t e2e -n 2000 --rate 400 --acks 1 --json -q >"$out" \
        2>"$BATS_TEST_TMPDIR/e2e.err" 3>&- &
    E2E_PID=$!
    sleep 0.5
    run stream-topics create big --partitions 2000 --timeout-ms 60000
    assert_success
    run stream-topics delete big --timeout-ms 60000
    assert_success
    wait "$E2E_PID"
    E2E_PID=
    cat "$out"
    grep -q '"records_received":2000' "$out"
    # On the loop, the create alone stalled every client for seconds (more
    # with sanitizers). Off it, a generous bound for a loaded machine:
    [ "$(e2e_max_ms "$out")" -lt 1000 ]
    # The name is free again at once, and the new topic is a new one.
    run stream-topics create big --partitions 3
    assert_success
    run stream-topics describe big --json
    assert_output --partial '"partition_count":3'
}

# topic_is_whole_or_gone NAME COUNT: after a restart, NAME either exists with
# COUNT partitions (the last one usable) or not at all, with no partition
# directory of it left in the data dir's namespace.
topic_is_whole_or_gone() {
    if stream-topics describe "$1" --json >"$BATS_TEST_TMPDIR/desc.json" 2>/dev/null; then
        grep -q "\"partition_count\":$2," "$BATS_TEST_TMPDIR/desc.json" ||
            fail "$1 came back partial: $(head -c 300 "$BATS_TEST_TMPDIR/desc.json")"
        echo x | stream-pub -t "$1" -p $(($2 - 1))
        echo whole
    else
        local left
        left=$(find "$BROKER_DIR" -maxdepth 1 -name "$1-*" | wc -l)
        [ "$left" -eq 0 ] || fail "$1 is gone but $left of its partition directories are not"
        echo gone
    fi
}

@test "kill -9 during a create or a delete leaves the whole topic or none of it" {
    local i delay state seen=""
    for i in 1 2; do
        # A create killed early, then later (or after it finished).
        delay=$(awk -v i="$i" 'BEGIN { printf "%.2f", i * i * 0.1 }')
        stream-topics create big --partitions 1000 --timeout-ms 60000 >/dev/null 2>&1 &
        sleep "$delay"
        kill_broker
        wait $! || true
        start_broker
        state=$(topic_is_whole_or_gone big 1000)
        seen="$seen create@$delay:$state"
        # Then a delete of the whole topic, killed the same way.
        if [ "$state" = gone ]; then
            stream-topics create big --partitions 1000 --timeout-ms 60000
        fi
        stream-topics delete big --timeout-ms 60000 >/dev/null 2>&1 &
        sleep "$(awk -v d="$delay" 'BEGIN { printf "%.2f", d / 3 }')"
        kill_broker
        wait $! || true
        start_broker
        state=$(topic_is_whole_or_gone big 1000)
        seen="$seen delete@$delay:$state"
        [ "$state" = gone ] || stream-topics delete big
    done
    echo "$seen"
}

@test "a create past the open-file limit fails at once with a message naming the limit" {
    stop_broker
    # A broker with a small limit (it raises its soft limit to the hard one).
    ulimit -n 400
    start_broker
    run stream-topics create big --partitions 1000
    assert_failure
    assert_output --partial "open-file limit"
    assert_output --partial "ulimit -n"
    refute_output --partial "input/output error"
    run stream-topics create fits --partitions 100
    assert_success
    echo x | stream-pub -t fits -p 99
    run stream-sub -t fits -p 99 -e -f '%s\n'
    assert_output x
}
