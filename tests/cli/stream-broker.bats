#!/usr/bin/env bats
# stream-broker: options, start-up messages, refusals, clean stop and restart.

load helpers

teardown() {
    stop_broker
}

# The worked examples of share/doc/protocol.md (10.1 hello, 10.3 produce with
# acks=-1 to "greetings", auto-creating it), as hex.
HELLO_HEX=0000002f84a26f70a568656c6c6fa2696401a776657273696f6e01a6636c69656e74b073747265616d2d7075622f302e312e30
PRODUCE_HEX=000000a785a26f70a770726f64756365a2696402a461636b73ffaa74696d656f75745f6d73cd7530a6746f7069637391\
82a46e616d65a96772656574696e6773aa706172746974696f6e739182a9706172746974696f6e00a77265636f726473\
c44900000000000000000000003dffffffff02e641a44b0000000000000000018bcfe568000000018bcfe56800ffffff\
ffffffffffffffffffffff0000000116000000010a68656c6c6f00
# 10.4: the produce response the broker must send back, byte for byte.
PRODUCE_RESPONSE_HEX=0000005e83a2696402a365727200a6746f706963739182a46e616d65a96772656574696e6773aa706172746974696f6e\
739184a9706172746974696f6e00a365727200ab626173655f6f666673657400b06c6f675f73746172745f6f66667365\
7400

# Reads one response frame from fd 5 and prints it as hex (length included).
read_frame_hex() {
    local hdr len
    hdr=$(dd bs=1 count=4 status=none <&5 | od -An -tu1)
    [ -n "$hdr" ] || return 1
    set -- $hdr
    len=$(( ($1 << 24) | ($2 << 16) | ($3 << 8) | $4 ))
    printf '%02x%02x%02x%02x' "$1" "$2" "$3" "$4"
    dd bs=1 count="$len" status=none <&5 | od -An -tx1 -v | tr -d ' \n'
}

# Sends hex bytes to fd 5.
send_hex() {
    printf "$(sed 's/../\\x&/g' <<<"$1")" >&5
}

# Says hello and produces the spec's example batch to "greetings".
produce_example() {
    local host=${STREAM_BROKERS%:*} port=${STREAM_BROKERS##*:}
    exec 5<>"/dev/tcp/$host/$port"
    send_hex "$HELLO_HEX"
    send_hex "$PRODUCE_HEX"
    # A broker that never answers must fail the test, not hang it.
    export -f read_frame_hex
    hello_response=$(timeout 10 bash -c read_frame_hex)
    produce_response=$(timeout 10 bash -c read_frame_hex)
    exec 5>&-
}

# Waits up to 10 s for `pattern` to show up in file $1.
wait_for_line() {
    local i
    for ((i = 0; i < 200; i++)); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "no line matching '$2' in $1:" >&2
    cat "$1" >&2
    return 1
}

@test "--help prints a usage that fits a screen and exits 0" {
    run stream-broker --help
    assert_success
    assert_line --partial 'Usage: stream-broker'
    assert_output --partial '--listen'
    assert_output --partial '--data-dir'
    assert_output --partial '--set'
    [ "${#lines[@]}" -le 24 ]
    while IFS= read -r line; do [ "${#line}" -le 80 ]; done <<<"$output"
}

@test "--version prints the name and a version" {
    run stream-broker --version
    assert_success
    assert_output --regexp '^stream-broker [0-9]+\.[0-9]+\.[0-9]+'
}

@test "an unknown flag exits 2 with a usage hint" {
    run stream-broker --no-such-flag
    assert_failure 2
    assert_output --partial "unknown option '--no-such-flag'"
    assert_output --partial "Try 'stream-broker --help'"
}

@test "a flag missing its argument exits 2" {
    run stream-broker --listen
    assert_failure 2
    assert_output --partial 'needs an argument'
}

@test "an unknown --set key exits 2 naming the key" {
    run stream-broker --data-dir "$BATS_TEST_TMPDIR/d" --set no.such.key=1
    assert_failure 2
    assert_output --partial 'no.such.key'
    assert_output --partial "Try 'stream-broker --help'"
    [ ! -e "$BATS_TEST_TMPDIR/d" ]
}

@test "a --set value out of range or without = exits 2" {
    run stream-broker --set max.connections=0
    assert_failure 2
    assert_output --partial 'max.connections'
    run stream-broker --set retention.ms
    assert_failure 2
    assert_output --partial 'KEY=VALUE'
}

@test "a missing --config file exits 1 naming it" {
    run stream-broker --config "$BATS_TEST_TMPDIR/nope.conf"
    assert_failure 1
    assert_output --partial "$BATS_TEST_TMPDIR/nope.conf"
}

@test "a bad line in --config exits 1 naming file and line" {
    printf '# comment\nnum.partitions=3\nbogus line\n' >"$BATS_TEST_TMPDIR/b.conf"
    run stream-broker --config "$BATS_TEST_TMPDIR/b.conf"
    assert_failure 1
    assert_output --partial "b.conf:3"
}

@test "an invalid --listen address exits with a clear message" {
    run stream-broker --data-dir "$BATS_TEST_TMPDIR/d" --listen nonsense
    assert_failure
    assert_output --partial 'nonsense'
}

@test "an unwritable data dir exits 1 with a clear message" {
    [ "$(id -u)" -ne 0 ] || skip "root can write anywhere"
    mkdir -p "$BATS_TEST_TMPDIR/ro"
    chmod 500 "$BATS_TEST_TMPDIR/ro"
    run stream-broker --listen 127.0.0.1:0 --data-dir "$BATS_TEST_TMPDIR/ro/data"
    chmod 700 "$BATS_TEST_TMPDIR/ro"
    assert_failure 1
    assert_output --partial "$BATS_TEST_TMPDIR/ro/data"
}

@test "a data dir that is a file exits 1 with a clear message" {
    # Works as root too: no permission can make a regular file a directory.
    echo x >"$BATS_TEST_TMPDIR/file"
    run stream-broker --listen 127.0.0.1:0 --data-dir "$BATS_TEST_TMPDIR/file/data"
    assert_failure 1
    assert_output --partial "$BATS_TEST_TMPDIR/file"
}

@test "zero-config start prints its data dir and listen address" {
    # The default port may be taken on a shared machine: only the data dir
    # default is tested here, the address comes from --listen.
    export HOME=$BATS_TEST_TMPDIR/home XDG_DATA_HOME=$BATS_TEST_TMPDIR/home/.xdg
    mkdir -p "$HOME"
    local log=$BATS_TEST_TMPDIR/zero.log
    stream-broker --listen 127.0.0.1:0 </dev/null >"$log" 2>&1 3>&- &
    BROKER_PID=$!
    wait_for_line "$log" 'listening on 127\.0\.0\.1:[0-9]'
    stop_broker
    run cat "$log"
    assert_output --partial "data dir $XDG_DATA_HOME/stream"
    assert_output --regexp '[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{3}Z INFO '
    [ -d "$XDG_DATA_HOME/stream" ]
}

@test "with nothing set it listens on 127.0.0.1:9292" {
    if (exec 9<>/dev/tcp/127.0.0.1/9292) 2>/dev/null; then
        skip "port 9292 is in use here"
    fi
    export HOME=$BATS_TEST_TMPDIR/home XDG_DATA_HOME=$BATS_TEST_TMPDIR/home/.xdg
    mkdir -p "$HOME"
    local log=$BATS_TEST_TMPDIR/zero.log
    stream-broker </dev/null >"$log" 2>&1 3>&- &
    BROKER_PID=$!
    wait_for_line "$log" 'listening on 127.0.0.1:9292'
}

@test "SIGTERM stops the broker with status 0 and a clean-shutdown message" {
    start_broker
    local rc=0
    stop_broker || rc=$?
    [ "$rc" -eq 0 ]
    run cat "$BROKER_LOG"
    assert_output --partial 'shut down cleanly'
}

@test "SIGINT stops the broker with status 0" {
    start_broker
    local pid=$BROKER_PID rc=0
    BROKER_PID=
    kill -INT "$pid"
    wait "$pid" || rc=$?
    [ "$rc" -eq 0 ]
}

@test "the spec's worked produce example gets the spec's response" {
    start_broker
    produce_example
    # 10.2's shape: {id: 1, err: 0, version: 1, ...}
    [[ "$hello_response" == ????????87a2696401a365727200a776657273696f6e01* ]]
    [ "$produce_response" = "$PRODUCE_RESPONSE_HEX" ]
    run cat "$BROKER_LOG"
    assert_output --partial 'auto-created topic greetings'
}

@test "a restart after a clean stop runs no recovery scan" {
    start_broker --set num.partitions=2
    produce_example
    [ "$produce_response" = "$PRODUCE_RESPONSE_HEX" ]
    local rc=0
    stop_broker || rc=$?
    [ "$rc" -eq 0 ]
    : >"$BROKER_LOG"
    start_broker
    run cat "$BROKER_LOG"
    assert_output --partial 'opened 1 topics, 2 partitions: clean shutdown, no recovery scan'
    refute_output --partial 'recovered'
}

@test "a restart after kill -9 reports the recovery" {
    start_broker
    produce_example
    kill_broker
    : >"$BROKER_LOG"
    start_broker
    run cat "$BROKER_LOG"
    assert_output --partial 'recovered'
    refute_output --partial 'no recovery scan'
}

@test "a second broker on the same data dir fails clearly" {
    start_broker
    run stream-broker --listen 127.0.0.1:0 --data-dir "$BROKER_DIR"
    assert_failure 1
    assert_output --partial "$BROKER_DIR"
    # The first one is unharmed.
    kill -0 "$BROKER_PID"
}

@test "a port in use fails clearly" {
    start_broker
    run stream-broker --listen "$STREAM_BROKERS" --data-dir "$BATS_TEST_TMPDIR/other"
    assert_failure 1
    assert_output --partial "cannot listen on $STREAM_BROKERS"
    assert_output --partial 'in use'
}

@test "--ready-file holds the bound address" {
    start_broker
    [[ "$STREAM_BROKERS" =~ ^127\.0\.0\.1:[0-9]+$ ]]
    [ "${STREAM_BROKERS##*:}" -ne 0 ]
    run cat "$BROKER_LOG"
    assert_output --partial "listening on $STREAM_BROKERS"
}

@test "--list-settings prints every setting with its default" {
    run stream-broker --list-settings
    assert_success
    assert_line 'listen=127.0.0.1:9292'
    assert_line 'socket.request.max.bytes=104857600'
}

@test "--config then --set: the flag wins" {
    printf 'listen=127.0.0.1:1\n' >"$BATS_TEST_TMPDIR/c.conf"
    start_broker --config "$BATS_TEST_TMPDIR/c.conf"
    # start_broker's --listen comes before --config on the command line,
    # yet flags win over the file wherever they appear.
    [[ "$STREAM_BROKERS" != "127.0.0.1:1" ]]
}
