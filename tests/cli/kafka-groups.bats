#!/usr/bin/env bats
# Consumer groups through the Kafka listener: Kafka's classic group
# protocol (JoinGroup/SyncGroup with the clients' own assignors, Heartbeat,
# LeaveGroup) and committed offsets (OffsetCommit/OffsetFetch) with real
# clients - kcat -G, python3-confluent-kafka, python3-kafka, kafkajs - on a
# real broker, static members (group.instance.id) included; the same groups
# seen and reset by stream-topics, and refused to stream-sub -g; then bad
# input by hand (kafka_raw.py). Every broker here has its own Kafka port
# (--kafka-listen 127.0.0.1:0).

bats_require_minimum_version 1.5.0

load helpers

RAW="$BATS_TEST_DIRNAME/kafka_raw.py"
CLIENTS="$BATS_TEST_DIRNAME/kafka_group_clients.py"
# Debian's python3, where python3-confluent-kafka and python3-kafka live.
PY=/usr/bin/python3

start_kafka() {
    start_broker --kafka-listen 127.0.0.1:0 --set group.initial.rebalance.delay.ms=300 \
        --set group.min.session.timeout.ms=1000 "$@"
    KAFKA=$(sed -n 's/.*kafka listener on \([0-9.]*:[0-9]*\).*/\1/p' "$BROKER_LOG" | tail -1)
    [ -n "$KAFKA" ] || { cat "$BROKER_LOG" >&2; return 1; }
}

kc() {
    timeout 20 kcat -b "$KAFKA" -q "$@"
}

# Waits (up to 20 s) until `stream-topics group G` says N members, stable.
wait_members() {
    local i
    for ((i = 0; i < 200; i++)); do
        stream-topics group "$1" 2>/dev/null | grep -Eq "[Ss]table, generation [0-9]+, $2 members?," &&
            return 0
        sleep 0.1
    done
    stream-topics group "$1" >&2
    return 1
}

# Waits (up to 20 s) until the files hold N lines in all.
wait_lines() {
    local n=$1 i
    shift
    for ((i = 0; i < 200; i++)); do
        [ "$(cat "$@" | wc -l)" -ge "$n" ] && return 0
        sleep 0.1
    done
    wc -l "$@" >&2
    return 1
}

setup() {
    $PY -c 'import confluent_kafka, kafka' 2>/dev/null ||
        skip "python3-confluent-kafka and python3-kafka are not installed (make deps)"
    start_kafka
    cd "$BATS_TEST_TMPDIR"
}

teardown() {
    local p
    for p in ${BG_PIDS:-}; do kill "$p" 2>/dev/null; done
    for p in ${BG_PIDS:-}; do wait "$p" 2>/dev/null; done
    stop_broker
}

@test "kcat -G: two members share the partitions, each partition read by exactly one" {
    stream-topics create kg -p 4
    kc -G kgroup kg -u -o beginning -f '%p %s\n' >a.out 2>/dev/null 3>&- &
    BG_PIDS="$!"
    kc -G kgroup kg -u -o beginning -f '%p %s\n' >b.out 2>/dev/null 3>&- &
    BG_PIDS="$BG_PIDS $!"
    wait_members kgroup 2
    for p in 0 1 2 3; do seq 1 50 | sed "s/^/p$p-/" | kc -P -t kg -p "$p"; done
    wait_lines 200 a.out b.out
    # Both read, none twice, and each partition went to one of them.
    [ -s a.out ] && [ -s b.out ]
    run sort -u a.out b.out
    [ "${#lines[@]}" -eq 200 ]
    pa=$(cut -d' ' -f1 a.out | sort -u | tr '\n' ' ')
    pb=$(cut -d' ' -f1 b.out | sort -u | tr '\n' ' ')
    echo "a: $pa b: $pb"
    for p in 0 1 2 3; do
        in_a=0 in_b=0
        [[ " $pa" == *" $p "* ]] && in_a=1
        [[ " $pb" == *" $p "* ]] && in_b=1
        [ $((in_a + in_b)) -eq 1 ]
    done
}

@test "confluent-kafka: 100,000 records, a group of 3 with manual commits reads each exactly once; a member that leaves hands its partitions over" {
    stream-topics create big -p 6
    $PY "$CLIENTS" consume "$KAFKA" g3 big c1.out 3>&- &
    BG_PIDS="$!"
    $PY "$CLIENTS" consume "$KAFKA" g3 big c2.out 3>&- &
    BG_PIDS="$BG_PIDS $!"
    $PY "$CLIENTS" consume "$KAFKA" g3 big c3.out 3000 3>&- &
    local leaver=$!
    wait_members g3 3
    run $PY "$CLIENTS" produce "$KAFKA" big 100000
    assert_success
    assert_output "produced 100000"
    wait "$leaver"
    for p in $BG_PIDS; do wait "$p"; done
    BG_PIDS=
    # The leaver read what it had and left; the others took its partitions
    # over from its commits.
    c3=$(wc -l <c3.out)
    [ "$c3" -ge 3000 ] && [ "$c3" -lt 40000 ]
    grep -q 'left' "$BROKER_LOG"
    run $PY "$CLIENTS" check 100000 c1.out c2.out c3.out
    assert_success
    assert_output "exactly once 100000"
    # Every offset is committed: nothing left to read.
    run stream-topics group g3
    assert_output --partial "lag 0 records"
}

@test "confluent-kafka with the roundrobin and cooperative-sticky assignors: a group of 3 reads each record exactly once; a member that leaves hands its partitions over" {
    for assignor in roundrobin cooperative-sticky; do
        stream-topics create "as-$assignor" -p 6
        KAFKA_ASSIGNOR=$assignor $PY "$CLIENTS" consume "$KAFKA" "g-$assignor" "as-$assignor" "a1-$assignor.out" 3>&- &
        BG_PIDS="$!"
        KAFKA_ASSIGNOR=$assignor $PY "$CLIENTS" consume "$KAFKA" "g-$assignor" "as-$assignor" "a2-$assignor.out" 3>&- &
        BG_PIDS="$BG_PIDS $!"
        KAFKA_ASSIGNOR=$assignor $PY "$CLIENTS" consume "$KAFKA" "g-$assignor" "as-$assignor" "a3-$assignor.out" 2000 3>&- &
        local leaver=$!
        wait_members "g-$assignor" 3
        run $PY "$CLIENTS" produce "$KAFKA" "as-$assignor" 20000
        assert_success
        wait "$leaver"
        for p in $BG_PIDS; do wait "$p"; done
        BG_PIDS=
        n3=$(wc -l <"a3-$assignor.out")
        [ "$n3" -ge 2000 ]
        [ "$n3" -lt 20000 ]
        run $PY "$CLIENTS" check 20000 "a1-$assignor.out" "a2-$assignor.out" "a3-$assignor.out"
        assert_success
        assert_output "exactly once 20000"
        run stream-topics group "g-$assignor"
        assert_output --partial "lag 0 records"
    done
}

@test "confluent-kafka static membership: a member killed (-9) and restarted within its session takes its partitions back; the others see no rebalance" {
    stream-topics create st -p 6
    $PY "$CLIENTS" static "$KAFKA" gs st i1 m1.out 3>&- &
    BG_PIDS="$!"
    $PY "$CLIENTS" static "$KAFKA" gs st i2 m2.out 3>&- &
    BG_PIDS="$BG_PIDS $!"
    $PY "$CLIENTS" static "$KAFKA" gs st i3 m3.out 3>&- &
    local victim=$!
    wait_members gs 3
    wait_lines 3 m1.out m2.out m3.out
    sleep 1 # a quiet moment: no rebalance in flight
    before=$(stream-topics group gs | grep -o 'generation [0-9]*')
    [ -n "$before" ]
    run python3 "$RAW" "$KAFKA" describe-static gs
    assert_output "Stable instances i1,i2,i3"
    kill -9 "$victim"
    wait "$victim" 2>/dev/null || true
    $PY "$CLIENTS" static "$KAFKA" gs st i3 m3b.out 3>&- &
    BG_PIDS="$BG_PIDS $!"
    wait_lines 1 m3b.out
    sleep 2 # long enough for a rebalance to reach the others, were there one
    # The restarted member has the partitions it had; the others were
    # neither revoked nor assigned again.
    [ "$(cat m3b.out)" = "$(cat m3.out)" ]
    [ "$(wc -l <m1.out)" -eq 1 ] && [ "$(wc -l <m2.out)" -eq 1 ]
    run stream-topics group gs
    assert_output --partial "$before, 3 members"
    grep -q 'static member .* (instance i3) joined again as .*, no rebalance' "$BROKER_LOG"
    run python3 "$RAW" "$KAFKA" describe-static gs
    assert_output "Stable instances i1,i2,i3"
}

@test "static membership by hand: a rejoin under the same instance id keeps the generation, the old id is fenced (82), LeaveGroup by instance id" {
    run timeout 30 python3 "$RAW" "$KAFKA" static-raw sg
    assert_success
    assert_output "join 0 rejoin 0 generation same leader old heartbeat-old 82 heartbeat-new 0 leave 0 0 after 25"
}

@test "OffsetCommit v6+'s committed_leader_epoch is kept, across a restart, and OffsetFetch v5+ returns it; a commit without one returns -1" {
    stream-topics create ep -p 1
    run python3 "$RAW" "$KAFKA" commit-epoch ge ep 5
    assert_output "error 0"
    run python3 "$RAW" "$KAFKA" fetch-epoch ge ep
    assert_output "offset 42 epoch 5 metadata m error 0"
    stop_broker
    start_kafka
    run python3 "$RAW" "$KAFKA" fetch-epoch ge ep
    assert_output "offset 42 epoch 5 metadata m error 0"
    run python3 "$RAW" "$KAFKA" commit-epoch ge ep old
    assert_output "error 0"
    run python3 "$RAW" "$KAFKA" fetch-epoch ge ep
    assert_output "offset 0 epoch -1 metadata  error 0"
    run stream-topics group ge
    assert_success
}

@test "kafka-python: a group consumer reads and commits" {
    stream-topics create kp -p 2
    seq 1 300 | kc -P -t kp
    run $PY "$CLIENTS" python-kafka "$KAFKA" kpg kp 300
    assert_success
    assert_output "read 300 committed 300"
    run stream-topics group kpg
    assert_output --partial "lag 0 records"
}

@test "kafkajs: produce and a consumer group of two" {
    root=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
    if [ ! -d "$root/tests/.npm/node_modules/kafkajs" ]; then
        command -v npm >/dev/null || skip "npm is not installed (make deps)"
        timeout 120 npm install --no-audit --no-fund --silent --prefix "$root/tests/.npm" \
            kafkajs@2 >npm.log 2>&1 ||
            skip "npm could not install kafkajs (no registry?): $(tail -1 npm.log)"
    fi
    stream-topics create kjs -p 3
    run env NODE_PATH="$root/tests/.npm/node_modules" timeout 60 \
        node "$BATS_TEST_DIRNAME/kafka_group_kafkajs.js" "$KAFKA" kjs gjs 1000
    assert_success
    assert_line --index 0 "produced 1000"
    assert_line --partial "consumed 1000 distinct 1000 committed 1000"
}

@test "a confluent-kafka group in stream-topics: members and lag, --reset-offsets, and stream-sub -g refused" {
    stream-topics create x -p 1
    seq 1 100 | kc -P -t x -p 0
    $PY "$CLIENTS" member "$KAFKA" cg x 60 4 >member.out 3>&- &
    BG_PIDS="$!"
    wait_lines 1 member.out
    run cat member.out
    assert_output "committed 60"
    # While it runs: its member, its assignment and its lag.
    run stream-topics group cg
    assert_success
    assert_output --partial "1 member, lag 40 records"
    assert_line --regexp '^x +0 +rdkafka-[0-9a-f-]+ +60 +100 +40 '
    # A native member may not join a Kafka client's group.
    run timeout 10 stream-sub -t x -g cg -e
    assert_failure
    assert_output --partial "group 'cg' is a Kafka client's group"
    # Offsets are not reset under a running member.
    run stream-topics group cg --reset-offsets --to-offset 25 --execute
    assert_failure
    assert_output --partial "active members"
    wait "$BG_PIDS"
    BG_PIDS=
    # Empty now (its close() left the group): reset, then resume from there.
    run stream-topics group cg
    assert_output --partial "0 members"
    run stream-topics group cg --reset-offsets --to-offset 25 --execute
    assert_success
    run stream-topics group cg
    assert_line --regexp '^x +0 +- +25 +100 +75 '
    run $PY "$CLIENTS" resume "$KAFKA" cg x 3
    assert_success
    assert_output "$(printf '0 25\n0 26\n0 27')"
}

@test "bad input: a bad session timeout, an unknown member, a stale generation, a truncated JoinGroup, a held join's connection closed" {
    stream-topics create raw -p 1
    run python3 "$RAW" "$KAFKA" join-bad-session rg1
    assert_output "error 26"
    run python3 "$RAW" "$KAFKA" unknown-member rg2
    assert_output "heartbeat 25 sync 25"
    run python3 "$RAW" "$KAFKA" stale rg3 raw
    assert_output "sync 0 sync-stale 22 heartbeat-stale 22 commit-stale 22 heartbeat 0"
    run python3 "$RAW" "$KAFKA" truncated-join rg4
    assert_output closed
    # A held JoinGroup whose connection closes is never answered into it.
    run python3 "$RAW" "$KAFKA" join-then-close rg5
    assert_output "heartbeat 27 rejoin 0 generation 2 members 1"
    # The broker goes on.
    run kc -L
    assert_success
    assert_output --partial "broker 0 at $KAFKA"
}

@test "the group APIs at their highest, flexible versions: answers parse field by field" {
    stream-topics create fx -p 1
    run python3 "$RAW" "$KAFKA" groups-flexible fg fx
    assert_success
    assert_line --index 0 "JoinGroup v7 error 79 (member id required: yes)"
    assert_line --index 1 "JoinGroup v7 error 0 generation 1 consumer range leader self members 1"
    assert_line --index 2 "SyncGroup v5 error 0 consumer range assignment same"
    assert_line --index 3 "Heartbeat v4 error 0"
    assert_line --index 4 "OffsetCommit v8 [[(0, 0)]]"
    assert_line --index 5 "OffsetFetch v8 [('fg', [('fx', [(0, 1, 'm', 0)])], 0)]"
    assert_line --index 6 "ListGroups v4 error 0 [('fg', 'consumer', 'Stable')]"
    assert_line --index 7 "DescribeGroups v5 [(0, 'fg', 'Stable', 'consumer', 'range', [(True, 'raw', '/127.0.0.1')])]"
    assert_line --index 8 "LeaveGroup v4 error 0 [(True, None, 0)]"
    assert_line --index 9 "DeleteGroups v2 [('fg', 0)]"
}
