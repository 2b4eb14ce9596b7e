#!/usr/bin/env bats
# The progress line of long command-line work (libstream/tools/progress.c):
# on stderr only, by default only when stderr is a terminal (checked in a
# real one, tmux), forced with --progress into a file, never on stdout, and
# nothing with --no-progress or when stderr is not a terminal.

load helpers

setup() {
    start_broker
    cd "$BATS_TEST_TMPDIR"
    TMUX_SOCK=$BATS_TEST_TMPDIR/tmux.sock
    seq 1 200000 >input
}

teardown() {
    if [ -S "${TMUX_SOCK:-}" ]; then
        tmux -S "$TMUX_SOCK" kill-server 2>/dev/null || true
    fi
    stop_broker
}

# The last progress line drawn in file $1 ('\r' separates redraws).
last_line() { tr '\r' '\n' <"$1" | grep -v '^ *$' | tail -1; }

@test "stream-pub --progress < FILE: the final line has every record, 100% of the size, on stderr only" {
    stream-pub -t p --progress <input >out 2>err
    [ ! -s out ]
    line=$(last_line err)
    echo "$line"
    [[ "$line" =~ ^stream-pub:\ 200,000\ records\ +1\.2\ MiB\ /\ 1\.2\ MiB\ +100%\ .*rec/s.*\ in\ [0-9]+:[0-9]{2}\ *$ ]]
    # One newline, at the end: the line was redrawn in place.
    [ "$(wc -l <err)" -eq 1 ]
    [ "$(stream-sub -t p -e | wc -l)" -eq 200000 ]
}

@test "stream-pub with stderr not a terminal, or --no-progress: no progress line" {
    stream-pub -t p <input >out 2>err
    [ ! -s out ] && [ ! -s err ]
    stream-pub -t p --progress --no-progress <input 2>err
    [ ! -s err ]
    stream-pub -t p -q --progress <input 2>err
    # --progress is explicit: it wins over -q's default.
    [ -s err ]
}

@test "stream-pub from a pipe: records and bytes, no percentage" {
    cat input | stream-pub -t p --progress 2>err
    line=$(last_line err)
    [[ "$line" == "stream-pub: 200,000 records  1.2 MiB  "* ]]
    [[ "$line" != *%* ]]
}

@test "stream-sub -e --progress > FILE: records and bytes on stderr, the file holds only records" {
    stream-pub -t p <input
    stream-sub -t p -e --progress >got 2>err
    cmp input got
    line=$(last_line err)
    echo "$line"
    [[ "$line" == "stream-sub: 200,000 records  1.2 MiB  "*" in "* ]]
    stream-sub -t p -e >got 2>err
    [ ! -s err ]
}

@test "in a terminal: stream-pub < FILE and stream-sub -e > FILE show the line by themselves" {
    tmux -S "$TMUX_SOCK" -f /dev/null new-session -d -s s -x 150 -y 10 \
        env PATH="$PATH" STREAM_BROKERS="$STREAM_BROKERS" ASAN_OPTIONS="${ASAN_OPTIONS:-}" \
        sh -c 'stream-pub -t p <input && stream-sub -t p -e >got; echo "[exit $?]"; sleep 60'
    for ((i = 0; i < 300; i++)); do
        tmux -S "$TMUX_SOCK" capture-pane -t s -p | grep -q '^\[exit' && break
        sleep 0.1
    done
    screen=$(tmux -S "$TMUX_SOCK" capture-pane -t s -p)
    echo "$screen"
    grep -qx '\[exit 0\]' <<<"$screen"
    grep -qE '^stream-pub: 200,000 records  1\.2 MiB / 1\.2 MiB  100% .* in [0-9]+:[0-9]{2}' <<<"$screen"
    grep -qE '^stream-sub: 200,000 records  1\.2 MiB .* in [0-9]+:[0-9]{2}' <<<"$screen"
    cmp input got
}
