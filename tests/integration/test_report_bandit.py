# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""cef-report bandit: the real binary on files and standard input, the
weights record it writes, versions, the minimum-exposure and SRM messages,
bad input and usage errors (docs/report.md "cef-report bandit",
docs/formats.md "Weights records")."""

import json
import pathlib
import re
import subprocess

REPO = pathlib.Path(__file__).resolve().parents[2]
TOOL = REPO / "build" / "cef-report"

RECORD_KEYS = ["op", "experiment", "salt", "version", "created_at",
               "weights", "updated", "exposures", "goal", "metric", "method",
               "draws", "floor", "seed"]


def run(*args, stdin=None):
    p = subprocess.run([str(TOOL), "bandit", *map(str, args)], input=stdin,
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def write(tmp_path, doc, name="in.json"):
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def arms(*rows, weights=None):
    out = []
    for i, (name, n, s) in enumerate(rows):
        a = {"name": name, "n": n, "sum": s}
        if weights is not None:
            a["weight"] = weights[i]
        out.append(a)
    return out


THREE = {"metric": "binomial",
         "arms": arms(("a", 2000, 40), ("b", 2000, 60), ("c", 2000, 100))}


def record(out):
    assert out.endswith("\n") and out.count("\n") == 1
    rec = json.loads(out)
    assert list(rec) == RECORD_KEYS
    assert sum(rec["weights"].values()) == 10000
    return rec


def test_a_record_from_stats_input(tmp_path):
    rc, out, err = run("--experiment", "hero", "--goal", "purchase",
                       "--stats", write(tmp_path, THREE), "--seed", 5,
                       "--now", 1800000000)
    assert (rc, err) == (0, "")
    rec = record(out)
    assert rec["op"] == "weights"
    assert rec["experiment"] == rec["salt"] == "hero"
    assert rec["goal"] == "purchase"
    assert rec["version"] == rec["created_at"] == 1800000000
    assert rec["updated"] is True
    assert rec["exposures"] == {"a": 2000, "b": 2000, "c": 2000}
    assert (rec["metric"], rec["method"], rec["draws"], rec["floor"],
            rec["seed"]) == ("conversion", "top-two", 10000, 0.01, 5)
    # top-two: the best and the second best share, the worst at the floor
    w = rec["weights"]
    assert 4500 <= w["c"] <= 5000 and w["b"] > 4000 and 90 <= w["a"] <= 150


def test_same_seed_same_record_and_thompson_from_stdin(tmp_path):
    args = ("--experiment", "hero", "--stats", "-", "--seed", 9, "--now", 7,
            "--thompson", "--floor", "2%", "--draws", 5000)
    rc1, out1, _ = run(*args, stdin=json.dumps(THREE))
    rc2, out2, _ = run(*args, stdin=json.dumps(THREE))
    assert rc1 == rc2 == 0 and out1 == out2
    rec = record(out1)
    assert (rec["method"], rec["floor"], rec["draws"]) == \
        ("thompson", 0.02, 5000)
    assert rec["weights"]["c"] > 9000
    # a seed is drawn and recorded when none is given
    rc, out, _ = run("--experiment", "hero", "--stats", "-",
                     stdin=json.dumps(THREE))
    assert rc == 0 and isinstance(record(out)["seed"], int)


def test_versions_never_go_backwards(tmp_path):
    path = write(tmp_path, THREE)
    rc, out, _ = run("--experiment", "hero", "--stats", path, "--seed", 1,
                     "--now", 1800000000)
    prev = write(tmp_path, out, "prev.json")
    # a clock set back: previous + 1
    rc, out, _ = run("--experiment", "hero", "--stats", path, "--seed", 1,
                     "--now", 1000, "--previous", prev)
    assert rc == 0 and record(out)["version"] == 1800000001
    # the periods' versions count as previous ones too
    doc = {"metric": "binomial", "periods": [
        {"version": 1900000000, "arms": THREE["arms"]}]}
    rc, out, _ = run("--experiment", "hero", "--stats",
                     write(tmp_path, doc), "--now", 1000)
    assert rc == 0 and record(out)["version"] == 1900000001
    # another experiment's record is refused
    rc, out, err = run("--experiment", "side", "--stats", path,
                       "--previous", prev)
    assert rc == 1 and out == ""
    assert "the weights record of experiment \"hero\", not \"side\"" in err


def test_too_few_exposures_keeps_the_live_weights(tmp_path):
    doc = {"metric": "binomial",
           "arms": arms(("a", 99, 9), ("b", 149, 3), ("c", 247, 5),
                        weights=[20, 30, 50])}
    rc, out, err = run("--experiment", "hero", "--stats",
                       write(tmp_path, doc), "--seed", 1)
    assert rc == 0
    rec = record(out)
    assert rec["updated"] is False
    assert rec["weights"] == {"a": 2000, "b": 3000, "c": 5000}
    assert err == ("cef-report bandit: hero: arm \"a\" has 99 exposures, "
                   "fewer than 100: the live weights stay\n")

    # without live weights in the input, --previous gives them
    del doc["arms"][0]["weight"], doc["arms"][1]["weight"], \
        doc["arms"][2]["weight"]
    prev = write(tmp_path, json.dumps({
        "op": "weights", "experiment": "hero", "salt": "hero",
        "version": 3, "weights": {"a": 1000, "b": 1000, "c": 8000}}),
        "prev.json")
    rc, out, _ = run("--experiment", "hero", "--stats", write(tmp_path, doc),
                     "--previous", prev, "--now", 2)
    rec = record(out)
    assert rec["weights"] == {"a": 1000, "b": 1000, "c": 8000}
    assert rec["version"] == 4


def test_sample_ratio_mismatch_is_loud(tmp_path):
    doc = {"metric": "binomial",
           "arms": arms(("a", 1000, 20), ("b", 1200, 30), weights=[1, 1])}
    rc, out, err = run("--experiment", "hero", "--stats",
                       write(tmp_path, doc), "--seed", 1)
    assert rc == 0 and record(out)
    assert "SAMPLE RATIO MISMATCH (p = 2e-05)" in err


def test_verbose_figures(tmp_path):
    doc = {"metric": "binomial", "periods": [
        {"arms": arms(("a", 100, 10), ("b", 100, 20), weights=[1, 1])},
        {"version": 8,
         "arms": arms(("b", 100, 20), ("a", 300, 60), weights=[1, 3])}]}
    rc, out, err = run("--experiment", "hero", "--stats",
                       write(tmp_path, doc), "--seed", 1, "-v")
    assert rc == 0 and record(out)
    lines = err.splitlines()
    assert lines[0].startswith("hero: 2 periods, conversion, top-two, "
                               "10000 draws, seed 1, SRM p 1")
    # the period-weighted means: a 1/3 * 0.1 + 2/3 * 0.2, b 0.2
    assert lines[2].split()[:3] == ["a", "400", "0.166667"]
    assert lines[3].split()[:3] == ["b", "200", "0.2"]


def test_docs_example_is_what_the_tool_prints(tmp_path):
    """docs/report.md's example output is the output for its input."""
    doc = (REPO / "docs" / "report.md").read_text()
    section = doc[doc.index("## cef-report bandit"):]
    blocks = re.findall(r"```(\w*)\n(.*?)```", section, re.S)
    shown = blocks[1][1]
    stats = next(b for lang, b in blocks if lang == "json"
                 and '"periods"' in b)
    path = write(tmp_path, stats, "hero.json")
    rc, out, err = run("--experiment", "hero-q4", "--stats", path,
                       "--seed", 7, "--now", 1796600000, "--verbose")
    assert rc == 0
    first, rest = shown.split("\n", 1)
    assert first.startswith("$ cef-report bandit --experiment hero-q4 "
                            "--stats hero.json --seed 7 --now 1796600000 "
                            "--verbose")
    assert rest == err + out
    formats = (REPO / "docs" / "formats.md").read_text()
    assert out in formats


def test_bad_input_names_period_arm_and_member(tmp_path):
    cases = [
        ("{", "line 1, column 1: invalid JSON"),
        ({"metric": "binomial", "periods": [
            {"arms": arms(("a", 10, 1), ("b", 10, 11))}]},
         "periods[0]: arms[1] (\"b\"): member \"sum\": expected the "
         "converting visitors, 0 to n (10)"),
        ({"metric": "binomial", "periods": [
            {"arms": arms(("a", 10, 1), ("b", 10, 1))},
            {"arms": arms(("a", 10, 1), ("c", 10, 1))}]},
         "periods[1]: arm \"c\" is not in the first period"),
        ({"metric": "binomial", "arms": THREE["arms"], "slots": 1},
         "unknown member \"slots\""),
        ({"metric": "binomial", "experiment": "other",
          "arms": THREE["arms"]},
         "the input's experiment is \"other\", the command line says "
         "\"hero\""),
        ({"metric": "mean", "arms": THREE["arms"]},
         "arms[0] (\"a\"): member \"sum_squares\" is missing"),
    ]
    for doc, want in cases:
        rc, out, err = run("--experiment", "hero", "--stats",
                           write(tmp_path, doc))
        assert (rc, out) == (1, ""), want
        assert want in err and err.count("\n") == 1, err
    rc, out, err = run("--experiment", "hero", "--stats",
                       tmp_path / "missing.json")
    assert rc == 1 and "cannot open" in err
    rc, out, err = run("--experiment", "hero", "--metric", "value",
                       "--stats", write(tmp_path, THREE))
    assert rc == 1 and "the input's metric is \"conversion\", the command " \
        "line says \"value\"" in err


def test_usage_errors(tmp_path):
    path = write(tmp_path, THREE)
    for args, want in [
            ((), "--experiment NAME is required"),
            (("--experiment", "x"), "give the logs to read, or --stats"),
            (("--experiment", "x", "--stats", path, "a.log"),
             "exclude each other"),
            (("--experiment", "x", "--stats", path, "--floor", "150%"),
             "--floor: \"150%\" is not a share"),
            (("--experiment", "x", "--stats", path, "--floor", "0.4"),
             "--floor 0.4 with 3 arms leaves nothing to learn"),
            (("--experiment", "x", "--stats", path, "--seed", "-1"),
             "--seed: \"-1\" is not a whole number from 0 to 4294967295"),
            (("--experiment", "x", "--stats", path, "--draws", "0"),
             "--draws: at least 1"),
            (("--experiment", "x", "--stats", path, "--metric", "clicks"),
             "neither conversion nor value"),
            (("--experiment", "x", "--stats", path, "--bogus"),
             "unknown option '--bogus'")]:
        rc, out, err = run(*args)
        assert (rc, out) == (2, ""), args
        assert want in err, (args, err)
    rc, out, _ = run("--help")
    assert rc == 0 and out.startswith("usage: cef-report bandit")
