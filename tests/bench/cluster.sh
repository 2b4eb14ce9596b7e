#!/usr/bin/env bash
# cluster.sh - `make bench-cluster` (and the last part of `make bench-peers`):
# what replication costs and how fast failover is, on this machine.
#
#   tests/bench/cluster.sh [BUILD_DIR]       (default: build; needs `make all`)
#
# Starts, on free loopback ports in one temp dir on a real disk, one single
# broker and a cluster of three (node ids 1-3, all voters), and measures,
# REPS times with the two interleaved (medians reported):
#   produce 100 B, acks=all        stream-bench produce --acks all, one
#                                  producer: single broker (RF=1) vs an RF=3
#                                  topic with min.insync.replicas=2 on the
#                                  cluster; the issue's target is RF=3 >= 50%
#                                  of the same run's single broker
#   e2e 100 B at 10,000/s, acks=all   stream-bench e2e -v on the RF=3 topic: p99
#                                  (target <= 5 ms) and what its slowest 1%
#                                  spent in each stage, next to the disk's own
#                                  fdatasync p99 for one small record and
#                                  its write-to-disk p99 for 100 B records
#                                  at 10,000/s under group commit
#                                  (bench/disk_writer, same temp dir, each
#                                  repetition): the floor any acks=all
#                                  latency stands on
# then failover, KILLS times: a leader-following acks=all producer
# (faultclient.py acker, one record at a time) runs against an RF=3 topic;
# the partition's leader is killed with kill -9 and restarted; the time from
# the kill to the first acknowledgement from the new leader is the failover
# time (targets: median <= 1 s, max <= 2 s). Then TERMS controlled
# shutdowns (SIGTERM of the leader, restarted 1.5 s after it stopped): for
# each, the longest gap between acknowledgements from the last one before
# the signal to 1 s after it (target: the longest <= 100 ms).
#
# Prints the table and the targets (met / not met); writes
# BUILD_DIR/bench-cluster.json.
#
# Environment: CLUSTER_RECORDS (100-byte records per produce run, 1000000),
# CLUSTER_REPS (3), CLUSTER_KILLS (20), CLUSTER_TERMS (5), CLUSTER_E2E_SECONDS (10).
set -u
# The brokers started here leave port 9092 (the Kafka listener's) alone.
export STREAM_KAFKA_LISTEN=off
export STREAM_METRICS_LISTEN=off
build=${1:-build}
build=$(cd "$build" && pwd) || exit 2
here=$(cd "$(dirname "$0")" && pwd)
faults=$(cd "$here/../cli/faults" && pwd)
export PATH="$build:$PATH"
records=${CLUSTER_RECORDS:-1000000}
reps=${CLUSTER_REPS:-3}
kills=${CLUSTER_KILLS:-20}
terms=${CLUSTER_TERMS:-5}
e2e_seconds=${CLUSTER_E2E_SECONDS:-10}

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/stream-bench-cluster.XXXXXX")
CLUSTER_DIR=$tmp/cluster
single_pid=
# shellcheck source=../cli/cluster_lib.bash
. "$here/../cli/cluster_lib.bash"
cleanup() {
    [ -n "$single_pid" ] && kill -TERM "$single_pid" 2>/dev/null
    [ -n "${acker:-}" ] && kill -TERM "$acker" 2>/dev/null
    cluster_stop >/dev/null 2>&1
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
say() { echo "bench-cluster: $*" >&2; }
isr_full() { [ "$(isr_of "$1" "$2" 2>/dev/null)" = 1,2,3 ]; }
wait_for() { # wait_for SECONDS CMD...
    local i
    for ((i = 0; i < $1 * 10; i++)); do
        "${@:2}" && return 0
        sleep 0.1
    done
    return 1
}

# ---- the servers ----
mkdir -p "$tmp/single"
stream-broker --listen 127.0.0.1:0 --data-dir "$tmp/single/data" --ready-file "$tmp/single/ready" \
    </dev/null >"$tmp/single/log" 2>&1 &
single_pid=$!
for ((i = 0; i < 200; i++)); do [ -s "$tmp/single/ready" ] && break; sleep 0.05; done
single=$(cat "$tmp/single/ready")
CLUSTER_SET="--set broker.session.timeout.ms=1000"
cluster_start 3 || { say "the cluster did not start"; exit 1; }
cluster_brokers=$STREAM_BROKERS
stream-topics -b "$cluster_brokers" create rf3 -p 1 -r 3 --config min.insync.replicas=2 >/dev/null
stream-topics -b "$single" create rf1 -p 1 >/dev/null
wait_leader rf3 0 -1 10 >/dev/null || exit 1

sb=(stream-bench --json -q)
run_json() { # run_json FILE CMD...: appends the command's JSON line to FILE
    local f=$1
    shift
    sync
    "$@" </dev/null | tail -n 1 >>"$f" || { say "failed: $*"; exit 1; }
}
for ((r = 1; r <= reps; r++)); do
    say "repetition $r of $reps"
    run_json "$tmp/p1.jsonl" "${sb[@]}" produce -b "$single" -t rf1 -n "$records" --acks all
    run_json "$tmp/p3.jsonl" "${sb[@]}" produce -b "$cluster_brokers" -t rf3 -n "$records" --acks all
    run_json "$tmp/e3.jsonl" "${sb[@]}" e2e -b "$cluster_brokers" -t rf3 --acks all --rate 10000 \
        -n $((10000 * e2e_seconds)) -v
    run_json "$tmp/disk.jsonl" "$build/bench/disk_writer" --json -n 100000 -S 2000 "$tmp"
done

# ---- failover ----
stream-topics -b "$cluster_brokers" create fo -p 1 -r 3 --config min.insync.replicas=2 >/dev/null
wait_leader fo 0 -1 10 >/dev/null || exit 1
: >"$tmp/acks"
python3 "$faults/faultclient.py" acker "$cluster_brokers" --topic fo --out "$tmp/acks" \
    --stop-file "$tmp/stop" &
acker=$!
: >"$tmp/kills"
for ((k = 1; k <= kills; k++)); do
    sleep 1.5
    leader=$(leader_of fo 0)
    [ -n "$leader" ] && [ "$leader" != -1 ] || { say "no leader before kill $k"; exit 1; }
    t0=$(date +%s%3N)
    node_kill "$leader" KILL
    echo "$t0 $leader" >>"$tmp/kills"
    wait_leader fo 0 "$leader" 10 >/dev/null || exit 1
    sleep 0.5
    node_start "$leader" || exit 1
    cluster_wait_json 15 "all(.brokers[]; .fenced == false)" || exit 1
done
: >"$tmp/term"
for ((k = 1; k <= terms; k++)); do
    sleep 1.5
    leader=$(leader_of fo 0)
    t0=$(date +%s%3N)
    node_kill "$leader" TERM
    echo "$t0 $leader" >>"$tmp/term"
    wait "${CPIDS[$leader]}" 2>/dev/null
    CPIDS[$leader]=
    sleep 1.5
    node_start "$leader" || exit 1
    cluster_wait_json 15 "all(.brokers[]; .fenced == false)" || exit 1
    wait_for 15 isr_full fo 0 || exit 1
done
sleep 1
touch "$tmp/stop"
wait "$acker"
acker=

python3 - "$tmp" "$build/bench-cluster.json" "$reps" "$kills" <<'EOF'
import json, statistics, sys
tmp, out, reps, kills = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def load(f):
    return [json.loads(l) for l in open("%s/%s" % (tmp, f)) if l.strip()]
p1, p3, e3, disk = load("p1.jsonl"), load("p3.jsonl"), load("e3.jsonl"), load("disk.jsonl")
med = lambda xs: statistics.median(xs)
r1 = med([x["records_per_sec"] for x in p1])
r3 = med([x["records_per_sec"] for x in p3])
e2e = med([x["latency_ms"]["p99"] for x in e3])
sync99 = med([x["small_sync_ms"]["p99"] for x in disk])
paced99 = med([x["paced_ms"]["p99"] for x in disk])
acks = [tuple(int(v) for v in l.split()) for l in open(tmp + "/acks")]
fail = []
for l in open(tmp + "/kills"):
    t0, node = (int(v) for v in l.split())
    after = [a for a in acks if a[0] >= t0 and a[1] != node]
    fail.append(after[0][0] - t0 if after else None)
# Each controlled shutdown's stall: the longest gap between acknowledgements
# from the last one before the SIGTERM to 1 s after it (the broker is back
# only 1.5 s after it stopped, so its return is not counted).
stalls = []
for l in open(tmp + "/term"):
    t0, node = (int(v) for v in l.split())
    before = [a[0] for a in acks if a[0] < t0][-1:]
    around = before + [a[0] for a in acks if t0 <= a[0] <= t0 + 1000]
    gaps = [b - a for a, b in zip(around, around[1:])]
    stalls.append(max(gaps) if gaps else None)
got_stalls = [x for x in stalls if x is not None]
stall = max(got_stalls) if got_stalls and len(got_stalls) == len(stalls) else None
got = [f for f in fail if f is not None]
res = {"reps": reps, "produce_acks_all_100B": {"rf1_records_per_sec": r1, "rf3_records_per_sec": r3,
                                                "ratio": r3 / r1 if r1 else None},
       "e2e_10k_acks_all_rf3_p99_ms": e2e,
       "disk_small_fdatasync_p99_ms": sync99,
       "disk_paced_10k_p99_ms": paced99,
       "failover_ms": {"kills": kills, "each": fail,
                       "median": med(got) if got else None, "max": max(got) if got else None,
                       "missing": len(fail) - len(got)},
       "controlled_shutdown_longest_gap_ms": stall,
       "controlled_shutdown_gaps_ms": stalls,
       "runs": {"rf1": p1, "rf3": p3, "e2e": e3, "disk": disk}}
json.dump(res, open(out, "w"), indent=1)
ok = lambda c: "met" if c else "NOT met"
print("%-44s %14s" % ("workload (medians of %d)" % reps, "value"))
print("%-44s %14.0f" % ("produce 100 B acks=all, single broker, rec/s", r1))
print("%-44s %14.0f" % ("produce 100 B acks=all, RF=3, rec/s", r3))
print("%-44s %13.1f%%  (target >= 50%%: %s)" % ("RF=3 / single", 100 * r3 / r1, ok(r3 >= 0.5 * r1)))
print("%-44s %13.2f   (target <= 5 ms: %s)" % ("e2e p99 at 10,000/s, RF=3 acks=all, ms", e2e, ok(e2e <= 5)))
print("%-44s %13.2f   (e2e p99 is %.1fx it)" % ("the disk: fdatasync of one 100 B record, p99 ms", sync99, e2e / sync99 if sync99 else 0))
print("%-44s %13.2f   (e2e p99 is %.1fx it)" % ("the disk: 10,000/s group-committed, p99 ms", paced99, e2e / paced99 if paced99 else 0))
# What the e2e p99 is made of (stream-bench e2e -v): each stage's mean over
# the slowest 1% of records, median over the repetitions.
slow = [x.get("stages", {}).get("slowest", {}).get("stage_mean_ms") for x in e3]
slow = [x for x in slow if x]
if slow:
    names = [("queue", "producer queue"), ("append", "append"), ("round_wait", "round wait"),
             ("sync", "leader's sync"), ("after_sync", "followers"), ("transport", "network")]
    parts = []
    for k, label in names:
        vals = [x[k] for x in slow if x.get(k) is not None]
        if vals:
            parts.append("%s %.2f" % (label, med(vals)))
    print("  its slowest 1%%, mean ms per stage: %s" % ", ".join(parts))
if got:
    print("%-44s %14d   (target <= 1000: %s)" % ("failover after kill -9, median ms", med(got), ok(med(got) <= 1000)))
    print("%-44s %14d   (target <= 2000: %s)" % ("failover after kill -9, max ms (of %d)" % kills, max(got), ok(max(got) <= 2000 and len(got) == kills)))
print("%-44s %14s   (target <= 100: %s; each: %s)" % ("controlled shutdown, longest stall ms (of %d)" % len(stalls), stall, ok(stall is not None and stall <= 100), " ".join(str(x) for x in stalls)))
EOF
