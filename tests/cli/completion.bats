#!/usr/bin/env bats
# Shell completion: completions/stream.bash sourced into bash, driven by
# COMP_WORDS/COMP_CWORD as bash drives it (options, subcommands, values,
# topic names from a live broker through the cache, and a dead or silent
# broker that must not make Tab wait); completions/_stream loaded by zsh
# when zsh is installed.

bats_require_minimum_version 1.5.0

load helpers

setup() {
    root=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
    start_broker
    cd "$BATS_TEST_TMPDIR"
    export XDG_CACHE_HOME=$BATS_TEST_TMPDIR/cache
    TMUX_SOCK=$BATS_TEST_TMPDIR/tmux.sock
}

teardown() {
    if [ -S "${TMUX_SOCK:-}" ]; then
        tmux -S "$TMUX_SOCK" kill-server 2>/dev/null || true
    fi
    if [ -n "${SILENT_PID:-}" ]; then
        kill "$SILENT_PID" 2>/dev/null || true
        wait "$SILENT_PID" 2>/dev/null || true
    fi
    stop_broker
}

# comp WORD...: completes the last word of the command line WORD... (split
# at COMP_WORDBREAKS like bash does: pass "127.0.0.1" ":" "9292" for an
# address) and prints the candidates, one per line, sorted.
comp() {
    bash -c '
        source "$0"
        COMP_WORDS=("$@")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        COMP_LINE="$*"
        COMP_POINT=${#COMP_LINE}
        _stream_complete
        printf "%s\n" "${COMPREPLY[@]}" | sort
    ' "$root/completions/stream.bash" "$@"
}

# lines WORD...: the words, one per line, sorted (what comp prints).
lines() { printf '%s\n' "$@" | sort; }

@test "the bash completion serves every program" {
    run bash -c 'source "$1"; for p in stream-broker stream-pub stream-sub stream-topics stream-shell stream-bench stream-proc stream-top; do complete -p "$p"; done' _ "$root/completions/stream.bash"
    assert_success
    assert_line "complete -F _stream_complete stream-sub"
    assert_line "complete -F _stream_complete stream-bench"
    [ "${#lines[@]}" -eq 8 ]
}

@test "bash: options of stream-sub, from its --help" {
    run comp stream-sub --to
    assert_output "--topic"
    run comp stream-sub --
    for opt in --brokers --count --exit --format --help --json --msgpack --offset \
        --partition --quiet --topic --unbuffered --verbose --version; do
        assert_line -- "$opt"
    done
    [ "$(sort <<<"$output" | uniq -d)" = "" ]
    run comp stream-sub -o ""
    assert_output "$(lines beginning end stored)"
    run comp stream-pub -z l
    assert_output lz4
    run comp stream-pub --acks ""
    assert_output "$(lines 0 1 all)"
    run comp stream-broker --log-level ""
    assert_output "$(lines debug error info warn)"
    run comp stream-sub -
    assert_line -t
    assert_line -o
    # Every long option every program lists in --help is offered.
    for p in stream-broker stream-pub stream-sub stream-topics stream-shell stream-bench stream-proc stream-top; do
        run comp "$p" -
        for opt in $("$p" --help | grep -oE -- '(^|[ ,[])--[a-z][a-z0-9-]*' | sed 's/^[ ,[]//' | sort -u); do
            grep -qx -- "$opt" <<<"$output" || { echo "$p: $opt not offered"; return 1; }
        done
    done
}

@test "bash: subcommands of stream-topics and modes of stream-bench" {
    run comp stream-topics ""
    for c in alter create delete describe list; do
        assert_line "$c"
    done
    # Each offered once, and each a command of its --help (not a word of a
    # description that runs on to the next line).
    [ "$(uniq -d <<<"$output")" = "" ]
    help=$(stream-topics --help)
    for c in $output; do
        grep -qE "^  $c( |\$)" <<<"$help" || { echo "'$c' is not a command"; return 1; }
    done
    run comp stream-topics de
    assert_output "$(lines delete describe)"
    run comp stream-topics --json -v al
    assert_output alter
    run comp stream-bench ""
    assert_output "$(lines consume e2e produce)"
    # Topic settings after -c, with '=' to type the value after.
    run comp stream-topics create t -c ret
    assert_output "$(lines retention.bytes= retention.ms=)"
    run comp stream-topics alter t --delete-config flush.
    assert_output "$(lines flush.mode flush.ms)"
    run comp stream-broker --set num.
    assert_output num.partitions=
}

@test "bash: the topic settings offered are the settings table's" {
    run stream-topics -b 127.0.0.1:1 create x -c nope=1
    assert_failure 2
    want=$(sed -n 's/.*topic settings: \(.*\))$/\1/p' <<<"$output" | tr -d ',' | tr ' ' '\n' | sort)
    [ -n "$want" ]
    got=$(bash -c 'source "$1"; printf "%s\n" $_stream_topic_settings | sort' _ "$root/completions/stream.bash")
    [ "$got" = "$want" ]
}

@test "bash: topic names come from a live broker, through the cache" {
    stream-topics create orders
    stream-topics create orders.dlq
    stream-topics create payments
    run comp stream-sub -t o
    assert_output "$(lines orders orders.dlq)"
    run comp stream-topics describe ""
    assert_output "$(lines orders orders.dlq payments)"
    run comp stream-topics describe orders p
    assert_output payments
    # create and list take no existing names.
    run comp stream-topics create ""
    assert_output ""
    # -b on the line (as bash splits it at ':') picks the broker and its cache.
    host=${STREAM_BROKERS%:*} port=${STREAM_BROKERS##*:}
    STREAM_BROKERS=127.0.0.1:1 run comp stream-pub -b "$host" : "$port" -t pay
    assert_output payments
    ls "$XDG_CACHE_HOME/stream/" | grep -q "names-topics-127.0.0.1_$port"

    # A fresh cache is used as it is; a stale one is used and refreshed in
    # the background, so a new topic shows up on a later Tab.
    stream-topics create orders.new
    run comp stream-sub -t orders.n
    assert_output ""
    export STREAM_COMPLETION_TTL=0
    run comp stream-sub -t orders.n
    for ((i = 0; i < 50; i++)); do
        run comp stream-sub -t orders.n
        [ "$output" = orders.new ] && break
        sleep 0.1
    done
    assert_output orders.new
}

@test "bash: group names come from a live broker" {
    stream-topics create orders
    stream-shell -c 'reset billing --to-earliest --topic orders --execute; reset audit --to-latest --topic orders --execute' >/dev/null 2>&1
    run comp stream-topics group ""
    assert_output "$(lines audit billing)"
    run comp stream-topics group b
    assert_output billing
    run comp stream-sub -g a
    assert_output audit
}

@test "bash: a dead or silent broker never makes Tab wait" {
    # Refused: at once, and not asked again before the TTL.
    SECONDS=0
    run comp stream-sub -b 127.0.0.1 : 1 -t ""
    assert_output ""
    run comp stream-topics -b 127.0.0.1 : 1 describe o
    assert_output ""
    [ "$SECONDS" -le 2 ]
    [ -f "$XDG_CACHE_HOME/stream/names-topics-127.0.0.1_1" ]

    # A broker that accepts connections and never answers: bounded by
    # stream-topics --timeout-ms and timeout(1).
    python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
print(s.getsockname()[1], flush=True)
conns = []
while True:
    c, _ = s.accept(); conns.append(c)
' >silent.port 3>&- &
    SILENT_PID=$!
    for ((i = 0; i < 50; i++)); do [ -s silent.port ] && break; sleep 0.1; done
    port=$(cat silent.port)
    start=$(date +%s%N)
    run comp stream-sub -b 127.0.0.1 : "$port" -t ""
    assert_output ""
    elapsed_ms=$((($(date +%s%N) - start) / 1000000))
    echo "silent broker: ${elapsed_ms} ms"
    [ "$elapsed_ms" -lt 3000 ]
    # The second Tab within the TTL does not ask again.
    start=$(date +%s%N)
    run comp stream-sub -b 127.0.0.1 : "$port" -t ""
    [ $((($(date +%s%N) - start) / 1000000)) -lt 1000 ]
}

@test "bash: stream-proc completes its options, then the command after --" {
    run comp stream-proc -o ""
    assert_output "$(lines beginning end)"
    run comp stream-proc --js
    assert_output "$(lines --json --json-out)"
    # After "--": a command name, then its arguments as files.
    run comp stream-proc -t in -g g --to out -- gre
    assert_line grep
    touch filter.jq
    run comp stream-proc -t in -g g --to out -- jq -f filter.j
    assert_output filter.jq
}

@test "bash: stream-shell completes its options and a script file" {
    touch setup.stream
    run comp stream-shell --kee
    assert_output --keep-going
    run comp stream-shell setup.s
    assert_output setup.stream
}

# ---- zsh --------------------------------------------------------------------------------

@test "zsh: _stream loads and is registered for every program" {
    if ! command -v zsh >/dev/null; then
        skip "zsh is not installed (apt-get install zsh to test completions/_stream)"
    fi
    run zsh -n "$root/completions/_stream"
    assert_success
    run zsh -f -c '
        fpath=("$1" $fpath)
        autoload -Uz compinit && compinit -u -d "$2"
        for p in stream-broker stream-pub stream-sub stream-topics stream-shell stream-bench stream-proc stream-top; do
            print -r -- "$p $_comps[$p]"
        done' _ "$root/completions" "$BATS_TEST_TMPDIR/zcompdump"
    assert_success
    assert_output "$(printf '%s _stream\n' stream-broker stream-pub stream-sub stream-topics stream-shell stream-bench stream-proc stream-top)"
    # Every option of every --help is in the zsh completion too.
    for p in stream-broker stream-pub stream-sub stream-topics stream-shell stream-bench stream-proc stream-top; do
        for opt in $("$p" --help | grep -oE -- '(^|[ ,[])--[a-z][a-z0-9-]*' | sed 's/^[ ,[]//' | sort -u); do
            grep -q -- "$opt" "$root/completions/_stream" || { echo "_stream: $p $opt missing"; return 1; }
        done
    done
}

@test "zsh: Tab completes an option and a topic name in a real terminal" {
    if ! command -v zsh >/dev/null; then
        skip "zsh is not installed (apt-get install zsh to test completions/_stream)"
    fi
    stream-topics create orders
    mkdir -p zdot
    cat >zdot/.zshrc <<EOF
fpath=("$root/completions" \$fpath)
autoload -Uz compinit && compinit -u -d "$BATS_TEST_TMPDIR/zdot/.zcompdump"
PS1='%% '
EOF
    tmux -S "$TMUX_SOCK" -f /dev/null new-session -d -s z -x 120 -y 20 \
        env ZDOTDIR="$BATS_TEST_TMPDIR/zdot" PATH="$PATH" STREAM_BROKERS="$STREAM_BROKERS" \
        XDG_CACHE_HOME="$XDG_CACHE_HOME" TERM=xterm zsh -i
    screen_has() {
        local i
        for ((i = 0; i < 100; i++)); do
            tmux -S "$TMUX_SOCK" capture-pane -t z -p | grep -qE -- "$1" && return 0
            sleep 0.1
        done
        tmux -S "$TMUX_SOCK" capture-pane -t z -p >&2
        return 1
    }
    screen_has '^% ?$'
    tmux -S "$TMUX_SOCK" send-keys -t z 'stream-sub --to' Tab
    screen_has '^% stream-sub --topic='
    tmux -S "$TMUX_SOCK" send-keys -t z 'ord' Tab
    screen_has '^% stream-sub --topic=orders ?$'
}
