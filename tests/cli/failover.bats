#!/usr/bin/env bats
# Clients and failover: any live broker of the bootstrap list is enough to
# start, and producers and consumers follow partition leaders when one
# dies (libstream/client: connections per broker node, routing, retries).
#
# The cluster test runs three brokers with --cluster: an RF=3 topic whose
# leader is killed while stream-pub (acks=all) publishes.

load helpers

declare -a PIDS RAFT

teardown() {
    local n
    for n in 1 2 3; do
        [ -n "${PIDS[$n]:-}" ] && kill -KILL "${PIDS[$n]}" 2>/dev/null
    done
    stop_broker
    return 0
}

# A loopback port nobody listens on (bound, then released).
dead_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

@test "every program starts with a dead first bootstrap broker" {
    start_broker
    local live=$STREAM_BROKERS dead
    dead=127.0.0.1:$(dead_port)
    export STREAM_BROKERS="$dead,$live"
    run stream-topics create boot -p 2
    assert_success
    run bash -c 'printf "a\nb\nc\n" | stream-pub -t boot -p 0'
    assert_success
    run stream-sub -t boot -p 0 -e -f '%v\n'
    assert_success
    assert_output $'a\nb\nc'
    # -b too, and a group member (its coordinator is on the bootstrap
    # connection).
    unset STREAM_BROKERS
    run stream-sub -b "$dead,$live" -t boot -g g1 -o beginning -e -f '%v\n'
    assert_success
    assert_output $'a\nb\nc'
    run stream-topics -b "$dead,$live" describe boot --json
    assert_success
    jq -e '.topics[0].partitions[0].high_watermark == 3' <<<"$output"
    # Every broker dead: the error names them all.
    run stream-pub -b "$dead,127.0.0.1:$(dead_port)" -t boot <<<"x"
    assert_failure
    assert_output --partial "cannot connect to any of $dead"
}

# ---- a cluster of three ----

pick_raft_ports() {
    local p
    p=$(python3 -c '
import socket
s = [socket.socket() for _ in range(3)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')
    read -r RAFT[1] RAFT[2] RAFT[3] <<<"$p"
    VOTERS="1@127.0.0.1:${RAFT[1]},2@127.0.0.1:${RAFT[2]},3@127.0.0.1:${RAFT[3]}"
}

start_node() {
    local n=$1 d=$BATS_TEST_TMPDIR/n$1 i
    mkdir -p "$d"
    rm -f "$d/ready"
    stream-broker --node-id "$n" --cluster "$VOTERS" --listen 127.0.0.1:0 --data-dir "$d/data" \
        --ready-file "$d/ready" </dev/null >>"$d/log" 2>&1 3>&- &
    PIDS[$n]=$!
    for ((i = 0; i < 200; i++)); do
        [ -s "$d/ready" ] && return 0
        kill -0 "${PIDS[$n]}" 2>/dev/null || { cat "$d/log" >&2; return 1; }
        sleep 0.05
    done
    return 1
}

addr() { cat "$BATS_TEST_TMPDIR/n$1/ready"; }

wait_registered() {
    local i out
    for ((i = 0; i < 200; i++)); do
        out=$(stream-topics -b "$(addr 1)" --timeout-ms 1000 cluster --json 2>/dev/null) &&
            jq -e '.leader_id != null and (.brokers | length) == 3 and
                all(.brokers[]; .fenced == false)' >/dev/null <<<"$out" && return 0
        sleep 0.05
    done
    echo "cluster not registered after 10 s: $out" >&2
    return 1
}

# Checks the acknowledged records (ack log: "RECORD PARTITION OFFSET") against
# what a consumer read ("OFFSET VALUE", values "rRECORD"): every acknowledged
# record present exactly once, at the offset acknowledged, and the records
# read in input order (none twice, none reordered).
check_acked() {
    python3 - "$1" "$2" <<'EOF'
import sys
acks = [l.split() for l in open(sys.argv[1]) if l.strip()]
got = [l.split() for l in open(sys.argv[2]) if l.strip()]
seen = {}
last = 0
for off, val in got:
    rec = int(val[1:])
    if rec in seen:
        sys.exit(f"record {rec} read twice (offsets {seen[rec]} and {off})")
    if rec <= last:
        sys.exit(f"record {rec} at offset {off} after record {last}: out of order")
    seen[rec] = int(off)
    last = rec
for rec, part, off in acks:
    rec, off = int(rec), int(off)
    if rec not in seen:
        sys.exit(f"acknowledged record {rec} (offset {off}) is missing")
    if off >= 0 and seen[rec] != off:
        sys.exit(f"record {rec} acknowledged at offset {off} but read at {seen[rec]}")
print(f"{len(acks)} acknowledged, {len(got)} read, all present once, in order")
EOF
}

@test "acks=all while the partition leader is killed: every acknowledged record once, in order" {
    pick_raft_ports
    local n
    for n in 1 2 3; do start_node "$n"; done
    wait_registered
    local all="$(addr 1),$(addr 2),$(addr 3)"
    run stream-topics -b "$all" create ft -p 1 --replication-factor 3 -c min.insync.replicas=2
    assert_success
    local out leader
    # Every broker applies the create a moment after the controller does.
    local i
    for ((i = 0; i < 50; i++)); do
        out=$(stream-topics -b "$all" describe ft --json 2>/dev/null) &&
            jq -e '.topics[0].partitions[0].leader >= 1' >/dev/null <<<"$out" && break
        sleep 0.1
    done
    jq -e '(.topics[0].partitions[0].replicas | length) == 3' <<<"$out"
    leader=$(jq -r '.topics[0].partitions[0].leader' <<<"$out")
    [ "$leader" -ge 1 ] && [ "$leader" -le 3 ]

    # 3000 records over about 6 s; the leader dies 2 s in.
    (for ((i = 1; i <= 3000; i++)); do
        echo "r$i"
        ((i % 100 == 0)) && sleep 0.2
    done) | stream-pub -b "$all" -t ft --acks all --ack-log "$BATS_TEST_TMPDIR/acks" \
        2>"$BATS_TEST_TMPDIR/pub.err" &
    local pub=$! rc=0
    sleep 2
    kill -KILL "${PIDS[$leader]}"
    wait "${PIDS[$leader]}" || true
    PIDS[$leader]=
    wait "$pub" || rc=$?
    cat "$BATS_TEST_TMPDIR/pub.err" >&3
    local other=$((leader % 3 + 1))
    run stream-sub -b "$(addr "$other")" -t ft -p 0 -e -f '%o %v\n'
    assert_success
    printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/got"
    run check_acked "$BATS_TEST_TMPDIR/acks" "$BATS_TEST_TMPDIR/got"
    echo "# $output" >&3
    assert_success
    # Nothing was lost either: every record was acknowledged.
    assert_equal "$rc" 0
    assert_equal "$(wc -l <"$BATS_TEST_TMPDIR/acks")" 3000
}
