#!/usr/bin/env python3
"""groupcheck.py - what a consumer group delivered and committed under
faults, and whether that was right (the crash loop in tests/cli/faults.bats
and the soak in tests/soak/).

  poll --group G --members DIR --out FILE [--every S --stop-file F]
      runs `stream-topics group G --json` and appends one JSON line to FILE:
      the wall time, the group's generation, state and member count, its
      committed offset per partition, each partition's log start and end,
      and then -- taken after the answer came -- the size in bytes of every
      member output file DIR/*.out (the "marks"). A line a member wrote
      after a mark was written after the poll saw those commits; a line
      before it was written before the poll's mark was taken. With --every
      it polls every S seconds until F exists. A failed poll (broker down)
      is recorded as {"ok": false}.

Member output files DIR/*.out hold 'PARTITION OFFSET VALUE' lines
(stream-sub -g G -f '%p %o %v\\n'), one file per stream-sub run. A last
line without its newline (a member killed mid-write) is ignored.

What check_group() asserts, per partition (offsets of one topic):
  - every record delivered twice carries the same value both times, and
    the value the log stores when the log is known;
  - every acknowledged record was delivered, with its acknowledged value;
  - within one member's output the offsets of a partition go up by one,
    except where it starts over (a replay: allowed only after a
    disruption -- a broker restart or a killed member -- and at most two
    such runs per disruption), and each run is in order;
  - committed offsets never go backwards from one poll to the next;
  - a committed offset C seen at poll k covers only delivered records:
    every offset below C (from the previous poll's commit on) was written
    out by some member before poll k's mark, unless retention had deleted
    it (then it is counted as lost to retention);
  - no member writes an offset below a commit seen before its line was
    written (a consumer never goes back past the group's commit).
The check imports nothing but the standard library.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import time
from array import array

INF = 1 << 30


# ---- poll --------------------------------------------------------------------

def poll_once(group, members, out, topic=None, timeout_ms=5000):
    rec = {"t": time.time()}
    try:
        r = subprocess.run(["stream-topics", "group", group, "--json", "--timeout-ms",
                            str(timeout_ms)], capture_output=True, text=True,
                           timeout=timeout_ms / 1000.0 + 5)
        if r.returncode != 0:
            raise RuntimeError((r.stderr or r.stdout).strip()[:200])
        g = json.loads(r.stdout)
        rec["ok"] = True
        rec["generation"] = g.get("generation")
        rec["state"] = g.get("state")
        rec["members"] = len(g.get("members") or [])
        commits, start, end = {}, {}, {}
        for o in g.get("offsets") or []:
            if topic and o.get("topic") != topic:
                continue
            p = str(o["partition"])
            if o.get("offset") is None:
                continue  # assigned, nothing committed yet
            commits[p] = o["offset"]
            start[p] = o.get("log_start_offset")
            end[p] = o.get("log_end_offset")
        rec["commits"], rec["log_start"], rec["log_end"] = commits, start, end
        rec["lag"] = g.get("total_lag")
    except Exception as e:  # noqa: BLE001 - a poll while the broker is down
        rec["ok"] = False
        rec["error"] = str(e)[:200]
    # The marks come after the answer: see the module doc.
    marks = {}
    for f in glob.glob(os.path.join(members, "*.out")):
        try:
            marks[os.path.basename(f)] = os.path.getsize(f)
        except OSError:
            pass
    rec["marks"] = marks
    with open(out, "a") as f:
        f.write(json.dumps(rec, sort_keys=True) + "\n")
    return rec


def cmd_poll(a):
    while True:
        rec = poll_once(a.group, a.members, a.out, a.topic)
        if not a.every:
            return 0 if rec["ok"] else 1
        end = time.time() + a.every
        while time.time() < end:
            if a.stop_file and os.path.exists(a.stop_file):
                return 0
            time.sleep(0.05)


# ---- loading -----------------------------------------------------------------

class Part:
    """What the group delivered of one partition, indexed by offset."""

    def __init__(self):
        self.value = array("q")      # first delivered value; -1 none
        self.first_mark = array("i")  # first poll whose mark covers a delivery
        self.count = array("i")       # deliveries

    def grow(self, o):
        if o >= len(self.value):
            n = o + 1 - len(self.value) + 1024
            self.value.extend([-1] * n)
            self.first_mark.extend([INF] * n)
            self.count.extend([0] * n)


def load_polls(path):
    polls = []
    if path and os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    polls.append(json.loads(line))
    return polls


def member_files(d):
    return sorted(glob.glob(os.path.join(d, "*.out")))


# ---- the check -----------------------------------------------------------------

def check_group(members_dir, polls, acks, stored=None, disruptions=0, log_start=None,
                max_errors=20):
    """members_dir: the member outputs; polls: load_polls(); acks: iterable
    of (partition, offset, value) acknowledged; stored: optional
    {(p, o): value} of the log; disruptions: broker restarts plus killed
    members; log_start: {p: log start offset at the end} (retention).
    Returns (errors, stats)."""
    errors = []
    err = errors.append
    parts = {}
    stats = {"delivered": 0, "duplicates": 0, "replays": 0, "torn_lines": 0, "files": 0,
             "acked": 0, "undelivered": 0, "lost_to_retention": 0}
    # marks per file: list of (poll index, bytes) in poll order
    marks = {}
    for k, pl in enumerate(polls):
        for name, size in (pl.get("marks") or {}).items():
            marks.setdefault(name, []).append((k, size))
    commits_at = []  # per poll: {p: C} (None when the poll failed)
    for pl in polls:
        commits_at.append({int(p): c for p, c in pl["commits"].items() if c is not None}
                          if pl.get("ok") else None)

    def mark_before(name, pos):
        """Latest poll whose mark for this file is <= pos (the line was
        written after it), or -1."""
        best = -1
        for k, size in marks.get(name, ()):
            if size <= pos:
                best = k
            else:
                break
        # A file first seen after poll k was created after it: all its lines
        # are after every poll before its first mark.
        ms = marks.get(name)
        first = ms[0][0] if ms else len(polls)
        return max(best, first - 1)

    # Commits seen so far before each poll (cumulative max), for the
    # "never below a seen commit" rule.
    seen_commit = []
    cur = {}
    for c in commits_at:
        if c:
            for p, o in c.items():
                cur[p] = max(cur.get(p, -1), o)
        seen_commit.append(dict(cur))

    runs_overlapping = {}  # p -> runs starting at an offset delivered elsewhere (counted later)
    run_starts = {}        # p -> list of start offsets of runs
    for path in member_files(members_dir):
        name = os.path.basename(path)
        stats["files"] += 1
        ms = marks.get(name, [])
        mi = 0  # index into ms of the first mark > line end
        last = {}
        with open(path, "rb") as f:
            data = f.read()
        pos = 0
        n = len(data)
        while pos < n:
            nl = data.find(b"\n", pos)
            if nl < 0:
                stats["torn_lines"] += 1
                break
            line = data[pos:nl]
            end = nl + 1
            fields = line.split()
            if len(fields) != 3:
                err("%s: malformed line at byte %d: %r" % (name, pos, line[:80]))
                pos = end
                continue
            p, o, v = int(fields[0]), int(fields[1]), int(fields[2])
            while mi < len(ms) and ms[mi][1] < end:
                mi += 1
            delivered_by = ms[mi][0] if mi < len(ms) else INF
            P = parts.get(p)
            if P is None:
                P = parts[p] = Part()
            P.grow(o)
            stats["delivered"] += 1
            if P.count[o]:
                stats["duplicates"] += 1
                if P.value[o] != v:
                    err("partition %d offset %d delivered as %d and as %d" % (p, o, P.value[o], v))
            else:
                P.value[o] = v
                if stored is not None:
                    sv = stored.get((p, o))
                    if sv != v:
                        err("partition %d offset %d delivered as %d but the log holds %s"
                            % (p, o, v, sv))
            P.count[o] += 1
            if delivered_by < P.first_mark[o]:
                P.first_mark[o] = delivered_by
            prev = last.get(p)
            if prev is None or o != prev + 1:
                # A run starts: a new owner, or a replay. Its start must not
                # be below a commit seen before the line was written.
                if prev is not None and o <= prev:
                    stats["replays"] += 1
                run_starts.setdefault(p, []).append(o)
                k = mark_before(name, pos)
                if k >= 0:
                    c = seen_commit[k].get(p)
                    if c is not None and o < c:
                        err("%s: partition %d starts again at offset %d below the commit %d "
                            "seen at poll %d (byte %d)" % (name, p, o, c, k, pos))
            last[p] = o
            pos = end

    # Runs that start inside what was delivered more than once: replays of
    # an owner that had not committed. Only disruptions cause them.
    for p, starts in run_starts.items():
        P = parts[p]
        n = sum(1 for o in starts if P.count[o] > 1)
        runs_overlapping[p] = n
        if n > 2 * disruptions:
            err("partition %d: %d runs of records delivered twice, but only %d disruptions"
                % (p, n, disruptions))
    if disruptions == 0 and stats["duplicates"]:
        err("%d records delivered twice without any disruption" % stats["duplicates"])

    # Committed offsets: never backwards, and only over delivered records.
    prev = {}
    for k, c in enumerate(commits_at):
        if c is None:
            continue
        starts = {int(p): s for p, s in (polls[k].get("log_start") or {}).items() if s is not None}
        for p, off in sorted(c.items()):
            before = prev.get(p)
            if before is not None and off < before:
                err("partition %d: committed offset went back from %d to %d at poll %d"
                    % (p, before, off, k))
                continue
            lo = before if before is not None else 0
            P = parts.get(p)
            for o in range(lo, off):
                fm = P.first_mark[o] if P is not None and o < len(P.value) else INF
                if fm <= k:
                    continue
                if P is not None and o < len(P.value) and P.count[o]:
                    err("partition %d: offset %d committed at poll %d but written out only "
                        "after it" % (p, o, k))
                elif o < starts.get(p, 0):
                    stats["lost_to_retention"] += 1
                else:
                    err("partition %d: offset %d committed at poll %d but never delivered"
                        % (p, o, k))
                if len(errors) > max_errors * 5:
                    break
            prev[p] = off

    # Every acknowledged record delivered, with its value.
    ls = log_start or {}
    for p, o, v in acks:
        stats["acked"] += 1
        P = parts.get(p)
        got = P.value[o] if P is not None and o < len(P.value) and P.count[o] else None
        if got == v:
            continue
        if got is None:
            stats["undelivered"] += 1
            why = (" (retention deleted it before the group read it: log start %d)" % ls[p]
                   if o < ls.get(p, 0) else "")
            if len(errors) < max_errors * 5:
                err("acknowledged record %d (partition %d offset %d) never delivered%s"
                    % (v, p, o, why))
        else:
            err("acknowledged record %d (partition %d offset %d) delivered as %d" % (v, p, o, got))

    stats["partitions"] = len(parts)
    stats["replay_runs"] = sum(runs_overlapping.values())
    c = [x for x in commits_at if x is not None]
    stats["polls"] = len(c)
    stats["final_commits"] = c[-1] if c else {}
    return errors, stats, parts


def acks_from_logs(paths):
    """(partition, offset, value) of every stream-pub --ack-log line; the
    value of record R of a log named '<anything>.<BASE>' is BASE+R."""
    for path in paths:
        base = int(path.rsplit(".", 1)[1])
        with open(path) as f:
            for line in f:
                fields = line.split()
                if len(fields) == 3:
                    yield int(fields[1]), int(fields[2]), base + int(fields[0])


def cmd_check(a):
    polls = load_polls(a.polls)
    errors, stats, _ = check_group(a.members, polls, acks_from_logs(a.acklogs),
                                   disruptions=a.disruptions)
    print("group: %(delivered)d delivered in %(partitions)d partitions, %(acked)d acknowledged, "
          "%(duplicates)d duplicates, %(replay_runs)d replay runs, %(polls)d polls" % stats
          + ", %d violations" % len(errors))
    for e in errors[:20]:
        print("  " + e)
    return 1 if errors or not stats["acked"] else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("poll")
    p.add_argument("--group", required=True)
    p.add_argument("--members", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--topic")
    p.add_argument("--every", type=float)
    p.add_argument("--stop-file")
    c = sub.add_parser("check")
    c.add_argument("--members", required=True)
    c.add_argument("--polls", required=True)
    c.add_argument("--disruptions", type=int, default=0)
    c.add_argument("acklogs", nargs="*")
    a = ap.parse_args()
    return {"poll": cmd_poll, "check": cmd_check}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
