# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""Rule plugins through nginx: holdout and experiment bucketing (the same
buckets Python computes from the documented hash), frequency caps in a
signed cookie that round-trips (the (N+1)-th impression is suppressed, a
tampered cookie counts nothing), plugin configuration errors at nginx -t
with FILE:LINE:COL, and the example external plugin loaded with
cef_plugin (plus every way loading one fails)."""

import base64
import hashlib
import os
import re
import time

from conftest import BUILD
from cef_fixtures import state_cookie, write_secret
from client import request

SIGN = b"plugins-signing-secret"
MARGIN_SO = BUILD / "plugins" / "margin_rank.so"
FIXTURES = BUILD / "plugins" / "test"

PAGE = (b"<html><body>\n"
        b"<!--cef:slot hero--><h1>default hero</h1><!--/cef:slot-->\n"
        b"<!--cef:slot side--><p>default side</p><!--/cef:slot-->\n"
        b"</body></html>\n")

RULES = """\
version: 1
offers:
  winback:
    slot: hero
    html: '<b>winback offer</b>'
    campaign: winback
  newsletter:
    slot: side
    html: '<i>newsletter</i>'
rules:
  - name: everyone
    show: [winback, newsletter]
slots:
  hero:
    holdout: 50%
plugins:
  freqcap:
    caps:
      - {campaign: winback, max: 2, per: 1h}
"""

CONF = """
    server {
        listen 127.0.0.1:@PORT@;
        root @PREFIX@/html;

        cef on;
        cef_rules @PREFIX@/rules.yaml;
        cef_signing_secret @PREFIX@/signing.secret;
        cef_visitor_cookie vid;

        location = /decision {
            return 200 "$cef_rules_decision";
        }
        location /budget/ {
            cef_budget 1us;
            alias @PREFIX@/html/;
        }
    }
"""


# --- the documented bucketing, independently ------------------------------

def fnv_fmix(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    h ^= h >> 33
    h = (h * 0xff51afd7ed558ccd) & 0xFFFFFFFFFFFFFFFF
    h ^= h >> 33
    h = (h * 0xc4ceb9fe1a85ec53) & 0xFFFFFFFFFFFFFFFF
    h ^= h >> 33
    return h


def bucket(salt, visitor):
    h = fnv_fmix(salt.encode() + b"\0" + visitor.encode()) >> 32
    return (h * 10000) >> 32


def visitor_id(i):
    return base64.urlsafe_b64encode(
        hashlib.sha256(b"v%d" % i).digest()[:16]).rstrip(b"=").decode()


def caps_sig(state):
    return state_cookie(SIGN, "freqcap", state).rsplit(".", 1)[1]


def start(nginx, rules=RULES, conf=CONF):
    inst = nginx.prepare(conf)
    (inst.prefix / "html").mkdir(exist_ok=True)
    (inst.prefix / "html" / "index.html").write_bytes(PAGE)
    (inst.prefix / "rules.yaml").write_text(rules)
    write_secret(inst.prefix / "signing.secret", SIGN + b"\n")
    return inst


def set_cookies(headers):
    return [c for c in headers.get("set-cookie", "").split("\n") if c]


def caps_cookie(headers):
    for c in set_cookies(headers):
        if c.startswith("cef_freqcap="):
            return c.split(";")[0].split("=", 1)[1], c
    return None, None


# --- holdout --------------------------------------------------------------

def test_holdout_gets_default_content_and_records_would_have(nginx):
    inst = start(nginx, rules=RULES.replace("plugins:\n  freqcap:\n    caps:"
                                            "\n      - {campaign: winback, "
                                            "max: 2, per: 1h}\n", "")).start()
    control = treated = 0

    for i in range(60):
        vid = visitor_id(i)
        b = bucket("hero", vid)      # no experiment name: the slot's name
        status, headers, body = request(inst, "/index.html",
                                        headers={"Cookie": "vid=" + vid})
        assert status == 200
        _, _, log = request(inst, "/decision",
                            headers={"Cookie": "vid=" + vid})
        log = log.decode()

        # the side slot is not in the experiment
        assert b"<i>newsletter</i>" in body
        assert "side=newsletter/everyone/priority" in log

        if b < 5000:
            control += 1
            assert b"<h1>default hero</h1>" in body
            assert b"winback offer" not in body
            assert ("hero=-/-/experiment:control:%d:would=winback" % b) \
                in log, log
        else:
            treated += 1
            assert b"<b>winback offer</b>" in body
            assert ("hero=winback/everyone/experiment:treatment:%d" % b) \
                in log, log

        # sticky: the same visitor, the same group
        _, _, again = request(inst, "/index.html",
                              headers={"Cookie": "vid=" + vid})
        assert again == body

    assert control > 10 and treated > 10


def test_experiment_arms_follow_the_documented_hash(nginx):
    rules = """\
version: 1
offers:
  winback: {slot: hero, html: '<b>winback offer</b>'}
  alt: {slot: hero, html: '<b>alternative</b>'}
rules:
  - {name: everyone, show: winback, priority: 2}
  - {name: alt, show: alt}
slots:
  hero:
    experiment:
      name: hero-q4
      variants: {a: 30, b: {weight: 70, offers: [alt]}}
"""
    inst = start(nginx, rules=rules).start()
    seen = set()

    for i in range(40):
        vid = visitor_id(i)
        b = bucket("hero-q4", vid)
        arm = "a" if b < 3000 else "b"
        _, _, body = request(inst, "/index.html",
                             headers={"Cookie": "vid=" + vid})
        _, _, log = request(inst, "/decision",
                            headers={"Cookie": "vid=" + vid})
        seen.add(arm)
        assert (":%s:%d" % (arm, b)) in log.decode(), log

        if arm == "a":
            assert b"<b>winback offer</b>" in body
        else:
            assert b"<b>alternative</b>" in body

    assert seen == {"a", "b"}


# --- frequency caps -------------------------------------------------------

def test_caps_cookie_round_trips_and_suppresses(nginx):
    inst = start(nginx, rules=RULES.replace("    holdout: 50%\n",
                                            "    strategy: priority\n"))
    inst.start()
    vid = visitor_id(1)

    # first impression: the cookie says so, signed
    _, h, body = request(inst, "/index.html", headers={"Cookie": "vid=" + vid})
    assert b"<b>winback offer</b>" in body
    value, raw = caps_cookie(h)
    assert value is not None, h
    state, sig = value.rsplit(".", 1)
    assert re.fullmatch(r"winback:1:\d+", state), state
    assert sig == caps_sig(state)
    assert "HttpOnly" in raw and "Max-Age=3600" in raw and "Path=/" in raw

    # second: count 2
    _, h, body = request(inst, "/index.html",
                         headers={"Cookie": "vid=%s; cef_freqcap=%s"
                                  % (vid, value)})
    assert b"<b>winback offer</b>" in body
    value2, _ = caps_cookie(h)
    assert value2.startswith("winback:2:" + state.split(":")[2] + ".")

    # third: capped, the default content, no new impression (no cookie)
    _, h, body = request(inst, "/index.html",
                         headers={"Cookie": "vid=%s; cef_freqcap=%s"
                                  % (vid, value2)})
    assert b"<h1>default hero</h1>" in body
    assert b"winback offer" not in body
    assert b"<i>newsletter</i>" in body
    assert caps_cookie(h)[0] is None

    # a tampered cookie counts as no impressions
    forged = value2.replace("winback:2:", "winback:1:")
    _, h, body = request(inst, "/index.html",
                         headers={"Cookie": "vid=%s; cef_freqcap=%s"
                                  % (vid, forged)})
    assert b"<b>winback offer</b>" in body
    assert caps_cookie(h)[0].startswith("winback:1:")
    assert "invalid \"cef_freqcap\" cookie" in inst.log_text()


def test_caps_count_only_what_is_shown(nginx):
    inst = start(nginx, rules=RULES.replace("    holdout: 50%\n",
                                            "    strategy: priority\n"))
    inst.start()

    # over cef_budget the generic page goes out: no impression, no cookie
    _, h, body = request(inst, "/budget/index.html",
                         headers={"Cookie": "vid=" + visitor_id(4)})
    assert b"<h1>default hero</h1>" in body
    assert caps_cookie(h)[0] is None

    # holdout visitors see nothing, so count nothing
    inst2 = start(nginx).start()
    for i in range(30):
        vid = visitor_id(100 + i)
        _, h, body = request(inst2, "/index.html",
                             headers={"Cookie": "vid=" + vid})
        if bucket("hero", vid) < 5000:
            assert b"winback offer" not in body
            assert caps_cookie(h)[0] is None
        else:
            assert b"<b>winback offer</b>" in body
            assert caps_cookie(h)[0].startswith("winback:1:")


def test_caps_a_window_from_the_past_has_expired(nginx):
    inst = start(nginx, rules=RULES.replace("    holdout: 50%\n",
                                            "    strategy: priority\n"))
    inst.start()
    old = "winback:2:1000000000"          # 2001: far outside 1h
    cookie = "%s.%s" % (old, caps_sig(old))
    _, h, body = request(inst, "/index.html",
                         headers={"Cookie": "vid=%s; cef_freqcap=%s"
                                  % (visitor_id(2), cookie)})
    assert b"<b>winback offer</b>" in body
    assert re.match(r"winback:1:\d+\.", caps_cookie(h)[0])


# --- configuration errors at nginx -t -------------------------------------

def test_plugin_configuration_errors_at_nginx_t(nginx):
    cases = [
        ("    holdout: 50%\n", "    holdout: 150%\n",
         r":15:14: experiment: holdout must be a percentage from 0% to "
         r"100%, not '150%'"),
        ("    holdout: 50%\n",
         "    experiment: {name: x, variants: {a: 60, b: 60}}\n",
         r":15:37: experiment: variant weights must sum to 100, not 120"),
        ("    holdout: 50%\n", "    strategy: weigthed\n",
         r":15:15: unknown strategy 'weigthed' \(did you mean 'weighted'\?\)"),
        ("campaign: winback, max: 2", "campaign: winbak, max: 2",
         r":19:20: freqcap: no offer has campaign 'winbak'"),
    ]

    for old, new, want in cases:
        inst = start(nginx, rules=RULES.replace(old, new))
        inst.expect_bad_log = True
        rc, out = inst.test_config()
        assert rc != 0
        assert re.search(r"\[emerg\].*cef_rules: " +
                         re.escape(str(inst.prefix / "rules.yaml")) + want,
                         out), out


# --- an external plugin --------------------------------------------------

EXTERNAL = """\
version: 1
offers:
  winback: {slot: hero, html: '<b>winback</b>', value: 30, cost: 5}
  boots: {slot: hero, html: '<b>boots, margin 70</b>', margin: 70}
  newsletter: {slot: side, html: '<i>newsletter</i>'}
rules:
  - {name: everyone, show: [winback, newsletter]}
  - {name: cold, when: 'season() != ""', show: boots}
slots:
  hero: {strategy: margin_rank, min_margin: 10}
"""

PLUGIN_CONF = "    cef_plugin margin_rank %s;\n" % MARGIN_SO + CONF


def test_external_plugin(nginx):
    inst = start(nginx, rules=EXTERNAL, conf=PLUGIN_CONF).start()
    _, _, body = request(inst, "/index.html",
                         headers={"Cookie": "vid=" + visitor_id(3)})
    assert b"<b>boots, margin 70</b>" in body
    _, _, log = request(inst, "/decision",
                        headers={"Cookie": "vid=" + visitor_id(3)})
    assert "hero=boots/cold/margin_rank" in log.decode()


def test_external_plugin_survives_reload(nginx):
    """A reload opens the plugin again (new configuration, new plugin set)
    and closes the old one after the old rule sets are gone."""
    inst = start(nginx, rules=EXTERNAL, conf=PLUGIN_CONF).start()
    inst.reload()
    _, _, body = request(inst, "/index.html",
                         headers={"Cookie": "vid=" + visitor_id(3)})
    assert b"<b>boots, margin 70</b>" in body
    inst.reload()
    _, _, log = request(inst, "/decision",
                        headers={"Cookie": "vid=" + visitor_id(3)})
    assert "hero=boots/cold/margin_rank" in log.decode()


def test_external_plugin_refusals_at_nginx_t(nginx):
    # without cef_plugin the rule file does not compile
    inst = start(nginx, rules=EXTERNAL)
    inst.expect_bad_log = True
    rc, out = inst.test_config()
    assert rc != 0
    assert "unknown key 'margin' in offer 'boots'" in out, out

    cases = [
        ("margin_rank", FIXTURES / "bad_abi.so",
         r"cef_plugin: plugin \"margin_rank\" was built for ABI version 3, "
         r"this module has versions 1 to 2"),
        ("margin_rank", FIXTURES / "no_entry.so",
         r"cef_plugin: \".*no_entry\.so\" has no cef_plugin_entry\(\) entry "
         r"point"),
        ("weighted", FIXTURES / "clash.so",
         r"cef_plugin: a plugin named \"weighted\" is already loaded"),
        ("margin", MARGIN_SO,
         r"cef_plugin: the plugin is named \"margin_rank\", not \"margin\""),
        ("margin_rank", BUILD / "plugins" / "missing.so",
         r"cef_plugin: cannot load \".*missing\.so\": "),
    ]

    for name, path, want in cases:
        inst = start(nginx, rules=RULES,
                     conf="    cef_plugin %s %s;\n" % (name, path) + CONF)
        inst.expect_bad_log = True
        rc, out = inst.test_config()
        assert rc != 0
        assert re.search(r"\[emerg\].*" + want + r".* in .*nginx\.conf:\d+",
                         out), out

    # the same plugin twice
    inst = start(nginx, rules=EXTERNAL,
                 conf="    cef_plugin margin_rank %s;\n" % MARGIN_SO
                 + PLUGIN_CONF)
    inst.expect_bad_log = True
    rc, out = inst.test_config()
    assert rc != 0
    assert "a plugin named \"margin_rank\" is already loaded" in out, out


def test_a_failing_strategy_degrades_to_default_content(nginx):
    rules = RULES.replace("    holdout: 50%\n", "    strategy: failing\n")
    inst = start(nginx, rules=rules,
                 conf="    cef_plugin failing %s;\n"
                 % (FIXTURES / "failing.so") + CONF).start()

    t0 = time.monotonic()

    for vid in [visitor_id(5), "E" + visitor_id(6)[1:], visitor_id(7)] * 4:
        status, _, body = request(inst, "/index.html",
                                  headers={"Cookie": "vid=" + vid})
        assert status == 200
        assert b"<h1>default hero</h1>" in body      # the failing slot
        assert b"<i>newsletter</i>" in body          # the others are fine
        _, _, log = request(inst, "/decision",
                            headers={"Cookie": "vid=" + vid})
        assert "hero=-/-/failing:failed" in log.decode()

    errors = [line for line in inst.log_text().splitlines()
              if "rule plugin \"failing\" failed in select" in line]
    assert errors and "[error]" in errors[0]
    # rate-limited: at most one line per second per worker (24 failures)
    assert len(errors) <= 2 * (int(time.monotonic() - t0) + 2), errors
    assert set(inst.worker_pids())            # the workers are alive
