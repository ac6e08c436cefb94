# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""A bandit in the report (issue 19 items 2 and 4): the log reader's
periods (a visitor belongs to the weights version of their first
exposure), the period-weighted results that keep a bandit's own traffic
shifts out of its lift, the SRM check per weights version, and
`cef-report bandit LOG...` (docs/report.md "Bandits in the report").

The logs are crafted with known counts per version, so every expected
number below is computed by hand (or in Python from GrowthBook's formulas,
written out here) and not by the code under test."""

import json
import math
import os
import pathlib
import subprocess

from report_logs import goal_line, impression_line

REPO = pathlib.Path(__file__).resolve().parents[2]
# CEF_REPORT=build/asan/cef-report runs the same tests under ASan+UBSan
# (make check-report-asan)
TOOL = os.environ.get("CEF_REPORT", str(REPO / "build" / "cef-report"))

T0 = 1795392000
RULES = "b4nd17" + "0" * 58


def bandit_slot(arm, version, split, sticky=False, experiment="hero",
                salt="hero"):
    s = {"plugin": "bandit", "offer": "hero-" + arm, "rule": "r",
         "variant": arm, "experiment": experiment, "salt": salt,
         "split": split, "sticky": sticky}
    if version is not None:
        s["weights_version"] = version
    return s


def impression(t, vid, slots, rules=RULES):
    return impression_line({"v": 1, "t": t, "tz": 0, "rules": rules,
                            "key_type": None, "profile": None, "visitor": vid,
                            "in": {}, "state": {}, "slots": slots})


def conversion(t, vid, goal="purchase", value=None, rules=RULES):
    return goal_line({"v": 1, "t": t, "goal": goal, "value": value,
                      "rules": rules, "key_type": None, "profile": None,
                      "visitor": vid, "arms": {}})


class Logs:
    """Visitors written period by period: (version, split, {arm: (n,
    converters)}), each period an hour after the one before."""

    def __init__(self):
        self.imps, self.goals = [], []
        self.k = 0

    def period(self, version, split, counts, start, rules=RULES,
               salt="hero", goal="purchase", value=None):
        for arm, (n, conv) in counts.items():
            for i in range(n):
                self.k += 1
                vid = "v%07d" % self.k
                t = start + i % 3000
                self.imps.append(impression(
                    t, vid, {"hero": bandit_slot(arm, version, split,
                                                 salt=salt)}, rules))
                if i < conv:
                    self.goals.append(conversion(t + 60, vid, goal, value,
                                                 rules))
        return self

    def write(self, tmp_path, name="edge"):
        a = tmp_path / (name + "-impressions.log")
        b = tmp_path / (name + "-goals.log")
        a.write_text("\n".join(self.imps) + "\n")
        b.write_text("\n".join(self.goals) + "\n" if self.goals else "")
        return [a, b]


def report(*args):
    p = subprocess.run([str(TOOL), *map(str, args)], capture_output=True,
                       text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def report_json(*args):
    rc, out, err = report("--json", *args)
    assert rc == 0, err
    return [json.loads(line) for line in out.splitlines()]


def all_tests(doc):
    return doc


def the_test(doc, experiment="hero", metric="binomial"):
    found = [t for t in all_tests(doc)
             if t["experiment"] == experiment and t["metric"] == metric]
    assert len(found) == 1, found
    return found[0]


def arm(test, name):
    return next(a for a in test["arms"] if a["name"] == name)


# version 0 (uniform) then version 7 (20/80): the rate falls from 20 % to
# 10 % in both arms alike -- the arms are equal in every period
EVEN = {"a": 5000, "b": 5000}
SHIFT = {"a": 2000, "b": 8000}


def drifting(tmp_path, skew=None):
    logs = Logs()
    logs.period(0, EVEN, {"a": (1000, 200), "b": (1000, 200)}, T0)
    logs.period(7, SHIFT, skew or {"a": (400, 40), "b": (1600, 160)},
                T0 + 3600 * 2)
    return logs.write(tmp_path)


def test_periods_counted_by_the_version_of_the_first_exposure(tmp_path):
    logs = Logs().period(0, EVEN, {"a": (3, 1), "b": (2, 2)}, T0)
    logs.period(7, SHIFT, {"a": (1, 0), "b": (4, 1)}, T0 + 7200)
    # returning visitors: v0000001 (a, version 0) and v0000004 (b, version
    # 0) come back under version 7 with their sticky arm; they stay in
    # version 0's period, and count once
    for vid, a in (("v0000001", "a"), ("v0000004", "b")):
        logs.imps.append(impression(T0 + 9000, vid, {"hero": bandit_slot(
            a, 7, SHIFT, sticky=True)}))
    # a visitor first seen under version 7, then (an older edge's line)
    # stamped earlier under version 0: the earliest exposure decides
    logs.imps.append(impression(T0 + 8000, "late", {"hero": bandit_slot(
        "b", 7, SHIFT)}))
    logs.imps.append(impression(T0 + 100, "late", {"hero": bandit_slot(
        "b", 0, EVEN)}))
    t = the_test(report_json(*logs.write(tmp_path)))
    assert t["weighting"] == "periods"
    assert [p["version"] for p in t["periods"]] == [0, 7]
    assert [a["name"] for a in t["arms"]] == ["a", "b"]
    p0, p7 = t["periods"]
    assert p0["weights"] == [0.5, 0.5] and p7["weights"] == [0.2, 0.8]
    assert p0["n"] == [3, 3] and p0["sum"] == [1, 2]      # 'late' is in v0
    assert p7["n"] == [1, 4] and p7["sum"] == [0, 1]
    assert (arm(t, "a")["n"], arm(t, "b")["n"]) == (4, 7)


def test_counts_show_the_periods_too(tmp_path):
    rc, out, err = report("--counts", *drifting(tmp_path))
    assert rc == 0, err
    lines = [json.loads(x) for x in out.splitlines()]
    hero = [x for x in lines if x.get("experiment") == "hero"]
    assert hero
    for x in hero:
        assert [p["version"] for p in x["periods"]] == [0, 7]
        assert [(a["name"], a["weight"], a["n"], a["sum"])
                for a in x["periods"][1]["arms"]] == [
                    ("a", 0.2, 400, 40), ("b", 0.8, 1600, 160)]


def test_period_weighting_removes_the_bias_pooling_shows(tmp_path):
    files = drifting(tmp_path)
    t = the_test(report_json(*files))
    a, b = arm(t, "a"), arm(t, "b")
    # weighted: each version weighs its share of all visitors (2000/4000
    # each), the same for both arms: 0.5 * 0.2 + 0.5 * 0.1 = 0.15 for both
    assert math.isclose(a["mean"], 0.15) and math.isclose(b["mean"], 0.15)
    assert abs(b["absolute"]["lift"]) < 1e-12
    assert b["absolute"]["p"] > 0.99
    # the variance of a weighted mean, GrowthBook's bandit SQL:
    # sum_p w_p^2 s_p^2 / n_p with the sample variance s_p^2
    def var(periods):
        return sum(w * w * (c - c * c / n) / (n - 1) / n
                   for w, n, c in periods)
    va = var([(0.5, 1000, 200), (0.5, 400, 40)])
    vb = var([(0.5, 1000, 200), (0.5, 1600, 160)])
    assert math.isclose(b["absolute"]["se"], math.sqrt(va + vb),
                        rel_tol=1e-9)
    # the raw counts stay what they are
    assert (a["n"], a["sum"], b["n"], b["sum"]) == (1400, 240, 2600, 360)

    # the same visitors without weights_version (no bandit): pooled, b
    # looks worse than a: 360/2600 = 13.8 % vs 240/1400 = 17.1 %, p < 0.01
    # -- a lift that the traffic shift alone made
    logs = Logs()
    logs.period(None, EVEN, {"a": (1000, 200), "b": (1000, 200)}, T0)
    logs.period(None, SHIFT, {"a": (400, 40), "b": (1600, 160)}, T0 + 7200)
    pooled = the_test(report_json(*logs.write(tmp_path, "pooled")))
    assert "periods" not in pooled and "weighting" not in pooled
    pb = arm(pooled, "b")
    assert math.isclose(pb["mean"], 360 / 2600)
    assert pb["absolute"]["lift"] < -0.03 and pb["absolute"]["p"] < 0.01


def test_srm_per_version_flags_a_skewed_period(tmp_path):
    # version 0 gets 1100/900 for 50/50 and version 7 300/1700 for 20/80:
    # over both the arms got exactly what the weights gave them (1400 and
    # 2600), so the SRM over the versions passes -- each version alone
    # does not (chi-squared 20 and 31.25, 1 degree of freedom)
    logs = Logs()
    logs.period(0, EVEN, {"a": (1100, 220), "b": (900, 180)}, T0)
    logs.period(7, SHIFT, {"a": (300, 30), "b": (1700, 170)}, T0 + 7200)
    files = logs.write(tmp_path)
    t = the_test(report_json(*files))
    assert math.isclose(t["srm_p"], 1.0)
    p0, p7 = t["periods"]
    assert math.isclose(p0["srm_p"], math.erfc(math.sqrt(20 / 2)),
                        rel_tol=1e-6)
    assert math.isclose(p7["srm_p"], math.erfc(math.sqrt(31.25 / 2)),
                        rel_tol=1e-6)
    assert p0["srm_alarm"] and p7["srm_alarm"]

    rc, out, err = report(*files)
    assert rc == 0, err
    assert out.count("SAMPLE RATIO MISMATCH in this version") == 2
    assert "!! version 7: 2000 visitors, split 300/1700 for weights " \
        "20%/80%" in out

    # the drifting logs: every version as its weights say
    t = the_test(report_json(*drifting(tmp_path)))
    assert t["srm_p"] > 0.5
    assert not any(p["srm_alarm"] for p in t["periods"])


def test_srm_over_versions_is_gbstats_bandit_srm(tmp_path):
    # version 7 loses a quarter of b's visitors: expected over both
    # versions a = 1000 + 0.2 * 1600 = 1320, b = 1000 + 0.8 * 1600 = 2280
    t = the_test(report_json(*drifting(
        tmp_path, skew={"a": (400, 40), "b": (1200, 120)})))
    x2 = (1400 - 1320) ** 2 / 1320 + (2200 - 2280) ** 2 / 2280
    assert math.isclose(t["srm_p"], math.erfc(math.sqrt(x2 / 2)),
                        rel_tol=1e-6)


def test_bandit_from_logs_equals_bandit_from_stats(tmp_path):
    files = drifting(tmp_path)
    # the logs' newest version is 7; --now 5 -> version max(7 + 1, 5) = 8
    args = ("--experiment", "hero", "--seed", 11, "--now", 5)
    rc, out, err = report("bandit", *args, *files)
    assert rc == 0, err
    rec = json.loads(out)
    assert rec["version"] == 8 and rec["goal"] == "purchase"
    assert rec["exposures"] == {"a": 1400, "b": 2600}
    assert rec["salt"] == "hero" and rec["updated"] is True

    stats = {"experiment": "hero", "salt": "hero", "goal": "purchase",
             "metric": "binomial", "periods": [
                 {"version": 0, "arms": [
                     {"name": "a", "weight": 0.5, "n": 1000, "sum": 200},
                     {"name": "b", "weight": 0.5, "n": 1000, "sum": 200}]},
                 {"version": 7, "arms": [
                     {"name": "a", "weight": 0.2, "n": 400, "sum": 40},
                     {"name": "b", "weight": 0.8, "n": 1600, "sum": 160}]}]}
    path = tmp_path / "stats.json"
    path.write_text(json.dumps(stats))
    rc, out2, err2 = report("bandit", *args, "--stats", path)
    assert rc == 0, err2
    assert out2 == out

    # --verbose: the period-weighted means, 0.15 for both arms
    rc, _, err = report("bandit", *args, "--verbose", *files)
    assert rc == 0 and "2 periods" in err
    assert err.count(" 0.15 ") == 2


def test_bandit_version_follows_the_clock_and_the_logs(tmp_path):
    files = drifting(tmp_path)
    rc, out, _ = report("bandit", "--experiment", "hero", "--seed", 1,
                        "--now", 1800000000, *files)
    assert rc == 0 and json.loads(out)["version"] == 1800000000


def test_bandit_below_the_minimum_keeps_the_live_weights(tmp_path):
    logs = Logs().period(0, EVEN, {"a": (50, 5), "b": (50, 5)}, T0)
    logs.period(3, SHIFT, {"a": (20, 2), "b": (80, 8)}, T0 + 7200)
    rc, out, err = report("bandit", "--experiment", "hero", "--seed", 1,
                          *logs.write(tmp_path))
    assert rc == 0
    rec = json.loads(out)
    assert rec["updated"] is False
    assert rec["weights"] == {"a": 2000, "b": 8000}     # version 3's
    assert "arm \"a\" has 70 exposures, fewer than 100" in err


def test_bandit_adds_up_rule_sets_of_one_salt(tmp_path):
    logs = Logs()
    logs.period(0, EVEN, {"a": (1000, 200), "b": (1000, 200)}, T0)
    logs.period(7, SHIFT, {"a": (400, 40), "b": (1600, 160)}, T0 + 7200,
                rules="e417ed" + "1" * 58)
    files = logs.write(tmp_path)
    rc, out, err = report("bandit", "--experiment", "hero", "--seed", 2,
                          "--now", 1, *files)
    assert rc == 0, err
    assert "the logs of 2 rule sets (salt \"hero\") counted together" in err
    rec = json.loads(out)
    assert rec["exposures"] == {"a": 1400, "b": 2600} and rec["version"] == 8
    # the report keeps the rule sets apart, each with its own version
    doc = report_json(*files)
    hero = [t for t in all_tests(doc) if t["experiment"] == "hero"]
    assert sorted(t["periods"][0]["version"] for t in hero) == [0, 7]


def test_bandit_asks_which_salt_and_goal(tmp_path):
    logs = Logs()
    logs.period(0, EVEN, {"a": (10, 1), "b": (10, 1)}, T0)
    logs.period(0, EVEN, {"a": (10, 1), "b": (10, 1)}, T0, salt="hero-2",
                goal="signup")
    files = logs.write(tmp_path)
    rc, _, err = report("bandit", "--experiment", "hero", *files)
    assert rc == 2 and "name one with" in err
    rc, _, err = report("bandit", "--experiment", "hero", "--goal",
                        "purchase", *files)
    assert rc == 2 and "two salts" in err and "--salt" in err
    rc, out, err = report("bandit", "--experiment", "hero", "--goal",
                          "purchase", "--salt", "hero-2", "--seed", 1,
                          *files)
    assert rc == 0, err
    assert json.loads(out)["salt"] == "hero-2"
    rc, _, err = report("bandit", "--experiment", "nobody", *files)
    assert rc == 1 and "no exposure of experiment nobody" in err
    rc, _, err = report("bandit", "--experiment", "hero",
                        tmp_path / "missing.log")
    assert rc == 1 and "missing.log" in err


def test_bandit_value_metric_from_logs(tmp_path):
    logs = Logs()
    logs.period(0, EVEN, {"a": (200, 50), "b": (200, 50)}, T0, value=10.0)
    logs.period(4, SHIFT, {"a": (100, 10), "b": (300, 30)}, T0 + 7200,
                value=10.0)
    files = logs.write(tmp_path)
    rc, out, err = report("bandit", "--experiment", "hero", "--metric",
                          "value", "--seed", 3, "--verbose", *files)
    assert rc == 0, err
    assert json.loads(out)["metric"] == "value"
    # both versions had 400 visitors: 0.5 * 2.5 + 0.5 * 1.0 = 1.75 per
    # visitor in both arms (pooled: a 600/300 = 2.0, b 800/500 = 1.6)
    assert err.count(" 1.75 ") == 2


def test_a_bad_weights_version_is_a_malformed_line(tmp_path):
    logs = Logs().period(0, EVEN, {"a": (2, 0), "b": (2, 0)}, T0)
    bad = bandit_slot("a", 0, EVEN)
    bad["weights_version"] = -1
    logs.imps.append(impression(T0, "x", {"hero": bad}))
    bad["weights_version"] = "7"
    logs.imps.append(impression(T0, "y", {"hero": bad}))
    files = logs.write(tmp_path)
    rc, out, err = report(*files)
    assert rc == 0
    assert "%s:5: decision: slot hero: weights_version is not a whole number" % \
        files[0] in err
    assert "%s:6: decision: slot hero: weights_version" % files[0] in err
    assert "2 malformed lines skipped" in err


def test_periods_merge_across_files_and_threads(tmp_path):
    # two edges: version 7's lines on the second, with returning visitors
    # of version 0 and a version 3 the first edge never saw; read by one
    # thread or a thread per file (joins merged), the periods agree
    one = Logs().period(0, EVEN, {"a": (30, 6), "b": (30, 6)}, T0)
    two = Logs()
    two.k = 1000
    two.period(7, SHIFT, {"a": (10, 1), "b": (40, 4)}, T0 + 7200)
    two.period(3, {"a": 4000, "b": 6000}, {"a": (4, 1), "b": (6, 1)},
               T0 + 3600)
    for i in (1, 2, 31):
        vid = "v%07d" % i
        a = "a" if i <= 30 else "b"
        two.imps.append(impression(T0 + 9000, vid, {"hero": bandit_slot(
            a, 7, SHIFT, sticky=True)}))
    files = one.write(tmp_path, "edge1") + two.write(tmp_path, "edge2")
    runs = [report_json("--jobs", j, *files) for j in (1, 2, 4)]
    assert runs[0] == runs[1] == runs[2]
    t = the_test(runs[0])
    assert [p["version"] for p in t["periods"]] == [0, 3, 7]
    assert [p["n"] for p in t["periods"]] == [[30, 30], [4, 6], [10, 40]]
    assert [p["weights"] for p in t["periods"]] == [
        [0.5, 0.5], [0.4, 0.6], [0.2, 0.8]]


def test_docs_show_the_tools_table_for_a_bandit(tmp_path):
    rc, out, err = report(*drifting(tmp_path))
    assert rc == 0, err
    doc = (REPO / "docs" / "report.md").read_text()
    section = doc.split("## Bandits in the report", 1)[1]
    block = section.split("```\n", 2)[1]
    assert block == out
