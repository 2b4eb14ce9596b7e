#!/usr/bin/env python3
"""soakcheck.py - the verdict on a tests/soak/soak.sh run, and its summary.

  soakcheck.py --dir DIR [--minutes N] [--seed S] [--allow-error REGEX]...

DIR is the soak's directory: acks/ack.BASE (stream-pub --ack-log, record R
of it has the value BASE+R), members/*.out (what each group member wrote,
'PARTITION OFFSET VALUE'), members/exits, pub/exits, polls (groupcheck.py
poll), events, broker.log and final-describe.json (the topic at the end).

Violations (exit 1, the first few printed):
  - everything groupcheck.check_group checks: every acknowledged record
    delivered to the group with its value, per-member order with replays
    only after disruptions (broker restarts, killed members), committed
    offsets never backwards and never past an undelivered record;
  - a value stored at two offsets (the idempotent producer stored a batch
    twice), or a producer run's values out of order within a partition;
  - the final committed offsets are not the log's ends (the group did not
    read everything);
  - retention deleted nothing (no log start offset advanced);
  - ERROR lines in the broker log (other than --allow-error ones), a
    sanitizer report in any program's output, a broker that did not exit 0
    on SIGTERM, a restart after kill -9 that did not recover, a member that
    did not exit 0 on SIGTERM or exited by itself with an error.
"""
import argparse
import datetime
import glob
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli", "faults"))
import groupcheck  # noqa: E402

SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:")
# One line a start: "opened T topics, P partitions: clean shutdown, no
# recovery scan" or "...: C clean, R recovered (...)".
RECOVERED = re.compile(r"opened \d+ topics, \d+ partitions: (?:clean shutdown|\d+ clean, (\d+) recovered)")
RETENTION = re.compile(r"(\S+)-(\d+): retention deleted (\d+) segments; log start offset (\d+)")
GENERATION = re.compile(r"group (\S+): generation (\d+), (\d+) members \(([^)]*)\)")


def log_time(line):
    """Epoch seconds of a broker log line ('2026-11-24T10:00:00.123Z ...')."""
    try:
        t = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
        return t.replace(tzinfo=datetime.timezone.utc).timestamp()
    except (ValueError, IndexError):
        return 0.0


def read_lines(path):
    try:
        with open(path, errors="replace") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--minutes", default="?")
    ap.add_argument("--seed", default="?")
    ap.add_argument("--group", default="soakers")
    ap.add_argument("--allow-error", action="append", default=[],
                    help="a regex: broker ERROR lines matching it are expected")
    a = ap.parse_args()
    d = a.dir
    errors = []
    err = errors.append

    # ---- events: what the soak did
    events = [ln.split() for ln in read_lines(os.path.join(d, "events"))]
    count = {}
    for e in events:
        if len(e) >= 2:
            count[e[1]] = count.get(e[1], 0) + 1
    # Restarts: the final SIGTERM is a stop, not a restart.
    kills, terms = count.get("broker-kill", 0), count.get("broker-term", 0) - 1
    for e in events:
        if len(e) >= 4 and e[1] == "broker-exit" and e[2] == "term" and e[3] != "0":
            err("the broker exited with status %s on SIGTERM (at %s)" % (e[3], e[0]))
    member_kills = count.get("member-kill", 0)
    # Every restart can replay what was not committed; so can a killed
    # member's successor. A clean leave commits first, but a broker restart
    # in the middle of it may make it one too.
    disruptions = kills + terms + member_kills + count.get("member-term", 0)

    # ---- the group
    log_start, hw = {}, {}
    try:
        with open(os.path.join(d, "final-describe.json")) as f:
            desc = json.load(f)
        for p in desc["topics"][0]["partitions"]:
            log_start[p["partition"]] = p["log_start_offset"]
            hw[p["partition"]] = p["high_watermark"]
    except (OSError, ValueError, KeyError, IndexError) as e:
        err("no final description of the topic: %s" % e)
    polls = groupcheck.load_polls(os.path.join(d, "polls"))
    acklogs = sorted(glob.glob(os.path.join(d, "acks", "ack.*")))
    gerr, st, parts = groupcheck.check_group(os.path.join(d, "members"), polls,
                                             groupcheck.acks_from_logs(acklogs),
                                             disruptions=disruptions, log_start=log_start)
    errors += gerr

    # ---- the log, as the group read it: each value once, each producer
    # run's values in order within a partition.
    consumed = 0
    values = []
    for p, P in sorted(parts.items()):
        last_by_run = {}
        first = None
        for o in range(len(P.value)):
            if not P.count[o]:
                continue
            if first is None:
                first = o
            consumed += 1
            v = P.value[o]
            values.append(v)
            run = v // 10000000
            prev = last_by_run.get(run)
            if prev is not None and v <= prev:
                err("partition %d: value %d at offset %d after %d of the same producer run"
                    % (p, v, o, prev))
            last_by_run[run] = v
        if first and first > 0:
            # Offsets below the first delivered one were never read: only
            # retention may explain that, and it counts as lost.
            err("partition %d: the group never read offsets 0..%d (log start at the end %s)"
                % (p, first - 1, log_start.get(p)))
    values.sort()
    twice = sum(1 for x, y in zip(values, values[1:]) if x == y)
    if twice:
        err("%d values stored at two offsets (a batch stored twice)" % twice)
    final = st["final_commits"]
    for p, end in sorted(hw.items()):
        if final.get(p) != end:
            err("partition %d: final committed offset %s, but the log ends at %d"
                % (p, final.get(p), end))
    max_lag = 0
    for pl in polls:
        if pl.get("ok") and pl.get("lag") is not None:
            max_lag = max(max_lag, pl["lag"])

    # ---- the broker log
    blog = read_lines(os.path.join(d, "broker.log"))
    allow = [re.compile(x) for x in a.allow_error]
    recov_unclean = 0
    deleted = 0
    deleted_at = []
    gens = joins = leaves = warns = 0
    starts = []
    for ln in blog:
        if " ERROR " in ln and not any(r.search(ln) for r in allow):
            err("broker: " + ln)
        if " WARN " in ln:
            warns += 1
        if SANITIZER.search(ln):
            err("broker: " + ln)
        m = RECOVERED.search(ln)
        if m:
            starts.append(int(m.group(1) or 0))
        m = RETENTION.search(ln)
        if m:
            deleted += int(m.group(3))
            deleted_at.append((log_time(ln), int(m.group(3))))
        m = GENERATION.search(ln)
        if m and m.group(1) == a.group:
            gens += 1
        if ("group %s: member" % a.group) in ln:
            joins += " joined" in ln
            leaves += ln.rstrip().endswith(" left") or " removed: " in ln
    # The first start opened an empty directory (no such line); each later
    # one follows a stop: after kill -9 something is recovered, after
    # SIGTERM nothing needs to be.
    kinds = [e[1] for e in events if len(e) >= 2 and e[1] in ("broker-kill", "broker-term")]
    kinds = kinds[:-1]  # the last one stopped the broker for good
    if len(starts) != len(kinds):
        err("%d broker restarts but %d recovery lines in the log" % (len(kinds), len(starts)))
    for i, (how, nrec) in enumerate(zip(kinds, starts), 1):
        if how == "broker-kill":
            recov_unclean += nrec > 0
            if nrec == 0:
                err("restart %d, after kill -9, recovered no partition" % i)
        elif nrec:
            err("restart %d, after SIGTERM, recovered %d partitions (not a clean shutdown)"
                % (i, nrec))
    if deleted == 0 or not any(v > 0 for v in log_start.values()):
        err("retention deleted no segment (log start offsets %s)" % log_start)
    by_time = [float(e[0]) for e in events if len(e) >= 2 and e[1] == "retention-by-time"]
    if by_time and deleted_at and max(t for t, _ in deleted_at) < by_time[0]:
        err("no segment deleted after the topic went to retention.ms")
    # The log start offset only moves forward, restarts or not.
    prev_start = {}
    for k, pl in enumerate(polls):
        for p, v in (pl.get("log_start") or {}).items():
            if v is None:
                continue
            if v < prev_start.get(p, 0):
                err("partition %s: log start offset went back from %d to %d at poll %d"
                    % (p, prev_start[p], v, k))
            prev_start[p] = v

    # ---- the programs' own reports
    for path in sorted(glob.glob(os.path.join(d, "members", "*.err")) +
                       glob.glob(os.path.join(d, "pub", "*.err")) + [os.path.join(d, "poll.err")]):
        for ln in read_lines(path):
            if SANITIZER.search(ln):
                err("%s: %s" % (os.path.relpath(path, d), ln))
                break
    mexits = [ln.split() for ln in read_lines(os.path.join(d, "members", "exits"))]
    self_exits = 0
    for e in mexits:
        if len(e) != 3:
            continue
        name, how, rc = e
        if how == "term" and rc != "0":
            err("member %s exited with %s after SIGTERM (members/%s.err)" % (name, rc, name))
        if how == "self":
            self_exits += 1
            if rc != "0":
                err("member %s exited by itself with %s (members/%s.err)" % (name, rc, name))
    produced = 0
    gave_up = 0
    for path in glob.glob(os.path.join(d, "pub", "p*.err")):
        for ln in read_lines(path):
            m = re.search(r"(\d+) records published", ln)
            if m:
                produced += int(m.group(1))
            m = re.search(r"(\d+) of (\d+) records (failed|were not acknowledged)", ln)
            if m:
                produced += int(m.group(2))
                gave_up += 1
    pub_runs = len(read_lines(os.path.join(d, "pub", "exits")))

    # ---- summary
    lost = st["undelivered"] + st["lost_to_retention"]
    print("soak: %s min, seed %s, dir %s" % (a.minutes, a.seed, d))
    print("records: %d produced, %d acknowledged, %d consumed (%d deliveries, %d duplicates), "
          "%d lost" % (produced, st["acked"], consumed, st["delivered"], st["duplicates"], lost))
    print("producers: %d stream-pub runs, %d gave up on some records" % (pub_runs, gave_up))
    print("broker: %d restarts (%d SIGTERM, %d kill -9; %d recoveries after kill -9), "
          "%d WARN lines" % (kills + terms, terms, kills, recov_unclean, warns))
    print("group: %d members started, %d left by SIGTERM, %d killed, %d exited by themselves; "
          "broker saw %d joins, %d leaves, %d generations (rebalances); %d replay runs"
          % (count.get("member-start", 0), count.get("member-term", 0), member_kills, self_exits,
             joins, leaves, gens, st["replay_runs"]))
    print("commits: %d polls, max lag %d records, final %s"
          % (st["polls"], max_lag, " ".join("%d:%d" % kv for kv in sorted(final.items()))))
    after = sum(n for t, n in deleted_at if by_time and t >= by_time[0])
    print("retention: %d segments deleted (%d by retention.bytes, then %d by retention.ms), "
          "log start offsets %s"
          % (deleted, deleted - after, after,
             " ".join("%d:%d" % kv for kv in sorted(log_start.items()))))
    print("violations: %d" % len(errors))
    for e in errors[:25]:
        print("  " + e)
    if st["acked"] == 0 or consumed == 0:
        print("  nothing was acknowledged or consumed: the soak proved nothing")
        return 1
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
