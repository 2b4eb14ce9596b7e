#!/usr/bin/env bats
# The README's "## Tour" runs as written: every ```sh block under it is run,
# in order, in one bash (so an export or a file made by one block is there
# for the next), against a real broker, under `set -e -o pipefail`; a
# ```text block right after a ```sh block is the exact output that block
# must print. So the tour cannot drift from the code.
#
# One deviation, by necessity: the block that starts the broker
# (`stream-broker [ARGS] &`) is run by the test's start_broker with those
# ARGS, which adds --listen 127.0.0.1:0 and a data directory in the test's
# temporary directory, so the test never takes port 9292 or touches the
# user's data. Every other command reaches that broker through
# $STREAM_BROKERS, as the tour says programs do.

bats_require_minimum_version 1.5.0

load helpers

setup() {
    root=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
    cd "$BATS_TEST_TMPDIR"
}

teardown() {
    stop_broker
}

# Splits the Tour section of README.md into blocks/NNN.sh and, for an sh
# block followed by a text block, blocks/NNN.out (the expected output).
# Prints the number of sh blocks.
split_tour() {
    python3 - "$root/README.md" blocks <<'EOF'
import os, re, sys
text = open(sys.argv[1], encoding="utf-8").read()
m = re.search(r"^## Tour\n(.*?)(?=^## |\Z)", text, re.S | re.M)
if not m:
    sys.exit("README.md has no '## Tour' section")
section = m.group(1)
blocks = re.findall(r"^```(\w*)\n(.*?)^```\n", section, re.S | re.M)
# Positions, to know whether a text block follows an sh block directly.
spans = [(mm.start(), mm.end(), mm.group(1), mm.group(2))
         for mm in re.finditer(r"^```(\w*)\n(.*?)^```\n", section, re.S | re.M)]
os.makedirs(sys.argv[2], exist_ok=True)
n = 0
for i, (start, end, lang, body) in enumerate(spans):
    if lang != "sh":
        continue
    n += 1
    with open(f"{sys.argv[2]}/{n:03d}.sh", "w") as f:
        f.write(body)
    if i + 1 < len(spans):
        nstart, _, nlang, nbody = spans[i + 1]
        if nlang == "text" and section[end:nstart].strip() == "":
            with open(f"{sys.argv[2]}/{n:03d}.out", "w") as f:
                f.write(nbody)
print(n)
EOF
}

@test "the README tour runs as written and prints what it shows" {
    run split_tour
    assert_success
    [ "$output" -ge 6 ] || { echo "only $output sh blocks in the tour"; return 1; }

    # The driver: every block in one bash, each block's output to its file.
    local broker_blocks=0
    {
        echo 'set -e -o pipefail'
        for b in blocks/*.sh; do
            n=${b%.sh}
            if grep -qE '^stream-broker( [^&]*)? &$' "$b"; then
                # Started by the test instead (see the top of this file).
                [ "$(grep -cv '^\s*$' "$b")" -eq 1 ] ||
                    { echo "$b: the broker block must hold only the broker" >&2; return 1; }
                broker_blocks=$((broker_blocks + 1))
                args=$(sed -E 's/^stream-broker ?//; s/ ?&$//' "$b")
                echo "$args" >"$n.broker"
                echo ": > $n.actual"
                continue
            fi
            echo "echo '== $b' >&2"
            echo "source $b > $n.actual"
        done
        echo 'echo "== done" >&2'
    } >driver.sh
    [ "$broker_blocks" -eq 1 ]

    # shellcheck disable=SC2046
    start_broker $(cat blocks/*.broker)
    run --separate-stderr bash driver.sh
    if [ "$status" -ne 0 ]; then
        echo "the tour failed (status $status) in the block after the last '==' line:"
        echo "$stderr"
        return 1
    fi
    [[ "$stderr" == *"== done" ]]

    for want in blocks/*.out; do
        got=${want%.out}.actual
        if ! diff -u "$want" "$got"; then
            echo "README block ${want%.out}.sh printed something else (diff above):"
            cat "${want%.out}.sh"
            return 1
        fi
    done
}

@test "the tour's broker line is what a newcomer types" {
    run split_tour
    assert_success
    run grep -lE '^stream-broker &$' blocks/*.sh
    assert_success
}
