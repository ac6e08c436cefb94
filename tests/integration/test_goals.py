# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""Goals at the edge through nginx: cef_goal on a proxied order
confirmation page (the value from the shop's X-Order-Total header, which
the client never sees), on beacons, with `once` in the signed cef_goals
cookie, consent, bad values, error statuses and anonymous visitors; the
$cef_goal record's arms equal the variants $cef_decision logged for the
same visitor; the goal metrics; and every configuration mistake at
nginx -t with the directive's file:line."""

import base64
import json
import re
import time

import pytest

from cef_fixtures import load_store, signed, state_cookie, write_secret
from client import request

SIGN = b"goals-signing-secret"
STORE_SECRET = b"goals-store-secret"

RULES = """\
version: 1
offers:
  hero-a: {slot: hero, html: '<b>hero A</b>'}
  hero-b: {slot: hero, html: '<b>hero B</b>'}
  side-hi: {slot: side, html: '<i>hi</i>'}
rules:
  - {name: everyone, show: [hero-a, side-hi]}
  - {name: alt, show: hero-b}
slots:
  hero:
    holdout: 10%
    experiment:
      name: hero-q4
      variants: {a: 50, b: {weight: 50, offers: [hero-b]}}
  side: {holdout: 30%}
goals:
  purchase: {min: 0, max: 10000}
  signup: {}
  newsletter: {}
"""

LOG_FORMATS = """
    log_format cef_impressions escape=json
        '{"time":"$time_iso8601","request_id":"$request_id","status":$status,'
        '"uri":"$uri","decision":"$cef_decision"}';
    log_format cef_goals escape=json
        '{"time":"$time_iso8601","request_id":"$request_id","status":$status,'
        '"goal":"$cef_goal"}';
"""

CONF = LOG_FORMATS + """
    cef_store @PREFIX@/store;
    cef_store_secret @PREFIX@/store.secret;
    cef_metrics_zone cef_metrics 1m;

    map $cookie_consent $cef_ok {
        default 1;
        no      0;
    }

    server {
        listen 127.0.0.1:@PORT@;
        root @PREFIX@/html;

        cef on;
        cef_rules @PREFIX@/rules.yaml;
        cef_signing_secret @PREFIX@/signing.secret;
        cef_key customer $cookie_shop_customer signed;
        cef_visitor_cookie vid;
        cef_consent $cef_ok;

        access_log @PREFIX@/impressions.log cef_impressions if=$cef_decision;
        access_log @PREFIX@/goals.log cef_goals if=$cef_goal;

        location = /checkout/done {
            proxy_pass http://@UPSTREAM@/body/confirm$is_args$args;
            proxy_set_header Accept-Encoding "";
            cef_goal purchase value=$upstream_http_x_order_total once;
        }
        location = /checkout/shown {
            proxy_pass http://@UPSTREAM@/body/confirm$is_args$args;
            proxy_set_header Accept-Encoding "";
            cef_goal purchase value=$upstream_http_x_order_total pass_header;
        }
        location = /beacon/signup {
            cef_goal signup;
            return 204;
        }
        location = /beacon/if {
            cef_goal signup;
            if ($arg_fast) {
                return 204;
            }
            return 200 "ok";
        }
        location /beacon/nested/ {
            cef_goal newsletter;
            location /beacon/nested/inner/ {
                return 204;
            }
            return 204;
        }
        location = /beacon/newsletter {
            cef_goal newsletter once;
            return 204;
        }
        location = /metrics {
            cef_metrics;
        }
    }

    server {
        listen 127.0.0.1:@PORT2@;
        cef_rules @PREFIX@/rules.yaml;
        access_log @PREFIX@/goals.log cef_goals if=$cef_goal;

        location = /beacon/signup {
            cef_goal signup;
            return 204;
        }
    }
"""

PAGE = (b"<html><body>"
        b"<!--cef:slot hero--><h1>Sale</h1><!--/cef:slot-->"
        b"<!--cef:slot side--><p>side</p><!--/cef:slot-->"
        b"</body></html>")

CONFIRM = b"<html><body><h1>Thank you for your order</h1></body></html>"


def vid_of(n):
    return base64.urlsafe_b64encode(b"goals-visit-%04d" % n).rstrip(b"=")\
        .decode()


@pytest.fixture
def shop(nginx, upstream):
    upstream.set_body("confirm", CONFIRM)
    inst = nginx.prepare(CONF)
    write_secret(inst.prefix / "store.secret", STORE_SECRET)
    write_secret(inst.prefix / "signing.secret", SIGN)
    (inst.prefix / "rules.yaml").write_text(RULES)
    (inst.prefix / "html" / "page.html").write_bytes(PAGE)
    load_store(inst.prefix / "store", inst.prefix / "store.secret")
    return inst.start()


def log_lines(inst, name, n, timeout=30):
    """The log's lines once it holds n (nginx writes after responding)."""
    path = inst.prefix / name
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        if path.exists():
            lines = path.read_text().splitlines()
            if len(lines) >= n:
                return lines
        time.sleep(0.05)
    raise AssertionError("%d of %d lines in %s" % (len(lines), n, name))


def goals_after(inst, send, sentinel_vid):
    """The goal records that send() caused: a signup beacon of a sentinel
    visitor follows it.  Every request of send() was answered before the
    sentinel was sent, but a worker writes a request's line just after
    answering it, so with two workers the sentinel's line can overtake
    the last one of send() by microseconds: once the sentinel's line is in,
    the file is read again a moment later."""
    path = inst.prefix / "goals.log"
    before = len(path.read_text().splitlines()) if path.exists() else 0
    send()
    status, _, _ = request(inst, "/beacon/signup",
                           headers={"Cookie": "vid=" + sentinel_vid})
    assert status == 204
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        recs = [json.loads(json.loads(line)["goal"]) for line in lines]
        if any(r["visitor"] == sentinel_vid for r in recs[before:]):
            time.sleep(0.2)
            lines = path.read_text().splitlines()
            recs = [json.loads(json.loads(line)["goal"]) for line in lines]
            return [r for r in recs[before:] if r["visitor"] != sentinel_vid]
        time.sleep(0.05)
    raise AssertionError("the sentinel goal was not logged")


def metrics(inst):
    status, _, body = request(inst, "/metrics")
    assert status == 200
    out = {}
    for line in body.decode().splitlines():
        if line.startswith("cef_goal"):
            name, value = line.rsplit(" ", 1)
            out[name] = int(value)
    return out


# --- records ------------------------------------------------------------------

def test_goal_records_carry_the_arms_the_decisions_logged(shop):
    """Every visitor sees a page (an impression) and then orders: the goal
    record's arm in each experiment is the variant $cef_decision logged
    for that visitor; the value comes from the shop's header, which the
    client does not get."""
    n = 60
    for i in range(n):
        status, _, _ = request(shop, "/page.html",
                               headers={"Cookie": "vid=" + vid_of(i)})
        assert status == 200

    impressions = log_lines(shop, "impressions.log", n)
    decided = {}
    for line in impressions:
        rec = json.loads(json.loads(line)["decision"])
        decided[rec["visitor"]] = rec

    assert len(decided) == n

    def orders():
        for i in range(n):
            status, headers, body = request(
                shop, "/checkout/done?hdr=X-Order-Total:%d.90" % (10 + i),
                headers={"Cookie": "vid=" + vid_of(i)})
            assert status == 200
            assert body == CONFIRM
            # the shop's order total is its business data
            assert "x-order-total" not in headers
            assert headers["set-cookie"].startswith("cef_goals=")

    goals = goals_after(shop, orders, vid_of(999))
    assert len(goals) == n

    now = time.time()
    arms_seen = set()
    for g in goals:
        assert g["v"] == 1 and g["goal"] == "purchase"
        assert abs(g["t"] - now) < 60
        i = [k for k in range(n) if vid_of(k) == g["visitor"]][0]
        assert g["value"] == pytest.approx(10 + i + 0.9)
        assert g["key_type"] is None and g["profile"] is None

        d = decided[g["visitor"]]
        assert g["rules"] == d["rules"] and len(g["rules"]) == 64
        assert set(g["arms"]) == {"hero-q4", "side"}
        for slot, exp in (("hero", "hero-q4"), ("side", "side")):
            s = d["slots"][slot]
            # the impression names the experiment, its salt and split
            assert s["experiment"] == exp and s["salt"] == exp
            assert g["arms"][exp] == {"salt": s["salt"],
                                      "arm": s["variant"]}
        assert d["slots"]["hero"]["split"] == {"control": 1000, "a": 4500,
                                               "b": 4500}
        assert d["slots"]["side"]["split"] == {"control": 3000,
                                               "treatment": 7000}
        arms_seen.add(g["arms"]["hero-q4"]["arm"])

    assert arms_seen == {"control", "a", "b"}

    m = metrics(shop)
    assert m['cef_goals_total{goal="purchase"}'] == n
    assert m['cef_goal_values_rejected_total{goal="purchase",'
             'reason="invalid"}'] == 0


def test_signed_customer_and_pass_header(shop):
    cookie = ("shop_customer=" + signed(SIGN, "customer", "1001")
              + "; vid=" + vid_of(500))

    def order():
        status, headers, _ = request(
            shop, "/checkout/shown?hdr=X-Order-Total:120",
            headers={"Cookie": cookie})
        assert status == 200
        # pass_header: this location lets the header through
        assert headers["x-order-total"] == "120"
        # without once, no state cookie
        assert "cef_goals=" not in headers.get("set-cookie", "")

    goals = goals_after(shop, order, vid_of(998))
    assert len(goals) == 1
    g = goals[0]
    assert g["key_type"] == "customer" and g["profile"] == "p-gold"
    assert g["visitor"] == vid_of(500)
    assert g["value"] == 120


def test_once_per_visitor_per_day_in_the_signed_cookie(shop):
    vid = vid_of(600)
    got = {}

    def twice():
        status, headers, _ = request(shop, "/beacon/newsletter",
                                     headers={"Cookie": "vid=" + vid})
        assert status == 204
        got["cookie"] = re.match(r"cef_goals=([^;]+)",
                                 headers["set-cookie"]).group(1)
        attrs = headers["set-cookie"]
        max_age = int(re.search(r"Max-Age=(\d+)", attrs).group(1))
        assert 0 < max_age <= 86400 and "HttpOnly" in attrs
        # the same visitor again, with the cookie: suppressed
        status, headers, _ = request(
            shop, "/beacon/newsletter",
            headers={"Cookie": "vid=%s; cef_goals=%s" % (vid, got["cookie"])})
        assert status == 204
        assert "cef_goals" not in headers.get("set-cookie", "")

    goals = goals_after(shop, twice, vid_of(997))
    assert [g["goal"] for g in goals] == ["newsletter"]

    # the state is today's UTC day and one tag, signed
    state, _, sig = got["cookie"].rpartition(".")
    day, tag = state.split(".")
    assert int(day) == int(time.time()) // 86400 and len(tag) == 8
    assert got["cookie"] == state_cookie(SIGN, "goals", state)

    # a forged state (another day's signature does not verify) is empty
    forged = "%d.%s.%s" % (int(day), tag, "A" * 22)

    def forged_and_other_goal():
        status, _, _ = request(
            shop, "/beacon/newsletter",
            headers={"Cookie": "vid=%s; cef_goals=%s" % (vid_of(601),
                                                          forged)})
        assert status == 204
        # once is per goal: the cookie does not stop another goal
        status, _, _ = request(
            shop, "/beacon/signup",
            headers={"Cookie": "vid=%s; cef_goals=%s" % (vid, got["cookie"])})
        assert status == 204

    goals = goals_after(shop, forged_and_other_goal, vid_of(996))
    assert sorted((g["goal"], g["visitor"]) for g in goals) == [
        ("newsletter", vid_of(601)), ("signup", vid)]

    # the documented limit: a client that drops cef_goals (keeping its
    # visitor id) is recorded again; cef-report counts a converting
    # visitor once for a yes/no goal
    goals = goals_after(shop, lambda: request(
        shop, "/beacon/newsletter", headers={"Cookie": "vid=" + vid}),
        vid_of(995))
    assert [g["visitor"] for g in goals] == [vid]

    m = metrics(shop)
    assert m['cef_goals_suppressed_total{goal="newsletter",'
             'reason="once"}'] == 1
    assert m['cef_goals_total{goal="newsletter"}'] == 3


def test_no_consent_no_record(shop):
    def refused():
        status, headers, body = request(
            shop, "/checkout/done?hdr=X-Order-Total:10",
            headers={"Cookie": "consent=no; vid=" + vid_of(700)})
        assert status == 200 and body == CONFIRM
        assert "x-order-total" not in headers
        assert "set-cookie" not in headers
        status, _, _ = request(shop, "/beacon/signup",
                               headers={"Cookie": "consent=no"})
        assert status == 204

    assert goals_after(shop, refused, vid_of(994)) == []
    m = metrics(shop)
    assert m['cef_goals_suppressed_total{goal="purchase",'
             'reason="consent"}'] == 1
    assert m['cef_goals_suppressed_total{goal="signup",'
             'reason="consent"}'] == 1


def test_bad_values_are_recorded_as_null_and_counted(shop):
    cases = ["abc", "1e3", "-5", "10000.5", "inf", "12,50", None]

    def orders():
        for i, total in enumerate(cases):
            q = "?hdr=X-Order-Total:%s" % total if total else ""
            status, headers, _ = request(
                shop, "/checkout/done" + q,
                headers={"Cookie": "vid=" + vid_of(800 + i)})
            assert status == 200
            assert "x-order-total" not in headers

    goals = goals_after(shop, orders, vid_of(993))
    assert len(goals) == len(cases)
    assert all(g["value"] is None for g in goals)

    m = metrics(shop)
    assert m['cef_goal_values_rejected_total{goal="purchase",'
             'reason="invalid"}'] == 6
    assert m['cef_goal_values_rejected_total{goal="purchase",'
             'reason="absent"}'] == 1
    log = shop.log_text()
    assert "[error]" not in log


def test_error_statuses_methods_and_anonymous_visitors_record_nothing(shop):
    def failures():
        status, headers, _ = request(
            shop, "/checkout/done?status=500&hdr=X-Order-Total:10",
            headers={"Cookie": "vid=" + vid_of(900)})
        assert status == 500
        assert "x-order-total" not in headers
        status, _, _ = request(
            shop, "/checkout/done?status=404",
            headers={"Cookie": "vid=" + vid_of(901)})
        assert status == 404
        # no visitor cookie and no key on this server: nobody to attribute
        status, _, _ = request("http://127.0.0.1:%d/beacon/signup"
                               % shop.port(1))
        assert status == 204
        # a link checker's HEAD and a CORS preflight reach no goal
        for method in ("HEAD", "OPTIONS"):
            status, _, _ = request(shop, "/beacon/signup", method=method,
                                   headers={"Cookie": "vid=" + vid_of(902)})
            assert status == 204

    assert goals_after(shop, failures, vid_of(992)) == []
    m = metrics(shop)
    assert m['cef_goals_suppressed_total{goal="purchase",'
             'reason="status"}'] == 2
    assert m['cef_goals_suppressed_total{goal="signup",'
             'reason="visitor"}'] == 1
    assert m['cef_goals_suppressed_total{goal="signup",'
             'reason="method"}'] == 2


def test_if_blocks_keep_the_goal_nested_locations_do_not(shop):
    def requests():
        for path, status in (("/beacon/if?fast=1", 204), ("/beacon/if", 200),
                             ("/beacon/nested/a", 204),
                             ("/beacon/nested/inner/b", 204)):
            got, _, _ = request(shop, path,
                                headers={"Cookie": "vid=" + vid_of(1000)})
            assert got == status, path

    goals = goals_after(shop, requests, vid_of(990))
    assert sorted(g["goal"] for g in goals) == ["newsletter", "signup",
                                                "signup"]


def test_a_post_beacon_is_recorded(shop):
    goals = goals_after(shop, lambda: request(
        shop, "/beacon/signup", method="POST", body=b"{}",
        headers={"Cookie": "vid=" + vid_of(1001),
                 "Content-Type": "text/plain"}), vid_of(989))
    assert [(g["goal"], g["visitor"]) for g in goals] == [
        ("signup", vid_of(1001))]


def test_a_new_visitor_is_recorded_with_the_id_it_is_given(shop):
    got = {}

    def new_visitor():
        status, headers, _ = request(shop, "/beacon/signup")
        assert status == 204
        got["vid"] = re.search(r"vid=([^;]+)", headers["set-cookie"]).group(1)

    goals = goals_after(shop, new_visitor, vid_of(991))
    assert [g["visitor"] for g in goals] == [got["vid"]]
    assert set(goals[0]["arms"]) == {"hero-q4", "side"}


# --- configuration -------------------------------------------------------------

BASE = """
    server {
        listen 127.0.0.1:@PORT@;
        cef_signing_secret @PREFIX@/signing.secret;
        %s
    }
"""


def check(nginx, body, rules=RULES):
    inst = nginx.prepare(BASE % body)
    inst.expect_bad_log = True
    write_secret(inst.prefix / "signing.secret", SIGN)
    (inst.prefix / "rules.yaml").write_text(rules)
    rc, out = inst.test_config()
    return rc, out, inst


def conf_line(inst, directive):
    """The line of nginx.conf where directive is written."""
    lines = inst.conf.read_text().splitlines()
    return [i + 1 for i, line in enumerate(lines)
            if re.match(r"\s*(location \S+ \{ )?%s " % directive, line)][0]


@pytest.mark.parametrize("body,message", [
    ("cef_rules @PREFIX@/rules.yaml;\n"
     "        location /a { cef_goal purchse; }",
     r'cef_goal: goal "purchse" is not declared in the goals: section of '
     r'".*rules\.yaml" in .*nginx\.conf:%d'),
    ("location /a { cef_goal purchase; }",
     r'cef_goal "purchase" needs a rule file declaring it \(cef_rules\) in '
     r'.*nginx\.conf:%d'),
    ("cef_rules @PREFIX@/rules.yaml;\n"
     "        location /a { cef_goal signup value=$arg_v; }",
     r'cef_goal: goal "signup" takes no value: declare its bounds \(min: '
     r'and max:\) in ".*rules\.yaml" to record one, in .*nginx\.conf:%d'),
])
def test_goal_errors_at_merge_name_the_directive_line(nginx, body, message):
    rc, out, inst = check(nginx, body)
    assert rc != 0
    line = conf_line(inst, "cef_goal")
    assert re.search(message % line, out), out


def test_once_needs_a_signing_secret(nginx):
    inst = nginx.prepare("""
    server {
        listen 127.0.0.1:@PORT@;
        cef_rules @PREFIX@/rules.yaml;
        location /a {
            cef_goal newsletter once;
        }
    }
""")
    inst.expect_bad_log = True
    (inst.prefix / "rules.yaml").write_text(RULES)
    rc, out = inst.test_config()
    assert rc != 0
    assert re.search(r'cef_goal "newsletter" once needs cef_signing_secret '
                     r'\(its state is a signed cookie\) in .*nginx\.conf:%d'
                     % conf_line(inst, "cef_goal"), out), out


@pytest.mark.parametrize("directive,message", [
    ("cef_goal Purchase;", r'invalid goal name "Purchase"'),
    ("cef_goal purchase value=;", r'empty "value="'),
    ("cef_goal purchase sometimes;",
     r'invalid or repeated parameter "sometimes"'),
    ("cef_goal purchase once once;", r'invalid or repeated parameter "once"'),
    ("cef_goal signup pass_header;", r'"pass_header" without "value="'),
    ("cef_goal purchase; cef_goal signup;",
     r'"cef_goal" directive is duplicate \(one goal per location\)'),
])
def test_directive_errors(nginx, directive, message):
    rc, out, inst = check(nginx, "cef_rules @PREFIX@/rules.yaml;\n"
                          "        location /a { %s }" % directive)
    assert rc != 0
    assert re.search(message + r".* in .*nginx\.conf:%d"
                     % conf_line(inst, "cef_goal"), out), out


def test_goal_is_not_allowed_at_server_level(nginx):
    rc, out, _ = check(nginx, "cef_rules @PREFIX@/rules.yaml;\n"
                       "        cef_goal purchase;")
    assert rc != 0
    assert '"cef_goal" directive is not allowed here' in out


def test_rule_file_goal_errors_at_nginx_t(nginx):
    rc, out, _ = check(nginx, "cef_rules @PREFIX@/rules.yaml;",
                       rules=RULES.replace("purchase: {min: 0, max: 10000}",
                                           "purchase: {min: 0}"))
    assert rc != 0
    assert re.search(r"rules\.yaml:17:13: goal 'purchase' has min: but no "
                     r"max: \(a goal with a value needs both bounds\)", out), out
