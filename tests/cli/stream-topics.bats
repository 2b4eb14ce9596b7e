#!/usr/bin/env bats
# stream-topics against a real broker: list, create, describe, alter and
# delete; --json documents; exit codes 0/1/2/4/5; names checked locally.

bats_require_minimum_version 1.5.0
load helpers

setup() { start_broker; }
teardown() { stop_broker; }

# json EXPR: evaluates a Python expression over the JSON document on stdin
# (bound to `d`) and prints the result.
json() {
    python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}
# jsonof EXPR COMMAND...: json EXPR over what COMMAND prints.
jsonof() {
    local expr=$1
    shift
    "$@" | json "$expr"
}

@test "list on an empty broker prints nothing; --json an empty array" {
    run stream-topics list
    assert_success
    assert_output ""
    run stream-topics list --json
    assert_success
    assert_output '{"topics":[]}'
}

@test "create is quiet, then list shows the topic and its partitions" {
    run stream-topics create orders -p 3
    assert_success
    assert_output ""
    stream-topics create audit
    run stream-topics list
    assert_success
    assert_output "$(printf 'audit\norders')"
    run stream-topics list -v
    assert_success
    assert_line --index 0 --regexp '^NAME +PARTITIONS +INTERNAL$'
    assert_line --index 2 --regexp '^orders +3 +no$'
    run jsonof '[(t["name"], t["partition_count"], t["internal"]) for t in d["topics"]]' stream-topics list --json
    assert_output "[('audit', 1, False), ('orders', 3, False)]"
}

@test "create uses the broker's num.partitions by default" {
    stop_broker
    start_broker --set num.partitions=4
    stream-topics create t
    run jsonof 'd["topics"][0]["partition_count"]' stream-topics describe t --json
    assert_output "4"
}

@test "create -v says what it did; --json reports each topic's status" {
    run stream-topics create a b -v
    assert_success
    assert_output "$(printf "created topic 'a'\ncreated topic 'b'")"
    run jsonof 'd["results"]' stream-topics create c --json
    assert_output "[{'topic': 'c', 'status': 'created', 'error': None}]"
}

@test "describe shows partitions, offsets, sizes and the configs set on the topic" {
    stream-topics create orders -p 2 -c retention.ms=3600000 -c segment.bytes=1048576
    stream-bench produce -t orders -n 100 -s 50 -q >/dev/null
    run stream-topics describe orders
    assert_success
    assert_line --index 0 --regexp "^Topic orders: 2 partitions, [0-9.]+ (B|KiB)$"
    assert_line --regexp '^PARTITION +LEADER +EPOCH +REPLICAS +ISR +LOG-START +HIGH-WATERMARK +END-OFFSET +SIZE$'
    # A single node leads every partition and is its only replica.
    assert_line --regexp '^ +0 +0 +0 +0 +0 +0 +[0-9]+ +[0-9]+ +[0-9.]+ (B|KiB)$'
    assert_line --regexp '^CONFIG +VALUE +SOURCE$'
    assert_line --regexp '^retention\.ms +3600000 +topic$'
    assert_line --regexp '^segment\.bytes +1048576 +topic$'
    refute_line --partial 'flush.mode'
    # 100 records over 2 partitions; offsets, end offsets and sizes reported.
    run jsonof 'sum(p["high_watermark"] - p["log_start_offset"] for p in d["topics"][0]["partitions"])' stream-topics describe orders --json
    assert_output "100"
    run jsonof 'all(p["log_end_offset"] == p["high_watermark"] and p["leader"] == 0 and p["replicas"] == [0] and p["isr"] == [0] and p["error"] is None for p in d["topics"][0]["partitions"]) and d["topics"][0]["size_bytes"] > 5000 and d["errors"] == []' stream-topics describe orders --json
    assert_output "True"
    run jsonof 'sorted((c["name"], c["value"], c["source"], c["default"]) for c in d["topics"][0]["configs"])' stream-topics describe orders --json
    assert_output "[('retention.ms', '3600000', 'topic', False), ('segment.bytes', '1048576', 'topic', False)]"
}

@test "describe --all-configs shows every topic setting with its source" {
    stream-topics create t -c retention.ms=1000
    run stream-topics describe t --all-configs
    assert_success
    assert_line --regexp '^flush\.mode +group +default$'
    assert_line --regexp '^retention\.ms +1000 +topic$'
    run jsonof 'len(d["topics"][0]["configs"]) >= 9 and {c["name"]: c["default"] for c in d["topics"][0]["configs"]}["segment.ms"]' stream-topics describe t --all-configs --json
    assert_output "True"
}

@test "describe of an unknown topic exits 4; of a known and an unknown one, 1" {
    stream-topics create here
    run stream-topics describe nope
    assert_failure 4
    assert_output "stream-topics: cannot describe topic 'nope': unknown topic"
    run --separate-stderr stream-topics describe here nope --json
    assert_failure 1
    [[ "$stderr" == "stream-topics: cannot describe topic 'nope': unknown topic" ]]
    run json '([t["name"] for t in d["topics"]], d["errors"])' <<<"$output"
    assert_output "(['here'], [{'topic': 'nope', 'error': {'code': 'ENOTOPIC', 'message': 'unknown topic'}}])"
}

@test "creating a topic that exists exits 5; --if-not-exists makes it a success" {
    stream-topics create orders -p 2
    run stream-topics create orders
    assert_failure 5
    assert_output "stream-topics: cannot create topic 'orders': topic already exists"
    run stream-topics create orders --if-not-exists -p 7
    assert_success
    assert_output ""
    run jsonof 'd["results"][0]["status"]' stream-topics create orders --if-not-exists --json
    assert_output "exists"
    # The existing topic was left as it was.
    run jsonof 'd["topics"][0]["partition_count"]' stream-topics describe orders --json
    assert_output "2"
    # One new and one existing topic: a partial failure.
    run stream-topics create orders fresh
    assert_failure 1
    run stream-topics list
    assert_line fresh
}

@test "invalid topic names are refused with the rule, before the broker" {
    run stream-topics create 'x y'
    assert_failure 1
    assert_output "stream-topics: cannot create topic 'x y': invalid topic name (allowed: [a-zA-Z0-9._-], 1-249 characters)"
    run stream-topics create "$(printf 'a%.0s' {1..250})"
    assert_failure 1
    assert_output --partial "invalid topic name"
    run stream-topics create ..
    assert_failure 1
    run stream-topics create 'bad/name' good --json
    assert_failure 1
    run bash -c "stream-topics list"
    assert_output "good"
    # Checked locally: no broker needed to reject a name.
    run stream-topics -b 127.0.0.1:1 delete 'x y'
    assert_failure 1
    assert_output --partial "invalid topic name"
}

@test "alter sets and resets configs" {
    stream-topics create t -c retention.ms=1000
    run stream-topics alter t -c segment.ms=60000 --delete-config retention.ms
    assert_success
    assert_output ""
    run jsonof '[(c["name"], c["value"]) for c in d["topics"][0]["configs"]]' stream-topics describe t --json
    assert_output "[('segment.ms', '60000')]"
    run stream-topics alter t -v -c retention.bytes=1048576
    assert_output "altered topic 't'"
    run jsonof 'd["results"]' stream-topics alter t --json -c flush.mode=never
    assert_output "[{'topic': 't', 'status': 'altered', 'error': None}]"
}

@test "alter refuses unknown settings, bad values and nothing to do" {
    stream-topics create t
    run stream-topics alter t -c no.such.setting=1
    assert_failure 2
    assert_output --partial "unknown setting 'no.such.setting' (topic settings: segment.bytes,"
    run stream-topics alter t -c retention.ms=soon
    assert_failure 2
    assert_output --partial "retention.ms"
    run stream-topics alter t -c num.partitions=3
    assert_failure 2
    run stream-topics alter t
    assert_failure 2
    assert_output --partial "alter needs -p N, -c KEY=VALUE or --delete-config KEY"
    run stream-topics alter t -c noequals
    assert_failure 2
    run stream-topics alter nope -c retention.ms=1
    assert_failure 4
    assert_output "stream-topics: cannot alter topic 'nope': unknown topic"
}

@test "alter --partitions adds empty partitions; records stay where they were, new ones land there too" {
    stream-topics create t -p 2
    printf 'a\nb\nc\nd\n' | stream-pub -t t
    run stream-topics alter t --partitions 5
    assert_success
    assert_output ""
    run jsonof '([p["partition"] for p in d["topics"][0]["partitions"]], sum(p["log_end_offset"] for p in d["topics"][0]["partitions"][:2]), [p["log_end_offset"] for p in d["topics"][0]["partitions"][2:]])' stream-topics describe t --json
    assert_output "([0, 1, 2, 3, 4], 4, [0, 0, 0])"
    # Producers and consumers see the new partitions at once.
    echo new | stream-pub -t t -p 4
    run stream-sub -t t -p 4 -e -f '%p %o %v\n'
    assert_success
    assert_output "4 0 new"
    run stream-sub -t t -e -c 5 -f '%v\n'
    assert_equal "$(echo "$output" | sort | tr '\n' ' ')" "a b c d new "
    # The count survives a restart, and kill -9.
    stop_broker
    start_broker
    run jsonof 'd["topics"][0]["partition_count"]' stream-topics describe t --json
    assert_output "5"
    stream-topics alter t -p 6 -v
    kill_broker
    start_broker
    run jsonof 'd["topics"][0]["partition_count"]' stream-topics describe t --json
    assert_output "6"
    run stream-sub -t t -p 4 -e -f '%v\n'
    assert_output "new"
}

@test "alter --partitions refuses fewer or as many and unknown topics" {
    stream-topics create t -p 3
    run stream-topics alter t -p 3
    assert_failure 1
    assert_output --partial "cannot alter topic 't': topic 't' has 3 partitions; the new count of partitions must be larger, not 3"
    run stream-topics alter t -p 2
    assert_failure 1
    assert_output --partial "must be larger, not 2"
    run stream-topics alter t -p 0
    assert_failure 2
    run stream-topics alter nope -p 4
    assert_failure 4
    assert_output "stream-topics: cannot alter topic 'nope': unknown topic"
    # A refused count leaves the settings alone; with a good one both change.
    run stream-topics alter t -p 2 -c retention.ms=1000
    assert_failure 1
    run jsonof 'd["topics"][0]["configs"]' stream-topics describe t --json
    assert_output "[]"
    run jsonof 'd["results"]' stream-topics alter t -p 4 -c retention.ms=1000 --json
    assert_output "[{'topic': 't', 'status': 'altered', 'error': None}]"
    run jsonof '(d["topics"][0]["partition_count"], [(c["name"], c["value"]) for c in d["topics"][0]["configs"]])' stream-topics describe t --json
    assert_output "(4, [('retention.ms', '1000')])"
}

@test "alter --partitions past the open-file limit is refused, and the topic keeps working" {
    stop_broker
    # A broker under a small open-file limit: 2 descriptors per partition.
    ulimit -n 256
    start_broker
    stream-topics create t -p 2
    run stream-topics alter t -p 500
    assert_failure 1
    assert_output --partial "open-file limit"
    run jsonof 'd["topics"][0]["partition_count"]' stream-topics describe t --json
    assert_output "2"
    stream-topics alter t -p 20
    run jsonof 'd["topics"][0]["partition_count"]' stream-topics describe t --json
    assert_output "20"
}

@test "delete removes topics; unknown ones exit 4 unless --if-exists" {
    stream-topics create a
    stream-topics create b
    run stream-topics delete a
    assert_success
    assert_output ""
    run stream-topics list
    assert_output "b"
    run stream-topics delete a
    assert_failure 4
    assert_output "stream-topics: cannot delete topic 'a': unknown topic"
    run stream-topics delete a --if-exists
    assert_success
    run stream-topics delete --if-exists -v a b
    assert_success
    assert_output "$(printf "topic 'a' does not exist\ndeleted topic 'b'")"
}

@test "deleting several topics where some fail finishes the rest and exits 1" {
    stream-topics create a
    stream-topics create c
    run --separate-stderr stream-topics delete a missing c --json
    assert_failure 1
    [[ "$stderr" == "stream-topics: cannot delete topic 'missing': unknown topic" ]]
    run json '[(r["topic"], r["status"], r["error"] and r["error"]["code"]) for r in d["results"]]' <<<"$output"
    assert_output "[('a', 'deleted', None), ('missing', 'failed', 'ENOTOPIC'), ('c', 'deleted', None)]"
    run stream-topics list
    assert_output ""
    # Every topic unknown: not found.
    run stream-topics delete x y
    assert_failure 4
}

@test "a deleted topic can be created again, empty" {
    stream-topics create t
    stream-bench produce -t t -n 10 -q >/dev/null
    stream-topics delete t
    stream-topics create t
    run jsonof 'd["topics"][0]["partitions"][0]["high_watermark"]' stream-topics describe t --json
    assert_output "0"
}

@test "an unreachable broker is one clear line and exit 1" {
    stop_broker
    run stream-topics -b 127.0.0.1:1 list
    assert_failure 1
    assert_output "stream-topics: cannot connect to 127.0.0.1:1: connection refused (is stream-broker running?)"
    run --separate-stderr stream-topics -b 127.0.0.1:1 describe t --json
    assert_failure 1
    assert_output ""
    STREAM_BROKERS=127.0.0.1:1 run stream-topics create t
    assert_failure 1
    assert_output --partial "cannot connect to 127.0.0.1:1"
}

@test "bad flags and arguments are usage errors (exit 2)" {
    for args in "" "--no-such-flag list" "frob" "list extra" "create" "describe" \
        "describe t -p 3" "delete t --if-not-exists" "create t --if-exists" \
        "list --all-configs" "describe t --delete-config x" "create t -p 0" \
        "create t -p many" "create t -p" "create t -c =1" "-b"; do
        run stream-topics $args
        [ "$status" -eq 2 ] || { echo "stream-topics $args: status $status: $output"; return 1; }
        [[ "$output" == *"Try 'stream-topics --help'."* ]] || { echo "$args: $output"; return 1; }
    done
}

@test "--help lists every command and option; --version prints the version" {
    run stream-topics --help
    assert_success
    for word in list create describe alter delete --brokers --partitions --config \
        --delete-config --if-not-exists --if-exists --all-configs --json --verbose; do
        assert_output --partial -- "$word"
    done
    run stream-topics --version
    assert_success
    assert_output --regexp '^stream-topics [0-9]+\.[0-9]+\.[0-9]+$'
}
