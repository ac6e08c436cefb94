#!/usr/bin/python3
# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""make bench-report: cef-report over 10M impression lines and 1M goal lines.

Generates (once; kept in DIR, regenerated when this script changes) the logs
of 8 edges, each an impression log in the cef_impressions format and a goal
log in the cef_goals format (docs/observability.md, docs/report.md), 2 of
the 8 of each gzip'd:

  * 1M visitors (random base64url ids, as the module makes them);
  * 3 experiments: hero-q4 (10% holdout + arms a/b, 45/45), side (a 10%
    holdout alone: control/treatment) and foot (an A/B test a/b 50/50,
    no holdout); 5% of the impressions come from an older rule set, which
    cef-report must keep apart;
  * every impression line carries the record's other members (`in`,
    `state`, a slot without an experiment) as the module writes them;
  * 1M goal records: purchase (with a value) and signup, after the
    visitor's exposure or (some) before it.

Then runs `/usr/bin/time -v build/cef-report --json FILES...` and prints
the wall time, the CPU time, the peak RSS and the throughput.  Targets
(issue 18): <= 60 s and <= 2 GB on this 2-core machine.  Asserts nothing.
"""

import base64
import gzip
import hashlib
import multiprocessing
import os
import pathlib
import random
import re
import subprocess
import sys
import time
import zlib

REPO = pathlib.Path(__file__).resolve().parents[2]
CEF_REPORT = REPO / "build" / "cef-report"

DATA = 1                        # the generator's version
IMPRESSIONS = 10_000_000
GOALS = 1_000_000
VISITORS = 1_000_000
EDGES = 8
GZIPPED = 2                     # the last 2 edges' files are .gz
T0 = 1795449600                 # 2026-11-24 00:00 UTC
SPAN = 14 * 86400

RULES = hashlib.sha256(b"bench rules v2").hexdigest()
RULES_OLD = hashlib.sha256(b"bench rules v1").hexdigest()


def visitor_id(i):
    return base64.urlsafe_b64encode(
        hashlib.md5(b"v%d" % i).digest()).rstrip(b"=").decode()


def bucket(salt, vid):
    return zlib.crc32(("%s\0%s" % (salt, vid)).encode()) % 10000


# per experiment and arm, the slot's JSON with %d for the bucket
def slot_json(slot, exp, split, arm, offer, would):
    parts = ['"offer":%s' % ('"%s"' % offer if offer else "null"),
             '"rule":"r-%s"' % slot, '"plugin":"experiment"',
             '"variant":"%s"' % arm, '"bucket":%d']
    if would:
        parts += ['"would":"%s"' % would, '"would_rule":"r-%s"' % slot]
    parts += ['"experiment":"%s"' % exp, '"salt":"%s"' % exp,
              '"split":{%s}' % ",".join('"%s":%d' % kv for kv in split)]
    return '"%s":{%s}' % (slot, ",".join(parts))


EXPERIMENTS = [
    # slot, experiment, split, offers per arm
    ("hero", "hero-q4", [("control", 1000), ("a", 4500), ("b", 4500)],
     {"a": "spring-hero", "b": "alt-hero"}),
    ("side", "side", [("control", 1000), ("treatment", 9000)],
     {"treatment": "side-hello"}),
    ("foot", "foot", [("a", 5000), ("b", 5000)],
     {"a": "foot-a", "b": "foot-b"}),
]


def arm_of(split, b):
    acc = 0
    for name, bp in split:
        acc += bp
        if b < acc:
            return name
    return split[-1][0]


# (experiment, bucket) -> the slot's JSON, made once per bucket
SLOTS = {}
for _slot, _exp, _split, _offers in EXPERIMENTS:
    for _b in range(10000):
        _arm = arm_of(_split, _b)
        if _arm == "control" and _exp != "foot":
            _s = slot_json(_slot, _exp, _split, _arm, None, "%s-default" % _slot)
        else:
            _s = slot_json(_slot, _exp, _split, _arm, _offers[_arm], None)
        SLOTS[_exp, _b] = (_s % _b).replace('"', '\\"')

TAIL = (',"banner":{"offer":null,"rule":null,"plugin":"priority",'
        '"variant":"-"}}}').replace('"', '\\"')
HEAD = ('{"v":1,"t":%d,"tz":3600,"rules":"%s","snapshot":"snap-7",'
        '"seq":%d,"key_type":"visitor","profile":null,"visitor":"%s",'
        '"ph":null,"in":{"request.arg.utm_campaign":%s,'
        '"visitor.new":%s,"time.hour":%d},"state":{},"slots":{'
        ).replace('"', '\\"')


def impression_line(t, vid, rules, rnd, buckets):
    slots = ",".join(SLOTS[exp, b] for exp, b in buckets)
    head = HEAD % (t, rules, rnd.randrange(1000), vid,
                   '\\"q4-mail\\"' if rnd.random() < 0.2 else "null",
                   "true" if rnd.random() < 0.3 else "false",
                   (t // 3600) % 24)
    return ('{"time":"2026-11-24T10:00:00+01:00","request_id":"%032x",'
            '"status":200,"uri":"/p/%d","decision":"%s%s%s"}\n'
            % (rnd.getrandbits(128), rnd.randrange(5000), head, slots, TAIL))


def goal_line(t, vid, goal, value, rnd):
    rec = ('{"v":1,"t":%d,"goal":"%s","value":%s,"rules":"%s",'
           '"key_type":"visitor","profile":null,"visitor":"%s",'
           '"arms":{"hero-q4":{"salt":"hero-q4","arm":"a"}}}'
           % (t, goal, value, RULES, vid))
    return ('{"time":"2026-11-24T10:00:00+01:00","request_id":"%032x",'
            '"status":200,"goal":"%s"}\n'
            % (rnd.getrandbits(128), rec.replace('"', '\\"')))


def write_edge(args):
    directory, edge = args
    rnd = random.Random(edge)
    ids = [visitor_id(i) for i in range(VISITORS)]
    buckets = [tuple((exp, bucket(exp, vid)) for _, exp, _, _ in EXPERIMENTS)
               for vid in ids]
    gz = edge >= EDGES - GZIPPED
    opener = (lambda p: gzip.open(p, "wt", compresslevel=1)) if gz \
        else (lambda p: open(p, "w"))
    suffix = ".log.gz" if gz else ".log"

    n = IMPRESSIONS // EDGES
    with opener(directory / ("edge%d-impressions%s" % (edge, suffix))) as f:
        buf = []
        for k in range(n):
            t = T0 + SPAN * k // n
            i = rnd.randrange(VISITORS)
            rules = RULES_OLD if rnd.random() < 0.05 else RULES
            buf.append(impression_line(t, ids[i], rules, rnd, buckets[i]))
            if len(buf) == 10000:
                f.write("".join(buf))
                buf = []
        f.write("".join(buf))

    n = GOALS // EDGES
    with opener(directory / ("edge%d-goals%s" % (edge, suffix))) as f:
        for k in range(n):
            t = T0 + SPAN * k // n + 3600
            vid = ids[rnd.randrange(VISITORS)]
            if rnd.random() < 0.7:
                f.write(goal_line(t, vid, "purchase",
                                  "%.2f" % rnd.uniform(5, 200), rnd))
            else:
                f.write(goal_line(t, vid, "signup", "null", rnd))
    return edge


def generate(directory):
    stamp = directory / "stamp"
    # what the data depends on: change DATA when the generator changes
    me = repr((DATA, IMPRESSIONS, GOALS, VISITORS, EDGES, GZIPPED))
    if stamp.exists() and stamp.read_text() == me:
        return
    directory.mkdir(parents=True, exist_ok=True)
    for p in directory.glob("edge*"):
        p.unlink()
    t = time.time()
    print("bench-report: generating %d impression and %d goal lines "
          "in %s ..." % (IMPRESSIONS, GOALS, directory), flush=True)
    with multiprocessing.Pool(2) as pool:
        for edge in pool.imap_unordered(
                write_edge, [(directory, e) for e in range(EDGES)]):
            pass
    stamp.write_text(me)
    print("bench-report: generated in %.0f s" % (time.time() - t))


def main():
    directory = pathlib.Path(sys.argv[1] if len(sys.argv) > 1
                             else REPO / "build" / "bench" / "report")
    generate(directory)
    files = sorted(str(p) for p in directory.glob("edge*"))
    size = sum(os.path.getsize(p) for p in files)
    out = directory / "report.jsonl"

    cmd = ["/usr/bin/time", "-v", str(CEF_REPORT), "--json"] + files
    load = os.getloadavg()[0]
    with open(out, "w") as f:
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.PIPE, text=True)
    load = max(load, os.getloadavg()[0])
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        sys.exit("bench-report: cef-report exited %d" % r.returncode)

    def field(name):
        m = re.search(r"^\s*%s: (.*)$" % re.escape(name), r.stderr, re.M)
        return m.group(1) if m else "?"

    wall = field("Elapsed (wall clock) time (h:mm:ss or m:ss)")
    parts = [float(x) for x in wall.split(":")]
    seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    rss_kb = int(field("Maximum resident set size (kbytes)"))
    user = float(field("User time (seconds)"))
    system = float(field("System time (seconds)"))
    cpu = user + system
    lines = IMPRESSIONS + GOALS
    print("bench-report: %d impression + %d goal lines, %d files (%d .gz), "
          "%.2f GB on disk" % (IMPRESSIONS, GOALS, len(files), 2 * GZIPPED,
                               size / 1e9))
    print("bench-report: wall %.1f s (target <= 60), CPU %.1f s (user "
          "%.1f, system %.1f), peak RSS %.0f MB (target <= 2048), "
          "%.0f lines/s" % (seconds, cpu, user, system, rss_kb / 1024,
                            lines / seconds))
    print("bench-report: %.2f us of CPU per line; load average %.1f on "
          "%d cores during the run (other work on the machine lengthens "
          "the wall time, not the CPU time)"
          % (cpu / lines * 1e6, load, os.cpu_count()))
    print("bench-report: %d tests written to %s"
          % (sum(1 for _ in open(out)), out))


if __name__ == "__main__":
    main()
