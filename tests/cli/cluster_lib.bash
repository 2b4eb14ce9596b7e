# cluster_lib.bash - a cluster of stream-broker processes on loopback for the
# replication tests (replication.bats) and the cluster soak
# (tests/soak/cluster-soak.sh). Load after helpers (bats) or source it.
#
#   cluster_start N [ARGS...]   N brokers (node ids 1..N, all voters) on fixed
#                               free ports (the same across restarts), data in
#                               $CLUSTER_DIR/nK/data, logs in nK/log; waits
#                               until all are registered and unfenced.
#                               Exports STREAM_BROKERS (every address).
#   cluster_plan N              picks the ports of N voters (CLUSTER_VOTERS)
#                               without starting them (cluster_start does it)
#   node_start K [ARGS...]      (re)starts node K with the same ports and data
#   dataonly_start K [ARGS...]  (re)starts node K outside the voters: a
#                               data-only broker (a client port of its own;
#                               CLUSTER_N grows to K and STREAM_BROKERS with it)
#   node_kill K [SIG]           sends SIG (KILL) to node K; KILL also reaps it
#   node_restart K              SIGTERM node K (a controlled shutdown), waits for it
#                               to exit, starts it again and waits until no
#                               broker is fenced (a rolling restart's step)
#   node_addr K                 HOST:PORT of node K's clients
#   leader_of TOPIC PART        the partition's leader as node K sees it (any
#                               live node), -1 when none
#   wait_leader TOPIC PART NOT SECS   waits until a leader other than NOT
#                               is known, prints it
#   isr_of TOPIC PART           the ISR as a sorted comma list
#   cluster_stop                SIGTERM every live node (teardown)
#   group_exactly_once ACKS OUT...   every record of the --ack-log ACKS is in
#                               the OUT files (a group's members' '%p %o %v'
#                               lines) exactly once; prints the counts
#
# The nodes leave port 9092 alone (the Kafka listener serves one broker yet).
export STREAM_KAFKA_LISTEN=off
export STREAM_METRICS_LISTEN=off

# Timing knobs for the tests (stream-broker --set): CLUSTER_SET holds extra
# "--set k=v" arguments given to every node.
#
# Network namespaces (root only): netns_setup before cluster_start puts node
# K in its own namespace with address 10.77.X.K on a bridge of the root
# namespace (where the clients run), so that netns_cut K / netns_heal K can
# cut it off the network without stopping it; netns_teardown removes it all.

CLUSTER_DIR=${CLUSTER_DIR:-${BATS_TEST_TMPDIR:-$(mktemp -d)}/cluster}
declare -a CPIDS CPORT CRAFT
CLUSTER_N=0

# N free loopback ports, space-separated (bound to port 0, then released).
free_ports() {
    python3 -c '
import socket, sys
s = [socket.socket() for _ in range(int(sys.argv[1]))]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))' "$1"
}

node_host() { if [ -n "${CLUSTER_NETNS:-}" ]; then echo "$CLUSTER_SUBNET.$1"; else echo 127.0.0.1; fi; }
node_addr() { echo "$(node_host "$1"):${CPORT[$1]}"; }
node_exec() { # node_exec K CMD...: CMD in node K's namespace (if any)
    local k=$1
    shift
    if [ -n "${CLUSTER_NETNS:-}" ]; then ip netns exec "$CLUSTER_NETNS$k" "$@"; else "$@"; fi
}

netns_setup() {
    local n=$1 k id=$(($$ % 200 + 10))
    CLUSTER_NETNS=sn$id-
    CLUSTER_SUBNET=10.77.$id
    CLUSTER_BRIDGE=sbr$id
    ip link add "$CLUSTER_BRIDGE" type bridge || return 1
    ip addr add "$CLUSTER_SUBNET.254/24" dev "$CLUSTER_BRIDGE"
    ip link set "$CLUSTER_BRIDGE" up
    for ((k = 1; k <= n; k++)); do
        ip netns add "$CLUSTER_NETNS$k" || return 1
        ip link add "sv$id-$k" type veth peer name eth0 netns "$CLUSTER_NETNS$k" || return 1
        ip link set "sv$id-$k" master "$CLUSTER_BRIDGE" up
        ip -n "$CLUSTER_NETNS$k" addr add "$CLUSTER_SUBNET.$k/24" dev eth0
        ip -n "$CLUSTER_NETNS$k" link set eth0 up
        ip -n "$CLUSTER_NETNS$k" link set lo up
    done
}
netns_cut() { ip link set "sv${CLUSTER_BRIDGE#sbr}-$1" down; }
netns_heal() { ip link set "sv${CLUSTER_BRIDGE#sbr}-$1" up; }
netns_teardown() {
    [ -n "${CLUSTER_NETNS:-}" ] || return 0
    local k
    for ((k = 1; k <= 9; k++)); do
        ip netns del "$CLUSTER_NETNS$k" 2>/dev/null
        ip link del "sv${CLUSTER_BRIDGE#sbr}-$k" 2>/dev/null
    done
    ip link del "$CLUSTER_BRIDGE" 2>/dev/null
    CLUSTER_NETNS=
    return 0
}

node_start() {
    local k=$1 d=$CLUSTER_DIR/n$1 i
    shift
    mkdir -p "$d"
    rm -f "$d/ready"
    # shellcheck disable=SC2086
    local pre=() insecure=()
    # In a namespace a node listens on its bridge address, not loopback:
    # plain text there needs --insecure (the bridge is private to the test).
    [ -z "${CLUSTER_NETNS:-}" ] || { pre=(ip netns exec "$CLUSTER_NETNS$k"); insecure=(--insecure); }
    # (not through a function: a function in the background is a subshell,
    # and CPIDS must be the broker's own pid)
    "${pre[@]}" stream-broker --node-id "$k" --cluster "$CLUSTER_VOTERS" --listen "$(node_addr "$k")" \
        --data-dir "$d/data" --ready-file "$d/ready" --log-level debug "${insecure[@]}" ${CLUSTER_SET:-} "$@" \
        </dev/null >>"$d/log" 2>&1 3>&- &
    CPIDS[$k]=$!
    for ((i = 0; i < 200; i++)); do
        [ -s "$d/ready" ] && return 0
        if ! kill -0 "${CPIDS[$k]}" 2>/dev/null; then
            echo "node $k exited before it was ready:" >&2
            tail -20 "$d/log" >&2
            return 1
        fi
        sleep 0.05
    done
    echo "node $k not ready after 10 s" >&2
    return 1
}

node_kill() {
    local k=$1 sig=${2:-KILL} pid=${CPIDS[$1]}
    [ -n "$pid" ] || return 0
    kill -"$sig" "$pid" 2>/dev/null
    if [ "$sig" = KILL ]; then
        wait "$pid" 2>/dev/null || true
        CPIDS[$k]=
    fi
    return 0
}

node_restart() {
    local k=$1
    node_kill "$k" TERM
    wait "${CPIDS[$k]}"
    CPIDS[$k]=
    node_start "$k"
    cluster_wait_json 15 "all(.brokers[]; .fenced == false)"
}

# Waits up to SECS for `stream-topics cluster --json` (asked of any live
# node) to satisfy the jq expression.
cluster_wait_json() {
    local secs=$1 expr=$2 i k out=
    for ((i = 0; i < secs * 10; i++)); do
        for ((k = 1; k <= CLUSTER_N; k++)); do
            [ -n "${CPIDS[$k]:-}" ] || continue
            out=$(stream-topics -b "$(node_addr "$k")" --timeout-ms 1000 cluster --json 2>/dev/null) ||
                continue # not answering (cut off, paused): ask the next
            jq -e "$expr" >/dev/null <<<"$out" && return 0
            break
        done
        sleep 0.1
    done
    echo "cluster after $secs s: $out" >&2
    return 1
}

cluster_plan() {
    local n=$1 k ports
    CLUSTER_N=$n
    ports=$(free_ports $((2 * n)))
    read -r -a _p <<<"$ports"
    CLUSTER_VOTERS=
    for ((k = 1; k <= n; k++)); do
        CPORT[$k]=${_p[$((k - 1))]}
        CRAFT[$k]=${_p[$((n + k - 1))]}
        CLUSTER_VOTERS+="${CLUSTER_VOTERS:+,}$k@$(node_host "$k"):${CRAFT[$k]}"
    done
}

dataonly_start() {
    local k=$1
    shift
    [ -n "${CPORT[$k]:-}" ] || CPORT[$k]=$(free_ports 1)
    [ "$k" -le "$CLUSTER_N" ] || CLUSTER_N=$k
    case ",${STREAM_BROKERS:-}," in
    *",$(node_addr "$k"),"*) ;;
    *) STREAM_BROKERS+="${STREAM_BROKERS:+,}$(node_addr "$k")" && export STREAM_BROKERS ;;
    esac
    node_start "$k" "$@"
}

cluster_start() {
    local n=$1 k
    shift
    cluster_plan "$n"
    for ((k = 1; k <= n; k++)); do
        node_start "$k" "$@" || return 1
    done
    STREAM_BROKERS=
    for ((k = 1; k <= CLUSTER_N; k++)); do
        STREAM_BROKERS+="${STREAM_BROKERS:+,}$(node_addr "$k")"
    done
    export STREAM_BROKERS
    cluster_wait_json 10 "(.brokers | length) == $n and all(.brokers[]; .fenced == false)"
}

cluster_stop() {
    local k
    for ((k = 1; k <= CLUSTER_N; k++)); do
        [ -n "${CPIDS[$k]:-}" ] || continue
        kill -CONT "${CPIDS[$k]}" 2>/dev/null
        kill -TERM "${CPIDS[$k]}" 2>/dev/null
    done
    for ((k = 1; k <= CLUSTER_N; k++)); do
        [ -n "${CPIDS[$k]:-}" ] || continue
        timeout 10 tail --pid="${CPIDS[$k]}" -f /dev/null 2>/dev/null ||
            kill -KILL "${CPIDS[$k]}" 2>/dev/null
        wait "${CPIDS[$k]}" 2>/dev/null || true
        CPIDS[$k]=
    done
    return 0
}

# The describe entry of TOPIC's partition PART as JSON, from any live node.
part_json() {
    local k out
    for ((k = 1; k <= CLUSTER_N; k++)); do
        [ -n "${CPIDS[$k]:-}" ] || continue
        out=$(stream-topics -b "$(node_addr "$k")" --timeout-ms 1000 describe "$1" --json 2>/dev/null |
            jq -c --argjson p "$2" '.topics[0].partitions[] | select(.partition == $p)')
        [ -n "$out" ] && echo "$out" && return 0
    done
    return 1
}

leader_of() { part_json "$1" "$2" | jq -r '.leader // -1'; }
isr_of() { part_json "$1" "$2" | jq -r '.isr | sort | map(tostring) | join(",")'; }

wait_leader() {
    local topic=$1 part=$2 not=$3 secs=$4 i l
    for ((i = 0; i < secs * 20; i++)); do
        l=$(leader_of "$topic" "$part" 2>/dev/null)
        if [ -n "$l" ] && [ "$l" != -1 ] && [ "$l" != "$not" ]; then
            echo "$l"
            return 0
        fi
        sleep 0.05
    done
    echo "no new leader of $topic-$part after $secs s (last: $l)" >&2
    return 1
}

group_exactly_once() {
    python3 - "$@" <<'EOF'
import sys
got = {}
for name in sys.argv[2:]:
    for l in open(name):
        f = l.split()
        if len(f) < 2:
            continue
        k = (int(f[0]), int(f[1]))
        got[k] = got.get(k, 0) + 1
acked = [tuple(int(x) for x in l.split()[1:3]) for l in open(sys.argv[1])]
missing = [a for a in acked if a not in got]
twice = sorted(k for k, c in got.items() if c > 1)
print("group: %d of %d acknowledged records delivered, %d missing, %d delivered more than once"
      % (len(acked) - len(missing), len(acked), len(missing), len(twice)))
for p, o in twice[:10]:
    print("  twice: partition %d offset %d" % (p, o))
for p, o in missing[:10]:
    print("  missing: partition %d offset %d" % (p, o))
sys.exit(1 if missing or twice else 0)
EOF
}
