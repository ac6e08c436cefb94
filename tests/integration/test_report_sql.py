# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""docs/report.sql -- the numbers cef-report counts, in SQL -- run by the
sqlite3 CLI exactly as docs/report.md says (its commands are taken from the
page), on the same logs as `cef-report --json`: the same tests, the same
arms with the same n and sum, and, through `cef-report stats`, the same
results (lifts, intervals, p-values, SRM).  The logs
(tests/integration/report_logs.py) hold the edge cases: two rule-set
versions of one experiment, a holdout, an arm without visitors and one of
weight 0, conversions before the first exposure and days after it, values
rejected as null, an arm missing from the split, bare records and object
members, a gzip'd log, malformed lines.  And the query quoted on the page
is the file."""

import gzip
import json
import math
import re
import subprocess

import pytest

import report_logs
from conftest import BUILD, REPO

CEF_REPORT = BUILD / "cef-report"
SQL = REPO / "docs" / "report.sql"
DOC = REPO / "docs" / "report.md"
WINDOW = report_logs.WINDOW_EDGE     # conversions on its very edge


def doc_section():
    text = DOC.read_text()
    start = text.index("## The same numbers in SQL")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else len(text)]


def doc_load_script(imports, window):
    """The page's sqlite3 commands, its two .import lines pointed at
    imports (the first a file, the second a '|zcat FILE' command), its
    window set to window (None: the line left out, as the page says)."""
    m = re.search(r"```sh\nsqlite3 cef-results\.db <<'EOF'\n(.*?)\nEOF\n```",
                  doc_section(), re.S)
    assert m, "docs/report.md lost its sqlite3 commands"
    lines, n = [], 0
    for line in m.group(1).splitlines():
        if line.startswith(".import "):
            assert re.fullmatch(r"\.import ('\|zcat )?\S+'? log", line), line
            lines.append(line.split(" ", 1)[0] + " " + imports[n] + " log")
            n += 1
        elif line.startswith(".parameter set @window "):
            if window is not None:
                lines.append(".parameter set @window %d" % window)
        elif line.startswith(".read "):
            assert line == ".read docs/report.sql", line
            lines.append(".read %s" % SQL)
        else:
            lines.append(line)
    assert n == len(imports)
    return "\n".join(lines) + "\n"


def sql_tests(db, imports, window=None):
    """{(experiment, salt, rules, goal, metric): stats object} by sqlite3."""
    p = subprocess.run(["sqlite3", str(db)],
                       input=doc_load_script(imports, window),
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and not p.stderr, p.stderr
    out = {}
    for row in p.stdout.splitlines():
        experiment, salt, rules, goal, metric, stats = row.split("\t")
        out[(experiment, salt, rules[:12], goal, metric)] = json.loads(stats)
    return out


def report(*args, stdin=None):
    p = subprocess.run([str(CEF_REPORT), *map(str, args)], input=stdin,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return [json.loads(line) for line in p.stdout.splitlines()]


def same(a, b, rel=1e-9):
    if a is None or b is None:
        return a is b
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y, rel) for x, y in
                                        zip(a, b))
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


RESULT_KEYS = ("relative", "absolute", "bayes", "note", "mean")


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    d = tmp_path_factory.mktemp("report-sql")
    imps, goals = report_logs.synthetic()
    imp = d / "cef_impressions.log"
    imp.write_text("\n".join(imps) + "\n")
    goal = d / "cef_goals.log.1.gz"
    with gzip.open(goal, "wt") as f:
        f.write("\n".join(goals) + "\n")
    return d, imp, goal


@pytest.mark.parametrize("window", [None, WINDOW])
def test_sql_counts_what_cef_report_counts(logs, window):
    d, imp, goal = logs
    sql = sql_tests(d / ("w%s.db" % window), [str(imp), "'|zcat %s'" % goal],
                    window)
    args = ["--json", imp, goal]
    if window is not None:
        args[1:1] = ["--window", "%ds" % window]
    tool = {(t["experiment"], t["salt"], t["rules"][:12], t["goal"],
             t["metric"]): t for t in report(*args)}

    # both see every test: 4 experiments in one rule set, 1 in the other,
    # x purchase (binomial, mean) and signup (binomial)
    assert sorted(sql) == sorted(tool)
    assert len(sql) == 15

    for key, stats in sql.items():
        t = tool[key]
        assert [a["name"] for a in stats["arms"]] == \
            [a["name"] for a in t["arms"]], key
        for a, b in zip(stats["arms"], t["arms"]):
            assert a["n"] == b["n"], (key, a, b)
            assert same(a["sum"], b["sum"]), (key, a, b)

        # the statistics from the SQL's counts are the report's
        s = report("stats", "--json", "-", stdin=json.dumps(stats))[0]
        assert same(s["srm_p"], t["srm_p"]), key
        for a, b in zip(s["arms"], t["arms"]):
            for k in RESULT_KEYS:
                x, y = a.get(k), b.get(k)
                if isinstance(x, dict):
                    for m in x:
                        assert same(x[m], y[m]), (key, a["name"], k, m)
                elif isinstance(x, str) or x is None:
                    assert x == y, (key, a["name"], k)
                else:
                    assert same(x, y), (key, a["name"], k)


def test_the_edge_cases_are_in_the_logs(logs):
    """The comparison above means something only if the logs hold the
    cases: an arm without visitors, one of weight 0, a window that drops
    conversions, conversions before exposure."""
    d, imp, goal = logs
    full = sql_tests(d / "edge.db", [str(imp), "'|zcat %s'" % goal])
    short = sql_tests(d / "edge-w.db", [str(imp), "'|zcat %s'" % goal],
                      WINDOW)
    tiny = [v for k, v in full.items() if k[0] == "tiny"][0]
    assert {a["name"]: (a["n"], a["weight"]) for a in tiny["arms"]} == \
        {"control": (2, 0.5), "b": (0, 0.5), "off": (0, 0.0)}
    key = [k for k in full if k[0] == "hero-q4" and k[3] == "purchase"
           and k[4] == "binomial"][0]
    assert sum(a["sum"] for a in short[key]["arms"]) < \
        sum(a["sum"] for a in full[key]["arms"])
    # two rule-set versions of hero-q4, kept apart
    assert len({k[1:3] for k in full if k[0] == "hero-q4"}) == 2
    # an arm the split does not name: no weights, no SRM check
    stray = [v for k, v in full.items() if k[0] == "stray"][0]
    assert [a["name"] for a in stray["arms"]] == ["a", "b", "c"]
    assert not any("weight" in a for a in stray["arms"])
    assert stray["arms"][2]["n"] > 0


def test_the_page_quotes_the_file():
    block = re.search(r"```sql\n(.*?)```", doc_section(), re.S)
    assert block, "docs/report.md lost the query"
    assert block.group(1) == SQL.read_text()
