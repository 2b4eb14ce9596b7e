#!/usr/bin/env bats
# The Kafka listener (kafka.listen): kcat (librdkafka 2.0) against a real
# broker - metadata, produce with keys, headers, partitions and every codec,
# consume from every kind of start offset, JSON output, an idempotent
# producer - and the same records seen through stream-sub and stream-pub;
# then bad input by hand (kafka_raw.py): unknown API keys and versions,
# truncated and oversized frames, a batch with a bad CRC, an old message
# format. Every broker here has its own Kafka port (--kafka-listen
# 127.0.0.1:0).

bats_require_minimum_version 1.5.0

load helpers

RAW="$BATS_TEST_DIRNAME/kafka_raw.py"

# Starts a broker with its Kafka listener on a free port (extra ARGS go to
# stream-broker) and sets KAFKA to its HOST:PORT.
start_kafka() {
    start_broker --kafka-listen 127.0.0.1:0 "$@"
    KAFKA=$(sed -n 's/.*kafka listener on \([0-9.]*:[0-9]*\).*/\1/p' "$BROKER_LOG" | tail -1)
    [ -n "$KAFKA" ] || { cat "$BROKER_LOG" >&2; return 1; }
}

# kcat, quiet, with a deadline: a hang fails the test instead of the suite.
kc() {
    timeout 20 kcat -b "$KAFKA" -q "$@"
}

setup() {
    start_kafka --set num.partitions=3
    cd "$BATS_TEST_TMPDIR"
}

teardown() {
    stop_broker
}

@test "kcat -L lists this broker, the topics and their partitions" {
    stream-topics create orders -p 2
    run kc -L
    assert_success
    assert_output --partial "broker 0 at $KAFKA (controller)"
    assert_output --partial 'topic "orders" with 2 partitions:'
    assert_output --partial 'partition 1, leader 0, replicas: 0, isrs: 0'
    run kc -L -J
    assert_success
    assert_output --partial '"topic":"orders"'
}

@test "kcat -P with keys, headers and partitions; kcat -C and stream-sub read the same records" {
    printf 'k1:one\nk2:two\n' | kc -P -t t -K: -p 1 -H app=x -H trace=42
    printf 'three\n' | kc -P -t t -p 2
    run kc -C -t t -p 1 -e -o beginning -f '%k|%s|%h|%p|%o\n'
    assert_success
    assert_output "$(printf 'k1|one|app=x,trace=42|1|0\nk2|two|app=x,trace=42|1|1')"
    # The same records, keys, headers and timestamps through the native protocol.
    ts=$(kc -C -t t -p 1 -e -o beginning -c 1 -f '%T')
    run stream-sub -t t -p 1 -e -f '%k|%v|%h|%T\n'
    assert_success
    assert_line --index 0 "k1|one|app=x,trace=42|$ts"
    assert_line --index 1 --partial "k2|two|app=x,trace=42|"
    run stream-sub -t t -p 2 -e
    assert_output three
}

@test "every codec round trips with keys: kcat -z and stream-pub -z gzip, snappy, lz4, zstd" {
    for z in gzip snappy lz4 zstd; do
        seq 1 50 | sed "s/^/$z-/" | kc -P -t codecs -p 0 -z "$z" -k "key-$z"
    done
    run kc -C -t codecs -p 0 -e -o beginning -f '%k %s\n'
    assert_success
    [ "${#lines[@]}" -eq 200 ]
    assert_line --index 0 'key-gzip gzip-1'
    assert_line --index 199 'key-zstd zstd-50'
    run stream-sub -t codecs -p 0 -e -f '%k %v\n'
    [ "${#lines[@]}" -eq 200 ]
    assert_line --index 50 'key-snappy snappy-1'
    assert_line --index 150 'key-zstd zstd-1'
    # And what stream-pub compresses, kcat reads.
    for z in gzip snappy lz4 zstd; do
        echo "pub-$z" | stream-pub -t codecs -p 1 -z "$z"
    done
    run kc -C -t codecs -p 1 -e
    assert_output "$(printf 'pub-%s\n' gzip snappy lz4 zstd)"
}

@test "kcat -C -o beginning, end, -N and s@TIME" {
    seq 1 5 | kc -P -t offs -p 0
    sleep 0.05
    mid=$(($(date +%s%3N)))
    sleep 0.05
    seq 6 10 | kc -P -t offs -p 0
    run kc -C -t offs -p 0 -e -o beginning
    assert_output "$(seq 1 10)"
    run kc -C -t offs -p 0 -e -o -3
    assert_output "$(seq 8 10)"
    run kc -C -t offs -p 0 -e -o "s@$mid"
    assert_output "$(seq 6 10)"
    run kc -C -t offs -p 0 -e -o 7
    assert_output "$(seq 8 10)"
    run kc -C -t offs -p 0 -e -o end
    assert_success
    assert_output ""
}

@test "a waiting kcat consumer gets records produced later (long-poll fetch)" {
    kc -P -t lp -p 0 <<<first
    kc -C -t lp -p 0 -o end -c 1 >out 2>&1 &
    local pid=$!
    sleep 1
    kc -P -t lp -p 0 <<<later
    wait "$pid"
    run cat out
    assert_output later
}

@test "kcat -J prints what stream-pub produced: keys, headers, timestamps" {
    printf 'a:1\nb:2\n' | stream-pub -t pub -p 0 -K: -H h=v
    run kc -C -t pub -p 0 -e -J
    assert_success
    assert_line --index 0 --regexp '"partition":0,"offset":0,"tstype":"create","ts":[0-9]{13},"broker":0,"headers":\["h","v"\],"key":"a","payload":"1"'
    assert_line --index 1 --partial '"offset":1,'
    assert_line --index 1 --partial '"key":"b","payload":"2"'
    ts=$(stream-sub -t pub -p 0 -e -c 1 -f '%T')
    assert_line --index 0 --partial "\"ts\":$ts,"
}

@test "an idempotent acks=all producer: InitProducerId, sequences, durable acks" {
    seq 1 300 | kc -P -t idem -p 0 -X enable.idempotence=true -X acks=all -X linger.ms=5
    run kc -C -t idem -p 0 -e -o beginning
    assert_output "$(seq 1 300)"
    run stream-sub -t idem -p 0 -e -f '%o\n'
    assert_line --index 299 299
}

@test "a confluent-kafka transactional producer: init_transactions() fails at once with a fatal error; nothing is stored" {
    stream-topics create txt -p 1
    # Debian's python3, where python3-confluent-kafka lives.
    /usr/bin/python3 -c 'import confluent_kafka' 2>/dev/null ||
        skip "python3-confluent-kafka is not installed (make deps)"
    run --separate-stderr timeout 30 /usr/bin/python3 "$BATS_TEST_DIRNAME/kafka_txn_client.py" "$KAFKA" txt
    assert_success
    assert_line --index 0 --regexp '^init failed in [0-2]s: TRANSACTIONAL_ID_AUTHORIZATION_FAILED fatal=True: .*Transactional Id authorization failed$'
    assert_line --index 1 'produce: refused'
    grep -q 'transactional id txn-test refused: transactions are not supported' "$BROKER_LOG"
    run stream-sub -t txt -e
    assert_failure 3 # nothing arrived
    assert_output ''
}

@test "the transactional APIs at every version: UNSUPPORTED_VERSION (35) in the version's layout, not in ApiVersions; the connection stays open" {
    run python3 "$RAW" "$KAFKA" txn tx
    assert_success
    assert_output "$(printf '%s\n' 'ApiVersions lists none' \
        'AddPartitionsToTxn v0-5 errors [35]' 'AddOffsetsToTxn v0-4 errors [35]' \
        'EndTxn v0-5 errors [35]' 'WriteTxnMarkers v0-2 errors [35]' \
        'TxnOffsetCommit v0-5 errors [35]' 'DescribeTransactions v0-0 errors [35]' \
        'ListTransactions v0-1 errors [35]')"
    run stream-topics list
    refute_output --partial tx
}

@test "ApiVersions at an unknown version: UNSUPPORTED_VERSION (35) with the ranges" {
    run python3 "$RAW" "$KAFKA" api-versions-v9
    assert_success
    assert_output "error 35 ranges 24"
}

@test "an unknown API key, UpdateFeatures (not served), an unsupported version and a truncated frame close the connection; the broker goes on" {
    run python3 "$RAW" "$KAFKA" unknown-key
    assert_output closed
    run python3 "$RAW" "$KAFKA" unknown-key 57
    assert_output closed
    run python3 "$RAW" "$KAFKA" metadata-v99
    assert_output closed
    run python3 "$RAW" "$KAFKA" truncated
    assert_output ok
    run kc -L
    assert_success
    assert_output --partial "broker 0 at $KAFKA"
}

@test "a frame over socket.request.max.bytes closes that connection only" {
    stop_broker
    start_kafka --set socket.request.max.bytes=65536
    run python3 "$RAW" "$KAFKA" oversized 1000000
    assert_output closed
    grep -q 'exceeds socket.request.max.bytes' "$BROKER_LOG"
    printf 'fine\n' | kc -P -t after -p 0
    run kc -C -t after -p 0 -e
    assert_output fine
}

@test "a batch with a bad CRC, an old message format or acks=2 is refused and nothing is stored" {
    stream-topics create raw -p 1
    run python3 "$RAW" "$KAFKA" bad-crc raw
    assert_output "error 2"
    run python3 "$RAW" "$KAFKA" magic1 raw
    assert_output "error 87"
    run python3 "$RAW" "$KAFKA" acks2 raw
    assert_output "error 21"
    run python3 "$RAW" "$KAFKA" latest raw
    assert_output "offset 0"
    run stream-sub -t raw -e
    assert_output ""
}

@test "--kafka-listen off opens no listener; a busy Kafka port is a startup error naming the option" {
    run stream-broker --listen 127.0.0.1:0 --data-dir "$BATS_TEST_TMPDIR/d2" --kafka-listen "$KAFKA"
    assert_failure
    assert_output --partial "kafka.listen (--kafka-listen): cannot listen on $KAFKA"
    run stream-broker --kafka-listen nowhere
    assert_failure 2
    assert_output --partial "kafka.listen"
    stop_broker
    : >"$BROKER_LOG"
    start_broker --kafka-listen off
    run grep -c 'kafka listener' "$BROKER_LOG"
    assert_output 0
}

@test "the README's Kafka clients block runs as written (with this broker's port)" {
    root=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
    python3 - "$root/README.md" <<'PY' >blocks
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
section = re.search(r"^## Kafka clients\n(.*?)(?=^## )", text, re.S | re.M).group(1)
blocks = re.findall(r"^```(\w*)\n(.*?)^```\n", section, re.S | re.M)
sh = [b for lang, b in blocks if lang == "sh"]
out = [b for lang, b in blocks if lang == "text"]
assert len(sh) == 1 and len(out) == 1
open("block.sh", "w").write(sh[0])
open("block.out", "w").write(out[0])
PY
    sed -i "s/127\.0\.0\.1:9092/$KAFKA/g" block.sh
    run bash -e -o pipefail block.sh
    assert_success
    assert_output "$(cat block.out)"
}

@test "every API at its highest, flexible version: answers parse field by field" {
    run python3 "$RAW" "$KAFKA" flexible fx
    assert_success
    assert_line --index 0 "Metadata v12 brokers 1 cluster stream controller 0 topics [(3, 'fx', 0)]"
    assert_line --index 1 "Produce v9 [[(0, 0, None)]]"
    assert_line --index 2 "Fetch v12 [[(0, 0, 1, True)]]"
    assert_line --index 3 "ListOffsets v7 [[(0, 0, -1, 1, 0)]]"
    assert_line --index 4 "OffsetForLeaderEpoch v4 [[(0, 0, 0, 1)]]"
    assert_line --index 5 "InitProducerId v4 error 0 epoch 0 pid set"
    assert_line --index 6 "FindCoordinator v3 error 0 node 0"
    assert_line --index 7 "ApiVersions v3 error 0 apis 0:3-9 1:4-12 2:1-7 3:0-12 8:0-8 9:0-8 10:0-3 11:0-7 12:0-4 13:0-4 14:0-5 15:0-5 16:0-4 18:0-3 19:0-4 20:0-5 22:0-4 23:0-4 32:0-4 33:0-2 37:0-3 42:0-2 44:0-1 60:0-0"
}

@test "an acks=0 produce that fails closes the connection, as Kafka does" {
    run python3 "$RAW" "$KAFKA" acks0-bad-crc raw0
    assert_output closed
    run kc -L
    assert_success
}

@test "after a restart kcat reads what it wrote before (stored batches read and CRC-checked, not sent by sendfile)" {
    seq 1 20 | kc -P -t again -p 1 -z lz4
    stop_broker
    start_kafka
    run kc -C -t again -p 1 -e -o beginning
    assert_success
    assert_output "$(seq 1 20)"
}
