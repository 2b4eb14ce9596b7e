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

# fds_of PID: descriptors the process holds.
fds_of() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }

@test "produce and fetch to more partitions x segments than the open-file limit, through the file cache" {
    stop_broker
    # 60 partitions of about 6 segments each: some 360 segment files and 60
    # directories under a limit of 200 (the broker raises its soft limit to
    # this hard one). Without the cache the rolls failed with EMFILE.
    ulimit -n 200
    start_broker
    stream-topics create many -p 60 -c segment.bytes=1024
    local round i
    for round in 1 2 3 4 5 6; do
        for ((i = 0; i < 600; i++)); do
            printf 'k%d-%d:round %d record %d ........................................\n' \
                "$round" "$i" "$round" "$i"
        done | stream-pub -t many -K: --acks all
    done
    local segs
    segs=$(find "$BROKER_DIR" -name '*.log' -path '*/many-*' | wc -l)
    echo "segment files: $segs"
    [ "$segs" -gt 300 ]
    [ "$(fds_of "$BROKER_PID")" -le 200 ]
    # Every record comes back, twice over (the second pass reopens what the
    # first one's reads closed again).
    for round in 1 2; do
        run stream-sub -t many -e -f '%k\n'
        assert_success
        [ "$(printf '%s\n' "$output" | sort -u | wc -l)" -eq 3600 ]
    done
    [ "$(fds_of "$BROKER_PID")" -le 200 ]
    # A restart opens more segments than the limit holds, and serves them.
    stop_broker
    start_broker
    run stream-sub -t many -e -f '%k\n'
    assert_success
    [ "$(printf '%s\n' "$output" | sort -u | wc -l)" -eq 3600 ]
    echo y | stream-pub -t many -p 59
}

@test "200 partitions x 2 segments serve produce and fetch under ulimit -n 300: one descriptor a partition" {
    stop_broker
    # A partition that held a descriptor for its directory beside its
    # active segment needed 400 here: the create was refused (or rolls
    # failed). The full size, 10,000 x 2 under 20,000: tests/bench/admin.sh.
    # And a segment rolled stayed pinned until its sync: every partition
    # rolling within one request needed two descriptors a partition for a
    # moment, and the rolls failed with the open-file limit's message. Now
    # it waits unpinned and its sync reopens it when needed.
    ulimit -n 300
    start_broker
    local base
    base=$(fds_of "$BROKER_PID")
    stream-topics create wide -p 200 -c segment.bytes=1024
    [ "$(fds_of "$BROKER_PID")" -le $((base + 200 + 10)) ]
    # Keys hash to every partition (checked below); three rounds of some
    # 2 KiB a partition (at least 8 keys of ~100 bytes each) roll each.
    local round acks=$BATS_TEST_TMPDIR/acks
    for round in 1 2 3; do
        awk -v r="$round" 'BEGIN { for (i = 0; i < 4000; i++)
            printf "k%d:round %d %s\n", i, r,
                "........................................................................." }' |
            stream-pub -t wide -K: --acks all --ack-log "$acks"
    done
    [ "$(awk '{ print $(NF - 1) }' "$acks" | sort -u | wc -l)" -eq 200 ]
    # Every partition has two segments or more.
    local short
    short=$(find "$BROKER_DIR" -path '*/wide-*' -name '*.log' |
        awk -F/ '{ n[$(NF - 1)]++ } END { for (d in n) if (n[d] >= 2) k++; print 200 - k }')
    [ "$short" -eq 0 ] || fail "$short partitions have fewer than 2 segments"
    [ "$(fds_of "$BROKER_PID")" -le 300 ]
    # Fetch from every partition, before and after a restart.
    for round in 1 2; do
        run stream-sub -t wide -e -f '%p %k\n'
        assert_success
        [ "$(printf '%s\n' "$output" | wc -l)" -eq 12000 ]
        [ "$(printf '%s\n' "$output" | awk '{ print $1 }' | sort -u | wc -l)" -eq 200 ]
        [ "$round" -eq 2 ] || { stop_broker && start_broker; }
    done
    echo y | stream-pub -t wide -p 199
    [ "$(fds_of "$BROKER_PID")" -le 300 ]
}

@test "a create past log.max.open.files fails with a message naming the setting" {
    stop_broker
    start_broker -s log.max.open.files=50
    run stream-topics create big --partitions 100
    assert_failure
    assert_output --partial "log.max.open.files"
    refute_output --partial "input/output error"
    run stream-topics create fits --partitions 10
    assert_success
    echo x | stream-pub -t fits -p 9
    run stream-sub -t fits -p 9 -e -f '%s\n'
    assert_output x
}

# now_ms: the time in milliseconds.
now_ms() { echo $(($(date +%s%N) / 1000000)); }

@test "a broker of 2,000 partitions stops in seconds and is ready again soon after SIGTERM and kill -9" {
    stream-topics create big --partitions 2000 --timeout-ms 60000
    seq 100 | awk '{ print "k" $1 ":first" }' | stream-pub -t big -K: --acks all
    # Four syncs per partition at stop took 6-10 s here (release build);
    # the batched close syncs twice in all. Generous bounds: a loaded
    # machine, sanitizers.
    local t0 stop_ms term_ms kill_ms
    t0=$(now_ms)
    stop_broker
    stop_ms=$(($(now_ms) - t0))
    t0=$(now_ms)
    start_broker
    term_ms=$(($(now_ms) - t0))
    seq 100 | awk '{ print "k" $1 ":second" }' | stream-pub -t big -K: --acks all
    kill_broker
    t0=$(now_ms)
    start_broker
    kill_ms=$(($(now_ms) - t0))
    echo "stop $stop_ms ms, ready after SIGTERM $term_ms ms, after kill -9 $kill_ms ms"
    [ "$stop_ms" -lt 4000 ]
    [ "$term_ms" -lt 8000 ]
    [ "$kill_ms" -lt 8000 ]
    [ ! -e "$BROKER_DIR/big-0/clean-shutdown" ] # removed while the broker runs
    run stream-sub -t big -e -f '%k %s\n'
    assert_success
    [ "$(printf '%s\n' "$output" | grep -c ' first$')" -eq 100 ]
    [ "$(printf '%s\n' "$output" | grep -c ' second$')" -eq 100 ]
}
