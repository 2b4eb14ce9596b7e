#!/usr/bin/env bats
# stream-sub --post: the HTTP sink against a real endpoint
# (http_sink_server.py on a loopback port): batches in the --json envelope,
# --post-each, -H, retries honouring Retry-After, giving up (exit 6),
# refusals (exit 7) and the dead-letter topic, dropped connections, slow
# answers, an unreachable URL, TLS (refused self-signed certificate,
# --cacert, --insecure), HTTP/2 on one connection (nghttpd), large answers in bounded memory, group commits
# only after delivery, and kill -9 under load 3 times with the checker
# (http_sink_kill.sh; the 25-kill run is make soak-http-sink).

bats_require_minimum_version 1.5.0

load helpers

SERVER=$BATS_TEST_DIRNAME/http_sink_server.py

setup() {
    start_broker --set group.min.session.timeout.ms=500
    cd "$BATS_TEST_TMPDIR"
    SERVER_PID= H2_PID=
}

teardown() {
    [ -z "${SERVER_PID:-}" ] || { kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; }
    [ -z "${H2_PID:-}" ] || { kill "$H2_PID" 2>/dev/null; wait "$H2_PID" 2>/dev/null; }
    stop_broker
}

# start_server [ARGS...]: the endpoint, writing what it took to ./out and
# every request to ./log; sets URL.
start_server() {
    rm -f port out log
    /usr/bin/python3 "$SERVER" --port-file port --out out --log log "$@" </dev/null 3>&- &
    SERVER_PID=$!
    local i
    for ((i = 0; i < 200; i++)); do
        [ -s port ] && break
        sleep 0.05
    done
    [ -s port ]
    URL=http://127.0.0.1:$(cat port)/in
}

# Offsets per partition in arrival order, from ./out: "P:O P:O ...".
arrivals() {
    /usr/bin/python3 -c '
import json, sys
for line in open("out"):
    r = json.loads(line); print("%d:%d" % (r["partition"], r["offset"]))'
}

@test "--help shows the sink's options; bad sink options exit 2 before any work" {
    run stream-sub --help
    assert_success
    assert_output --partial '--post URL'
    assert_output --partial '--dead-letter TOPIC'
    export STREAM_BROKERS=127.0.0.1:1
    run -2 stream-sub -t t --post-batch 5
    assert_output --partial 'go with --post URL'
    run -2 stream-sub -t t -H 'X: y'
    run -2 stream-sub -t t --post ftp://h/x
    assert_output --partial 'http:// or https://'
    run -2 stream-sub -t t --post http://h/x -f '%v'
    run -2 stream-sub -t t --post http://h/x --msgpack
    run -2 stream-sub -t t --post http://h/x -H 'Bad Name: v'
    assert_output --partial "-H 'Bad Name: ...'"
    run -2 stream-sub -t t --post http://h/x -H 'Authorization: Bearer s3cret'$'\x01'
    refute_output --partial 's3cret'
    run -2 stream-sub -t t --post http://h/x -H @no-such-file
    assert_output --partial 'no-such-file'
    run -2 stream-sub -t t --post http://h/x --dead-letter 'bad name'
    run -2 stream-sub -t t --post http://h/x --post-batch 0
}

@test "batches are the --json envelope, in order per partition, with Stream-* headers" {
    stream-topics create t -p 3
    seq 1 2000 | sed 's/^/k&:/' | stream-pub -t t -K: -H h=v
    start_server
    run stream-sub -t t -e --post "$URL" --post-batch 100
    assert_success
    assert_output ''
    # Exactly what stream-sub --json prints, record for record.
    stream-sub -t t -e --json | sort >want
    sort out >got
    cmp want got
    # Per partition the offsets arrive 0, 1, 2, ... (several partitions in flight).
    arrivals | awk -F: '$2 != next_[$1]++ { print "partition " $1 " got " $2; bad = 1 }
                       END { exit bad }'
    # Batches of at most 100 records of one partition, and their headers.
    run jq -s 'map(.headers["stream-count"][0] | tonumber) | max' log
    assert_output 100
    run jq -r 'select(.n == 1) | .headers["content-type"][0], .headers["stream-topic"][0]' log
    assert_output $'application/x-ndjson\nt'
    [ "$(jq -s 'length' log)" -ge 20 ]
    [ "$(jq -s 'length' log)" -le 25 ]
}

@test "--post-linger sends a partial batch; the sink follows the topic" {
    stream-topics create t -p 1
    start_server
    stream-sub -t t --post "$URL" --post-linger 100 3>&- &
    local sub=$!
    echo one | stream-pub -t t
    local i
    for ((i = 0; i < 200; i++)); do
        [ -s out ] && break
        sleep 0.05
    done
    run jq -r .value out
    assert_output one
    echo two | stream-pub -t t
    for ((i = 0; i < 200; i++)); do
        [ "$(wc -l <out)" -ge 2 ] && break
        sleep 0.05
    done
    kill -TERM "$sub"
    local rc=0
    wait "$sub" || rc=$?
    [ "$rc" = 0 ]
    run jq -r .value out
    assert_output $'one\ntwo'
}

@test "--post-each: the value is the body, key and headers percent-encoded; -H and -H @FILE" {
    stream-topics create t -p 1
    printf '%s\n' '{"key":"k ey/é","value":"AAEC/w==","value_encoding":"base64","headers":[["a b","x=y"],["n",null]]}' \
        '{"key":null,"value":null}' | stream-pub -t t --json
    start_server --each
    run stream-sub -t t -e --post "$URL" --post-each -H 'Authorization: Bearer abc'
    assert_success
    run jq -r 'select(.headers["stream-offset"][0] == "0") |
        .body_b64, .headers["stream-key"][0], (.headers["stream-header"] | join(" ")),
        .headers["content-type"][0], .headers["authorization"][0]' out
    assert_output $'AAEC/w==\nk%20ey%2F%C3%A9\na%20b=x%3Dy n\napplication/octet-stream\nBearer abc'
    # A null key sends no Stream-Key; a tombstone an empty body and Stream-Value-Null.
    run jq -r 'select(.headers["stream-offset"][0] == "1") |
        (.headers | has("stream-key")), .body_b64, .headers["stream-value-null"][0]' out
    assert_output $'false\n\ntrue'
    # -H @FILE: each header of the file; blank and # lines skipped.
    printf '# secret\nAuthorization: Bearer from-file\n\nX-Two: 2\n' >headers
    : >log
    run stream-sub -t t -e -c 1 --post "$URL" -H @headers -H 'X-Three: 3'
    assert_success
    run jq -r '.headers["authorization"][0], .headers["x-two"][0], .headers["x-three"][0]' log
    assert_output $'Bearer from-file\n2\n3'
    printf 'Authorization Bearer s3cret\n' >bad
    run -2 stream-sub -t t -e --post "$URL" -H @bad
    assert_output --partial 'bad line 1'
    refute_output --partial 's3cret'
}

@test "429 with Retry-After is retried after the server's wait; nothing lost" {
    stream-topics create t -p 1
    seq 1 50 | stream-pub -t t
    start_server --fail-first 1 --status 429 --retry-after 1
    local t0
    t0=$(date +%s%N)
    run stream-sub -t t -e --post "$URL"
    assert_success
    # 1 s between the two requests (a backoff would be 100-200 ms).
    [ $(($(date +%s%N) - t0)) -ge 1000000000 ]
    run jq -r .status log
    assert_output $'429\n200'
    [ "$(wc -l <out)" = 50 ]
}

@test "5xx after --post-retries: exit 6 with the answer; the group commits nothing" {
    stream-topics create t -p 1
    seq 1 10 | stream-pub -t t
    start_server --always 503
    run -6 stream-sub -t t -g G -e --post "$URL" --post-retries 2
    assert_output --partial "POST $URL: gave up after 2 retries: HTTP 503"
    [ "$(jq -s length log)" = 3 ]
    run stream-topics group G --json
    refute_output --partial '"offset":10'
}

@test "a 4xx stops the run with exit 7 unless --dead-letter takes the records" {
    stream-topics create t -p 1
    stream-topics create dlq -p 1
    printf 'a:1\nb:bad\nc:3\n' | stream-pub -t t -K: -H trace=xyz
    start_server --reject-containing bad --each
    run -7 stream-sub -t t -g G -e --post "$URL" --post-each
    assert_output --partial 'refused records of topic'
    assert_output --partial 'offsets 1..1: HTTP 400'
    assert_output --partial '--dead-letter'
    # Only the record before the refused one is committed.
    run jq -r '.offsets[] | select(.partition == 0) | .offset' <(stream-topics group G --json)
    assert_output 1
    # Again with a dead-letter topic: the group goes on from offset 1.
    run stream-sub -t t -g G -e --post "$URL" --post-each --dead-letter dlq
    assert_success
    run stream-sub -t dlq -e -f '%k %v %h\n'
    assert_output --partial 'b bad trace=xyz,stream.dlq.url=http://127.0.0.1'
    assert_output --partial 'stream.dlq.status=400,stream.dlq.response=no such thing: 400'
    assert_output --partial 'stream.dlq.topic=t,stream.dlq.partition=0,stream.dlq.offset=1'
    run jq -r '.headers["stream-offset"][0]' out
    assert_output $'0\n2'
    run jq -r '.offsets[] | select(.topic == "t") | .offset' <(stream-topics group G --json)
    assert_output 3
    # Batches: a refused batch goes to the dead-letter topic whole.
    run stream-sub -t t -e --post "$URL" --post-batch 10 --dead-letter dlq
    assert_success
    run stream-sub -t dlq -e -o 1 -f '%v %h\n'
    assert_output --partial '1 trace=xyz,stream.dlq.url='
    assert_output --partial 'stream.dlq.status=400'
    run stream-sub -t dlq -e -o 1
    assert_output $'1\nbad\n3'
}

@test "dropped connections, slow answers (--post-timeout), an unreachable URL: retried, then exit 6" {
    stream-topics create t -p 1
    seq 1 20 | stream-pub -t t
    start_server --drop-first 2
    run stream-sub -t t -e --post "$URL"
    assert_success
    [ "$(wc -l <out)" = 20 ]
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    start_server --slow 3000
    run -6 stream-sub -t t -e --post "$URL" --post-timeout 300 --post-retries 1
    assert_output --partial 'gave up after 1 retries'
    assert_output --partial 'imed out'
    # An unreachable URL: retried, then exit 6 naming it.
    # A port nobody listens on: bind one, then close it.
    local port
    port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    run -6 stream-sub -t t -e --post "http://127.0.0.1:$port/x" --post-retries 1
    assert_output --partial "POST http://127.0.0.1:$port/x: gave up after 1 retries"
    assert_output --partial 'onnect'
}

@test "TLS: a self-signed certificate is refused; --cacert trusts it; --insecure skips; HTTP/2" {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
        -keyout key.pem -out cert.pem 2>/dev/null
    stream-topics create t -p 4
    seq 1 5 | sed 's/.*/&:&/' | stream-pub -t t -K:
    start_server --tls cert.pem key.pem
    URL=https://127.0.0.1:$(cat port)/in
    run -1 stream-sub -t t -e --post "$URL" --post-retries 3
    assert_output --partial "POST $URL"
    assert_output --partial '--cacert'
    [ ! -s out ]
    run stream-sub -t t -e --post "$URL" --cacert cert.pem
    assert_success
    [ "$(wc -l <out)" = 5 ]
    run stream-sub -t t -e --post "$URL" --insecure
    assert_success
    [ "$(wc -l <out)" = 10 ]
    # HTTP/2 over TLS (nghttpd answers 200 with the file at the path): every
    # request on one connection, as streams of it, though several partitions
    # are in flight at once.
    mkdir -p docs
    echo ok >docs/in
    local port i
    for ((i = 0; i < 5; i++)); do
        port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        nghttpd -a 127.0.0.1 -d docs -v "$port" key.pem cert.pem >h2.log 2>&1 3>&- &
        H2_PID=$!
        sleep 0.2
        kill -0 "$H2_PID" 2>/dev/null && break
    done
    run stream-sub -t t -e --post "https://127.0.0.1:$port/in" --post-batch 1 --cacert cert.pem
    kill "$H2_PID"
    wait "$H2_PID" 2>/dev/null || true
    assert_success
    [ "$(grep -o '^\[id=[0-9]*\]' h2.log | sort -u)" = '[id=1]' ]
    [ "$(grep -o 'recv HEADERS frame <length=[0-9]*, flags=0x04, stream_id=[0-9]*' h2.log | wc -l)" = 5 ]
    [ "$(grep -o 'stream_id=[0-9]*' h2.log | sort -u | wc -l)" -ge 5 ]
}

@test "large answers are read and dropped: memory stays bounded" {
    stream-topics create t -p 1
    seq 1 400 | stream-pub -t t
    start_server
    /usr/bin/time -f %M -o small.rss stream-sub -t t -e --post "$URL" --post-batch 200
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    start_server --big-answer 30000000
    /usr/bin/time -f %M -o big.rss stream-sub -t t -e --post "$URL" --post-batch 200
    [ "$(wc -l <out)" = 400 ]
    # Two answers of 30 MB each; the sink's peak grows by far less than one.
    echo "peak RSS: $(cat small.rss) KiB with small answers, $(cat big.rss) KiB with 30 MB ones"
    [ $(($(cat big.rss) - $(cat small.rss))) -lt 15000 ]
}

@test "-g commits only what was delivered; a second run sends nothing again; two members share" {
    stream-topics create t -p 2
    seq 1 300 | sed 's/.*/&:&/' | stream-pub -t t -K:
    start_server
    run stream-sub -t t -g G -e --post "$URL"
    assert_success
    local n
    n=$(wc -l <out)
    run jq -r '[.offsets[].lag] | add' <(stream-topics group G --json)
    assert_output 0
    run -3 stream-sub -t t -g G -e --post "$URL"
    [ "$(wc -l <out)" = "$n" ]
    # Two members share the partitions of a new group: each record once, in
    # order per partition.
    : >out
    stream-sub -t t -g G2 -e --post "$URL" --post-batch 7 3>&- &
    local m1=$!
    stream-sub -t t -g G2 -e --post "$URL" --post-batch 7 3>&- &
    local m2=$! rc1=0 rc2=0
    wait "$m1" || rc1=$?
    wait "$m2" || rc2=$?
    [ "$rc1" != 1 ] && [ "$rc2" != 1 ]
    run jq -r '[.offsets[].lag] | add' <(stream-topics group G2 --json)
    assert_output 0
    [ "$(jq -r '"\(.partition):\(.offset)"' out | sort -u | wc -l)" = 300 ]
    jq -r '"\(.partition) \(.offset)"' out |
        awk '$1 in last && $2 <= last[$1] { print "partition " $1 ": " $2 " after " last[$1]; bad = 1 }
             { last[$1] = $2 } END { exit bad }'
}

@test "kill -9 of stream-sub --post -g under load, 3 times: nothing lost, order kept" {
    stop_broker
    run "$BATS_TEST_DIRNAME/http_sink_kill.sh" "${STREAM_BUILD:-$(dirname "$(command -v stream-sub)")}" 3
    echo "$output"
    assert_success
    assert_output --partial 'nothing lost, order kept'
}
