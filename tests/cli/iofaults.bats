#!/usr/bin/env bats
# iofaults.bats - a real broker whose disk I/O fails on purpose (issue 12),
# checked against DESIGN.md's one rule for I/O errors:
#   1. a failed segment write (pwrite: ENOSPC, EIO, EDQUOT, or a short
#      write) fails that produce with the error's text and leaves the log
#      as it was; writes succeed again once the fault clears, no restart;
#   2. a failed fdatasync answers every acks=all produce waiting on it at
#      once with the error; the partition is cut back to its last good sync
#      (acks=1 records above it may go, acks=all ones never) and takes
#      writes again; the broker logs the partition, the call and the cut;
#   3. a failed ftruncate while cutting a short write is recovered the same
#      way;
#   4. a read error fails that partition's fetch only, with the error, is
#      logged once per partition, and reads succeed once it clears;
#   5. the broker never crashes (alive, no sanitizer report in its log).
#
# The faults come from libfiu: the broker runs under `fiu-run -x` (the POSIX
# preload) and failure points are switched at run time with fiu-ctrl. Each
# test runs producers under load (crashcheck.py gen | stream-pub, acks=1
# and acks=all, through tests/cli/faults/lib.bash's publish_loop) while a
# fault is on, then proves with crashcheck.py check that every acknowledged
# record is stored and served byte for byte, that nothing unacknowledged
# is served, and, after a cut, that only acks=1 records above the reported
# cut are missing. A last test puts the data directory on a device-mapper
# target that starts failing (root and a kernel with device-mapper only).
#
# Segment appends use pwrite, syncs fdatasync (on the flusher thread),
# cutting a partial write ftruncate, fetching data that was on disk at
# start pread; batches a running broker appended itself are sent with
# sendfile, which libfiu cannot fail, so the read test restarts the broker.
# The broker never preallocates segment files, so there is no fallocate
# to fail. libfiu fails a call as a whole, never short: the short write of
# rule 3 comes from ulimit -f.

load helpers
load faults/lib

setup() {
    BG_PIDS=()
    declare -gA LOAD_PIDS=()
    FIU_CTL=$BATS_TEST_TMPDIR/fiu
    FIU_LIMITS=
    DM_NAME= LOOP_DEV= MOUNTED=
    # Every generated value is its number and filler, 64 bytes in all.
    PUBLISH_SIZE=64
}

teardown() {
    local p name
    for name in "${!LOAD_PIDS[@]}"; do
        touch "$BATS_TEST_TMPDIR/$name/stop"
    done
    for p in "${BG_PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${BG_PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    stop_broker
    remove_dm_disk
}

# ---- helpers -----------------------------------------------------------------------

# start_fiu_broker [ARGS...]: start_broker under fiu-run -x, its control
# fifo under $FIU_CTL, after the shell commands in $FIU_LIMITS. An ASan
# build needs its runtime first in LD_PRELOAD, before libfiu's malloc
# wrapper (which is not ready that early), so fiu-run's LD_PRELOAD gets it
# put in front; libfiu's own leak is suppressed (faults/fiu.supp).
start_fiu_broker() {
    local asan
    asan=$(ldd "$(command -v stream-broker)" | awk '/libasan/ { print $3 }')
    with_limits "${FIU_LIMITS:-:}
export LSAN_OPTIONS=\"\${LSAN_OPTIONS:+\$LSAN_OPTIONS:}suppressions=$FAULTS_DIR/fiu.supp\"
export ASAN_RUNTIME=\"$asan\"
exec fiu-run -x -f \"$FIU_CTL\" sh -c 'LD_PRELOAD=\"\${ASAN_RUNTIME:+\$ASAN_RUNTIME }\$LD_PRELOAD\" exec \"\$@\"' sh \"\$real\" \"\$@\"" \
        start_broker "$@"
}

# fiu COMMAND...: libfiu control commands for the running broker, e.g.
# 'enable name=posix/io/rw/pwrite,failinfo=28,onetime' (see fiu-ctrl(1));
# fails if one is refused.
fiu() {
    local c args=() out
    for c; do args+=(-c "$c"); done
    out=$(timeout 10 fiu-ctrl -f "$FIU_CTL" "${args[@]}" "$BROKER_PID") || return 1
    [ -z "$out" ] || { echo "fiu-ctrl: $out" >&2; return 1; }
}

# load_start NAME SERIES TOPIC [STREAM-PUB OPTIONS...]: a publish_loop in
# $BATS_TEST_TMPDIR/NAME (acknowledgements in NAME/acks, stderr in
# NAME/pub.err). Name a load acks1* when it publishes with --acks 1:
# check_topic tells its acknowledgements apart by that name.
load_start() {
    local name=$1
    shift
    background publish_loop "$BATS_TEST_TMPDIR/$name" "$@"
    LOAD_PIDS[$name]=$BG_PID
}

# load_acked NAME [N]: waits (20 s at most) until load NAME's producers have
# had N (default 100) records acknowledged: a fault is armed only once
# every load is really producing, however slow a loaded machine (an ASan
# build beside another test file) is to start them.
load_acked() {
    local dir=$BATS_TEST_TMPDIR/$1 n=${2:-100}
    wait_for 20 eval "[ \"\$(cat '$dir'/acks/ack.* 2>/dev/null | wc -l)\" -ge $n ]"
}

# load_stop NAME...: ends those loads and waits for them: their producers
# read to the end of their input and wait for its acknowledgements. A load
# still running after 20 s has a produce that was never answered.
load_stop() {
    local name
    for name; do touch "$BATS_TEST_TMPDIR/$name/stop"; done
    for name; do
        wait_for 20 gone "${LOAD_PIDS[$name]}"
        wait "${LOAD_PIDS[$name]}" || true
    done
}

gone() { ! kill -0 "$1" 2>/dev/null; }

# produce_once NAME SERIES TOPIC [STREAM-PUB OPTIONS...]: 1000 generated
# records in one stream-pub run that must succeed; acknowledgements in
# $BATS_TEST_TMPDIR/NAME/acks like a load's.
produce_once() {
    local dir=$BATS_TEST_TMPDIR/$1 base=$((($2 * 1000 + 1) * 10000000)) topic=$3
    shift 3
    mkdir -p "$dir/acks"
    python3 "$FAULTS_DIR/crashcheck.py" gen "$base" --rate 100000 --size "$PUBLISH_SIZE" |
        head -n 1000 | stream-pub -t "$topic" "$@" --ack-log "$dir/acks/ack.$base"
    [ "$(wc -l <"$dir/acks/ack.$base")" -eq 1000 ]
}

# check_topic TOPIC [CHECK OPTIONS...] -- NAME...: reads TOPIC back and
# checks it against the acknowledgements of loads NAME... (crashcheck.py
# check: every acknowledged record stored at its offset byte for byte,
# nothing unacknowledged stored, nothing twice, each run in order). Loads
# named acks1* are acks=1 runs, whose records at or above a --cut may be
# missing.
check_topic() {
    local topic=$1 opts=() logs=() name f
    shift
    while [ "$1" != -- ]; do
        opts+=("$1")
        shift
    done
    shift
    for name; do
        for f in "$BATS_TEST_TMPDIR/$name"/acks/ack.*; do
            case $name in
            acks1*) opts+=(--acks1 "$f") ;;
            *) logs+=("$f") ;;
            esac
        done
    done
    stream-sub -t "$topic" -e -f '%p %o %v\n' >"$BATS_TEST_TMPDIR/$topic.stored" ||
        { echo "stream-sub -t $topic failed"; return 1; }
    python3 "$FAULTS_DIR/crashcheck.py" check --log "$BATS_TEST_TMPDIR/$topic.stored" \
        --exactly-once --only-acked --interleaved --size "$PUBLISH_SIZE" "${opts[@]}" "${logs[@]}"
}

# cut_points TOPIC: "PARTITION:OFFSET" for each cut the broker logged for
# TOPIC when it recovered a partition in place after a failed sync or cut
# ("recovered in place: cut back to offset N"), or when a recovery cut and
# then failed to sync ("recovery cut back to offset N ..., then failed").
cut_points() {
    sed -nE "s/.* $1-([0-9]+): (recovered in place: |recovery )cut back to offset ([0-9]+) .*/\1:\3/p" \
        "$BROKER_LOG"
}

# The broker is alive, stops cleanly on SIGTERM, and its log holds no
# sanitizer report (rule 5).
assert_broker_survived() {
    kill -0 "$BROKER_PID"
    local rc=0
    stop_broker || rc=$?
    run grep -E 'Sanitizer|runtime error' "$BROKER_LOG"
    assert_failure 1
    [ "$rc" -eq 0 ]
}

# ---- rule 1: failed segment writes -------------------------------------------------

@test "pwrite fails at random (ENOSPC, then EIO, then EDQUOT) under acks=1 and acks=all load: those produces fail with the error's text, the log stays as it was, writes go on once it clears" {
    start_fiu_broker
    stream-topics create w -p 2
    load_start acks1 1 w --acks 1 -vv
    load_start acksall 2 w --acks all -vv
    load_acked acks1
    load_acked acksall
    local errno text
    declare -A texts=([28]='No space left on device' [5]='Input/output error' [122]='Disk quota exceeded')
    for errno in 28 5 122; do
        fiu "enable_random name=posix/io/rw/pwrite,probability=0.05,failinfo=$errno"
        sleep 1.5
        # A loaded machine may need longer to meet the 5 %: until one came.
        wait_for 20 grep -q "w-[01]: append failed: .*${texts[$errno]}" "$BROKER_LOG"
    done
    fiu "disable name=posix/io/rw/pwrite"
    sleep 0.5
    load_stop acks1 acksall
    # The fault is gone: a new producer is acknowledged everything.
    produce_once after 3 w
    # About 5 failed appends per producer and error: each error reached a
    # producer with its text, and each producer met errors.
    for text in 'No space left on device' 'Input/output error' 'Disk quota exceeded'; do
        echo "$text: $(grep -c "$text" "$BROKER_LOG") failed appends"
        grep -q "w-[01]: append failed: .*$text" "$BROKER_LOG"
        cat "$BATS_TEST_TMPDIR"/acks*/pub.err | grep -q "partition [01]: writing segment .*: $text"
    done
    grep -q 'records failed' "$BATS_TEST_TMPDIR/acks1/pub.err"
    grep -q 'records failed' "$BATS_TEST_TMPDIR/acksall/pub.err"
    run check_topic w -- acks1 acksall after
    echo "$output"
    assert_success
    assert_output --partial '0 stored but never acknowledged'
    assert_broker_survived
}

@test "pwrite fails once, on an append in mid-load: that batch alone fails, none of it is stored, the next batches succeed" {
    start_fiu_broker
    # No index entries after the first: no index writes, so the one failing
    # pwrite is a segment append.
    stream-topics create once -c index.interval.bytes=2147483647
    load_start acksall 1 once --acks all -vv
    wait_for 20 end_offset_at_least once 2000
    fiu "enable name=posix/io/rw/pwrite,failinfo=5,onetime"
    sleep 1
    load_stop acksall
    produce_once after 2 once
    [ "$(grep -c 'append failed' "$BROKER_LOG")" -eq 1 ]
    grep -q 'once-0: append failed: .*Input/output error' "$BROKER_LOG"
    # One batch failed: its records, one after another, and no others.
    run grep 'failed: topic' "$BATS_TEST_TMPDIR/acksall/pub.err"
    [ "${#lines[@]}" -gt 0 ]
    assert_output --partial 'Input/output error'
    local first last
    first=$(sed -nE '1s/^stream-pub: record ([0-9]+) failed.*/\1/p' <<<"$output")
    last=$(sed -nE '$s/^stream-pub: record ([0-9]+) failed.*/\1/p' <<<"$output")
    [ $((last - first + 1)) -eq "${#lines[@]}" ]
    run grep -c 'records failed' "$BATS_TEST_TMPDIR/acksall/pub.err"
    assert_output 1
    run check_topic once -- acksall after
    echo "$output"
    assert_success
    assert_broker_survived
}

# end_offset_at_least TOPIC N: partition 0 of TOPIC holds N records or more.
end_offset_at_least() {
    [ "$(stream-topics describe "$1" --json | jq '.topics[0].partitions[0].log_end_offset')" -ge "$2" ]
}

# ---- rule 2: failed syncs ------------------------------------------------------------

@test "fdatasync fails once under acks=all load: the waiting producers get the error at once, the log is cut back to its last sync, the partition takes writes again" {
    start_fiu_broker
    stream-topics create s -p 2
    load_start acksall 1 s --acks all -vv
    load_acked acksall
    fiu "enable name=posix/io/sync/fdatasync,failinfo=5,onetime"
    # At once: the request timeout is 30 s, the delivery timeout 2 min.
    wait_for 10 grep -qsi 'partition [01]: .*input/output error' "$BATS_TEST_TMPDIR/acksall/pub.err"
    # The broker names the partition and the call that failed, then the cut.
    grep -qiE ' ERROR s-[01]: fdatasync of segment [0-9]+ failed: input/output error' "$BROKER_LOG"
    wait_for 5 grep -qE ' s-[01]: recovered in place: cut back to offset' "$BROKER_LOG"
    run cut_points s
    echo "cuts: $output"
    [ "${#lines[@]}" -eq 1 ]
    local part=${output%%:*}
    sleep 1
    load_stop acksall
    # The partition that failed takes writes again, no restart.
    produce_once after 2 s -p "$part"
    # Everything acknowledged (all of it acks=all) is there; nothing that
    # waited on the failed sync is.
    run check_topic s -- acksall after
    echo "$output"
    assert_success
    assert_broker_survived
}

@test "fdatasync fails under acks=1 load: acks=1 records above the reported cut may be dropped, acks=all ones never, nothing unacknowledged is served, writes go on" {
    start_fiu_broker
    # A sync every 300 ms leaves plenty of acks=1 records above the last one.
    stream-topics create d -c flush.mode=periodic -c flush.ms=300
    load_start acks1 1 d --acks 1 -vv
    load_start acksall 2 d --acks all -vv
    load_acked acks1
    load_acked acksall
    fiu "enable name=posix/io/sync/fdatasync,failinfo=5,onetime"
    wait_for 5 grep -qE ' d-0: recovered in place: cut back to offset' "$BROKER_LOG"
    grep -qiE ' ERROR d-0: fdatasync of segment [0-9]+ failed: input/output error' "$BROKER_LOG"
    run cut_points d
    echo "cuts: $output"
    [ "${#lines[@]}" -eq 1 ]
    local cut=$output
    # The acks=all producers waiting on that sync got the error.
    wait_for 20 grep -qsi 'input/output error' "$BATS_TEST_TMPDIR/acksall/pub.err"
    sleep 1
    load_stop acks1 acksall
    produce_once after 3 d
    run check_topic d --cut "$cut" -- acks1 acksall after
    echo "$output"
    assert_success
    assert_broker_survived
}

@test "fdatasync keeps failing for 2 s: produces to the partition fail with the error, recovery is retried at most once a second, and succeeds once the disk is back" {
    start_fiu_broker
    stream-topics create k
    load_start acks1 1 k --acks 1 -vv
    load_start acksall 2 k --acks all -vv
    load_acked acks1
    load_acked acksall
    fiu "enable name=posix/io/sync/fdatasync,failinfo=5"
    sleep 2
    fiu "disable name=posix/io/sync/fdatasync"
    wait_for 5 grep -qE ' k-0: recovered in place' "$BROKER_LOG"
    sleep 1
    load_stop acks1 acksall
    produce_once after 3 k
    # Recovery failed while the disk did, tried at most once a second.
    run grep -c ' k-0: recovery failed' "$BROKER_LOG"
    echo "failed recoveries: $output"
    [ "$output" -ge 1 ] && [ "$output" -le 3 ]
    run grep -ciE 'partition 0: .*input/output error' "$BATS_TEST_TMPDIR/acks1/pub.err"
    [ "$output" -gt 0 ]
    local cuts=() c
    for c in $(cut_points k); do cuts+=(--cut "$c"); done
    run check_topic k "${cuts[@]}" -- acks1 acksall after
    echo "$output"
    assert_success
    assert_broker_survived
}

# ---- rule 3: a failed cut of a short write ----------------------------------------

@test "ftruncate fails while cutting a short write (ulimit -f): the partition recovers in place, a roll restores writes, nothing acknowledged is lost" {
    # SIGXFSZ ignored: a write past the limit is short, the next one fails
    # with EFBIG, and the broker cuts the partial batch with ftruncate.
    # (sh counts ulimit -f in blocks of 512 bytes: 256 KiB.)
    FIU_LIMITS="trap '' XFSZ; ulimit -f 512"
    start_fiu_broker
    stream-topics create e -c index.interval.bytes=2147483647
    # About 220 KiB of the 256 KiB a file may hold.
    produce_once fill1 1 e
    produce_once fill2 2 e
    produce_once fill3 3 e
    fiu "enable name=posix/io/rw/ftruncate,failinfo=5,onetime"
    load_start acks1 6 e --acks 1 -vv
    load_start acksall 7 e --acks all -vv
    wait_for 10 grep -qs 'File too large' "$BATS_TEST_TMPDIR/acksall/pub.err"
    # The failed cut is named, and the partition is recovered in place: cut
    # back to its last sync (acks=1 records above it may go).
    wait_for 5 grep -qE ' e-0: recovered in place' "$BROKER_LOG"
    grep -qiE ' ERROR e-0: ftruncate cutting a partial batch off segment [0-9]+ failed: input/output error' \
        "$BROKER_LOG"
    # Still past the limit: writes keep failing, cleanly, until a smaller
    # segment.bytes rolls to a new file.
    stream-topics alter e -c segment.bytes=131072
    sleep 1.5
    load_stop acks1 acksall
    produce_once after 8 e
    local cuts=() c
    for c in $(cut_points e); do cuts+=(--cut "$c"); done
    run check_topic e "${cuts[@]}" -- fill1 fill2 fill3 acks1 acksall after
    echo "$output"
    assert_success
    assert_broker_survived
    # No partial batch was left in the full segment file.
    local seg=$BROKER_DIR/e-0/00000000000000000000.log pos size base last
    read -r pos size base last < <(python3 "$FAULTS_DIR/segtool.py" batches "$seg" | tail -1)
    [ $((pos + size)) -eq "$(stat -c %s "$seg")" ]
}

# ---- rule 4: read errors -------------------------------------------------------------

@test "pread fails while fetching data on disk: that partition's fetch fails with the error, logged once, the other partition and writes are unaffected, reads succeed once it clears" {
    start_fiu_broker
    stream-topics create r -p 2
    stream-topics create other
    load_start acksall 1 r --acks all -p 0
    load_acked acksall
    load_stop acksall
    # Restarted, the broker reads what is on disk with pread.
    stop_broker
    start_fiu_broker
    load_start acksother 2 other --acks all
    fiu "enable name=posix/io/rw/pread,failinfo=5"
    # One fetch of both partitions: r-0 (data on disk) fails with EIO (3)
    # and no bytes, r-1 (empty) is answered as usual.
    run faultclient fetch "$STREAM_BROKERS" --topic r --partition 0 --partition 1
    assert_success
    echo "$output"
    python3 - "$output" <<'EOF'
import json, sys
p0, p1 = json.loads(sys.argv[1])["partitions"]
assert p0["err"] == 3 and p0["bytes"] == 0, p0
assert "Input/output error" in (p0["msg"] or "") or "input/output error" in (p0["msg"] or ""), p0
assert p1["err"] == 0 and p1["bytes"] == 0 and p1["high_watermark"] == 0, p1
EOF
    # A consumer is told which partition, and why.
    run stream-sub -t r -e -f '%p %o %v\n'
    assert_failure 1
    assert_output --regexp "topic 'r' partition 0: .*[Ii]nput/output error"
    refute_output --partial 'partition 1'
    run stream-sub -t r -p 0 -e
    assert_failure 1
    # Logged once for the partition, however often it is asked.
    [ "$(grep -cE ' r-0: .*[Ii]nput/output error' "$BROKER_LOG")" -eq 1 ]
    fiu "disable name=posix/io/rw/pread"
    load_stop acksother
    run check_topic r -- acksall
    echo "$output"
    assert_success
    run check_topic other -- acksother
    echo "$output"
    assert_success
    assert_broker_survived
}

# ---- a real failing disk -----------------------------------------------------------

# Prints why no device-mapper disk can be made here, and succeeds; fails
# (prints nothing) when one can.
dm_missing() {
    [ "$(id -u)" = 0 ] || { echo "needs root (losetup, dmsetup, mount)"; return 0; }
    local t
    for t in dmsetup:dmsetup losetup:mount blockdev:util-linux mkfs.ext4:e2fsprogs; do
        command -v "${t%%:*}" >/dev/null ||
            { echo "${t%%:*} is not installed (Debian package ${t#*:})"; return 0; }
    done
    grep -qw device-mapper /proc/misc ||
        { echo "this kernel has no device-mapper (not in /proc/misc)"; return 0; }
    dmsetup version >/dev/null 2>&1 || { echo "dmsetup cannot reach the kernel's device-mapper"; return 0; }
    [ -e /dev/loop-control ] || { echo "no loop devices (/dev/loop-control)"; return 0; }
    return 1
}

# make_dm_disk SIZE: a loop device over a SIZE file in the test's temp dir
# ($LOOP_DEV), a device-mapper linear target over it (/dev/mapper/$DM_NAME,
# $DM_SECTORS sectors); teardown removes both.
make_dm_disk() {
    truncate -s "$1" "$BATS_TEST_TMPDIR/disk.img"
    LOOP_DEV=$(losetup --find --show "$BATS_TEST_TMPDIR/disk.img")
    DM_SECTORS=$(blockdev --getsz "$LOOP_DEV")
    DM_NAME=stream-iofaults-$$
    dmsetup create "$DM_NAME" --table "0 $DM_SECTORS linear $LOOP_DEV 0"
}

# Swaps the target's table for `error`: every I/O to the disk fails with EIO.
fail_dm_disk() {
    dmsetup suspend --noflush "$DM_NAME"
    dmsetup load "$DM_NAME" --table "0 $DM_SECTORS error"
    dmsetup resume "$DM_NAME"
}

remove_dm_disk() {
    if [ -n "${MOUNTED:-}" ]; then
        umount "$MOUNTED" 2>/dev/null || umount -l "$MOUNTED" 2>/dev/null || true
        MOUNTED=
    fi
    [ -z "${DM_NAME:-}" ] || dmsetup remove --force "$DM_NAME" 2>/dev/null || true
    [ -z "${LOOP_DEV:-}" ] || losetup -d "$LOOP_DEV" 2>/dev/null || true
    DM_NAME= LOOP_DEV=
}

@test "a failing disk (device-mapper error target under the data directory, switched mid-run): producers get the error, the broker survives, nothing unacknowledged is served" {
    local why
    if why=$(dm_missing); then
        skip "$why"
    fi
    make_dm_disk 128M
    mkfs.ext4 -q "/dev/mapper/$DM_NAME"
    mkdir -p "$BATS_TEST_TMPDIR/disk"
    mount "/dev/mapper/$DM_NAME" "$BATS_TEST_TMPDIR/disk"
    MOUNTED=$BATS_TEST_TMPDIR/disk
    BROKER_DIR=$MOUNTED/data
    start_broker
    stream-topics create disk -p 2
    load_start acks1 1 disk --acks 1 -vv
    load_start acksall 2 disk --acks all -vv
    load_acked acks1
    load_acked acksall
    fail_dm_disk
    # Appends still land in the page cache; the next sync fails, and the
    # acks=all producers waiting on it are told.
    wait_for 10 grep -qsi 'input/output error' "$BATS_TEST_TMPDIR/acksall/pub.err"
    sleep 1
    load_stop acks1 acksall
    kill -0 "$BROKER_PID"
    # What was synced before the disk failed is still served (from the page
    # cache); nothing unacknowledged is; acks=1 records above a logged cut
    # may be gone.
    local cuts=() c
    for c in $(cut_points disk); do cuts+=(--cut "$c"); done
    run check_topic disk "${cuts[@]}" -- acks1 acksall
    echo "$output"
    assert_success
    # Alive and no sanitizer report; its clean stop cannot sync a dead disk,
    # so only a signal or a crash counts against it here.
    kill -0 "$BROKER_PID"
    local rc=0
    stop_broker || rc=$?
    [ "$rc" -lt 128 ]
    run grep -E 'Sanitizer|runtime error' "$BROKER_LOG"
    assert_failure 1
}
