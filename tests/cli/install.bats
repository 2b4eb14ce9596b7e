#!/usr/bin/env bats
# make install / uninstall into a DESTDIR: programs, library, headers,
# pkg-config file, man pages and completions land where they should.

setup() {
    root=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
    dest=$(mktemp -d)
}

teardown() {
    rm -rf "$dest"
}

@test "make install puts everything under PREFIX in DESTDIR, uninstall removes it" {
    run make -s -C "$root" install PREFIX=/usr/local DESTDIR="$dest"
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
    for p in "$root"/build/stream-*; do
        [ -x "$dest/usr/local/bin/${p##*/}" ]
    done
    [ -f "$dest/usr/local/lib/libstream.a" ]
    [ -f "$dest/usr/local/lib/libstream.so.0" ]
    [ -f "$dest/usr/local/include/stream/log.h" ]
    [ -f "$dest/usr/local/lib/pkgconfig/libstream.pc" ]
    # The systemd units name the installed program (tests/cli/systemd.bats verifies them).
    grep -q '^ExecStart=/usr/local/bin/stream-broker ' "$dest/usr/local/lib/systemd/system/stream-broker.service"
    grep -q '^ExecStart=/usr/local/bin/stream-broker ' "$dest/usr/local/lib/systemd/system/stream-broker@.service"
    for m in "$root"/share/man/man*/*.[0-9]; do
        s=${m##*.}
        [ -f "$dest/usr/local/share/man/man$s/${m##*/}" ]
    done
    run env PKG_CONFIG_PATH="$dest/usr/local/lib/pkgconfig" pkg-config --cflags --libs libstream
    [ "$status" -eq 0 ]
    [[ "$output" == *"-lstream"* ]]

    # A program built against the installed library and headers runs.
    cat > "$dest/t.c" <<'C'
#include <stdio.h>
#include <stream/crc32c.h>
int main(void) { printf("%08x\n", stream_crc32c(0, "123456789", 9)); return 0; }
C
    run cc -I"$dest/usr/local/include" -o "$dest/t" "$dest/t.c" "$dest/usr/local/lib/libstream.a" \
        $(pkg-config --libs msgpack libuv liblz4 libzstd zlib snappy) -pthread -lm
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
    run "$dest/t"
    [ "$output" = "e3069283" ]

    run make -s -C "$root" uninstall PREFIX=/usr/local DESTDIR="$dest"
    [ "$status" -eq 0 ]
    [ -z "$(find "$dest/usr/local" -type f)" ]
}
