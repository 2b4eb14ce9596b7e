#!/usr/bin/env bats
# stream-proc end to end against a real broker, with real filters as the
# command (grep, jq -c, awk, tr, cat): outputs keep their records' keys and
# per-key order, -e stops at the end, two runs of one group share the
# partitions, and a command that fails, hangs, writes garbage or an
# over-long line stops the run with a clear message and nothing committed
# past the last good batch. The kill -9 test runs tests/soak/proc-soak.sh
# with 2 kills under load (`make soak-proc` runs 25), with its checker.

bats_require_minimum_version 1.5.0

load helpers

setup() {
    start_broker --set group.min.session.timeout.ms=500
    cd "$BATS_TEST_TMPDIR"
    PIDS=()
}

teardown() {
    local p
    for p in "${PIDS[@]}"; do
        kill -KILL "$p" 2>/dev/null || true
    done
    stop_broker
}

# publish TOPIC N [FIRST]: records "kK|kK:I" for I in FIRST.., key kK (K = I mod 5).
publish() {
    local topic=$1 n=$2 first=${3:-1}
    seq "$first" $((first + n - 1)) | awk '{ k = "k" ($1 % 5); print k "|" k ":" $1 }' |
        stream-pub -t "$topic" -K '|'
}

# wait_group GROUP JQ [SECONDS]: until `stream-topics group GROUP --json` satisfies JQ.
wait_group() {
    local group=$1 expr=$2 secs=${3:-20} i
    for ((i = 0; i < secs * 20; i++)); do
        stream-topics group "$group" --json 2>/dev/null | jq -e "$expr" >/dev/null && return 0
        sleep 0.05
    done
    echo "group $group never satisfied: $expr" >&2
    stream-topics group "$group" >&2
    return 1
}

# gone PID: the process has ended (or is a zombie) within 5 s.
gone() {
    local i state
    for ((i = 0; i < 100; i++)); do
        state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 0
        [ -z "$state" ] || [ "$state" = Z ] && return 0
        sleep 0.05
    done
    echo "process $1 still runs" >&2
    return 1
}

# committed GROUP: "partition offset" of every committed offset, sorted.
committed() {
    stream-topics group "$1" --json | jq -r '.offsets[] | "\(.partition) \(.offset)"' | sort
}

@test "grep as the command: outputs keep their keys and per-key order; offsets committed" {
    stream-topics create in out -p 3
    publish in 300
    run -0 stream-proc -t in -g g --to out -e -- grep 7
    [ -z "$output" ] # quiet on success
    # Exactly the records grep keeps, each under its own key, in order per key.
    stream-sub -t out -e -f '%p %o %k %v\n' | sort -k1,1n -k2,2n >out.txt
    [ "$(wc -l <out.txt)" -eq "$(seq 300 | grep -c 7)" ]
    awk '{ split($4, a, ":"); if (a[1] != $3) { print "key " $3 " for " $4; exit 1 } }' out.txt
    awk '{ split($4, a, ":"); if (a[2] + 0 <= last[$3]) { print "order: " $0; exit 1 }
           last[$3] = a[2] + 0 }' out.txt
    diff <(cut -d' ' -f4 out.txt | cut -d: -f2 | sort -n) <(seq 300 | grep 7)
    wait_group g '.total_lag == 0 and (.offsets | length) == 3'
}

@test "jq -c with --json and --json-out: the command sees and sets key, headers, partition" {
    stream-topics create in out -p 3
    printf '%s\n' 'a|{"n":1}' 'b|{"n":2}' 'a|{"n":3}' | stream-pub -t in -K '|' -H src=test
    run -0 stream-proc -t in -g g --to out -e --json --json-out \
        -- jq -c '.value |= (fromjson | .n * 10 | tostring)'
    # Key, headers and partition came through the envelope unchanged.
    run -0 stream-sub -t out -e --json
    diff <(jq -c '[.key, .value, .headers, .partition]' <<<"$output" | sort) \
        <(stream-sub -t in -e --json |
            jq -c '[.key, (.value | fromjson | .n * 10 | tostring), .headers, .partition]' | sort)
    # An envelope naming a partition puts its record there; no key, no key.
    stream-topics create out2 -p 3
    run -0 stream-proc -t in -g g2 --to out2 -e --json --json-out -- jq -c '{value: .key, partition: 2}'
    run -0 stream-sub -t out2 -e -f '%p %K %v\n'
    [ "$(sort <<<"$output")" = "$(printf '2 -1 a\n2 -1 a\n2 -1 b')" ]
}

@test "awk and tr as the command; --no-key publishes without keys" {
    stream-topics create in up n -p 2
    publish in 50
    run -0 stream-proc -t in -g g --to up -e -- tr a-z A-Z
    run -0 stream-sub -t up -e -f '%k %v\n'
    [ "${#lines[@]}" -eq 50 ]
    for l in "${lines[@]}"; do [[ $l =~ ^k([0-4])\ K([0-4]):[0-9]+$ ]] && [ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ]; done
    # awk buffers its output and drops what it does not print.
    run -0 stream-proc -t in -g g2 --to n -e --no-key -- awk -F: '$2 % 10 == 0 { print $2 }'
    run -0 stream-sub -t n -e -f '%K %v\n'
    [ "$(sort -k2n <<<"$output")" = "$(seq 10 10 50 | sed 's/^/-1 /')" ]
}

@test "-e: nothing to process is exit status 3; a topic still being written to ends" {
    stream-topics create in out -p 2
    run -3 stream-proc -t in -g g --to out -e -- cat
    publish in 200
    # A producer keeps writing while stream-proc -e runs: it stops at the
    # end offsets it saw, processes at least what was there, and commits.
    (for i in $(seq 201 100 5000); do publish in 100 "$i"; done) 3>&- &
    PIDS+=($!)
    run -0 timeout 60 stream-proc -t in -g g --to out -e -- cat
    [ "$(stream-sub -t out -e | wc -l)" -ge 200 ]
    wait_group g '(.offsets | map(.offset) | add) >= 200'
}

@test "two runs with one group share the partitions, each record processed once" {
    stream-topics create in out -p 4
    # One member, then a second: the first hands it two partitions (at its
    # next heartbeat) before anything is published.
    for m in 1 2; do
        stream-proc -t in -g g --to out -v --commit-interval-ms 100 -- cat 2>"m$m.err" 3>&- &
        PIDS+=($!)
        wait_group g ".state == \"stable\" and (.members | length) == $m and
            all(.members[]; ([.assignment[].partitions[]] | length) == 4 / $m)"
    done
    for p in 0 1 2 3; do seq $((p * 100 + 1)) $((p * 100 + 100)) | stream-pub -t in -p "$p"; done
    wait_group g '.total_lag == 0 and (.offsets | length) == 4'
    for p in "${PIDS[@]}"; do kill -TERM "$p"; done
    for p in "${PIDS[@]}"; do wait "$p"; done
    PIDS=()
    run -0 stream-sub -t out -e
    [ "${#lines[@]}" -eq 400 ]
    [ -z "$(sort <<<"$output" | uniq -d)" ]
    # Both did some of the work.
    for m in 1 2; do grep -E ": [1-9][0-9]* records in" "m$m.err" || { cat m1.err m2.err; false; }; done
}

@test "a command that fails: exit 1, a clear message, nothing committed past the last good batch" {
    stream-topics create in out -p 1
    seq 1 10 | sed 's/^7$/boom/' | stream-pub -t in
    run -1 stream-proc -t in -g g --to out -e --batch 3 --no-key \
        -- awk '/boom/ { exit 3 } { print }'
    [[ $output == *"'awk' exited with status 3 on a batch of 3 records from partition 0 offset 6"* ]]
    [[ $output == *"offsets are committed up to the last batch"* ]]
    # The two good batches are out and committed; the failed one is not.
    [ "$(stream-sub -t out -e | tr '\n' ' ')" = "1 2 3 4 5 6 " ]
    [ "$(committed g)" = "0 6" ]
    # Run again with a command that copes: it goes on from the failed batch.
    run -0 stream-proc -t in -g g --to out -e --batch 3 -- cat
    [ "$(stream-sub -t out -e | tr '\n' ' ')" = "1 2 3 4 5 6 boom 8 9 10 " ]
    [ "$(committed g)" = "0 10" ]
    # A command that cannot be started.
    run -1 stream-proc -t in -g g3 --to out -e -- /no/such/filter
    [[ $output == *"cannot run '/no/such/filter': No such file or directory"* ]]
}

@test "a command that hangs is killed after --timeout, with what it started; nothing committed" {
    stream-topics create in out -p 1
    publish in 5
    SECONDS=0
    run -1 stream-proc -t in -g g --to out -e --timeout 1 \
        -- sh -c 'cat >/dev/null; sleep 30 & echo $! >hung.pid; wait'
    [ "$SECONDS" -lt 20 ]
    [[ $output == *"'sh' did not finish a batch of 5 records from partition 0 offset 0 within 1000 ms (--timeout); it was killed"* ]]
    # What the command started is gone too (killed with its process group).
    [ -s hung.pid ]
    gone "$(cat hung.pid)"
    [ -z "$(stream-sub -t out -e)" ]
    [ "$(committed g | grep -v ' 0$' || true)" = "" ]
}

@test "SIGTERM stops a run in progress at once: exit 0, its batch left for the next run" {
    stream-topics create in out -p 1
    publish in 5
    stream-proc -t in -g g --to out -- sh -c 'cat; touch started; sleep 30' 3>&- &
    local pid=$!
    PIDS+=("$pid")
    for ((i = 0; i < 200; i++)); do [ -e started ] && break; sleep 0.05; done
    [ -e started ]
    SECONDS=0
    kill -TERM "$pid"
    wait "$pid"
    [ "$SECONDS" -lt 10 ]
    [ -z "$(stream-sub -t out -e 2>/dev/null)" ]
    [ "$(committed g | grep -v ' 0$' || true)" = "" ]
    run -0 stream-proc -t in -g g --to out -e -- cat
    [ "$(stream-sub -t out -e | wc -l)" -eq 5 ]
    [ "$(committed g)" = "0 5" ]
}

@test "garbage and over-long lines stop the run; nothing of the batch published or committed" {
    stream-topics create in out -p 1
    publish in 20
    # --json-out: a line that is not a JSON envelope.
    run -1 stream-proc -t in -g g --to out -e --json-out -- cat
    [[ $output == *"'cat' wrote output line 1 that is not a record: "* ]]
    # A line longer than the record limit (all 20 values, 91 bytes, on one line).
    run -1 stream-proc -t in -g g --to out -e --no-key --max-record-bytes 50 -- tr -d '\n'
    [[ $output == *"'tr' wrote a line longer than 50 bytes (the record limit, --max-record-bytes)"* ]]
    [ -z "$(stream-sub -t out -e)" ]
    [ "$(committed g | grep -v ' 0$' || true)" = "" ]
    # Within the limit the same command is fine: one output.
    run -0 stream-proc -t in -g g --to out -e --no-key -- tr -d '\n'
    [ "$(stream-sub -t out -e | wc -l)" -eq 1 ]
}

@test "usage errors: exit 2 with what is missing" {
    run -2 stream-proc -t in --to out -- cat
    [[ $output == *"no consumer group given (-g GROUP)"* ]]
    run -2 stream-proc -t in -g g -- cat
    [[ $output == *"no output topic given (--to OUT)"* ]]
    run -2 stream-proc -t in -g g --to out
    [[ $output == *"no command given"* ]]
    run -2 stream-proc -t in -g g --to in -- cat
    [[ $output == *"name the same topic"* ]]
    run -2 stream-proc -t in -g g --to out -o 5 -- cat
    run -1 stream-proc -t nope -g g --to out -e -- cat
    [[ $output == *"unknown topic 'nope'"* ]]
}

@test "kill -9 under load, 2 times, then the checker (make soak-proc: 25)" {
    stop_broker # the soak runs its own
    build=$(dirname "$(command -v stream-proc)")
    run -0 "$BATS_TEST_DIRNAME/../soak/proc-soak.sh" "$build" 2
    echo "$output"
    [[ ${lines[0]} == "ok 1 - stream-proc kill -9 soak: 2 kills"* ]]
}
