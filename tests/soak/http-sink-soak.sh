#!/usr/bin/env bash
# http-sink-soak.sh - the HTTP sink's kill -9 soak (issue 19): `stream-sub
# -g G --post` killed HTTP_SINK_SOAK_KILLS times (default 25) under load,
# each kill followed by the check that the group's committed offsets are
# covered by what the endpoint took, then the final check (nothing lost,
# duplicates only as replays, order per partition kept).
#
#   tests/soak/http-sink-soak.sh BUILD_DIR [KILLS]    (make soak-http-sink;
#                                                      also run by make soak-connect)
#
# The work is tests/cli/http_sink_kill.sh, which http-sink.bats runs with 3
# kills in make check. HTTP_SINK_SOAK_DIR=DIR keeps the files there;
# HTTP_SINK_KILL_RATE (records/s, default 2000) and HTTP_SINK_KILL_SEED
# (the endpoint's failures) are passed on.
set -u
build=${1:?usage: tests/soak/http-sink-soak.sh BUILD_DIR [KILLS]}
kills=${2:-${HTTP_SINK_SOAK_KILLS:-25}}
case $kills in '' | *[!0-9]*) echo "http-sink-soak.sh: KILLS must be a whole number" >&2; exit 2 ;; esac
echo "1..1"
exec "$(dirname "$0")/../cli/http_sink_kill.sh" "$build" "$kills" ${HTTP_SINK_SOAK_DIR:+"$HTTP_SINK_SOAK_DIR"}
