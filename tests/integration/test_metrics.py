# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""Prometheus metrics in a shared zone: exact across workers, kept on reload."""

import re
import time

import pytest

from cef_fixtures import load_store, signed, write_secret
from client import request

SIGN = b"metrics-signing-secret"

RULES = """
version: 1
offers:
  gold-hero:
    slot: hero
    html: '<b>gold</b>'
rules:
  - name: gold
    when: '"gold" in profile.segments'
    show: gold-hero
"""

CONF = """
    cef_store @PREFIX@/store;
    cef_store_secret @PREFIX@/store.secret;
    cef_metrics_zone cef_metrics 1m;

    server {
        listen 127.0.0.1:@PORT@;
        root @PREFIX@/html;
        cef on;
        cef_rules @PREFIX@/rules.yaml;
        cef_signing_secret @PREFIX@/signing.secret;
        cef_key customer $cookie_c signed;

        location = /cef/metrics {
            cef_metrics;
        }
    }
"""

PAGE = b"<p><!--cef:slot hero-->default<!--/cef:slot--></p>"


def metrics(inst):
    status, headers, body = request(inst, "/cef/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain")
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


@pytest.fixture
def shop(nginx):
    inst = nginx.prepare(CONF)
    write_secret(inst.prefix / "store.secret", b"metrics-store-secret")
    write_secret(inst.prefix / "signing.secret", SIGN)
    (inst.prefix / "rules.yaml").write_text(RULES)
    (inst.prefix / "html" / "page.html").write_bytes(PAGE)
    (inst.prefix / "html" / "a.css").write_bytes(b"a{}")
    load_store(inst.prefix / "store", inst.prefix / "store.secret")
    return inst.start()


def test_counters_add_up_across_workers_and_survive_reload(shop):
    gold = {"Cookie": "c=" + signed(SIGN, "customer", "1001")}
    other = {"Cookie": "c=" + signed(SIGN, "customer", "1002")}
    before = metrics(shop)
    assert before['cef_responses_total{result="personalised"}'] == 0

    for i in range(30):
        assert request(shop, "/page.html", headers=gold)[2] == b"<p><b>gold</b></p>"
        assert request(shop, "/page.html", headers=other)[2] == b"<p>default</p>"
        assert request(shop, "/page.html")[2] == b"<p>default</p>"
        request(shop, "/page.html", method="HEAD")
        request(shop, "/a.css")

    m = metrics(shop)
    assert m['cef_responses_total{result="personalised"}'] == 30
    assert m['cef_responses_total{result="default"}'] == 60
    assert m['cef_skipped_total{reason="head"}'] == 30
    assert m['cef_skipped_total{reason="type"}'] >= 30   # + /cef/metrics
    assert m['cef_store_lookups_total{result="hit"}'] == 60
    assert m['cef_store_lookups_total{result="miss"}'] == 0
    assert m['cef_impressions_total{offer="gold-hero",variant="treatment"}'] == 30
    assert m['cef_slots_total{result="filled"}'] == 30
    assert m['cef_slots_total{result="default"}'] == 60
    # a HEAD is decided too: its headers are those of the GET
    assert m['cef_decision_seconds_count'] == 120
    assert m['cef_decision_seconds_bucket{le="+Inf"}'] == 120
    assert m["cef_store_up"] == 1
    assert m["cef_store_profiles"] == 5
    assert 0 <= m["cef_store_age_seconds"] < 120
    assert any(k.startswith('cef_store_info{snapshot="snap-1"') for k in m)
    assert any(k.startswith("cef_rules_info{hash=") for k in m)

    # two workers served these: the numbers are the zone's, not one worker's
    assert len(shop.worker_pids()) == 2

    shop.reload()
    after = metrics(shop)
    assert after['cef_responses_total{result="personalised"}'] == 30
    assert after['cef_impressions_total{offer="gold-hero",variant="treatment"}'] == 30
    request(shop, "/page.html", headers=gold)
    assert metrics(shop)['cef_responses_total{result="personalised"}'] == 31


def test_store_missing_counts_fail_open(nginx):
    inst = nginx.prepare(CONF)
    write_secret(inst.prefix / "store.secret", b"metrics-store-secret")
    write_secret(inst.prefix / "signing.secret", SIGN)
    (inst.prefix / "rules.yaml").write_text(RULES)
    (inst.prefix / "html" / "page.html").write_bytes(PAGE)
    inst.start()
    gold = {"Cookie": "c=" + signed(SIGN, "customer", "1001")}
    for _ in range(5):
        assert request(inst, "/page.html", headers=gold)[2] == b"<p>default</p>"
    m = metrics(inst)
    assert m['cef_fail_open_total{reason="store"}'] == 5
    assert m["cef_store_up"] == 0


def test_metrics_zone_too_small_is_a_config_error(nginx):
    rc, out = nginx.check("cef_metrics_zone m 8k;")
    assert rc != 0 and re.search(r'invalid zone size "8k".*nginx\.conf:\d+',
                                 out), out


HOLDOUT_RULES = """
version: 1
offers:
  hello:
    slot: hero
    html: '<b>hello</b>'
rules:
  - name: everyone
    show: hello
slots:
  hero:
    holdout: 50%
"""


def test_holdout_is_counted_as_control_and_reported(nginx):
    import base64
    import json
    inst = nginx.prepare(CONF.replace(
        "cef_key customer $cookie_c signed;",
        "cef_key customer $cookie_c signed;\n"
        "        cef_visitor_cookie vid;\n"
        "        location = /cef/decide { cef_decide; }\n"
        "        location = /vars { return 200 '$cef_variant'; }"))
    write_secret(inst.prefix / "store.secret", b"metrics-store-secret")
    write_secret(inst.prefix / "signing.secret", SIGN)
    (inst.prefix / "rules.yaml").write_text(HOLDOUT_RULES)
    (inst.prefix / "html" / "page.html").write_bytes(PAGE)
    load_store(inst.prefix / "store", inst.prefix / "store.secret")
    inst.start()

    control = treated = 0
    for i in range(40):
        vid = base64.urlsafe_b64encode(b"holdout-vis-%04d" % i).rstrip(b"=")
        cookie = {"Cookie": "vid=" + vid.decode()}
        body = request(inst, "/page.html", headers=cookie)[2]
        d = json.loads(request(inst, "/cef/decide", headers=cookie)[2])
        variant = request(inst, "/vars", headers=cookie)[2].decode()
        hero = d["slots"]["hero"]
        if body == b"<p>default</p>":
            control += 1
            assert hero["variant"] == "control" and hero["offer"] is None
            assert hero["would_have"] == "hello"
            assert variant == "hero=control"
        else:
            treated += 1
            assert body == b"<p><b>hello</b></p>"
            assert hero["variant"] == "treatment" and hero["offer"] == "hello"
            assert variant == "hero=treatment"

    m = metrics(inst)
    assert control > 5 and treated > 5
    assert m['cef_responses_total{result="control"}'] == control
    assert m['cef_responses_total{result="personalised"}'] == treated
    assert m['cef_impressions_total{offer="hello",variant="treatment"}'] == \
        treated
