#!/usr/bin/env bats
# Consumer groups end to end: stream-sub -g members sharing a topic (each
# record once; a killed member's partitions move and only uncommitted
# records come twice; a clean leave hands over with no duplicates), groups
# side by side, committed offsets across a broker crash, and stream-topics
# groups / group NAME / --reset-offsets / --delete with their exit codes.
#
# Sessions are short here (the broker allows 500 ms, members ask for
# 1500 ms) so failure detection takes about a second. With another test
# file beside it on two cores, a member's heartbeat now and then came late
# enough to move partitions mid-test, so tests/run-tests.sh runs it alone:
# run-tests: alone

bats_require_minimum_version 1.5.0

load helpers

SESSION=1500

setup() {
    start_broker --set group.min.session.timeout.ms=500 --set offsets.topic.num.partitions=3
    cd "$BATS_TEST_TMPDIR"
    MEMBERS=()
}

teardown() {
    local p
    for p in "${MEMBERS[@]}"; do
        kill -KILL "$p" 2>/dev/null || true
    done
    stop_broker
}

# member NAME GROUP [ARGS...]: a following stream-sub -g in the background,
# printing "partition offset" lines to NAME.out; its pid in MEMBER_PID.
member() {
    local name=$1 group=$2
    shift 2
    stream-sub -g "$group" -t t -f '%p %o\n' --session-timeout-ms "$SESSION" \
        --commit-interval-ms 200 "$@" >"$name.out" 2>"$name.err" 3>&- &
    MEMBER_PID=$!
    MEMBERS+=("$MEMBER_PID")
}

# publish N [FIRST]: N keyed records (spread over the partitions by key).
publish() {
    local n=$1 first=${2:-1}
    seq "$first" $((first + n - 1)) | sed 's/.*/k&:v&/' | stream-pub -t t -K :
}

# wait_group GROUP JQ [SECONDS]: until `stream-topics group GROUP --json`
# satisfies the jq expression.
wait_group() {
    local group=$1 expr=$2 secs=${3:-15} i
    for ((i = 0; i < secs * 20; i++)); do
        stream-topics group "$group" --json 2>/dev/null | jq -e "$expr" >/dev/null && return 0
        sleep 0.05
    done
    echo "group $group never satisfied: $expr" >&2
    stream-topics group "$group" >&2
    return 1
}

# wait_lines N FILES...: until the files hold N distinct lines together.
wait_lines() {
    local n=$1 i
    shift
    for ((i = 0; i < 400; i++)); do
        [ "$(cat "$@" | sort -u | wc -l)" -ge "$n" ] && return 0
        sleep 0.05
    done
    echo "only $(cat "$@" | sort -u | wc -l) of $n distinct records in $*" >&2
    return 1
}

# stop_member PID: SIGTERM, and its status must be 0.
stop_member() {
    local rc=0
    kill -TERM "$1"
    wait "$1" || rc=$?
    [ "$rc" -eq 0 ] || { echo "member $1 exited with $rc" >&2; return 1; }
}

# Every "partition offset" the topic holds, one per line, sorted.
all_records() {
    stream-topics describe t --json |
        jq -r '.topics[0].partitions[] | . as $p | range(0; $p.high_watermark) | "\($p.partition) \(.)"' |
        sort
}

STABLE3='.state == "stable" and (.members | length) == 3 and
    all(.members[]; ([.assignment[].partitions[]] | length) == 2)'

@test "a topic that gains partitions: the group's members are given them and read what lands there" {
    stream-topics create t -p 2
    member m1 g
    member m2 g
    wait_group g '.state == "stable" and (.members | length) == 2 and
        all(.members[]; ([.assignment[].partitions[]] | length) == 1)'
    stream-topics alter t --partitions 6
    wait_group g '.state == "stable" and ([.members[].assignment[].partitions[]] | sort) == [0,1,2,3,4,5]'
    publish 300
    wait_lines 300 m1.out m2.out
    run all_records
    [ "$(cat m1.out m2.out | sort)" = "$output" ]
    # Records went to every partition, the new ones included.
    [ "$(cut -d' ' -f1 m1.out m2.out | sort -u | tr '\n' ' ')" = "0 1 2 3 4 5 " ]
    for p in "${MEMBERS[@]}"; do stop_member "$p"; done
}

@test "three members on six partitions: each gets two, every record is printed once" {
    stream-topics create t -p 6
    for i in 1 2 3; do member "m$i" g; done
    wait_group g "$STABLE3"
    publish 600
    wait_lines 600 m1.out m2.out m3.out
    for p in "${MEMBERS[@]}"; do stop_member "$p"; done
    [ "$(cat m*.out | wc -l)" -eq 600 ]
    [ -z "$(cat m*.out | sort | uniq -d)" ]
    diff <(cat m*.out | sort) <(all_records)
    local n
    for i in 1 2 3; do
        n=$(cut -d' ' -f1 "m$i.out" | sort -u | wc -l)
        # Seen once in four clean-clone checks (session 10): a member read
        # from other than 2 partitions after the group was stable 2+2+2.
        # The coordinator's generation lines say what moved them.
        [ "$n" -eq 2 ] || { echo "m$i read from $n partitions; its stderr:"; cat "m$i.err"; grep 'group g' "$BROKER_LOG"; false; }
        [ ! -s "m$i.err" ]
    done
    # Leaving committed everything: no lag, no members.
    run -0 stream-topics group g --json
    jq -e '.state == "empty" and .total_lag == 0 and (.offsets | length) == 6' <<<"$output"
}

@test "kill -9: the partitions move within the session timeout, only uncommitted records come twice" {
    stream-topics create t -p 6
    # m1 joins first, so it is the first member describe lists.
    member m1 g
    wait_group g '(.members | length) == 1'
    for i in 2 3; do member "m$i" g; done
    pids=("${MEMBERS[@]}")
    wait_group g "$STABLE3"
    publish 300
    wait_lines 300 m1.out m2.out m3.out
    # Mid-stream: records keep coming while m1 dies.
    (for b in 0 1 2 3 4 5 6 7 8 9; do publish 30 $((301 + b * 30)); sleep 0.1; done) 3>&- &
    producer=$!
    sleep 0.3
    victim=$(stream-topics group g --json | jq -r '.members[0].member_id')
    kill -KILL "${pids[0]}"
    killed_at=$(date +%s%N)
    # What the dead member had committed (nobody else holds its partitions
    # until its session times out).
    stream-topics group g --json |
        jq -r --arg m "$victim" '.offsets[] | select(.member_id == $m) | "\(.partition) \(.offset)"' \
            >dead-commits
    [ "$(wc -l <dead-commits)" -eq 2 ]
    wait_group g '.state == "stable" and (.members | length) == 2 and
        ([.members[].assignment[].partitions[]] | length) == 6'
    moved_ms=$((($(date +%s%N) - killed_at) / 1000000))
    echo "# partitions moved after ${moved_ms} ms" >&3
    [ "$moved_ms" -lt $((SESSION + 2500)) ]
    wait "$producer"
    wait_lines 600 m1.out m2.out m3.out
    stop_member "${pids[1]}"
    stop_member "${pids[2]}"
    [ -s m1.out ]
    # Every record at least once ...
    diff <(cat m*.out | sort -u) <(all_records)
    # ... and a record twice only in a dead member's partition, at or after
    # its last commit.
    cat m*.out | sort | uniq -d >dups
    while read -r p o; do
        c=$(awk -v p="$p" '$1 == p { print $2 }' dead-commits)
        [ -n "$c" ] || { echo "duplicate $p $o in a partition the dead member did not hold"; false; }
        [ "$o" -ge "$c" ] || { echo "duplicate $p $o before the commit $c"; false; }
    done <dups
    echo "# $(wc -l <dups) duplicates, all after the dead member's last commit" >&3
}

@test "a member that leaves on SIGTERM hands over at once with no duplicates" {
    # A long session: only the leave can make the handover quick. The other
    # member learns of it at its next heartbeat (a third of the session).
    SESSION=6000
    stream-topics create t -p 4
    member m1 g
    m1=$MEMBER_PID
    member m2 g
    m2=$MEMBER_PID
    wait_group g '.state == "stable" and (.members | length) == 2 and
        all(.members[]; ([.assignment[].partitions[]] | length) == 2)'
    publish 200
    wait_lines 200 m1.out m2.out
    (for b in 0 1 2 3 4 5 6 7 8 9; do publish 20 $((201 + b * 20)); sleep 0.1; done) 3>&- &
    producer=$!
    sleep 0.3
    left_at=$(date +%s%N)
    stop_member "$m1"
    wait_group g '(.members | length) == 1 and
        ([.members[].assignment[].partitions[]] | length) == 4'
    moved_ms=$((($(date +%s%N) - left_at) / 1000000))
    echo "# partitions moved ${moved_ms} ms after SIGTERM" >&3
    [ "$moved_ms" -lt $((SESSION * 2 / 3)) ]
    wait "$producer"
    wait_lines 400 m1.out m2.out
    stop_member "$m2"
    [ -z "$(cat m1.out m2.out | sort | uniq -d)" ]
    diff <(cat m1.out m2.out | sort) <(all_records)
}

@test "a member joining mid-stream takes partitions over with no duplicates" {
    stream-topics create t -p 4
    member m1 g
    m1=$MEMBER_PID
    wait_group g '.state == "stable" and (.members | length) == 1'
    publish 200
    (for b in $(seq 0 19); do publish 20 $((201 + b * 20)); sleep 0.05; done) 3>&- &
    producer=$!
    sleep 0.2
    # Revoked partitions are written out and committed before they move.
    member m2 g
    m2=$MEMBER_PID
    wait_group g '.state == "stable" and (.members | length) == 2 and
        all(.members[]; ([.assignment[].partitions[]] | length) == 2)'
    wait "$producer"
    wait_lines 600 m1.out m2.out
    stop_member "$m1"
    stop_member "$m2"
    [ -s m2.out ]
    [ -z "$(cat m1.out m2.out | sort | uniq -d)" ]
    diff <(cat m1.out m2.out | sort) <(all_records)
}

@test "two groups each receive every record" {
    stream-topics create t -p 3
    publish 90
    run -0 stream-sub -g a -t t -e -f '%p %o\n'
    [ "${#lines[@]}" -eq 90 ]
    diff <(sort <<<"$output") <(all_records)
    run -0 stream-sub -g b -t t -e -f '%p %o\n'
    diff <(sort <<<"$output") <(all_records)
    # A group that has read everything has nothing left: exit 3.
    run -3 stream-sub -g a -t t -e
}

@test "-e in group mode ends at the end offsets of assignment time while records keep coming" {
    stream-topics create t -p 2
    publish 100
    (for b in $(seq 0 49); do publish 10 $((101 + b * 10)); done) 3>&- &
    producer=$!
    run -0 timeout 30 stream-sub -g g -t t -e -f '%p %o\n'
    kill "$producer" 2>/dev/null || true
    wait "$producer" || true
    [ "${#lines[@]}" -ge 100 ]
    [ -z "$(sort <<<"$output" | uniq -d)" ]
}

@test "committed offsets survive a broker kill -9; a restarted member goes on from them" {
    stream-topics create t -p 3
    publish 60
    run -0 stream-sub -g g -t t -e -f '%p %o\n'
    [ "${#lines[@]}" -eq 60 ]
    all_records >old
    kill_broker
    start_broker --set group.min.session.timeout.ms=500
    run -0 stream-topics group g --json
    jq -e '.total_lag == 0 and ([.offsets[].offset] | add) == 60' <<<"$output"
    publish 30 61
    run -0 stream-sub -g g -t t -e -f '%p %o\n'
    # Exactly the records published after the crash.
    diff <(sort <<<"$output") <(comm -13 old <(all_records))
    [ "${#lines[@]}" -eq 30 ]
}

@test "--reset-offsets: the dry run changes nothing, --execute moves the group, lag adds up" {
    stream-topics create t -p 3
    publish 90
    run -0 stream-sub -g g -t t -e -f '%p %o\n'
    run -0 stream-topics group g --json
    before=$output
    jq -e '.total_lag == 0' <<<"$before"

    run -0 --separate-stderr stream-topics group g --reset-offsets --to-earliest
    assert_line --regexp '^TOPIC +PARTITION +CURRENT +NEW$'
    [[ "$stderr" == *"dry run"* ]]
    run -0 stream-topics group g --json
    [ "$output" = "$before" ]

    run -0 --separate-stderr stream-topics group g --reset-offsets --shift-by -5 --topic t:0,1 --json
    jq -e '.executed == false and (.partitions | length) == 2 and
        all(.partitions[]; .new_offset == .current - 5)' <<<"$output"
    run -0 --separate-stderr stream-topics group g --reset-offsets --shift-by -5 --topic t:0,1 \
        --execute --json
    jq -e '.executed == true' <<<"$output"
    run -0 stream-topics group g --json
    jq -e '.total_lag == 10 and
        all(.offsets[]; .lag == .log_end_offset - .offset) and
        ([.offsets[].lag] | add) == .total_lag and
        (.oldest_unconsumed_timestamp | type) == "number"' <<<"$output"
    run -0 stream-topics group g
    assert_output --partial 'lag 10 records'
    assert_line --regexp '^TOPIC +PARTITION +MEMBER +COMMITTED +LOG-END +LAG +LAG-TIME$'
    # The group reads exactly what the reset put back.
    run -0 stream-sub -g g -t t -e
    [ "${#lines[@]}" -eq 10 ]

    run -0 stream-topics group g --reset-offsets --to-offset 2 --topic t:2 --execute
    run -0 stream-topics group g --reset-offsets --to-datetime -1h --execute
    run -0 stream-topics group g --json
    jq -e '.total_lag == 90' <<<"$output"
    run -0 stream-topics group g --reset-offsets --to-latest --execute
    run -0 stream-topics group g --json
    jq -e '.total_lag == 0' <<<"$output"
}

@test "a reset of a group with members is refused clearly; its dry run works" {
    stream-topics create t -p 2
    publish 10
    member m1 g
    wait_group g '.state == "stable" and (.members | length) == 1'
    run -0 stream-topics group g --reset-offsets --to-earliest
    run -1 --separate-stderr stream-topics group g --reset-offsets --to-earliest --execute
    [[ "$stderr" == *"cannot reset offsets of group 'g': the group has active members"* ]]
    run -1 --separate-stderr stream-topics group g --delete
    [[ "$stderr" == *"active members"* ]]
    stop_member "$MEMBER_PID"
}

@test "groups lists groups; --json everywhere; delete removes a group" {
    stream-topics create t -p 2
    publish 10
    run -0 stream-topics groups
    [ -z "$output" ]
    run -0 stream-topics groups --json
    [ "$output" = '{"groups":[]}' ]
    stream-sub -g one -t t -e >/dev/null
    stream-sub -g two -t t -e >/dev/null
    run -0 stream-topics groups
    assert_line --regexp '^GROUP +STATE +MEMBERS +GENERATION$'
    assert_line --regexp '^one +empty +0 +[0-9]+$'
    run -0 stream-topics groups --json
    jq -e '[.groups[].group] == ["one", "two"]' <<<"$output"
    run -0 stream-topics group one --delete --json
    [ "$output" = '{"results":[{"group":"one","status":"deleted","error":null}]}' ]
    run -0 stream-topics groups --json
    jq -e '[.groups[].group] == ["two"]' <<<"$output"
}

@test "unknown groups exit 4, invalid names and bad flags are refused" {
    stream-topics create t -p 1
    run -4 --separate-stderr stream-topics group nope
    [ "$stderr" = "stream-topics: cannot describe group 'nope': no such group (stream-topics groups lists them)" ]
    run -4 stream-topics group nope --delete
    run -4 stream-topics group nope --reset-offsets --to-earliest
    run -4 stream-topics group nope --reset-offsets --to-earliest --topic missing
    run -1 --separate-stderr stream-topics group 'bad name'
    [[ "$stderr" == "stream-topics: cannot describe group 'bad name': "* ]]
    run -2 stream-topics groups extra
    run -2 stream-topics group
    run -2 stream-topics group a b
    run -2 stream-topics group g --to-earliest
    run -2 stream-topics group g --reset-offsets
    run -2 stream-topics group g --reset-offsets --to-earliest --to-latest
    run -2 stream-topics group g --reset-offsets --to-offset x
    run -2 stream-topics group g --reset-offsets --to-datetime yesterday-ish
    run -2 stream-topics group g --reset-offsets --delete --to-earliest
    run -2 stream-topics describe t --execute
    # stream-sub: group mode's own rules, before any broker is asked.
    run -2 --separate-stderr stream-sub -g 'bad name' -t t -b 127.0.0.1:1
    [[ "$stderr" == *"invalid group name"* ]]
    run -2 stream-sub -g g -t t -p 0 -b 127.0.0.1:1
    run -2 stream-sub -g g -t t -o 5 -b 127.0.0.1:1
    run -2 stream-sub -g g -t t -o beginning..end -b 127.0.0.1:1
    run -2 stream-sub -t t -t u -b 127.0.0.1:1
    run -2 stream-sub -t 'logs.*' -b 127.0.0.1:1
    run -2 stream-sub -t t --session-timeout-ms 100 -b 127.0.0.1:1
    run -1 --separate-stderr stream-sub -g g -t missing -e
    [[ "$stderr" == *"unknown topic 'missing'"* ]]
}

@test "a -t with regex characters subscribes by pattern" {
    for name in logs.a logs.b mylogs; do
        stream-topics create "$name" -p 1
        printf '%s\n' "$name-1" "$name-2" | stream-pub -t "$name"
    done
    run -0 stream-sub -g g -t 'logs\..*' -e
    [ "$(sort <<<"$output" | tr '\n' ' ')" = "logs.a-1 logs.a-2 logs.b-1 logs.b-2 " ]
    run -0 stream-sub -g h -t 'logs\.a' -t mylogs -e
    [ "$(sort <<<"$output" | tr '\n' ' ')" = "logs.a-1 logs.a-2 mylogs-1 mylogs-2 " ]
}
