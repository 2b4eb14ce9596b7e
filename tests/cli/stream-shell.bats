#!/usr/bin/env bats
# stream-shell: scripts (-c, FILE, stdin) with exact output, stopping at the
# first failure or going on with -k, JSON, statuses; and the REPL driven as
# a person would, in a real terminal (tmux): Tab completion of a topic, a
# sub stopped with Ctrl-C, history recalled after a restart, a broker that
# goes away and comes back.

bats_require_minimum_version 1.5.0

load helpers

setup() {
    start_broker
    cd "$BATS_TEST_TMPDIR"
    export XDG_STATE_HOME=$BATS_TEST_TMPDIR/state
    TMUX_SOCK=$BATS_TEST_TMPDIR/tmux.sock
}

teardown() {
    if [ -S "${TMUX_SOCK:-}" ]; then
        tmux -S "$TMUX_SOCK" kill-server 2>/dev/null || true
    fi
    stop_broker
}

# ---- scripts -------------------------------------------------------------------------

@test "a script creates, publishes, reads back and describes, with exact output" {
    cat >demo.txt <<'EOF'
# a topic, three records, read back, described
create orders --partitions 1
pub orders alice=apple
pub orders bob="pear tart"
pub orders =x=y      # a leading '=' means no key
set record-format '%o %k=%v\n'
sub orders count 3
describe orders
EOF
    run --separate-stderr stream-shell demo.txt
    assert_success
    [ -z "$stderr" ]
    assert_output "$(cat <<'EOF'
created topic 'orders'
partition 0 offset 0
partition 0 offset 1
partition 0 offset 2
0 alice=apple
1 bob=pear tart
2 =x=y
Topic orders: 1 partition, 229 B

PARTITION  LEADER  EPOCH  REPLICAS  ISR  LOG-START  HIGH-WATERMARK  END-OFFSET   SIZE
        0       0      0  0         0            0               3           3  229 B

No configs set on the topic (all at their defaults).
EOF
)"
    # The same script from standard input, and as -c with ';'.
    stream-shell -c 'delete orders' >/dev/null
    run --separate-stderr stream-shell <demo.txt
    assert_success
    assert_line --index 4 '0 alice=apple'
    run --separate-stderr stream-shell -c "set record-format '%k:%v\n'; sub orders from 1 count 2"
    assert_success
    assert_output "$(printf 'bob:pear tart\n:x=y')"
}

@test "-c runs commands separated by ';' and newlines" {
    run --separate-stderr stream-shell -c "create a; create b
topics"
    assert_success
    assert_output "$(cat <<'EOF'
created topic 'a'
created topic 'b'
NAME  PARTITIONS  INTERNAL
a              1  no
b              1  no
EOF
)"
}

@test "a failing command stops the script with its status; -k goes on" {
    printf 'create t\ndescribe nope\ndelete t\n' >fail.txt
    run --separate-stderr stream-shell fail.txt
    assert_failure 4
    assert_output "created topic 't'"
    [ "$stderr" = "stream-shell: fail.txt:2: cannot describe topic 'nope': unknown topic" ]
    # delete t never ran.
    run stream-topics list
    assert_output t

    run --separate-stderr stream-shell -k fail.txt
    assert_failure 4
    assert_output "deleted topic 't'"
    [ "$stderr" = "$(printf "%s\n" "stream-shell: fail.txt:1: cannot create topic 't': topic already exists" \
        "stream-shell: fail.txt:2: cannot describe topic 'nope': unknown topic")" ]
    run stream-topics list
    assert_output ""

    # Within one line too; the status is that of the last failure.
    run -2 --separate-stderr stream-shell -c 'frob; create t'
    [ "$stderr" = "stream-shell: unknown command 'frob' (help lists the commands)" ]
    assert_output ""
    run -5 --separate-stderr stream-shell -k -c 'frob; create t; create t'
    assert_output "created topic 't'"
}

@test "scripts print no prompt and no terminal escapes, only command output" {
    stream-topics create orders
    # stdin is a pipe: a script, not a session.
    run --separate-stderr bash -c 'printf "topics\nhelp quit\n" | stream-shell'
    assert_success
    assert_output "$(printf 'NAME    PARTITIONS  INTERNAL\norders           1  no\nUsage: quit\nLeaves the shell.')"
    [ -z "$stderr" ]
    [[ "$output$stderr" != *$'\033'* ]]
    [[ "$output$stderr" != *'stream 127'* ]]
    # Even with a terminal-ish TERM and no NO_COLOR.
    run --separate-stderr env TERM=xterm-256color stream-shell -c 'describe nope'
    ! grep -q $'\033' <<<"$output$stderr"
}

@test "set format json (and --json) make every command print JSON" {
    run --separate-stderr stream-shell -c 'set format json; create j -p 2; pub j -p 1 k=v; topics'
    assert_success
    assert_output "$(cat <<'EOF'
{"results":[{"topic":"j","status":"created","error":null}]}
{"topic":"j","records":[{"partition":1,"offset":0,"error":null}]}
{"topics":[{"name":"j","internal":false,"partition_count":2}]}
EOF
)"
    run --separate-stderr stream-shell --json -c 'sub j -e'
    assert_success
    [[ "$output" == '{"topic":"j","partition":1,"offset":0,"timestamp":'*',"key":"k","key_encoding":"utf8","value":"v","value_encoding":"utf8","headers":[]}' ]]
    run --separate-stderr stream-shell -c 'offsets j --json'
    assert_output '{"topic":"j","time":null,"partitions":[{"partition":0,"log_start_offset":0,"high_watermark":0,"records":0,"offset_at_time":null,"timestamp":null,"error":null},{"partition":1,"log_start_offset":0,"high_watermark":1,"records":1,"offset_at_time":null,"timestamp":null,"error":null}]}'
    run --separate-stderr stream-shell -c 'set format json; set'
    assert_output '{"format":"json","record-format":"%v\\n","acks":"all","partition":"any"}'
}

@test "pub takes keys, headers, a partition and the session's acks; offsets shows them" {
    stream-topics create p -p 3
    run --separate-stderr stream-shell -c 'set acks 1; set partition 2; pub p -H src=shell a b; pub p -p 0 c'
    assert_success
    assert_output "$(printf 'partition 2 offset 0\npartition 2 offset 1\npartition 0 offset 0')"
    run stream-sub -t p -p 2 -e -f '%k|%v|%h\n'
    assert_output "$(printf '|a|src=shell\n|b|src=shell')"
    run --separate-stderr stream-shell -c 'offsets p'
    assert_output "$(cat <<'EOF'
PARTITION  LOG-START  HIGH-WATERMARK  RECORDS
        0          0               1        1
        1          0               0        0
        2          0               2        2
EOF
)"
    run --separate-stderr stream-shell -c 'offsets p @-1h'
    assert_line --index 0 --regexp '^PARTITION +LOG-START +HIGH-WATERMARK +RECORDS +OFFSET-AT-TIME +TIMESTAMP$'
    assert_line --index 3 --regexp '^ +2 +0 +2 +2 +0 +20[0-9-]+T[0-9:.]+Z$'
    run -4 --separate-stderr stream-shell -c 'offsets nope'
    [ "$stderr" = "stream-shell: unknown topic 'nope'" ]
}

@test "sub with an end that finds nothing exits 3; sub of an unknown topic fails" {
    stream-topics create empty
    run -3 --separate-stderr stream-shell -c 'sub empty -e'
    assert_output ""
    [ "$stderr" = "stream-shell: nothing to read in 'empty'" ]
    run -1 --separate-stderr stream-shell -c 'sub nope -e'
    [[ "$stderr" == *"unknown topic 'nope'"*"(topics lists the topics there are)" ]]
}

@test "topic commands print what stream-topics prints, JSON and statuses included" {
    run --separate-stderr stream-shell -c 'create t -p 2 -c retention.ms=60000; alter t -c segment.ms=3600000 --delete-config retention.ms'
    assert_success
    assert_output "$(printf "created topic 't'\naltered topic 't'")"
    for args in "describe t --json" "describe t --all-configs --json" "describe t nope --json" \
        "describe t" "list --json"; do
        want=$(stream-topics $args 2>/dev/null) || true
        shell_args=${args/list/topics}
        got=$(stream-shell -k -c "$shell_args" 2>/dev/null) || true
        [ "$got" = "$want" ] || { echo "stream-shell -c '$shell_args' differs from stream-topics $args"; return 1; }
    done
    run -4 --separate-stderr stream-shell -c 'delete nope --if-exists --json; delete nope'
    assert_output '{"results":[{"topic":"nope","status":"absent","error":null}]}'
    [ "$stderr" = "stream-shell: cannot delete topic 'nope': unknown topic" ]
    run -2 --separate-stderr stream-shell -c 'alter t'
    [[ "$stderr" == *"alter needs -p N, -c KEY=VALUE or --delete-config KEY"* ]]
    run -2 --separate-stderr stream-shell -c 'create x -c retention.ms=soon'
    [[ "$stderr" == *"retention.ms"* ]]
}

@test "connect switches brokers, and keeps the old one when the new one is down" {
    run --separate-stderr stream-shell -k -c "connect 127.0.0.1:1; create kept; connect $STREAM_BROKERS; topics"
    assert_failure 1
    [ "$stderr" = "stream-shell: cannot connect to 127.0.0.1:1: connection refused (is stream-broker running?)" ]
    assert_output "$(printf "created topic 'kept'\nNAME  PARTITIONS  INTERNAL\nkept           1  no")"
    run -2 --separate-stderr stream-shell -c 'connect nope:notaport'
    run -2 --separate-stderr stream-shell -c 'connect a:1 b:2'
}

@test "Ctrl-C ends a script after the running command, with status 130" {
    stream-topics create live
    stream-shell -c 'sub live; topics' >out.txt 2>err.txt &
    local pid=$!
    echo one | stream-pub -t live
    for ((i = 0; i < 100; i++)); do grep -q one out.txt && break; sleep 0.1; done
    kill -INT "$pid"
    local st=0
    wait "$pid" || st=$?
    [ "$st" -eq 130 ]
    [ "$(cat out.txt)" = one ] # topics never ran
}

@test "groups, group and reset show and move a group's committed offsets" {
    stream-topics create orders -p 2
    stream-shell -c 'pub orders -p 0 a b c; pub orders -p 1 d' >/dev/null
    run -4 --separate-stderr stream-shell -c 'group billing'
    [ "$stderr" = "stream-shell: cannot describe group 'billing': unknown group" ]
    # A dry run prints the plan and changes nothing.
    run --separate-stderr stream-shell -c 'reset billing --to-offset 1 --topic orders'
    assert_success
    assert_output "$(cat <<'EOF'
TOPIC   PARTITION  CURRENT  NEW
orders          0        -    1
orders          1        -    1
EOF
)"
    [ "$stderr" = "stream-shell: warning: dry run: nothing changed (add --execute to commit these offsets)" ]
    run -4 stream-shell -c 'group billing'
    # --execute commits it.
    run --separate-stderr stream-shell -c 'reset billing --to-offset 1 --topic orders --execute; groups'
    assert_success
    [ -z "$stderr" ]
    assert_output "$(cat <<'EOF'
TOPIC   PARTITION  CURRENT  NEW
orders          0        -    1
orders          1        -    1
GROUP    STATE  MEMBERS  GENERATION
billing  empty        0           0
EOF
)"
    run --separate-stderr stream-shell -c 'group billing'
    assert_success
    assert_line --index 0 --regexp '^Group billing: empty, generation 0, 0 members, lag 2 records, oldest unconsumed [0-9]+s old$'
    assert_line 'No members.'
    assert_line --regexp '^TOPIC +PARTITION +MEMBER +COMMITTED +LOG-END +LAG +LAG-TIME$'
    assert_line --regexp '^orders +0 +- +1 +3 +2 +[0-9]+s$'
    assert_line --regexp '^orders +1 +- +1 +1 +0 +0s$'
    run --separate-stderr stream-shell --json -c 'group billing'
    [[ "$output" == '{"group":"billing","state":"empty","generation":0,"total_lag":2,'* ]]
    run --separate-stderr stream-shell -c 'reset billing --shift-by -1 --execute --json'
    assert_output '{"group":"billing","executed":true,"partitions":[{"topic":"orders","partition":0,"current":1,"new_offset":0},{"topic":"orders","partition":1,"current":1,"new_offset":0}]}'
    # Bad requests are usage errors.
    run -2 stream-shell -c 'reset billing'
    run -2 stream-shell -c 'reset billing --to-earliest --to-latest'
    run -2 stream-shell -c 'reset billing --to-datetime yesterday-ish'
}

@test "an unreachable broker fails each command quickly, naming it; the script stops" {
    stop_broker
    SECONDS=0
    run --separate-stderr stream-shell -b 127.0.0.1:1 -c 'topics; help'
    assert_failure 1
    assert_output ""
    [ "$stderr" = "stream-shell: cannot connect to 127.0.0.1:1: connection refused (is stream-broker running?)" ]
    # Commands that need no broker work without one.
    run -0 stream-shell -b 127.0.0.1:1 -c 'help set; set acks 0'
    [ "$SECONDS" -lt 10 ]
    run -2 stream-shell -b 'nope:notaport' -c help
    assert_output --partial "Try 'stream-shell --help'"
}

@test "lines continue inside quotes and after a backslash; comments are skipped" {
    stream-topics create c
    printf "pub c 'two\nlines' \\\\\n  one\n# nothing\n" >cont.txt
    run --separate-stderr stream-shell cont.txt
    assert_success
    assert_output "$(printf 'partition 0 offset 0\npartition 0 offset 1')"
    run stream-sub -t c -e -f '[%v]\n'
    assert_output "$(printf '[two\nlines]\n[one]')"
    run -2 --separate-stderr stream-shell -c "pub c 'open"
    [ "$stderr" = "stream-shell: unterminated ' quote" ]
}

@test "bad options: exit 2 with a hint; -c and FILE together are refused" {
    run -2 stream-shell --no-such-flag
    assert_output --partial "Try 'stream-shell --help'"
    run -2 stream-shell -c topics script.txt
    assert_output --partial 'cannot be combined'
    run -2 stream-shell a b
    run -1 stream-shell /nonexistent/script
    assert_output --partial 'cannot open /nonexistent/script'
}

# ---- the REPL in a real terminal ----------------------------------------------------------

# tm ARGS...: tmux on this test's private socket.
tm() { tmux -S "$TMUX_SOCK" "$@"; }

# repl: starts stream-shell in a fresh 120x30 tmux session "s". The pane
# stays after the shell exits, so its last words can still be read.
repl() {
    tm -f /dev/null new-session -d -s s -x 120 -y 30 \
        env PATH="$PATH" STREAM_BROKERS="$STREAM_BROKERS" XDG_STATE_HOME="$XDG_STATE_HOME" \
        TERM=xterm NO_COLOR=1 ASAN_OPTIONS="${ASAN_OPTIONS:-}" \
        sh -c 'trap : INT; stream-shell "$@"; echo "[exit $?]"' sh "$@"
    tm set-option -t s remain-on-exit on >/dev/null
    wait_screen 'stream 127\.0\.0\.1:[0-9]+> ?$'
}

screen() { tm capture-pane -t s -p; }

# wait_screen REGEX: polls the screen (up to 10 s) until a line matches.
wait_screen() {
    local i
    for ((i = 0; i < 100; i++)); do
        screen | grep -qE -- "$1" && return 0
        sleep 0.1
    done
    echo "screen never matched '$1':" >&2
    screen >&2
    return 1
}

# wait_exit: polls (up to 10 s) until the shell has exited, with status 0
# (repl prints "[exit STATUS]" after it: tmux itself is slow to tell; the
# sh around it catches SIGINT, which stream-shell gets as it would alone).
wait_exit() {
    local i
    for ((i = 0; i < 100; i++)); do
        if screen | grep -qE '^\[exit [0-9]+\]$'; then
            screen | grep -qx '\[exit 0\]' && return 0
            echo "stream-shell failed:" >&2
            screen >&2
            return 1
        fi
        sleep 0.1
    done
    echo "stream-shell did not exit:" >&2
    screen >&2
    return 1
}

# wait_prompts N: polls (up to 10 s) until the screen shows N prompt lines.
wait_prompts() {
    local i n
    for ((i = 0; i < 100; i++)); do
        n=$(screen | grep -cE '^stream 127\.0\.0\.1:[0-9]+> ?' || true)
        [ "$n" -eq "$1" ] && return 0
        sleep 0.1
    done
    echo "expected $1 prompts, screen shows $n:" >&2
    screen >&2
    return 1
}

@test "repl: Tab completes a topic name from the broker" {
    stream-topics create payments.eu
    stream-topics create orders
    repl
    tm send-keys -t s 'describe pay' Tab
    wait_screen '> describe payments\.eu ?$'
    tm send-keys -t s Enter
    wait_screen '^Topic payments\.eu: 1 partition'
    # Commands and options complete too.
    tm send-keys -t s 'des' Tab 'ord' Tab '--all-c' Tab Enter
    wait_screen '> describe orders --all-configs ?$'
    wait_screen '^flush\.mode +group +default$'
    # Group names too.
    stream-shell -c 'reset billing --to-earliest --topic orders --execute' >/dev/null 2>&1
    tm send-keys -t s 'group bil' Tab
    wait_screen '> group billing ?$'
    tm send-keys -t s Enter
    wait_screen '^Group billing: empty'
    tm send-keys -t s 'quit' Enter
    wait_exit
}

@test "repl: Ctrl-C stops a sub and returns to the prompt, not out of the shell" {
    stream-topics create live
    repl
    tm send-keys -t s 'sub live' Enter
    wait_screen '> sub live$'
    echo first | stream-pub -t live
    wait_screen '^first$'
    echo second | stream-pub -t live
    wait_screen '^second$'
    tm send-keys -t s C-c
    wait_screen '^\^C'
    wait_prompts 2
    # Still alive, still connected.
    tm send-keys -t s 'offsets live' Enter
    wait_screen '^ +0 +0 +2 +2$'
    # Ctrl-C at the prompt drops the line being typed.
    tm send-keys -t s 'delete live'
    wait_screen '> delete live$'
    tm send-keys -t s C-c
    wait_screen '> delete live\^C$'
    tm send-keys -t s 'topics' Enter
    wait_screen '^live +1 +no$'
    tm send-keys -t s C-d
    wait_exit
    ! screen | grep -q 'Sanitizer'
}

@test "repl: history is recalled with Up after a restart" {
    stream-topics create hist
    repl
    tm send-keys -t s 'offsets hist' Enter
    wait_screen '^ +0 +0 +0 +0$'
    tm send-keys -t s ' help' Enter # a leading blank keeps it out of the history
    wait_screen 'Commands'
    tm send-keys -t s 'quit' Enter
    wait_exit
    tm kill-server
    [ -f "$XDG_STATE_HOME/stream/history" ]
    [ "$(stat -c %a "$XDG_STATE_HOME/stream/history")" = 600 ]

    repl
    tm send-keys -t s Up
    wait_screen '> quit$'
    tm send-keys -t s Up
    wait_screen '> offsets hist$'
    tm send-keys -t s Enter
    wait_screen '^ +0 +0 +0 +0$'
}

@test "repl: colour on a terminal, none with NO_COLOR" {
    for nc in "" 1; do
        tm -f /dev/null new-session -d -s c -x 100 -y 10 \
            env PATH="$PATH" STREAM_BROKERS="$STREAM_BROKERS" XDG_STATE_HOME="$XDG_STATE_HOME" \
            TERM=xterm NO_COLOR="$nc" stream-shell
        for ((i = 0; i < 100; i++)); do
            tm capture-pane -t c -p | grep -qE '^stream 127' && break
            sleep 0.1
        done
        prompt=$(tm capture-pane -t c -p -e | grep -E 'stream .*127')
        if [ -z "$nc" ]; then
            [[ "$prompt" == *$'\033['* ]] || { echo "no colour: $prompt"; return 1; }
        else
            [[ "$prompt" != *$'\033['* ]] || { echo "colour with NO_COLOR: $prompt"; return 1; }
        fi
        tm kill-session -t c
    done
}

@test "repl: a lost connection is reported and retried, not fatal" {
    stream-topics create keep
    repl
    local addr=$STREAM_BROKERS
    stop_broker
    tm send-keys -t s 'topics' Enter
    wait_screen "cannot connect to $addr"
    wait_screen "$addr \\(disconnected\\)> ?$"
    # The broker comes back on the same address; the next command reconnects.
    start_broker --listen "$addr"
    [ "$STREAM_BROKERS" = "$addr" ]
    tm send-keys -t s 'topics' Enter
    wait_screen "reconnected to $addr"
    wait_screen '^keep +1 +no$'
    wait_screen "stream $addr> ?$"
}
