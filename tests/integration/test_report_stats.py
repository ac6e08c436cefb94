# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""cef-report stats: the real binary on files and standard input, its JSON
shape, the SRM alarm, bad input and usage errors (docs/report.md).

Expected numbers are GrowthBook gbstats' own (repository
growthbook/growthbook, packages/stats/tests/...; file and test named where
used), rounded as gbstats rounds them: 5 decimals."""

import json
import math
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
TOOL = REPO / "build" / "cef-report"

# the example of issue 18 (binomial: sum_squares is ignored)
ISSUE = {"metric": "binomial", "control": "control",
         "arms": [{"name": "control", "weight": 0.5, "n": 3407,
                   "sum": 1396.87, "sum_squares": 52377.9767},
                  {"name": "b", "weight": 0.5, "n": 3461, "sum": 2422.7,
                   "sum_squares": 134698.29}]}


def gbstats_mean(control_n=3407):
    """The mean-metric pair of gbstats' tests/frequentist/test_tests.py."""
    return {"metric": "mean",
            "arms": [{"name": "control", "weight": 0.5, "n": control_n,
                      "sum": 1396.87, "sum_squares": 52377.9767},
                     {"name": "b", "weight": 0.5, "n": 3461, "sum": 2422.7,
                      "sum_squares": 134698.29}]}


def run(*args, stdin=None):
    p = subprocess.run([str(TOOL), *map(str, args)], input=stdin,
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def write(tmp_path, doc, name="in.json"):
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def approx5(x):
    return pytest.approx(x, abs=5.000001e-6)


def test_issue_example_from_a_file_as_a_table(tmp_path):
    path = write(tmp_path, ISSUE)
    rc, out, err = run("stats", path)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == \
        "sufficient statistics · binomial · SRM ok (p = 0.515)"
    assert lines[1].split() == ["arm", "visitors", "converted", "rate",
                                "lift", "(95%", "CI)", "abs", "lift", "p",
                                "chance", "to", "win"]
    assert lines[2].split() == ["control", "3407", "1397", "41.00%",
                                "(control)"]
    assert lines[3].split() == ["b", "3461", "2423", "70.00%", "+70.7%",
                                "[+62.9%,", "+78.6%]", "+29.00", "pp",
                                "<0.0001", ">99.9%"]
    # the ignored member is said, once per arm
    assert err.splitlines() == [
        f"{path}: arms[{i}] (\"{a}\"): warning: member \"sum_squares\" is "
        "ignored for a binomial metric (its variance is p(1 - p))"
        for i, a in enumerate(["control", "b"])]


def test_stdin_json_matches_gbstats():
    rc, out, err = run("stats", "--json", "-",
                       stdin=json.dumps(gbstats_mean()))
    assert (rc, err) == (0, "")
    assert out.endswith("\n") and out.count("\n") == 1
    doc = json.loads(out)
    b = doc["arms"][1]
    # tests/frequentist/test_tests.py TestTwoSidedTTest.test_two_sided_ttest
    assert b["relative"]["lift"] == approx5(0.70732)
    assert b["relative"]["ci"] == [approx5(-0.03526), approx5(1.44989)]
    assert b["relative"]["se"] == approx5(0.37879)
    assert b["relative"]["p"] == approx5(0.06191)
    # ... test_two_sided_ttest_absolute
    assert b["absolute"]["lift"] == approx5(0.29)
    assert b["absolute"]["ci"] == [approx5(0.04538), approx5(0.53462)]
    assert b["absolute"]["se"] == approx5(0.12478)
    assert b["absolute"]["p"] == approx5(0.02016)
    # the flat-prior posterior is the frequentist normal: its credible
    # interval uses the normal quantile, chance to win is P(lift > 0)
    assert b["bayes"]["chance_to_win"] == pytest.approx(0.96907, abs=1e-5)
    lo, hi = b["bayes"]["ci"]
    assert (hi - lo) / 2 == pytest.approx(1.959964 * 0.378794, rel=1e-5)


def test_json_shape(tmp_path):
    doc = gbstats_mean()
    doc["arms"].append({"name": "empty", "weight": 0, "n": 0, "sum": 0,
                        "sum_squares": 0})
    rc, out, err = run("stats", "--json", write(tmp_path, doc))
    assert (rc, err) == (0, "")
    got = json.loads(out)
    assert list(got) == ["experiment", "salt", "rules", "slot", "goal",
                         "metric", "holdout", "alpha", "sequential", "srm_p",
                         "arms"]
    assert [got[k] for k in ["experiment", "salt", "rules", "slot", "goal"]] \
        == [None] * 5
    assert (got["metric"], got["holdout"], got["alpha"], got["sequential"]) \
        == ("mean", False, 0.05, False)
    control, b, empty = got["arms"]
    assert control == {"name": "control", "n": 3407, "sum": 1396.87,
                       "mean": 0.41}
    assert list(b) == ["name", "n", "sum", "mean", "relative", "absolute",
                       "bayes"]
    assert list(b["relative"]) == list(b["absolute"]) == \
        ["lift", "ci", "se", "p"]
    assert list(b["bayes"]) == ["chance_to_win", "ci", "risk"]
    assert empty == {"name": "empty", "n": 0, "sum": 0, "mean": None,
                     "note": "no visitors"}


def test_sequential(tmp_path):
    path = write(tmp_path, gbstats_mean(control_n=3000))
    rc, out, err = run("stats", "--json", "--sequential", "--tau", "1000",
                       path)
    assert (rc, err) == (0, "")
    doc = json.loads(out)
    assert (doc["sequential"], doc["tau"]) == (True, 1000)
    rel = doc["arms"][1]["relative"]
    # tests/frequentist/test_tests.py
    # TestSequentialTTest.test_sequential_test_runs
    assert rel["lift"] == approx5(0.50336)
    assert rel["ci"] == [approx5(-0.55844), approx5(1.56516)]
    assert rel["p"] == 1

    # the default tuning (5000) is tighter at 6461 visitors than 1000
    rc, out, _ = run("stats", "--json", "--sequential", path)
    assert rc == 0
    ci = json.loads(out)["arms"][1]["relative"]["ci"]
    assert ci[0] > rel["ci"][0] and ci[1] < rel["ci"][1]

    rc, out, _ = run("stats", "--sequential", path)
    assert rc == 0 and "lift (95% sequential CI)" in out


def test_alpha_narrows_the_interval(tmp_path):
    path = write(tmp_path, gbstats_mean())
    wide = json.loads(run("stats", "--json", path)[1])
    narrow = json.loads(run("stats", "--json", "--alpha", "0.1", path)[1])
    assert narrow["alpha"] == 0.1
    w, n = wide["arms"][1]["relative"], narrow["arms"][1]["relative"]
    assert w["ci"][0] < n["ci"][0] < n["ci"][1] < w["ci"][1]
    assert w["p"] == n["p"]
    rc, out, _ = run("stats", "--alpha", "0.1", path)
    assert rc == 0 and "lift (90% CI)" in out


def test_sample_ratio_mismatch_is_flagged_loudly(tmp_path):
    doc = gbstats_mean()
    doc["arms"][1]["n"] = 3000      # 3407 vs 3000 against 50/50
    doc["arms"][1]["sum_squares"] = 134698.29
    path = write(tmp_path, doc)
    rc, out, _ = run("stats", path)
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].startswith("sufficient statistics · mean · "
                               "SRM MISMATCH (p = ")
    assert lines[1].startswith("!! SAMPLE RATIO MISMATCH: the visitors are "
                               "not split as configured (p = ")
    assert lines[2].startswith("!! ")
    # gbstats' check_srm: 6407 visitors expected 3203.5 each, one degree
    # of freedom; chi2(1).sf(x) = erfc(sqrt(x / 2)), computed here
    x = 2 * (3407 - 3203.5) ** 2 / 3203.5
    srm = json.loads(run("stats", "--json", path)[1])["srm_p"]
    assert srm == pytest.approx(math.erfc(math.sqrt(x / 2)), rel=1e-9)
    assert srm < 0.001

    # weights as basis points, unequal and right: no alarm
    doc["arms"][0]["weight"], doc["arms"][1]["weight"] = 3407, 3000
    rc, out, _ = run("stats", write(tmp_path, doc))
    assert rc == 0 and "SRM ok (p = 1)" in out and "!!" not in out

    # no weights: no verdict
    for a in doc["arms"]:
        del a["weight"]
    rc, out, _ = run("stats", write(tmp_path, doc))
    assert rc == 0 and "SRM not checked (no weights)" in out


def test_arm_that_cannot_be_analysed_gets_a_note(tmp_path):
    doc = {"metric": "binomial",
           "arms": [{"name": "control", "n": 50, "sum": 0},
                    {"name": "b", "n": 50, "sum": 5}]}
    rc, out, _ = run("stats", write(tmp_path, doc))
    assert rc == 0
    assert out.splitlines()[-1].split()[:4] == ["b", "50", "5", "10.00%"]
    assert out.splitlines()[-1].endswith("  zero variance in the control")


@pytest.mark.parametrize("doc,message", [
    ("{\"metric\": \"binomial\",\n \"arms\": [}",
     "line 2, column 11: invalid JSON: "),
    ("", "line 1, column 0: invalid JSON: "),
    ({"metric": "ratio", "arms": []},
     "member \"metric\": expected \"binomial\" or \"mean\""),
    ({"metric": "binomial", "arms": [{"name": "control", "n": 10,
                                      "sum": 1}]},
     "member \"arms\": expected an array of at least two arms"),
    ({"metric": "binomial", "arms": [{"name": "control", "n": 10, "sum": 1},
                                     {"name": "b", "n": -1, "sum": 0}]},
     "arms[1] (\"b\"): member \"n\": expected a whole number of visitors "
     ">= 0"),
    ({"metric": "binomial", "arms": [{"name": "control", "n": 10, "sum": 1},
                                     {"name": "b", "n": 10, "sum": 11}]},
     "arms[1] (\"b\"): member \"sum\": expected the converting visitors, "
     "0 to n (10)"),
    ({"metric": "mean", "arms": [{"name": "control", "n": 10, "sum": 1},
                                 {"name": "b", "n": 10, "sum": 1}]},
     "arms[0] (\"control\"): member \"sum_squares\" is missing (a mean "
     "metric needs it)"),
    ({"metric": "binomial", "control": "base",
      "arms": [{"name": "control", "n": 10, "sum": 1},
               {"name": "b", "n": 10, "sum": 1}]},
     "member \"control\": no arm is named \"base\""),
    ({"metric": "binomial", "arms": [{"name": "control", "n": 10, "sum": 1,
                                      "sumsq": 1},
                                     {"name": "b", "n": 10, "sum": 1}]},
     "arms[0] (\"control\"): unknown member \"sumsq\" (expected name, "
     "weight, n, sum, sum_squares)"),
])
def test_bad_input_names_member_and_arm(tmp_path, doc, message):
    path = write(tmp_path, doc)
    rc, out, err = run("stats", path)
    assert (rc, out) == (1, "")
    assert err.startswith(f"cef-report: {path}: {message}"), err
    # the same from standard input
    rc, out, err = run("stats", "-",
                       stdin=doc if isinstance(doc, str) else json.dumps(doc))
    assert (rc, out) == (1, "")
    assert err.startswith(f"cef-report: <stdin>: {message}"), err


def test_unreadable_input(tmp_path):
    rc, out, err = run("stats", tmp_path / "missing.json")
    assert (rc, out) == (1, "")
    assert err == (f"cef-report: {tmp_path / 'missing.json'}: cannot open: "
                   "No such file or directory\n")
    rc, out, err = run("stats", tmp_path)
    assert (rc, out, err) == (1, "", f"cef-report: {tmp_path}: is a "
                                     "directory\n")


def test_results_that_cannot_be_written_are_an_error(tmp_path):
    path = write(tmp_path, gbstats_mean())
    with open("/dev/full", "w") as full:
        p = subprocess.run([str(TOOL), "stats", str(path)], stdout=full,
                           stderr=subprocess.PIPE, text=True, timeout=60)
    assert p.returncode == 1
    assert p.stderr.startswith("cef-report: cannot write the results: ")


@pytest.mark.parametrize("args,message", [
    ([], "usage: cef-report [--json | --counts]"),
    (["stats"], "cef-report: stats reads one FILE (or - for standard "
                "input)"),
    (["stats", "a", "b"], "cef-report: stats reads one FILE"),
    (["stats", "--alpha", "2", "-"],
     "cef-report: --alpha: 2 is not between 0 and 1"),
    (["stats", "--alpha", "x", "-"],
     "cef-report: --alpha: \"x\" is not a number"),
    (["stats", "--tau", "100", "-"],
     "cef-report: --tau applies only with --sequential"),
    (["stats", "--sequential", "--tau", "0", "-"],
     "cef-report: --tau: 0 is not a positive number of visitors"),
    (["stats", "--jsn", "-"], "cef-report: unknown option '--jsn'"),
    (["stats", "-", "--alpha"], "cef-report: no value for '--alpha'"),
])
def test_usage_errors(args, message):
    rc, out, err = run(*args, stdin="")
    assert (rc, out) == (2, "")
    assert err.startswith(message), err


def test_a_word_that_is_no_command_is_a_log_to_read():
    """cef-report [options] LOG...: an operand names a log, not a command"""
    rc, out, err = run("frobnicate", stdin="")
    assert (rc, out) == (1, "")
    assert "frobnicate" in err and "No such file" in err, err


def test_help_and_version():
    rc, out, err = run("--help")
    assert (rc, err) == (0, "") and out.startswith("usage: cef-report [")
    assert "cef-report stats [options] FILE|-" in out
    rc, out, _ = run("stats", "--help")
    assert rc == 0 and out.startswith("usage: cef-report stats")
    rc, out, _ = run("--version")
    assert rc == 0 and out.startswith("cef-report ") and out.count("\n") == 1


def test_docs_example_is_what_the_tool_prints(tmp_path):
    """docs/report.md's table is the output for its input, verbatim."""
    doc = (REPO / "docs" / "report.md").read_text()
    section = doc[doc.index("## cef-report stats"):doc.index("## JSON output")]
    blocks = section.split("```")
    shown = next(b for b in blocks if b.startswith("\n$ cef-report stats "))
    given = blocks[blocks.index(shown) + 2]
    assert given.startswith("json\n")
    path = write(tmp_path, given[len("json\n"):], "hero.json")
    rc, out, err = run("stats", path)
    assert (rc, err) == (0, "")
    assert out == shown.split("\n", 2)[2]
