#!/usr/bin/env bats
# stream-pub --url: the HTTP source against a real HTTP server
# (http_source_server.py, Python's http.server) and a real broker - one GET
# split as stdin is (lines, -K, -H, -l, --json-array), Server-Sent Events
# with id and event headers, --follow reconnecting across dropped
# connections and 5xx/429 (Retry-After), --resume after kill -9 (3 kills
# here, 20,000 events; `make soak-source` runs 25 kills, 200,000 events), --poll with ETag/304, TLS, and a clear
# error for each kind of bad input (issue 19).

bats_require_minimum_version 1.5.0

load helpers

setup() {
    start_broker
    cd "$BATS_TEST_TMPDIR"
    start_http
}

teardown() {
    [ -z "${PUB_PID:-}" ] || kill -KILL "$PUB_PID" 2>/dev/null
    [ -z "${HTTP_PID:-}" ] || kill -TERM "$HTTP_PID" 2>/dev/null
    stop_broker
}

# Starts the test server (extra ARGS: --tls CERT KEY); sets URL and HTTP_PID.
start_http() {
    rm -f http.port
    /usr/bin/python3 "$BATS_TEST_DIRNAME/http_source_server.py" http.port --dir "$PWD" \
        --log requests.log "$@" </dev/null >http.log 2>&1 3>&- &
    HTTP_PID=$!
    local i
    for ((i = 0; i < 200; i++)); do
        [ -s http.port ] && break
        sleep 0.05
    done
    [ -s http.port ] || { cat http.log; return 1; }
    URL=http://127.0.0.1:$(cat http.port)
}

count() { stream-sub -t "$1" -o beginning -e 2>/dev/null | wc -l; }

@test "one GET: a record per line, -K and -H apply as for stdin" {
    stream-topics create t -p 1
    printf 'k1:v1\nk2:v2\nk3:v3\n' > kv.txt
    run -0 stream-pub -t t --url "$URL/file/kv.txt" -K : -H src=web
    [ -z "$output" ]  # quiet on success
    run -0 stream-sub -t t -e -f '%k=%v %h\n'
    assert_output $'k1=v1 src=web\nk2=v2 src=web\nk3=v3 src=web'
}

@test "--whole: the body is one record; --json-array: an element per record" {
    stream-topics create t -p 1
    printf 'a\nb\n' > two.txt
    printf ' [1, "two", {"x": [3, "]"]}, null, true ] \n' > arr.json
    run -0 stream-pub -t t --url "$URL/file/two.txt" -l
    run -0 stream-pub -t t --url "$URL/file/arr.json" --json-array
    run -0 stream-sub -t t -e -f '[%s]\n'
    assert_output $'[a\nb\n]\n[1]\n["two"]\n[{"x": [3, "]"]}]\n[null]\n[true]'
}

@test "chunked JSON lines; --json reads the lossless envelope from a URL as from stdin" {
    stream-topics create t -p 1
    run -0 stream-pub -t t --url "$URL/chunked?n=3"
    run -0 stream-sub -t t -e
    assert_output $'{"i":1}\n{"i":2}\n{"i":3}'
    stream-topics create copy -p 1
    printf 'k\tv\n' | stream-pub -t t -K $'\t' -H h=1
    stream-sub -t t -e --json > env.json
    run -0 stream-pub -t copy --url "$URL/file/env.json" --json
    run -0 stream-sub -t copy -e -f '%k|%v|%h\n'
    assert_line --index 3 'k|v|h=1'
}

@test "--json-array: a malformed array stops with its byte offset; elements before it stay" {
    stream-topics create t -p 1
    printf '[1, 2, {"a": tru}, 4]' > bad.json
    run -1 stream-pub -t t --url "$URL/file/bad.json" --json-array
    assert_output --partial 'malformed JSON array: element 3'
    assert_output --partial 'records read before it: 2'
    [ "$(count t)" -eq 2 ]
    printf '[1, 2, ' > short.json
    run -1 stream-pub -t t --url "$URL/file/short.json" --json-array
    assert_output --partial 'ends inside the array after 2 elements'
    printf '{"not": "an array"}' > obj.json
    run -1 stream-pub -t t --url "$URL/file/obj.json" --json-array
    assert_output --partial "expected '['"
}

@test "an event stream: data is the value, id and event are headers" {
    stream-topics create t -p 1
    run -0 stream-pub -t t --url "$URL/sse?n=3"
    run -0 stream-sub -t t -e -f '%h %s\n'
    assert_output $'id=1,event=tick event-1\nid=2,event=tick event-2\nid=3,event=tick event-3'
}

@test "--follow: dropped connections are resumed with Last-Event-ID, nothing skipped or repeated" {
    stream-topics create t -p 1
    stream-pub -t t --url "$URL/sse?n=40&drop=9" --follow -q 3>&- &
    PUB_PID=$!
    wait_until 60 '[ "$(count t)" -ge 40 ]'
    kill -TERM "$PUB_PID"
    wait "$PUB_PID"
    PUB_PID=
    run -0 stream-sub -t t -e -f '%s\n'
    assert_output "$(seq -f 'event-%g' 1 40)"
    # Each connection dropped mid-event asked again for the event it lost.
    run -0 awk '{print $2}' requests.log
    assert_line --index 0 -- '-'
    assert_line --index 1 8
    assert_line --index 2 16
}

@test "--follow: 500 and 429 answers are retried (Retry-After honoured), 404 stops" {
    stream-topics create t -p 1
    stream-pub -t t --url "$URL/flaky/a?fail=2&code=500" --poll 60 -q 3>&- &
    PUB_PID=$!
    wait_until 30 '[ "$(count t)" -ge 3 ]'
    kill -TERM "$PUB_PID"; wait "$PUB_PID" || true; PUB_PID=
    [ "$(grep -c '^/flaky/a ' requests.log)" -eq 3 ]
    stream-pub -t t --url "$URL/flaky/b?fail=1&code=429&retry_after=1" --poll 60 3>&- 2>err &
    PUB_PID=$!
    wait_until 30 '[ "$(count t)" -ge 6 ]'
    kill -TERM "$PUB_PID"; wait "$PUB_PID" || true; PUB_PID=
    grep -q 'HTTP 429' err
    grep -q 'trying again in 1.0 s' err
    # The second request came no sooner than Retry-After said.
    run -0 awk '$1 == "/flaky/b" { t[n++] = $3 } END { exit !(n == 2 && t[1] - t[0] >= 0.95) }' requests.log
    run -1 stream-pub -t t --url "$URL/nothing" --follow
    assert_output --partial 'HTTP 404'
}

@test "--resume: kill -9 under load three times, every event exactly once (short soak)" {
    # The same script as `make soak-source` (25 kills, 200,000 events).
    run -0 "$BATS_TEST_DIRNAME/../soak/source-soak.sh" "$(dirname "$(command -v stream-pub)")" 3 20000
    assert_line --regexp '^ok 1 - source soak: 3 kills'
}

@test "--resume: takes the last record's id; a topic of several partitions needs -p" {
    stream-topics create t -p 1
    run -0 stream-pub -t t --url "$URL/sse?n=5"
    : > requests.log
    stream-pub -t t --url "$URL/sse?n=8" --follow --resume -q 3>&- &
    PUB_PID=$!
    wait_until 30 '[ "$(count t)" -ge 8 ]'
    kill -TERM "$PUB_PID"; wait "$PUB_PID"; PUB_PID=
    run -0 stream-sub -t t -e -f '%s\n'
    assert_output "$(seq -f 'event-%g' 1 8)"
    run -0 head -1 requests.log
    assert_output --regexp '^/sse 5 '
    stream-topics create wide -p 3
    run -1 stream-pub -t wide --url "$URL/sse?n=1" --follow --resume
    assert_output --partial "topic 'wide' has 3 partitions: give -p N"
}

@test "--poll: an unchanged resource (ETag, 304) produces nothing; a change is published" {
    stream-topics create t -p 1
    printf 'one\ntwo\n' > doc.txt
    stream-pub -t t --url "$URL/file/doc.txt" --poll 1 -q 3>&- &
    PUB_PID=$!
    wait_until 30 '[ "$(count t)" -ge 2 ]'
    wait_until 30 '[ "$(grep -c "^/file/doc.txt " requests.log)" -ge 2 ]'
    [ "$(count t)" -eq 2 ]
    printf 'three\n' > doc.txt
    touch -d '+2 seconds' doc.txt
    wait_until 30 '[ "$(count t)" -ge 3 ]'
    kill -TERM "$PUB_PID"; wait "$PUB_PID"; PUB_PID=
    run -0 stream-sub -t t -e
    assert_output $'one\ntwo\nthree'
    # Without an ETag, If-Modified-Since does the same.
    stream-topics create lm -p 1
    printf 'x\n' > lm.txt
    touch -d '-1 hour' lm.txt
    stream-pub -t lm --url "$URL/file/lm.txt?noetag=1" --poll 1 -q 3>&- &
    PUB_PID=$!
    wait_until 30 '[ "$(grep -c "^/file/lm.txt " requests.log)" -ge 2 ]'
    kill -TERM "$PUB_PID"; wait "$PUB_PID"; PUB_PID=
    [ "$(count lm)" -eq 1 ]
}

@test "a slow answer is published as it comes, before the response ends" {
    stream-topics create t -p 1
    stream-pub -t t --url "$URL/slow?n=2&ms=1500" -q 3>&- &
    PUB_PID=$!
    wait_until 30 '[ "$(count t)" -ge 1 ]'
    kill -0 "$PUB_PID"  # still reading the response
    wait "$PUB_PID"
    PUB_PID=
    [ "$(count t)" -eq 2 ]
}

@test "clear errors: unreachable, HTTP 500, dropped, invalid SSE, a line over the limit, no URL scheme" {
    stream-topics create t -p 1
    run -1 stream-pub -t t --url http://127.0.0.1:1/x
    assert_output --partial 'GET http://127.0.0.1:1/x:'
    assert_output --partial "onnect"
    run -1 stream-pub -t t --url "$URL/status/500"
    assert_output --partial 'HTTP 500 Internal Server Error: server says 500'
    run -1 stream-pub -t t --url "$URL/drop?n=10"
    assert_output --partial 'GET '
    run -1 stream-pub -t t --url "$URL/sse-bad"
    assert_output --partial 'invalid SSE: bytes that are not UTF-8'
    assert_output --partial 'records read before it: 1'
    run -1 stream-pub -t t --url ftp://example.com/x
    assert_output --partial 'is not an http:// or https:// URL'
    run -2 stream-pub -t t --follow
    assert_output --partial 'go with --url URL'
    run -2 stream-pub -t t --url "$URL/sse" --resume
    assert_output --partial '--resume goes with --follow'
}

@test "a 100 MB line: a clear error at the record limit, in bounded memory" {
    stream-topics create t -p 1
    run -1 /usr/bin/time -f 'maxrss %M' stream-pub -t t --url "$URL/big?bytes=100000000"
    assert_output --partial 'is longer than 67108864 bytes'
    # 64 MiB of line plus the buffers, far from the 100 MB answer (ASan
    # adds its own shadow and quarantine).
    rss=$(sed -n 's/^maxrss //p' <<<"$output")
    [ "$rss" -lt 400000 ] || { echo "max RSS $rss KiB"; return 1; }
    [ "$(count t)" -eq 0 ]
}

@test "a stopped broker stops the reading: the body is read no further than the producer's buffer" {
    stream-topics create t -p 1
    stream-pub -t t --url "$URL/endless" -q 3>&- &
    PUB_PID=$!
    written() { curl -s "$URL/count" | jq '.written // 0'; }
    # Once it publishes, the broker stops answering. The server's writes
    # stall once the producer's 64 MiB and the buffers on the way (the
    # source's 256 KiB, the splitter's, TCP's) are full: two looks a second
    # apart agree, less than 64 MiB and a margin after the stop.
    wait_until 60 '[ "$(written)" -gt 1000000 ]'
    kill -STOP "$BROKER_PID"
    local at_stop a b
    at_stop=$(written)
    b=$at_stop
    for ((i = 0; i < 60; i++)); do
        a=$b; sleep 1; b=$(written)
        [ "$a" = "$b" ] && break
    done
    kill -CONT "$BROKER_PID"
    echo "# $at_stop bytes read before the stop, $((b - at_stop)) after" >&3
    [ "$a" = "$b" ] || { echo "still reading: $a then $b bytes"; return 1; }
    [ "$((b - at_stop))" -lt $((72 << 20)) ] || { echo "read $((b - at_stop)) bytes after the stop"; return 1; }
    kill -KILL "$PUB_PID"; wait "$PUB_PID" || true; PUB_PID=
}

@test "--http-header: given, and read from @FILE as stream-sub -H reads it; a bad one is refused" {
    stream-topics create t -p 1
    printf '# tokens stay off the command line\n\nX-Token: secret-1\nX-Two: 2\n' > hdrs
    run -0 stream-pub -t t --url "$URL/headers" --http-header 'X-One: 1' --http-header @hdrs
    run -0 stream-sub -t t -e
    assert_output $'X-One: 1\nX-Token: secret-1\nX-Two: 2'
    run -2 stream-pub -t t --url "$URL/headers" --http-header $'X-Bad: a\rInjected: 1'
    assert_output --partial 'control character'
    printf 'X-Token: secret-2\nno colon here\n' > bad
    run -2 stream-pub -t t --url "$URL/headers" --http-header @bad
    assert_output --partial 'line 2'
    refute_output --partial 'secret-2'  # a file's lines are never quoted back
    [ "$(count t)" -eq 3 ]
}

@test "TLS: verified by default, --cacert trusts a CA, --insecure skips" {
    openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
        -addext subjectAltName=IP:127.0.0.1 -days 1 -keyout key.pem -out cert.pem 2>/dev/null
    kill -TERM "$HTTP_PID"
    start_http --tls cert.pem key.pem
    TLS=https://127.0.0.1:$(cat http.port)
    stream-topics create t -p 1
    run -1 stream-pub -t t --url "$TLS/lines?n=2"
    assert_output --partial 'certificate'
    assert_output --partial '--cacert FILE'
    run -0 stream-pub -t t --url "$TLS/lines?n=2" --cacert cert.pem
    run -0 stream-pub -t t --url "$TLS/lines?n=2" --insecure
    [ "$(count t)" -eq 4 ]
}

@test "progress only on a terminal" {
    stream-topics create t -p 1
    run -0 --separate-stderr stream-pub -t t --url "$URL/lines?n=5"
    [ -z "$stderr" ]
    run -0 script -qec "stream-pub -t t --url '$URL/lines?n=5'" /dev/null
    assert_output --partial '5 records'
}
