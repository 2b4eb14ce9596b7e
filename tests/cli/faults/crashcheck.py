#!/usr/bin/env python3
"""crashcheck.py - record generator and acknowledgement checker for the
crash loop in tests/cli/faults.bats and the I/O-fault tests in
tests/cli/iofaults.bats.

  gen BASE [--rate N] [--size BYTES] [--stop-file FILE]
      writes the numbers BASE+1, BASE+2, ... one per line to stdout, about N
      a second, until the reader goes away or FILE exists. Every stream-pub run of the test
      gets its own BASE, so a record's value names it uniquely and record
      number R of that run's --ack-log is the value BASE+R. With --size
      each value is its number, ':' and filler derived from the number,
      BYTES long in all (value(), which check --size recomputes), so a
      value that comes back changed in any byte is caught.

  check --log FILE [--exactly-once] [--size BYTES] [--only-acked]
        [--interleaved] [--acks1 ACKLOG]... [--cut PARTITION:OFFSET]... ACKLOG...
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

      --size BYTES: the values were written by gen --size BYTES, and each
      stored value must be exactly that, byte for byte.
      --only-acked: every stored value must be acknowledged by one of the
      ACKLOGs (a failed or unanswered produce must have left nothing
      behind; a retried idempotent batch is stored once and acknowledged).
      --interleaved: runs published concurrently, so order is checked
      within each run (its values name it: the BASE of its ACKLOG).
      --acks1 ACKLOG: an ACKLOG (checked like the others) of an acks=1
      run; --cut P:O says the broker cut partition P back to offset O (its
      last successful sync, after a failed one): acks=1 acknowledgements
      at or above a cut of their partition may be missing (a power loss
      drops them too) and are counted as dropped. Acknowledgements of the
      other ACKLOGs (acks=all) may never be missing.

      With --group DIR --polls FILE --disruptions N it also checks what a
      consumer group delivered (DIR/*.out) and committed (FILE, written by
      groupcheck.py poll) over a run with N broker kills: every
      acknowledged record delivered at least once with the value the log
      holds, duplicates only as in-order replays after a kill, committed
      offsets never backwards and never past an undelivered record (see
      groupcheck.py), and one more summary line.
"""
import argparse
import bisect
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import groupcheck  # noqa: E402


def value(n, size=0):
    """The value gen writes for number n: the number alone, or with --size
    padded to size bytes with filler that depends on n."""
    v = "%d" % n
    if size <= len(v):
        return v
    fill = "%08x" % (n * 2654435761 % (1 << 32))
    return (v + ":" + fill * (size // 8 + 1))[:size]


def cmd_gen(a):
    n = a.base
    per_tick = max(1, a.rate // 100)
    out = sys.stdout
    try:
        while not (a.stop_file and os.path.exists(a.stop_file)):
            out.write("".join(value(n + i, a.size) + "\n" for i in range(1, per_tick + 1)))
            out.flush()
            n += per_tick
            time.sleep(0.01)
    except (BrokenPipeError, KeyboardInterrupt):
        # stream-pub died with the broker (the test starts a new run); no
        # flush at exit into the broken pipe.
        os._exit(0)
    return 0


def read_acks(path):
    """(record, partition, offset) of each line of an --ack-log, or a
    string saying why a line is malformed."""
    with open(path) as f:
        for ln, line in enumerate(f, 1):
            fields = line.split()
            if len(fields) != 3:
                yield "%s:%d malformed: %r" % (path, ln, line)
            else:
                yield tuple(int(x) for x in fields)


def cmd_check(a):
    errors = []

    def err(msg):
        errors.append(msg)

    acklogs = a.acks1 + a.acklogs
    weak = set(a.acks1)
    bases = sorted(int(path.rsplit(".", 1)[1]) for path in acklogs)

    def run_of(v):
        """The BASE of the run that wrote value v (None without --interleaved)."""
        i = bisect.bisect_left(bases, v) - 1
        return bases[i] if a.interleaved and i >= 0 else None

    # What the log holds.
    stored = {}  # (partition, offset) -> value
    parts = {}   # partition -> [offsets in file order]
    with open(a.log) as f:
        for ln, line in enumerate(f, 1):
            fields = line.split()
            if len(fields) != 3:
                err("log line %d malformed: %r" % (ln, line))
                continue
            p, o, v = int(fields[0]), int(fields[1]), int(fields[2].split(":", 1)[0])
            if a.size and fields[2] != value(v, a.size):
                err("partition %d offset %d: value %d is damaged: %r" % (p, o, v, fields[2]))
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
        last_first = {}  # run -> the last value first seen
        for o in offs:
            v = stored[(p, o)]
            if v in seen:
                dups += 1
                if a.exactly_once:
                    err("partition %d: value %d stored again at offset %d" % (p, v, o))
                continue
            seen.add(v)
            r = run_of(v)
            if r in last_first and v <= last_first[r]:
                err("partition %d: value %d at offset %d after %d (out of order)"
                    % (p, v, o, last_first[r]))
            last_first[r] = v

    # Every acknowledgement must be backed by the log (acks=1 ones at or
    # above a cut of their partition excepted).
    cuts = {}
    for c in a.cut:
        p, o = (int(x) for x in c.split(":"))
        cuts[p] = min(o, cuts.get(p, o))
    acked = dropped = 0
    acked_values = set()
    for path in acklogs:
        base = int(path.rsplit(".", 1)[1])
        for ack in read_acks(path):
            if isinstance(ack, str):
                err(ack)
                continue
            r, p, o = ack
            acked += 1
            want = base + r
            acked_values.add(want)
            got = stored.get((p, o))
            if got == want:
                continue
            if path in weak and p in cuts and o >= cuts[p]:
                dropped += 1
                continue
            err("acknowledged value %d (partition %d offset %d) is %s"
                % (want, p, o, "missing" if got is None else "replaced by %d" % got))
    unacked = 0
    if a.only_acked:
        for (p, o), v in sorted(stored.items()):
            if v not in acked_values:
                unacked += 1
                err("partition %d offset %d: value %d was never acknowledged" % (p, o, v))

    print("checked %d stored records in %d partitions, %d acknowledged, %d duplicates, "
          "%d violations" % (len(stored), len(parts), acked, dups, len(errors)))
    if a.only_acked or a.cut:
        print("%d stored but never acknowledged, %d acks=1 acknowledgements dropped by cuts at %s"
              % (unacked, dropped, ", ".join("%d:%d" % c for c in sorted(cuts.items())) or "-"))
    for e in errors[:20]:
        print("  " + e)
    if acked == 0:
        print("  nothing was acknowledged: the test proved nothing")
        return 1
    if a.group:
        polls = groupcheck.load_polls(a.polls)
        gerr, st, _ = groupcheck.check_group(a.group, polls, groupcheck.acks_from_logs(acklogs),
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
    g.add_argument("--size", type=int, default=0)
    g.add_argument("--stop-file", help="end the output (EOF) once this file exists")
    c = sub.add_parser("check")
    c.add_argument("--log", required=True)
    c.add_argument("--exactly-once", action="store_true")
    c.add_argument("--size", type=int, default=0)
    c.add_argument("--only-acked", action="store_true")
    c.add_argument("--interleaved", action="store_true")
    c.add_argument("--acks1", action="append", default=[], metavar="ACKLOG")
    c.add_argument("--cut", action="append", default=[], metavar="PARTITION:OFFSET")
    c.add_argument("--group", metavar="DIR", help="member outputs DIR/*.out")
    c.add_argument("--polls", help="groupcheck.py poll output")
    c.add_argument("--disruptions", type=int, default=0)
    c.add_argument("acklogs", nargs="*")
    a = ap.parse_args()
    return {"gen": cmd_gen, "check": cmd_check}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
