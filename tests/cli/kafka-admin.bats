#!/usr/bin/env bats
# The Kafka listener's admin APIs with Kafka's own admin clients:
# python3-confluent-kafka's AdminClient (librdkafka 2.0) creates topics
# (with configs; bad ones refused with Kafka's error codes), describes and
# alters their configs, adds partitions (a producer and a consumer group use
# them at once) and deletes them; a
# consumer looks offsets up by time; kafka-python's KafkaAdminClient
# creates, describes the cluster and deletes; kcat -L and stream-topics
# see the results. Then bad input by hand (kafka_raw.py): invalid names,
# 0 partitions, a replication factor above the brokers, IncrementalAlterConfigs
# APPEND on a setting that is no list, truncated requests. Last, a 3-broker
# cluster (cluster_lib.bash) with a Kafka listener on each broker: kcat -L
# lists every broker and the leaders, the AdminClient's topics go through
# the controller, an idempotent acks=all producer and a consumer keep
# going across a kill -9 of the partition's leader, nothing lost, and
# DescribeGroups and ListGroups answer only for the groups a broker
# coordinates.
#
# The clients live in Debian's python3 (/usr/bin/python3), not in whatever
# python3 comes first in PATH.

bats_require_minimum_version 1.5.0

load helpers
load cluster_lib

RAW="$BATS_TEST_DIRNAME/kafka_raw.py"
ADMIN="$BATS_TEST_DIRNAME/kafka_admin.py"
PY=/usr/bin/python3

start_kafka() {
    start_broker --kafka-listen 127.0.0.1:0 "$@"
    KAFKA=$(sed -n 's/.*kafka listener on \([0-9.]*:[0-9]*\).*/\1/p' "$BROKER_LOG" | tail -1)
    [ -n "$KAFKA" ] || { cat "$BROKER_LOG" >&2; return 1; }
}

# The clients' own log lines (librdkafka's on stderr) go to a file: the
# tests compare stdout.
admin() {
    timeout 30 "$PY" "$ADMIN" "$KAFKA" "$@" 2>>"$BATS_TEST_TMPDIR/clients.log"
}

setup() {
    "$PY" -c 'import confluent_kafka, kafka' 2>/dev/null ||
        skip "python3-confluent-kafka and python3-kafka are not installed (make deps)"
    cd "$BATS_TEST_TMPDIR"
    case "$BATS_TEST_DESCRIPTION" in
    cluster:*) ;; # its own brokers
    *) start_kafka ;;
    esac
}

teardown() {
    stop_broker
    cluster_stop
}

# A 3-broker cluster, each broker with a Kafka listener of its own
# (KPORT[K]); KAFKA is every listener, comma-separated.
kafka_cluster_start() {
    local k
    cluster_plan 3
    read -r -a KP <<<"$(free_ports 3)"
    KAFKA=
    for ((k = 1; k <= 3; k++)); do
        KPORT[$k]=${KP[$((k - 1))]}
        node_start "$k" --kafka-listen "127.0.0.1:${KPORT[$k]}" || return 1
        KAFKA+="${KAFKA:+,}127.0.0.1:${KPORT[$k]}"
    done
    STREAM_BROKERS="$(node_addr 1),$(node_addr 2),$(node_addr 3)"
    export STREAM_BROKERS
    cluster_wait_json 10 "(.brokers | length) == 3 and all(.brokers[]; .fenced == false)"
}

@test "AdminClient creates topics with configs; bad ones get Kafka's error codes; stream-topics agrees" {
    run admin create orders 3 1 retention.ms=3600000 cleanup.policy=delete
    assert_success
    assert_output "orders ok"
    run admin create orders 1 1
    assert_output "orders TOPIC_ALREADY_EXISTS"
    run admin create badcfg 1 1 no.such.setting=1
    assert_output "badcfg INVALID_CONFIG"
    run admin create badval 1 1 retention.ms=soon
    assert_output "badval INVALID_CONFIG"
    run admin create rf3 1 3
    assert_output "rf3 INVALID_REPLICATION_FACTOR"
    run stream-topics describe orders --json
    assert_success
    [ "$(jq -r '.topics[0].partitions | length' <<<"$output")" = 3 ]
    run stream-topics list
    refute_output --partial badcfg
    refute_output --partial rf3
    run timeout 20 kcat -b "$KAFKA" -q -L -t orders
    assert_output --partial 'topic "orders" with 3 partitions:'
}

@test "AdminClient describes and alters topic configs (AlterConfigs replaces the set); broker configs are read-only" {
    admin create cfg 1 1 retention.ms=3600000
    run admin describe cfg retention.ms segment.bytes
    assert_success
    assert_line --index 0 "retention.ms=3600000 source=topic ro=False"
    assert_line --index 1 "segment.bytes=1073741824 source=default ro=False"
    run admin alter cfg segment.bytes=1048576
    assert_output "ConfigResource(Type.TOPIC,cfg) ok"
    run admin describe cfg retention.ms segment.bytes
    assert_line --index 0 "retention.ms=604800000 source=default ro=False"
    assert_line --index 1 "segment.bytes=1048576 source=topic ro=False"
    run stream-topics describe cfg --json
    [ "$(jq -r '.topics[0].configs[] | select(.name=="segment.bytes") | .value' <<<"$output")" = 1048576 ]
    run admin alter cfg retention.ms=forever
    assert_output "ConfigResource(Type.TOPIC,cfg) INVALID_CONFIG"
    run admin describe-broker 0 num.partitions
    assert_output "num.partitions=1 source=default ro=True"
}

@test "IncrementalAlterConfigs: SET and DELETE; APPEND on a setting that is no list is INVALID_CONFIG" {
    admin create inc 1 1
    run "$PY" "$RAW" "$KAFKA" incremental inc 0 retention.ms 5000
    assert_output "error 0"
    run admin describe inc retention.ms
    assert_output "retention.ms=5000 source=topic ro=False"
    run "$PY" "$RAW" "$KAFKA" incremental inc 2 retention.ms 5
    assert_output "error 40"
    run "$PY" "$RAW" "$KAFKA" incremental inc 0 no.such 1
    assert_output "error 40"
    run "$PY" "$RAW" "$KAFKA" incremental inc 1 retention.ms
    assert_output "error 0"
    run admin describe inc retention.ms
    assert_output "retention.ms=604800000 source=default ro=False"
}

@test "AdminClient create_partitions adds partitions; kcat sees them, a producer and a consumer use them; delete_topics deletes" {
    admin create parts 2 1
    run admin partitions parts 1
    assert_output "parts INVALID_PARTITIONS"
    run admin partitions parts 2
    assert_output "parts INVALID_PARTITIONS"
    run admin partitions nope 4
    assert_output "nope UNKNOWN_TOPIC_OR_PART"
    run admin partitions-assign parts 3
    assert_output "parts INVALID_REPLICA_ASSIGNMENT"
    run admin partitions parts 4 validate
    assert_output "parts ok"
    run jq -r '.topics[0].partition_count' <<<"$(stream-topics describe parts --json)"
    assert_output "2"
    run admin partitions parts 4
    assert_output "parts ok"
    run jq -r '.topics[0].partition_count' <<<"$(stream-topics describe parts --json)"
    assert_output "4"
    run kcat -b "$KAFKA" -L -t parts
    assert_output --partial 'topic "parts" with 4 partitions:'
    assert_output --partial 'partition 3, leader 0,'
    run admin produce-ts parts 3 1700000000000 2
    assert_output "unsent 0"
    run admin read parts 3 2
    assert_output "$(printf '3 0 v0\n3 1 v1')"
    run admin delete parts nope
    assert_line --index 0 "nope UNKNOWN_TOPIC_OR_PART"
    assert_line --index 1 "parts ok"
    run stream-topics describe parts
    assert_failure
}

@test "kafka-python KafkaAdminClient create_partitions adds partitions and refuses fewer" {
    admin create kparts 1 1
    run admin kp-partitions kparts 3
    assert_output "kparts 0"
    run admin kp-partitions kparts 2
    assert_output "kparts 37"
    run jq -r '.topics[0].partition_count' <<<"$(stream-topics describe kparts --json)"
    assert_output "3"
}

@test "a confluent-kafka consumer group is assigned the partitions a topic gains" {
    admin create grows 2 1
    run admin group-grows grows 4
    assert_success
    assert_output "$(printf 'assigned 2\nassigned 4\nread 3 in-the-new-one')"
}

@test "offsets_for_times through a consumer finds the first record at or after the time" {
    admin create times 1 1
    run admin produce-ts times 0 1700000000000 5
    assert_output "unsent 0"
    run admin times times 0 1700000002500
    assert_output "offset 3"
    run admin times times 0 1600000000000
    assert_output "offset 0"
    run admin times times 0 1800000000000
    assert_output "offset -1"
}

@test "kafka-python KafkaAdminClient creates and deletes topics and describes the cluster" {
    run admin kp-create kp 3
    assert_output "kp 0"
    run admin kp-create kp 3
    assert_output "kp 36"
    run stream-topics describe kp --json
    [ "$(jq -r '.topics[0].partitions | length' <<<"$output")" = 3 ]
    run admin kp-cluster
    assert_output "brokers 1 controller 0"
    run admin kp-delete kp
    assert_output "kp 0"
    run stream-topics list
    refute_output --partial kp
}

@test "bad admin input: invalid name, 0 partitions, replication factor above the brokers, truncated requests" {
    run "$PY" "$RAW" "$KAFKA" create "bad name!" 1 1
    assert_output "error 17"
    run "$PY" "$RAW" "$KAFKA" create zero 0 1
    assert_output "error 37"
    run "$PY" "$RAW" "$KAFKA" create big 1 2
    assert_output "error 38"
    run "$PY" "$RAW" "$KAFKA" create __internal 1 1
    assert_output "error 17"
    for k in "19 4" "20 1" "32 1" "33 0" "37 1" "44 1" "60 0"; do
        run "$PY" "$RAW" "$KAFKA" admin-truncated $k
        assert_output closed
    done
    # The broker is fine, and every flexible version parses to the byte.
    run "$PY" "$RAW" "$KAFKA" create flex 1 1
    assert_output "error 0"
    run "$PY" "$RAW" "$KAFKA" admin-flexible flex
    assert_success
    assert_line --index 0 "DescribeConfigs v4 retention.ms=604800000/5/5/retention.ms/doc segment.bytes=1073741824/5/5/segment.bytes/doc"
    assert_line --index 1 "AlterConfigs v2 errors [0]"
    assert_line --index 2 "CreatePartitions v3 errors [37]"
    assert_line --index 3 "DescribeCluster v0 error 0 controller 0 brokers [0]"
    assert_line --index 4 "DeleteTopics v4 errors [0, 3]"
    run stream-topics list
    refute_output --partial flex
}

@test "cluster: kcat -L lists every broker's Kafka listener and the leaders; admin goes through the controller" {
    kafka_cluster_start
    run admin create spread 3 3 retention.ms=3600000
    assert_output "spread ok"
    run admin create spread 3 3
    assert_output "spread TOPIC_ALREADY_EXISTS"
    run admin create wide 1 4
    assert_output "wide INVALID_REPLICATION_FACTOR"
    # Any broker answers, from its copy of the metadata (which may lag the
    # controller's by a moment).
    for k in 1 2 3; do
        for ((i = 0; i < 50; i++)); do
            run timeout 20 kcat -b "127.0.0.1:${KPORT[$k]}" -q -L -t spread
            [[ "$output" == *'topic "spread" with 3 partitions'* ]] && break
            sleep 0.2
        done
        assert_success
        assert_output --partial "3 brokers:"
        assert_output --partial "broker 1 at 127.0.0.1:${KPORT[1]}"
        assert_output --partial "broker 2 at 127.0.0.1:${KPORT[2]}"
        assert_output --partial "broker 3 at 127.0.0.1:${KPORT[3]}"
        for p in 0 1 2; do
            assert_output --partial "partition $p, leader $(leader_of spread $p), replicas: "
        done
    done
    run stream-topics describe spread --json
    [ "$(jq -r '.topics[0].partitions[0].replicas | length' <<<"$output")" = 3 ]
    run admin describe spread retention.ms
    assert_output "retention.ms=3600000 source=topic ro=False"
    run admin kp-cluster
    assert_output --partial "brokers 3 controller "
    # More partitions, through the controller: every broker's metadata has them.
    run admin partitions spread 5
    assert_output "spread ok"
    run admin partitions spread 4
    assert_output "spread INVALID_PARTITIONS"
    for k in 1 2 3; do
        for ((i = 0; i < 50; i++)); do
            run timeout 20 kcat -b "127.0.0.1:${KPORT[$k]}" -q -L -t spread
            [[ "$output" == *'topic "spread" with 5 partitions'* ]] && break
            sleep 0.2
        done
        assert_output --partial 'topic "spread" with 5 partitions'
    done
    run admin delete spread
    assert_output "spread ok"
}

@test "cluster: an idempotent acks=all producer and a consumer keep going across a kill -9 of the leader" {
    kafka_cluster_start
    run admin create moving 1 3
    assert_output "moving ok"
    leader=$(wait_leader moving 0 -1 10)
    run --separate-stderr timeout 200 "$PY" "$BATS_TEST_DIRNAME/kafka_failover.py" "$KAFKA" moving 4000 "${CPIDS[$leader]}"
    assert_success
    assert_line --index 0 "delivered 4000 failed 0"
    assert_line --index 1 --regexp "^consumed 4000 lost 0 duplicates [0-9]+$"
    CPIDS[$leader]=
    new=$(wait_leader moving 0 "$leader" 10)
    run --separate-stderr timeout 20 kcat -b "$KAFKA" -q -C -t moving -p 0 -e -o beginning -f '%s\n'
    [ "${#lines[@]}" -eq 4000 ]
    run timeout 20 kcat -b "$KAFKA" -q -L -t moving
    assert_output --partial "partition 0, leader $new,"
}

@test "cluster: DescribeGroups and ListGroups answer for the groups this broker coordinates; the others get NOT_COORDINATOR" {
    kafka_cluster_start
    run timeout 60 python3 "$RAW" "${KAFKA%%,*}" coord-gate gated "$KAFKA"
    assert_success
    assert_line --index 0 "coordinator describe 0 Stable list ['gated']"
    assert_line --index 1 "other describe 16 list []"
    assert_line --index 2 "other describe 16 list []"
    [ "${#lines[@]}" -eq 3 ]
}
