#!/usr/bin/env bats
# stream-pub: input splitting, keys and headers, structured input, delivery
# accounting (exit 0 only when everything was acknowledged), and durability
# of acknowledged records across a kill -9 of the broker.

bats_require_minimum_version 1.5.0

load helpers

setup() {
    start_broker
    cd "$BATS_TEST_TMPDIR"
}

teardown() {
    stop_broker
}

# Restarts the broker on the same data dir with extra settings.
restart_broker() {
    stop_broker
    start_broker "$@"
}

# Checks a "PARTITION VALUE" listing: in each partition the values (numbers)
# increase, i.e. records kept their input order.
assert_partition_order() {
    awk '{ if (($1 in last) && $2 + 0 <= last[$1]) { print "partition " $1 ": " $2 " after " last[$1]; bad = 1 } last[$1] = $2 + 0 }
         END { exit bad }' "$1"
}

@test "--help fits a screen and lists the input modes" {
    run stream-pub --help
    assert_success
    assert_line --partial 'Usage: stream-pub -t TOPIC'
    assert_output --partial '--json'
    assert_output --partial '--msgpack'
    assert_output --partial '--ack-log'
    [ "${#lines[@]}" -le 50 ]
}

@test "bad flags exit 2 with a usage hint" {
    run -2 stream-pub
    assert_output --partial 'no topic given'
    assert_output --partial "Try 'stream-pub --help'"
    run -2 stream-pub -t t --no-such-flag
    assert_output --partial "unknown option '--no-such-flag'"
    run -2 stream-pub -t t --acks 2
    assert_output --partial "bad acks '2'"
    run -2 stream-pub -t t -z brotli
    assert_output --partial "unknown codec 'brotli'"
    run -2 stream-pub -t t -p -1
    run -2 stream-pub -t t --linger-ms soon
    run -2 stream-pub -t t -D '\q'
    assert_output --partial '-D'
    run -2 stream-pub -t t --json -K :
    assert_output --partial 'do not apply'
    run -2 stream-pub -t t --json --msgpack
    run -2 stream-pub -t t extra-argument
}

@test "an unreachable broker is one clear line and exit 1" {
    run -1 --separate-stderr stream-pub -t t -b 127.0.0.1:1 <<<"x"
    [ "$stderr" = "stream-pub: cannot connect to 127.0.0.1:1: connection refused (is stream-broker running?)" ]
    [ -z "$output" ]
}

@test "100,000 lines come back from stream-sub -e identical and in order" {
    seq 100000 >in
    run -0 --separate-stderr stream-pub -t nums <in
    [ -z "$stderr" ]
    stream-sub -t nums -o beginning -e >out
    cmp in out
}

@test "3 partitions: every line once, each partition in input order" {
    restart_broker --set num.partitions=3
    seq 100000 >in
    # Small batches so the sticky partitioner visits every partition.
    stream-pub -t spread --batch-bytes 4k <in
    stream-sub -t spread -e -f '%p %v\n' >out
    [ "$(cut -d' ' -f1 out | sort -u | tr '\n' ' ')" = "0 1 2 " ]
    assert_partition_order out
    cut -d' ' -f2 out | sort -n | cmp - in
}

@test "records with one key stay on one partition (murmur2), keys kept" {
    restart_broker --set num.partitions=3
    for i in $(seq 300); do echo "k$((i % 7)):$i"; done >in
    stream-pub -t keyed -K : --batch-bytes 1k <in
    stream-sub -t keyed -e -f '%k %p %v\n' >out
    [ "$(wc -l <out)" -eq 300 ]
    # one partition per key
    [ "$(awk '{ print $1, $2 }' out | sort -u | wc -l)" -eq 7 ]
    awk '{ print $2, $3 }' out >order
    assert_partition_order order
    # Kafka's murmur2 puts key "21" on partition 0 of 3 (murmur2("21") = -973932308).
    echo '21:x' | stream-pub -t keyed -K :
    run stream-sub -t keyed -e -f '%p %v\n' -o -1 -p 0
    assert_output '0 x'
}

@test "a last line without a newline is a record, and empty lines are records" {
    printf 'a\n\nb\n\nc' | stream-pub -t lines
    run -0 stream-sub -t lines -e -f '[%v]'
    assert_output '[a][][b][][c]'
    printf '' | stream-pub -t lines
    run -0 stream-sub -t lines -e -f '%o\n'
    assert_output "$(printf '0\n1\n2\n3\n4')"
}

@test "-K splits at the first delimiter, -k is a fixed key, -Z sends empty as null" {
    printf 'k1::v1::x\nnokey\n::emptykey\n' | stream-pub -t kv -K '::' -k fixed
    run -0 stream-sub -t kv -e -f '%k|%K|%v\n'
    assert_output "$(printf 'k1|2|v1::x\nfixed|5|nokey\n|0|emptykey')"
    printf 'k:\n:v\n' | stream-pub -t kvz -K : -Z
    run -0 stream-sub -t kvz -e -f '%K %V\n'
    assert_output "$(printf '1 -1\n-1 1')"
}

@test "-H adds headers in order; a name alone is a null value" {
    printf 'x\n' | stream-pub -t hdr -H a=1 -H b -H a=x=y -H empty=
    run -0 stream-sub -t hdr -e -f '%h\n'
    assert_output 'a=1,b,a=x=y,empty='
    run -0 stream-sub -t hdr -e --json
    assert_output --partial '"headers":[["a","1"],["b",null],["a","x=y"],["empty",""]]'
}

@test "-D with an escape splits NUL-separated input" {
    printf 'one\0two words\0three\n' | stream-pub -t nul -D '\0'
    run -0 stream-sub -t nul -e -f '<%v>'
    assert_output "$(printf '<one><two words><three\n>')"
}

@test "-l publishes all of stdin as one record, binary bytes intact" {
    head -c 100000 /dev/urandom >blob
    stream-pub -t blobs -l <blob
    stream-sub -t blobs -e -f '%v' >back
    cmp blob back
    run -0 stream-sub -t blobs -e -f '%V\n'
    assert_output '100000'
    # -l -Z on empty input: one tombstone
    stream-pub -t blobs -k gone -l -Z </dev/null
    run -0 stream-sub -t blobs -e -o -1 -f '%k %V\n'
    assert_output 'gone -1'
}

@test "each -z codec round-trips" {
    seq 2000 >in
    for z in none gzip snappy lz4 zstd; do
        stream-pub -t "z-$z" -z "$z" <in
        stream-sub -t "z-$z" -e >out
        cmp in out || { echo "codec $z"; return 1; }
    done
}

# Records covering everything the lossless formats must keep.
write_odd_records() {
    cat >"$1" <<'EOF'
{"key":"k1","value":"plain","timestamp":1700000000000,"headers":[["h","1"],["h","2"],["n",null]]}
{"key":null,"value":"AAEC/w==","value_encoding":"base64","timestamp":1700000001000}
{"key":"","value":"","timestamp":1700000002000,"headers":[["bin","AP8=","base64"]]}
{"key":"tomb","value":null,"timestamp":1700000003000}
{"key":"AGtleQ==","key_encoding":"base64","value":"caf\u00e9 \"quoted\"\n","timestamp":1700000004000}
EOF
}

@test "--json round trip keeps keys, headers, timestamps, nulls and binary" {
    write_odd_records in.json
    stream-pub -t j1 --json <in.json
    stream-sub -t j1 -e --json >dump1
    [ "$(wc -l <dump1)" -eq 5 ]
    stream-pub -t j2 --json <dump1
    stream-sub -t j2 -e --json | sed 's/"topic":"j2"/"topic":"j1"/' >dump2
    diff dump1 dump2
    run -0 stream-sub -t j1 -e -f '%T %K %V\n'
    assert_output "$(printf '1700000000000 2 5\n1700000001000 -1 4\n1700000002000 0 0\n1700000003000 4 -1\n1700000004000 4 15')"
}

@test "stream-sub --msgpack | stream-pub --msgpack copies a topic losslessly" {
    restart_broker --set num.partitions=3
    write_odd_records in.json
    # spread over the partitions explicitly: the copy must keep them
    i=0
    while IFS= read -r line; do
        echo "${line%\}},\"partition\":$((i % 3))}"
        i=$((i + 1))
    done <in.json >parts.json
    seq 1000 | stream-pub -t src -K : -H seq=yes
    stream-pub -t src --json <parts.json
    stream-sub -t src -e --msgpack >copy.mp
    stream-pub -t dst --msgpack <copy.mp
    stream-sub -t src -e --json | sort >src.dump
    stream-sub -t dst -e --json | sed 's/"topic":"dst"/"topic":"src"/' | sort >dst.dump
    [ "$(wc -l <src.dump)" -eq 1005 ]
    diff src.dump dst.dump
}

@test "a bad JSON line stops the input, names its line number and exits 1" {
    printf '{"value":"a"}\n{"value":"b"}\n{"vlaue":"c"}\n{"value":"d"}\n' >in
    run -1 --separate-stderr stream-pub -t bad --json <in
    [[ "$stderr" == *"line 3"* ]]
    run -0 stream-sub -t bad -e
    assert_output "$(printf 'a\nb')"
    run -1 --separate-stderr stream-pub -t bad --msgpack <<<"not msgpack at all"
    [ -n "$stderr" ]
}

@test "a record for a missing partition fails alone: N of M records failed" {
    printf '{"value":"a"}\n{"value":"b","partition":7}\n{"value":"c"}\n' >in
    run -1 --separate-stderr stream-pub -t parts --json <in
    [[ "$stderr" == "stream-pub: 1 of 3 records failed: record 2: "*"partition 7"* ]]
    [ "${#stderr_lines[@]}" -eq 1 ]
    run -0 stream-sub -t parts -e
    assert_output "$(printf 'a\nc')"
}

@test "-p to a partition the topic lacks fails every record with exit 1" {
    echo first | stream-pub -t onepart
    run -1 --separate-stderr stream-pub -t onepart -p 5 <<<"x"
    [[ "$stderr" == "stream-pub: 1 of 1 records failed: record 1: "*"partition 5"* ]]
}

@test "an unknown topic without auto-creation stops at the first record, exit 1" {
    stop_broker
    start_broker --set auto.create.topics.enable=false
    run -1 --separate-stderr stream-pub -t nope < <(seq 5)
    [[ "$stderr" == "stream-pub: 1 of 1 records failed: record 1: "*"unknown topic 'nope'"* ]]
}

@test "--ack-log lists every acknowledged record with its partition and offset" {
    seq 5000 | stream-pub -t acked --ack-log acks
    [ "$(wc -l <acks)" -eq 5000 ]
    stream-sub -t acked -e -f '%p %o\n' >stored
    awk '{ print $2, $3 }' acks | diff - stored
    awk '$1 != NR { exit 1 }' acks
    run -0 stream-pub -t acked --ack-log - <<<"x"
    assert_output '1 0 5000'
}

@test "records are sent while stdin stays open (each within linger-ms)" {
    echo zero | stream-pub -t live
    mkfifo in
    stream-pub -t live <in 3>&- &
    pub=$!
    exec 4>in
    echo first >&4
    # offset 1 is the end: stream-sub waits there (long poll) for "first"
    run -0 timeout 10 stream-sub -t live -o 1 -c 1
    assert_output first
    kill -0 "$pub"
    echo second >&4
    exec 4>&-
    wait "$pub"
    run -0 stream-sub -t live -e
    assert_output "$(printf 'zero\nfirst\nsecond')"
}

@test "SIGINT stops reading; what was read is delivered and the status says so" {
    echo zero | stream-pub -t sig
    mkfifo in
    stream-pub -t sig <in 3>&- &
    pub=$!
    exec 4>in
    printf 'a\nb\n' >&4
    run -0 timeout 10 stream-sub -t sig -o 1 -c 2
    kill -INT "$pub"
    wait "$pub" # exits 0: both records it read were acknowledged
    exec 4>&-
    run -0 stream-sub -t sig -e
    assert_output "$(printf 'zero\na\nb')"
}

# Feeds up to $1 numbered lines, 2000 at a time with pauses, so stream-pub is
# still running when the broker is killed; stops early once file $2 exists.
slow_numbers() {
    local i
    for ((i = 0; i < $1; i += 2000)); do
        [ -n "${2:-}" ] && [ -e "$2" ] && break
        seq $((i + 1)) $((i + 2000))
        sleep 0.02
    done
}

# Writes the numbers 1 to $1, one per line, as fast as it can, and stops at a
# line boundary once file $2 exists (killing seq could cut the last line, and
# a record "12" numbered 123 looks like a wrong record).
fast_numbers() {
    local i
    for ((i = 0; i < $1; i += 10000)); do
        [ -e "$2" ] && break
        seq $((i + 1)) $((i + 10000))
    done
}

# Waits until file $1 has at least $2 lines.
wait_lines() {
    local i
    for ((i = 0; i < 400; i++)); do
        [ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ] && return 0
        sleep 0.05
    done
    echo "$1 has fewer than $2 lines" >&2
    return 1
}

@test "kill -9 during --acks all: every acknowledged record is stored once, in order" {
    # Retries would resend a batch whose acknowledgement was lost, and a resent
    # batch that is then acknowledged duplicates records: --retries 0 makes
    # each record go out at most once, so acknowledged means exactly once.
    mkfifo in
    fast_numbers 5000000 stop >in 3>&- &
    gen=$!
    stream-pub -t durable --acks all --retries 0 --ack-log acks <in 2>pub.err 3>&- &
    pub=$!
    # Kill the broker in full flow, once acknowledgements have come back.
    wait_lines acks 1
    kill_broker || true # helpers.bash: its wait returns 137 under set -e
    # End the input: with the broker gone every later batch fails at the
    # first failed reconnection.
    touch stop
    wait "$gen" || true
    rc=0
    wait "$pub" || rc=$?
    cat pub.err
    acked=$(wc -l <acks)
    [ "$acked" -gt 0 ]
    if [ "$rc" -ne 0 ]; then
        [ "$rc" -eq 1 ]
        grep -q 'records failed' pub.err
    fi
    start_broker
    stream-sub -t durable -e -f '%o %v\n' >stored
    echo "status $rc, acknowledged $acked, stored $(wc -l <stored)"
    # every acknowledged record is at the offset it was acknowledged at ...
    awk 'NR == FNR { at[$1] = $2; next } !($3 in at) || at[$3] != $1 { print "offset " $3 ": not record " $1; bad = 1 } END { exit bad }' \
        stored acks
    # ... exactly once ...
    awk 'NR == FNR { acked[$1] = 1; next } ($2 in acked) { seen[$2]++ } END { for (r in acked) if (seen[r] != 1) { print "record " r " stored " seen[r] + 0 " times"; bad = 1 } exit bad }' \
        acks stored
    # ... and in input order.
    awk 'NR == FNR { acked[$1] = 1; next } ($2 in acked) { if ($2 + 0 <= last) { print $2 " after " last; bad = 1 } last = $2 + 0 } END { exit bad }' \
        acks stored
}

@test "kill -9 with retries (the default): every acknowledged record is stored once, in order" {
    # Retries resend the batches whose answers died with the broker; the
    # producer is idempotent, so the restarted broker recognises a resent
    # batch it already has (its producer state is rebuilt from the log) and
    # answers with the first offsets instead of storing it again.
    mkfifo in
    fast_numbers 3000000 stop >in 3>&- &
    gen=$!
    # Small batches: many are in flight, written but unanswered, at a kill.
    stream-pub -t durable --acks all --batch-bytes 4k --ack-log acks <in 2>pub.err 3>&- &
    pub=$!
    # Kill the broker in full flow, three times, restarting it each time.
    wait_lines acks 1
    for round in 1 2 3; do
        kill_broker || true # helpers.bash: its wait returns 137 under set -e
        # the same port, so stream-pub's retries find it again
        start_broker --listen "$STREAM_BROKERS"
        wait_lines acks $(($(wc -l <acks) + 10000))
    done
    touch stop # end the input
    wait "$gen" || true
    rc=0
    wait "$pub" || rc=$?
    cat pub.err
    acked=$(wc -l <acks)
    stream-sub -t durable -e -f '%o %v\n' >stored
    echo "status $rc, acknowledged $acked, stored $(wc -l <stored)"
    [ "$rc" -eq 0 ]
    # every acknowledged record is at the offset it was acknowledged at ...
    awk 'NR == FNR { at[$1] = $2; next } !($3 in at) || at[$3] != $1 { print "offset " $3 ": not record " $1; bad = 1 } END { exit bad }' \
        stored acks
    # ... no record is stored twice, acknowledged or not ...
    awk '{ if (seen[$2]++) { print "record " $2 " stored twice, again at offset " $1; bad = 1 } } END { exit bad }' stored
    # ... every acknowledged record is there exactly once ...
    awk 'NR == FNR { acked[$1] = 1; next } ($2 in acked) { seen[$2]++ } END { for (r in acked) if (seen[r] != 1) { print "record " r " stored " seen[r] + 0 " times"; bad = 1 } exit bad }' \
        acks stored
    # ... and the partition holds the records in input order.
    awk '{ if ($2 + 0 <= last) { print $2 " after " last; bad = 1 } last = $2 + 0 } END { exit bad }' stored
}

@test "with retries, stream-pub rides out a broker restart, storing every record once" {
    slow_numbers 100000 | stream-pub -t riding --acks all --ack-log acks 2>pub.err 3>&- &
    pub=$!
    wait_lines acks 1
    kill_broker || true # helpers.bash: its wait returns 137 under set -e
    # the same port, so stream-pub's retries find it again
    start_broker --listen "$STREAM_BROKERS"
    wait "$pub"
    [ "$(wc -l <acks)" -eq 100000 ]
    stream-sub -t riding -e >stored
    echo "stored $(wc -l <stored) for 100000 records"
    # every record is there once, in order (resends were recognised)
    cmp stored <(seq 100000)
    # acknowledged offsets hold the acknowledged records
    stream-sub -t riding -e -f '%o %v\n' >byoff
    awk 'NR == FNR { at[$1] = $2; next } !($3 in at) || at[$3] != $1 { bad = 1 } END { exit bad }' byoff acks
}

@test "--no-idempotence still delivers every record across a restart (at least once)" {
    slow_numbers 40000 | stream-pub -t plain --no-idempotence --acks all --ack-log acks 2>pub.err 3>&- &
    pub=$!
    wait_lines acks 1
    kill_broker || true
    start_broker --listen "$STREAM_BROKERS"
    wait "$pub"
    [ "$(wc -l <acks)" -eq 40000 ]
    stream-sub -t plain -e >stored
    # every record is there; duplicates only from resent batches
    sort -n -u stored | cmp - <(seq 40000)
}

@test "--retries 0 with the broker gone: every waiting record fails at once" {
    mkfifo in
    stream-pub -t gone --retries 0 --linger-ms 0 --batch-bytes 64 <in 2>pub.err 3>&- &
    pub=$!
    exec 4>in
    echo first >&4
    # The first record creates the topic; stream-sub refuses unknown topics.
    local i
    for ((i = 0; i < 100; i++)); do
        stream-topics describe gone >/dev/null 2>&1 && break
        sleep 0.1
    done
    run -0 timeout 10 stream-sub -t gone -c 1
    sleep 0.2 # its acknowledgement
    kill_broker || true
    # Small batches: a thousand of them wait when the first reconnection
    # fails, and each counts that failure as its one attempt.
    SECONDS=0
    seq 1000 >&4
    exec 4>&-
    rc=0
    wait "$pub" || rc=$?
    cat pub.err
    echo "took $SECONDS s"
    [ "$rc" -eq 1 ]
    grep -Eq '(1000|1001) of 1001 records failed' pub.err
    [ "$SECONDS" -lt 10 ]
}
