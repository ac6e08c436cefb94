# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""HTTP/2: a personalised page over h2 is byte for byte the page over
HTTP/1.1, with the same caching policy, validators and cookies.

One server listens twice: @PORT@ (HTTP/1.1) and @PORT2@ (h2c, "listen ...
http2" on 1.22, "http2 on" since 1.25.1: conftest's @LISTEN_H2@).  The h2
client is curl (--http2-prior-knowledge), a real HTTP/2 implementation
(nghttp2); every h2 answer is checked to have come over HTTP/2.

Covered where the filter chain differs under h2: a streamed body (the h2
stream's flow control and DATA frames instead of chunked encoding), a
buffered one, proxy_cache, a static file, gzip, the cookies (h2 clients
send cookie crumbs, several "cookie" fields that nginx joins), the
Set-Cookie of a new visitor, and ETag / If-None-Match / 304."""

import gzip
import re
import subprocess

import pytest

from cef_fixtures import load_store, signed, write_secret
from client import request

SIGN = b"http2-signing-secret"

RULES = r"""
version: 1
offers:
  gold-hero:
    slot: hero
    html: '<div class="offer">Hello {{ profile.first_name }}, gold perks inside</div>'
  welcome:
    slot: footer
    html: '<p>Welcome, new visitor</p>'
rules:
  - name: gold
    when: '"gold" in profile.segments'
    show: gold-hero
  - name: new visitors
    when: visitor.new
    show: welcome
"""

CONF = """
    cef_store @PREFIX@/store;
    cef_store_secret @PREFIX@/store.secret;
    upstream stub { server @UPSTREAM@; }
    proxy_cache_path @PREFIX@/cache keys_zone=pc:1m;

    server {
        listen 127.0.0.1:@PORT@;
        @LISTEN_H2@
        root @PREFIX@/html;

        cef on;
        cef_rules @PREFIX@/rules.yaml;
        cef_signing_secret @PREFIX@/signing.secret;
        cef_key customer $cookie_shop_customer signed;
        cef_visitor_cookie vid;

        location /static/ {
        }
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
        }
        location /gz/ {
            proxy_pass http://stub/;
            gzip on;
            gzip_types text/html;
            gzip_min_length 1;
        }
    }
"""

# the slots at both ends of a page long enough for many h2 DATA frames
# (nginx's default h2 chunk size is 8k) and more than the initial 64k
# flow-control window
FILLER = b"".join(b"<p>product %05d &amp; more <!-- c --></p>\n" % i
                  for i in range(4000))
PAGE = (b"<html><head><title>shop</title></head><body>\n"
        b"<!--cef:slot hero--><h1>Autumn collection</h1><!--/cef:slot-->\n"
        + FILLER +
        b"<!--cef:slot footer--><p>newsletter</p><!--/cef:slot-->\n"
        b"</body></html>\n")
GENERIC = re.sub(rb"<!--/?cef:slot[^>]*-->", b"", PAGE)
GOLD = b'<div class="offer">Hello Greta, gold perks inside</div>'
WELCOME = b"<p>Welcome, new visitor</p>"

VID = "A" * 21 + "Q"
GOLD_COOKIES = [("shop_customer", signed(SIGN, "customer", "1001")),
                ("vid", VID)]
ANON_COOKIES = [("vid", "B" * 21 + "Q")]

PERSONAS = {
    "gold": (GOLD_COOKIES,
             GENERIC.replace(b"<h1>Autumn collection</h1>", GOLD)),
    "anonymous": (ANON_COOKIES, GENERIC),
    "new": ([], GENERIC.replace(b"<p>newsletter</p>", WELCOME)),
}

SOURCES = {
    "static": "/static/page.html",
    # streamed: written in 4 KiB pieces, chunked, cut inside the markers
    "streamed": "/up/body/page?chunked=1&chunk=4096",
    # cut inside both slots' markers
    "split": "/up/body/page?split=%d,%d,%d,%d" % (
        PAGE.index(b"<!--cef:slot hero") + 2,
        PAGE.index(b"<!--cef:slot hero") + 9,
        PAGE.index(b"<!--cef:slot footer") + 5,
        PAGE.index(b"<!--/cef:slot-->\n</body>") + 7),
    "buffered": "/buf/body/page",
    "proxy_cache": "/cached/body/page",
}


@pytest.fixture
def shop(nginx, upstream):
    inst = nginx.prepare(CONF)
    write_secret(inst.prefix / "store.secret", b"http2-store-secret")
    write_secret(inst.prefix / "signing.secret", SIGN)
    (inst.prefix / "rules.yaml").write_text(RULES)
    (inst.prefix / "html" / "static").mkdir(parents=True)
    (inst.prefix / "html" / "static" / "page.html").write_bytes(PAGE)
    load_store(inst.prefix / "store", inst.prefix / "store.secret")
    upstream.set_body("page", PAGE)
    return inst.start()


def cookie_header(cookies):
    return "; ".join("%s=%s" % c for c in cookies)


def h1(inst, path, cookies, extra=None):
    headers = dict(extra or {})
    if cookies:
        headers["Cookie"] = cookie_header(cookies)
    return request(inst, path, headers=headers)


def h2(inst, path, cookies=(), extra=None, crumbs=False):
    """(status, headers, body) over HTTP/2 with prior knowledge (curl).
    crumbs: every cookie in a "cookie" field of its own, as h2 clients
    may send them (RFC 9113 8.2.3), instead of one joined field."""
    hdr = inst.prefix / "h2-headers"
    body = inst.prefix / "h2-body"
    # curl writes no file for an empty body (a 304)
    body.write_bytes(b"")
    cmd = ["curl", "-sS", "--http2-prior-knowledge", "--max-time", "30",
           "-D", str(hdr), "-o", str(body), "-w", "%{http_version}"]
    fields = []
    if cookies:
        if crumbs:
            fields += ["cookie: %s=%s" % c for c in cookies]
        else:
            fields.append("cookie: " + cookie_header(cookies))
    fields += ["%s: %s" % kv for kv in (extra or {}).items()]
    for f in fields:
        cmd += ["-H", f]
    cmd.append("http://127.0.0.1:%d%s" % (inst.port(1), path))
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "2", "not answered over HTTP/2: %r" % p.stdout

    lines = hdr.read_text().splitlines()
    status = int(lines[0].split()[1])
    assert lines[0].startswith("HTTP/2 "), lines[0]
    headers = {}
    for line in lines[1:]:
        if not line.strip():
            continue
        k, _, v = line.partition(":")
        k, v = k.strip().lower(), v.strip()
        headers[k] = headers[k] + "\n" + v if k in headers else v
    return status, headers, body.read_bytes()


# headers that must be the same over h1 and h2 (Content-Length: neither
# carries one once the module rewrote the page)
SAME = ("content-type", "cache-control", "etag", "content-length",
        "last-modified", "vary")


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("persona", PERSONAS)
def test_h2_page_is_the_h1_page(shop, source, persona):
    cookies, expected = PERSONAS[persona]
    path = SOURCES[source]
    s1, hd1, b1 = h1(shop, path, cookies)
    s2, hd2, b2 = h2(shop, path, cookies)
    assert (s1, b1) == (200, expected)
    assert (s2, b2) == (200, expected)
    for name in SAME:
        assert hd1.get(name) == hd2.get(name), name
    if persona == "anonymous":
        assert "set-cookie" not in hd2
        assert "private" not in hd2.get("cache-control", "")
    else:
        assert hd2["cache-control"] == "private"
        assert "content-length" not in hd2


def test_cookie_crumbs_identify_the_visitor(shop):
    """Several "cookie" fields: nginx joins them before the module reads
    $cookie_shop_customer and the visitor cookie; the visitor is neither
    taken for a new one nor given a new id."""
    cookies, expected = PERSONAS["gold"]
    for crumbs in (False, True):
        status, headers, body = h2(shop, "/up/body/page", cookies,
                                   crumbs=crumbs)
        assert (status, body) == (200, expected), crumbs
        assert "set-cookie" not in headers, crumbs


def test_new_visitor_gets_the_visitor_cookie_over_h2(shop):
    status, headers, body = h2(shop, "/up/body/page")
    assert (status, body) == (200, PERSONAS["new"][1])
    cookie = headers["set-cookie"]
    assert "\n" not in cookie
    m = re.match(r"vid=([A-Za-z0-9_-]{22});", cookie)
    assert m, cookie
    # the id it was given makes it a returning visitor, over h2 as over h1
    back = [("vid", m.group(1))]
    assert h2(shop, "/up/body/page", back)[2] == GENERIC
    assert h1(shop, "/up/body/page", back)[2] == GENERIC


# the upstream sends validators (and answers conditionals itself): the
# module replaces them with its rendering's ETag
VALIDATED = "&etag=%22page-v1%22&lm=1"


@pytest.mark.parametrize("source", ["static", "streamed", "proxy_cache"])
def test_etag_and_304_over_h2(shop, source):
    path = SOURCES[source]
    if source != "static":
        path += ("&" if "?" in path else "?") + VALIDATED[1:]
    tags = {}
    for persona in ("gold", "anonymous"):
        cookies, expected = PERSONAS[persona]
        _, hd1, _ = h1(shop, path, cookies)
        _, hd2, _ = h2(shop, path, cookies)
        assert hd1["etag"] == hd2["etag"]
        tags[persona] = hd2["etag"]
    assert tags["gold"] != tags["anonymous"]

    cookies = PERSONAS["gold"][0]
    status, headers, body = h2(shop, path, cookies,
                               {"if-none-match": tags["gold"]})
    assert (status, body) == (304, b"")
    assert headers["etag"] == tags["gold"]
    assert headers["cache-control"] == "private"
    # another rendering's tag gets this visitor's page
    status, _, body = h2(shop, path, cookies,
                         {"if-none-match": tags["anonymous"]})
    assert (status, body) == (200, PERSONAS["gold"][1])


def test_gzip_over_h2(shop):
    cookies, expected = PERSONAS["gold"]
    extra = {"accept-encoding": "gzip"}
    s1, hd1, b1 = h1(shop, "/gz/body/page?chunked=1&chunk=4096", cookies,
                     {"Accept-Encoding": "gzip"})
    s2, hd2, b2 = h2(shop, "/gz/body/page?chunked=1&chunk=4096", cookies,
                     extra)
    assert (s1, s2) == (200, 200)
    assert hd1["content-encoding"] == hd2["content-encoding"] == "gzip"
    assert gzip.decompress(b1) == gzip.decompress(b2) == expected
