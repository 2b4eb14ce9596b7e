#!/usr/bin/env bats
# stream-broker as a systemd service: the unit files pass systemd-analyze
# verify as installed, READY=1 comes only once the listeners accept
# connections, WATCHDOG=1 comes from the loop when WATCHDOG_USEC is set, log
# lines carry syslog priorities when stderr is the journal, and
# --log-format json writes one object per line.

load helpers

teardown() {
    stop_broker
}

free_port() {
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

@test "the unit files, as make install writes them, pass systemd-analyze verify" {
    command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed (make deps)"
    root=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
    prefix=$BATS_TEST_TMPDIR/prefix
    run make -s -C "$root" install PREFIX="$prefix"
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
    units=$prefix/lib/systemd/system
    grep -q "^ExecStart=$prefix/bin/stream-broker " "$units/stream-broker.service"
    grep -q '^Type=notify$' "$units/stream-broker.service"
    grep -q '^Type=notify$' "$units/stream-broker@.service"
    # A template is verified through an instance of it.
    cp "$units/stream-broker@.service" "$BATS_TEST_TMPDIR/stream-broker@b1.service"
    # Documentation= is checked with man(1): let it find the installed pages.
    run env MANPATH="$prefix/share/man" systemd-analyze verify \
        "$units/stream-broker.service" "$BATS_TEST_TMPDIR/stream-broker@b1.service"
    echo "$output"
    [ "$status" -eq 0 ]
    # Unknown keys are only warnings: any output is a failure.
    [ -z "$output" ]
    run make -s -C "$root" uninstall PREFIX="$prefix"
    [ "$status" -eq 0 ]
    [ ! -e "$units/stream-broker.service" ] && [ ! -e "$units/stream-broker@.service" ]
}

@test "READY=1 is sent once every listener accepts; WATCHDOG=1 at half of WATCHDOG_USEC" {
    port=$(free_port) kport=$(free_port) mport=$(free_port)
    run /usr/bin/python3 "$BATS_TEST_DIRNAME/sd_notify_listen.py" 200000 2 -- \
        stream-broker --listen "127.0.0.1:$port" --kafka-listen "127.0.0.1:$kport" \
        --metrics-listen "127.0.0.1:$mport" --data-dir "$BATS_TEST_TMPDIR/data"
    echo "$output"
    [ "$status" -eq 0 ]
    assert_line "ready connected=3"
    assert_line "exit=0"
    # 2 s at one ping per 100 ms is ~20; a loaded machine may delay some.
    pings=$(sed -n 's/^watchdog=//p' <<<"$output")
    [ "$pings" -ge 5 ]
}

@test "no WATCHDOG_USEC: READY=1 and no watchdog pings" {
    port=$(free_port)
    run /usr/bin/python3 "$BATS_TEST_DIRNAME/sd_notify_listen.py" 0 1 -- \
        stream-broker --listen "127.0.0.1:$port" --data-dir "$BATS_TEST_TMPDIR/data"
    echo "$output"
    [ "$status" -eq 0 ]
    assert_line "ready connected=1"
    assert_line "watchdog=0"
    assert_line "exit=0"
}

@test "stderr is the journal (JOURNAL_STREAM matches it): lines start with their syslog priority" {
    # start_broker appends the broker's stderr to this file: name it.
    : >"$BATS_TEST_TMPDIR/broker.log"
    JOURNAL_STREAM=$(stat -c '%d:%i' "$BATS_TEST_TMPDIR/broker.log") start_broker
    stop_broker
    grep -q '^<6>[0-9T:.-]*Z INFO listening on ' "$BATS_TEST_TMPDIR/broker.log"
    # Every line has a prefix.
    ! grep -v '^<[0-7]>' "$BATS_TEST_TMPDIR/broker.log"
}

@test "under journald the program's own errors carry <3> too" {
    err=$BATS_TEST_TMPDIR/err
    : >"$err"
    rc=0
    JOURNAL_STREAM=$(stat -c '%d:%i' "$err") stream-broker --config "$BATS_TEST_TMPDIR/nope.conf" \
        --data-dir "$BATS_TEST_TMPDIR/d" 2>>"$err" || rc=$?
    cat "$err"
    [ "$rc" -eq 1 ]
    grep -qx '<3>stream-broker: cannot read config file .*nope.conf: no such file' "$err"
}

@test "JOURNAL_STREAM naming another file: no priority prefixes" {
    other=$BATS_TEST_TMPDIR/other
    : >"$other"
    JOURNAL_STREAM=$(stat -c '%d:%i' "$other") start_broker
    stop_broker
    grep -q '^[0-9T:.-]*Z INFO listening on ' "$BROKER_LOG"
    ! grep -q '^<' "$BROKER_LOG"
}

@test "--log-format json: every line is one object with time, level and message" {
    start_broker --log-format json
    stop_broker
    [ -s "$BROKER_LOG" ]
    run jq -e -c 'select((.time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$")) and
                         (.level | IN("ERROR","WARN","INFO","DEBUG")) and
                         (.message | type == "string")) | .message' "$BROKER_LOG"
    [ "$status" -eq 0 ] || { cat "$BROKER_LOG"; return 1; }
    # As many objects as lines: no line was skipped or failed to parse.
    [ "${#lines[@]}" -eq "$(wc -l <"$BROKER_LOG")" ]
    assert_line --partial '"listening on '
    assert_line '"shut down cleanly"'
}

@test "--log-format with a bad value is a usage error" {
    run stream-broker --log-format xml --data-dir "$BATS_TEST_TMPDIR/d"
    [ "$status" -eq 2 ]
    [[ "$output" == *"--log-format: expected text or json, got 'xml'"* ]]
}
