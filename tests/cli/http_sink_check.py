#!/usr/bin/python3
"""The checker of `stream-sub --post -g` under kill -9 (http_sink_kill.sh).

  http_sink_check.py committed RECEIVED GROUP_JSON
      After a kill: every offset the group has committed is covered by what
      the endpoint took -- for each partition with committed offset C, every
      record at offsets [0, C) is in RECEIVED (the server's --out: the JSON
      lines it answered 2xx). Committed offsets never ahead of delivery.

  http_sink_check.py final RECEIVED TOPIC_DUMP RESTARTS
      At the end: TOPIC_DUMP is `stream-sub --json -e` of the whole topic
      (every record acknowledged). Checks
        - nothing lost: every record of the topic reached the endpoint, with
          the same value;
        - nothing invented: every record received is a record of the topic;
        - order per partition: what a partition's records looked like in
          arrival order is a run of consecutive offsets, then, only after a
          restart, a step back (a replay) and another run; at most RESTARTS
          steps back per partition (each run of the sink replays at most
          once).

Prints one line of figures; exits 1 with the first problems on stderr.
"""
import json
import sys
from collections import defaultdict


def read_lines(path):
    recs = []
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                recs.append(json.loads(line))
            except ValueError:
                sys.exit("%s line %d: not a JSON line (a torn batch?): %r" % (path, n, line[:80]))
    return recs


def committed(received_path, group_path):
    got = defaultdict(set)
    for r in read_lines(received_path):
        got[(r["topic"], r["partition"])].add(r["offset"])
    with open(group_path) as f:
        g = json.load(f)
    bad = []
    checked = 0
    for o in g.get("offsets", []):
        key = (o["topic"], o["partition"])
        c = o["offset"]
        if c is None or c < 0:
            continue
        checked += 1
        missing = [x for x in range(0, c) if x not in got[key]]
        if missing:
            bad.append("%s/%d committed %d but offsets %s... never reached the endpoint"
                       % (key[0], key[1], c, missing[:5]))
    if bad:
        sys.stderr.write("\n".join(bad) + "\n")
        return 1
    print("committed offsets of %d partitions all delivered" % checked)
    return 0


def final(received_path, dump_path, restarts):
    topic = {}
    for r in read_lines(dump_path):
        topic[(r["partition"], r["offset"])] = r["value"]
    arrivals = defaultdict(list)
    bad = []
    received = 0
    for r in read_lines(received_path):
        received += 1
        k = (r["partition"], r["offset"])
        if k not in topic:
            bad.append("received partition %d offset %d, which the topic does not hold" % k)
        elif topic[k] != r["value"]:
            bad.append("partition %d offset %d: value %r, the topic holds %r"
                       % (k[0], k[1], r["value"], topic[k]))
        arrivals[r["partition"]].append(r["offset"])
    seen = set()
    for p, offs in arrivals.items():
        seen.update((p, o) for o in offs)
    lost = sorted(k for k in topic if k not in seen)
    if lost:
        bad.append("%d records never reached the endpoint, first %s" % (len(lost), lost[:5]))
    steps_back = 0
    for p, offs in sorted(arrivals.items()):
        back = 0
        for a, b in zip(offs, offs[1:]):
            if b == a + 1:
                continue
            if b <= a:
                back += 1
                continue
            bad.append("partition %d: offset %d arrived right after %d (a gap: order broken)"
                       % (p, b, a))
            break
        if back > restarts:
            bad.append("partition %d: %d steps back (replays) for %d restarts"
                       % (p, back, restarts))
        steps_back += back
    if bad:
        sys.stderr.write("\n".join(bad[:20]) + "\n")
        return 1
    print("%d records in the topic, %d received (%d duplicates), %d replays over %d partitions"
          % (len(topic), received, received - len(topic), steps_back, len(arrivals)))
    return 0


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "committed":
        return committed(sys.argv[2], sys.argv[3])
    if len(sys.argv) == 5 and sys.argv[1] == "final":
        return final(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
