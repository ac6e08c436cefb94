# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""cef-rules: exit codes and messages of check, test and explain."""

import json
import os
import pathlib
import subprocess

REPO = pathlib.Path(__file__).resolve().parents[2]
TOOL = REPO / "build" / "cef-rules"
FIX = REPO / "tests" / "rules"
EXAMPLES = REPO / "rules" / "examples"


def run(*args):
    p = subprocess.run([str(TOOL), *map(str, args)], capture_output=True,
                       text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def test_check_accepts_good_files():
    rc, out, err = run("check", FIX / "good.yaml", EXAMPLES / "webshop.yaml")
    assert (rc, out) == (0, ""), err


def test_check_lists_every_problem_with_its_position():
    rc, out, _ = run("check", FIX / "good.yaml", FIX / "broken.yaml")
    assert rc == 1
    f = str(FIX / "broken.yaml")
    assert out.splitlines() == [
        f + ":7:5: unknown key 'slott' in offer 'nohtml' "
            "(did you mean 'slot'?)",
        f + ":6:3: offer 'nohtml' has no slot (add slot: NAME)",
        f + ":6:3: offer 'nohtml' has no html",
        f + ":10:57: in when: type error: '>' needs numbers, not a string",
        f + ":15:5: unknown key 'priorty' in rule #2 "
            "(did you mean 'priority'?)",
        f + ":14:11: rule 'typo' shows unknown offer 'gold-perk' "
            "(did you mean 'gold-perks'?)",
        f + ":16:11: duplicate rule name 'gold tier'",
        f + ":17:32: in when: invalid regex: missing closing parenthesis "
            "at pattern offset 6",
    ]


def test_check_invalid_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\noffers: {a: [}\n")
    rc, out, _ = run("check", bad, tmp_path / "missing.yaml")
    assert rc == 1
    lines = out.splitlines()
    assert lines[0].startswith(str(bad) + ":2:")
    assert "invalid YAML" in lines[0]
    assert lines[1].startswith(str(tmp_path / "missing.yaml")
                               + ": cannot open: ")


def test_check_rejects_files_over_16_mib(tmp_path):
    big = tmp_path / "big.yaml"
    with open(big, "wb") as f:
        f.truncate(16 * 1024 * 1024 + 1)
    rc, out, _ = run("check", big)
    assert rc == 1
    assert out == "%s:1:1: file is larger than 16 MiB (16777217 bytes)\n" % big


def test_usage_errors_exit_2():
    assert run()[0] == 2
    assert run("check")[0] == 2
    assert run("frobnicate")[0] == 2
    assert run("test", FIX / "good.yaml")[0] == 2
    assert run("explain", FIX / "good.yaml", "--bogus", "x")[0] == 2
    assert run("explain", FIX / "good.yaml", "--attrs", "{nope")[0] == 2
    assert run("explain", FIX / "good.yaml", "--set", "nopath")[0] == 2
    assert run("--version")[0] == 0


def test_test_passes_and_fails_with_a_diff():
    rc, out, _ = run("test", FIX / "good.yaml", FIX / "good.cases.yaml")
    assert rc == 0, out
    assert out.endswith("2 passed, 0 failed\n")

    rc, out, _ = run("test", FIX / "good.yaml", FIX / "wrong.cases.yaml")
    assert rc == 1
    assert ("FAIL gold expects the fallback (%s:2)\n"
            "  slot hero:\n"
            "    - expected fallback\n"
            "    + got      gold-perks (rule 'gold tier')\n"
            % (FIX / "wrong.cases.yaml")) in out
    assert out.endswith("1 passed, 1 failed\n")


def test_test_reports_broken_cases_and_broken_rules():
    rc, out, _ = run("test", FIX / "good.yaml", FIX / "typo.cases.yaml")
    assert rc == 1
    assert ("%s:3:5: unknown key 'profil' in a case (did you mean "
            "'profile'?)" % (FIX / "typo.cases.yaml")) in out

    rc, out, _ = run("test", FIX / "broken.yaml", FIX / "good.cases.yaml")
    assert rc == 1
    assert "broken.yaml:7:5: unknown key 'slott'" in out


def test_webshop_example_cases():
    rc, out, _ = run("test", EXAMPLES / "webshop.yaml",
                     EXAMPLES / "webshop.cases.yaml")
    assert rc == 0, out
    assert "0 failed" in out


def test_explain_says_why(tmp_path):
    attrs = {"clv": 320, "churn_risk": 0.9, "first_name": "<Ann>",
             "segments": ["gold"]}
    rc, out, err = run("explain", EXAMPLES / "webshop.yaml",
                       "--attrs", json.dumps(attrs),
                       "--set", "request.path=/products/boots",
                       "--set", "var.geoip2_country_code=DE",
                       "--now", "2026-11-23T12:30:00Z")
    assert rc == 0, err
    assert ("no    'win back high-value churners' (priority 90, line 76): "
            "profile.clv >= 500 is false (profile.clv is 320)") in out
    assert "MATCH 'gold tier' (priority 50, line 86)" in out
    assert "hero -> gold-perks: chosen" in out
    assert ("topbar -> dach-shipping: slot taken by rule "
            "'lunch flash sale'") in out
    assert "  hero: gold-perks (rule 'gold tier')" in out
    assert "  sidebar: none" in out

    # placeholders are HTML-escaped
    rc, out, _ = run("explain", EXAMPLES / "webshop.yaml",
                     "--attrs", json.dumps(attrs),
                     "--set", "profile.churn_risk=0.9",
                     "--set", "profile.clv=900",
                     "--now", "2026-11-23T10:00:00Z")
    assert rc == 0
    assert "We miss you, &lt;Ann&gt;! 10% off" in out

    # a persona from a cases file
    rc, out, _ = run("explain", FIX / "good.yaml", "--case",
                     FIX / "good.cases.yaml", "gold")
    assert rc == 0
    assert "hero: gold-perks (rule 'gold tier')" in out
    assert "Gold members ship free, friend" in out


def test_explain_reads_a_visitor_from_the_store(tmp_path):
    from cef_fixtures import load_store, write_secret

    secret = write_secret(tmp_path / "store.secret", b"s3cret-for-rules\n")
    store = tmp_path / "store"
    load_store(store, secret)

    rc, out, err = run("explain", EXAMPLES / "webshop.yaml",
                       "--store", store, "--secret", secret,
                       "--key", "customer:1002",
                       "--set", "request.path=/products/boots",
                       "--now", "2026-11-23T10:00:00Z")
    assert rc == 0, err
    assert "profile.churn_risk = 0.85" in out
    assert 'profile.segments = ["silver"]' in out
    assert 'visitor.key_type = "customer"' in out
    assert ("MATCH 'win back high-value churners' (priority 90, line 76): "
            "profile.churn_risk >= 0.7 and profile.clv >= 500 is true") in out
    assert "hero: winback10 (rule 'win back high-value churners')" in out
    assert "We miss you, Chris! 10% off" in out

    # stored HTML-ish attributes are escaped in the offer
    rc, out, _ = run("explain", FIX / "good.yaml", "--store", store,
                     "--secret", secret, "--key", "customer:1003",
                     "--set", 'profile.segments=["gold"]')
    assert rc == 0
    assert "Gold members ship free, &lt;script&gt;alert(1)&lt;/script&gt;" \
        in out

    # --set overrides stored attributes ("what if")
    rc, out, _ = run("explain", EXAMPLES / "webshop.yaml",
                     "--store", store, "--secret", secret,
                     "--key", "customer:1002", "--set", "profile.clv=100",
                     "--now", "2026-11-23T10:00:00Z")
    assert rc == 0
    assert "profile.clv = 800  (stored, overridden by --set)" in out
    assert "profile.clv >= 500 is false (profile.clv is 100)" in out
    assert "hero: winback10" not in out

    rc, _, err = run("explain", FIX / "good.yaml", "--store", store,
                     "--secret", secret, "--key", "customer:9999")
    assert rc == 1
    assert 'no profile for key "customer:9999"' in err

    other = write_secret(tmp_path / "other.secret", b"another secret\n")
    rc, _, err = run("explain", FIX / "good.yaml", "--store", store,
                     "--secret", other, "--key", "customer:1002")
    assert rc == 1
    assert "not the one the store was loaded with" in err

    rc, _, err = run("explain", FIX / "good.yaml", "--store", store,
                     "--key", "customer:1002")
    assert rc == 2
    rc, _, err = run("explain", FIX / "good.yaml", "--store", store,
                     "--secret", secret, "--key", "nocolon")
    assert rc == 2


# --- issue 16: the whole truth ----------------------------------------------

THREE_PROBLEMS = """\
version: 1
offers:
  a:
    slot: hero
    html: '<b>A</b>'
    campaign: winback
    starts: 2026-12-01
    ends: 2026-11-01
rules:
  - {name: r, show: a}
slots:
  hero:
    holdout: 120%
plugins:
  freqcap:
    caps:
      - {campaign: nosuch, max: 3, per: 7d}
"""


def test_check_reports_independent_problems_in_one_run(tmp_path):
    """An offer problem no longer hides the slots:/plugins: problems."""
    f = tmp_path / "three.yaml"
    f.write_text(THREE_PROBLEMS)
    rc, out, _ = run("check", f)
    assert rc == 1
    assert out.splitlines() == [
        "%s:8:11: offer 'a' ends before it starts" % f,
        "%s:13:14: experiment: holdout must be a percentage from 0%% to "
        "100%%, not '120%%'" % f,
        "%s:17:20: freqcap: no offer has campaign 'nosuch'" % f,
    ]


def test_check_names_the_plugin_once(tmp_path):
    f = tmp_path / "exp.yaml"
    f.write_text("version: 1\noffers:\n  a: {slot: hero, html: x}\n"
                 "rules:\n  - {name: r, show: a}\nslots:\n  hero:\n"
                 "    experiment: {name: e, variants: 3}\n")
    rc, out, _ = run("check", f)
    assert rc == 1
    assert out == ("%s:8:37: experiment: variants: must map arm names to "
                   "weights, e.g. {a: 50, b: 50}\n" % f)


def test_check_rejects_a_second_document(tmp_path):
    """The rules of a second YAML document were silently dropped."""
    f = tmp_path / "two.yaml"
    f.write_text("version: 1\noffers:\n  a: {slot: hero, html: x}\n"
                 "rules:\n  - {name: r, show: a}\n---\n"
                 "rules:\n  - {name: s, show: a}\n")
    rc, out, _ = run("check", f)
    assert rc == 1
    assert out == ("%s:6:1: a rule file holds one YAML document; a second "
                   "one starts here\n" % f)


def test_check_caps_nesting_and_refuses_alias_loops(tmp_path):
    deep = tmp_path / "deep.yaml"
    deep.write_text("version: 1\noffers:\n  a:\n    slot: hero\n"
                    "    html: x\n    description: " + "[" * 100000
                    + "]" * 100000 + "\nrules:\n  - {name: r, show: a}\n")
    rc, out, _ = run("check", deep)
    assert rc == 1
    # three mappings, then the 62nd '[' is level 65
    assert out == "%s:6:79: nested deeper than 64 levels\n" % deep

    loop = tmp_path / "loop.yaml"
    loop.write_text("version: 1\noffers:\n  a: {slot: hero, html: x}\n"
                    "rules:\n  - {name: r, show: a}\nplugins:\n"
                    "  freqcap: &x\n    caps: *x\n")
    rc, out, _ = run("check", loop)
    assert (rc, out) == (1, "%s:8:11: an alias may only stand for a scalar, "
                            "not a mapping\n" % loop)


def test_check_refuses_a_fifo_at_once(tmp_path):
    """Opening a FIFO for reading waits for a writer: check hung."""
    fifo = tmp_path / "rules.yaml"
    os.mkfifo(fifo)
    rc, out, _ = run("check", fifo)
    assert (rc, out) == (1, "%s: not a regular file\n" % fifo)

    rc, out, _ = run("test", FIX / "good.yaml", fifo)
    assert (rc, out) == (1, "%s: cannot open: not a regular file\n" % fifo)


VARS = """\
version: 1
offers:
  a: {slot: hero, html: '{{ var.Geo }} {{ var.host }}'}
rules:
  - name: r
    when: var.nope == "x" and var.arg_q == "1" and var.cap == "y"
    show: a
"""


def test_check_warns_about_every_variable_it_cannot_verify(tmp_path):
    f = tmp_path / "vars.yaml"
    f.write_text(VARS)
    rc, out, err = run("check", f)
    # nginx's own (host) and prefix variables (arg_q) are known
    assert (rc, out) == (0, "")
    assert [l.split(": warning: ")[0] + " " + l.split()[2]
            for l in err.splitlines()] == [
        "%s:3:29 var.geo" % f, "%s:6:11 var.nope" % f,
        "%s:6:52 var.cap" % f]
    assert "--nginx-conf FILE or --vars NAME" in err

    rc, out, err = run("check", "--vars", "nope,$geo, cap", f)
    assert (rc, out, err) == (0, "", "")

    rc, out, err = run("check", f, "--vars", "geo")
    assert rc == 1
    assert out.splitlines() == [
        '%s:6:11: unknown nginx variable "nope"' % f,
        '%s:6:52: unknown nginx variable "cap"' % f]
    assert err == ""


def test_check_reads_the_variables_an_nginx_configuration_defines(tmp_path):
    f = tmp_path / "vars.yaml"
    f.write_text(VARS)
    (tmp_path / "sites").mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text("""\
# set $nope 1;   (a comment defines nothing)
http {
    map $http_x $geo { default ""; }
    include sites/*.conf;
}
""")
    (tmp_path / "sites" / "shop.conf").write_text("""\
server {
    location ~ ^/(?<cap>[a-z]+)$ { return 200 "ok;{"; }
}
""")
    rc, out, err = run("check", "--nginx-conf", conf, f)
    assert rc == 1
    assert out == '%s:6:11: unknown nginx variable "nope"\n' % f
    assert err == ""

    (tmp_path / "sites" / "more.conf").write_text(
        "server { set_by_lua $unused 'return 1'; set $NoPe 1; }\n")
    assert run("check", "--nginx-conf", conf, f) == (0, "", "")

    rc, _, err = run("check", "--nginx-conf", tmp_path / "missing.conf", f)
    assert rc == 2
    assert "missing.conf: cannot open" in err


def test_test_rejects_a_cases_file_with_a_second_document(tmp_path):
    """The cases of a second document were never run: 1 passed, 0 failed."""
    cases = tmp_path / "two.cases.yaml"
    cases.write_text("cases:\n  - name: nobody\n    expect: {hero: fallback}\n"
                     "---\ncases:\n  - name: wrong\n"
                     "    expect: {hero: gold-perks}\n")
    rc, out, _ = run("test", FIX / "good.yaml", cases)
    assert (rc, out) == (1, "%s:4:1: a cases file holds one YAML document; "
                            "a second one starts here\n" % cases)
    rc, _, err = run("explain", FIX / "good.yaml", "--case", cases, "nobody")
    assert rc == 2
    assert "%s:4:1: a cases file holds one YAML document" % cases in err


def test_a_fifo_as_plugin_is_refused_at_once(tmp_path):
    """dlopen() of a FIFO waits for a writer, as open() does."""
    fifo = tmp_path / "plugin.so"
    os.mkfifo(fifo)
    rc, _, err = run("check", "--plugin", "x=%s" % fifo, FIX / "good.yaml")
    assert rc == 1
    assert err == ('cef-rules: --plugin: cannot load "%s": not a regular '
                   'file\n' % fifo)
