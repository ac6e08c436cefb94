# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""cef-report reading logs: exposures, conversions, window, bad input.

Runs the real build/cef-report on crafted logs in the formats the module
writes (cef_impressions and cef_goals: the record in a JSON string member;
the bare record; the escape=none form) and checks the counts through
`--counts` (the sufficient statistics before any statistics) and `--json`'s
`n`.  Every expected number is computed by hand in the test.
"""

import gzip
import json
import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
# CEF_REPORT=build/asan/cef-report runs the same tests under ASan+UBSan
TOOL = os.environ.get("CEF_REPORT", str(REPO / "build" / "cef-report"))

RULES = "af15f25d2ba3e1ab9d57351639736d67973fc23331cd5adb59e123dbc3400e9a"
RULES2 = "336d6acbeaae" + "0" * 52
SPLIT = {"control": 1000, "a": 4500, "b": 4500}


def compact(o):
    return json.dumps(o, separators=(",", ":"), ensure_ascii=False)


def record(t, visitor, slots, rules=RULES):
    return {"v": 1, "t": t, "tz": 0, "rules": rules, "snapshot": "snap-1",
            "seq": 0, "key_type": "visitor", "profile": None,
            "visitor": visitor, "ph": None,
            "in": {"request.arg.q": "a \"quoted\" \\ value", "time.hour": 9,
                   "list": [1, {"slots": {"x": 1}}]},
            "state": {}, "slots": slots}


def impression(t, visitor, slots, rules=RULES):
    """A line of the cef_impressions format (escape=json)."""
    return compact({"time": "2026-11-23T15:59:32+00:00",
                    "request_id": "288dbb1be935b9abdc8a4d653c08a342",
                    "status": 200, "uri": "/p?\"x\"",
                    "decision": compact(record(t, visitor, slots, rules))})


def goal_record(t, visitor, goal, value=None, rules=RULES):
    return {"v": 1, "t": t, "goal": goal, "value": value, "rules": rules,
            "key_type": "visitor", "profile": None, "visitor": visitor,
            "arms": {"hero-q4": {"salt": "hero-q4", "arm": "a"}}}


def goal(t, visitor, name, value=None, rules=RULES):
    """A line of the cef_goals format (escape=json)."""
    return compact({"time": "2026-11-23T15:59:32+00:00",
                    "request_id": "388dbb1be935b9abdc8a4d653c08a342",
                    "status": 200,
                    "goal": compact(goal_record(t, visitor, name, value,
                                                rules))})


def slot(variant, offer="hero-offer", would=None, experiment="hero-q4",
         salt=None, split=None):
    s = {"offer": offer, "rule": "r", "plugin": "experiment",
         "variant": variant, "bucket": 42, "experiment": experiment,
         "salt": salt or experiment, "split": split or SPLIT}
    if would is not None:
        s["would"] = would
        s["would_rule"] = "r"
    return s


def hero(variant, offer="hero-offer", would=None, **kw):
    """The slots of a page: hero in the experiment, foot outside it."""
    return {"hero": slot(variant, offer, would, **kw),
            "foot": {"offer": "foot-offer", "rule": "f", "plugin": "priority",
                     "variant": "treatment"}}


def write(path, lines):
    path.write_text("".join(line + "\n" for line in lines))
    return path


def run(*args, stdin=None):
    p = subprocess.run([str(TOOL), *map(str, args)], capture_output=True,
                       text=True, input=stdin, timeout=120)
    return p.returncode, p.stdout, p.stderr


def counts(*args, stdin=None):
    rc, out, err = run("--counts", *args, stdin=stdin)
    assert rc == 0, err
    return [json.loads(line) for line in out.splitlines()], err


def by_key(tests):
    return {(t["experiment"], t["rules"][:12], t["goal"], t["metric"]): t
            for t in tests}


def arms(test):
    return {a["name"]: (a["n"], a["sum"], a["sum_squares"])
            for a in test["arms"]}


# the scenario every count below is worked out from
SCENARIO = [
    # v1: arm a, seen at 100 then (an earlier line of another edge) at 50:
    # first exposure 50.  Purchases at 40 (before it: not counted), 60 (5)
    # and 70 (2.5): one converting visitor, per-visitor sum 7.5.
    impression(100, "v1", hero("a")),
    impression(50, "v1", hero("a")),
    goal(40, "v1", "purchase", 10),
    goal(60, "v1", "purchase", 5),
    goal(70, "v1", "purchase", 2.5),
    # v2: arm b at 100, a purchase without a value at 200: converts, 0.
    impression(100, "v2", hero("b")),
    goal(200, "v2", "purchase", None),
    # v3: held out (control, would-be offer recorded) at 100, signs up.
    impression(100, "v3", hero("control", None, would="hero-offer")),
    goal(300, "v3", "signup"),
    # v4: control without a would-be offer (nothing matched): no exposure.
    impression(100, "v4", hero("control", None)),
    goal(300, "v4", "signup"),
    # v5: arm a but no offer shown: no exposure.
    impression(100, "v5", hero("a", None)),
    goal(300, "v5", "purchase", 99),
    # v6: arm b at 100, two purchases (20, 30): per-visitor sum 50.
    impression(100, "v6", hero("b")),
    goal(150, "v6", "purchase", 20),
    goal(160, "v6", "purchase", 30),
    # v7: a purchase, never exposed: counts nowhere.
    goal(120, "v7", "purchase", 1000),
]


def test_exposures_and_conversions_counted_by_hand(tmp_path):
    tests, err = counts(write(tmp_path / "l.log", SCENARIO))
    assert err == ""
    t = by_key(tests)
    assert sorted(t) == [("hero-q4", RULES[:12], "purchase", "binomial"),
                         ("hero-q4", RULES[:12], "purchase", "mean"),
                         ("hero-q4", RULES[:12], "signup", "binomial")]

    # n: control v3; a: v1; b: v2, v6
    assert arms(t["hero-q4", RULES[:12], "purchase", "binomial"]) == {
        "control": (1, 0, 0), "a": (1, 1, 1), "b": (2, 2, 2)}
    assert arms(t["hero-q4", RULES[:12], "purchase", "mean"]) == {
        "control": (1, 0, 0), "a": (1, 7.5, 56.25), "b": (2, 50, 2500)}
    assert arms(t["hero-q4", RULES[:12], "signup", "binomial"]) == {
        "control": (1, 1, 1), "a": (1, 0, 0), "b": (2, 0, 0)}

    test = t["hero-q4", RULES[:12], "purchase", "binomial"]
    assert test["rules"] == RULES
    assert (test["salt"], test["slot"], test["control"]) == \
        ("hero-q4", "hero", "control")
    assert test["holdout"] is True
    assert [(a["name"], a["weight"]) for a in test["arms"]] == \
        [("control", 0.1), ("a", 0.45), ("b", 0.45)]


def test_json_reports_the_same_n_and_mean(tmp_path):
    rc, out, err = run("--json", write(tmp_path / "l.log", SCENARIO))
    assert rc == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(o["goal"], o["metric"]) for o in lines] == [
        ("purchase", "binomial"), ("purchase", "mean"),
        ("signup", "binomial")]
    got = {(o["goal"], o["metric"], a["name"]): (a["n"], a["mean"])
           for o in lines for a in o["arms"]}
    assert got["purchase", "binomial", "b"] == (2, 1.0)
    assert got["purchase", "mean", "a"] == (1, 7.5)
    assert got["purchase", "mean", "b"] == (2, 25.0)
    assert got["signup", "binomial", "control"] == (1, 1.0)


def test_a_goal_before_the_first_exposure_is_not_counted(tmp_path):
    log = write(tmp_path / "l.log", [
        goal(99, "v1", "purchase", 10),
        impression(100, "v1", hero("a")),
        goal(100, "v1", "signup"),              # at the same second: counts
    ])
    t = by_key(counts(log)[0])
    assert arms(t["hero-q4", RULES[:12], "purchase", "binomial"])["a"] == \
        (1, 0, 0)
    assert arms(t["hero-q4", RULES[:12], "signup", "binomial"])["a"] == \
        (1, 1, 1)


@pytest.mark.parametrize("window", ["1h", "3600s", "3600", "60m"])
def test_window_counts_conversions_within_it(tmp_path, window):
    log = write(tmp_path / "l.log", [
        impression(1000, "v1", hero("a")),
        goal(1000 + 3600, "v1", "purchase", 10),    # at the window's end
        goal(1000 + 3601, "v1", "purchase", 20),    # after it
        impression(1000, "v2", hero("b")),
        goal(1000 + 7200, "v2", "purchase", 5),     # after it
    ])
    t = by_key(counts("--window", window, log)[0])
    assert arms(t["hero-q4", RULES[:12], "purchase", "mean"]) == {
        "control": (0, 0, 0), "a": (1, 10, 100), "b": (1, 0, 0)}

    # default: to the end of the data
    t = by_key(counts(log)[0])
    assert arms(t["hero-q4", RULES[:12], "purchase", "mean"]) == {
        "control": (0, 0, 0), "a": (1, 30, 900), "b": (1, 5, 25)}


@pytest.mark.parametrize("bad", ["0", "-1h", "1y", "h", "1hh", "1.5h", ""])
def test_bad_window_is_a_usage_error(tmp_path, bad):
    log = write(tmp_path / "l.log", SCENARIO)
    rc, out, err = run("--window", bad, log)
    assert (rc, out) == (2, "")
    assert "--window must be a duration" in err


def test_window_in_days(tmp_path):
    log = write(tmp_path / "l.log", [
        impression(0, "v1", hero("a")),
        goal(7 * 86400, "v1", "purchase", 1),
        goal(7 * 86400 + 1, "v1", "purchase", 2),
    ])
    t = by_key(counts("--window", "7d", log)[0])
    assert arms(t["hero-q4", RULES[:12], "purchase", "mean"])["a"] == \
        (1, 1, 1)


def test_rule_sets_and_salts_are_kept_apart(tmp_path):
    log = write(tmp_path / "l.log", [
        impression(100, "v1", hero("a")),
        impression(200, "v1", hero("b"), rules=RULES2),  # the new rule set
        impression(100, "v2", hero("b"), rules=RULES2),
        impression(100, "v3", hero("a", salt="hero-q4-v2")),
        goal(300, "v1", "purchase", 1),
    ])
    tests = counts(log)[0]
    got = {(t["rules"][:12], t["salt"], t["metric"]): arms(t) for t in tests}
    assert got == {
        (RULES[:12], "hero-q4", "binomial"):
            {"control": (0, 0, 0), "a": (1, 1, 1), "b": (0, 0, 0)},
        (RULES[:12], "hero-q4", "mean"):
            {"control": (0, 0, 0), "a": (1, 1, 1), "b": (0, 0, 0)},
        (RULES2[:12], "hero-q4", "binomial"):
            {"control": (0, 0, 0), "a": (0, 0, 0), "b": (2, 1, 1)},
        (RULES2[:12], "hero-q4", "mean"):
            {"control": (0, 0, 0), "a": (0, 0, 0), "b": (2, 1, 1)},
        (RULES[:12], "hero-q4-v2", "binomial"):
            {"control": (0, 0, 0), "a": (1, 0, 0), "b": (0, 0, 0)},
        (RULES[:12], "hero-q4-v2", "mean"):
            {"control": (0, 0, 0), "a": (1, 0, 0), "b": (0, 0, 0)},
    }


def test_gzip_stdin_and_many_files_give_the_same_counts(tmp_path):
    whole, _ = counts(write(tmp_path / "all.log", SCENARIO))

    with gzip.open(tmp_path / "edge2.log.gz", "wt") as f:
        f.write("".join(line + "\n" for line in SCENARIO[5:11]))
    write(tmp_path / "edge1.log", SCENARIO[:5])
    stdin = "".join(line + "\n" for line in SCENARIO[11:])
    for jobs in ("1", "2"):
        split, err = counts("--jobs", jobs, tmp_path / "edge1.log",
                            tmp_path / "edge2.log.gz", "-", stdin=stdin)
        assert err == ""
        assert split == whole


def test_a_gzip_file_needs_no_gz_suffix_and_crlf_is_read(tmp_path):
    whole, _ = counts(write(tmp_path / "all.log", SCENARIO))
    (tmp_path / "rotated.1").write_bytes(
        gzip.compress("".join(line + "\r\n" for line in SCENARIO).encode()))
    assert counts(tmp_path / "rotated.1")[0] == whole


def test_malformed_lines_are_reported_skipped_and_counted(tmp_path):
    bad = [
        "not json",
        '{"time":"x","decision":"{\\"v\\":1"}',        # record cut short
        compact({"decision": compact({**record(1, "v9", {}), "v": 2})}),
        compact({"decision": compact({k: v for k, v in
                                      record(1, "v9", {}).items()
                                      if k != "t"})}),
        compact({"status": 200}),
        compact({"decision": compact(record(1, "v9", {"hero": "x"}))}),
        compact(["an", "array"]),
        compact({"goal": compact({**goal_record(1, "v9", "purchase"),
                                  "value": "12.5"})}),
    ]
    log = write(tmp_path / "l.log", SCENARIO[:5] + bad + SCENARIO[5:])
    tests, err = counts(log)
    assert tests == counts(write(tmp_path / "good.log", SCENARIO))[0]
    f = str(log)
    assert err.splitlines() == [
        f + ":6: invalid JSON: lexical error: invalid string in json text.",
        f + ":7: decision: invalid JSON: parse error: premature EOF",
        f + ":8: decision: unknown record version 2",
        f + ":9: decision: record without t",
        f + ":10: neither a record nor a line with a decision or goal "
            "member",
        f + ":11: decision: slot hero is a string, not an object",
        f + ":12: not a JSON object",
        f + ":13: goal: value is a string, not a finite number",
        "cef-report: 8 malformed lines skipped",
    ]


def test_strict_stops_at_the_first_malformed_line(tmp_path):
    log = write(tmp_path / "l.log", SCENARIO[:3] + ["{oops"] + SCENARIO[3:])
    rc, out, err = run("--strict", log)
    assert (rc, out) == (1, "")
    assert err.splitlines()[0].startswith(str(log) + ":4: invalid JSON")
    assert "(--strict: no report)" in err


def test_lines_without_a_record_are_not_malformed(tmp_path):
    # a format logged without if=$cef_decision / if=$cef_goal, blank lines
    log = write(tmp_path / "l.log", SCENARIO + [
        compact({"time": "x", "status": 404, "decision": ""}),
        compact({"time": "x", "status": 200, "goal": ""}),
        "", "   "])
    tests, err = counts(log)
    assert err == ""
    assert tests == counts(write(tmp_path / "good.log", SCENARIO))[0]


def test_bare_and_escape_none_records_are_read(tmp_path):
    lines = []
    for k, line in enumerate(SCENARIO):
        o = json.loads(line)
        inner = json.loads(o.get("decision") or o["goal"])
        key = "decision" if "decision" in o else "goal"
        if k % 2:
            lines.append(compact(inner))                          # bare
        else:
            lines.append(compact({"time": "x", key: inner}))      # escape=none
    tests, err = counts(write(tmp_path / "l.log", lines))
    assert err == ""
    assert tests == counts(write(tmp_path / "good.log", SCENARIO))[0]


def test_an_arm_without_visitors_is_reported(tmp_path):
    log = write(tmp_path / "l.log", [
        impression(100, "v1", hero("a")),
        impression(100, "v2", hero("control", None, would="x")),
        goal(200, "v1", "signup"),
    ])
    (test,) = counts(log)[0]
    assert arms(test) == {"control": (1, 0, 0), "a": (1, 1, 1),
                          "b": (0, 0, 0)}
    rc, out, err = run("--json", log)
    assert rc == 0, err
    (o,) = [json.loads(line) for line in out.splitlines()]
    assert [(a["name"], a["n"]) for a in o["arms"]] == \
        [("control", 1), ("a", 1), ("b", 0)]


def test_ab_test_without_holdout_and_a_holdout_alone(tmp_path):
    ab = {"a": 5000, "b": 5000}
    ho = {"control": 1000, "treatment": 9000}
    log = write(tmp_path / "l.log", [
        impression(100, "v1", {"foot": slot("b", "f-b", experiment="foot",
                                            split=ab)}),
        impression(100, "v2", {"side": slot("treatment", "s",
                                            experiment="side", split=ho)}),
    ])
    t = {x["experiment"]: x for x in counts(log)[0]}
    assert (t["foot"]["holdout"], t["foot"]["control"], t["foot"]["goal"]) \
        == (False, "a", None)
    assert arms(t["foot"]) == {"a": (0, 0, 0), "b": (1, 0, 0)}
    assert (t["side"]["holdout"], t["side"]["control"]) == (True, "control")
    assert [a["weight"] for a in t["side"]["arms"]] == [0.1, 0.9]


def test_experiment_and_goal_filters(tmp_path):
    log = write(tmp_path / "l.log", SCENARIO + [
        impression(100, "v8", {"foot": slot("b", "f", experiment="foot",
                                            split={"a": 1, "b": 9999})})])
    tests = counts("--experiment", "foot", log)[0]
    assert {(t["experiment"], t["goal"]) for t in tests} == {
        ("foot", "purchase"), ("foot", "signup")}
    tests = counts("--goal", "signup", log)[0]
    assert [(t["experiment"], t["goal"]) for t in tests] == [
        ("foot", "signup"), ("hero-q4", "signup")]
    # a goal nobody reached is reported with zero conversions
    tests = counts("--goal", "refund", "--experiment", "hero-q4", log)[0]
    assert [(t["goal"], arms(t)["b"]) for t in tests] == \
        [("refund", (2, 0, 0))]


def test_series_is_cumulative_and_short(tmp_path):
    day = 86400
    lines = []
    for d in range(30):                       # 30 days, a visitor a day
        lines.append(impression(d * day + 10, "v%d" % d,
                                hero("a" if d % 2 else "b")))
        if d % 3 == 0:
            lines.append(goal(d * day + 20, "v%d" % d, "signup"))
    (t,) = counts(write(tmp_path / "l.log", lines))[0]
    s = t["series"]
    assert 1 < len(s["end"]) <= 100
    assert s["end"] == sorted(s["end"])
    assert s["n"][-1] == [a["n"] for a in t["arms"]] == [0, 15, 15]
    assert s["converters"][-1] == [a["sum"] for a in t["arms"]]
    for k in range(1, len(s["end"])):
        assert all(x >= y for x, y in zip(s["n"][k], s["n"][k - 1]))
    # each period ends where the next begins, all of one length
    steps = {b - a for a, b in zip(s["end"], s["end"][1:])}
    assert len(steps) == 1
    assert s["end"][-1] > 29 * day + 20


def test_a_truncated_gzip_file_keeps_its_lines_and_says_so(tmp_path):
    data = gzip.compress("".join(line + "\n" for line in SCENARIO * 50)
                         .encode())
    log = tmp_path / "cut.log.gz"
    log.write_bytes(data[:len(data) * 2 // 3])
    rc, out, err = run("--counts", log)
    assert rc == 0, err
    assert "read error: unexpected end of file" in err
    assert "malformed line" in err
    assert out != ""


def test_goals_without_a_visitor_and_unknown_files(tmp_path):
    log = write(tmp_path / "l.log", SCENARIO + [goal(250, None, "signup")])
    assert [arms(t) for t in counts(log)[0]] == \
        [arms(t) for t in counts(write(tmp_path / "g.log", SCENARIO))[0]]

    rc, out, err = run(tmp_path / "nosuch.log")
    assert (rc, out) == (1, "")
    assert err == "cef-report: %s: No such file or directory\n" % (
        tmp_path / "nosuch.log")


def test_no_exposure_and_usage_errors(tmp_path):
    log = write(tmp_path / "l.log", [goal(1, "v1", "signup")])
    rc, out, err = run(log)
    assert (rc, out) == (1, "")
    assert err == ("cef-report: no exposure in 1 lines (0 impression "
                   "records, 1 goal records)\n")

    assert run()[0] == 2
    assert run("--tau", "10", log)[0] == 2
    assert run("--json", "--counts", log)[0] == 2
    assert run("-", "-")[0] == 2
    # the same file twice (here through a link) would count goals twice
    (tmp_path / "again.log").symlink_to(log)
    rc, out, err = run(log, tmp_path / "again.log")
    assert (rc, out) == (2, "")
    assert err == ("cef-report: %s and %s are the same file (its lines "
                   "would count twice)\n" % (log, tmp_path / "again.log"))
    assert run("--alpha", "1", log)[0] == 2
    assert run("--bogus", log)[0] == 2
    rc, out, _ = run("--help")
    assert rc == 0 and out.startswith("usage: cef-report")


def test_escaped_ids_join_and_deep_members_are_skipped(tmp_path):
    # the record's strings are unescaped before they are compared: an id
    # written with \u escapes joins the same id written as UTF-8; members
    # nobody reads may nest deeper than the reader tracks
    deep = 1
    for _ in range(200):
        deep = [deep, {"slots": {"x": deep if isinstance(deep, int) else 1}}]
    rec = record(100, "v\u00e9-1", hero("a"))
    rec["in"]["deep"] = deep
    line = json.dumps({"decision": json.dumps(rec, ensure_ascii=True)},
                      ensure_ascii=True)
    assert "\\\\u00e9" in line
    log = write(tmp_path / "l.log", [line, goal(200, "v\u00e9-1", "signup")])
    (t,) = counts(log)[0]
    assert arms(t)["a"] == (1, 1, 1)


def test_progress_on_a_terminal_only(tmp_path):
    import pty
    import time

    log = write(tmp_path / "l.log", SCENARIO)
    for tty in (True, False):
        master = slave = None
        if tty:
            master, slave = pty.openpty()
        err_to = slave if tty else subprocess.PIPE
        p = subprocess.Popen([str(TOOL), "--counts", log, "-"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=err_to)
        # standard input stays open for 2.5 s: the input is "long"
        time.sleep(2.5)
        p.stdin.write(b"\n".join(x.encode() for x in SCENARIO[:2]) + b"\n")
        p.stdin.close()
        out = p.stdout.read()
        assert p.wait(timeout=60) == 0
        assert out
        if tty:
            os.close(slave)
            err = b""
            while True:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                err += chunk
            os.close(master)
            assert b"\r\x1b[Kcef-report: 0.0M lines" in err
            assert err.endswith(b"\r\x1b[K")
        else:
            assert p.stderr.read() == b""


@pytest.mark.parametrize("jobs", ["2", "3", "8"])
def test_threads_joins_merge_to_the_same_counts(tmp_path, jobs):
    # one line per file: every first exposure, arm, goal and value has to
    # come together from the threads' own joins
    lines = SCENARIO + [
        impression(10, "v9", {"foot": slot("b", "f", experiment="foot",
                                           split={"a": 5000, "b": 5000})}),
        goal(20, "v9", "refund", 3),
    ]
    whole, _ = counts(write(tmp_path / "all.log", lines))
    files = [write(tmp_path / ("%02d.log" % k), [line])
             for k, line in enumerate(lines)]
    split, err = counts("--jobs", jobs, *files)
    assert err == ""
    assert split == whole


def test_without_a_visitor_cookie_the_profile_is_the_id(tmp_path):
    # the module buckets by the profile id when the visitor cookie is off:
    # the records then carry visitor null and the profile
    def anon(line, profile):
        o = json.loads(line)
        key = "decision" if "decision" in o else "goal"
        rec = json.loads(o[key])
        rec["visitor"] = None
        rec["profile"] = profile
        rec["key_type"] = "customer"
        o[key] = compact(rec)
        return compact(o)

    log = write(tmp_path / "l.log", [
        anon(impression(100, None, hero("b")), "p-1"),
        anon(goal(200, None, "signup"), "p-1"),
        # a profile id equal to a visitor id is another person
        impression(100, "p-2", hero("a")),
        anon(goal(200, None, "signup"), "p-2"),
    ])
    (t,) = counts(log)[0]
    assert arms(t) == {"control": (0, 0, 0), "a": (1, 0, 0), "b": (1, 1, 1)}


def test_a_tie_at_the_first_second_does_not_depend_on_file_order(tmp_path):
    one = write(tmp_path / "1.log", [impression(100, "v1", hero("b"))])
    two = write(tmp_path / "2.log", [impression(100, "v1", hero("a"))])
    for order in ((one, two), (two, one)):
        for jobs in ("1", "2"):
            (t,) = counts("--jobs", jobs, *order)[0]
            assert arms(t)["a"] == (1, 0, 0) and arms(t)["b"] == (0, 0, 0)


def test_sums_of_values_do_not_depend_on_files_or_threads(tmp_path):
    # floating-point sums are added in one order (the visitors' ids),
    # whatever order the lines came in and however the threads split them
    lines = []
    for k in range(300):
        v = "v%03d" % ((k * 7919) % 300)
        lines.append(impression(10, v, hero("a" if k % 2 else "b")))
        lines.append(goal(20 + k % 5, v, "purchase", 0.1 * (k % 13) + 1e-7 * k))
        lines.append(goal(20 + k % 5, v, "purchase", 1 / (k + 3)))
    whole, _ = counts(write(tmp_path / "all.log", lines))
    rev, _ = counts(write(tmp_path / "rev.log", lines[::-1]))
    files = [write(tmp_path / ("%d.log" % e), lines[e::8]) for e in range(8)]
    split, _ = counts("--jobs", "8", *files)
    assert [arms(t) for t in rev] == [arms(t) for t in whole]
    assert [arms(t) for t in split] == [arms(t) for t in whole]
