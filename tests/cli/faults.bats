#!/usr/bin/env bats
# faults.bats - a real broker under faults and exhaustion (issue 7): a full
# disk, a file size limit, too few file descriptors, connection storms and
# half-open clients, a stopped consumer, kill -9 in a loop under acks=all,
# and segment and index files damaged between restarts. Each test proves
# that nothing acknowledged is lost or served damaged and that the broker
# keeps serving everyone else.
#
# Helpers in tests/cli/faults/: lib.bash (shell helpers shared with
# iofaults.bats), faultclient.py (raw protocol clients that misbehave on
# purpose, and a latency probe), crashcheck.py (record generator and
# acknowledgement checker), segtool.py (batch positions in a segment file),
# groupcheck.py (a consumer group's commit poller and delivery checker). The
# long soak is tests/soak/ (make soak).
#
# Environment: FAULTS_SEED=N repeats a crash loop; FAULTS_KILLS=N changes
# its number of kills (default 20 within make check's time budget; the
# soak, make soak, kills for as long as it runs); FAULTS_IDEMPOTENT=1 runs it with
# retries and checks exactly-once through them (needs the idempotent
# producer).

load helpers
load faults/lib

setup() {
    BG_PIDS=()
    MOUNTED=
    # Freed memory is quarantined by ASan (256 MiB by default), which would
    # hide a leak-free broker's real footprint behind allocator history.
    export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16
}

teardown() {
    local p
    touch "$BATS_TEST_TMPDIR/stop" # ends a crash loop's publishers
    for p in "${BG_PIDS[@]}"; do
        kill -CONT "$p" 2>/dev/null || true
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${BG_PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    stop_broker
    if [ -n "$MOUNTED" ]; then
        umount "$MOUNTED" 2>/dev/null || umount -l "$MOUNTED" 2>/dev/null || true
    fi
}

# ---- helpers -----------------------------------------------------------------------

# Resident memory of the broker in KiB.
broker_rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$BROKER_PID/status"; }

# CPU time (user + system) of the broker in clock ticks.
broker_cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$BROKER_PID/stat"; }

# Mounts a size-limited tmpfs on DIR (root only); fails when not permitted.
mount_small_fs() {
    mkdir -p "$1"
    [ "$(id -u)" = 0 ] || return 1
    mount -t tmpfs -o "size=$2" tmpfs "$1" 2>/dev/null || return 1
    MOUNTED=$1
}

# ---- disk full ---------------------------------------------------------------------

# Fills the data disk through topic $1 until a produce fails; the failing
# stream-pub's stderr is left in $BATS_TEST_TMPDIR/full.err.
fill_disk() {
    local topic=$1 i rc
    make_records fill 1 2000 1000 >"$BATS_TEST_TMPDIR/fill.txt"
    for ((i = 1; i <= 20; i++)); do
        rc=0
        stream-pub -t "$topic" --ack-log "$BATS_TEST_TMPDIR/fill.ack" \
            <"$BATS_TEST_TMPDIR/fill.txt" 2>"$BATS_TEST_TMPDIR/full.err" || rc=$?
        [ "$rc" -eq 0 ] || return 0
    done
    echo "the disk never filled" >&2
    return 1
}

# assert_holds_acked TOPIC ACKS INPUT [ACKS INPUT ...]: topic TOPIC holds
# exactly the records acknowledged in the ack files (stream-pub's ack lines:
# RECORD PARTITION OFFSET), each ack file for runs that read its INPUT file,
# byte for byte and at the acknowledged offsets.
assert_holds_acked() {
    local topic=$1
    shift
    stream-sub -t "$topic" -e -f '%o %v\n' >"$BATS_TEST_TMPDIR/$topic.stored"
    # Each stream-pub run numbers its records from 1, and every run with the
    # same ack file reads the same input: record R of any run is input line R.
    python3 - "$BATS_TEST_TMPDIR/$topic.stored" "$@" <<'EOF'
import sys
stored, pairs = sys.argv[1], sys.argv[2:]
want = {}
for acks, inp in zip(pairs[0::2], pairs[1::2]):
    lines = open(inp, "rb").read().split(b"\n")[:-1]
    for l in open(acks):
        r, p, o = map(int, l.split())
        want[o] = lines[r - 1]
got = {}
for l in open(stored, "rb").read().split(b"\n")[:-1]:
    o, v = l.split(b" ", 1)
    got[int(o)] = v
bad = [o for o in want if got.get(o) != want[o]]
extra = [o for o in got if o not in want]
print("%d acknowledged, %d stored, %d damaged or missing, %d unacknowledged stored"
      % (len(want), len(got), len(bad), len(extra)))
sys.exit(1 if bad or extra or not want else 0)
EOF
}

@test "disk full: produces fail naming ENOSPC, acknowledged data stays intact, deleting a topic frees space without a restart" {
    mount_small_fs "$BATS_TEST_TMPDIR/disk" 8m ||
        skip "cannot mount a tmpfs here (needs root); the ulimit -f test covers the write-error path"
    BROKER_DIR=$BATS_TEST_TMPDIR/disk/data
    start_broker
    stream-topics create keep ballast
    make_records keep 1 1000 100 >"$BATS_TEST_TMPDIR/keep.txt"
    stream-pub -t keep --ack-log "$BATS_TEST_TMPDIR/keep.ack" <"$BATS_TEST_TMPDIR/keep.txt"

    fill_disk ballast
    run cat "$BATS_TEST_TMPDIR/full.err"
    assert_output --partial 'No space left on device'
    assert_output --partial "topic 'ballast' partition 0"
    # Everyone's writes fail the same clear way, and the broker says why.
    # (Batches that still fit in the last free pages are stored and
    # acknowledged: the ack log records them.)
    run stream-pub -t keep --ack-log "$BATS_TEST_TMPDIR/keep-full.ack" <"$BATS_TEST_TMPDIR/fill.txt"
    assert_failure 1
    assert_output --partial 'No space left on device'
    grep -q 'append failed: .*No space left on device' "$BROKER_LOG"
    kill -0 "$BROKER_PID"

    # Nothing acknowledged was damaged; failed appends left nothing behind.
    run assert_holds_acked keep "$BATS_TEST_TMPDIR/keep.ack" "$BATS_TEST_TMPDIR/keep.txt" \
        "$BATS_TEST_TMPDIR/keep-full.ack" "$BATS_TEST_TMPDIR/fill.txt"
    assert_success
    assert_output --regexp ' 0 damaged or missing, 0 unacknowledged stored$'
    run assert_holds_acked ballast "$BATS_TEST_TMPDIR/fill.ack" "$BATS_TEST_TMPDIR/fill.txt"
    assert_success

    # Space comes back: the same broker takes writes again.
    stream-topics delete ballast
    make_records more 1 1000 100 >"$BATS_TEST_TMPDIR/more.txt"
    stream-pub -t keep --ack-log "$BATS_TEST_TMPDIR/more.ack" <"$BATS_TEST_TMPDIR/more.txt"
    run assert_holds_acked keep "$BATS_TEST_TMPDIR/keep.ack" "$BATS_TEST_TMPDIR/keep.txt" \
        "$BATS_TEST_TMPDIR/keep-full.ack" "$BATS_TEST_TMPDIR/fill.txt" \
        "$BATS_TEST_TMPDIR/more.ack" "$BATS_TEST_TMPDIR/more.txt"
    assert_success
    assert_output --regexp ' 0 damaged or missing, 0 unacknowledged stored$'
    # The new records come last, all of them, in order.
    run stream-sub -t keep -o -1000 -e -f '%v\n'
    [ "$output" = "$(cat "$BATS_TEST_TMPDIR/more.txt")" ]
}

@test "disk full: retention freeing segments lets writes resume without a restart" {
    mount_small_fs "$BATS_TEST_TMPDIR/disk" 8m ||
        skip "cannot mount a tmpfs here (needs root); the ulimit -f test covers the write-error path"
    BROKER_DIR=$BATS_TEST_TMPDIR/disk/data
    start_broker --set log.retention.check.interval.ms=300
    # Time-based retention deletes whole rolled segments 6 s after their
    # records were written: long enough to fill the disk first.
    stream-topics create ballast -c segment.bytes=524288 -c retention.ms=6000
    fill_disk ballast
    ! grep -q 'retention deleted' "$BROKER_LOG" ||
        skip "retention ran before the disk was full (a very slow machine)"
    grep -q 'No space left on device' "$BATS_TEST_TMPDIR/full.err"
    # Retention runs, frees space, and the next produce succeeds.
    wait_for 20 grep -q 'ballast-0: retention deleted' "$BROKER_LOG"
    make_records after 1 1000 100 >"$BATS_TEST_TMPDIR/after.txt"
    stream-pub -t ballast <"$BATS_TEST_TMPDIR/after.txt"
    run stream-sub -t ballast -o -1000 -e -f '%v\n'
    [ "$output" = "$(cat "$BATS_TEST_TMPDIR/after.txt")" ]
    kill -0 "$BROKER_PID"
}

@test "file size limit: a segment write past ulimit -f fails with EFBIG, the rest stays served, a roll restores writes" {
    # SIGXFSZ is ignored (an ignored signal stays ignored across exec), so a
    # write past the limit fails with EFBIG instead of killing the broker,
    # which must then handle it like any other failed write.
    with_limits "trap '' XFSZ; ulimit -f 2048" start_broker
    stream-topics create big
    make_records rec 1 1000 1000 >"$BATS_TEST_TMPDIR/in.txt"
    stream-pub -t big --ack-log "$BATS_TEST_TMPDIR/in.ack" <"$BATS_TEST_TMPDIR/in.txt"
    local i rc=0
    for ((i = 0; i < 5 && rc == 0; i++)); do
        stream-pub -t big --ack-log "$BATS_TEST_TMPDIR/in.ack" <"$BATS_TEST_TMPDIR/in.txt" \
            2>"$BATS_TEST_TMPDIR/pub.err" || rc=$?
    done
    [ "$rc" -eq 1 ]
    run cat "$BATS_TEST_TMPDIR/pub.err"
    assert_output --partial 'File too large'
    kill -0 "$BROKER_PID"
    run assert_holds_acked big "$BATS_TEST_TMPDIR/in.ack" "$BATS_TEST_TMPDIR/in.txt"
    assert_success
    # A smaller segment.bytes rolls to a new file, which the limit allows.
    stream-topics alter big -c segment.bytes=1048576
    stream-pub -t big --ack-log "$BATS_TEST_TMPDIR/in.ack" <"$BATS_TEST_TMPDIR/in.txt"
    run assert_holds_acked big "$BATS_TEST_TMPDIR/in.ack" "$BATS_TEST_TMPDIR/in.txt"
    assert_success
}

# ---- file descriptors --------------------------------------------------------------

@test "file descriptors: with ulimit -n 64 extra connections are refused with a warning, open ones keep working, no busy loop" {
    with_limits 'ulimit -n 64' start_broker
    stream-topics create t
    # An existing client: produce + fetch round trips all through the storm;
    # halfway it produces to a new topic, which needs new files.
    background faultclient probe "$STREAM_BROKERS" --topic t --seconds 5 \
        --new-topic-after 2.5 >"$BATS_TEST_TMPDIR/probe.json"
    local probe=$BG_PID
    sleep 0.5
    background faultclient hold "$STREAM_BROKERS" --count 150 --seconds 2.5 \
        --answer-seconds 1.5 >"$BATS_TEST_TMPDIR/hold.json"
    local hold=$BG_PID
    wait_for 10 grep -q answered "$BATS_TEST_TMPDIR/hold.json"
    # Held connections at the limit: the broker must sleep, not spin.
    local c0 c1
    c0=$(broker_cpu_ticks)
    sleep 2
    c1=$(broker_cpu_ticks)
    echo "broker CPU while at the limit: $((c1 - c0)) ticks in 2 s"
    [ $((c1 - c0)) -lt 60 ]
    wait "$hold"
    wait "$probe"
    cat "$BATS_TEST_TMPDIR/hold.json" "$BATS_TEST_TMPDIR/probe.json"
    # Every connection got an answer or a close; some were refused.
    [ "$(json silent <"$BATS_TEST_TMPDIR/hold.json")" -eq 0 ]
    [ "$(json refused <"$BATS_TEST_TMPDIR/hold.json")" -gt 0 ]
    [ "$(json answered <"$BATS_TEST_TMPDIR/hold.json")" -gt 0 ]
    grep -q 'WARN refusing connection from .*open files' "$BROKER_LOG"
    # The open client never failed, and the topic it created mid-storm works.
    [ "$(json errors <"$BATS_TEST_TMPDIR/probe.json")" -eq 0 ]
    [ "$(json round_trips <"$BATS_TEST_TMPDIR/probe.json")" -gt 100 ]
    [ "$(json new_topic <"$BATS_TEST_TMPDIR/probe.json")" = ok ]
    # After the storm new clients get in again.
    seq 1 10 | stream-pub -t t
    run stream-sub -t t -o -10 -e -f '%v\n'
    assert_output "$(seq 1 10)"
    kill -0 "$BROKER_PID"
}

# ---- connection storm --------------------------------------------------------------

@test "connection storm: thousands of connects, half frames and non-readers keep memory bounded, idle ones time out, latency holds" {
    start_broker --set connections.max.idle.ms=2000 --set connection.max.output.bytes=1048576
    make_records big 1 8000 1000 | stream-pub -t big
    faultclient probe "$STREAM_BROKERS" --topic lat --seconds 2 >"$BATS_TEST_TMPDIR/base.json"
    local rss0 peak=0 r i
    rss0=$(broker_rss_kb)
    # 16 clients ask for the whole 8 MiB topic in every fetch and never
    # read: each may cost the broker about max.output (1 MiB) plus a batch,
    # never a full 8 MiB response.
    background faultclient storm "$STREAM_BROKERS" --topic big --connects 3000 --half 50 \
        --noread 16 --seconds 9 >"$BATS_TEST_TMPDIR/storm.json"
    local storm=$BG_PID
    background faultclient probe "$STREAM_BROKERS" --topic lat --seconds 7 \
        >"$BATS_TEST_TMPDIR/probe.json"
    local probe=$BG_PID
    for ((i = 0; i < 45; i++)); do
        r=$(broker_rss_kb)
        [ "$r" -gt "$peak" ] && peak=$r
        sleep 0.2
    done
    wait "$storm"
    wait "$probe"
    cat "$BATS_TEST_TMPDIR/base.json" "$BATS_TEST_TMPDIR/storm.json" "$BATS_TEST_TMPDIR/probe.json"
    echo "broker RSS: $rss0 KiB before, $peak KiB at the peak"
    [ "$(json connects <"$BATS_TEST_TMPDIR/storm.json")" -ge 3000 ]
    [ "$(json connect_failures <"$BATS_TEST_TMPDIR/storm.json")" -eq 0 ]
    # Bounded: 16 x (1 MiB + 1 MiB batch) + 48 MiB of slack.
    [ $((peak - rss0)) -lt $(((16 * 2 + 48) * 1024)) ]
    # Half frames time out after idle 2 s (swept every second).
    [ "$(json half_closed <"$BATS_TEST_TMPDIR/storm.json")" -eq 50 ]
    [ "$(python3 -c 'import json,sys; print(int(json.load(sys.stdin)["half_closed_max_ms"]))' <"$BATS_TEST_TMPDIR/storm.json")" -lt 5000 ]
    # Non-readers, not having read a byte for idle.ms, were closed as stalled.
    [ "$(json noread_closed <"$BATS_TEST_TMPDIR/storm.json")" -eq 16 ]
    # Everyone else kept their latency.
    [ "$(json errors <"$BATS_TEST_TMPDIR/probe.json")" -eq 0 ]
    python3 - "$BATS_TEST_TMPDIR/base.json" "$BATS_TEST_TMPDIR/probe.json" <<'EOF'
import json, sys
base, storm = (json.load(open(p)) for p in sys.argv[1:3])
print("p50 %.2f -> %.2f ms, p99 %.2f -> %.2f ms" % (base["p50_ms"], storm["p50_ms"],
                                                      base["p99_ms"], storm["p99_ms"]))
assert storm["round_trips"] > 100
assert storm["p50_ms"] < max(10 * base["p50_ms"], 20)
assert storm["p99_ms"] < max(10 * base["p99_ms"], 250)
EOF
    kill -0 "$BROKER_PID"
}

# ---- slow and stopped consumers ----------------------------------------------------

@test "stopped consumer: SIGSTOP mid-fetch costs the broker bounded memory, producers keep their pace, SIGCONT resumes with everything" {
    # The stop outlasts connections.max.idle.ms: the broker closes the
    # stopped consumer's connection, and the consumer must reconnect and go
    # on where it was, losing and repeating nothing.
    start_broker --set connection.max.output.bytes=1048576 --set connections.max.idle.ms=1500 \
        --log-level debug
    make_records big 1 16000 1000 >"$BATS_TEST_TMPDIR/a.txt"
    make_records big 16001 32000 1000 >"$BATS_TEST_TMPDIR/b.txt"
    local t0 base_ms during_ms rss0 rss1
    t0=$(date +%s%N)
    stream-pub -t big <"$BATS_TEST_TMPDIR/a.txt"
    base_ms=$((($(date +%s%N) - t0) / 1000000))
    background stream-sub -t big -f '%v\n' >"$BATS_TEST_TMPDIR/out.txt"
    local sub=$BG_PID
    wait_for 20 lines_at_least "$BATS_TEST_TMPDIR/out.txt" 1000
    kill -STOP "$sub"
    rss0=$(broker_rss_kb)
    t0=$(date +%s%N)
    stream-pub -t big <"$BATS_TEST_TMPDIR/b.txt"
    during_ms=$((($(date +%s%N) - t0) / 1000000))
    rss1=$(broker_rss_kb)
    echo "16000 records: $base_ms ms before, $during_ms ms with the consumer stopped;" \
        "broker RSS $rss0 -> $rss1 KiB"
    [ "$during_ms" -lt $((3 * base_ms + 2000)) ]
    [ $((rss1 - rss0)) -lt $((48 * 1024)) ]
    wait_for 10 grep -q 'closing connection .*\(idle\|not read\)' "$BROKER_LOG"
    kill -CONT "$sub"
    wait_for 60 lines_at_least "$BATS_TEST_TMPDIR/out.txt" 32000
    kill -TERM "$sub"
    wait "$sub" || true
    run cmp "$BATS_TEST_TMPDIR/out.txt" <(cat "$BATS_TEST_TMPDIR/a.txt" "$BATS_TEST_TMPDIR/b.txt")
    assert_success
}

# ---- crash loop --------------------------------------------------------------------

# member_loop DIR SLOT: a member of group crashers reading topic crash,
# one stream-sub -g run after another (a run that exits is started again);
# run N writes 'PARTITION OFFSET VALUE' lines to DIR/group/mSLOT.N.out and
# its exit status to DIR/group/exits ('mSLOT.N STATUS'). SIGTERM is passed
# on to the running member, which commits what it wrote and leaves (its
# status then goes to DIR/group/stopped); then the loop ends.
member_loop() {
    local dir=$1 slot=$2 n=0 child=
    trap '[ -z "$child" ] || { kill -TERM "$child" 2>/dev/null; wait "$child"
        echo "m$slot.$n $?" >>"$dir/group/stopped"; }; exit 0' TERM
    while :; do
        n=$((n + 1))
        stream-sub -g crashers -t crash -f '%p %o %v\n' --session-timeout-ms 1000 \
            --commit-interval-ms 100 >"$dir/group/m$slot.$n.out" 2>>"$dir/group/m$slot.err" &
        child=$!
        wait "$child"
        echo "m$slot.$n $?" >>"$dir/group/exits"
        child=
        sleep 0.2
    done
}

# The group's committed offsets now, and how far each member's output had
# got by then (tests/cli/faults/groupcheck.py poll).
poll_group() {
    python3 "$FAULTS_DIR/groupcheck.py" poll --group crashers --topic crash \
        --members "$1/group" --out "$1/group/polls"
}

@test "crash loop: kill -9 at random moments under acks=all loses no acknowledged record" {
    local seed=${FAULTS_SEED:-$(date +%s)} kills=${FAULTS_KILLS:-20} dir=$BATS_TEST_TMPDIR k port
    echo "# crash loop: seed $seed (FAULTS_SEED=$seed repeats it), $kills kills" >&3
    echo "seed $seed"
    RANDOM=$seed
    local retries=(--retries 0) check=(--exactly-once)
    if [ -n "${FAULTS_IDEMPOTENT:-}" ]; then
        retries=(--retries 5)
    fi
    # Short group sessions, so members that lost the broker are back soon.
    local conf=(--set segment.bytes=65536 --set group.min.session.timeout.ms=500)
    start_broker "${conf[@]}"
    port=${STREAM_BROKERS##*:}
    stream-topics create crash -p 3
    mkdir -p "$dir/group"
    background publish_loop "$dir" 0 crash --acks all -q "${retries[@]}"
    local pubs=$BG_PID members=()
    # Two members of one group consume throughout, their commits polled
    # after every restart.
    background member_loop "$dir" 1
    members+=("$BG_PID")
    background member_loop "$dir" 2
    members+=("$BG_PID")
    for ((k = 1; k <= kills; k++)); do
        # 0.2 to 1.2 s of life: appends, rolls, syncs and recovery-point
        # writes (of the data and of __consumer_offsets) are all caught
        # mid-way somewhere over the run.
        sleep "$(printf '0.%03d' $((RANDOM % 1000)))"
        sleep 0.2
        kill_broker
        start_broker --listen "127.0.0.1:$port" "${conf[@]}"
        poll_group "$dir"
    done
    sleep 1
    touch "$dir/stop"
    wait "$pubs"
    # The group catches up with everything and commits it, then leaves.
    wait_for 60 group_caught_up
    poll_group "$dir"
    kill -TERM "${members[@]}"
    wait "${members[@]}"
    poll_group "$dir"
    # Both members were running, and left cleanly.
    run cat "$dir/group/stopped"
    assert_line --regexp '^m1\.[0-9]+ 0$'
    assert_line --regexp '^m2\.[0-9]+ 0$'
    [ "${#lines[@]}" -eq 2 ]
    # Each restart after kill -9 recovered by itself, and nothing failed.
    [ "$(grep -cE 'partitions: [0-9]+ clean, [1-9][0-9]* recovered' "$BROKER_LOG")" -eq "$kills" ]
    run grep ' ERROR ' "$BROKER_LOG"
    assert_failure 1
    stream-sub -t crash -e -f '%p %o %v\n' >"$dir/stored"
    run python3 "$FAULTS_DIR/crashcheck.py" check --log "$dir/stored" "${check[@]}" \
        --group "$dir/group" --polls "$dir/group/polls" --disruptions "$kills" "$dir"/acks/ack.*
    printf '%s\n' "$output" | sed 's/^/# /' >&3
    echo "# member runs that exited by themselves: $(wc -l <"$dir/group/exits" 2>/dev/null || echo 0)" >&3
    assert_success
}

# Every record of topic crash is committed by group crashers.
group_caught_up() {
    stream-topics group crashers --json 2>/dev/null |
        jq -e '(.offsets | length) == 3 and .total_lag == 0' >/dev/null
}

# ---- power-loss style corruption ---------------------------------------------------

# Produces $1 runs of 100 records "c-RUN-I" to topic c (1 partition), each
# run its own batch, with segments of about 3 batches; the expected values
# go to $BATS_TEST_TMPDIR/expected.
produce_batches() {
    local runs=$1 r
    : >"$BATS_TEST_TMPDIR/expected"
    for ((r = 1; r <= runs; r++)); do
        make_records "c-$r" 1 100 40 >"$BATS_TEST_TMPDIR/run.txt"
        stream-pub -t c <"$BATS_TEST_TMPDIR/run.txt"
        cat "$BATS_TEST_TMPDIR/run.txt" >>"$BATS_TEST_TMPDIR/expected"
    done
}

corruption_broker() {
    start_broker --set segment.bytes=16384 --set index.interval.bytes=1024 "$@"
    stream-topics create c
}

# Batches of the active segment: "POS SIZE BASE LAST" lines.
active_batches() { python3 "$FAULTS_DIR/segtool.py" batches "$(active_segment)"; }
active_segment() { python3 "$FAULTS_DIR/segtool.py" active "$BROKER_DIR/c-0"; }

# Overwrites N bytes at POS of FILE with bytes of value 0xA5.
garble() { python3 -c 'import sys
f = open(sys.argv[1], "r+b"); f.seek(int(sys.argv[2])); f.write(b"\xa5" * int(sys.argv[3]))' "$@"; }

# The topic serves exactly the first N expected records, every batch CRC
# checked by the consumer, and a new record lands at offset N.
assert_serves_first() {
    local n=$1
    run stream-sub -t c -e --json
    assert_success
    [ "${#lines[@]}" -eq "$n" ]
    run stream-sub -t c -e -f '%v\n'
    [ "$output" = "$(head -n "$n" "$BATS_TEST_TMPDIR/expected")" ]
    echo after-recovery | stream-pub -t c --ack-log "$BATS_TEST_TMPDIR/new.ack"
    [ "$(cat "$BATS_TEST_TMPDIR/new.ack")" = "1 0 $n" ]
    run stream-sub -t c -o "$n" -e -f '%o %v\n'
    assert_output "$n after-recovery"
}

@test "corruption: a torn tail of the active segment is cut at the last whole batch and reported" {
    corruption_broker
    produce_batches 8
    kill_broker
    local pos size base last seg
    read -r pos size base last < <(active_batches | tail -1)
    seg=$(active_segment)
    truncate -s $((pos + size / 2)) "$seg"
    start_broker
    grep -q "recovery: c-0: dropped $((size / 2)) bytes of torn or corrupt data from offset $base" "$BROKER_LOG"
    assert_serves_first "$base"
}

@test "corruption: garbled bytes in the last batch fail its CRC; the batch is dropped and reported" {
    corruption_broker
    produce_batches 8
    kill_broker
    local pos size base last
    read -r pos size base last < <(active_batches | tail -1)
    garble "$(active_segment)" $((pos + size / 2)) 16
    start_broker
    grep -q "recovery: c-0: dropped $size bytes of torn or corrupt data from offset $base" "$BROKER_LOG"
    assert_serves_first "$base"
}

@test "corruption: damage in the middle of the active segment cuts the log there, never serving past it" {
    corruption_broker
    produce_batches 9
    kill_broker
    # The active segment holds runs 7 to 9; run 8 is damaged.
    run active_batches
    [ "${#lines[@]}" -eq 3 ]
    local pos size base last seg end
    read -r pos size base last <<<"${lines[1]}"
    seg=$(active_segment)
    end=$(stat -c %s "$seg")
    garble "$seg" $((pos + 30)) 4
    start_broker
    grep -q "recovery: c-0: dropped $((end - pos)) bytes of torn or corrupt data from offset $base" "$BROKER_LOG"
    assert_serves_first "$base"
}

@test "corruption: a zero-filled tail (preallocated, never written) is dropped without losing a record" {
    corruption_broker
    produce_batches 5
    kill_broker
    local total
    total=$(wc -l <"$BATS_TEST_TMPDIR/expected")
    head -c 8192 /dev/zero >>"$(active_segment)"
    start_broker
    grep -q "recovery: c-0: dropped 8192 bytes of torn or corrupt data from offset $total" "$BROKER_LOG"
    assert_serves_first "$total"
}

# Damages every index file of c-0: the active segment's are cut to an odd
# length, older ones get garbage entries.
damage_indexes() {
    local f seg
    seg=$(active_segment)
    for f in "$BROKER_DIR"/c-0/*.index "$BROKER_DIR"/c-0/*.timeindex; do
        if [ "${f%.*}" = "${seg%.log}" ]; then
            [ -s "$f" ] && truncate -s $(($(stat -c %s "$f") - 3)) "$f"
        else
            garble "$f" 4 8
        fi
    done
}

# Offset and time look-ups, which go through the indexes, find the right
# records.
assert_lookups() {
    local total n ts
    total=$(wc -l <"$BATS_TEST_TMPDIR/expected")
    for n in 0 1 99 100 101 250 $((total - 1)); do
        run stream-sub -t c -o "$n" -c 1 -f '%o %v\n'
        assert_output "$n $(sed -n "$((n + 1))p" "$BATS_TEST_TMPDIR/expected")"
    done
    ts=$(stream-sub -t c -o 300 -c 1 -f '%T')
    run stream-sub -t c -o "@$ts" -c 1 -f '%v\n'
    # Records of a run share a timestamp: the first of 300's run is found.
    assert_output "$(sed -n "301p" "$BATS_TEST_TMPDIR/expected")"
}

@test "corruption: a batch damaged below the recovery point after a clean stop is reported by fetch, never served" {
    corruption_broker
    produce_batches 8
    stop_broker
    # Segment 0 is below the recovery point and the stop was clean: open
    # trusts it without a scan, so only the fetch path can notice.
    local seg=$BROKER_DIR/c-0/00000000000000000000.log pos size base last
    read -r pos size base last < <(python3 "$FAULTS_DIR/segtool.py" batches "$seg" | sed -n 2p)
    garble "$seg" $((pos + size / 2)) 8
    start_broker
    # From the start: the batches before the damage, each intact.
    run faultclient fetch "$STREAM_BROKERS" --topic c --offset 0 --max-bytes 10000000
    assert_success
    echo "$output"
    [ "$(json err <<<"$output")" -eq 0 ]
    [ "$(json crc_ok <<<"$output")" = True ]
    [ "$(json batches <<<"$output")" = "[[0, $pos]]" ]
    # At the damaged batch: ECORRUPT (5), no bytes.
    run faultclient fetch "$STREAM_BROKERS" --topic c --offset "$base"
    echo "$output"
    [ "$(json err <<<"$output")" -eq 5 ]
    [ "$(json bytes <<<"$output")" -eq 0 ]
    assert_output --partial "stored batch at offset $base is damaged"
    grep -q "ERROR c-0: stored batch at offset $base is damaged" "$BROKER_LOG"
    # A consumer gets everything before it and a clear error.
    run stream-sub -t c -e -f '%v\n'
    assert_failure 1
    assert_output --partial "stored batch at offset $base is damaged"
    [ "$(grep -c '^c-' <<<"$output")" -eq "$base" ]
}

@test "corruption: damaged index files after kill -9 are rebuilt and reported; look-ups stay right" {
    corruption_broker
    produce_batches 8
    kill_broker
    damage_indexes
    start_broker
    grep -q 'recovery: c-0: rebuilt [0-9]* index files' "$BROKER_LOG"
    assert_lookups
    assert_serves_first "$(wc -l <"$BATS_TEST_TMPDIR/expected")"
}

@test "corruption: damaged index files after a clean stop are not trusted either" {
    corruption_broker
    produce_batches 8
    stop_broker
    damage_indexes
    start_broker
    grep -q 'recovery: c-0: rebuilt [0-9]* index files' "$BROKER_LOG"
    assert_lookups
    assert_serves_first "$(wc -l <"$BATS_TEST_TMPDIR/expected")"
}
