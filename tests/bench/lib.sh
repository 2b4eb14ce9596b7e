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
