#!/usr/bin/env python3
"""report.py - the table of `make bench-peers` (tests/bench/peers.sh).

    python3 report.py RESULTS_DIR BUILD_DIR < settings.json

RESULTS_DIR holds one WORKLOAD.SYSTEM.jsonl per measured pair, a JSON line
per repetition (stream-bench --json, nats_bench, redis_xread, loopback_bw, or
peers.sh's translation of redis-benchmark and dd). Every figure is the median
over the repetitions; ratios are ratios of medians. Prints the table, the
issue-6 and issue-20 targets, each durable-path ratio's spread over the
repetitions, and writes BUILD_DIR/bench-peers.tsv (the table) and
BUILD_DIR/bench-peers.json (settings, every run, medians, targets).
"""
import json
import os
import statistics
import sys

# workload, its label, and its systems: (system, label, role). role "peer"
# ratios records/s, "limit" ratios MB/s.
WORKLOADS = [
    ("produce100", "produce 100 B, acks=1, one producer", [
        ("stream", "stream-bench produce --acks 1", None),
        ("redis", "Redis XADD, redis-benchmark -P {redis_pipeline}", "peer"),
        ("nats", "NATS JetStream js_PublishAsync", "peer"),
        ("kafka", "Kafka listener, librdkafka (kafka_bench)", "peer"),
    ]),
    ("produce_wide", "produce 100 B to {wide_partitions_total} partitions", [
        ("stream", "stream-bench --topics {wide_topics} --partitions {wide_partitions}", None),
        ("single", "vs stream to one partition (row 1)", "peer"),
    ]),
    ("consume100", "consume 100 B from the start", [
        ("stream", "stream-bench consume", None),
        ("redis", "Redis XREAD COUNT {redis_xread_count}", "peer"),
        ("nats", "NATS pull consumer, Fetch {nats_fetch_batch}", "peer"),
        ("kafka", "Kafka listener, librdkafka (kafka_bench)", "peer"),
    ]),
    ("produce1k_all", "produce 1 KiB, acks=all", [
        ("stream", "stream-bench produce --acks all", None),
        ("disk", "limit: dd bs=1M conv=fdatasync", "limit"),
        ("writer", "limit: bare writer, group commit (disk_writer)", "limit"),
        ("writer_window", "limit: bare writer, 4 MiB window", "limit"),
    ]),
    ("consume1k", "consume 1 KiB from the start", [
        ("stream", "stream-bench consume", None),
        ("loopback", "limit: loopback TCP, 1 stream", "limit"),
    ]),
    ("e2e_acks1", "e2e 100 B at {e2e_rate}/s, acks=1", [
        ("stream", "stream-bench e2e --acks 1", None),
    ]),
    ("e2e_acksall", "e2e 100 B at {e2e_rate}/s, acks=all", [
        ("stream", "stream-bench e2e --acks all", None),
        ("writer", "disk: bare writer at that rate, write to disk", None),
    ]),
]


def p99_of(workload, system, r):
    """A run's p99 in ms: disk_writer's e2e row is its paced phase."""
    if workload == "e2e_acksall" and system == "writer":
        return r.get("paced_ms", {}).get("p99")
    return r.get("latency_ms", {}).get("p99")


def rate_of(workload, system, r):
    if workload == "e2e_acksall" and system == "writer":
        return r.get("paced_ms", {}).get("rate")
    return r.get("rate" if workload.startswith("e2e") else "records_per_sec")


def load(res, workload, system):
    if system == "writer_window":
        # disk_writer's windowed phase, from the same JSON line as "writer"
        return [{"mb_per_sec": r.get("window_mb_per_sec")} for r in load(res, workload, "writer")]
    path = os.path.join(res, f"{workload}.{system}.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def med(runs, get):
    vals = [v for v in (get(r) for r in runs) if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, spec, width):
    return "-".rjust(width) if v is None else format(v, spec).rjust(width)


def main():
    res, build = sys.argv[1], sys.argv[2]
    settings = json.load(sys.stdin)
    rows, raw = [], {}
    for workload, wlabel, systems in WORKLOADS:
        base = None
        for system, slabel, role in systems:
            runs = load(res, workload, system)
            raw[f"{workload}.{system}"] = runs
            e2e = workload.startswith("e2e")
            row = {
                "workload": workload,
                "workload_label": wlabel.format(**settings),
                "system": system,
                "system_label": slabel.format(**settings),
                "runs": len(runs),
                "records_per_sec": med(runs, lambda r: rate_of(workload, system, r)),
                "mb_per_sec": None if e2e else med(runs, lambda r: r.get("mb_per_sec")),
                "p99_ms": med(runs, lambda r: p99_of(workload, system, r)),
                "stream_over_x": None,
            }
            if role is None:
                base = row
            elif base is not None:
                key = "records_per_sec" if role == "peer" else "mb_per_sec"
                if base[key] and row[key]:
                    row["stream_over_x"] = base[key] / row[key]
            rows.append(row)

    def find(workload, system):
        return next(r for r in rows if r["workload"] == workload and r["system"] == system)

    def ratio(workload, system):
        return find(workload, system)["stream_over_x"]

    def stat(workload, key):
        return find(workload, "stream")[key]

    targets = [
        ("produce 100 B acks=1: stream / Redis XADD pipelined", ratio("produce100", "redis"), ">=", 5, "x"),
        ("produce 100 B acks=1: stream / NATS async publish", ratio("produce100", "nats"), ">=", 3, "x"),
        ("produce 100 B acks=1: records/s", stat("produce100", "records_per_sec"), ">=", 2.5e6, "rec/s"),
        ("produce 100 B acks=1: 1000 partitions / 1, records/s", ratio("produce_wide", "single"), ">=", 0.50, "%"),
        ("produce 1 KiB acks=all: stream / dd fdatasync MB/s", ratio("produce1k_all", "disk"), ">=", 0.70, "%"),
        ("consume 1 KiB: stream / loopback TCP MB/s", ratio("consume1k", "loopback"), ">=", 0.45, "%"),
        ("consume 100 B: records/s", stat("consume100", "records_per_sec"), ">=", 5e6, "rec/s"),
        ("e2e p99 at 10,000/s, acks=1", stat("e2e_acks1", "p99_ms"), "<=", 1.0, "ms"),
        ("e2e p99 at 10,000/s, acks=all", stat("e2e_acksall", "p99_ms"), "<=", 3.0, "ms"),
    ]

    # Issue 14: the Kafka listener (librdkafka) against the native client.
    def over(workload, system):
        x = ratio(workload, system)
        return 1 / x if x else None
    targets += [
        ("produce 100 B: Kafka listener / native records/s (14)", over("produce100", "kafka"),
         ">=", 0.80, "%"),
        ("consume 100 B: Kafka listener / native records/s (14)", over("consume100", "kafka"),
         ">=", 0.80, "%"),
    ]

    # Issue 20: the durable path against the bare writer of the same run.
    writer_runs = load(res, "produce1k_all", "writer")
    small_sync_p99 = med(writer_runs, lambda r: r.get("small_sync_ms", {}).get("p99"))
    e2e_goal = None if small_sync_p99 is None else 1.5 * small_sync_p99 + 0.5
    targets += [
        ("produce 1 KiB acks=all: stream / bare writer MB/s (20)", ratio("produce1k_all", "writer"),
         ">=", 0.90, "%"),
        ("e2e p99 acks=all <= 1.5x disk fdatasync p99 + 0.5 (20)", stat("e2e_acksall", "p99_ms"),
         "<=", e2e_goal, "ms"),
    ]

    # The spread over repetitions of each ratio (run r of stream over run r
    # of the limit), so a ratio is quoted with how much it moves.
    def per_rep(workload, a, b, get):
        xs, ys = load(res, workload, a), load(res, workload, b)
        out = []
        for x, y in zip(xs, ys):
            vx, vy = get(workload, a, x), get(workload, b, y)
            if vx is not None and vy:
                out.append(vx / vy)
        return out

    mbps = lambda w, sys_, r: r.get("mb_per_sec")  # noqa: E731
    spreads = [
        ("produce 1 KiB acks=all: stream / bare writer MB/s",
         per_rep("produce1k_all", "stream", "writer", mbps)),
        ("produce 1 KiB acks=all: stream / windowed writer MB/s",
         per_rep("produce1k_all", "stream", "writer_window", mbps)),
        ("produce 1 KiB acks=all: stream / dd MB/s", per_rep("produce1k_all", "stream", "disk", mbps)),
        ("e2e p99 acks=all / bare writer's write-to-disk p99",
         per_rep("e2e_acksall", "stream", "writer", p99_of)),
    ]

    def show(v, unit):
        if v is None:
            return "-"
        if unit == "x":
            return f"{v:.2f}x"
        if unit == "%":
            return f"{v * 100:.0f}%"
        if unit == "rec/s":
            return f"{v / 1e6:.2f} M/s"
        return f"{v:.3f} ms"

    tgt_out = []
    for label, v, op, goal, unit in targets:
        if v is None or goal is None:
            met, note = None, "not measured"
        elif op == ">=":
            met = v >= goal
            note = "met" if met else f"NOT met: {v / goal * 100:.0f}% of the target ({goal / v:.2f}x short)"
        else:
            met = v <= goal
            note = "met" if met else f"NOT met: {v / goal:.2f}x the limit"
        tgt_out.append({"target": label, "measured": v, "op": op, "goal": goal, "unit": unit,
                        "met": met, "note": note, "measured_text": show(v, unit),
                        "goal_text": op + " " + show(goal, unit)})
    spread_out = [{"ratio": label, "per_repetition": [round(x, 4) for x in xs],
                   "min": round(min(xs), 4) if xs else None,
                   "median": round(statistics.median(xs), 4) if xs else None,
                   "max": round(max(xs), 4) if xs else None} for label, xs in spreads]

    s = settings
    print()
    print(f"stream vs peers: {s['records_100b']} x 100 B and {s['records_1k']} x 1 KiB records per run, "
          f"e2e {s['e2e_records']} at {s['e2e_rate']}/s; median of {s['repetitions']} repetitions")
    print(f"{s['cpus']} CPUs, data on {s['data_fs']}; load average {s['load_start']} at start, "
          f"{s['load_end']} at the end; {s['elapsed_s']} s; Redis {s['redis_version']}, "
          f"NATS {s['nats_version']}")
    print()
    head = f"{'workload':<37} {'system':<42} {'records/s':>11} {'MB/s':>9} {'p99 ms':>9} {'stream/x':>9}"
    print(head)
    print("-" * len(head))
    last = None
    for r in rows:
        w = r["workload_label"] if r["workload"] != last else ""
        last = r["workload"]
        so = r["stream_over_x"]
        print(f"{w:<37} {r['system_label']:<42} {fmt(r['records_per_sec'], ',.0f', 11)} "
              f"{fmt(r['mb_per_sec'], '.1f', 9)} {fmt(r['p99_ms'], '.3f', 9)} "
              f"{('-' if so is None else f'{so:.2f}x').rjust(9)}")
    print()
    print("stream/x: stream's records/s over a peer's; over a limit, MB/s. "
          "MB = 10^6 bytes of values. p99: produce to ack (e2e: send to receipt).")
    print()
    print(f"{'target (issue 6; (N): issue N)':<56} {'measured':>11} {'target':>13}  result")
    for t in tgt_out:
        print(f"{t['target']:<56} {t['measured_text']:>11} {t['goal_text']:>13}  {t['note']}")
    print()
    print(f"{'ratio over the repetitions':<56} {'min':>8} {'median':>8} {'max':>8}")
    for sp in spread_out:
        if sp["median"] is None:
            print(f"{sp['ratio']:<56} {'-':>8} {'-':>8} {'-':>8}")
        else:
            print(f"{sp['ratio']:<56} {sp['min']:>8.2f} {sp['median']:>8.2f} {sp['max']:>8.2f}")
    if small_sync_p99 is not None:
        print(f"(disk fdatasync p99 of one 100 B record, median over the repetitions: "
              f"{small_sync_p99:.3f} ms)")

    tsv = os.path.join(build, "bench-peers.tsv")
    with open(tsv, "w") as fh:
        fh.write("workload\tsystem\tdescription\truns\trecords_per_sec\tmb_per_sec\tp99_ms\tstream_over_x\n")
        for r in rows:
            cells = [r["workload"], r["system"], r["system_label"], str(r["runs"])]
            for k, spec in (("records_per_sec", ".1f"), ("mb_per_sec", ".3f"), ("p99_ms", ".3f"),
                            ("stream_over_x", ".3f")):
                cells.append("" if r[k] is None else format(r[k], spec))
            fh.write("\t".join(cells) + "\n")
    out = os.path.join(build, "bench-peers.json")
    for r in rows:  # medians of 3-decimal figures need no 17 digits
        for k in ("records_per_sec", "mb_per_sec", "p99_ms", "stream_over_x"):
            if r[k] is not None:
                r[k] = round(r[k], 3)
    for t in tgt_out:
        if t["measured"] is not None:
            t["measured"] = round(t["measured"], 4)
    with open(out, "w") as fh:
        json.dump({"settings": settings, "rows": rows, "targets": tgt_out, "spreads": spread_out,
                   "runs": raw}, fh, indent=1)
        fh.write("\n")
    print()
    print(f"written: {tsv}, {out}")


if __name__ == "__main__":
    main()
