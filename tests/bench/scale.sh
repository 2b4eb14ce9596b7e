#!/usr/bin/env bash
# scale.sh - the broker at scale (issue 6's targets):
#
#   tests/bench/scale.sh [BUILD_DIR]      (default: build; needs BUILD_DIR/bench/*,
#                                          from `make bench-scale` or `make bench`)
#
#   memory   peak resident size of the broker (VmRSS sampled every 100 ms,
#            and the kernel's VmHWM) while SCALE_PRODUCERS producers and
#            SCALE_CONSUMERS consumers (each its own connection, driven by
#            bench/scale_load) run at full speed for SCALE_SECONDS, with the
#            records/s produced and consumed meanwhile and the broker's CPU.
#            Target: under 256 MB with 100 + 100.
#   idle     the broker's CPU (its threads' run time from /proc/PID/task/*/schedstat) over
#            SCALE_IDLE_SECONDS with nothing connected (the baseline), then
#            with SCALE_IDLE connections each long-polling a partition of an
#            empty topic (bench/idle_consumers, max_wait_ms SCALE_MAX_WAIT_MS:
#            the C consumer's default), the median of SCALE_REPEAT rounds,
#            and the time one record per partition then takes to reach every
#            one of them. Each round first measures the limit: the same
#            connections, requests and answers on bench/idle_floor, a server
#            that makes the system calls and nothing else. Target: under 2 %
#            with 1,000.
#
# Each part gets a broker of its own (a fresh data dir in a temp dir on a
# real disk, a free loopback port, max.connections raised above its default
# of 1000 so that the tools creating the topic and producing the wake-up
# records get in), stopped at the end with the temp dir removed. ulimit -n is raised to its hard limit (the idle part needs a
# descriptor per connection on each side).
#
# Environment: SCALE_PRODUCERS (100), SCALE_CONSUMERS (100), SCALE_SECONDS (20),
# SCALE_THREADS (scale_load's threads, 2), SCALE_PARTITIONS (8),
# SCALE_RECORD_BYTES (100), SCALE_IDLE (1000), SCALE_IDLE_SECONDS (10), SCALE_REPEAT (5),
# SCALE_MAX_WAIT_MS (500), SCALE_BROKER (the stream-broker to measure;
# default BUILD_DIR/stream-broker), SCALE_SKIP (memory or idle: leave that
# part out), BENCH_DIR (where the temp dir goes; default the first of
# $TMPDIR, /var/tmp, /tmp, the build dir that is not tmpfs).
set -euo pipefail
# The brokers started here leave port 9092 (the Kafka listener's) alone.
export STREAM_KAFKA_LISTEN=off
export STREAM_METRICS_LISTEN=off

build=$(cd "${1:-build}" && pwd)
producers=${SCALE_PRODUCERS:-100}
consumers=${SCALE_CONSUMERS:-100}
seconds=${SCALE_SECONDS:-20}
threads=${SCALE_THREADS:-2}
partitions=${SCALE_PARTITIONS:-8}
record_bytes=${SCALE_RECORD_BYTES:-100}
idle=${SCALE_IDLE:-1000}
idle_seconds=${SCALE_IDLE_SECONDS:-10}
repeat=${SCALE_REPEAT:-5}
max_wait=${SCALE_MAX_WAIT_MS:-500}
broker_bin=${SCALE_BROKER:-$build/stream-broker}
skip=${SCALE_SKIP:-}
for p in stream-topics stream-pub bench/scale_load bench/idle_consumers bench/idle_floor; do
    [ -x "$build/$p" ] || { echo "scale.sh: $build/$p is missing (make bench-scale)" >&2; exit 1; }
done
[ -x "$broker_bin" ] || { echo "scale.sh: $broker_bin is missing" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
need_fds=$((idle + 64))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need_fds" ]; then
    echo "scale.sh: ulimit -n is $(ulimit -n) (hard limit); $idle connections need $need_fds" >&2
    exit 1
fi

# A temp dir on a real disk.
. "$(dirname "$0")/lib.sh"
tmp=$(bench_tmpdir scale "$build") || exit 1
broker_pid=
helpers=()
cleanup() {
    local p
    for p in "${helpers[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${helpers[@]}"; do wait "$p" 2>/dev/null || true; done
    stop_broker
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_broker NAME: a broker with its data in $tmp/NAME; sets broker_pid, STREAM_BROKERS.
start_broker() {
    local dir=$tmp/$1
    mkdir -p "$dir"
    "$broker_bin" --listen 127.0.0.1:0 --data-dir "$dir/data" --ready-file "$dir/ready" \
        --log-level warn --set "max.connections=$((idle + producers + consumers + 100))" \
        </dev/null 2>"$dir/broker.log" &
    broker_pid=$!
    for _ in $(seq 200); do
        [ -s "$dir/ready" ] && break
        kill -0 "$broker_pid" 2>/dev/null || { cat "$dir/broker.log" >&2; exit 1; }
        sleep 0.05
    done
    [ -s "$dir/ready" ] || { echo "scale.sh: broker not ready" >&2; exit 1; }
    STREAM_BROKERS=$(cat "$dir/ready")
    export STREAM_BROKERS
}

stop_broker() {
    if [ -n "$broker_pid" ]; then
        kill -TERM "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
        broker_pid=
    fi
}

# CPU ticks (utime + stime) of a process: fields 14 and 15 of /proc/PID/stat,
# counted after the ")" that ends the command name.
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
hz=$(getconf CLK_TCK)
# cpu_ns PID: CPU time of all the process's threads in ns, from each thread's
# schedstat (exact, where utime + stime count in clock ticks); 0 without it.
cpu_ns() {
    local t sum=0 v
    for t in /proc/"$1"/task/*/schedstat; do
        read -r v _ <"$t" 2>/dev/null || continue
        sum=$((sum + v))
    done
    echo "$sum"
}
# cpu_pct PID SECONDS: the process's CPU over SECONDS, in % of one core.
cpu_pct() {
    local n0 n1 t0 t1
    n0=$(cpu_ns "$1")
    t0=$(date +%s%N)
    sleep "$2"
    n1=$(cpu_ns "$1")
    t1=$(date +%s%N)
    awk -v c="$((n1 - n0))" -v ns="$((t1 - t0))" 'BEGIN { printf "%.2f", c * 100 / ns }'
}
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# wait_line FILE PATTERN PID: until FILE has a line matching PATTERN (or PID died).
wait_line() {
    for _ in $(seq 1200); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        kill -0 "$3" 2>/dev/null || { cat "$1" >&2; return 1; }
        sleep 0.05
    done
    echo "scale.sh: timed out waiting for '$2' in $1" >&2
    return 1
}

echo "scale benchmark: broker $broker_bin, data in $tmp ($(fstype "$tmp")), $(nproc) CPUs," \
    "ulimit -n $(ulimit -n)"

# ---- memory under load ----------------------------------------------------------
if [ "$skip" != memory ]; then
    echo "  memory: $producers producers + $consumers consumers for ${seconds}s," \
        "$partitions partitions, ${record_bytes}-byte records ..." >&2
    start_broker load
    "$build/stream-topics" create load -p "$partitions" >/dev/null
    rss_start=$(status_kb "$broker_pid" VmRSS)
    "$build/bench/scale_load" -t load --producers "$producers" --consumers "$consumers" \
        --seconds "$seconds" --threads "$threads" -s "$record_bytes" >"$tmp/load.out" \
        2>"$tmp/load.err" &
    load_pid=$!
    helpers+=("$load_pid")
    wait_line "$tmp/load.out" '^started' "$load_pid" || { cat "$tmp/load.err" >&2; exit 1; }
    # Sample until the load stops: peak VmRSS, and the CPU over the whole run.
    c0=$(cpu_ticks "$broker_pid")
    t0=$(date +%s%N)
    rss_peak=0
    while kill -0 "$load_pid" 2>/dev/null && ! grep -q '^produced' "$tmp/load.out"; do
        r=$(status_kb "$broker_pid" VmRSS)
        [ "$r" -gt "$rss_peak" ] && rss_peak=$r
        sleep 0.1
    done
    c1=$(cpu_ticks "$broker_pid")
    t1=$(date +%s%N)
    hwm=$(status_kb "$broker_pid" VmHWM)
    load_cpu=$(awk -v c="$((c1 - c0))" -v hz="$hz" -v ns="$((t1 - t0))" \
        'BEGIN { printf "%.1f", c / hz * 100 / (ns / 1e9) }')
    if ! wait "$load_pid"; then
        cat "$tmp/load.err" >&2
        echo "scale.sh: scale_load failed" >&2
        exit 1
    fi
    helpers=()
    read -r _ produced _ consumed _ _ _ produce_rps _ consume_rps _ _ < <(grep '^produced' "$tmp/load.out")
    stop_broker
fi

# ---- idle long polls ---------------------------------------------------------------
# median V...: the middle value (the mean of the two middle ones for an even count).
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR % 2) printf "%.2f", v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
if [ "$skip" != idle ]; then
    echo "  idle: baseline, then $idle long-polling connections (max_wait_ms $max_wait)," \
        "${idle_seconds}s, $repeat times, each after the same polls on bench/idle_floor ..." >&2
    start_broker idle
    "$build/stream-topics" create idle -p "$partitions" >/dev/null
    sleep 1
    base_cpu=$(cpu_pct "$broker_pid" "$idle_seconds")
    # Connections are spread over one max_wait_ms: wait that long, and a second.
    settle=$(awk -v w="$max_wait" 'BEGIN { printf "%.1f", w / 1000 + 1 }')
    idle_cpus=() floor_cpus=()
    for ((rep = 1; rep <= repeat; rep++)); do
        # The limit: the same connections, requests and answers on a server
        # that does nothing but the system calls.
        "$build/bench/idle_floor" serve --max-wait-ms "$max_wait" >"$tmp/floor.out" \
            2>"$tmp/floor.err" &
        floor_pid=$!
        helpers+=("$floor_pid")
        wait_line "$tmp/floor.out" '^port' "$floor_pid" || { cat "$tmp/floor.err" >&2; exit 1; }
        "$build/bench/idle_floor" poll -p "$(awk '/^port/ { print $2 }' "$tmp/floor.out")" \
            -n "$idle" --max-wait-ms "$max_wait" 2>"$tmp/floor_poll.err" &
        floor_poll_pid=$!
        helpers+=("$floor_poll_pid")
        sleep "$settle"
        floor_cpus+=("$(cpu_pct "$floor_pid" "$idle_seconds")")
        kill -TERM "$floor_poll_pid" "$floor_pid" 2>/dev/null || true
        wait "$floor_poll_pid" "$floor_pid" 2>/dev/null || true
        helpers=()

        # The broker. The last round then wakes every poll with a record.
        if [ "$rep" -lt "$repeat" ]; then
            stop_after=(--seconds 100000)
        else
            stop_after=(--until-records 1 --timeout-ms 600000)
        fi
        "$build/bench/idle_consumers" -t idle -n "$idle" --max-wait-ms "$max_wait" \
            "${stop_after[@]}" >"$tmp/idle.out" 2>"$tmp/idle.err" &
        idle_pid=$!
        helpers+=("$idle_pid")
        wait_line "$tmp/idle.out" '^ready' "$idle_pid" || { cat "$tmp/idle.err" >&2; exit 1; }
        sleep 1 # every first fetch parked
        idle_cpus+=("$(cpu_pct "$broker_pid" "$idle_seconds")")
        if [ "$rep" -lt "$repeat" ]; then
            kill -TERM "$idle_pid" 2>/dev/null || true
            wait "$idle_pid" 2>/dev/null || true
            helpers=()
        fi
    done
    idle_rss=$(status_kb "$broker_pid" VmRSS)
    for ((p = 0; p < partitions; p++)); do
        echo wake | "$build/stream-pub" -t idle -p "$p" --acks 1
    done
    if ! wait "$idle_pid"; then
        cat "$tmp/idle.err" >&2
        echo "scale.sh: not every long poll received the records" >&2
        exit 1
    fi
    helpers=()
    read -r _ _ _ fetches _ _ _ _ _ _ _ wake_ms < <(grep '^connections' "$tmp/idle.out")
    stop_broker
    idle_cpu=$(median "${idle_cpus[@]}")
    floor_cpu=$(median "${floor_cpus[@]}")
fi

echo
printf '%-58s %14s\n' "measurement" "value"
if [ "$skip" != memory ]; then
    printf '%-58s %11.1f MB\n' "broker peak VmRSS, $producers producers + $consumers consumers" \
        "$(echo "$rss_peak" | awk '{ print $1 / 1024 }')"
    printf '%-58s %11.1f MB\n' "broker VmHWM at the end of the load" "$(echo "$hwm" | awk '{ print $1 / 1024 }')"
    printf '%-58s %11.1f MB\n' "broker VmRSS before the load" "$(echo "$rss_start" | awk '{ print $1 / 1024 }')"
    printf '%-58s %11s /s\n' "records produced during the load" "$produce_rps"
    printf '%-58s %11s /s\n' "records consumed (all consumers) during the load" "$consume_rps"
    printf '%-58s %12s %%\n' "broker CPU during the load (100 % = one core)" "$load_cpu"
fi
if [ "$skip" != idle ]; then
    printf '%-58s %12s %%\n' "broker CPU, no connections (baseline)" "$base_cpu"
    printf '%-58s %12s %%   (%s)\n' "broker CPU, $idle long-polling connections" "$idle_cpu" \
        "${idle_cpus[*]}"
    printf '%-58s %12s %%   (%s)\n' "limit: bench/idle_floor, the same polls, kernel only" \
        "$floor_cpu" "${floor_cpus[*]}"
    printf '%-58s %13s\n' "broker / limit" \
        "$(awk -v a="$idle_cpu" -v b="$floor_cpu" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }')"
    printf '%-58s %11.1f MB\n' "broker VmRSS with $idle long-polling connections" \
        "$(echo "$idle_rss" | awk '{ print $1 / 1024 }')"
    printf '%-58s %11s ms\n' "one record per partition reaches all $idle (slowest)" "$wake_ms"
fi
echo
echo "CPU: load from /proc/PID/stat over its whole run; idle from the threads' schedstat over" \
    "${idle_seconds}s. 100 % = one core. Idle:" \
    "median of $repeat rounds (each round's value in parentheses), the limit measured in the same" \
    "round just before. VmRSS sampled every 100 ms. Long polls use max_wait_ms $max_wait and are" \
    "re-sent as each is answered."
if [ "$skip" != idle ] && [ "$idle" -ge 1000 ]; then
    echo
    awk -v c="$idle_cpu" -v n="$idle" 'BEGIN { printf "issue 6 target: broker CPU with %d long-polling consumers %.2f %% (< 2 %%): %s\n", n, c, c < 2 ? "met" : "missed" }'
fi
