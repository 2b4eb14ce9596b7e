#!/usr/bin/env bash
# Runs libFuzzer targets, one per core at a time (FUZZ_JOBS=N for another
# number; each libFuzzer process is single-threaded), and prints one TAP line
# per target, in the order given, for tests/run-tests.sh to count:
#
#   ok - fuzz_X N runs in S s
#   not ok - fuzz_X: crash (tests/fuzz/crashes/fuzz_X-crash-...)
#
#   tests/fuzz/run.sh BUILD_DIR SECONDS fresh|keep TARGET...
#
# fresh: each target starts from a new copy of its checked-in corpus
#        (BUILD_DIR/check/TARGET), so a run never writes into the source tree
#        and every seed and regression input is replayed first;
# keep:  the corpus lives on in BUILD_DIR/work/TARGET between runs (make fuzz),
#        topped up from the checked-in one, so long runs build on each other.
#
# Findings (crash, leak, timeout, out-of-memory, a violated property) are
# written to tests/fuzz/crashes/ and make the target "not ok"; the full log
# stays in BUILD_DIR/log/TARGET.log. Extra libFuzzer flags: $FUZZ_FLAGS.
# Exits 1 when any target was not ok, after running all of them.
set -u
build=${1:?usage: tests/fuzz/run.sh BUILD_DIR SECONDS fresh|keep TARGET...}
secs=${2:?seconds}
mode=${3:?fresh or keep}
shift 3
mkdir -p "$build" && build=$(cd "$build" && pwd) || exit 2
cd "$(dirname "$0")/../.." || exit 2

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
crashes=tests/fuzz/crashes
mkdir -p "$crashes" "$build/log"
failed=0

# One target: its TAP line goes to $build/log/$t.result.
run_one() {
    local t=$1 bin=$build/$1 log=$build/log/$1.log out=$build/log/$1.result
    local corpus rc done_line runs took art dict=()
    if [ ! -x "$bin" ]; then
        echo "not ok - $t: not built ($bin missing)" >"$out"
        return
    fi
    if [ "$mode" = fresh ]; then
        corpus=$build/check/$t
        rm -rf "$corpus"
    else
        corpus=$build/work/$t
    fi
    mkdir -p "$corpus"
    if [ -d "tests/fuzz/corpus/$t" ]; then
        cp -n "tests/fuzz/corpus/$t"/* "$corpus"/ 2>/dev/null
    fi
    [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
    # shellcheck disable=SC2086 # FUZZ_FLAGS is a list of flags
    "$bin" -timeout=10 -rss_limit_mb=2048 -max_total_time="$secs" \
        -artifact_prefix="$crashes/$t-" "${dict[@]}" ${FUZZ_FLAGS:-} "$corpus" >"$log" 2>&1
    rc=$?
    done_line=$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1)
    if [ "$rc" -eq 0 ] && [ -n "$done_line" ]; then
        # "Done 123456 runs in 10 second(s)"
        read -r _ runs _ _ took _ <<<"$done_line"
        echo "ok - $t $runs runs in $took s" >"$out"
    else
        art=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        {
            echo "not ok - $t: crash (${art:-no artifact, exit status $rc, see $log})"
            grep -E '==ERROR|^SUMMARY|property violated|runtime error|ERROR: libFuzzer' "$log" |
                head -n 5 | sed 's/^/# /'
        } >"$out"
    fi
}

jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
running=0
for t in "$@"; do
    rm -f "$build/log/$t.result"
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
    run_one "$t" &
    running=$((running + 1))
done
wait
for t in "$@"; do
    if [ -f "$build/log/$t.result" ]; then
        cat "$build/log/$t.result"
    else
        echo "not ok - $t: no result"
    fi
    grep -q '^ok ' "$build/log/$t.result" 2>/dev/null || failed=1
done
exit "$failed"
