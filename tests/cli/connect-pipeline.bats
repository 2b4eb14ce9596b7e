#!/usr/bin/env bats
# The README's pipeline (## Pipeline: HTTP in, jq, HTTP out) runs as written:
# the ```sh block after the comment naming this file is taken from README.md,
# its `stream-topics` line run, and its three background commands -
# stream-pub --url --follow --resume, stream-proc ... -- jq, stream-sub
# --post - started as written against a real broker, http_source_server.py
# serving Server-Sent Events ($EVENTS_URL) and http_sink_server.py receiving
# ($HOOK_URL). Checked: every event reaches the endpoint transformed (the
# event id as key, the data in capitals), once and in order while nothing
# is killed; then each of the three programs is killed -9 once mid-stream
# and started again with the same command, and at the end every event is
# there, and each duplicate is a replay (the stream goes back, then on in
# order), at most one replay per kill (issue 19). The 25-kill loops of each
# connector are `make soak-connect`; this is the short version in make check.

bats_require_minimum_version 1.5.0

load helpers

EVENTS=600 # events in the stream, paced at RATE a second
RATE=100

setup() {
    start_broker --set group.min.session.timeout.ms=500
    cd "$BATS_TEST_TMPDIR"
    PIDS=()
}

teardown() {
    local p
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    stop_broker
}

# wait_port FILE PID: a test server's port file, written once it listens.
wait_port() {
    wait_until 10 "[ -s $1 ] || ! kill -0 $2" && [ -s "$1" ]
}

# The README block: the topics line into ./topics.sh, each background
# command (continuation lines joined) into ./cmd.NAME (NAME: stream-pub,
# stream-proc, stream-sub), without its trailing '&'.
split_readme() {
    /usr/bin/python3 - "$BATS_TEST_DIRNAME/../../README.md" <<'EOF'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
m = re.search(r"<!-- tests/cli/connect-pipeline\.bats runs the next block as written -->\n"
              r"```sh\n(.*?)^```\n", text, re.S | re.M)
if not m:
    sys.exit("README.md: no sh block marked for connect-pipeline.bats")
cmds = re.sub(r"\\\n\s*", "", m.group(1)).splitlines()
seen = set()
for c in cmds:
    prog = c.split()[0]
    if c.endswith("&"):
        open("cmd." + prog, "w").write(c[:-1].rstrip() + "\n")
        seen.add(prog)
    else:
        open("topics.sh", "a").write(c + "\n")
if seen != {"stream-pub", "stream-proc", "stream-sub"}:
    sys.exit("README.md: the pipeline block starts %s" % sorted(seen))
EOF
}

# start NAME: runs ./cmd.NAME as written (the program itself is the pid,
# through exec, so kill -9 hits it); its stderr to NAME.err.
start() {
    (eval "exec $(cat "cmd.$1")") </dev/null >>"$1.out" 2>>"$1.err" 3>&- &
    eval "PID_${1#stream-}=$!"
    PIDS+=($!)
}

# kill9 NAME: kill -9 and reap.
kill9() {
    local var=PID_${1#stream-}
    kill -KILL "${!var}"
    wait "${!var}" 2>/dev/null || true
}

# check FINAL: what the endpoint received (./out, JSON lines in stream-sub's
# --json envelope) against the events 1..EVENTS. Every line's key is an
# event id and its value EVENT-id. FINAL=0: what has arrived so far is
# exactly 1, 2, ..., n (no kill yet). FINAL=1: all of 1..EVENTS arrived, no
# line jumps ahead of what came before it, and a line at or below the last
# one starts a replay (at most 3: one a kill).
check() {
    /usr/bin/python3 - "$1" "$EVENTS" <<'EOF'
import json, sys
final, total = sys.argv[1] == "1", int(sys.argv[2])
got = []
for line in open("out", encoding="utf-8"):
    r = json.loads(line)
    if r["value"] != "EVENT-%s" % r["key"]:
        sys.exit("not transformed: key %r value %r" % (r["key"], r["value"]))
    got.append(int(r["key"]))
if not final:
    if got != list(range(1, len(got) + 1)):
        sys.exit("before any kill, not 1..%d in order once: %s" % (len(got), got[:50]))
    sys.exit(0)
top, prev, replays = 0, 0, 0
for i, v in enumerate(got):
    if v > top + 1:
        sys.exit("line %d: event %d after %d: events skipped" % (i + 1, v, top))
    if v != prev + 1:
        replays += 1
    top, prev = max(top, v), v
missing = sorted(set(range(1, total + 1)) - set(got))
if missing:
    sys.exit("%d events never arrived, e.g. %s" % (len(missing), missing[:10]))
if replays > 3:
    sys.exit("%d replays for 3 kills" % replays)
print("%d events, %d lines, %d replays" % (total, len(got), replays))
EOF
}

@test "the README pipeline: SSE -> stream-pub -> stream-proc (jq) -> stream-sub --post, kill -9 of each" {
    run -0 split_readme
    /usr/bin/python3 "$BATS_TEST_DIRNAME/http_source_server.py" events.port \
        </dev/null >events.log 2>&1 3>&- &
    PIDS+=($!)
    wait_port events.port $!
    /usr/bin/python3 "$BATS_TEST_DIRNAME/http_sink_server.py" --port-file hook.port --out out \
        </dev/null >hook.log 2>&1 3>&- &
    PIDS+=($!)
    wait_port hook.port $!
    export EVENTS_URL="http://127.0.0.1:$(cat events.port)/sse?n=$EVENTS&rate=$RATE"
    export HOOK_URL="http://127.0.0.1:$(cat hook.port)/in"
    touch out
    bash -e topics.sh
    start stream-pub
    start stream-proc
    start stream-sub

    # Before any kill: what arrives is every event, transformed, once, in order.
    wait_until 60 '[ "$(wc -l <out)" -ge 50 ]'
    run -0 check 0

    # kill -9 each program once while events still flow, and start it again.
    local name at=100
    for name in stream-pub stream-proc stream-sub; do
        wait_until 60 "[ \"\$(wc -l <out)\" -ge $at ]"
        kill9 "$name"
        start "$name"
        at=$((at + 100))
    done
    wait_until 90 '[ "$(jq -r .key out | sort -u | wc -l)" -ge '"$EVENTS"' ]' ||
        { tail -n 5 stream-*.err; false; }
    run -0 check 1
    echo "# $output" >&3
    # No program failed: nothing but the --resume note on stderr.
    run cat stream-proc.err stream-sub.err
    assert_output ''
}
