# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""Rule sets served from the store (issue 20, docs/deploying-rules.md):
real nginx with `cef_rules store:NAME`, rule sets published with the real
`cef-rules publish/promote/rollback` and applied by the real cef-sync
(files, or consume from librdkafka's mock cluster for two edges): serving
the live version, a sticky canary share, promote, rollback, a version the
edge cannot compile, shadow decisions logged and never shown, a switch
under load, the fallback file, and nginx -t."""

import base64
import concurrent.futures
import json
import re
import subprocess
import threading
import time

import msgpack

from cef_fixtures import load_store, write_secret
from client import request
from conftest import BUILD
from kafka_helpers import TOPIC, KafkaMock, kill_leftovers

CEF_RULES = str(BUILD / "cef-rules")
CEF_SYNC = str(BUILD / "cef-sync")
STORE_SECRET = b"fleet-store-secret"

DELTA = b'{"cef":"delta","version":1}\n'


def rule_set(tag, extra_when=None):
    """One offer in slot hero whose HTML names the version."""
    when = extra_when or "time.hour >= 0"
    return ("version: 1\noffers:\n  hero-%s:\n    slot: hero\n"
            "    html: '<b>%s</b>'\nrules:\n  - name: show %s\n"
            "    when: %s\n    show: hero-%s\n"
            % (tag, tag, tag, when, tag))


PAGE = (b"<html><body><!--cef:slot hero--><h1>generic</h1>"
        b"<!--/cef:slot--></body></html>")

LOG = """
    log_format fleet escape=json
        '{"uri":"$request_uri","status":$status,"hash":"$cef_rules_hash",'
        '"decision":"$cef_decision","shadow":"$cef_shadow_decision"}';
"""

CONF = LOG + """
    cef_store @PREFIX@/store;
    cef_store_secret @PREFIX@/store.secret;
    cef_metrics_zone cef_metrics 1m;

    server {
        listen 127.0.0.1:@PORT@;
        root @PREFIX@/html;
        cef on;
        cef_rules store:shop%s;
        cef_visitor_cookie vid;
        access_log @PREFIX@/fleet.log fleet;

        location = /metrics {
            cef_metrics;
        }
        location = /cef/explain {
            cef_explain;
        }
        location = /cef/decide {
            cef_decide;
        }
    }
"""


def vid_of(n):
    """A visitor id as the module makes them (16 bytes, base64url)."""
    return base64.urlsafe_b64encode(b"fleet-vis-%06d" % n).rstrip(b"=") \
        .decode()


class Edge:
    """One nginx serving store:shop from its own store."""

    def __init__(self, nginx, extra="", files=None, conf=CONF):
        self.inst = nginx.prepare(conf % extra)
        p = self.inst.prefix
        write_secret(p / "store.secret", STORE_SECRET)
        (p / "html" / "page.html").write_bytes(PAGE)
        for name, text in (files or {}).items():
            (p / name).write_text(text)
        self.store = p / "store"
        load_store(self.store, p / "store.secret")
        self.inst.start()

    def page(self, vid=None, n=None):
        path = "/page.html" + ("?n=%d" % n if n is not None else "")
        headers = {"Cookie": "vid=" + vid} if vid else {}
        status, _, body = request(self.inst, path, headers=headers)
        assert status == 200, (status, body)
        m = re.search(rb"<b>(\w+)</b>", body)
        return m.group(1).decode() if m else "generic"

    def metrics(self):
        status, _, body = request(self.inst, "/metrics")
        assert status == 200
        return body.decode()

    def versions(self):
        """{(hash, state)} of cef_rules_version in every worker's view
        (each request may reach another worker: ask a few times)."""
        out = set()
        for _ in range(6):
            for m in re.finditer(r'cef_rules_version\{name="shop",'
                                 r'hash="(\w+)",state="(\w+)"\} 1',
                                 self.metrics()):
                out.add((m.group(1), m.group(2)))
        return out

    def seq(self):
        r = subprocess.run([CEF_SYNC, "stat", "--store", str(self.store),
                            "--json"], capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)["last_seq"] + 1

    def run(self, *args):
        """cef-rules ARGS --store S --seq N, applied with cef-sync."""
        r = subprocess.run([CEF_RULES, *args, "--store", str(self.store),
                            "--seq", str(self.seq())],
                           capture_output=True, timeout=120)
        assert r.returncode == 0, r.stderr
        a = subprocess.run([CEF_SYNC, "apply", "--store", str(self.store),
                            "--secret", str(self.inst.prefix / "store.secret"),
                            "-"], input=r.stdout, capture_output=True,
                           timeout=120)
        assert a.returncode == 0, a.stderr
        return json.loads(r.stdout.splitlines()[1])

    def publish(self, path, *opts):
        return self.run("publish", str(path), "--name", "shop", *opts)

    def log_lines(self):
        path = self.inst.prefix / "fleet.log"
        return ([json.loads(x) for x in path.read_text().splitlines()]
                if path.exists() else [])


def wait_until(cond, what, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def served_by_all(edge, tag, hex_=None):
    """Every worker serves tag to visitors outside any candidate share."""
    def cond():
        return all(edge.page(vid_of(i)) == tag for i in range(8)) and \
            (hex_ is None or (hex_, "live") in edge.versions())
    wait_until(cond, "every worker to serve " + tag)


def files(tmp_path, *tags, **special):
    out = {}
    for t in tags:
        f = tmp_path / ("%s.yaml" % t)
        f.write_text(rule_set(t))
        out[t] = f
    for t, when in special.items():
        f = tmp_path / ("%s.yaml" % t)
        f.write_text(rule_set(t, when))
        out[t] = f
    return out


# --- serving, canary, promote, rollback -----------------------------------

def test_publish_canary_promote_rollback(nginx, tmp_path):
    f = files(tmp_path, "one", "two")
    edge = Edge(nginx)

    # nothing published yet: the generic page, said once per worker
    assert edge.page(vid_of(1)) == "generic"
    assert "nothing published under this name yet: serving the generic " \
        "page" in edge.inst.log_text()

    v1 = edge.publish(f["one"], "--label", "v1")
    served_by_all(edge, "one", v1["hash"])

    v2 = edge.publish(f["two"], "--canary", "10%")
    wait_until(lambda: (v2["hash"], "canary") in edge.versions()
               and len([v for v in edge.versions()
                        if v[1] == "canary"]) == 1, "the canary")
    time.sleep(0.6)             # every worker polled (250 ms) and switched

    # a sticky 10 %: 600 visitors, each asked twice
    n = 600
    got = {i: edge.page(vid_of(i)) for i in range(n)}
    again = {i: edge.page(vid_of(i)) for i in range(n)}
    assert got == again
    share = sum(1 for v in got.values() if v == "two") / n
    # binomial sd at 10 % of 600 is 1.2 points: 4 sd either side
    assert 0.05 <= share <= 0.15, share
    assert set(got.values()) == {"one", "two"}

    # the record names the set that decided
    lines = [x for x in edge.log_lines() if x["uri"] == "/page.html"]
    for x in lines[-50:]:
        rec = json.loads(x["decision"])
        assert rec["rules"] == x["hash"]
        assert x["hash"] in (v1["hash"], v2["hash"])

    # cef_explain and cef_decide see the set the visitor gets
    for i in (next(k for k, v in got.items() if v == "one"),
              next(k for k, v in got.items() if v == "two")):
        h = {"Cookie": "vid=" + vid_of(i)}
        ex = json.loads(request(edge.inst, "/cef/explain", headers=h)[2])
        assert ex["slots"]["hero"]["offer"] == "hero-" + got[i]
        dec = json.loads(request(edge.inst, "/cef/decide", headers=h)[2])
        assert dec["slots"]["hero"]["offer"] == "hero-" + got[i]

    edge.run("promote", "shop")
    served_by_all(edge, "two", v2["hash"])
    assert all(edge.page(vid_of(i)) == "two" for i in range(40))

    edge.run("rollback", "shop")
    served_by_all(edge, "one", v1["hash"])
    assert all(edge.page(vid_of(i)) == "one" for i in range(40))


# --- a version this edge cannot compile --------------------------------------

def test_version_the_edge_cannot_compile_keeps_the_previous(nginx, tmp_path):
    f = files(tmp_path, "one", bad='var.nope == "1"')
    edge = Edge(nginx)
    v1 = edge.publish(f["one"])
    served_by_all(edge, "one", v1["hash"])

    # publish checks var.* only against an nginx.conf it is given
    bad = edge.publish(f["bad"])
    wait_until(lambda: (bad["hash"], "failed") in edge.versions(),
               "the failed state")
    time.sleep(1)               # several more polls: logged once only
    assert all(edge.page(vid_of(i)) == "one" for i in range(20))
    assert (v1["hash"], "live") in edge.versions()

    msg = ('cef_rules store:shop: version %s cannot be served here: '
           'unknown nginx variable "nope" (var.nope); the previous set '
           'keeps serving' % bad["hash"])
    log = edge.inst.log_text()
    assert msg in log, log
    workers = len(edge.inst.worker_pids())
    assert log.count(msg) <= workers      # once per worker, not per poll

    # a good version after it is served
    f2 = files(tmp_path, "three")
    v3 = edge.publish(f2["three"])
    served_by_all(edge, "three", v3["hash"])


# --- shadow ------------------------------------------------------------------

def test_shadow_decisions_are_logged_and_never_shown(nginx, tmp_path):
    f = files(tmp_path, "one", "two")
    edge = Edge(nginx)
    v1 = edge.publish(f["one"])
    served_by_all(edge, "one", v1["hash"])

    v2 = edge.publish(f["two"], "--shadow", "50%")
    wait_until(lambda: (v2["hash"], "shadow") in edge.versions(), "shadow")
    time.sleep(0.6)

    before = len(edge.log_lines())
    n = 200
    for i in range(n):
        assert edge.page(vid_of(i), n=i) == "one"      # never the shadow

    lines = wait_until(lambda: (lambda ls: ls if len(ls) >= before + n
                                else None)(edge.log_lines()), "log lines")
    lines = [x for x in lines[before:] if x["uri"].startswith("/page.html")]
    shadowed = [x for x in lines if x["shadow"]]
    assert 0.35 * n <= len(shadowed) <= 0.65 * n, len(shadowed)
    for x in lines:
        assert json.loads(x["decision"])["rules"] == v1["hash"]
    for x in shadowed:
        rec = json.loads(x["shadow"])
        assert rec["rules"] == v2["hash"]
        assert rec["slots"]["hero"]["offer"] == "hero-two"

    # sticky: the same visitors are shadowed again
    again = set()
    for i in range(n):
        edge.page(vid_of(i), n=1000 + i)
    lines2 = wait_until(lambda: (lambda ls: ls if len(ls) >= before + 2 * n
                                 else None)(edge.log_lines()), "log lines")
    for x in lines2[before + n:]:
        if x["shadow"]:
            again.add(int(x["uri"].split("=")[1]) - 1000)
    assert again == {int(x["uri"].split("=")[1]) for x in shadowed}

    # the summary: per slot, what the candidate would change
    log = str(edge.inst.prefix / "fleet.log")
    total = len([x for x in edge.log_lines() if x["shadow"]])
    r = subprocess.run([CEF_RULES, "shadow", "--log", log],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stderr          # some decisions would change
    assert "slot hero: %d sampled, %d would change (100.0%%)" % (
        total, total) in r.stdout, r.stdout
    assert "  hero-one -> hero-two  %d" % total in r.stdout
    r = subprocess.run([CEF_RULES, "shadow", "--log", log, "--json"],
                       capture_output=True, text=True, timeout=60)
    out = json.loads(r.stdout)
    assert out["sampled"] == total and out["shadow"] == v2["hash"]
    assert out["live"] == v1["hash"]
    assert out["slots"]["hero"]["changes"] == [
        {"from": "hero-one", "to": "hero-two", "count": total}]

    # a candidate that changes nothing: exit 0; a bad line: 2 with its place
    same = tmp_path / "same.log"
    one = next(x for x in edge.log_lines() if x["shadow"])
    same.write_text(json.dumps({"decision": one["decision"],
                                "shadow": one["decision"]}) + "\n")
    r = subprocess.run([CEF_RULES, "shadow", "--log", str(same)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "1 sampled, 0 would change" in r.stdout
    bad = tmp_path / "bad.log"
    bad.write_text(same.read_text() + "{nope\n")
    r = subprocess.run([CEF_RULES, "shadow", "--log", str(bad)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "bad.log:2: not a JSON object" in r.stderr


# --- a switch under load -----------------------------------------------------

def test_switch_under_load(nginx, tmp_path):
    f = files(tmp_path, "one", "two")
    edge = Edge(nginx)
    v1 = edge.publish(f["one"])
    served_by_all(edge, "one", v1["hash"])
    expect = {v1["hash"]: "one"}

    served = {}
    errors = []
    stop = threading.Event()
    counter = iter(range(10 ** 9))
    lock = threading.Lock()

    def client(k):
        while not stop.is_set():
            with lock:
                i = next(counter)
            if i >= 30000:             # bounded: stop is set long before
                return
            try:
                status, _, body = request(edge.inst, "/page.html?n=%d" % i,
                                          headers={"Cookie": "vid=" +
                                                   vid_of(i % 500)})
            except Exception as e:          # noqa: BLE001
                errors.append(repr(e))
                continue
            if status != 200:
                errors.append(status)
            m = re.search(rb"<b>(\w+)</b>", body)
            served[i] = m.group(1).decode() if m else "generic"

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        futs = [pool.submit(client, k) for k in range(6)]
        time.sleep(1)
        v2 = edge.publish(f["two"])           # live at once
        expect[v2["hash"]] = "two"
        wait_until(lambda: "two" in served.values(), "v2 under load")
        time.sleep(1)
        stop.set()
        for fu in futs:
            fu.result()

    assert errors == []
    assert set(served.values()) == {"one", "two"}
    # each request's record names the set whose offer it showed
    lines = wait_until(lambda: (lambda ls: ls if sum(
        1 for x in ls if "?n=" in x["uri"]) >= len(served) else None)(
        edge.log_lines()), "every log line")
    checked = 0
    for x in lines:
        if "?n=" not in x["uri"]:
            continue
        i = int(x["uri"].split("=")[1])
        rec = json.loads(x["decision"])
        assert x["status"] == 200
        assert expect[rec["rules"]] == served[i], (i, rec["rules"])
        assert x["hash"] == rec["rules"]
        checked += 1
    assert checked == len(served)


# --- the fallback file, nginx -t --------------------------------------------

def test_fallback_file_and_nginx_t(nginx, tmp_path):
    edge = Edge(nginx, " fallback=@PREFIX@/fallback.yaml",
                files={"fallback.yaml": rule_set("fallback")})
    assert edge.page(vid_of(1)) == "fallback"
    assert any(s == "fallback" for _, s in edge.versions())

    f = files(tmp_path, "one")
    v1 = edge.publish(f["one"])
    served_by_all(edge, "one", v1["hash"])

    # configuration errors: file:line (the edge's store and secret)
    conf = CONF.replace("@PREFIX@/store", str(edge.inst.prefix / "store"))
    rc, out = nginx.check(conf % " fallback=@REPO@/tests/rules/broken.yaml")
    assert rc != 0 and "broken.yaml:7:5: unknown key 'slott'" in out, out
    rc, out = nginx.check(conf.replace("store:shop%s", "store:sh/op"))
    assert rc != 0 and 'invalid rule-set name "sh/op"' in out, out
    assert "nginx.conf:" in out
    rc, out = nginx.check(conf % " colour=blue")
    assert rc != 0 and 'invalid parameter "colour=blue"' in out, out
    rc, out = nginx.check(conf.replace("store:shop%s",
                                       "@REPO@/tests/rules/good.yaml x"))
    assert rc != 0 and "takes options only with store:NAME" in out, out
    rc, out = nginx.check(conf % "")
    assert rc == 0, out
    rc, out = nginx.check(conf % " threads=fleet",
                          main="thread_pool fleet threads=1;")
    assert rc == 0, out
    rc, out = nginx.check(conf % " threads=nope")
    assert rc != 0 and 'unknown thread pool "nope"' in out, out
    rc, out = nginx.check(re.sub(r"\n    cef_store(_secret)? .*", "", conf)
                          % "")
    assert rc != 0 and 'cef_rules store:shop needs a store: add "cef_store ' \
        'DIR;" to the http block' in out, out


def test_locations_naming_one_set_share_it(nginx, tmp_path):
    conf = CONF.replace("""        location = /metrics {""", """        location /b/ {
            cef_rules store:shop;
        }
        location = /metrics {""")
    f = files(tmp_path, "one")
    edge = Edge(nginx, conf=conf)
    (edge.inst.prefix / "html" / "b").mkdir()
    (edge.inst.prefix / "html" / "b" / "page.html").write_bytes(PAGE)
    v1 = edge.publish(f["one"])
    served_by_all(edge, "one", v1["hash"])
    status, _, body = request(edge.inst, "/b/page.html",
                              headers={"Cookie": "vid=" + vid_of(1)})
    assert status == 200 and b"<b>one</b>" in body
    # one compiled copy per worker, not one per location
    serving = edge.inst.log_text().count("cef_rules store:shop: serving "
                                         + v1["hash"])
    assert serving == len(edge.inst.worker_pids()), serving


def big(path, tag, n=10000):
    """n rules on request.arg.x and one that always shows TAG's offer."""
    out = ["version: 1", "offers:"]
    for i in range(n):
        out += ["  o%d:" % i, "    slot: hero",
                "    html: '<b>%s</b>'" % tag]
    out.append("rules:")
    for i in range(n):
        out += ["  - name: rule %d" % i,
                "    when: request.arg.x == \"%d\"" % i,
                "    show: o%d" % i]
    out += ["  - name: always", "    when: time.hour >= 0",
            "    show: o0", "    priority: -1"]
    path.write_text("\n".join(out) + "\n")


def test_reload_serves_the_live_version_without_a_gap(nginx, tmp_path):
    big(tmp_path / "one.yaml", "one", 5000)     # a compile that takes time
    edge = Edge(nginx)
    v1 = edge.publish(tmp_path / "one.yaml")
    served_by_all(edge, "one", v1["hash"])

    # new workers compile the live version before they accept: every
    # request during and after the reload gets it, none the generic page
    seen = []
    stop = threading.Event()

    def client():
        while not stop.is_set():
            seen.append(edge.page(vid_of(len(seen) % 50)))

    t = threading.Thread(target=client)
    t.start()
    try:
        time.sleep(0.3)
        edge.inst.reload()
        time.sleep(0.5)
    finally:
        stop.set()
        t.join()
    after = [edge.page(vid_of(i)) for i in range(20)]
    assert len(seen) > 20
    assert set(seen) == {"one"} and set(after) == {"one"}


# --- two edges, one Kafka topic ---------------------------------------------

def test_two_edges_converge_through_kafka(nginx, tmp_path):
    f = files(tmp_path, "one", "two")
    edges = [Edge(nginx), Edge(nginx)]

    def rec(*args):
        r = subprocess.run([CEF_RULES, *args], capture_output=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    mock = KafkaMock(tmp_path, partitions=2)
    try:
        consumers = []
        for e in edges:
            consumers.append(subprocess.Popen(
                [CEF_SYNC, "consume", "--store", str(e.store), "--secret",
                 str(e.inst.prefix / "store.secret"), "--brokers",
                 mock.bootstrap, "--topic", TOPIC,
                 "--from-beginning"],
                stdout=subprocess.DEVNULL,
                stderr=open(tmp_path / ("consume-%d.log" % len(consumers)),
                            "wb")))
        v1 = rec("publish", str(f["one"]), "--name", "shop")
        mock.produce([(0, b"rules:shop", msgpack.packb(v1))])
        for e in edges:
            served_by_all(e, "one", v1["hash"])

        v2 = rec("publish", str(f["two"]), "--name", "shop")
        mock.produce([(0, b"rules:shop", msgpack.packb(v2))])
        for e in edges:
            served_by_all(e, "two", v2["hash"])
            assert {s for h, s in e.versions()} == {"live"}
    finally:
        for c in locals().get("consumers", []):
            c.kill()
            c.wait()
        mock.close()
        kill_leftovers()


# --- cef_goal in a store:NAME location ----------------------------------------

def goal_set(tag, goals=True):
    """An experiment named after the version, and (or not) goal purchase."""
    return ("version: 1\noffers:\n  hero-%s: {slot: hero, html: '<b>%s</b>'}\n"
            "rules:\n  - {name: show %s, show: hero-%s}\nslots:\n  hero:\n"
            "    experiment:\n      name: exp-%s\n"
            "      variants: {a: 50, b: 50}\n%s"
            % (tag, tag, tag, tag, tag,
               "goals:\n  purchase: {}\n" if goals else ""))


GOAL_CONF = CONF.replace(
    '"shadow":"$cef_shadow_decision"}',
    '"shadow":"$cef_shadow_decision","goal":"$cef_goal"}').replace(
    """        location = /metrics {""", """        location = /page.html {
            cef_goal purchase;
        }
        location = /metrics {""")


def goal_files(tmp_path, **tags):
    out = {}
    for t, goals in tags.items():
        out[t] = tmp_path / ("%s.yaml" % t)
        out[t].write_text(goal_set(t, goals))
    return out


def test_goal_follows_the_set_the_visitor_got(nginx, tmp_path):
    f = goal_files(tmp_path, one=True, two=True)
    edge = Edge(nginx, conf=GOAL_CONF)

    # nothing published: no set, so no arm to attribute and no record
    assert edge.page(vid_of(1)) == "generic"
    # the access log is written after the response: wait for the line
    assert wait_until(lambda: [x["goal"] for x in edge.log_lines()
                               if x["uri"] == "/page.html"],
                      "the log line") == [""]

    v1 = edge.publish(f["one"])
    served_by_all(edge, "one", v1["hash"])
    v2 = edge.publish(f["two"], "--canary", "50%")
    wait_until(lambda: (v2["hash"], "canary") in edge.versions(),
               "the canary")
    time.sleep(0.6)             # every worker polled (250 ms) and switched

    got = {i: edge.page(vid_of(i), n=i) for i in range(60)}
    assert set(got.values()) == {"one", "two"}

    def logged():
        got_n = {int(x["uri"].split("=")[1]): x for x in edge.log_lines()
                 if x["uri"].startswith("/page.html?n=")}
        return got_n if len(got_n) == len(got) else None
    by_n = wait_until(logged, "every log line")
    for i, tag in got.items():
        x = by_n[i]
        goal = json.loads(x["goal"])
        dec = json.loads(x["decision"])
        want = v1 if tag == "one" else v2
        assert goal["goal"] == "purchase"
        assert goal["rules"] == want["hash"] == dec["rules"] == x["hash"]
        assert set(goal["arms"]) == {"exp-" + tag}
        assert goal["arms"]["exp-" + tag]["arm"] in ("a", "b")


def test_version_without_a_recorded_goal_is_refused(nginx, tmp_path):
    f = goal_files(tmp_path, one=True, nogoal=False)
    edge = Edge(nginx, conf=GOAL_CONF)
    v1 = edge.publish(f["one"])
    served_by_all(edge, "one", v1["hash"])

    bad = edge.publish(f["nogoal"])
    wait_until(lambda: (bad["hash"], "failed") in edge.versions(),
               "the failed state")
    time.sleep(1)               # several more polls: logged once only
    assert all(edge.page(vid_of(i)) == "one" for i in range(20))
    assert (v1["hash"], "live") in edge.versions()

    conf = str(edge.inst.conf)
    line = next(n for n, text in enumerate(
        edge.inst.conf.read_text()
        .splitlines(), 1) if "cef_goal purchase" in text)
    msg = ('cef_rules store:shop: version %s cannot be served here: '
           'cef_goal: goal "purchase" is not declared in the goals: section '
           'of "store:shop@%s" in %s:%d; the previous set keeps serving'
           % (bad["hash"], bad["hash"], conf, line))
    log = edge.inst.log_text()
    assert msg in log, log
    assert log.count(msg) <= len(edge.inst.worker_pids())

    # the goal still records with the live set
    status, _, _ = request(edge.inst, "/page.html?last",
                           headers={"Cookie": "vid=" + vid_of(1)})
    x = wait_until(lambda: [x for x in edge.log_lines()
                            if x["uri"] == "/page.html?last"],
                   "the log line")[0]
    assert json.loads(x["goal"])["rules"] == v1["hash"]


def test_goal_in_a_store_location_nginx_t(nginx, tmp_path):
    edge = Edge(nginx, conf=GOAL_CONF)
    conf = GOAL_CONF.replace("@PREFIX@/store",
                             str(edge.inst.prefix / "store"))
    # nothing to check yet: accepted
    rc, out = nginx.check(conf % "")
    assert rc == 0, out
    # the fallback file is checked now, at the directive's file:line
    rc, out = nginx.check(conf % " fallback=@REPO@/tests/rules/good.yaml")
    assert rc != 0 and 'cef_goal: goal "purchase" is not declared in the ' \
        'goals: section of' in out and "good.yaml" in out, out
    assert re.search(r"nginx\.conf:\d+ \(the fallback of store:shop\)", out)
    (tmp_path / "fb.yaml").write_text(goal_set("fb"))
    rc, out = nginx.check(conf % (" fallback=%s" % (tmp_path / "fb.yaml")))
    assert rc == 0, out


def test_rules_variables_read_the_set_the_visitor_got(nginx, tmp_path):
    conf = CONF.replace("""        location = /metrics {""", """        location = /vars {
            add_header X-Offers $cef_rules_offers always;
            add_header X-Decision $cef_rules_decision always;
            add_header X-Hash $cef_rules_hash always;
            return 200 "$cef_rules_html";
        }
        location = /metrics {""")
    f = files(tmp_path, "one", "two")
    edge = Edge(nginx, conf=conf)

    # nothing served: not found, as without cef_rules
    status, headers, body = request(edge.inst, "/vars",
                                    headers={"Cookie": "vid=" + vid_of(1)})
    assert status == 200 and body == b"", (headers, body)
    assert "x-offers" not in headers

    v1 = edge.publish(f["one"])
    served_by_all(edge, "one", v1["hash"])
    v2 = edge.publish(f["two"], "--canary", "50%")
    wait_until(lambda: (v2["hash"], "canary") in edge.versions(),
               "the canary")
    time.sleep(0.6)             # every worker polled (250 ms) and switched

    seen = set()
    for i in range(40):
        tag = edge.page(vid_of(i))
        status, headers, body = request(
            edge.inst, "/vars", headers={"Cookie": "vid=" + vid_of(i)})
        assert status == 200
        want = v1 if tag == "one" else v2
        assert headers["x-hash"] == want["hash"]
        assert headers["x-offers"] == "hero=hero-" + tag
        assert body.decode() == "hero: <b>%s</b>\n" % tag
        assert headers["x-decision"].startswith(
            "rules=%s hero=hero-%s/" % (want["hash"][:12], tag)), headers
        seen.add(tag)
    assert seen == {"one", "two"}


def test_goal_value_without_bounds_in_a_version_is_refused(nginx, tmp_path):
    conf = GOAL_CONF.replace("cef_goal purchase;",
                             "cef_goal purchase value=$arg_total;")
    f = goal_files(tmp_path, one=True)
    bounded = tmp_path / "bounded.yaml"
    bounded.write_text(goal_set("bounded").replace(
        "purchase: {}", "purchase: {min: 0, max: 1000}"))
    edge = Edge(nginx, conf=conf)
    v1 = edge.publish(bounded)
    served_by_all(edge, "bounded", v1["hash"])
    status, _, _ = request(edge.inst, "/page.html?total=12.5",
                           headers={"Cookie": "vid=" + vid_of(3)})
    assert status == 200
    x = wait_until(lambda: [x for x in edge.log_lines()
                            if x["uri"] == "/page.html?total=12.5"],
                   "the log line")
    assert json.loads(x[-1]["goal"])["value"] == 12.5

    bad = edge.publish(f["one"])        # purchase without min:/max:
    wait_until(lambda: (bad["hash"], "failed") in edge.versions(),
               "the failed state")
    assert 'cef_goal: goal "purchase" takes no value: declare its bounds ' \
        '(min: and max:) in "store:shop@%s" to record one, in %s:' \
        % (bad["hash"], edge.inst.conf) in edge.inst.log_text()
    assert all(edge.page(vid_of(i)) == "bounded" for i in range(10))
