# lib.bash - what the fault tests share (faults.bats, iofaults.bats): the
# helper scripts of this folder, a wrapper that starts the broker under
# limits or a launcher, background processes that teardown ends, polling,
# record generators and a publishing loop. Load it after helpers:
#
#   load helpers
#   load faults/lib

FAULTS_DIR=$BATS_TEST_DIRNAME/faults

faultclient() { python3 "$FAULTS_DIR/faultclient.py" "$@"; }

# json FIELD < JSON: one field of a JSON object.
json() { python3 -c 'import json, sys; v = json.load(sys.stdin)[sys.argv[1]]; print(json.dumps(v) if isinstance(v, (list, dict)) else v)' "$1"; }

# A stream-broker wrapper in PATH that runs shell commands first, so the
# helpers' start_broker starts the broker under them (exec keeps the pid).
#   with_limits 'ulimit -n 64' start_broker ARGS...
# The commands find the real broker in $real; they may exec it themselves
# (through a launcher, with "$@" its arguments), else the wrapper does.
with_limits() {
    local limits=$1 real wrap=$BATS_TEST_TMPDIR/limited
    shift
    real=$(command -v stream-broker)
    mkdir -p "$wrap"
    printf '#!/bin/sh\nreal="%s"\n%s\nexec "$real" "$@"\n' "$real" "$limits" >"$wrap/stream-broker"
    chmod +x "$wrap/stream-broker"
    PATH="$wrap:$PATH" "$@"
}

# Runs a command in the background with bats' fd 3 closed; its pid is
# remembered for teardown and left in $BG_PID.
background() {
    "$@" 3>&- &
    BG_PID=$!
    BG_PIDS+=("$BG_PID")
}

# wait_for SECONDS CMD...: retries CMD every 0.1 s until it succeeds.
wait_for() {
    local n=$(($1 * 10)) i
    shift
    for ((i = 0; i < n; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    echo "timed out after $((n / 10)) s waiting for: $*" >&2
    return 1
}

lines_at_least() { [ "$(wc -l <"$1" 2>/dev/null || echo 0)" -ge "$2" ]; }

# Lines "PREFIX-N" for N in FROM..TO, each padded to about SIZE bytes.
make_records() {
    python3 -c 'import sys
p, a, b, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for i in range(a, b + 1):
    s = "%s-%d-" % (p, i)
    print(s + "x" * max(0, size - len(s)))' "$@"
}

# publish_loop DIR SERIES TOPIC [STREAM-PUB OPTIONS...]: publishes numbered
# records (crashcheck.py gen, about 3000 a second, $PUBLISH_SIZE bytes each
# when set) to TOPIC until DIR/stop exists, one stream-pub run after another
# (a run ends when its input does, or when stream-pub gives up on a dead
# broker). Run N of series S numbers its records BASE+1, BASE+2, ... with
# BASE = (S * 1000 + N) * 10^7, so concurrent loops of different series
# never share a value, and logs its acknowledgements to DIR/acks/ack.BASE
# and its stderr to DIR/pub.err. SIGTERM ends the loop and kills its
# stream-pub (whose acknowledgements are then lost: for teardown).
publish_loop() {
    local dir=$1 series=$2 topic=$3 n=0 base pub=
    shift 3
    mkdir -p "$dir/acks"
    trap '[ -z "$pub" ] || kill -KILL "$pub" 2>/dev/null; exit 0' TERM
    while [ ! -e "$dir/stop" ]; do
        n=$((n + 1))
        base=$(((series * 1000 + n) * 10000000))
        python3 "$FAULTS_DIR/crashcheck.py" gen "$base" --rate 3000 ${PUBLISH_SIZE:+--size "$PUBLISH_SIZE"} \
            --stop-file "$dir/stop" |
            stream-pub -t "$topic" "$@" --ack-log "$dir/acks/ack.$base" 2>>"$dir/pub.err" &
        pub=$!
        wait "$pub" || true
        pub=
        sleep 0.1
    done
}
