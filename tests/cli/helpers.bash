# helpers.bash - what every CLI test file shares: bats-support/bats-assert,
# and a real stream-broker on a free loopback port in a temp dir.
#
#   load helpers
#   setup()    { start_broker; }           # exports STREAM_BROKERS=127.0.0.1:PORT
#   teardown() { stop_broker; }
#
# start_broker [ARGS...]   starts `stream-broker --listen 127.0.0.1:0` with its
#                          data dir in the test's temp dir, waits (up to 10 s)
#                          for its --ready-file, and exports
#                            STREAM_BROKERS  HOST:PORT it listens on
#                            BROKER_PID      its process id
#                            BROKER_DIR      its data directory
#                            BROKER_LOG      its stderr (the broker's log)
#                          Extra ARGS go to stream-broker (e.g. --set k=v).
#                          Set BROKER_DIR before calling to reuse a data dir
#                          (restart tests). Fails the test (printing the log)
#                          if the broker exits or does not become ready.
# stop_broker              SIGTERM, waits (up to 10 s, then SIGKILL), and
#                          returns the broker's exit status. A no-op when no
#                          broker runs, so it is safe in teardown.
# kill_broker              SIGKILL (an unclean stop), then waits.
# wait_until SECONDS COND  polls the shell condition COND (eval'd) every
#                          0.1 s for up to SECONDS; fails saying what it
#                          waited for (wait for conditions, never sleep a
#                          fixed time).
#
# The programs under test come from $PATH (tests/run-tests.sh puts the build
# directory first) or from $STREAM_BUILD.

bats_load_library bats-support 2>/dev/null || load '/usr/lib/bats/bats-support/load'
bats_load_library bats-assert 2>/dev/null || load '/usr/lib/bats/bats-assert/load'

if [ -n "${STREAM_BUILD:-}" ]; then
    case ":$PATH:" in
    *":$STREAM_BUILD:"*) ;;
    *) PATH="$STREAM_BUILD:$PATH" ;;
    esac
fi

# Brokers of the tests leave ports 9092 and 9293 alone (tests start many at
# once, and one may run on this machine): a test that wants the Kafka
# listener or the metrics asks for them with --kafka-listen or
# --metrics-listen, which win over this.
export STREAM_KAFKA_LISTEN=off
export STREAM_METRICS_LISTEN=off

# Keep every program away from the real home directory.
export XDG_DATA_HOME="${BATS_TEST_TMPDIR:-${TMPDIR:-/tmp}}/xdg-data"
unset STREAM_DATA_DIR

start_broker() {
    local tmp=${BATS_TEST_TMPDIR:-$(mktemp -d)}
    BROKER_DIR=${BROKER_DIR:-$tmp/broker-data}
    BROKER_LOG=$tmp/broker.log
    local ready=$tmp/broker.ready
    rm -f "$ready"
    # fd 3 is bats' own: a background process holding it makes bats hang.
    stream-broker --listen 127.0.0.1:0 --data-dir "$BROKER_DIR" --ready-file "$ready" "$@" \
        </dev/null >>"$BROKER_LOG" 2>&1 3>&- &
    BROKER_PID=$!
    local i
    for ((i = 0; i < 200; i++)); do
        if [ -s "$ready" ]; then
            STREAM_BROKERS=$(cat "$ready")
            export STREAM_BROKERS BROKER_PID BROKER_DIR BROKER_LOG
            return 0
        fi
        if ! kill -0 "$BROKER_PID" 2>/dev/null; then
            wait "$BROKER_PID" 2>/dev/null
            local rc=$?
            BROKER_PID=
            echo "stream-broker exited with status $rc before it was ready:" >&2
            cat "$BROKER_LOG" >&2
            return 1
        fi
        sleep 0.05
    done
    echo "stream-broker not ready after 10 s:" >&2
    cat "$BROKER_LOG" >&2
    kill -KILL "$BROKER_PID" 2>/dev/null
    BROKER_PID=
    return 1
}

stop_broker() {
    [ -n "${BROKER_PID:-}" ] || return 0
    local pid=$BROKER_PID i
    BROKER_PID=
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 200; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "stream-broker did not stop within 10 s of SIGTERM; killing it" >&2
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
}

kill_broker() {
    [ -n "${BROKER_PID:-}" ] || return 0
    local pid=$BROKER_PID
    BROKER_PID=
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
}

wait_until() {
    local i
    for ((i = 0; i < $1 * 10; i++)); do
        eval "$2" && return 0
        sleep 0.1
    done
    echo "timed out after $1 s waiting for: $2" >&2
    return 1
}
