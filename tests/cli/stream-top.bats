#!/usr/bin/env bats
# stream-top against a real broker: -n/--json snapshots hold what the test
# produced and committed (records, partitions, a group's exact lag), rates
# move while a producer runs and not for an idle topic, text tables and the
# prefix filter, bad options and a dead broker; and the live view driven as
# a person would, in a real terminal (tmux): tab, sort, filter, pause,
# resize, quit.

bats_require_minimum_version 1.5.0

load helpers

setup() {
    start_broker
    cd "$BATS_TEST_TMPDIR"
    TMUX_SOCK=$BATS_TEST_TMPDIR/tmux.sock
}

teardown() {
    if [ -S "${TMUX_SOCK:-}" ]; then
        tmux -S "$TMUX_SOCK" kill-server 2>/dev/null || true
    fi
    local pid
    for pid in ${FEED_PID:-} ${PUB_PID:-}; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    stop_broker
}

@test "-n 1 --json: one snapshot with the topics, records and a group's exact lag" {
    stream-topics create orders --partitions 3
    seq 10 | stream-pub -t orders -p 1
    stream-topics group billing --reset-offsets --to-offset 4 --topic orders:1 --execute >/dev/null
    run -0 stream-top -n 1 -d 0.2 --json
    [ "${#lines[@]}" -eq 1 ]
    echo "$output" | jq -e '.interval_ms >= 150 and (.brokers | length) == 1'
    echo "$output" | jq -e '.brokers[0].connections >= 1 and .brokers[0].open_fds > 0'
    echo "$output" | jq -e '.topics[] | select(.name == "orders")
        | .partitions == 3 and .records_in == 10 and .size_bytes > 0 and .bytes_in_per_sec == 0'
    echo "$output" | jq -e '.groups[] | select(.group == "billing")
        | .lag_records == 6 and .members == 0 and .lag_trend_per_sec == 0'
}

@test "-n 2 prints two documents; rates move for a busy topic and stay 0 for an idle one" {
    stream-topics create idle
    stream-topics create busy
    # A producer that keeps writing while the samples are taken, fed from a
    # loop through a fifo so that teardown can stop each by its pid.
    mkfifo feed
    stream-pub -t busy --linger-ms 0 <feed >/dev/null 2>&1 3>&- &
    PUB_PID=$!
    (while :; do echo tick; sleep 0.02; done >feed) 3>&- &
    FEED_PID=$!
    # Wait until records arrive rather than sleeping a fixed time.
    for ((i = 0; i < 100; i++)); do
        n=$(stream-top -n 1 -d 0.1 --json | jq '.topics[] | select(.name == "busy") | .records_in')
        [ "${n:-0}" -gt 0 ] && break
        sleep 0.1
    done
    run -0 stream-top -n 2 -d 0.5 --json
    [ "${#lines[@]}" -eq 2 ]
    echo "${lines[1]}" | jq -e '.topics[] | select(.name == "busy")
        | .bytes_in_per_sec > 0 and .records_in_per_sec > 0'
    echo "${lines[1]}" | jq -e '.topics[] | select(.name == "idle") | .bytes_in_per_sec == 0'
    # Sorted by bytes in: the busy topic first.
    echo "${lines[1]}" | jq -e '.topics[0].name == "busy"'
}

@test "text snapshots show the three tables; --prefix keeps matching topics and groups" {
    stream-topics create pay.eu
    stream-topics create pay.us
    stream-topics create logs
    run -0 stream-top -n 1 -d 0.1
    [[ "$output" == *TOPIC*PARTITIONS*IN*OUT* ]]
    [[ "$output" == *GROUP*LAG* ]]
    [[ "$output" == *BROKER*CONNECTIONS* ]]
    [[ "$output" == *logs* ]]
    run -0 stream-top -n 1 -d 0.1 -p pay. --json
    echo "$output" | jq -e '[.topics[].name] == ["pay.eu", "pay.us"]'
    run -0 stream-top -n 1 -d 0.1 --prefix pay.
    [[ "$output" != *logs* ]]
    [[ "$output" == *pay.eu* ]]
}

@test "bad options exit 2 with a hint; an unreachable broker exits 1 naming it" {
    run -2 stream-top -d 0
    [[ "$output" == *"--delay"* ]]
    run -2 stream-top -d soon
    run -2 stream-top -n 0
    run -2 stream-top --frobnicate
    [[ "$output" == *"stream-top --help"* ]]
    run -2 stream-top extra
    run -1 stream-top -b 127.0.0.1:1 -n 1 --json
    [[ "$output" == *"127.0.0.1:1"* ]]
    [ -z "$(stream-top -b 127.0.0.1:1 -n 1 --json 2>/dev/null)" ]
}

# ---- the live view -----------------------------------------------------------------

tm() { tmux -S "$TMUX_SOCK" "$@"; }
screen() { tm capture-pane -t s -p; }

# wait_screen REGEX: polls the screen (up to 15 s) until a line matches.
wait_screen() {
    local i
    for ((i = 0; i < 150; i++)); do
        screen | grep -qE -- "$1" && return 0
        sleep 0.1
    done
    echo "screen never matched '$1':" >&2
    screen >&2
    return 1
}

# wait_gone REGEX: polls (up to 15 s) until no line matches.
wait_gone() {
    local i
    for ((i = 0; i < 150; i++)); do
        screen | grep -qE -- "$1" || return 0
        sleep 0.1
    done
    echo "screen still matches '$1':" >&2
    screen >&2
    return 1
}

@test "live: tab switches views, s sorts, / filters, space pauses, resize redraws, q quits" {
    stream-topics create alpha
    stream-topics create beta
    seq 5 | stream-pub -t beta
    stream-topics group billing --reset-offsets --to-earliest --topic beta --execute >/dev/null
    tm -f /dev/null new-session -d -s s -x 120 -y 30 \
        env PATH="$PATH" STREAM_BROKERS="$STREAM_BROKERS" TERM=xterm \
        ASAN_OPTIONS="${ASAN_OPTIONS:-}" \
        sh -c 'stream-top -d 0.2; echo $? >"$0"' "$BATS_TEST_TMPDIR/top.exit"
    tm set-option -t s remain-on-exit on >/dev/null
    wait_screen '^stream-top .*view topics +sort in'
    wait_screen '^TOPIC +PARTITIONS'
    wait_screen '^alpha '
    # tab: groups, with billing 5 behind; tab again: brokers.
    tm send-keys -t s Tab
    wait_screen '^GROUP +COORDINATOR'
    wait_screen '^billing +0 +0 +5 '
    tm send-keys -t s Tab
    wait_screen '^BROKER +CONNECTIONS'
    tm send-keys -t s Tab
    wait_screen '^TOPIC '
    # s: by bytes out, s: by name; S goes back.
    tm send-keys -t s s
    wait_screen 'sort out'
    tm send-keys -t s s
    wait_screen 'sort name'
    tm send-keys -t s S
    wait_screen 'sort out'
    # /: only topics starting with "be".
    tm send-keys -t s /
    wait_screen '^filter prefix:'
    tm send-keys -t s be Enter
    wait_screen 'filter be'
    wait_gone '^alpha '
    wait_screen '^beta '
    # space: paused, and back.
    tm send-keys -t s Space
    wait_screen '\[paused\]'
    tm send-keys -t s Space
    wait_gone '\[paused\]'
    # A narrower terminal: the view is drawn again within it.
    tm resize-window -t s -x 50 -y 12
    wait_screen '^beta '
    [ "$(screen | awk '{ if (length($0) > 50) n++ } END { print n + 0 }')" -eq 0 ]
    tm send-keys -t s q
    # The status, from a file: the screen is the terminal's to restore.
    for ((i = 0; i < 150; i++)); do
        [ -s top.exit ] && break
        sleep 0.1
    done
    [ "$(cat top.exit)" = 0 ]
}
