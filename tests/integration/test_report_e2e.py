# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""Issue 18 end to end: real nginx (master and two workers) with a holdout
slot and an A/B experiment, a store loaded by cef-sync, `cef_goal`
locations behind a shop backend that sends the order total, impressions
and goals written by real access_log lines with the documented formats,
and a few thousand simulated visitors over real HTTP: each converts with a
known rate that depends only on what the page showed them (the
treatment's offer clearly better, the control worse).  Then cef-report on
the two logs:

- the relative lift's interval covers the true lift of both tests, the A/B
  test's lies above zero, and the SRM check passes;
- the same logs with a share of one arm's impression lines dropped must
  flag a sample ratio mismatch for that test;
- docs/report.sql on the same logs counts the same visitors and
  converters;
- the HTML page of the run renders in Chromium, not blank, with the
  experiments' names.

Visitors and their draws are seeded: the run is the same every time (the
test never depends on luck, and a change that moves a number shows)."""

import concurrent.futures
import http.client
import json
import random
import re
import subprocess

import chromium
from cef_fixtures import load_store, write_secret
from conftest import BUILD
from test_plugins import visitor_id
from test_report_sql import sql_tests

CEF_REPORT = BUILD / "cef-report"

VISITORS = 3000
THREADS = 4
SEED = 18

PAGE = (b"<!DOCTYPE html><html><body>\n"
        b"<!--cef:slot hero--><h1>default hero</h1><!--/cef:slot-->\n"
        b"<!--cef:slot side--><p>default side</p><!--/cef:slot-->\n"
        b"</body></html>\n")

RULES = """\
version: 1
goals:
  purchase: {min: 0, max: 100000}
  signup: {}
offers:
  classic:    {slot: hero, html: '<b id="offer">classic-hero</b>'}
  bold:       {slot: hero, html: '<b id="offer">bold-hero</b>'}
  newsletter: {slot: side, html: '<i id="news">newsletter</i>'}
rules:
  - {name: everyone, show: [classic, newsletter], priority: 2}
  - {name: bold, show: bold}
slots:
  hero:                       # A/B: a shows classic, b its own offer
    experiment:
      name: hero-ab
      variants: {a: 50, b: {weight: 50, offers: [bold]}}
  side:                       # holdout: 20% see no newsletter offer
    holdout: 20%
"""

CONF = """
    log_format cef_impressions escape=json
        '{"time":"$time_iso8601","request_id":"$request_id","status":$status,'
        '"uri":"$uri","decision":"$cef_decision"}';
    log_format cef_goals escape=json
        '{"time":"$time_iso8601","request_id":"$request_id","status":$status,'
        '"goal":"$cef_goal"}';

    cef_store        @PREFIX@/store;
    cef_store_secret @PREFIX@/store.secret;

    # the shop's backend: it knows the order's total
    server {
        listen 127.0.0.1:@PORT2@;
        location = /order/done {
            add_header X-Order-Total $arg_total;
            return 200 "thank you\\n";
        }
    }

    server {
        listen 127.0.0.1:@PORT@;
        root @PREFIX@/html;

        cef on;
        cef_rules @PREFIX@/rules.yaml;
        cef_visitor_cookie vid;

        access_log @PREFIX@/logs/cef_impressions.log cef_impressions
                   if=$cef_decision;
        access_log @PREFIX@/logs/cef_goals.log cef_goals if=$cef_goal;

        location / {
        }
        location = /order/done {
            cef_goal purchase value=$upstream_http_x_order_total;
            proxy_pass http://127.0.0.1:@PORT2@;
        }
        location = /signup {
            cef_goal signup;
            return 204;
        }
    }
"""

# the true conversion rates, by what the visitor saw
BASE = 0.10
BOLD = 0.06          # the bold hero (arm b) instead of the classic one
NEWS = 0.04          # the newsletter offer (not held out)
SIGNUP = 0.05
SIGNUP_NEWS = 0.04


def purchase_rate(bold, news):
    return BASE + BOLD * bold + NEWS * news


# the true relative lifts: each test's other experiment splits its arms
# the same way (independent salts), so it averages out
P_NEWS = 0.8
TRUE_LIFT_HERO = (purchase_rate(1, P_NEWS) / purchase_rate(0, P_NEWS)) - 1
TRUE_LIFT_SIDE = (purchase_rate(0.5, 1) / purchase_rate(0.5, 0)) - 1
TRUE_LIFT_SIGNUP = (SIGNUP + SIGNUP_NEWS) / SIGNUP - 1


class Browser:
    """One keep-alive connection, as a browser holds it."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def get(self, path, vid):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1",
                                                       self.port, timeout=30)
            try:
                self.conn.request("GET", path, headers={"Cookie":
                                                        "vid=" + vid})
                resp = self.conn.getresponse()
                body = resp.read()
                if resp.getheader("connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return resp.status, resp, body
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise

    def close(self):
        if self.conn is not None:
            self.conn.close()


def visit(browser, i):
    """Visitor i: one to three page views, then maybe a purchase and a
    signup, drawn from what the first page showed.  Returns what they
    saw."""
    rng = random.Random(SEED * 1000003 + i)
    vid = visitor_id(i)
    seen = None
    for _ in range(1 + (rng.random() < 0.3) + (rng.random() < 0.1)):
        status, _, body = browser.get("/index.html", vid)
        assert status == 200, (status, body[:200])
        if seen is None:
            m = re.search(rb'<b id="offer">(\w+)-hero</b>', body)
            assert m, body
            seen = (m.group(1) == b"bold", b'<i id="news">' in body)
    bold, news = seen
    if rng.random() < purchase_rate(bold, news):
        total = "%.2f" % rng.uniform(20, 120)
        status, resp, _ = browser.get("/order/done?total=" + total, vid)
        assert status == 200
    if rng.random() < SIGNUP + SIGNUP_NEWS * news:
        status, _, _ = browser.get("/signup", vid)
        assert status == 204
    return seen


def simulate(port):
    def worker(k):
        browser = Browser(port)
        try:
            return [visit(browser, i) for i in range(k, VISITORS, THREADS)]
        finally:
            browser.close()

    with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
        return [s for part in pool.map(worker, range(THREADS)) for s in part]


def cef_report(*args):
    p = subprocess.run([str(CEF_REPORT), *map(str, args)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout


def results_by_test(out):
    return {(t["experiment"], t["goal"], t["metric"]): t
            for t in map(json.loads, out.splitlines())}


def arm(test, name):
    return [a for a in test["arms"] if a["name"] == name][0]


def covers(a, truth):
    lo, hi = a["relative"]["ci"]
    return lo <= truth <= hi


def start(nginx, tmp_path):
    inst = nginx.prepare(CONF)
    (inst.prefix / "html").mkdir(exist_ok=True)
    (inst.prefix / "html" / "index.html").write_bytes(PAGE)
    (inst.prefix / "rules.yaml").write_text(RULES)
    secret = write_secret(inst.prefix / "store.secret", b"e2e-store-secret\n")
    load_store(inst.prefix / "store", secret)
    return inst.start()


def test_results_from_real_logs(nginx, tmp_path):
    inst = start(nginx, tmp_path)
    seen = simulate(inst.port(0))
    inst.stop()                       # the logs are complete

    logs = inst.prefix / "logs"
    imp, goal = logs / "cef_impressions.log", logs / "cef_goals.log"
    assert len(seen) == VISITORS
    assert sum(b for b, _ in seen) > 0.4 * VISITORS
    assert 0.7 * VISITORS < sum(n for _, n in seen) < 0.9 * VISITORS

    html = tmp_path / "report.html"
    out = cef_report("--json", "--html", html, imp, goal)
    tests = results_by_test(out)

    # the A/B test: b clearly better than a, the truth inside the interval
    hero = tests[("hero-ab", "purchase", "binomial")]
    b = arm(hero, "b")
    assert hero["srm_p"] > 0.001, hero
    assert b["relative"]["ci"][0] > 0, b
    assert covers(b, TRUE_LIFT_HERO), (b, TRUE_LIFT_HERO)
    assert sum(a["n"] for a in hero["arms"]) == VISITORS

    # the holdout: what showing the newsletter offer earned
    side = tests[("side", "purchase", "binomial")]
    assert side["holdout"] is True
    assert side["srm_p"] > 0.001, side
    assert covers(arm(side, "treatment"), TRUE_LIFT_SIDE), side
    signup = tests[("side", "signup", "binomial")]
    assert covers(arm(signup, "treatment"), TRUE_LIFT_SIGNUP), signup

    # purchases carry values: a value-per-visitor test too
    assert arm(tests[("hero-ab", "purchase", "mean")], "b")["mean"] > 0

    # the SQL of docs/report.sql counts the same on the same logs
    sql = sql_tests(tmp_path / "e2e.db", [str(imp), str(goal)])
    for (experiment, _, _, g, metric), stats in sql.items():
        t = tests[(experiment, g, metric)]
        assert [(a["name"], a["n"], a["sum"]) for a in stats["arms"]] == \
            [(a["name"], a["n"], a["sum"]) for a in t["arms"]], \
            (experiment, g, metric)

    # the page of the run
    img = chromium.render(html, tmp_path / "report.png")
    assert img.count(lambda px: not chromium.white(px)) \
        > 0.03 * img.width * img.height
    text = re.sub(r"<[^>]*>", " ", chromium.dom(html))
    for name in ("hero-ab", "side", "purchase", "signup", "treatment"):
        assert name in text, name
    assert "Sample ratio mismatch" not in text

    # lose 30% of arm b's impression lines (a logging fault in one arm):
    # the SRM check must flag the A/B test
    rng = random.Random(SEED)
    skewed = tmp_path / "skewed_impressions.log"
    kept = dropped = 0
    with open(imp) as src, open(skewed, "w") as dst:
        for line in src:
            rec = json.loads(json.loads(line)["decision"])
            if rec["slots"]["hero"].get("variant") == "b" \
                    and rng.random() < 0.3:
                dropped += 1
                continue
            kept += 1
            dst.write(line)
    assert dropped > 0.1 * VISITORS

    tests = results_by_test(cef_report("--json", skewed, goal))
    hero = tests[("hero-ab", "purchase", "binomial")]
    assert hero["srm_p"] < 0.001, hero
