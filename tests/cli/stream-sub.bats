#!/usr/bin/env bats
# stream-sub: start offsets (N, -N, +N, @TIME, ranges), bounded reads (-e,
# -c, exit status 3), formats, publish-subscribe, long polls, and quiet
# exits on signals and closed pipes.

bats_require_minimum_version 1.5.0

load helpers

setup() {
    start_broker
    cd "$BATS_TEST_TMPDIR"
}

teardown() {
    stop_broker
}

# Waits up to 10 s for file $1 to contain a line matching $2.
wait_for() {
    local i
    for ((i = 0; i < 200; i++)); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "no line matching '$2' in $1:" >&2
    cat "$1" >&2
    return 1
}

@test "--help fits a screen and lists the output modes" {
    run stream-sub --help
    assert_success
    assert_line --partial 'Usage: stream-sub -t TOPIC'
    assert_output --partial '--json'
    assert_output --partial '--msgpack'
    assert_output --partial '--format'
    [ "${#lines[@]}" -le 50 ]
}

@test "bad flags exit 2 with a usage hint, before any broker is contacted" {
    export STREAM_BROKERS=127.0.0.1:1
    run -2 stream-sub
    assert_output --partial 'no topic given'
    assert_output --partial "Try 'stream-sub --help'"
    run -2 stream-sub -t t --no-such-flag
    run -2 stream-sub -t t -o bogus
    assert_output --partial "bad offset 'bogus'"
    run -2 stream-sub -t t -f 'x %q'
    assert_output --partial "'%q'"
    assert_output --partial 'column 3'
    run -2 stream-sub -t t -o stored
    assert_output --partial 'consumer group'
    run -2 stream-sub -t t -c 0
    run -2 stream-sub -t t -p 1,x
    run -2 stream-sub -t t -f '%v' --json
    run -2 stream-sub -t t extra
}

@test "an unreachable broker is one clear line and exit 1" {
    run -1 --separate-stderr stream-sub -t t -e -b 127.0.0.1:1
    [ "$stderr" = "stream-sub: cannot connect to 127.0.0.1:1: connection refused (is stream-broker running?)" ]
    [ -z "$output" ]
}

@test "an unknown topic is a clear error, with -e or without" {
    echo x | stream-pub -t known
    run -1 --separate-stderr stream-sub -t unknown -e
    [[ "$stderr" == "stream-sub: unknown topic 'unknown'"* ]]
    [ "${#stderr_lines[@]}" -eq 1 ]
    run -1 --separate-stderr timeout 10 stream-sub -t unknown
    [[ "$stderr" == *"unknown topic 'unknown'"* ]]
    run -1 --separate-stderr stream-sub -t known -p 4 -e
    [[ "$stderr" == *"partition 4"* ]]
}

@test "-o N, -o -N, -o +N, ranges and -c pick the right records" {
    seq 0 99 | stream-pub -t nums
    run -0 stream-sub -t nums -e -o 95
    assert_output "$(seq 95 99)"
    run -0 stream-sub -t nums -e -o -3
    assert_output "$(seq 97 99)"
    run -0 stream-sub -t nums -e -o +98
    assert_output "$(seq 98 99)"
    run -0 stream-sub -t nums -o 10..13
    assert_output "$(seq 10 12)"
    run -0 stream-sub -t nums -o 50 -c 2
    assert_output "$(seq 50 51)"
    run -0 stream-sub -t nums -e -o -1000
    [ "${#lines[@]}" -eq 100 ]
    run -0 stream-sub -t nums -o beginning -e -c 1000
    [ "${#lines[@]}" -eq 100 ]
}

@test "-o -N is per partition; -p limits the partitions" {
    stop_broker
    start_broker --set num.partitions=3
    for p in 0 1 2; do seq -f "$p-%g" 0 9 | stream-pub -t parts -p "$p"; done
    run -0 stream-sub -t parts -e -o -2 -f '%p:%v\n'
    [ "$(sort <<<"$output" | tr '\n' ' ')" = "0:0-8 0:0-9 1:1-8 1:1-9 2:2-8 2:2-9 " ]
    run -0 stream-sub -t parts -e -p 0,2 -o -1
    [ "$(sort <<<"$output" | tr '\n' ' ')" = "0-9 2-9 " ]
    run -0 stream-sub -t parts -e -p 1 -p 1 -o 9
    assert_output 1-9
}

@test "-e exits 3 when there is nothing to read" {
    seq 3 | stream-pub -t some
    run -3 --separate-stderr stream-sub -t some -e -o end
    [ -z "$output" ]
    [ -z "$stderr" ]
    run -3 stream-sub -t some -o 3..end
    stop_broker
    start_broker --set num.partitions=2
    echo x | stream-pub -t half -p 0
    run -3 stream-sub -t half -e -p 1
    run -0 stream-sub -t half -e
    assert_output x
    if command -v stream-topics >/dev/null; then
        stream-topics create empty -p 1
        run -3 stream-sub -t empty -e
    fi
}

@test "-o @TIME starts at the first record at or after TIME" {
    for i in 0 1 2 3 4; do
        echo "{\"value\":\"r$i\",\"timestamp\":$((1700000000000 + i * 60000))}"
    done | stream-pub -t timed --json
    # epoch milliseconds, between r1 and r2
    run -0 stream-sub -t timed -e -o @1700000090000
    assert_output "$(printf 'r2\nr3\nr4')"
    # exactly at a record
    run -0 stream-sub -t timed -e -o @1700000180000
    assert_output "$(printf 'r3\nr4')"
    # epoch seconds and RFC 3339 (1700000000 is 2023-11-14T22:13:20Z)
    run -0 stream-sub -t timed -e -o @1700000060
    assert_output "$(printf 'r1\nr2\nr3\nr4')"
    run -0 stream-sub -t timed -e -o @2023-11-14T22:15:20Z
    assert_output "$(printf 'r2\nr3\nr4')"
    TZ=UTC run -0 stream-sub -t timed -e -o @2023-11-14T22:16:00
    assert_output "$(printf 'r3\nr4')"
    # a range of times
    run -0 stream-sub -t timed -o @1700000060000..@1700000180000
    assert_output "$(printf 'r1\nr2')"
    # after every record: nothing to read
    run -3 stream-sub -t timed -e -o @2030-01-01T00:00Z
    run -0 stream-sub -t timed -e -o @1700000240000 -f '%T %D\n'
    assert_output '1700000240000 2023-11-14T22:17:20.000Z'
}

@test "-f writes every placeholder and escape" {
    echo '{"key":"k","value":"v\u0000w","timestamp":1700000000123,"headers":[["a","1"],["n",null]]}' |
        stream-pub -t fmt --json
    run -0 stream-sub -t fmt -e -f '%t|%p|%o|%k|%K|%V|%T|%D|%h|%%|\t|\x41\n'
    assert_output "$(printf 'fmt|0|0|k|1|3|1700000000123|2023-11-14T22:13:20.123Z|a=1,n|%%|\t|A')"
    stream-sub -t fmt -e -f '%v' | cmp - <(printf 'v\0w')
    run -0 stream-sub -t fmt -e --json
    assert_output '{"topic":"fmt","partition":0,"offset":0,"timestamp":1700000000123,"key":"k","key_encoding":"utf8","value":"v\u0000w","value_encoding":"utf8","headers":[["a","1"],["n",null]]}'
}

@test "two independent stream-subs each see every record" {
    seq 20000 >in
    stream-pub -t shared <in
    stream-sub -t shared -e >out1 3>&- &
    a=$!
    stream-sub -t shared -e >out2 3>&- &
    b=$!
    wait "$a"
    wait "$b"
    cmp in out1
    cmp in out2
}

@test "long poll: a follower waiting at the end gets a record published later" {
    echo old | stream-pub -t lp
    # follow mode (no -e) from the end; -v says when it is waiting there
    timeout 20 stream-sub -t lp -o end -c 1 -v >out 2>err 3>&- &
    sub=$!
    wait_for err 'at the end'
    [ ! -s out ]
    start=$(date +%s%N)
    echo new | stream-pub -t lp
    wait "$sub"
    elapsed_ms=$((($(date +%s%N) - start) / 1000000))
    [ "$(cat out)" = new ]
    echo "delivered after ${elapsed_ms} ms"
    [ "$elapsed_ms" -lt 5000 ]
}

@test "output to a file is flushed as soon as the consumer is idle" {
    echo first | stream-pub -t idle
    stream-sub -t idle >out 2>err 3>&- &
    sub=$!
    wait_for out first
    echo second | stream-pub -t idle
    wait_for out second
    kill -TERM "$sub"
    wait "$sub"
    [ ! -s err ]
    [ "$(cat out)" = "$(printf 'first\nsecond')" ]
}

@test "SIGINT and SIGTERM end a follower quietly with status 0" {
    seq 100 | stream-pub -t sig
    for s in INT TERM; do
        stream-sub -t sig >"out$s" 2>"err$s" 3>&- &
        sub=$!
        wait_for "out$s" '^100$'
        kill -"$s" "$sub"
        rc=0
        wait "$sub" || rc=$?
        [ "$rc" -eq 0 ] || { echo "SIG$s: status $rc"; return 1; }
        [ ! -s "err$s" ]
        seq 100 | cmp - "out$s"
    done
}

@test "a closed pipe (| head -1) ends stream-sub quietly with status 0" {
    seq 100000 | stream-pub -t pipe
    # bulk: the closed pipe shows as EPIPE on a write
    run -0 bash -c 'set -o pipefail; stream-sub -t pipe -e 2>err | head -1'
    assert_output 1
    [ ! -s err ]
    # following, nothing more to write: noticed while waiting
    run -0 bash -c 'set -o pipefail; timeout 10 stream-sub -t pipe -o -1 2>err | head -1'
    assert_output 100000
    [ ! -s err ]
}

@test "a write error (full disk) exits 1 naming standard output" {
    seq 1000 | stream-pub -t full
    run -1 --separate-stderr bash -c 'stream-sub -t full -e >/dev/full'
    [[ "$stderr" == "stream-sub: cannot write standard output: "* ]]
}

# ---- compressed batches --------------------------------------------------------------

@test "batches of every codec are read back without telling stream-sub the codec" {
    local z
    for z in none gzip snappy lz4 zstd; do
        seq 1 50 | sed "s/^/$z-/" | stream-pub -t codecs -z "$z"
    done
    run stream-sub -t codecs -e
    assert_success
    [ "${#lines[@]}" -eq 250 ]
    for z in none gzip snappy lz4 zstd; do
        [ "$(grep -c "^$z-" <<<"$output")" -eq 50 ]
        assert_line "$z-1"
        assert_line "$z-50"
    done
}

# Produces, over the raw protocol, one batch of 3 records whose attributes say
# codec $2 (1 gzip, 2 snappy, 3 lz4, 4 zstd) and whose records are garbage
# under a correct CRC, to topic $1 partition 0.
produce_garbled() {
    FAULTS=$BATS_TEST_DIRNAME/faults python3 - "$STREAM_BROKERS" "$1" "$2" <<'PY'
import os, struct, sys
sys.path.insert(0, os.environ["FAULTS"])
import faultclient as fc
target, topic, codec = sys.argv[1], sys.argv[2], int(sys.argv[3])
b = bytearray(fc.record_batch([b"x", b"y", b"z"]))
b[61:] = bytes((0xA5 ^ (i * 31)) & 0xFF for i in range(200))
struct.pack_into(">i", b, 8, len(b) - 12)        # batchLength
struct.pack_into(">h", b, 21, codec)             # attributes: the codec
struct.pack_into(">I", b, 17, fc.crc32c(bytes(b[21:])))
c = fc.Conn(target)
c.hello()
r = c.request({"op": "produce", "acks": -1, "topics": [{"name": topic, "partitions": [
    {"partition": 0, "records": bytes(b)}]}]})
err = r["topics"][0]["partitions"][0]["err"]
sys.exit("produce failed: %r" % r if err else 0)
PY
}

@test "a compressed batch that does not decompress: the records before it, one clear error, exit 1" {
    local codec n=1
    stream-topics create garbled -p 1
    for codec in gzip snappy lz4 zstd; do
        printf 'good-%s\n' "$codec" | stream-pub -t garbled -z "$codec"
        produce_garbled garbled "$n"
        n=$((n + 1))
    done
    # The first damaged batch (gzip, offsets 1..3) stops the read.
    run --separate-stderr stream-sub -t garbled -e
    assert_failure 1
    assert_output "good-gzip"
    [ "${#stderr_lines[@]}" -eq 1 ]
    [[ $stderr == *"topic 'garbled' partition 0 at offset 1: the gzip-compressed batch of offsets 1..3 cannot be decompressed"* ]]
    # Each codec's damaged batch is reported the same way: good-CODEC is at
    # offset 4k, its damaged batch at 4k+1..4k+3.
    local at=1
    for codec in snappy lz4 zstd; do
        at=$((at + 4))
        run --separate-stderr stream-sub -t garbled -o "$((at - 1))" -e
        assert_failure 1
        assert_output "good-$codec"
        [[ $stderr == *"the $codec-compressed batch of offsets $at..$((at + 2)) cannot be decompressed"* ]]
    done
}
