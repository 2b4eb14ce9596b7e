#!/usr/bin/env python3
"""proccheck.py - checks what stream-proc made of a topic (tests/soak/proc-soak.sh,
tests/cli/stream-proc.bats).

The input topic holds records keyed KEY with values "KEY:SEQ" (SEQ counting
1, 2, 3, ... per key, as the producer wrote them); the command maps each
line to "out:KEY:SEQ" (one output per input). Files are `stream-sub --json`
dumps (one JSON record per line) and `stream-topics group G --json`.

  proccheck.py committed IN.json OUT.json GROUP.json
      committed offsets never ahead of delivered: every input record below
      its partition's committed offset has its output in OUT now.

  proccheck.py final IN.json OUT.json [--no-duplicates]
      every input record has its output in OUT at least once; per key, the
      outputs in OUT (a key's outputs are in one partition, in offset order)
      never skip ahead: each SEQ is at most one more than the largest seen
      before it, and a SEQ not larger than that is a replay (a duplicate) -
      so order per key is kept and duplicates only repeat what came before.
      With --no-duplicates, no output may appear twice.

Prints one line of figures; exits 1 with the first problems on failure.
"""
import json
import sys


def records(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                out.append(json.loads(line))
    return out


def seq_of(value, prefix=""):
    if not value.startswith(prefix):
        raise ValueError(f"unexpected value {value!r}")
    key, seq = value[len(prefix):].rsplit(":", 1)
    return key, int(seq)


def outputs(out_recs):
    """{(key, seq): count} and, per key, the SEQs in OUT's order."""
    seen, per_key = {}, {}
    by_part = {}
    for r in out_recs:
        by_part.setdefault(r["partition"], []).append(r)
    for part, recs in by_part.items():
        recs.sort(key=lambda r: r["offset"])
        for r in recs:
            key, seq = seq_of(r["value"], "out:")
            if r["key"] != key:
                raise ValueError(f"output {r['value']!r} has key {r['key']!r}, not {key!r}")
            seen[(key, seq)] = seen.get((key, seq), 0) + 1
            per_key.setdefault(key, []).append((part, seq))
    return seen, per_key


def check_committed(in_path, out_path, group_path):
    in_recs = records(in_path)
    seen, _ = outputs(records(out_path))
    with open(group_path, encoding="utf-8") as f:
        group = json.load(f)
    committed = {o["partition"]: o["offset"] for o in group.get("offsets", [])}
    bad = []
    covered = 0
    for r in in_recs:
        c = committed.get(r["partition"], -1)
        if c is None or r["offset"] >= c:
            continue
        covered += 1
        if seq_of(r["value"]) not in seen:
            bad.append(f"partition {r['partition']} offset {r['offset']} ({r['value']}) is "
                       f"below the committed offset {c} but has no output")
    if bad:
        print("\n".join(bad[:10]), file=sys.stderr)
        return 1
    print(f"committed ok: {covered} committed input records all have outputs "
          f"(committed {dict(sorted(committed.items()))})")
    return 0


def check_final(in_path, out_path, no_duplicates):
    in_recs = records(in_path)
    seen, per_key = outputs(records(out_path))
    bad = []
    for r in in_recs:
        if seq_of(r["value"]) not in seen:
            bad.append(f"partition {r['partition']} offset {r['offset']} ({r['value']}) "
                       "has no output")
    duplicates = 0
    for key, seqs in per_key.items():
        parts = {p for p, _ in seqs}
        if len(parts) != 1:
            bad.append(f"key {key}: outputs in partitions {sorted(parts)}")
        top = 0
        for _, seq in seqs:
            if seq > top + 1:
                bad.append(f"key {key}: output {seq} after {top} skips ahead (order broken)")
            if seq <= top:
                duplicates += 1
            top = max(top, seq)
    if no_duplicates and duplicates:
        bad.append(f"{duplicates} duplicates where none may be")
    if bad:
        print("\n".join(bad[:10]), file=sys.stderr)
        return 1
    print(f"final ok: {len(in_recs)} input records, {sum(seen.values())} outputs, "
          f"{duplicates} replayed, {len(per_key)} keys in order")
    return 0


def main():
    if len(sys.argv) >= 5 and sys.argv[1] == "committed":
        return check_committed(sys.argv[2], sys.argv[3], sys.argv[4])
    if len(sys.argv) >= 4 and sys.argv[1] == "final":
        return check_final(sys.argv[2], sys.argv[3], "--no-duplicates" in sys.argv[4:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
