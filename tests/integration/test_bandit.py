# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""The bandit strategy through real nginx (issue 19): arms drawn for new
visitors, kept in the signed cef_bandit cookie, the decision record's
additions (split, weights_version, sticky), $cef_goal's arm equal to the
decided one (the kept one for a returning visitor), and configuration
mistakes at nginx -t with file:line:col."""

import base64
import json
import pathlib
import random
import re
import subprocess
import time

import pytest

from cef_fixtures import cef_sync, load_store, write_secret
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


# --- the closed loop: results -> cef-report bandit -> cef-sync apply -> edge --

REPORT = pathlib.Path(__file__).resolve().parents[2] / "build" / "cef-report"

TRUE_RATE = {"ha": 0.03, "hb": 0.06, "hc": 0.30}

LOOP_CONF = CONF.replace("    cef_store_secret @PREFIX@/store.secret;\n",
                         "    cef_store_secret @PREFIX@/store.secret;\n"
                         "    cef_metrics_zone cef_metrics 1m;\n")\
    .replace("        location = /beacon/purchase {",
             "        location = /metrics {\n"
             "            cef_metrics;\n"
             "        }\n"
             "        location = /cef/explain {\n"
             "            cef_explain;\n"
             "        }\n"
             "        location = /beacon/purchase {")


@pytest.fixture
def loop_shop(nginx):
    inst = nginx.prepare(LOOP_CONF)
    write_secret(inst.prefix / "store.secret", STORE_SECRET)
    write_secret(inst.prefix / "signing.secret", SIGN)
    (inst.prefix / "rules.yaml").write_text(RULES)
    (inst.prefix / "html" / "page.html").write_bytes(PAGE)
    load_store(inst.prefix / "store", inst.prefix / "store.secret")
    return inst.start()


def periods_from_logs(inst, n_impressions, n_goals):
    """--stats input for cef-report bandit, computed from the two logs:
    each visitor in the period of the weights version of their first
    exposure, with that period's live weights (the record's split); a
    visitor converted if a goal record names them."""
    impressions = records(inst, "impressions.log", "decision",
                          n_impressions)
    goals = records(inst, "goals.log", "goal", n_goals) if n_goals else []
    converted = {g["visitor"] for g in goals}
    first = {}
    for r in impressions:
        s = r["slots"]["hero"]
        first.setdefault(r["visitor"], (s["weights_version"], s["variant"],
                                        s["split"]))
    periods = {}
    for vis, (version, arm, split) in first.items():
        p = periods.setdefault(version, {"split": split, "arms": {
            a: [0, 0] for a in split}})
        assert p["split"] == split          # one version, one set of weights
        p["arms"][arm][0] += 1
        p["arms"][arm][1] += vis in converted
    out = []
    for version in sorted(periods):
        p = periods[version]
        period = {"arms": [{"name": a, "weight": p["split"][a], "n": n,
                            "sum": s} for a, (n, s) in p["arms"].items()]}
        if version:
            period["version"] = version
        out.append(period)
    return {"metric": "binomial", "experiment": "hero-bandit",
            "salt": "hero-bandit", "goal": "purchase", "periods": out}


def publish(inst, stats, seq, now):
    path = inst.prefix / ("stats-%d.json" % seq)
    path.write_text(json.dumps(stats))
    p = subprocess.run([str(REPORT), "bandit", "--experiment", "hero-bandit",
                        "--goal", "purchase", "--seed", "7", "--now",
                        str(now), "--stats", str(path)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    # the same record from nginx's logs themselves (cef-report bandit
    # LOG...: the log reader's periods by weights_version), byte for byte
    logs = subprocess.run([str(REPORT), "bandit", "--experiment",
                           "hero-bandit", "--goal", "purchase", "--seed", "7",
                           "--now", str(now), str(inst.prefix / "impressions.log"),
                           str(inst.prefix / "goals.log")],
                          capture_output=True, text=True, timeout=60)
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout == p.stdout
    rec = json.loads(p.stdout)
    rec = dict({"seq": seq}, **rec)
    delta = inst.prefix / ("weights-%d.jsonl" % seq)
    delta.write_text('{"cef":"delta","version":1}\n' + json.dumps(rec)
                     + "\n")
    cef_sync("apply", "--quiet", "--store", inst.prefix / "store",
             "--secret", inst.prefix / "store.secret", delta)
    return rec


def test_weights_follow_the_results_and_shoppers_keep_their_arm(loop_shop):
    """The issue's loop through real requests: rounds of new visitors with
    known true conversion rates (3 %, 6 %, 30 %); after each round
    cef-report bandit computes weights from --stats the test derives from
    nginx's two logs, and cef-sync apply publishes them into the store
    nginx serves from. New visitors follow the new weights (within 4
    sigma), returning visitors keep their arm through every weight change
    (and their goal records name it), and the best arm's share rises."""
    shop = loop_shop
    rng = random.Random(19)
    per_round, rounds = 600, 3
    first_arm, cookies = {}, {}
    n_imp = n_goal = 0
    weights = {"ha": 3334, "hb": 3333, "hc": 3333}
    version = 0
    best_share = []

    for rnd in range(rounds):
        # new visitors: drawn over the live weights
        shown_now = {"ha": 0, "hb": 0, "hc": 0}
        for k in range(per_round):
            i = rnd * per_round + k
            arm, cookie = visit(shop, i)
            assert cookie is not None
            first_arm[i], cookies[i] = arm, cookie
            shown_now[arm] += 1
            n_imp += 1
            if rng.random() < TRUE_RATE[arm]:
                status, _, _ = request(shop, "/beacon/purchase", headers={
                    "Cookie": "vid=%s; cef_bandit=%s" % (vid_of(i), cookie)})
                assert status == 204
                n_goal += 1

        for a, bp in weights.items():
            share, p = shown_now[a] / per_round, bp / 10000
            sigma = (p * (1 - p) / per_round) ** 0.5
            assert abs(share - p) <= 4 * sigma + 0.005, (rnd, a, share, p)
        best_share.append(shown_now["hc"] / per_round)

        # returning visitors of earlier rounds keep their arm
        for i in range(0, rnd * per_round, 15):
            arm, cookie = visit(shop, i, cookies[i])
            assert arm == first_arm[i], (rnd, i)
            assert cookie is None
            n_imp += 1

        # this round's results -> weights -> the store
        stats = periods_from_logs(shop, n_imp, n_goal)
        rec = publish(shop, stats, seq=rnd + 1, now=1796000000 + rnd * 3600)
        assert rec["version"] > version
        version, weights = rec["version"], rec["weights"]

        # the metrics show the version nginx now serves
        status, _, body = request(shop, "/metrics")
        assert status == 200
        assert ('cef_bandit_weights_version{experiment="hero-bandit",'
                'salt="hero-bandit"} %d' % version) in body.decode()
        assert re.search(r'cef_bandit_weights_age_seconds\{experiment='
                         r'"hero-bandit",salt="hero-bandit"\} \d+\n',
                         body.decode())

        # explain says which weights a visitor is drawn from
        status, _, body = request(shop, "/cef/explain", headers={
            "Cookie": "vid=" + vid_of(99999)})
        assert status == 200
        b = json.loads(body)["slots"]["hero"]["bandit"]
        assert b == {"experiment": "hero-bandit", "salt": "hero-bandit",
                     "weights_version": version,
                     "arm": "drawn over the published weights",
                     "split": weights}

    # the best arm's share of new visitors rose from a third
    assert best_share[0] < 0.42
    assert best_share[-1] > 0.42 and best_share[-1] > best_share[0] + 0.08
    assert weights["hc"] > 4000

    # the records of the last round name the live weights and version
    recs = records(shop, "impressions.log", "decision", n_imp)
    last = [r["slots"]["hero"] for r in recs[-per_round:]]
    versions = {s["weights_version"] for s in last if not s["sticky"]}
    assert len(versions) == 1 and versions.pop() > 0

    # the report of the real logs: a period per weights version with the
    # counts the test derived itself, results weighted by period, and no
    # sample ratio mismatch in any version
    stats = periods_from_logs(shop, n_imp, n_goal)
    p = subprocess.run([str(REPORT), "--json", "--goal", "purchase",
                        str(shop.prefix / "impressions.log"),
                        str(shop.prefix / "goals.log")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    report = [json.loads(line) for line in p.stdout.splitlines()]
    hero = [t for t in report if t["experiment"] == "hero-bandit"
            and t["metric"] == "binomial"]
    assert len(hero) == 1 and hero[0]["weighting"] == "periods"
    names = [a["name"] for a in hero[0]["arms"]]
    assert len(hero[0]["periods"]) == len(stats["periods"]) == rounds
    for got, want in zip(hero[0]["periods"], stats["periods"]):
        assert got["version"] == want.get("version", 0)
        arms = {a["name"]: a for a in want["arms"]}
        assert got["n"] == [arms[a]["n"] for a in names]
        assert got["sum"] == [arms[a]["sum"] for a in names]
        assert got["weights"] == [arms[a]["weight"] / 10000 for a in names]
        assert not got["srm_alarm"], got
    assert hero[0]["srm_p"] > 0.001

    # goal records name the kept arm
    goals = records(shop, "goals.log", "goal", n_goal)
    vid_index = {vid_of(i): i for i in first_arm}
    for g in goals:
        assert g["arms"]["hero-bandit"]["arm"] == \
            first_arm[vid_index[g["visitor"]]]
