# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""The bandit strategy through real nginx (issue 19): arms drawn for new
visitors, kept in the signed cef_bandit cookie, the decision record's
additions (split, weights_version, sticky), $cef_goal's arm equal to the
decided one (the kept one for a returning visitor), and configuration
mistakes at nginx -t with file:line:col."""

import base64
import json
import re
import time

import pytest

from cef_fixtures import load_store, write_secret
from client import request

SIGN = b"bandit-signing-secret"
STORE_SECRET = b"bandit-store-secret"

RULES = """\
version: 1
offers:
  ha: {slot: hero, html: '<b>arm-A</b>'}
  hb: {slot: hero, html: '<b>arm-B</b>'}
  hc: {slot: hero, html: '<b>arm-C</b>'}
rules:
  - {name: a, show: ha}
  - {name: b, show: hb}
  - {name: c, show: hc}
slots:
  hero:
    strategy: bandit
    goal: purchase
    experiment: hero-bandit
goals:
  purchase: {}
"""

CONF = """
    log_format cef_impressions escape=json '{"decision":"$cef_decision"}';
    log_format cef_goals escape=json '{"goal":"$cef_goal"}';

    cef_store @PREFIX@/store;
    cef_store_secret @PREFIX@/store.secret;

    server {
        listen 127.0.0.1:@PORT@;
        root @PREFIX@/html;

        cef on;
        cef_rules @PREFIX@/rules.yaml;
        cef_signing_secret @PREFIX@/signing.secret;
        cef_visitor_cookie vid;

        access_log @PREFIX@/impressions.log cef_impressions if=$cef_decision;
        access_log @PREFIX@/goals.log cef_goals if=$cef_goal;

        location = /beacon/purchase {
            cef_goal purchase;
            return 204;
        }
    }
"""

PAGE = b"<html><body><!--cef:slot hero--><h1>Sale</h1><!--/cef:slot-->" \
       b"</body></html>"

ARM_OF = {b"arm-A": "ha", b"arm-B": "hb", b"arm-C": "hc"}


def vid_of(n):
    return base64.urlsafe_b64encode(b"bndt-visit-%05d" % n).rstrip(b"=")\
        .decode()


@pytest.fixture
def shop(nginx):
    inst = nginx.prepare(CONF)
    write_secret(inst.prefix / "store.secret", STORE_SECRET)
    write_secret(inst.prefix / "signing.secret", SIGN)
    (inst.prefix / "rules.yaml").write_text(RULES)
    (inst.prefix / "html" / "page.html").write_bytes(PAGE)
    load_store(inst.prefix / "store", inst.prefix / "store.secret")
    return inst.start()


def shown(body):
    arms = [a for marker, a in ARM_OF.items() if marker in body]
    assert len(arms) == 1, body
    return arms[0]


def bandit_cookie(headers):
    for line in headers.get("set-cookie", "").split("\n"):
        m = re.match(r"cef_bandit=([^;]+);", line)
        if m:
            return m.group(1)
    return None


def visit(inst, n, cookie=None):
    c = "vid=" + vid_of(n) + ("; cef_bandit=" + cookie if cookie else "")
    status, headers, body = request(inst, "/page.html",
                                    headers={"Cookie": c})
    assert status == 200
    return shown(body), bandit_cookie(headers)


def records(inst, name, key, n, timeout=30):
    path = inst.prefix / name
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        if path.exists():
            lines = path.read_text().splitlines()
            if len(lines) >= n:
                return [json.loads(json.loads(line)[key]) for line in lines]
        time.sleep(0.05)
    raise AssertionError("%d of %d lines in %s" % (len(lines), n, name))


def test_new_visitors_draw_returning_ones_keep_their_arm(shop):
    """300 new visitors are drawn uniformly (nothing published yet) and get
    the signed cef_bandit cookie; each returns with it and sees the same
    arm, with no new cookie; the records say so."""
    n = 300
    first, cookies = {}, {}
    for i in range(n):
        arm, cookie = visit(shop, i)
        assert cookie is not None and re.fullmatch(
            r"[0-9a-f]{8}\.[0-9a-f]{8}\.[A-Za-z0-9_-]+", cookie), cookie
        first[i], cookies[i] = arm, cookie

    counts = {a: list(first.values()).count(a) for a in ("ha", "hb", "hc")}
    # uniform: 100 each; 4 sigma of binomial(300, 1/3) is ~33
    assert all(60 < c < 140 for c in counts.values()), counts

    for i in range(n):
        arm, cookie = visit(shop, i, cookies[i])
        assert arm == first[i]
        assert cookie is None                   # nothing to rewrite

    recs = records(shop, "impressions.log", "decision", 2 * n)
    by_visitor = {}
    for r in recs:
        by_visitor.setdefault(r["visitor"], []).append(r["slots"]["hero"])

    for i in range(n):
        new, back = by_visitor[vid_of(i)]
        for s in (new, back):
            assert s["plugin"] == "bandit"
            assert s["variant"] == first[i]
            assert s["experiment"] == "hero-bandit"
            assert s["salt"] == "hero-bandit"
            assert s["weights_version"] == 0
            assert s["split"] == {"ha": 3334, "hb": 3333, "hc": 3333}
            assert "redrawn" not in s
        assert new["sticky"] is False
        assert back["sticky"] is True


def test_a_forged_cookie_is_no_assignment(shop):
    arm, cookie = visit(shop, 1)
    forged = cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")
    again, cookie2 = visit(shop, 1, forged)
    assert again == arm                  # the same draw: same weights
    assert cookie2 is not None           # a new assignment, signed again
    recs = records(shop, "impressions.log", "decision", 2)
    assert [r["slots"]["hero"]["sticky"] for r in recs] == [False, False]


def test_goal_records_carry_the_arm_shown(shop):
    """$cef_goal's arm is the decided one; for a returning visitor the
    one in the cookie."""
    n = 60
    cookies, arms = {}, {}
    for i in range(n):
        arms[i], cookies[i] = visit(shop, i)

    for i in range(n):
        status, _, _ = request(shop, "/beacon/purchase", headers={
            "Cookie": "vid=%s; cef_bandit=%s" % (vid_of(i), cookies[i])})
        assert status == 204

    goals = records(shop, "goals.log", "goal", n)
    for g in goals:
        i = [k for k in range(n) if vid_of(k) == g["visitor"]][0]
        assert g["arms"] == {"hero-bandit": {"salt": "hero-bandit",
                                             "arm": arms[i]}}


@pytest.mark.parametrize("slot,where,message", [
    ("{strategy: bandit, goal: purchse}", "rules.yaml:11:34",
     "goal 'purchse' is not declared under goals:"),
    ("{strategy: bandit, goal: purchase, metric: value}", "rules.yaml:11:52",
     "metric: value needs a goal with a value"),
    ("{strategy: bandit}", "rules.yaml:11:9",
     "a bandit needs goal:"),
])
def test_configuration_errors_fail_nginx_t(nginx, slot, where, message):
    inst = nginx.prepare(CONF)
    inst.expect_bad_log = True
    write_secret(inst.prefix / "store.secret", STORE_SECRET)
    write_secret(inst.prefix / "signing.secret", SIGN)
    rules = RULES.replace("""  hero:
    strategy: bandit
    goal: purchase
    experiment: hero-bandit
""", "  hero: %s\n" % slot)
    (inst.prefix / "rules.yaml").write_text(rules)
    load_store(inst.prefix / "store", inst.prefix / "store.secret")
    rc, out = inst.test_config()
    assert rc != 0
    assert where in out and message in out, out
