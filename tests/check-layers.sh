#!/usr/bin/env bash
# Folders are layers (STYLE.md rule 18): a file of libstream/ includes only
# its own folder and the folders below it, and a service of the broker
# (coord/, later cluster/ and kafka/) sees of broker/ only the host
# interface, broker/host.h. This script is the rule's enforcement.
#
#   tests/check-layers.sh [BUILD_DIR]
#
# Test 1 reads every `#include "..."` (and `<stream/...>`) of
# libstream/*/*.[ch] and libstream/include/stream/*.h and maps it to a
# folder:
#
#   "stream/X.h"   the public header of module X: the folder of libstream/*/X.c
#   "F/X.h"        folder F (a cross-folder include names its folder)
#   "X.h"          the including file's own folder (it must be there)
#
# Test 2, when BUILD_DIR/obj/lib/ holds the objects, does the same for
# calls: every symbol an object uses from another object of libstream must
# be defined in its own folder or one below, and a service may use of
# broker/ only the host interface's functions (stream__host_*). It catches
# what a local `extern` declaration would hide from test 1. The one
# exception is the list that starts the services (broker/host.c), which
# names each service's descriptor (stream__NAME_service).
#
# Prints TAP; every offending line as "# FILE:LINE: ..." under its test.
# Exits 1 when a test fails.
set -u
cd "$(dirname "$0")/.."

# Lowest first. A folder missing here fails the check: a new folder says
# where it sits before it holds code.
order=(base log proto broker coord cluster kafka client connect tools)
# Services of the broker: what they may use of broker/.
services=(coord cluster kafka)
host_header=broker/host.h
host_prefix=stream__host_
# The one call that goes up: the broker's list of services (host.c) names
# each service's descriptor, stream__NAME_service, defined in its folder.
service_list=broker/host.o

declare -A rank module
for i in "${!order[@]}"; do rank[${order[$i]}]=$i; done
# The folder of each module X (libstream/*/X.c): where "stream/X.h" belongs.
for f in libstream/*/*.c; do
    f=${f#libstream/}
    x=${f##*/}
    module[${x%.c}]=${f%%/*}
done
is_service() {
    local s
    for s in "${services[@]}"; do [ "$s" = "$1" ] && return 0; done
    return 1
}

# ---- 1: includes ------------------------------------------------------------

bad=()
for dir in libstream/*/; do
    d=${dir#libstream/}; d=${d%/}
    [ "$d" = include ] && continue
    [ "${rank[$d]:--1}" -ge 0 ] || bad+=("libstream/$d/: a folder that is not in tests/check-layers.sh's order")
done

files=(libstream/*/*.c libstream/*/*.h libstream/include/stream/*.h)
for f in "${files[@]}"; do
    [ -f "$f" ] || continue
    case $f in
    libstream/include/stream/*)
        base=${f##*/}
        from=${module[${base%.h}]:-}
        [ -n "$from" ] || { bad+=("$f: a public header without its module libstream/*/${base%.h}.c"); continue; }
        ;;
    *)
        from=${f#libstream/}; from=${from%%/*}
        ;;
    esac
    from_rank=${rank[$from]:--1}
    [ "$from_rank" -ge 0 ] || continue # reported above
    while IFS=: read -r line inc; do
        [[ $inc =~ include[[:space:]]*[\"\<]([^\">]*) ]] && inc=${BASH_REMATCH[1]}
        case $inc in
        stream/*)
            mod=${inc#stream/}; mod=${mod%.h}
            to=${module[$mod]:-}
            if [ -z "$to" ]; then
                bad+=("$f:$line: includes \"$inc\", a public header without its module")
                continue
            fi
            ;;
        */*)
            to=${inc%%/*}
            if [ ! -f "libstream/$inc" ]; then
                bad+=("$f:$line: includes \"$inc\", which is not libstream/$inc")
                continue
            fi
            ;;
        *)
            if [ ! -f "$(dirname "$f")/$inc" ]; then
                bad+=("$f:$line: includes \"$inc\" of another folder without naming it (\"FOLDER/$inc\")")
                continue
            fi
            to=$from
            ;;
        esac
        to_rank=${rank[$to]:--1}
        if [ "$to_rank" -lt 0 ]; then
            bad+=("$f:$line: includes \"$inc\" of folder $to, which is not in the order")
        elif [ "$to_rank" -gt "$from_rank" ]; then
            bad+=("$f:$line: includes \"$inc\": $from/ is below $to/")
        elif is_service "$from" && [ "$to" = broker ] && [ "$inc" != "$host_header" ]; then
            bad+=("$f:$line: includes \"$inc\": $from/ is a service of the broker and sees only $host_header")
        fi
    done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*("|<stream/)' "$f")
done

if [ ${#bad[@]} -eq 0 ]; then
    echo "ok 1 - libstream: every include stays in its folder or goes down a layer"
else
    echo "not ok 1 - libstream: ${#bad[@]} includes go up a layer or around the host interface"
    printf '# %s\n' "${bad[@]}"
fi
failed=$((${#bad[@]} > 0))

# ---- 2: symbols -------------------------------------------------------------

objdir=${1:+$1/obj/lib}
if [ -z "$objdir" ] || ! ls "$objdir"/*/*.o >/dev/null 2>&1; then
    echo "ok 2 - libstream: calls go down the layers # SKIP no objects (give a build directory)"
    exit "$failed"
fi
# symbol -> folder that defines it; then every (folder, object, undefined symbol).
defs=$(for o in "$objdir"/*/*.o; do
    d=${o#"$objdir"/}; d=${d%%/*}
    nm -g --defined-only "$o" | awk -v d="$d" 'NF >= 3 {print $3, d}'
done | sort -u)
bad=()
for o in "$objdir"/*/*.o; do
    from=${o#"$objdir"/}; from=${from%%/*}
    from_rank=${rank[$from]:--1}
    [ "$from_rank" -ge 0 ] || continue
    while read -r sym to; do
        to_rank=${rank[$to]:--1}
        if [ "${o#"$objdir"/}" = "$service_list" ] && is_service "$to" &&
            [[ $sym == stream__*_service ]]; then
            continue
        elif [ "$to_rank" -gt "$from_rank" ]; then
            bad+=("${o#"$objdir"/}: uses $sym of $to/: $from/ is below $to/")
        elif is_service "$from" && [ "$to" = broker ] && [[ $sym != "$host_prefix"* ]]; then
            bad+=("${o#"$objdir"/}: uses $sym of broker/: $from/ is a service and calls only ${host_prefix}*")
        fi
    done < <(join <(nm -u "$o" | awk '{print $2}' | sort -u) <(echo "$defs"))
done
if [ ${#bad[@]} -eq 0 ]; then
    echo "ok 2 - libstream: calls go down the layers"
else
    echo "not ok 2 - libstream: ${#bad[@]} calls go up a layer or around the host interface"
    printf '# %s\n' "${bad[@]}"
    failed=1
fi
exit "$failed"
