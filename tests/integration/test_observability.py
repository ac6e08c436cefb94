# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""Closing the loop: the impression log ($cef_decision with log_format
escape=json), replaying logged decisions with the real `cef-rules replay`,
`cef_explain` per persona, and $cef_store_age."""

import base64
import concurrent.futures
import json
import re
import subprocess
import time
import urllib.parse

import pytest

from cef_fixtures import (KNOWN_VISITOR, PROFILES, load_store, signed,
                          write_secret)
from client import request
from conftest import BUILD, VALGRIND

SIGN = b"observability-signing-secret"
STORE_SECRET = b"observability-store-secret"
CEF_RULES = BUILD / "cef-rules"

RULES = r"""
version: 1
offers:
  gold-hero:
    slot: hero
    html: '<b>gold {{ profile.first_name }}</b>'
    campaign: gold
  churn-hero:
    slot: hero
    html: '<b>we miss you</b>'
  winter-hero:
    slot: hero
    html: '<b>winter</b>'
  side-hello:
    slot: side
    html: '<i>hello again</i>'
  flag-foot:
    slot: foot
    html: '<u>flag</u>'
rules:
  - name: gold
    when: '"gold" in profile.segments'
    show: gold-hero
    priority: 50
  - name: churn
    when: profile.churn_risk >= 0.7
    show: churn-hero
    priority: 40
  - name: winter campaign
    when: "request.arg.utm_campaign == 'winter' or request.header.x-note == 'say \"hi\"'"
    show: winter-hero
    priority: 30
  - name: known
    when: visitor.key_type != null and time.hour >= 0
    show: side-hello
  - name: flagged
    when: var.cef_flag == "on"
    show: flag-foot
slots:
  side:
    holdout: 50%
plugins:
  freqcap:
    caps:
      - {campaign: gold, max: 1, per: 1h}
"""

IMPRESSIONS = """
    log_format cef_impressions escape=json
        '{"time":"$time_iso8601","request_id":"$request_id","status":$status,'
        '"uri":"$uri","decision":"$cef_decision"}';
"""

CONF = IMPRESSIONS + """
    cef_store @PREFIX@/store;
    cef_store_secret @PREFIX@/store.secret;

    map $http_x_flag $cef_flag {
        default off;
        yes     on;
    }

    server {
        listen 127.0.0.1:@PORT@;
        root @PREFIX@/html;

        cef on;
        cef_rules @PREFIX@/rules.yaml;
        cef_signing_secret @PREFIX@/signing.secret;
        cef_key customer $cookie_shop_customer signed;
        cef_key device $cookie_dev;
        cef_visitor_cookie vid;

        access_log @PREFIX@/impressions.log cef_impressions if=$cef_decision;

        location = /cef/explain {
            cef_explain;
        }
        location = /cef/decide {
            cef_decide;
        }
        location = /whoami {
            return 200 "$cef_profile|$cef_offers";
        }
        location = /age {
            return 200 "[$cef_store_age]";
        }
    }

    server {
        listen 127.0.0.1:@PORT2@;
        root @PREFIX@/html;
        cef on;
        cef_rules @PREFIX@/rules.yaml;
        cef_signing_secret @PREFIX@/signing.secret;
        cef_key customer $cookie_shop_customer signed;
    }

    server {
        listen 127.0.0.1:@PORT3@;
        cef_rules @PREFIX@/rules.yaml;
        cef_signing_secret @PREFIX@/signing.secret;
        cef_key customer $cookie_shop_customer signed;
        cef_consent $cookie_ok;

        location = /cef/explain {
            cef_explain;
        }
    }
"""

PAGE = (b"<html><body>"
        b"<!--cef:slot hero--><h1>Sale</h1><!--/cef:slot-->"
        b"<!--cef:slot side--><p>side</p><!--/cef:slot-->"
        b"<!--cef:slot foot--><p>foot</p><!--/cef:slot-->"
        b"</body></html>")


def customer(cid, vid=None):
    cookie = "shop_customer=" + signed(SIGN, "customer", cid)
    if vid:
        cookie += "; vid=" + vid
    return {"Cookie": cookie}


def vid_of(n):
    return base64.urlsafe_b64encode(b"observe-vis-%04d" % n).rstrip(b"=")\
        .decode()


@pytest.fixture
def shop(nginx):
    inst = nginx.prepare(CONF)
    write_secret(inst.prefix / "store.secret", STORE_SECRET)
    write_secret(inst.prefix / "signing.secret", SIGN)
    (inst.prefix / "rules.yaml").write_text(RULES)
    (inst.prefix / "html" / "page.html").write_bytes(PAGE)
    (inst.prefix / "html" / "a.css").write_bytes(b"a{}")
    load_store(inst.prefix / "store", inst.prefix / "store.secret")
    return inst.start()


def wait_for_lines(inst, n, timeout=30):
    """The impression log once it holds n lines (nginx writes a line after
    the response has gone out)."""
    path = inst.prefix / "impressions.log"
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        if path.exists():
            lines = path.read_text().splitlines()
            if len(lines) >= n:
                return lines
        time.sleep(0.05)
    raise AssertionError("%d of %d impression lines" % (len(lines), n))


def records(lines):
    out = []
    for line in lines:
        entry = json.loads(line)          # each line is one JSON object
        assert isinstance(entry["decision"], str)
        out.append((entry, json.loads(entry["decision"])))
    return out


def replay(inst, *args, rules=None, stdin=None):
    cmd = [str(CEF_RULES), "replay",
           "--rules", str(rules or inst.prefix / "rules.yaml"),
           "--store", str(inst.prefix / "store"),
           "--secret", str(inst.prefix / "store.secret"), *args]
    p = subprocess.run(cmd, capture_output=True, text=True, input=stdin,
                       timeout=120)
    return p.returncode, p.stdout, p.stderr


# --- the impression log and replay -------------------------------------------

def test_log_lines_under_load_parse_and_replay_to_the_same_decision(shop):
    jobs = []
    for i in range(40):
        jobs.append(("/page.html", customer("1001", vid_of(i))))
        jobs.append(("/page.html", customer("1002", vid_of(100 + i))))
        jobs.append(("/page.html?utm_campaign=winter", {}))
        jobs.append(("/page.html", {"X-Flag": "yes",
                                    "Cookie": "vid=" + vid_of(200 + i)}))
        jobs.append(("/page.html", {"Cookie": "vid=" + vid_of(300 + i)}))
        jobs.append(("/a.css", customer("1001")))

    def fetch(job):
        status, _, body = request(shop, job[0], headers=job[1])
        assert status == 200
        return body

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(fetch, jobs))

    # served by both workers (one process under valgrind)
    assert len(shop.worker_pids()) == (1 if VALGRIND else 2)

    # gold, churn, the campaign and the flag are personalised; a plain
    # returning visitor and the stylesheet are not, and are not logged
    expected = 4 * 40
    wait_for_lines(shop, expected)

    # every response above is in; one more personalised request, and once
    # its line is there nothing else can still be on its way
    request(shop, "/page.html", headers={"X-Note": 'say "hi"'})
    lines = wait_for_lines(shop, expected + 1)
    assert len(lines) == expected + 1
    sentinel = [line for line in lines if "say" in line]
    assert len(sentinel) == 1
    lines.remove(sentinel[0])
    assert sum(b"<b>gold Greta</b>" in b for b in bodies) == 40

    recs = records(lines)
    by_profile = {}
    for entry, rec in recs:
        assert entry["status"] == 200 and entry["uri"] == "/page.html"
        assert rec["v"] == 1 and len(rec["rules"]) == 64
        assert rec["snapshot"] == "snap-1" and rec["seq"] == 0
        assert set(rec["slots"]) == {"hero", "side", "foot"}
        assert set(rec["in"]) == {
            "request.arg.utm_campaign", "request.header.x-note",
            "visitor.key_type", "time.hour", "var.cef_flag"}
        by_profile.setdefault(rec["profile"], []).append(rec)

    gold = by_profile["p-gold"]
    assert len(gold) == 40
    for rec in gold:
        assert rec["key_type"] == "customer"
        assert re.fullmatch(r"[0-9a-f]{16}", rec["ph"])
        assert rec["slots"]["hero"] == {
            "offer": "gold-hero", "rule": "gold", "plugin": "priority",
            "variant": "treatment"}
        assert rec["in"]["visitor.key_type"] == "customer"
        side = rec["slots"]["side"]
        assert side["plugin"] == "experiment" and "bucket" in side
        if side["variant"] == "control":
            # the holdout is logged with what it would have seen
            assert side["offer"] is None
            assert side["would"] == "side-hello"
            assert side["would_rule"] == "known"
        else:
            assert side["offer"] == "side-hello"
    variants = {r["slots"]["side"]["variant"] for r in gold}
    assert variants == {"control", "treatment"}

    anon = by_profile[None]
    assert len(anon) == 80
    campaign = [r for r in anon if r["in"]["request.arg.utm_campaign"]]
    assert len(campaign) == 40
    for rec in campaign:
        assert rec["in"]["request.arg.utm_campaign"] == "winter"
        assert rec["slots"]["hero"]["offer"] == "winter-hero"
        assert rec["ph"] is None and rec["key_type"] is None
    flagged = [r for r in anon if r["in"]["var.cef_flag"] == "on"]
    assert len(flagged) == 40
    assert all(r["slots"]["foot"]["offer"] == "flag-foot" for r in flagged)

    # the real tool replays every logged line to the same decision
    rc, out, err = replay(shop, "--log", str(shop.prefix / "impressions.log"))
    assert rc == 0, out + err
    assert out.count("same:") == expected + 1 and "different" not in out

    # and one record given on the command line
    rc, out, err = replay(shop, "--decision", recs[0][0]["decision"])
    assert (rc, out.split(":")[0]) == (0, "same"), out + err

    # and lines from stdin
    rc, out, err = replay(shop, "--log", "-", stdin="\n".join(lines[:5]))
    assert rc == 0 and out.count("same:") == 5, out + err


def test_changed_rule_file_makes_replay_report_the_difference(shop):
    request(shop, "/page.html", headers=customer("1001", vid_of(1)))
    line = wait_for_lines(shop, 1)[0]

    changed = shop.prefix / "changed.yaml"
    changed.write_text(RULES.replace('"gold" in profile.segments',
                                     '"platinum" in profile.segments'))

    rc, out, err = replay(shop, "--log", str(shop.prefix / "impressions.log"),
                          rules=changed)
    assert rc == 1, out + err
    assert out.startswith("line 1: different:")
    assert "the rule set changed" in out
    assert re.search(r"hero: recorded gold-hero \(rule 'gold'", out), out
    assert "now none" in out
    assert ("rule 'gold' no longer matches: \"platinum\" in profile.segments"
            in out), out
    assert '"gold"' in out       # the actual value of profile.segments

    # the same record against the unchanged file: the same
    rc, out, _ = replay(shop, "--decision", json.loads(line)["decision"])
    assert rc == 0, out


def test_changed_profile_is_reported(shop):
    request(shop, "/page.html", headers=customer("1001", vid_of(2)))
    wait_for_lines(shop, 1)

    profiles = json.loads(json.dumps(PROFILES))
    profiles[0]["attrs"]["segments"] = ["silver"]
    load_store(shop.prefix / "store", shop.prefix / "store.secret", profiles,
               snap_id="snap-2")

    rc, out, err = replay(shop, "--log", str(shop.prefix / "impressions.log"))
    assert rc == 1, out + err
    assert ('profile "p-gold" changed since the decision (store snap-1 seq 0 '
            'then, snap-2 seq 0 now)') in out, out
    assert "the rule set changed" not in out
    assert "rule 'gold' no longer matches" in out
    assert 'profile.segments is ["silver"]' in out, out


def test_caps_state_is_recorded_and_replayed(shop):
    cookie = customer("1001", vid_of(3))
    status, headers, body = request(shop, "/page.html", headers=cookie)
    assert b"<b>gold Greta</b>" in body
    caps = re.search(r"cef_freqcap=([^;]+)", headers["set-cookie"]).group(1)

    cookie["Cookie"] += "; cef_freqcap=" + caps
    body = request(shop, "/page.html", headers=cookie)[2]
    assert b"gold" not in body                  # capped

    recs = [r for _, r in records(wait_for_lines(shop, 2))]
    first, second = sorted(recs, key=lambda r: "freqcap" in r["state"])
    assert first["state"] == {} and first["slots"]["hero"]["offer"] == \
        "gold-hero"
    assert second["state"]["freqcap"] == caps.rsplit(".", 1)[0]
    assert second["slots"]["hero"]["offer"] != "gold-hero"

    rc, out, err = replay(shop, "--log", str(shop.prefix / "impressions.log"))
    assert rc == 0 and out.count("same:") == 2, out + err


def test_escaped_inputs_survive_escape_json(shop):
    note = 'say "hi"'
    status, _, body = request(shop, "/page.html",
                              headers={"X-Note": note,
                                       "Cookie": "vid=" + vid_of(4)})
    assert b"<b>winter</b>" in body
    quoted = urllib.parse.quote('é "x" \\ y', safe="")
    request(shop, "/page.html?utm_campaign=" + quoted,
            headers={"Cookie": "vid=" + vid_of(5), "X-Flag": "yes"})
    recs = [r for _, r in records(wait_for_lines(shop, 2))]
    notes = {r["in"]["request.header.x-note"] for r in recs}
    assert note in notes
    args = {r["in"]["request.arg.utm_campaign"] for r in recs}
    assert quoted in args               # the raw argument, as rules see it
    rc, out, err = replay(shop, "--log", str(shop.prefix / "impressions.log"))
    assert rc == 0 and out.count("same:") == 2, out + err


def test_replay_input_errors_exit_2(shop):
    rc, _, err = replay(shop, "--decision", "{not json")
    assert rc == 2 and "invalid JSON" in err
    rc, _, err = replay(shop, "--decision", '{"v":7,"t":1,"rules":"x",'
                        '"slots":{}}')
    assert rc == 2 and "unknown version" in err
    bad = shop.prefix / "bad.log"
    bad.write_text('{"decision":"{\\"v\\":1}"}\n')
    rc, _, err = replay(shop, "--log", str(bad))
    assert rc == 2 and "bad.log:1:" in err
    rc, _, err = subprocess.run([str(CEF_RULES), "replay", "--rules",
                                 str(shop.prefix / "rules.yaml")],
                                capture_output=True, text=True).returncode, \
        None, None
    assert rc == 2


def test_record_read_by_name_without_log_format(nginx):
    """Without $cef_decision in the configuration nothing of the record is
    done at decision time; read by name at run time (SSI here) it is made
    then, without the profile digest."""
    inst = nginx.prepare("""
    cef_store @PREFIX@/store;
    cef_store_secret @PREFIX@/store.secret;
    map $http_x_flag $cef_flag { default off; yes on; }
    server {
        listen 127.0.0.1:@PORT@;
        root @PREFIX@/html;
        cef on;
        ssi on;
        cef_rules @PREFIX@/rules.yaml;
        cef_signing_secret @PREFIX@/signing.secret;
        cef_key customer $cookie_shop_customer signed;
    }
""")
    write_secret(inst.prefix / "store.secret", STORE_SECRET)
    write_secret(inst.prefix / "signing.secret", SIGN)
    (inst.prefix / "rules.yaml").write_text(RULES)
    (inst.prefix / "html" / "page.html").write_bytes(
        PAGE + b'\n<!--# echo var="cef_decision" encoding="none" -->')
    load_store(inst.prefix / "store", inst.prefix / "store.secret")
    inst.start()
    body = request(inst, "/page.html", headers=customer("1001"))[2]
    assert b"<b>gold Greta</b>" in body
    rec = json.loads(body.rsplit(b"\n", 1)[1])
    assert rec["profile"] == "p-gold" and rec["ph"] is None
    assert rec["slots"]["hero"]["offer"] == "gold-hero"
    # no decision with an offer: an empty record
    body = request(inst, "/page.html")[2]
    assert body.endswith(b"\n")


# --- explain -------------------------------------------------------------------

def explain(inst, path="/cef/explain", headers=None, port=0):
    status, hdrs, body = request("http://127.0.0.1:%d%s"
                                 % (inst.port(port), path), headers=headers)
    assert status == 200, body
    assert hdrs["content-type"] == "application/json"
    assert "no-store" in hdrs["cache-control"]
    assert "set-cookie" not in hdrs
    return json.loads(body)


def rule(ex, name):
    return next(r for r in ex["rules"] if r["name"] == name)


PERSONAS = {
    # profile id: (request headers, expected hero offer, matched rules)
    "p-gold": (customer("1001", vid_of(10)), "gold-hero",
               {"gold", "known"}),
    "p-churn": (customer("1002", vid_of(11)), "churn-hero",
                {"churn", "known"}),
    "p-device": ({"Cookie": "dev=dev-42; vid=" + vid_of(12)}, None,
                 {"known"}),
    "p-visitor": ({"Cookie": "vid=" + KNOWN_VISITOR}, None, {"known"}),
    "p-html": (customer("1003", vid_of(13)), None, {"known"}),
}


@pytest.mark.parametrize("profile", [p["id"] for p in PROFILES])
def test_explain_each_persona(shop, profile):
    headers, hero, matched = PERSONAS[profile]
    ex = explain(shop, headers=headers)
    ident = ex["identity"]
    assert ident["consent"] is True
    assert ident["profile"] == profile
    found = [s for s in ident["steps"] if s.get("result") == "found"]
    assert len(found) == 1 and found[0]["profile"] == profile
    assert ex["profile"]["first_name"] == next(
        p for p in PROFILES if p["id"] == profile)["attrs"]["first_name"]
    assert {r["name"] for r in ex["rules"] if r["matched"]} == matched
    assert ex["slots"]["hero"]["offer"] == hero
    assert ex["slots"]["side"]["strategy"] == "experiment"
    assert isinstance(ex["slots"]["side"]["bucket"], int)
    assert ex["slots"]["side"]["variant"] in ("control", "treatment")

    # the page and the decision API agree with the explanation
    decided = json.loads(request(shop, "/cef/decide", headers=headers)[2])
    assert decided["profile"] == profile
    assert decided["slots"]["hero"]["offer"] == hero
    assert decided["slots"]["side"]["variant"] == \
        ex["slots"]["side"]["variant"]


def test_explain_says_why_a_rule_failed(shop):
    ex = explain(shop, headers=customer("1002", vid_of(20)))
    gold = rule(ex, "gold")
    assert gold["matched"] is False
    assert gold["why"] == ('"gold" in profile.segments is false '
                           '(profile.segments is ["silver"])')
    churn = rule(ex, "churn")
    assert churn["matched"] and churn["offers"] == [
        {"slot": "hero", "offer": "churn-hero", "result": "chosen"}]
    hero = ex["slots"]["hero"]
    assert hero["candidates"] == [
        {"offer": "churn-hero", "rule": "churn", "priority": 40}]
    assert ex["inputs"]["visitor.key_type"] == "customer"
    assert [s["source"] for s in ex["identity"]["steps"]] == \
        ["store", "cef_key", "visitor_cookie"]

    # what the visitor was shown, by the page's own decision
    decided = json.loads(request(shop, "/cef/decide",
                                 headers=customer("1002", vid_of(20)))[2])
    assert decided["slots"]["hero"]["offer"] == hero["offer"]


def test_explain_identity_steps_of_anonymous_and_forged(shop):
    forged = explain(shop, headers={"Cookie": "shop_customer=1001.AAAA"})
    steps = forged["identity"]["steps"]
    key = next(s for s in steps if s["source"] == "cef_key"
               and s["key_type"] == "customer")
    assert key["signature"] == "bad" and key["result"] == "ignored"
    assert forged["identity"]["profile"] is None
    assert forged["profile"] is None
    visitor = next(s for s in steps if s["source"] == "visitor_cookie")
    assert visitor["result"].startswith("absent")
    assert forged["identity"]["visitor_new"] is True
    assert forged["slots"]["hero"]["offer"] is None

    dev = next(s for s in steps if s["source"] == "cef_key"
               and s["key_type"] == "device")
    assert dev["result"] == "absent"

    campaign = explain(shop, "/cef/explain?utm_campaign=winter")
    assert campaign["slots"]["hero"]["offer"] == "winter-hero"
    assert rule(campaign, "winter campaign")["matched"] is True
    assert campaign["inputs"]["request.arg.utm_campaign"] == "winter"


def test_explain_key_argument_only_in_the_explain_location(shop):
    ex = explain(shop, "/cef/explain?key=customer:1001")
    assert ex["identity"]["profile"] == "p-gold"
    assert ex["identity"]["steps"][1] == {
        "source": "query", "key_type": "customer", "value": "1001",
        "result": "found", "profile": "p-gold"}
    assert ex["slots"]["hero"]["offer"] == "gold-hero"
    assert ex["identity"]["consent"] == "not checked: ?key= given"

    ex = explain(shop, "/cef/explain?key=email:greta%40example.com")
    assert ex["identity"]["profile"] == "p-gold"

    # &visitor= buckets as that visitor's page did (its logged record)
    request(shop, "/page.html", headers=customer("1001", vid_of(30)))
    logged = records(wait_for_lines(shop, 1))[0][1]
    ex = explain(shop, "/cef/explain?key=customer:1001&visitor=" + vid_of(30))
    assert ex["bucket_by"] == vid_of(30) == logged["visitor"]
    assert ex["slots"]["side"]["bucket"] == logged["slots"]["side"]["bucket"]
    assert ex["slots"]["side"]["variant"] == \
        logged["slots"]["side"]["variant"]

    ex = explain(shop, "/cef/explain?key=customer:9999")
    assert ex["identity"]["profile"] is None
    assert ex["identity"]["steps"][1]["result"] == "not found"

    status, _, _ = request(shop, "/cef/explain?key=nonsense")
    assert status == 400

    # anywhere else ?key= is just an argument: it recognises nobody
    assert request(shop, "/whoami?key=customer:1001")[2] == \
        b"|hero=-,side=-,foot=-"
    body = request(shop, "/page.html?key=customer:1001")[2]
    assert body == PAGE.replace(b"<!--cef:slot hero-->", b"")\
        .replace(b"<!--cef:slot side-->", b"")\
        .replace(b"<!--cef:slot foot-->", b"")\
        .replace(b"<!--/cef:slot-->", b"")


def test_explain_without_consent_stops_at_consent(shop):
    ex = explain(shop, headers=customer("1001"), port=2)
    assert ex["identity"]["consent"] is False
    assert ex["identity"]["consent_value"] is None
    assert ex["identity"]["steps"] == []
    assert ex["profile"] is None and ex["rules"] is None

    headers = customer("1001")
    headers["Cookie"] += "; ok=1"
    ex = explain(shop, headers=headers, port=2)
    assert ex["identity"]["consent"] is True
    assert ex["identity"]["consent_value"] == "1"
    assert ex["identity"]["profile"] == "p-gold"
    assert rule(ex, "gold")["matched"] is True


def test_unconfigured_server_does_not_expose_explain(shop):
    (shop.prefix / "html" / "cef").mkdir()
    status, _, body = request("http://127.0.0.1:%d/cef/explain?key=customer:"
                              "1001" % shop.port(1))
    assert status == 404
    assert b"p-gold" not in body and b"identity" not in body
    # a page there is a normal page; ?key= does not recognise anyone
    status, _, body = request("http://127.0.0.1:%d/page.html?key=customer:"
                              "1001" % shop.port(1))
    assert status == 200 and b"gold" not in body


# --- $cef_store_age -------------------------------------------------------------

def store_age(inst):
    body = request(inst, "/age")[2].decode()
    m = re.fullmatch(r"\[(\d*)\]", body)
    assert m, body
    return int(m.group(1)) if m.group(1) else None


def test_store_age_counts_from_the_last_load(shop):
    deadline = time.monotonic() + 30
    while store_age(shop) < 2:
        assert time.monotonic() < deadline, "store age never reached 2"
        time.sleep(0.2)
    old = store_age(shop)
    assert old >= 2

    load_store(shop.prefix / "store", shop.prefix / "store.secret",
               snap_id="snap-2")
    deadline = time.monotonic() + 30
    while True:
        # a full load is picked up within the store's check interval
        age = store_age(shop)
        if age < old:
            break
        assert time.monotonic() < deadline, "store age did not reset"
        time.sleep(0.1)
    assert 0 <= age < old


def test_store_age_is_empty_without_a_store(nginx):
    inst = nginx.start("""
    server {
        listen 127.0.0.1:@PORT@;
        location = /age { return 200 "[$cef_store_age]"; }
    }
""")
    assert store_age(inst) is None


# --- the decision API renders what the page renders --------------------------

def test_decide_html_is_the_pages_slot_for_a_value_not_utf8(nginx):
    import msgpack
    from cef_fixtures import cef_sync

    inst = nginx.prepare(CONF)
    write_secret(inst.prefix / "store.secret", STORE_SECRET)
    write_secret(inst.prefix / "signing.secret", SIGN)
    (inst.prefix / "rules.yaml").write_text(RULES)
    (inst.prefix / "html" / "page.html").write_bytes(PAGE)
    # a stray continuation byte, a cut sequence, an encoded surrogate, a
    # Latin-1 byte, next to valid UTF-8 and HTML to escape
    name = b"\xc3\xa9 J\xfcrgen <&> \x80|\xe2\x82|\xed\xa0\x80|\xf0\x9f\x8c\xb2"
    snap = inst.prefix / "latin1.msgpack"
    snap.write_bytes(b"".join([
        msgpack.packb({"cef": "snapshot", "version": 1, "id": "latin1",
                       "created_at": int(time.time())}),
        msgpack.packb({"id": "p-latin1", "keys": [["customer", "1009"]],
                       "attrs": {"first_name": name, "segments": ["gold"]}},
                      use_bin_type=False),
        msgpack.packb({"end": True, "count": 1})]))
    cef_sync("load", "--quiet", "--store", inst.prefix / "store", "--secret",
             inst.prefix / "store.secret", snap)
    inst.start()

    page = request(inst, "/page.html", headers=customer("1009"))[2]
    slot = re.search(rb"<body>(<b>gold .*?</b>)", page, re.S).group(1)
    decided = json.loads(request(inst, "/cef/decide",
                                 headers=customer("1009"))[2])
    hero = decided["slots"]["hero"]
    assert hero["offer"] == "gold-hero"
    assert hero["html"] is not None
    assert hero["html"].encode() == slot
    # escaped, and each byte that starts no UTF-8 sequence is U+FFFD
    assert slot == ("<b>gold \u00e9 J\ufffdrgen &lt;&amp;&gt; \ufffd|"
                    "\ufffd\ufffd|\ufffd\ufffd\ufffd|\U0001f332</b>").encode()
