# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""cef-rules and rule plugins: check reports every plugin configuration
error at its FILE:LINE:COL, test and explain show strategy, variant, bucket
and the would-have-shown offer, --plugin loads an external plugin."""

import pathlib
import subprocess
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
TOOL = REPO / "build" / "cef-rules"
FIX = REPO / "tests" / "rules"
MARGIN = REPO / "build" / "plugins" / "margin_rank.so"


def run(*args):
    p = subprocess.run([str(TOOL), *map(str, args)], capture_output=True,
                       text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def test_check_reports_plugin_configuration_errors():
    rc, out, _ = run("check", FIX / "plugins_broken.yaml")
    assert rc == 1
    f = str(FIX / "plugins_broken.yaml")
    assert out.splitlines() == [
        f + ":13:43: experiment: variant weights must sum to 100, not 90",
        f + ":15:14: experiment: holdout must be a percentage from 0% to "
            "100%, not '150%'",
        f + ":17:15: unknown strategy 'weigthed' (did you mean "
            "'weighted'?)",
        f + ":19:5: value: p: must name the probability, e.g. p: "
            "profile.propensity",
        f + ":23:20: freqcap: no offer has campaign 'winbak'",
    ]


def test_check_accepts_plugins_and_test_passes():
    assert run("check", FIX / "plugins_good.yaml")[:2] == (0, "")
    rc, out, _ = run("test", FIX / "plugins_good.yaml",
                     FIX / "plugins_good.cases.yaml")
    assert rc == 0, out
    assert out.splitlines()[-1] == "5 passed, 0 failed"


def test_example_rule_file_with_plugins():
    ex = REPO / "rules" / "examples"
    assert run("check", ex / "experiments.yaml")[:2] == (0, "")
    rc, out, _ = run("test", ex / "experiments.yaml",
                     ex / "experiments.cases.yaml")
    assert rc == 0, out
    assert out.splitlines()[-1] == "7 passed, 0 failed"


def test_test_shows_variant_and_would_have(tmp_path):
    cases = tmp_path / "c.yaml"
    cases.write_text("now: 2026-11-23T09:00:00Z\n"
                     "cases:\n"
                     "  - name: wrong\n"
                     "    visitor_id: v-c3\n"
                     "    profile: {churn_risk: 0.9}\n"
                     "    expect: {hero: winback}\n")
    rc, out, _ = run("test", FIX / "plugins_good.yaml", cases)
    assert rc == 1
    assert ("    + got      none (strategy experiment, variant control, "
            "bucket 720, would have shown 'winback' (rule 'churners'))"
            in out.splitlines()), out


def test_expect_variant(tmp_path):
    cases = tmp_path / "v.yaml"
    cases.write_text("cases:\n"
                     "  - name: arm\n"
                     "    visitor_id: v-3\n"
                     "    expect: {hero: spring}\n"
                     "    expect_variant: {hero: b, side: none}\n"
                     "  - name: typo\n"
                     "    now: 2026-11-23T09:00:00Z\n"
                     "    expect: {side: newsletter}\n"
                     "    expect_variant: {heor: a}\n")
    rc, out, _ = run("test", FIX / "plugins_good.yaml", cases)
    assert rc == 1
    assert out.splitlines() == [
        "FAIL arm (%s:2)" % cases,
        "  slot hero variant:",
        "    - expected b",
        "    + got      a (strategy experiment, variant a, bucket 3695)",
        "%s:9:22: no offer in the rule file uses slot heor" % cases,
        "0 passed, 1 failed, and the cases file has problems",
    ]


def test_explain_shows_plugins_and_caps():
    now = int(time.time())
    rc, out, _ = run("explain", FIX / "plugins_good.yaml", "--set",
                     "profile.churn_risk=0.9", "--visitor", "v-3", "--now",
                     "2026-11-23T09:00:00Z")
    assert rc == 0
    assert ("  hero: winback (rule 'churners', strategy experiment, "
            "variant a, bucket 3695)") in out, out
    assert "state of freqcap after this decision: \"winback:1:" in out

    # three impressions already: capped
    rc, out, _ = run("explain", FIX / "plugins_good.yaml", "--set",
                     "profile.churn_risk=0.9", "--visitor", "v-3",
                     "--state", "freqcap=winback:3:%d" % (now - 60))
    assert rc == 0
    assert "hero -> winback: blocked by a plugin" in out, out
    assert "  hero: spring (rule 'everyone', strategy experiment" in out


def test_external_plugin_option(tmp_path):
    rules = tmp_path / "r.yaml"
    rules.write_text("version: 1\n"
                     "offers:\n"
                     "  boots: {slot: hero, html: B, margin: 70}\n"
                     "rules:\n"
                     "  - {name: cold, when: 'season() == \"autumn\"', "
                     "show: boots}\n"
                     "slots:\n"
                     "  hero: {strategy: margin_rank, min_margin: x}\n")
    rc, out, _ = run("check", rules)
    assert rc == 1 and "unknown key 'margin'" in out

    rc, out, _ = run("check", rules, "--plugin", "margin_rank=%s" % MARGIN)
    assert rc == 1
    assert out == ("%s:7:45: margin_rank: min_margin must be a number, not "
                   "'x'\n" % rules)

    rules.write_text(rules.read_text().replace("min_margin: x",
                                               "min_margin: 1"))
    rc, out, _ = run("explain", rules, "--plugin", "margin_rank=%s" % MARGIN,
                     "--now", "2026-11-23T09:00:00Z")
    assert rc == 0, out
    assert "hero: boots (rule 'cold', strategy margin_rank)" in out

    rc, _, err = run("check", rules, "--plugin", "x=/nonexistent.so")
    assert rc == 1 and "cannot load \"/nonexistent.so\"" in err
