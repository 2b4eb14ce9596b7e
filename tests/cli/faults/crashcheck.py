#!/usr/bin/env python3
"""crashcheck.py - record generator and acknowledgement checker for the
crash-loop test in tests/cli/faults.bats.

  gen BASE [--rate N] [--stop-file FILE]
      writes the numbers BASE+1, BASE+2, ... one per line to stdout, about N
      a second, until the reader goes away or FILE exists. Every stream-pub run of the test
      gets its own BASE, so a record's value names it uniquely and record
      number R of that run's --ack-log is the value BASE+R.

  check --log FILE [--exactly-once] ACKLOG...
      FILE holds what the topic stores, one 'PARTITION OFFSET VALUE' line per
      record (stream-sub -f '%p %o %v\\n'); each ACKLOG is one stream-pub
      --ack-log file named '<anything>.<BASE>' (lines 'RECORD PARTITION
      OFFSET'). Checks that every acknowledged record is stored at the
      partition and offset it was acknowledged with, that offsets are
      contiguous per partition, and that the values of each partition
      appear in the order they were sent (first appearances increasing:
      runs are sequential and a run sends in order). With --exactly-once
      a value stored twice is an error too; without it duplicates are only
      counted (a producer that retries may store a batch twice until it is
      idempotent). Prints one summary line; exits 1 on any violation,
      printing the first few.

      With --group DIR --polls FILE --disruptions N it also checks what a
      consumer group delivered (DIR/*.out) and committed (FILE, written by
      groupcheck.py poll) over a run with N broker kills: every
      acknowledged record delivered at least once with the value the log
      holds, duplicates only as in-order replays after a kill, committed
      offsets never backwards and never past an undelivered record (see
      groupcheck.py), and one more summary line.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import groupcheck  # noqa: E402


def cmd_gen(a):
    n = a.base
    per_tick = max(1, a.rate // 100)
    out = sys.stdout
    try:
        while not (a.stop_file and os.path.exists(a.stop_file)):
            out.write("".join("%d\n" % (n + i) for i in range(1, per_tick + 1)))
            out.flush()
            n += per_tick
            time.sleep(0.01)
    except (BrokenPipeError, KeyboardInterrupt):
        # stream-pub died with the broker (the test starts a new run); no
        # flush at exit into the broken pipe.
        os._exit(0)
    return 0


def cmd_check(a):
    errors = []

    def err(msg):
        errors.append(msg)

    # What the log holds.
    stored = {}  # (partition, offset) -> value
    parts = {}   # partition -> [offsets in file order]
    with open(a.log) as f:
        for ln, line in enumerate(f, 1):
            fields = line.split()
            if len(fields) != 3:
                err("log line %d malformed: %r" % (ln, line))
                continue
            p, o, v = int(fields[0]), int(fields[1]), int(fields[2])
            if (p, o) in stored:
                err("offset %d of partition %d read twice" % (o, p))
            stored[(p, o)] = v
            parts.setdefault(p, []).append(o)

    dups = 0
    for p, offs in sorted(parts.items()):
        offs.sort()
        for x, y in zip(offs, offs[1:]):
            if y != x + 1:
                err("partition %d: offsets jump from %d to %d" % (p, x, y))
        seen = set()
        last_first = None
        for o in offs:
            v = stored[(p, o)]
            if v in seen:
                dups += 1
                if a.exactly_once:
                    err("partition %d: value %d stored again at offset %d" % (p, v, o))
                continue
            seen.add(v)
            if last_first is not None and v <= last_first:
                err("partition %d: value %d at offset %d after %d (out of order)"
                    % (p, v, o, last_first))
            last_first = v

    # Every acknowledgement must be backed by the log.
    acked = 0
    for path in a.acklogs:
        base = int(path.rsplit(".", 1)[1])
        with open(path) as f:
            for ln, line in enumerate(f, 1):
                fields = line.split()
                if len(fields) != 3:
                    err("%s:%d malformed: %r" % (path, ln, line))
                    continue
                r, p, o = int(fields[0]), int(fields[1]), int(fields[2])
                acked += 1
                want = base + r
                got = stored.get((p, o))
                if got != want:
                    err("acknowledged value %d (partition %d offset %d) is %s"
                        % (want, p, o, "missing" if got is None else "replaced by %d" % got))

    print("checked %d stored records in %d partitions, %d acknowledged, %d duplicates, "
          "%d violations" % (len(stored), len(parts), acked, dups, len(errors)))
    for e in errors[:20]:
        print("  " + e)
    if acked == 0:
        print("  nothing was acknowledged: the test proved nothing")
        return 1
    if a.group:
        polls = groupcheck.load_polls(a.polls)
        gerr, st, _ = groupcheck.check_group(a.group, polls, groupcheck.acks_from_logs(a.acklogs),
                                             stored=stored, disruptions=a.disruptions)
        print("group: %(delivered)d delivered by %(files)d member runs, %(duplicates)d duplicates "
              "in %(replay_runs)d replay runs, %(polls)d commit polls" % st
              + ", %d violations" % len(gerr))
        for e in gerr[:20]:
            print("  " + e)
        if st["delivered"] == 0 or st["polls"] == 0:
            print("  the group delivered or committed nothing: the test proved nothing")
            return 1
        # The test waits for the group to catch up before it stops it.
        if any(st["final_commits"].get(p, -1) != len(offs) for p, offs in parts.items()):
            gerr.append("final commits %s are not the log's ends %s" % (
                st["final_commits"], {p: len(offs) for p, offs in parts.items()}))
            print("  " + gerr[-1])
        errors += gerr
    return 1 if errors else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("base", type=int)
    g.add_argument("--rate", type=int, default=5000)
    g.add_argument("--stop-file", help="end the output (EOF) once this file exists")
    c = sub.add_parser("check")
    c.add_argument("--log", required=True)
    c.add_argument("--exactly-once", action="store_true")
    c.add_argument("--group", metavar="DIR", help="member outputs DIR/*.out")
    c.add_argument("--polls", help="groupcheck.py poll output")
    c.add_argument("--disruptions", type=int, default=0)
    c.add_argument("acklogs", nargs="*")
    a = ap.parse_args()
    return {"gen": cmd_gen, "check": cmd_check}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
