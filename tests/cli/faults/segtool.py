#!/usr/bin/env python3
"""segtool.py - looks inside a partition's segment files for the corruption
tests in tests/cli/faults.bats, so they can damage exactly the bytes they
mean to (the tail of the last batch, the first batch of the active segment).

  batches SEGMENT.log
      one line per batch that the header chain reaches:
      'POSITION SIZE BASE_OFFSET LAST_OFFSET' (the header's baseOffset,
      batchLength and lastOffsetDelta; RecordBatch v2, share/doc/protocol.md
      section 7). Stops at the first header that does not fit the file.
  active DIR
      the path of the partition directory's last .log file (the active
      segment: the names are zero-padded base offsets, so the last by name).
"""
import os
import struct
import sys


def batches(path):
    data = open(path, "rb").read()
    pos = 0
    while pos + 61 <= len(data):
        base, length = struct.unpack(">qi", data[pos:pos + 12])
        last_delta = struct.unpack(">i", data[pos + 23:pos + 27])[0]
        size = 12 + length
        if length < 49 or pos + size > len(data):
            break
        print(pos, size, base, base + last_delta)
        pos += size


def active(d):
    logs = sorted(f for f in os.listdir(d) if f.endswith(".log"))
    print(os.path.join(d, logs[-1]))


def main():
    cmd, arg = sys.argv[1], sys.argv[2]
    {"batches": batches, "active": active}[cmd](arg)


if __name__ == "__main__":
    main()
