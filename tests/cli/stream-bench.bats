#!/usr/bin/env bats
# stream-bench: tiny produce, consume and e2e runs against a real broker
# complete and print the documented fields; --json parses; bad options exit 2.

bats_require_minimum_version 1.5.0
load helpers

setup() { start_broker; }
teardown() { stop_broker; }

# jsonof EXPR COMMAND...: a Python expression over the JSON document COMMAND
# prints on stdout (bound to `d`).
jsonof() {
    local expr=$1
    shift
    "$@" | python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$expr"
}

@test "produce prints records, records/s, MB/s and the latency percentiles" {
    run --separate-stderr stream-bench produce -t b -n 2000 -s 100
    assert_success
    assert_output --regexp '^produce: 2000 records sent, 0 failed, [0-9.]+ records/s, [0-9.]+ MB/s \(acks=1, 100 bytes, none\); latency ms: avg [0-9.]+ p50 [0-9.]+ p95 [0-9.]+ p99 [0-9.]+ p99\.9 [0-9.]+ max [0-9.]+$'
    # The records are there.
    run jsonof 'd["topics"][0]["partitions"][0]["high_watermark"]' stream-topics describe b --json
    assert_output "2000"
}

@test "produce --json has every documented field" {
    run jsonof 'sorted(d) == sorted(["mode", "topic", "topics", "producers", "records", "failed", "record_bytes", "acks", "codec", "elapsed_s", "records_per_sec", "mb_per_sec", "latency_ms"]) and sorted(d["latency_ms"]) == sorted(["avg", "p50", "p95", "p99", "p999", "max"])' \
        stream-bench produce -t b -n 500 -s 10 --json -q
    assert_output "True"
    run jsonof '(d["mode"], d["topic"], d["producers"], d["records"], d["failed"], d["record_bytes"], d["acks"], d["codec"], d["latency_ms"]["p50"] <= d["latency_ms"]["p99"] <= d["latency_ms"]["max"], d["records_per_sec"] > 0)' \
        stream-bench produce -t b -n 500 -s 10 --json -q --acks all -z lz4
    assert_output "('produce', 'b', 1, 500, 0, 10, 'all', 'lz4', True, True)"
}

@test "produce --partitions creates the topic with that many partitions and spreads records" {
    stream-bench produce -t spread -n 3000 -s 100 --partitions 3 --batch-bytes 4k -q >/dev/null
    run jsonof '[p["high_watermark"] > 0 for p in d["topics"][0]["partitions"]]' stream-topics describe spread --json
    assert_output "[True, True, True]"
}

@test "produce --topics K goes round-robin over TOPIC-0..TOPIC-(K-1), each made with --partitions" {
    run --separate-stderr stream-bench produce -t multi --topics 3 --partitions 2 -n 3000 -s 100 \
        --batch-bytes 4k
    assert_success
    assert_output --regexp '^produce: 3000 records sent, 0 failed, [0-9.]+ records/s, [0-9.]+ MB/s \(acks=1, 100 bytes, none, 3 topics\); latency ms: avg '
    for i in 0 1 2; do
        # A third of the records each, over both partitions.
        run jsonof '[p["high_watermark"] > 0 for p in d["topics"][0]["partitions"]], sum(p["high_watermark"] for p in d["topics"][0]["partitions"])' \
            stream-topics describe "multi-$i" --json
        assert_output "([True, True], 1000)"
    done
    # TOPIC itself is only the prefix.
    run stream-topics describe multi
    assert_failure
    run jsonof '(d["topic"], d["topics"], d["records"], d["failed"])' \
        stream-bench produce -t multi --topics 3 -n 301 --json -q
    assert_output "('multi', 3, 301, 0)"
    run jsonof 'sum(p["high_watermark"] for p in d["topics"][0]["partitions"])' \
        stream-topics describe multi-0 --json
    assert_output "1101"
}

@test "produce --producers P shares -n among P producers and prints one merged result" {
    run --separate-stderr stream-bench produce -t pp -n 4001 -s 100 --producers 4 --partitions 2 \
        --batch-bytes 4k
    assert_success
    assert_output --regexp '^produce: 4001 records sent, 0 failed, [0-9.]+ records/s, [0-9.]+ MB/s \(acks=1, 100 bytes, none, 4 producers\); latency ms: avg [0-9.]+ p50 [0-9.]+ p95 [0-9.]+ p99 [0-9.]+ p99\.9 [0-9.]+ max [0-9.]+$'
    # Exactly -n records in all: the end offsets, and what a reader finds.
    run jsonof 'sum(p["high_watermark"] for p in d["topics"][0]["partitions"])' \
        stream-topics describe pp --json
    assert_output "4001"
    run bash -c 'stream-sub -t pp -e -f "%o\n" | wc -l'
    assert_output "4001"
    # The latencies of every producer's records are in the merged percentiles.
    run jsonof '(d["producers"], d["records"], d["failed"], 0 < d["latency_ms"]["p50"] <= d["latency_ms"]["p999"] <= d["latency_ms"]["max"], d["records_per_sec"] > 0)' \
        stream-bench produce -t pp -n 999 --producers 16 --acks all --json -q
    assert_output "(16, 999, 0, True, True)"
    # With --topics the records still go round-robin: 101, 100, 100.
    stream-bench produce -t ppm --topics 3 -n 301 --producers 2 -q >/dev/null
    for i in 0 1 2; do
        run jsonof 'sum(p["high_watermark"] for p in d["topics"][0]["partitions"])' \
            stream-topics describe "ppm-$i" --json
        assert_output "$((i == 0 ? 101 : 100))"
    done
}

@test "produce --producers P opens P connections at once" {
    # A broker that takes 4 connections: 4 producers fit, a 5th is refused.
    stop_broker
    start_broker --set max.connections=4
    run --separate-stderr stream-bench produce -t conns -n 400 --producers 4 -q
    assert_success
    assert_output --partial "400 records sent, 0 failed"
    run --separate-stderr stream-bench produce -t conns -n 400 --producers 5 -q
    assert_failure 1
    [[ "$stderr" == "stream-bench: cannot connect to "*": hello failed: "* ]] ||
        { echo "stderr: $stderr"; return 1; }
    grep -q "max.connections (4) reached" "$BROKER_LOG"
}

@test "produce --producers: progress sums every producer, paced at --rate in all" {
    # 400 records at 300/s over 3 producers: about 300 acked after a second.
    # --progress: the line is drawn into a file too (redrawn once a second
    # after '\r'); its first drawing comes a second in.
    run --separate-stderr stream-bench produce -t ppr -n 400 --rate 300 --producers 3 --json \
        --progress
    assert_success
    run python3 -c 'import json, sys; d = json.loads(sys.argv[1]); print(d["records"], 200 < d["records_per_sec"] < 330)' "$output"
    assert_output "400 True"
    [[ "$stderr" =~ produce:\ ([0-9,]+)\ records\ .*\ p99\  ]] || { echo "stderr: $stderr"; return 1; }
    (( ${BASH_REMATCH[1]//,/} > 200 )) || { echo "stderr: $stderr"; return 1; }
    # The last drawing is the whole run, with the time it took.
    last=$(tr '\r' '\n' <<<"$stderr" | grep -v '^ *$' | tail -1)
    [[ "$last" =~ ^produce:\ 400\ records\ +39\.1\ KiB\ /\ 39\.1\ KiB\ +100%\ .*\ in\ 0:0[0-9] ]] ||
        { echo "last: $last"; return 1; }
}

@test "no --progress and stderr not a terminal: stderr stays empty, stdout has the result only" {
    run --separate-stderr stream-bench produce -t quietp -n 2000 --rate 1500
    assert_success
    [ -z "$stderr" ] || { echo "stderr: $stderr"; return 1; }
    [ "${#lines[@]}" -eq 1 ]
    run --separate-stderr stream-bench consume -t quietp -n 2000 --progress
    assert_success
    [[ "$stderr" == *"consume: 2,000 records  "*" in 0:0"* ]] || { echo "stderr: $stderr"; return 1; }
}

@test "produce --rate paces the producer" {
    # 100 records at 200/s take about half a second.
    run jsonof 'd["records_per_sec"] < 300' stream-bench produce -t paced -n 100 --rate 200 -q --json
    assert_output "True"
}

@test "consume reads to the end by default, or -n records, with time to first record" {
    stream-bench produce -t c -n 1500 -s 100 -q >/dev/null
    run --separate-stderr stream-bench consume -t c
    assert_success
    assert_output --regexp '^consume: 1500 records, [0-9.]+ records/s, [0-9.]+ MB/s, first record after [0-9.]+ ms$'
    run jsonof '(d["mode"], d["records"], d["bytes"], d["first_record_ms"] >= 0, d["records_per_sec"] > 0, d["mb_per_sec"] > 0, "elapsed_s" in d)' \
        stream-bench consume -t c -n 1000 --json -q
    assert_output "('consume', 1000, 100000, True, True, True, True)"
}

@test "consume gives up after --timeout-ms without records and exits 1" {
    stream-bench produce -t few -n 10 -q >/dev/null
    run --separate-stderr stream-bench consume -t few -n 20 --timeout-ms 300 -q
    assert_failure 1
    assert_output --partial "consume: 10 records"
    [[ "$stderr" == *"no record for 300 ms: read 10 of 20 records"* ]]
}

@test "consume --group reads from the group's committed offsets and commits at the end" {
    stream-bench produce -t gt -n 1000 -s 100 --partitions 2 --batch-bytes 4k -q >/dev/null
    run --separate-stderr stream-bench consume -t gt --group gg -n 600
    assert_success
    assert_output --regexp '^consume: 600 records, [0-9.]+ records/s, [0-9.]+ MB/s, first record after [0-9.]+ ms \(group gg\)$'
    # The next run of the group reads the rest, to the end.
    run jsonof '(d["group"], d["records"], d["bytes"], d["first_record_ms"] >= 0)' \
        stream-bench consume -t gt --group gg --json -q
    assert_output "('gg', 400, 40000, True)"
    run jsonof 'sorted(p["partition"] for p in d["offsets"]), sum(p["offset"] for p in d["offsets"]), d["total_lag"], d["members"]' \
        stream-topics group gg --json
    assert_output "([0, 1], 1000, 0, [])"
    # Nothing new: to the end is no record and success, as for an empty topic;
    # -n waits for records and gives up after --timeout-ms with exit 1.
    run --separate-stderr stream-bench consume -t gt --group gg
    assert_success
    assert_output --regexp '^consume: 0 records, 0\.0 records/s, 0\.00 MB/s, no record read \(group gg\)$'
    run --separate-stderr stream-bench consume -t gt --group gg -n 5 --timeout-ms 300 -q
    assert_failure 1
    [[ "$stderr" == *"no record for 300 ms: read 0 of 5 records"* ]] || { echo "$stderr"; return 1; }
    # Another group has its own offsets; a standalone consume has no group.
    run jsonof '(d["group"], d["records"])' stream-bench consume -t gt -g other --json -q
    assert_output "('other', 1000)"
    run jsonof '(d["group"], d["records"])' stream-bench consume -t gt --json -q
    assert_output "(None, 1000)"
    run stream-bench consume -t missing --group gg -q
    assert_failure 1
    assert_output "stream-bench: cannot read topic 'missing': unknown topic 'missing'"
}

@test "e2e measures end-to-end latency at a paced rate" {
    run --separate-stderr stream-bench e2e -t lat --rate 500 -n 300
    assert_success
    assert_output --regexp '^e2e: 300 records sent, 300 received at 500 records/s \(acks=1, 100 bytes\); latency ms: avg [0-9.]+ p50 [0-9.]+ p95 [0-9.]+ p99 [0-9.]+ p99\.9 [0-9.]+ max [0-9.]+$'
    run jsonof '(d["mode"], d["records_sent"], d["records_received"], d["acks"], d["rate"], sorted(d["latency_ms"]), 0 < d["latency_ms"]["p50"] <= d["latency_ms"]["p999"] <= d["latency_ms"]["max"])' \
        stream-bench e2e -t lat --rate 1000 -n 200 --acks all --json -q
    assert_output "('e2e', 200, 200, 'all', 1000.0, ['avg', 'max', 'p50', 'p95', 'p99', 'p999'], True)"
}

@test "e2e -v splits the latency at the acknowledgement" {
    run --separate-stderr stream-bench e2e -t stages --rate 500 -n 200 --acks all -v -q
    assert_success
    assert_line --index 1 --regexp '^  produce to acknowledgement \(200 records\): latency ms: avg [0-9.]+ p50 '
    assert_line --index 2 --regexp '^  acknowledgement to consumer \([0-9]+ records, [0-9]+ more consumed before their acknowledgement\): latency ms: '
    # Every record counted once: after its acknowledgement or before it.
    run jsonof 'd["stages"]["records"], d["stages"]["consumed_before_ack"] <= d["stages"]["records"], sorted(d["stages"]["produce_to_ack"]["latency_ms"]), 0 < d["stages"]["produce_to_ack"]["latency_ms"]["p50"]' \
        stream-bench e2e -t stages --rate 1000 -n 300 --acks all -v --json -q
    assert_output "(300, True, ['avg', 'max', 'p50', 'p95', 'p99', 'p999'], True)"
}

@test "e2e -v --acks all breaks produce to acknowledgement into the broker's stages" {
    run --separate-stderr stream-bench e2e -t bstages --rate 500 -n 200 --acks all -v -q
    assert_success
    assert_line --index 3 --regexp '^  produce to acknowledgement in stages \([0-9]+ records\):$'
    assert_line --index 4 --regexp '^    producer queue \(produce\(\) to the request.s send\) +latency ms: avg [0-9.]+ p50 '
    assert_line --index 7 --regexp '^    broker: the sync round \(fdatasync\) +latency ms: avg [0-9.]+ p50 '
    assert_line --index 10 --regexp '^  the slowest 1% end to end \([0-9]+ records, [0-9.]+ ms and over, mean [0-9.]+ ms\), mean ms per stage: queue [0-9.]+ append [0-9.]+ round_wait [0-9.]+ sync [0-9.]+ after_sync [0-9.]+ transport [0-9.]+$'
    # Nearly every record has the broker's account (a round it remembers);
    # the stages of a record add up to its produce-to-acknowledgement time,
    # so no stage's median exceeds that time's maximum.
    run jsonof '(lambda s: (s["staged"] >= 0.9 * s["records"], s["slowest"]["records"] >= 1, all(s[k]["latency_ms"]["p50"] <= s["produce_to_ack"]["latency_ms"]["max"] for k in ("queue", "append", "round_wait", "sync", "after_sync", "transport"))))(d["stages"])' \
        stream-bench e2e -t bstages2 --rate 1000 -n 300 --acks all -v --json -q
    assert_output "(True, True, True)"
    # acks=1 waits for no sync round: no stages, and it says so.
    run --separate-stderr stream-bench e2e -t bstages3 --rate 500 -n 100 --acks 1 -v -q
    assert_success
    assert_line --index 3 "  stages: none (the broker gives them for acks=all records synced by a round it remembers)"
}

@test "e2e ignores records from other writers on the topic" {
    stream-bench produce -t shared -n 50 -q >/dev/null
    run jsonof 'd["records_received"]' stream-bench e2e -t shared --rate 1000 -n 100 --json -q
    assert_output "100"
}

@test "--progress: the line goes to stderr once a second; -q alone or --no-progress silences it" {
    run --separate-stderr stream-bench e2e -t slow --rate 100 -n 150 --progress
    assert_success
    [[ "$stderr" =~ e2e:\ [0-9,]+\ records\ .*\ p99\ [0-9.]+\ ms\ +ETA ]] ||
        { echo "stderr: $stderr"; return 1; }
    [[ "$stderr" == *"e2e: 150 records  "*" in 0:0"* ]] || { echo "stderr: $stderr"; return 1; }
    [[ "$output" == "e2e: 150 records"* ]] # the result, alone on stdout
    run --separate-stderr stream-bench e2e -t slow --rate 100 -n 150 -q
    assert_success
    [ -z "$stderr" ]
    run --separate-stderr stream-bench e2e -t slow --rate 100 -n 150 --progress --no-progress
    assert_success
    [ -z "$stderr" ]
}

@test "an unreachable broker is one clear line and exit 1" {
    stop_broker
    for args in "produce -n 10" "consume" "e2e -n 10 --rate 10"; do
        run stream-bench $args -b 127.0.0.1:1 -t x
        assert_failure 1
        assert_output "stream-bench: cannot connect to 127.0.0.1:1: connection refused (is stream-broker running?)"
    done
}

@test "bad options are usage errors (exit 2)" {
    for args in "" "frob -t x -n 1" "produce -n 1" "produce -t x" "e2e -t x -n 10" \
        "e2e -t x -n 10 --rate 10 -s 8" "consume -t x -s 100" "consume -t x --acks 1" \
        "produce -t x -n 1 --acks 2" "produce -t x -n 1 -z brotli" "produce -t x -n 0" \
        "produce -t x -n 1 --rate 0" "produce -t x -n 1 --rate fast" "produce -t x -n 1 -s 1x" \
        "produce -t x -n 1 --partitions 0" "produce -t x -n 1 --no-such-flag" \
        "produce consume -t x -n 1" "produce -t x -n 1 --linger-ms -1" \
        "produce -t x -n 1 --topics 0" "produce -t x -n 1 --topics many" "consume -t x --topics 2" \
        "e2e -t x -n 10 --rate 10 --topics 2" "produce -t x -n 1 --producers 0" \
        "produce -t x -n 1 --producers 1001" "produce -t x -n 1 --producers some" \
        "consume -t x --producers 2" "e2e -t x -n 10 --rate 10 --producers 2" \
        "produce -t x -n 1 --group g" "e2e -t x -n 10 --rate 10 -g g" "consume -t x -g a/b" \
        "produce -t x -n 1 -v" "e2e -t x -n 10 --rate 10 -s 16 -v"; do
        run stream-bench $args
        [ "$status" -eq 2 ] || { echo "stream-bench $args: status $status: $output"; return 1; }
        [[ "$output" == *"Try 'stream-bench --help'."* ]] || { echo "$args: $output"; return 1; }
    done
    run stream-bench consume -t x --group ""
    assert_failure 2
    assert_output --partial "invalid group name ''"
}

@test "--help lists every mode and option; --version prints the version" {
    run stream-bench --help
    assert_success
    for word in produce consume e2e --brokers --topic --records --record-size --acks \
        --compression --rate --partitions --topics --producers --group --linger-ms --batch-bytes --timeout-ms --json \
        --quiet --verbose; do
        assert_output --partial -- "$word"
    done
    run stream-bench --version
    assert_success
    assert_output --regexp '^stream-bench [0-9]+\.[0-9]+\.[0-9]+$'
}
