#!/usr/bin/env bash
# cluster-soak.sh - leader after leader killed under acks=all load on a
# 3-broker cluster, then the checkers (issue 13).
#
#   tests/soak/cluster-soak.sh BUILD_DIR [KILLS]     (make soak-cluster)
#
# Three brokers (all voters) on loopback; topic "soak" with 3 partitions,
# RF=3, min.insync.replicas=2. Two publish loops (stream-pub --acks all,
# idempotent, --ack-log; tests/cli/faults/lib.bash) run throughout. KILLS
# times (default $CLUSTER_SOAK_KILLS, else 50), every 1-2 s, a random
# partition's leader is hit, in turn: kill -9 (restarted 0.5 s later),
# SIGSTOP for 2 s (past the 1 s session timeout: fenced, then SIGCONT), and
# every fifth time the quorum leader (the controller) is killed instead.
# Then the producers stop, the ISR fills up again, and:
#   crashcheck.py check --exactly-once   every acknowledged record stored
#                                        once, at its acknowledged offset,
#                                        in order per producer run (the two
#                                        loops interleave), read through the leaders
#   replicacheck.py prefix --same        every broker's log of every
#                                        partition is the same, batch for
#                                        batch (so the returning old leaders
#                                        truncated their divergent tails)
# Output is TAP (one "ok 1 - cluster soak" line with the summaries as
# comments); exit status 0 only when both passed.
#
# Environment: SOAK_SEED=N repeats a run's decisions; SOAK_DIR=DIR keeps
# everything there (default a new /var/tmp dir, removed after a passing run
# unless SOAK_KEEP=1).
set -u
# The brokers started here leave port 9092 (the Kafka listener's) alone.
export STREAM_KAFKA_LISTEN=off
export STREAM_METRICS_LISTEN=off
build=${1:?usage: tests/soak/cluster-soak.sh BUILD_DIR [KILLS]}
kills=${2:-${CLUSTER_SOAK_KILLS:-50}}
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$build" && pwd) || exit 2
export PATH="$build:$PATH"
seed=${SOAK_SEED:-$(date +%s)}
RANDOM=$seed
dir=${SOAK_DIR:-$(mktemp -d "${TMPDIR:-/var/tmp}/stream-cluster-soak.XXXXXX")}
mkdir -p "$dir"
CLUSTER_DIR=$dir/cluster
BATS_TEST_DIRNAME=$(cd "$here/../cli" && pwd)
BG_PIDS=()
# shellcheck source=../cli/faults/lib.bash
. "$BATS_TEST_DIRNAME/faults/lib.bash"
# shellcheck source=../cli/cluster_lib.bash
. "$BATS_TEST_DIRNAME/cluster_lib.bash"
cleanup() {
    local p
    for p in "${BG_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    cluster_stop >/dev/null 2>&1
    wait 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM
note() { echo "# $*"; }

echo "1..1"
note "cluster soak: seed $seed (SOAK_SEED=$seed repeats it), $kills disruptions, files in $dir"
CLUSTER_SET="--set broker.session.timeout.ms=1000 --set segment.bytes=1048576"
cluster_start 3 || { echo "not ok 1 - cluster soak: the cluster did not start"; exit 1; }
stream-topics create soak -p 3 -r 3 --config min.insync.replicas=2 || exit 1
for p in 0 1 2; do wait_leader soak "$p" -1 10 >/dev/null || exit 1; done
background publish_loop "$dir/pub1" 1 soak --acks all -q
background publish_loop "$dir/pub2" 2 soak --acks all -q
t_start=$(date +%s)
for ((k = 1; k <= kills; k++)); do
    sleep "1.$((RANDOM % 10))"
    part=$((RANDOM % 3))
    victim=$(leader_of soak "$part")
    how=$((k % 3))
    if ((k % 5 == 0)); then
        victim=$(stream-topics cluster --json 2>/dev/null | jq -r '.leader_id // empty')
        how=0
    fi
    if [ -z "$victim" ] || [ "$victim" = -1 ]; then
        note "disruption $k: no leader known; skipped"
        continue
    fi
    case $how in
    0 | 1)
        node_kill "$victim" KILL
        sleep 0.5
        node_start "$victim" || exit 1
        what="kill -9"
        ;;
    2)
        node_kill "$victim" STOP
        sleep 2
        node_kill "$victim" CONT
        what="SIGSTOP 2 s"
        ;;
    esac
    ((k % 10 == 0)) && note "disruption $k: $what node $victim (partition $part's leader)"
    cluster_wait_json 20 "(.brokers | length) == 3 and all(.brokers[]; .fenced == false)" ||
        { echo "not ok 1 - cluster soak: brokers not back after disruption $k"; exit 1; }
done
touch "$dir/pub1/stop" "$dir/pub2/stop"
for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null; done
BG_PIDS=()
for ((i = 0; i < 300; i++)); do
    full=$(stream-topics describe soak --json 2>/dev/null | jq '[.topics[0].partitions[].isr | length] | min')
    [ "$full" = 3 ] && break
    sleep 0.1
done
elapsed=$(($(date +%s) - t_start))
stream-sub -t soak -e -f '%p %o %v\n' >"$dir/stored"
ok=1
python3 "$FAULTS_DIR/crashcheck.py" check --log "$dir/stored" --exactly-once --interleaved \
    "$dir"/pub1/acks/ack.* "$dir"/pub2/acks/ack.* >"$dir/check" 2>&1 || ok=0
sed 's/^/# /' "$dir/check"
cluster_stop
python3 "$FAULTS_DIR/replicacheck.py" prefix --same --topic soak --partitions 3 \
    "$CLUSTER_DIR"/n1/data "$CLUSTER_DIR"/n2/data "$CLUSTER_DIR"/n3/data >"$dir/replicas" 2>&1 || ok=0
sed 's/^/# /' "$dir/replicas"
note "$kills disruptions in $elapsed s; acknowledged records: $(cat "$dir"/pub*/acks/ack.* | wc -l)"
if [ "$ok" = 1 ]; then
    echo "ok 1 - cluster soak: $kills disruptions, nothing acknowledged lost, replicas identical"
    [ -n "${SOAK_DIR:-}" ] || [ -n "${SOAK_KEEP:-}" ] || rm -rf "$dir"
    exit 0
fi
echo "not ok 1 - cluster soak (files kept in $dir)"
exit 1
