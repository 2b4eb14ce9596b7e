#!/usr/bin/env bash
# run-cluster.sh - three stream brokers on this machine, one cluster, until
# Ctrl-C (`make run-cluster`).
#
#   share/run-cluster.sh [DATA_DIR]     (default ./cluster-data)
#
# Node N (1..3) listens for clients on 127.0.0.1:9292, :9392, :9492 and for
# the metadata quorum (Raft) on 127.0.0.1:9301..9303, keeps its data in
# DATA_DIR/N and its log in DATA_DIR/N.log. Ctrl-C (or SIGTERM) stops all
# three cleanly; a restart with the same DATA_DIR finds the cluster again.
# The programs come from $STREAM_BUILD (default: build/ next to share/).
set -u
# The Kafka listener serves a single broker yet (issue 14's first phase):
# the three nodes leave port 9092 alone.
export STREAM_KAFKA_LISTEN=off
export STREAM_METRICS_LISTEN=off

here=$(cd "$(dirname "$0")/.." && pwd)
build=${STREAM_BUILD:-$here/build}
data=${1:-./cluster-data}
broker=$build/stream-broker
[ -x "$broker" ] || { echo "run-cluster: no $broker (run make first)" >&2; exit 1; }

voters=1@127.0.0.1:9301,2@127.0.0.1:9302,3@127.0.0.1:9303
clients=(127.0.0.1:9292 127.0.0.1:9392 127.0.0.1:9492)
pids=()

stop_all() {
    trap - INT TERM
    echo "run-cluster: stopping the brokers"
    local pid rc=0
    for pid in "${pids[@]}"; do [ "$pid" != 0 ] && kill -TERM "$pid" 2>/dev/null; done
    for pid in "${pids[@]}"; do [ "$pid" = 0 ] || wait "$pid" || rc=1; done
    echo "run-cluster: stopped"
    exit "$rc"
}
trap stop_all INT TERM

mkdir -p "$data" || exit 1
for n in 1 2 3; do
    rm -f "$data/$n.ready"
    "$broker" --node-id "$n" --cluster "$voters" --listen "${clients[$((n - 1))]}" \
        --data-dir "$data/$n" --ready-file "$data/$n.ready" </dev/null >>"$data/$n.log" 2>&1 &
    pids+=($!)
done
for n in 1 2 3; do
    for ((i = 0; i < 100; i++)); do
        [ -s "$data/$n.ready" ] && break
        if ! kill -0 "${pids[$((n - 1))]}" 2>/dev/null; then
            echo "run-cluster: broker $n did not start; the end of $data/$n.log:" >&2
            tail -n 5 "$data/$n.log" >&2
            stop_all
        fi
        sleep 0.1
    done
done

cat <<EOF
run-cluster: three brokers of cluster 'stream', data and logs in $data/
  node 1  clients ${clients[0]}  raft 127.0.0.1:9301  pid ${pids[0]}
  node 2  clients ${clients[1]}  raft 127.0.0.1:9302  pid ${pids[1]}
  node 3  clients ${clients[2]}  raft 127.0.0.1:9303  pid ${pids[2]}
Try:   $build/stream-topics -b ${clients[0]} cluster
       $build/stream-topics -b ${clients[0]} create orders -p 3 -r 3
       $build/stream-topics -b ${clients[1]} describe orders
       (kill -9 a pid above and ask again: new leaders within a second)
Stop:  Ctrl-C here (or kill -TERM $$)
EOF
# Wait for Ctrl-C; a broker that dies on its own is reported.
while :; do
    for n in 1 2 3; do
        pid=${pids[$((n - 1))]}
        if [ "$pid" != 0 ] && ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid"
            echo "run-cluster: broker $n (pid $pid) exited with status $?; see $data/$n.log"
            pids[$((n - 1))]=0
        fi
    done
    sleep 1 &
    wait $!
done
