# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""Impression and goal log lines as nginx writes them with the documented
formats (docs/observability.md `cef_impressions`, docs/goals.md
`cef_goals`), for the report tests that need many edge cases at once:
synthetic visitors in two rule-set versions of an experiment, a holdout,
an arm without visitors, one of weight 0, records naming an arm their
split has not, conversions before the first exposure, in its second and
long after it, goals with and without values (and values rejected as
null), bare records and records as object members (escape=none), a record
of an unknown version, and malformed lines.

    synthetic(seed) -> (impression lines, goal lines), lists of str
"""

import hashlib
import json
import random
import time

T0 = 1795392000                     # 2026-11-23 00:00 UTC
R1 = "af15f25d2ba3" + "1" * 52      # two versions of the rule set
R2 = "336d6acbeaae" + "2" * 52
WINDOW_EDGE = 3600                  # conversions exactly this long after


def visitor_id(rng):
    """22 base64url characters, as the module's visitor ids."""
    abc = ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
           "0123456789-_")
    return "".join(rng.choice(abc) for _ in range(22))


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(t))


def request_id(text):
    return hashlib.md5(text.encode()).hexdigest()


def impression_line(record, uri="/", bare=False, member=False):
    """The cef_impressions line of record; bare: the record alone (a
    format of only the variable, escape=none); member: the escape=none form
    of cef_impressions (the record an object member)."""
    rec = json.dumps(record, separators=(",", ":"))
    if bare:
        return rec
    if member:
        return json.dumps({"time": iso(record["t"]),
                           "request_id": request_id(rec), "status": 200,
                           "decision": record}, separators=(",", ":"))
    return json.dumps({"time": iso(record["t"]), "request_id": request_id(rec),
                       "status": 200, "uri": uri, "decision": rec},
                      separators=(",", ":"))


def goal_line(record, bare=False):
    rec = json.dumps(record, separators=(",", ":"))
    if bare:
        return rec
    return json.dumps({"time": iso(record["t"]), "request_id": request_id(rec),
                       "status": 200, "goal": rec}, separators=(",", ":"))


def pick(rng, split):
    r = rng.randrange(10000)
    for arm, bp in split.items():
        if r < bp:
            return arm
        r -= bp
    return list(split)[-1]


# experiment -> (rules, salt, slot, split, the arm's rate of conversion)
EXPERIMENTS = {
    ("hero-q4", R1): ("hero-q4", "hero",
                      {"control": 1000, "a": 4500, "b": 4500},
                      {"control": 0.30, "a": 0.35, "b": 0.50}),
    ("hero-q4", R2): ("hero-q4-v2", "hero",
                      {"control": 1000, "a": 4500, "b": 4500},
                      {"control": 0.30, "a": 0.30, "b": 0.30}),
    ("side", R1):    ("side", "side",
                      {"control": 2000, "treatment": 8000},
                      {"control": 0.20, "treatment": 0.26}),
    # an arm without traffic and an arm with weight 0
    ("tiny", R1):    ("tiny", "foot",
                      {"control": 5000, "b": 5000, "off": 0},
                      {"control": 0.5, "b": 0.5, "off": 0}),
    # records naming an arm its split does not have ("c"): weights unknown
    ("stray", R1):   ("stray", "strip",
                      {"a": 5000, "b": 5000}, {"a": 0.2, "b": 0.2}),
}


def slot_entry(rng, name, salt, split, arm):
    entry = {"plugin": "experiment", "variant": arm,
             "bucket": rng.randrange(10000), "experiment": name,
             "salt": salt, "split": split}
    if arm == "control":
        # a held-out visitor; now and then nothing would have been shown:
        # no exposure
        entry.update(offer=None, rule=None,
                     would=None if rng.random() < 0.05 else "winback",
                     would_rule="churn")
    else:
        # an arm's offer; now and then none matched: no exposure
        shown = rng.random() >= 0.05
        entry.update(offer=("%s-%s" % (name, arm)) if shown else None,
                     rule="r-" + arm if shown else None)
    return entry


def synthetic(seed=18, visitors=1500):
    rng = random.Random(seed)
    imps, goals = [], []
    tiny_left = 2

    for i in range(visitors):
        vid = visitor_id(rng)
        rules = R1 if i % 5 else R2
        start = T0 + rng.randrange(3 * 86400)
        arms = {}
        for (name, r), (salt, slot, split, _) in EXPERIMENTS.items():
            if r != rules:
                continue
            if name == "tiny":
                if tiny_left == 0:
                    continue
                tiny_left -= 1
                arms[name] = (salt, slot, split, "control")
                continue
            arm = pick(rng, split)
            if name == "stray" and rng.random() < 0.05:
                arm = "c"
            arms[name] = (salt, slot, split, arm)

        # one to three page views, a little apart
        t = start
        for _ in range(rng.randint(1, 3)):
            slots = {"other": {"offer": "plain", "rule": "everyone",
                               "plugin": "priority", "variant": "treatment"}}
            for name, (salt, slot, split, arm) in arms.items():
                slots[slot] = slot_entry(rng, name, salt, split, arm)
            record = {"v": 1, "t": t, "tz": 0, "rules": rules,
                      "snapshot": "snap-1", "seq": 0, "key_type": None,
                      "profile": None, "visitor": vid, "ph": None,
                      "in": {}, "state": {}, "slots": slots}
            form = rng.random()
            imps.append(impression_line(record, uri='/p?q="%d"' % i,
                                        bare=form < 0.1,
                                        member=0.1 <= form < 0.15))
            last_view = record
            t += rng.randrange(1, 1800)

        # goals: a purchase with the arm's rate (value, sometimes
        # rejected), signups at random, some before the first view, some
        # days later
        hero = arms.get("hero-q4") or arms.get("side")
        rate = EXPERIMENTS[("hero-q4" if "hero-q4" in arms else "side",
                            rules)][3][hero[3]]
        events = []
        if rng.random() < rate:
            events.append(("purchase", t + rng.randrange(0, 7200)))
            if rng.random() < 0.3:
                events.append(("purchase", t + rng.randrange(7200, 5 * 86400)))
        if rng.random() < 0.1:
            events.append(("purchase", start - rng.randrange(1, 3600)))
        if rng.random() < 0.2:
            events.append(("signup", start + rng.randrange(-600, 86400)))
        if rng.random() < 0.05:          # the second of the first exposure
            events.append(("signup", start))
        if rng.random() < 0.05:          # on the edge of a window of 1 h
            events.append(("purchase", start + WINDOW_EDGE))
        for goal, at in events:
            value = None
            if goal == "purchase":
                value = round(rng.uniform(5, 200), 2)
                if rng.random() < 0.05:
                    value = None        # out of the declared bounds
            record = {"v": 1, "t": at, "goal": goal, "value": value,
                      "rules": rules, "key_type": None, "profile": None,
                      "visitor": vid,
                      "arms": {n: {"salt": a[0], "arm": a[3]}
                               for n, a in arms.items()}}
            goals.append(goal_line(record, bare=rng.random() < 0.1))

    # goals of visitors never exposed
    for _ in range(50):
        goals.append(goal_line({"v": 1, "t": T0 + rng.randrange(86400),
                                "goal": "purchase", "value": 10.0,
                                "rules": R1, "key_type": None,
                                "profile": None, "visitor": visitor_id(rng),
                                "arms": {}}))
    # lines that are not records of ours: truncated, not JSON, a record
    # of an unknown version
    imps.insert(7, '{"time":"2026-11-23T00:00:00+00:00",'
                   '"decision":"{\\"v\\":1,')
    goals.insert(3, "not json at all")
    imps.insert(30, impression_line(dict(last_view, v=2,
                                         visitor="unknown-version-visitor")))

    rng.shuffle(goals)               # goal logs from many edges, interleaved
    return imps, goals
