#!/usr/bin/env python3
"""replicacheck.py - checks, from the segment files themselves, that the
replicas of a partition agree after a cluster run (tests/cli/replication.bats,
tests/soak/cluster-soak.sh).

  prefix --topic T --partitions N DATA_DIR...
      For each partition, reads every broker's log (DATA_DIR/T-P/*.log, in
      name order: the names are zero-padded base offsets) as a list of
      batches (baseOffset, lastOffset, CRC - RecordBatch v2, protocol.md
      section 7) and checks that of any two replicas one log is a prefix of
      the other: same batches at the same offsets, byte for byte as far as
      the CRC tells (it covers everything after the partitionLeaderEpoch).
      A replica whose log diverged - a returning old leader that kept
      records the new leader never had - fails it. With --same, every log
      must be identical (all replicas caught up). Prints one summary line;
      exits 1 on a violation, printing it.
"""
import argparse
import os
import struct
import sys


def batches(d):
    out = []
    if not os.path.isdir(d):
        return out
    for name in sorted(f for f in os.listdir(d) if f.endswith(".log")):
        data = open(os.path.join(d, name), "rb").read()
        pos = 0
        while pos + 61 <= len(data):
            base, length = struct.unpack(">qi", data[pos:pos + 12])
            crc = struct.unpack(">I", data[pos + 17:pos + 21])[0]
            last_delta = struct.unpack(">i", data[pos + 23:pos + 27])[0]
            size = 12 + length
            if length < 49 or pos + size > len(data):
                break
            out.append((base, base + last_delta, crc))
            pos += size
    return out


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prefix")
    p.add_argument("--topic", required=True)
    p.add_argument("--partitions", type=int, required=True)
    p.add_argument("--same", action="store_true")
    p.add_argument("dirs", nargs="+")
    a = ap.parse_args()
    bad = 0
    records = 0
    for part in range(a.partitions):
        logs = [(d, batches(os.path.join(d, "%s-%d" % (a.topic, part)))) for d in a.dirs]
        longest = max(logs, key=lambda x: len(x[1]))
        records = records + (longest[1][-1][1] + 1 if longest[1] else 0)
        for d, bl in logs:
            n = min(len(bl), len(longest[1]))
            if bl[:n] != longest[1][:n]:
                i = next(k for k in range(n) if bl[k] != longest[1][k])
                print("partition %d: %s diverges from %s at batch %d: %s vs %s"
                      % (part, d, longest[0], i, bl[i], longest[1][i]))
                bad += 1
            elif a.same and len(bl) != len(longest[1]):
                print("partition %d: %s has %d batches, %s has %d"
                      % (part, d, len(bl), longest[0], len(longest[1])))
                bad += 1
    print("replicas: %d partitions x %d brokers, %d records in the longest logs, %d violations"
          % (a.partitions, len(a.dirs), records, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
