#!/usr/bin/env bats
# stream-broker's GET /metrics (--metrics-listen): Prometheus's text format
# checked by promtool on every scrape, figures that match what the clients
# did, refusals, the example config and alert rules of share/prometheus/,
# and a real Prometheus server scraping a broker and answering a query.
# Every server here is on a free loopback port in the test's temp dir.

load helpers
load cluster_lib # free_ports, the cluster test

teardown() {
    cluster_stop
    if [ -n "${PROM_PID:-}" ]; then
        kill "$PROM_PID" 2>/dev/null
        wait "$PROM_PID" 2>/dev/null || true
    fi
    stop_broker
    # Every broker here stopped cleanly under the sanitizers: no report in its log.
    ! grep -l 'Sanitizer\|runtime error' "${BROKER_LOG:-/dev/null}" "${CLUSTER_DIR:-/nonexistent}"/n*/log \
        2>/dev/null
}

# The metrics port of the running broker, from its log line.
metrics_port() {
    sed -n 's|.*metrics on http://127\.0\.0\.1:\([0-9]*\)/metrics.*|\1|p' "$BROKER_LOG" | tail -1
}

# Scrapes into $BATS_TEST_TMPDIR/scrape (headers in scrape.h) and checks it
# with promtool.
scrape() {
    curl -sS --max-time 10 -D "$BATS_TEST_TMPDIR/scrape.h" -o "$BATS_TEST_TMPDIR/scrape" \
        "http://127.0.0.1:$(metrics_port)/metrics"
    promtool check metrics <"$BATS_TEST_TMPDIR/scrape"
}

# The value of one series (name and labels exactly as written) in the last scrape.
value() {
    awk -v s="$1" '$1 == s { print $2; found = 1 } END { exit !found }' "$BATS_TEST_TMPDIR/scrape"
}

@test "metrics: a scrape passes promtool and counts what producers, consumers and groups did" {
    start_broker --metrics-listen 127.0.0.1:0
    [ -n "$(metrics_port)" ]
    seq 1 500 | stream-pub -t m1
    stream-sub -t m1 -o beginning -e >/dev/null
    # A group reads all 500 and commits; 100 more are then left unread.
    run stream-sub -g g1 -t m1 -o beginning -e
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 500 ]
    seq 501 600 | stream-pub -t m1
    scrape
    grep -qi '^content-type: text/plain; version=0.0.4' "$BATS_TEST_TMPDIR/scrape.h"
    [ "$(value 'stream_topic_records_in_total{topic="m1"}')" -eq 600 ]
    size=$(value 'stream_log_size_bytes{topic="m1",partition="0"}')
    [ "$(value 'stream_topic_bytes_in_total{topic="m1"}')" -eq "$size" ]
    # Two full reads of the first 500 (plain and group).
    [ "$(value 'stream_topic_bytes_out_total{topic="m1"}')" -ge "$size" ]
    [ "$(value 'stream_log_end_offset{topic="m1",partition="0"}')" -eq 600 ]
    [ "$(value 'stream_log_start_offset{topic="m1",partition="0"}')" -eq 0 ]
    [ "$(value 'stream_log_segments{topic="m1",partition="0"}')" -ge 1 ]
    [ "$(value 'stream_requests_total{op="produce"}')" -ge 2 ]
    [ "$(value 'stream_request_duration_seconds_count{op="produce"}')" -eq \
        "$(value 'stream_requests_total{op="produce"}')" ]
    [ "$(value 'stream_request_duration_seconds_bucket{op="produce",le="+Inf"}')" -eq \
        "$(value 'stream_requests_total{op="produce"}')" ]
    # acks=all (stream-pub's default) waits for a sync: rounds were counted.
    [ "$(value 'stream_fsync_duration_seconds_count')" -ge 1 ]
    [ "$(value 'stream_fsync_batch_records_sum')" -ge 600 ]
    [ "$(value 'stream_group_lag_records{group="g1",topic="m1",partition="0"}')" -eq 100 ]
    lag_s=$(value 'stream_group_lag_seconds{group="g1",topic="m1",partition="0"}')
    awk -v v="$lag_s" 'BEGIN { exit !(v >= 0 && v < 600) }'
    [ "$(value 'stream_group_members{group="g1"}')" -eq 0 ] # it left
    [ "$(value 'stream_group_rebalances_total{group="g1"}')" -ge 1 ]
    [ "$(value 'stream_connections{listener="native"}')" -eq 0 ]
    [ "$(value 'stream_connections_accepted_total')" -ge 4 ]
    [ "$(value 'stream_process_open_fds')" -gt 0 ]
    [ "$(value 'stream_process_resident_memory_bytes')" -gt 0 ]
    [ "$(value 'stream_data_dir_free_bytes')" -gt 0 ]
    # The group catches up: lag 0 records, 0 seconds.
    run stream-sub -g g1 -t m1 -e
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 100 ]
    scrape
    [ "$(value 'stream_group_lag_records{group="g1",topic="m1",partition="0"}')" -eq 0 ]
    [ "$(value 'stream_group_lag_seconds{group="g1",topic="m1",partition="0"}')" = 0 ]
    [ "$(value 'stream_metrics_scrapes_total')" -eq 1 ]
}

@test "metrics: request errors are counted by op and code" {
    start_broker --metrics-listen 127.0.0.1:0
    run stream-topics group nosuch
    [ "$status" -ne 0 ]
    run stream-topics group nosuch
    scrape
    [ "$(value 'stream_request_errors_total{op="describe_group",code="ENOGROUP"}')" -eq 2 ]
    [ "$(value 'stream_requests_total{op="describe_group"}')" -eq 2 ]
}

@test "metrics: only GET /metrics is served; other paths 404, other methods 405" {
    start_broker --metrics-listen 127.0.0.1:0 --kafka-listen 127.0.0.1:0
    port=$(metrics_port)
    scrape
    # Connections are counted per listener: the Kafka listener has its own.
    [ "$(value 'stream_connections{listener="kafka"}')" -eq 0 ]
    [ "$(value 'stream_connections{listener="native"}')" -eq 0 ]
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/other")" = 404 ]
    [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/metrics")" = 405 ]
    [ "$(curl -s -o /dev/null -w '%{http_code}' -I "http://127.0.0.1:$port/metrics")" = 200 ]
    # The broker still serves its clients afterwards.
    echo hi | stream-pub -t after
}

@test "metrics: scrapes under produce load pass promtool; bad bytes and idle clients on the port harm nothing" {
    start_broker --metrics-listen 127.0.0.1:0
    port=$(metrics_port)
    stream-bench produce -t load -n 100000 -s 100 --acks all -q --json >"$BATS_TEST_TMPDIR/bench" &
    local bench=$! i
    for i in 1 2 3 4 5; do
        scrape
    done
    # Garbage, a request line without an end, and a client that says nothing.
    python3 - "$port" <<'PY'
import os, socket, sys, time
port = int(sys.argv[1])
idle = socket.create_connection(("127.0.0.1", port))
half = socket.create_connection(("127.0.0.1", port))
half.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
for payload in (os.urandom(4096), b"\x00" * 100 + b"\r\n\r\n", b"GET " + b"A" * 20000 + b" HTTP/1.1\r\n\r\n"):
    s = socket.create_connection(("127.0.0.1", port))
    try:
        s.sendall(payload)
        s.settimeout(5)
        s.recv(1024)
    except OSError:
        pass
    s.close()
time.sleep(0.2)
PY
    wait "$bench"
    scrape
    [ "$(value 'stream_topic_records_in_total{topic="load"}')" -eq 100000 ]
    echo still | stream-pub -t load
    kill -0 "$BROKER_PID"
}

@test "metrics: off opens nothing; a busy port and a bad address are refused clearly" {
    start_broker --metrics-listen off
    run grep -q 'metrics on' "$BROKER_LOG"
    assert_failure
    stop_broker
    # Take a port with one broker, then ask another broker for it.
    BROKER_DIR= start_broker --metrics-listen 127.0.0.1:0
    port=$(metrics_port)
    run stream-broker --listen 127.0.0.1:0 --data-dir "$BATS_TEST_TMPDIR/other" \
        --metrics-listen "127.0.0.1:$port"
    [ "$status" -eq 1 ]
    [[ "$output" == *"metrics.listen: cannot listen on 127.0.0.1:$port"*"--metrics-listen off"* ]]
    run stream-broker --metrics-listen nonsense --data-dir "$BATS_TEST_TMPDIR/other"
    [ "$status" -eq 2 ]
    [[ "$output" == *"--metrics-listen: metrics.listen: 'nonsense' is not HOST:PORT or off"* ]]
    # The settings file takes it too.
    printf 'metrics.listen=127.0.0.1:%s\n' "$port" >"$BATS_TEST_TMPDIR/b.conf"
    run stream-broker --listen 127.0.0.1:0 --data-dir "$BATS_TEST_TMPDIR/other" \
        -c "$BATS_TEST_TMPDIR/b.conf"
    [ "$status" -eq 1 ]
    [[ "$output" == *"metrics.listen: cannot listen"* ]]
}

@test "metrics: share/prometheus passes promtool check config and check rules" {
    run promtool check config "$BATS_TEST_DIRNAME/../../share/prometheus/prometheus.yml"
    [ "$status" -eq 0 ]
    run promtool check rules "$BATS_TEST_DIRNAME/../../share/prometheus/stream-alerts.yml"
    [ "$status" -eq 0 ]
    [[ "$output" == *"SUCCESS: 4 rules found"* ]]
}

@test "metrics: a real Prometheus server scrapes the broker and answers a query" {
    start_broker --metrics-listen 127.0.0.1:0
    seq 1 42 | stream-pub -t promq
    local dir=$BATS_TEST_TMPDIR/prom port
    mkdir -p "$dir"
    port=$(free_ports 1)
    cp "$BATS_TEST_DIRNAME/../../share/prometheus/stream-alerts.yml" "$dir/"
    # The example config, pointed at this broker and scraping every 200 ms.
    sed -e "s/127.0.0.1:9293/127.0.0.1:$(metrics_port)/" \
        -e 's/scrape_interval: 15s/scrape_interval: 200ms/' \
        -e 's/evaluation_interval: 15s/evaluation_interval: 1s/' \
        "$BATS_TEST_DIRNAME/../../share/prometheus/prometheus.yml" >"$dir/prometheus.yml"
    prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
        --web.listen-address="127.0.0.1:$port" </dev/null >"$dir/log" 2>&1 3>&- &
    PROM_PID=$!
    local i got=
    for ((i = 0; i < 300; i++)); do
        got=$(curl -s --max-time 2 "http://127.0.0.1:$port/api/v1/query" \
            --data-urlencode 'query=stream_topic_records_in_total{topic="promq"}' |
            jq -r '.data.result[0].value[1] // empty' 2>/dev/null) || true
        [ -n "$got" ] && break
        kill -0 "$PROM_PID" || { cat "$dir/log" >&2; false; }
        sleep 0.1
    done
    [ "$got" = 42 ]
    # The alert rules loaded and evaluate against the broker's series.
    run curl -s "http://127.0.0.1:$port/api/v1/rules"
    [[ "$output" == *'"name":"StreamDiskAlmostFull"'* ]]
    [[ "$output" != *'"health":"err"'* ]]
}

# The value of series $2 in a scrape of cluster node $1 (checked by promtool).
node_value() {
    local port
    port=$(sed -n 's|.*metrics on http://127\.0\.0\.1:\([0-9]*\)/metrics.*|\1|p' \
        "$CLUSTER_DIR/n$1/log" | tail -1)
    curl -sS --max-time 10 -o "$BATS_TEST_TMPDIR/scrape" "http://127.0.0.1:$port/metrics"
    promtool check metrics <"$BATS_TEST_TMPDIR/scrape"
    value "$2"
}

@test "metrics: a cluster's brokers report the quorum, elections and an ISR shrink" {
    CLUSTER_SET="--set replica.lag.time.max.ms=1000"
    cluster_start 3 --metrics-listen 127.0.0.1:0
    stream-topics create rep -p 2 -r 3
    seq 1 100 | stream-pub -t rep -p 0
    local k leaders=0 elections=0 lead
    for k in 1 2 3; do
        [ "$(node_value "$k" stream_raft_term)" -ge 1 ]
        [ "$(node_value "$k" stream_raft_commit_index)" -ge "$(value stream_raft_applied_index)" ]
        leaders=$((leaders + $(node_value "$k" stream_raft_leader)))
        elections=$((elections + $(node_value "$k" stream_leader_elections_total)))
        [ "$(node_value "$k" stream_partitions_under_replicated)" -eq 0 ]
    done
    [ "$leaders" -eq 1 ]
    [ "$elections" -ge 2 ]
    # Stop a follower of partition 0: its leader reports the shrink.
    lead=$(leader_of rep 0)
    local victim=$((lead % 3 + 1))
    node_kill "$victim"
    local i ok=
    for ((i = 0; i < 200; i++)); do
        if [ "$(node_value "$lead" stream_isr_shrinks_total)" -ge 1 ] &&
            [ "$(node_value "$lead" stream_partitions_under_replicated)" -ge 1 ]; then
            ok=1
            break
        fi
        sleep 0.1
    done
    [ -n "$ok" ]
    cluster_stop
}
