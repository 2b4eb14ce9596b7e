#!/usr/bin/env bats
# The docs match the code: every man page renders without warnings, every
# program has one, and every option a program's --help lists is in its page.

setup() {
    root=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
    build=${STREAM_BUILD:-$root/build}
}

programs() {
    for p in "$build"/stream-*; do
        [ -x "$p" ] && [ -f "$p" ] && echo "${p##*/}"
    done
}

@test "every man page passes mandoc -T lint" {
    shopt -s nullglob
    pages=("$root"/share/man/man*/*.[0-9])
    [ ${#pages[@]} -gt 0 ]
    for page in "${pages[@]}"; do
        # -W warning: style notes are allowed, warnings and errors are not.
        run mandoc -T lint -W warning "$page"
        if [ "$status" -ne 0 ] || [ -n "$output" ]; then
            echo "$page: $output"
            return 1
        fi
    done
}

@test "every program has a man page" {
    for p in $(programs); do
        [ -f "$root/share/man/man1/$p.1" ] || { echo "missing share/man/man1/$p.1"; return 1; }
    done
}

@test "every option in --help appears in the man page" {
    for p in $(programs); do
        run "$build/$p" --help
        [ "$status" -eq 0 ] || { echo "$p --help exited $status"; return 1; }
        page=$root/share/man/man1/$p.1
        # Long options as written in --help; in roff they are \-\-name or \-name.
        for opt in $(echo "$output" | grep -oE -- '(^|[ ,[])--[a-z][a-z0-9-]*' | sed 's/^[ ,[]//' | sort -u); do
            # man(7) writes \-\-name, mdoc(7) writes "Fl \-name" or "Fl -name".
            roff=$(printf '%s' "$opt" | sed 's/-/\\\\-/g')
            long=${opt#--}
            grep -qE -- "$roff|$opt|Fl \\\\?-$long( |\$)" "$page" ||
                { echo "$p: $opt not in $page"; return 1; }
        done
    done
}

@test "every --help fits a screen (at most 50 lines, 100 columns)" {
    for p in $(programs); do
        run "$build/$p" --help
        [ "${#lines[@]}" -le 50 ] || { echo "$p --help: ${#lines[@]} lines"; return 1; }
        for l in "${lines[@]}"; do
            [ "${#l}" -le 100 ] || { echo "$p --help line too long: $l"; return 1; }
        done
    done
}

@test "every program prints its version" {
    for p in $(programs); do
        run "$build/$p" --version
        [ "$status" -eq 0 ]
        [[ "$output" == "$p "* ]] || { echo "$p --version: $output"; return 1; }
    done
}

@test "every program rejects an unknown flag with exit 2 and a hint" {
    for p in $(programs); do
        run "$build/$p" --no-such-flag
        [ "$status" -eq 2 ] || { echo "$p: status $status"; return 1; }
        [[ "$output" == *"--help"* ]] || { echo "$p: $output"; return 1; }
    done
}
