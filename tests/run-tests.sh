#!/usr/bin/env bash
# Runs the cmocka unit tests, the bats CLI tests, the fuzz targets (when
# STREAM_FUZZ_DIR names them) and the soak (when SOAK_MINUTES is set and not
# 0) against one build variant and prints one closing line, "N passed, N
# failed", for all of them.
#
#   tests/run-tests.sh BUILD_DIR [unit|cli|fuzz|soak]
#
# The unit binaries run one per core at a time (UNIT_JOBS=N for another
# number). `unit` includes tests/check-layers.sh (libstream's folders are layers:
# includes and calls go down, services see the broker only through its host
# interface), two TAP tests against BUILD_DIR's objects.
# `soak` alone runs SOAK_MINUTES (default 1) minutes of tests/soak/soak.sh.
# Every runner speaks TAP here (cmocka via CMOCKA_MESSAGE_OUTPUT, bats via
# --tap), so counting is uniform. A unit binary that dies without reporting
# (a sanitizer abort, a crash) counts as one failure of its own.
set -u
build=${1:?usage: tests/run-tests.sh BUILD_DIR [unit|cli|fuzz|soak]}
what=${2:-all}
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$build" && pwd)
passed=0 failed=0 skipped=0
# Unit tests find source-tree files (the protocol spec) relative to the top.
cd "$here/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Tests find the programs under test here (unit tests that start a real broker too).
export STREAM_BUILD=$build
# No broker of the suite takes the Kafka port (kafka.bats asks for its own).
export STREAM_KAFKA_LISTEN=off
export STREAM_METRICS_LISTEN=off
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

count() { # count TAP lines in $log; echo "ok notok skip"
    local ok notok skip
    skip=$(grep -cE '^(not )?ok .*# (SKIP|skip)' "$log")
    ok=$(grep -vE '# (SKIP|skip)' "$log" | grep -cE '^ok ')
    notok=$(grep -vE '# (SKIP|skip)' "$log" | grep -cE '^not ok ')
    echo "$ok $notok $skip"
}

# The unit binaries run UNIT_JOBS at a time (default: one per core; each is
# one process with its own files and ports, and most of their time is spent
# waiting on timers and brokers); their results are read in name order.
if [ "$what" = all ] || [ "$what" = unit ]; then
    udir=$(mktemp -d)
    jobs=${UNIT_JOBS:-$(nproc 2>/dev/null || echo 1)}
    running=0
    for t in "$build"/tests/test_*; do
        [ -x "$t" ] || continue
        if [ "$running" -ge "$jobs" ]; then
            wait -n
            running=$((running - 1))
        fi
        (
            CMOCKA_MESSAGE_OUTPUT=TAP "$t" >"$udir/${t##*/}.log" 2>&1
            echo $? >"$udir/${t##*/}.rc"
        ) &
        running=$((running + 1))
    done
    wait
    for t in "$build"/tests/test_*; do
        [ -x "$t" ] || continue
        name=${t##*/}
        cp "$udir/$name.log" "$log"
        rc=$(cat "$udir/$name.rc")
        read -r ok notok skip < <(count)
        if [ "$rc" -ne 0 ] && [ "$notok" -eq 0 ]; then
            notok=1
            echo "not ok - $name exited with status $rc"
        fi
        passed=$((passed + ok)); failed=$((failed + notok)); skipped=$((skipped + skip))
        if [ "$notok" -ne 0 ]; then
            echo "== $name: $notok failed"; cat "$log"
        else
            echo "unit $name: $ok passed"
        fi
    done
    rm -rf "$udir"
fi

if [ "$what" = all ] || [ "$what" = unit ]; then
    tests/check-layers.sh "$build" >"$log" 2>&1
    rc=$?
    read -r ok notok skip < <(count)
    if [ "$rc" -ne 0 ] && [ "$notok" -eq 0 ]; then
        notok=1
        echo "not ok - tests/check-layers.sh exited with status $rc"
    fi
    passed=$((passed + ok)); failed=$((failed + notok)); skipped=$((skipped + skip))
    if [ "$notok" -ne 0 ]; then
        echo "== layers: $notok failed"; cat "$log"
    else
        echo "layers: $ok passed"
    fi
fi

# The bats files run CLI_JOBS at a time (default: one per core), largest
# first (a file's size is a fair guess at its length): each test has its own
# temp dir, free loopback ports and, for network cuts, namespaces named
# after its process, and most of a file's time is spent waiting on brokers,
# so two files share a machine as two users' shells would. Their TAP goes
# to one log, file by file in name order; a file that ends non-zero without
# a failing test counts as one failure.
if [ "$what" = all ] || [ "$what" = cli ]; then
    shopt -s nullglob
    files=("$here"/cli/*.bats)
    if [ ${#files[@]} -gt 0 ]; then
        cdir=$(mktemp -d)
        cjobs=${CLI_JOBS:-$(nproc 2>/dev/null || echo 1)}
        running=0
        run_file() {
            PATH="$build:$PATH" bats --tap "$1" >"$cdir/${1##*/}.log" 2>&1
            echo $? >"$cdir/${1##*/}.rc"
        }
        # A file that says "# run-tests: alone" runs by itself once the
        # others are done: its timings are upset by a second file's load.
        mapfile -t alone < <(grep -l '^# run-tests: alone' "${files[@]}")
        mapfile -t order < <(grep -L '^# run-tests: alone' "${files[@]}" | xargs -r ls -S)
        for f in "${order[@]}"; do
            if [ "$running" -ge "$cjobs" ]; then
                wait -n
                running=$((running - 1))
            fi
            run_file "$f" &
            running=$((running + 1))
        done
        wait
        for f in "${alone[@]}"; do
            run_file "$f"
        done
        rc=0
        : >"$log"
        for f in "${files[@]}"; do
            cat "$cdir/${f##*/}.log" >>"$log"
            [ "$(cat "$cdir/${f##*/}.rc" 2>/dev/null)" = 0 ] || rc=1
        done
        rm -rf "$cdir"
        read -r ok notok skip < <(count)
        if [ "$rc" -ne 0 ] && [ "$notok" -eq 0 ]; then
            notok=1
        fi
        passed=$((passed + ok)); failed=$((failed + notok)); skipped=$((skipped + skip))
        if [ "$notok" -ne 0 ]; then
            echo "== cli: $notok failed"; cat "$log"
        else
            echo "cli: $ok passed"
        fi
    fi
fi

# The libFuzzer targets (built by `make fuzz-build`), a short run each, when
# the Makefile says where they are.
if { [ "$what" = all ] || [ "$what" = fuzz ]; } && [ -n "${STREAM_FUZZ_DIR:-}" ]; then
    targets=()
    for f in "$STREAM_FUZZ_DIR"/fuzz_*; do
        [ -x "$f" ] && [ -f "$f" ] && targets+=("${f##*/}")
    done
    if [ ${#targets[@]} -gt 0 ]; then
        tests/fuzz/run.sh "$STREAM_FUZZ_DIR" "${FUZZ_CHECK_SECONDS:-6}" fresh "${targets[@]}" >"$log" 2>&1
        rc=$?
        read -r ok notok skip < <(count)
        if [ "$rc" -ne 0 ] && [ "$notok" -eq 0 ]; then
            notok=1
        fi
        passed=$((passed + ok)); failed=$((failed + notok)); skipped=$((skipped + skip))
        if [ "$notok" -ne 0 ]; then
            echo "== fuzz: $notok failed"; cat "$log"
        else
            echo "fuzz: $ok targets, ${FUZZ_CHECK_SECONDS:-6} s each, no finding"
        fi
    fi
fi

# A soak script's one TAP test: run_soak NAME SUMMARY_REGEX CMD... counts it,
# shows its summary lines (matching SUMMARY_REGEX) or, on failure, all it
# printed (seed, directory, violations).
run_soak() {
    local name=$1 summary=$2 rc ok notok skip
    shift 2
    "$@" >"$log" 2>&1
    rc=$?
    read -r ok notok skip < <(count)
    if [ "$rc" -ne 0 ] && [ "$notok" -eq 0 ]; then
        notok=1
    fi
    passed=$((passed + ok)); failed=$((failed + notok)); skipped=$((skipped + skip))
    if [ "$notok" -ne 0 ]; then
        echo "== $name: failed"; cat "$log"
    else
        grep -E "^ok |$summary" "$log"
    fi
}

# The soak (tests/soak/soak.sh). The offsets soak (groups committing every
# 50 ms, __consumer_offsets kept bounded) runs only in make soak-offsets:
# its bound means something only after its one-minute warm-up, and
# compaction.bats checks that __consumer_offsets is compacted.
soak_minutes=${SOAK_MINUTES:-}
[ "$what" = soak ] && soak_minutes=${soak_minutes:-1}
if { [ "$what" = all ] || [ "$what" = soak ]; } && [ -n "$soak_minutes" ] && [ "$soak_minutes" != 0 ]; then
    run_soak soak '^# (records|broker|group|retention):' tests/soak/soak.sh "$build" "$soak_minutes"
fi

if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
