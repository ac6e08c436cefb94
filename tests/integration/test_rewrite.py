# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""The slot rewrite: a generic page (upstream, cache or disk) leaves nginx with
its slots filled for this visitor, streaming, cache-safe and fail-open."""

import concurrent.futures
import gzip
import re
import time

import pytest

from cef_fixtures import load_store, signed, write_secret
from client import request
from conftest import VALGRIND

SIGN = b"rewrite-signing-secret"

RULES = r"""
version: 1
offers:
  gold-hero:
    slot: hero
    html: '<div class="offer">Hello {{ profile.first_name }}, gold perks inside</div>'
  churn-hero:
    slot: hero
    html: '<div class="offer">We miss you, {{ profile.first_name | default("friend") }}</div>'
  welcome:
    slot: footer
    html: '<p>Welcome, new visitor</p>'
  empty-offer:
    slot: sidebar
    html: ''
rules:
  - name: gold
    when: '"gold" in profile.segments'
    show: gold-hero
    priority: 50
  - name: churn
    when: profile.churn_risk >= 0.7
    show: churn-hero
    priority: 40
  - name: html names
    when: profile.first_name starts_with "<"
    show: churn-hero
    priority: 30
  - name: new visitors
    when: visitor.new
    show: welcome
  - name: never
    when: 'false'
    show: empty-offer
"""

CONF = """
    cef_store @PREFIX@/store;
    cef_store_secret @PREFIX@/store.secret;
    upstream stub { server @UPSTREAM@; }
    proxy_cache_path @PREFIX@/cache keys_zone=pc:1m;

    server {
        listen 127.0.0.1:@PORT@;
        root @PREFIX@/html;

        cef on;
        cef_rules @PREFIX@/rules.yaml;
        cef_signing_secret @PREFIX@/signing.secret;
        cef_key customer $cookie_shop_customer signed;
        cef_visitor_cookie vid;

        location /up/ {
            proxy_pass http://stub/;
            proxy_buffering off;
        }
        location /buf/ {
            proxy_pass http://stub/;
        }
        location /cached/ {
            proxy_pass http://stub/;
            proxy_cache pc;
            proxy_cache_valid 200 10m;
            add_header X-Cache $upstream_cache_status;
        }
        location /gz/ {
            proxy_pass http://stub/;
            gzip on;
            gzip_types text/html;
            gzip_min_length 1;
        }
        location /ssi/ {
            ssi on;
        }
        location /small/ {
            proxy_pass http://stub/;
            proxy_buffering off;
            cef_slot_max_size 16;
        }
        location /nocc/ {
            proxy_pass http://stub/;
            cef_cache_control off;
        }
        location = /api/decide {
            cef_decide;
        }
        location = /vars {
            return 200 "$cef_offers|$cef_variant|$cef_decision_us";
        }
        location /any-status/ {
            proxy_pass http://stub/;
            cef_statuses 200 404;
        }
        location /budget/ {
            cef_budget 1us;
            proxy_pass http://stub/;
        }
        location /nostore/ {
            proxy_pass http://stub/;
            cef_cache_control no-store;
        }
    }
"""

PAGE = (b"<html><head><title>shop</title></head><body>\n"
        b"<!--cef:slot hero--><h1>Autumn collection</h1><!--/cef:slot-->\n"
        b"<p>products &amp; more <!-- a comment --></p>\n"
        b"<!--cef:slot sidebar--><aside>free returns</aside><!--/cef:slot-->\n"
        b"<!--cef:slot footer--><p>newsletter</p><!--/cef:slot-->\n"
        b"</body></html>\n")

GENERIC = re.sub(rb"<!--/?cef:slot[^>]*-->", b"", PAGE)


def gold_cookie():
    return {"Cookie": "shop_customer=%s; vid=%s"
            % (signed(SIGN, "customer", "1001"), "A" * 21 + "Q")}


def churn_cookie():
    return {"Cookie": "shop_customer=%s; vid=%s"
            % (signed(SIGN, "customer", "1002"), "A" * 21 + "Q")}


def returning_anonymous():
    return {"Cookie": "vid=" + "B" * 21 + "Q"}


def expected(hero=None, footer=None):
    out = GENERIC
    if hero is not None:
        out = out.replace(b"<h1>Autumn collection</h1>", hero)
    if footer is not None:
        out = out.replace(b"<p>newsletter</p>", footer)
    return out


GOLD = b'<div class="offer">Hello Greta, gold perks inside</div>'
CHURN = b'<div class="offer">We miss you, Chris</div>'
WELCOME = b"<p>Welcome, new visitor</p>"


@pytest.fixture
def shop(nginx, upstream):
    inst = nginx.prepare(CONF)
    write_secret(inst.prefix / "store.secret", b"rewrite-store-secret")
    write_secret(inst.prefix / "signing.secret", SIGN)
    (inst.prefix / "rules.yaml").write_text(RULES)
    (inst.prefix / "html" / "page.html").write_bytes(PAGE)
    load_store(inst.prefix / "store", inst.prefix / "store.secret")
    upstream.set_body("page", PAGE)
    return inst.start()


def test_gold_customer_sees_the_offer(shop):
    status, headers, body = request(shop, "/page.html", headers=gold_cookie())
    assert status == 200
    assert body == expected(hero=GOLD)
    assert headers["cache-control"] == "private"
    assert "content-length" not in headers


def test_returning_anonymous_visitor_gets_the_generic_page(shop):
    status, headers, body = request(shop, "/page.html",
                                    headers=returning_anonymous())
    assert (status, body) == (200, GENERIC)
    assert "private" not in headers.get("cache-control", "")


def test_new_visitor_rule_and_cookie(shop):
    status, headers, body = request(shop, "/page.html")
    assert body == expected(footer=WELCOME)
    assert headers["set-cookie"].startswith("vid=")
    assert headers["cache-control"] == "private"


def test_profile_values_are_html_escaped(shop):
    cookie = {"Cookie": "shop_customer=" + signed(SIGN, "customer", "1003")}
    body = request(shop, "/page.html", headers=cookie)[2]
    assert b"<script>" not in body
    assert b"We miss you, &lt;script&gt;alert(1)&lt;/script&gt;" in body


@pytest.mark.parametrize("location", ["up", "buf"])
def test_markers_split_at_every_position(shop, location):
    want = expected(hero=CHURN)
    for cut in range(1, len(PAGE)):
        status, _, body = request(shop, "/%s/body/page?split=%d&delay=2"
                                  % (location, cut), headers=churn_cookie())
        assert (status, body) == (200, want), cut


def test_byte_by_byte_chunked(shop):
    status, _, body = request(shop, "/up/body/page?chunk=1&chunked=1",
                              headers=gold_cookie())
    assert (status, body) == (200, expected(hero=GOLD))


@pytest.mark.parametrize("page, want", [
    # unknown slot name: the default stays, the markers go
    (b"a<!--cef:slot nope-->x<!--/cef:slot-->b", b"axb"),
    # unterminated slot: the original bytes, unchanged
    (b"a<!--cef:slot hero-->never closed", b"a<!--cef:slot hero-->never closed"),
    # no nesting: an inner open marker is default content
    (b"<!--cef:slot footer-->1<!--cef:slot hero-->2<!--/cef:slot-->3"
     b"<!--/cef:slot-->", b"<p>Welcome, new visitor</p>3<!--/cef:slot-->"),
    # near misses are content
    (b"<!--cef:slo <!--cef:slot -->", b"<!--cef:slo <!--cef:slot -->"),
    # an empty offer html leaves nothing (the rule never matches: default)
    (b"[<!--cef:slot sidebar-->d<!--/cef:slot-->]", b"[d]"),
])
def test_edge_cases(shop, upstream, page, want):
    upstream.set_body("edge", page)
    for q in ("", "?chunk=1&chunked=1"):
        status, _, body = request(shop, "/up/body/edge" + q)
        assert (status, body) == (200, want), q


def test_oversized_default_goes_out_unchanged(shop, upstream):
    page = (b"<!--cef:slot hero-->" + b"x" * 40 + b"<!--/cef:slot-->"
            b"<!--cef:slot footer-->short<!--/cef:slot-->")
    upstream.set_body("big-default", page)
    status, _, body = request(shop, "/small/body/big-default?chunk=7",
                              headers=churn_cookie())
    assert body == (b"<!--cef:slot hero-->" + b"x" * 40 + b"<!--/cef:slot-->"
                    b"short")


def test_fifty_slots(shop, upstream):
    page = b"".join(b"<i>%d</i><!--cef:slot hero-->d%d<!--/cef:slot-->" % (i, i)
                    for i in range(50))
    upstream.set_body("fifty", page)
    body = request(shop, "/up/body/fifty?chunk=13", headers=gold_cookie())[2]
    assert body == b"".join(b"<i>%d</i>" % i + GOLD for i in range(50))


def test_short_and_long_pieces(shop, upstream):
    """The filter copies short pieces (up to 512 bytes) several into one
    buffer and points to long ones: defaults, stretches and offers of
    every size around that limit, split into pieces of every kind of
    size, come out in order."""
    parts, want = [], []
    for i, n in enumerate((0, 1, 100, 511, 512, 513, 900, 2000, 30, 5000)):
        text = (b"<b>%d</b>" % i) * (n // 8 + 1)
        default = (b"d%d-" % i) * (n // 4)
        parts.append(text + b"<!--cef:slot nope-->" + default
                     + b"<!--/cef:slot--><!--cef:slot hero-->x"
                     b"<!--/cef:slot-->")
        want.append(text + default + GOLD)
    page = b"".join(parts)
    upstream.set_body("pieces", page)
    for chunk in (1, 7, 300, 512, 513, 4000, len(page)):
        status, _, body = request(shop, "/up/body/pieces?chunk=%d" % chunk,
                                  headers=gold_cookie())
        assert (status, body) == (200, b"".join(want)), chunk


def test_many_short_slots_streamed_in_bounded_memory(shop, upstream):
    """Short pieces are copied into buffers that are reused once sent: a
    long body of short slots, streamed, does not grow the worker by the
    size of its copies."""
    unit = b"<i>%d</i><!--cef:slot hero-->d<!--/cef:slot-->"
    page = b"".join(unit % (i % 1000) for i in range(160000))
    want = b"".join(b"<i>%d</i>" % (i % 1000) + GOLD for i in range(160000))
    assert len(want) > 8 * 1024 * 1024
    upstream.set_body("short-slots", page)
    before = shop.memory_kb("VmHWM")
    status, _, body = request(shop, "/up/body/short-slots?chunk=4096",
                              headers=gold_cookie())
    assert status == 200
    assert body == want
    after = shop.memory_kb("VmHWM")
    growth = max(after[p] - before.get(p, after[p]) for p in after)
    print("worker VmHWM growth for %d kB of short pieces: %d kB"
          % (len(want) // 1024, growth))
    assert growth < 4 * 1024


def test_ten_megabytes_with_a_slot_at_the_end(shop, upstream):
    filler = (b"<p>" + b"lorem ipsum <!-- c --> " * 40 + b"</p>\n") * 11500
    page = filler + b"<!--cef:slot hero-->end<!--/cef:slot-->"
    assert len(page) > 10 * 1024 * 1024
    upstream.set_body("ten", page)
    before = shop.memory_kb("VmHWM")
    status, _, body = request(shop, "/buf/body/ten?chunk=65536",
                              headers=gold_cookie())
    assert status == 200
    assert body == filler + GOLD
    after = shop.memory_kb("VmHWM")
    growth = max(after[p] - before.get(p, after[p]) for p in after)
    print("worker VmHWM growth for a 10 MB page: %d kB" % growth)
    assert growth < 4 * 1024


def test_gzip_encoded_upstream_is_not_touched(shop):
    status, headers, body = request(shop, "/up/body/page?gzip=1",
                                    headers=dict(gold_cookie(),
                                                 **{"Accept-Encoding":
                                                    "gzip"}))
    assert headers["content-encoding"] == "gzip"
    assert gzip.decompress(body) == PAGE


def test_gzip_on_compresses_the_personalised_page(shop):
    status, headers, body = request(shop, "/gz/body/page",
                                    headers=dict(gold_cookie(),
                                                 **{"Accept-Encoding":
                                                    "gzip"}))
    assert headers["content-encoding"] == "gzip"
    assert gzip.decompress(body) == expected(hero=GOLD)


def test_ssi_include_with_a_slot(shop):
    html = shop.prefix / "html"
    (html / "ssi").mkdir()
    (html / "ssi" / "index.html").write_bytes(
        b"top<!--cef:slot footer-->f<!--/cef:slot-->"
        b'<!--# include virtual="/page.html" -->bottom')
    body = request(shop, "/ssi/index.html", headers=gold_cookie())[2]
    assert body == b"topf" + expected(hero=GOLD) + b"bottom"


def test_head_gets_the_headers_of_the_get_and_304(shop):
    status, head, body = request(shop, "/page.html", method="HEAD",
                                 headers=gold_cookie())
    assert (status, body) == (200, b"")
    assert "content-length" not in head and "last-modified" not in head

    status, headers, body = request(shop, "/page.html", headers=gold_cookie())
    assert (head["etag"], head["cache-control"]) == \
        (headers["etag"], headers["cache-control"])
    status, _, body = request(shop, "/page.html", headers=dict(
        gold_cookie(), **{"If-None-Match": headers["etag"]}))
    assert (status, body) == (304, b"")


def test_proxy_cache_never_leaks_one_visitors_offer(shop, upstream):
    path = "/body/page?cache-leak"
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        first = request(shop, "/cached" + path, headers=gold_cookie())
        results = list(pool.map(
            lambda h: request(shop, "/cached" + path, headers=h),
            [gold_cookie(), churn_cookie(), returning_anonymous()] * 5))
    assert first[1]["x-cache"] == "MISS"
    assert upstream.hit_count(path) == 1
    for (status, headers, body), who in zip(results, [GOLD, CHURN, None] * 5):
        assert headers["x-cache"] == "HIT"
        assert body == expected(hero=who)
        if who is not None:
            assert headers["cache-control"] == "private"


def test_cache_control_directive(shop):
    h = request(shop, "/nocc/body/page", headers=gold_cookie())[1]
    assert "cache-control" not in h
    h = request(shop, "/nostore/body/page", headers=gold_cookie())[1]
    assert h["cache-control"] == "private, no-store"


def test_store_missing_means_generic_page(shop):
    import shutil
    shutil.rmtree(shop.prefix / "store")
    shop.reload()
    if VALGRIND:
        # one process keeps its store handle across a reload (no new
        # workers); it notices the store is gone within the 1 s check
        time.sleep(1.2)
    status, _, body = request(shop, "/page.html", headers=gold_cookie())
    # anonymous now (no store): a new-visitor footer, but no profile offer
    assert status == 200
    assert GOLD not in body and b"Autumn collection" in body


def test_non_200_is_not_rewritten(shop, upstream):
    status, _, body = request(shop, "/up/body/page?status=404",
                              headers=gold_cookie())
    assert (status, body) == (404, PAGE)
    status, _, body = request(shop, "/any-status/body/page?status=404",
                              headers=gold_cookie())
    assert (status, body) == (404, expected(hero=GOLD))


def test_budget_exceeded_serves_the_generic_page(shop):
    status, headers, body = request(shop, "/budget/body/page",
                                    headers=gold_cookie())
    assert (status, body) == (200, GENERIC)
    assert "over cef_budget" in shop.log_text()
    status, _, body = request(shop, "/up/body/page", headers=gold_cookie())
    assert body == expected(hero=GOLD)


def test_decision_variables(shop):
    body = request(shop, "/vars", headers=gold_cookie())[2].decode()
    offers, variant, us = body.split("|")
    assert offers == "hero=gold-hero,footer=-,sidebar=-"
    assert variant == "hero=treatment,footer=-,sidebar=-"
    assert float(us) > 0
    body = request(shop, "/vars", headers=returning_anonymous())[2].decode()
    assert body.split("|")[0] == "hero=-,footer=-,sidebar=-"


def test_decision_api(shop):
    import json
    status, headers, body = request(shop, "/api/decide",
                                    headers=churn_cookie())
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert headers["cache-control"] == "private, no-store"
    d = json.loads(body)
    assert d["profile"] == "p-churn" and d["key_type"] == "customer"
    assert d["slots"]["hero"] == {"offer": "churn-hero",
                                  "html": CHURN.decode(),
                                  "variant": "treatment",
                                  "plugin": "priority"}
    assert d["slots"]["footer"] == {"offer": None, "html": None,
                                    "variant": "-", "plugin": "priority"}
    assert len(d["decision"]["rules"]) == 64

    d = json.loads(request(shop, "/api/decide?slots=footer")[2])
    assert list(d["slots"]) == ["footer"]
    assert d["slots"]["footer"]["html"] == WELCOME.decode()
    assert d["profile"] is None and len(d["visitor"]) == 22

    # JSON escaping of HTML that holds quotes and markup
    cookie = {"Cookie": "shop_customer=" + signed(SIGN, "customer", "1003")}
    d = json.loads(request(shop, "/api/decide", headers=cookie)[2])
    assert d["slots"]["hero"]["html"] == \
        '<div class="offer">We miss you, &lt;script&gt;alert(1)&lt;/script&gt;</div>'
