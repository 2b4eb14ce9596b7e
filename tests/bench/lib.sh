# lib.sh - shell functions shared by the benchmark scripts (sourced).

# fstype DIR: the file system type DIR is on.
fstype() { df --output=fstype "$1" 2>/dev/null | tail -n 1; }

# bench_tmpdir NAME BUILD_DIR: makes and prints a temp dir stream-NAME.XXXXXX
# on a real disk (benchmarks that write logs must not measure tmpfs): in
# the first writable one of $BENCH_DIR, $TMPDIR, /var/tmp, /tmp and
# BUILD_DIR that is not tmpfs. Fails with a message when there is none.
bench_tmpdir() {
    local d
    for d in ${BENCH_DIR:-} ${TMPDIR:-} /var/tmp /tmp "$2"; do
        if [ -d "$d" ] && [ -w "$d" ] && [ "$(fstype "$d")" != tmpfs ]; then
            mktemp -d "$d/stream-$1.XXXXXX"
            return
        fi
    done
    echo "bench: no writable directory off tmpfs for stream-$1 (tried \$BENCH_DIR, \$TMPDIR, /var/tmp, /tmp, $2)" >&2
    return 1
}

# bench_wait_file FILE [PID LOG]: waits up to 10 s for FILE (a ready or port
# file) to be non-empty. With PID, fails at once when PID has exited,
# showing LOG. Fails with a message naming FILE when it never appears.
bench_wait_file() {
    local i
    for ((i = 0; i < 200; i++)); do
        [ -s "$1" ] && return 0
        if [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; then
            cat "${3:-/dev/null}" >&2
            break
        fi
        sleep 0.05
    done
    echo "bench: $1 did not appear" >&2
    return 1
}

# bench_start_broker DIR [ARGS...]: starts stream-broker on a free loopback
# port with its data in DIR/data (its log DIR/broker.log, extra ARGS passed
# on), sets broker_pid, waits for it to be ready and exports STREAM_BROKERS.
# The caller's EXIT trap stops it (kill -TERM "$broker_pid").
bench_start_broker() {
    local dir=$1
    shift
    stream-broker --listen 127.0.0.1:0 --data-dir "$dir/data" --ready-file "$dir/ready" \
        --log-level warn "$@" </dev/null 2>"$dir/broker.log" &
    broker_pid=$!
    bench_wait_file "$dir/ready" "$broker_pid" "$dir/broker.log" || return 1
    STREAM_BROKERS=$(cat "$dir/ready")
    export STREAM_BROKERS
}

# bench_stop_broker: stops the broker bench_start_broker started (SIGTERM,
# then waits for it); nothing when none runs. For the caller's EXIT trap.
bench_stop_broker() {
    [ -n "${broker_pid:-}" ] || return 0
    kill -TERM "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
}
