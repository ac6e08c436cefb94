# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""The rewrite among nginx's other filters: the addition filter calling the
chain again from inside it, the slice module delivering a page in pieces,
SSI subrequests, and an upstream that dies half-way.  Modelled on the
nginx-tests cases for addition, slice and ssi."""

import re
import socket
import time

import pytest

from cef_fixtures import load_store, signed, write_secret
from client import request

SIGN = b"chain-signing-secret"

RULES = r"""
version: 1
offers:
  gold-hero:
    slot: hero
    html: '<b class="offer">Hello {{ profile.first_name }}</b>'
  gold-footer:
    slot: footer
    html: '<i>gold footer</i>'
rules:
  - name: gold
    when: '"gold" in profile.segments'
    show: [gold-hero, gold-footer]
"""

CONF = """
    cef_store @PREFIX@/store;
    cef_store_secret @PREFIX@/store.secret;
    upstream stub { server @UPSTREAM@; }

    server {
        listen 127.0.0.1:@PORT@;
        root @PREFIX@/html;
        send_timeout 30s;

        cef on;
        cef_rules @PREFIX@/rules.yaml;
        cef_signing_secret @PREFIX@/signing.secret;
        cef_key customer $cookie_shop_customer signed;
        cef_visitor_cookie vid;

        location /after/ {
            alias @PREFIX@/html/;
            add_after_body /parts/after.html;
        }
        location /both/ {
            alias @PREFIX@/html/;
            add_before_body /parts/before.html;
            add_after_body /parts/after.html;
        }
        location /up-after/ {
            proxy_pass http://stub/;
            proxy_buffering off;
            add_after_body /parts/after.html;
        }
        location /slice/ {
            slice 64;
            proxy_pass http://stub/;
            proxy_set_header Range $slice_range;
        }
        location /slice5/ {
            slice 5;
            proxy_pass http://stub/;
            proxy_set_header Range $slice_range;
        }
        location /slice-off/ {
            cef off;
            slice 64;
            proxy_pass http://stub/;
            proxy_set_header Range $slice_range;
        }
        location /ssi/ {
            ssi on;
        }
        location /ssi-off/ {
            cef off;
            ssi on;
            alias @PREFIX@/html/ssi/;
        }
        location /ssi-up/ {
            ssi on;
            proxy_pass http://stub/;
        }
        location /ssi-up-404/ {
            ssi on;
            proxy_pass http://stub/;
            cef_statuses 200 404;
        }
        location /up/ {
            proxy_pass http://stub/;
            proxy_buffering off;
        }
        location /buf/ {
            proxy_pass http://stub/;
        }
        location /off/ {
            cef off;
            proxy_pass http://stub/;
            proxy_buffering off;
        }
    }
"""

PAGE = (b"<html><body>\n"
        b"<!--cef:slot hero--><h1>Autumn collection</h1><!--/cef:slot-->\n"
        b"<p>products &amp; more <!-- a comment --></p>\n"
        + b"<p>filler line to make the page span several slices</p>\n" * 6
        + b"<!--cef:slot footer--><p>newsletter</p><!--/cef:slot-->\n"
        b"</body></html>\n")

GENERIC = re.sub(rb"<!--/?cef:slot[^>]*-->", b"", PAGE)
HERO = b'<b class="offer">Hello Greta</b>'
FOOTER = b"<i>gold footer</i>"
GOLD = (GENERIC.replace(b"<h1>Autumn collection</h1>", HERO)
        .replace(b"<p>newsletter</p>", FOOTER))

BEFORE = b"<div>before <!--cef:slot footer-->plain<!--/cef:slot--></div>\n"
AFTER = b"<div>after <!--cef:slot footer-->plain<!--/cef:slot--></div>\n"
BEFORE_GOLD = b"<div>before " + FOOTER + b"</div>\n"
AFTER_GOLD = b"<div>after " + FOOTER + b"</div>\n"


def gold():
    return {"Cookie": "shop_customer=%s; vid=%s"
            % (signed(SIGN, "customer", "1001"), "A" * 21 + "Q")}


@pytest.fixture
def shop(nginx, upstream):
    inst = nginx.prepare(CONF)
    write_secret(inst.prefix / "store.secret", b"chain-store-secret")
    write_secret(inst.prefix / "signing.secret", SIGN)
    (inst.prefix / "rules.yaml").write_text(RULES)
    html = inst.prefix / "html"
    (html / "page.html").write_bytes(PAGE)
    (html / "parts").mkdir()
    (html / "parts" / "before.html").write_bytes(BEFORE)
    (html / "parts" / "after.html").write_bytes(AFTER)
    load_store(inst.prefix / "store", inst.prefix / "store.secret")
    upstream.set_body("chain-page", PAGE)
    return inst.start()


# -- the addition filter (nginx-tests addition.t) ---------------------------

def test_add_after_body_sends_the_page_once(shop):
    status, headers, body = request(shop, "/after/page.html", headers=gold())
    assert status == 200
    assert body == GOLD + AFTER_GOLD
    assert headers["cache-control"] == "private"


def test_add_before_and_after_body(shop):
    status, _, body = request(shop, "/both/page.html", headers=gold())
    assert (status, body) == (200, BEFORE_GOLD + GOLD + AFTER_GOLD)


@pytest.mark.parametrize("query", ["", "?chunk=1", "?chunk=7&chunked=1",
                                   "?split=%d" % (len(PAGE) - 3)])
def test_add_after_body_with_a_streamed_upstream(shop, query):
    status, _, body = request(shop, "/up-after/body/chain-page" + query,
                              headers=gold())
    assert (status, body) == (200, GOLD + AFTER_GOLD), query


def test_add_after_body_with_a_marker_held_at_the_end(shop, upstream):
    """The page ends in a partial marker: the bytes the scanner held go
    out before the addition, once."""
    upstream.set_body("chain-tail", PAGE + b"<!--cef:sl")
    status, _, body = request(shop, "/up-after/body/chain-tail?chunk=5",
                              headers=gold())
    assert (status, body) == (200, GOLD + b"<!--cef:sl" + AFTER_GOLD)


def test_add_after_body_with_a_large_page(shop, upstream):
    """Megabytes of page: the client's socket fills, sends return
    NGX_AGAIN and the addition's last buffer arrives while most of the page
    is still in flight."""
    filler = b"<p>" + b"lorem ipsum <!-- c --> " * 40 + b"</p>\n"
    page = filler * 3000 + PAGE + filler * 3000 + b"<"
    want = filler * 3000 + GOLD + filler * 3000 + b"<" + AFTER_GOLD
    (shop.prefix / "html" / "large.html").write_bytes(page)
    upstream.set_body("chain-large", page)
    for path in ("/after/large.html", "/up-after/body/chain-large",
                 "/up-after/body/chain-large?chunk=65536"):
        status, _, body = request(shop, path, headers=gold())
        assert status == 200, path
        assert len(body) == len(want), path
        assert body == want, path


# -- the slice module (nginx-tests slice.t) ---------------------------------

SLICED = "/body/chain-page?ranges=1"


def test_slice_whole_page_is_personalised_across_slices(shop):
    """Both slots straddle a 64-byte slice boundary."""
    assert PAGE.index(b"<!--cef:slot hero-->") < 64 < \
        PAGE.index(b"<!--/cef:slot-->") + 16
    status, headers, body = request(shop, "/slice" + SLICED, headers=gold())
    assert (status, body) == (200, GOLD)
    assert headers["cache-control"] == "private"


def test_slice_of_five_bytes(shop):
    """Every marker and offer boundary falls inside some slice."""
    for spec in (None, "bytes=0-", "bytes=3-9"):
        extra = {"Range": spec} if spec else {}
        status, headers, body = request(shop, "/slice5" + SLICED,
                                        headers=dict(gold(), **extra))
        assert (status, body) == (200, GOLD), spec
    status, _, body = request(shop, "/slice5" + SLICED,
                              headers=dict(gold(), Range="bytes=12-40"))
    assert (status, body) == (206, PAGE[12:41])


@pytest.mark.parametrize("first, last, want", [
    (5, 20, 200), (0, 63, 200), (64, 199, 206), (130, 140, 206),
    (300, None, 206)])
def test_slice_range_is_never_a_truncated_200(shop, first, last, want):
    """A Range request through slices gets the whole personalised page (200)
    when its range starts in the first slice, else exactly the requested
    bytes of the upstream's page (206), never part of a page labelled as
    the whole."""
    spec = "bytes=%d-%s" % (first, "" if last is None else last)
    status, headers, body = request(shop, "/slice" + SLICED,
                                    headers=dict(gold(), Range=spec))
    assert status == want
    if want == 200:
        assert body == GOLD
        assert headers["cache-control"] == "private"
        assert "content-range" not in headers
    else:
        end = len(PAGE) - 1 if last is None else last
        assert body == PAGE[first:end + 1]
        assert headers["content-range"] == "bytes %d-%d/%d" % (
            first, end, len(PAGE))
        assert "private" not in headers.get("cache-control", "")


def test_slice_without_cef_is_untouched(shop):
    status, _, body = request(shop, "/slice-off" + SLICED, headers=dict(
        gold(), Range="bytes=64-199"))
    assert (status, body) == (206, PAGE[64:200])
    status, _, body = request(shop, "/slice-off" + SLICED, headers=gold())
    assert (status, body) == (200, PAGE)


# -- SSI subrequests follow the main request (nginx-tests ssi.t) ------------

def ssi_page(inst, name, text):
    d = inst.prefix / "html" / "ssi"
    d.mkdir(exist_ok=True)
    (d / name).write_bytes(text)


INCLUDE = b'top <!--# include virtual="/page.html" --> bottom'


def test_ssi_include_in_a_cef_off_page_is_not_personalised(shop):
    ssi_page(shop, "inc.html", INCLUDE)
    status, headers, body = request(shop, "/ssi-off/inc.html",
                                    headers=gold())
    assert (status, body) == (200, b"top " + PAGE + b" bottom")
    assert "private" not in headers.get("cache-control", "")


def test_ssi_include_in_a_404_page_is_not_personalised(shop, upstream):
    upstream.set_body("chain-404", INCLUDE)
    status, headers, body = request(shop, "/ssi-up/body/chain-404?status=404",
                                    headers=gold())
    assert (status, body) == (404, b"top " + PAGE + b" bottom")
    assert "private" not in headers.get("cache-control", "")


def test_ssi_include_in_a_personalised_404_page(shop, upstream):
    """cef_statuses 200 404: the 404 page is personalised, and so is its
    include."""
    upstream.set_body("chain-404", INCLUDE)
    status, headers, body = request(
        shop, "/ssi-up-404/body/chain-404?status=404", headers=gold())
    assert (status, body) == (404, b"top " + GOLD + b" bottom")
    assert headers["cache-control"] == "private"


def test_ssi_include_in_a_personalised_page_makes_it_private(shop):
    """The main page has no slot of its own: only the include is
    personalised, and that makes the whole response private."""
    ssi_page(shop, "inc.html", INCLUDE)
    status, headers, body = request(shop, "/ssi/inc.html", headers=gold())
    assert (status, body) == (200, b"top " + GOLD + b" bottom")
    assert headers["cache-control"] == "private"


def test_ssi_include_of_a_non_html_part_in_a_personalised_page(shop):
    (shop.prefix / "html" / "part.txt").write_bytes(
        b"<!--cef:slot hero-->text<!--/cef:slot-->")
    ssi_page(shop, "txt.html", b'[<!--# include virtual="/part.txt" -->]')
    status, _, body = request(shop, "/ssi/txt.html", headers=gold())
    assert (status, body) == (200, b"[<!--cef:slot hero-->text"
                                   b"<!--/cef:slot-->]")


# -- an upstream that dies half-way -----------------------------------------

def read_until_eof(port, path, headers, timeout):
    """The raw response and whether the server closed the connection
    (False: still open after timeout seconds)."""
    req = ("GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (
        path, "".join("%s: %s\r\n" % kv for kv in headers.items())))
    data = []
    with socket.create_connection(("127.0.0.1", port), timeout) as s:
        s.sendall(req.encode())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return b"".join(data), False
            if not chunk:
                return b"".join(data), True
            data.append(chunk)
    return b"".join(data), False


CUTS = {
    "partial marker": PAGE.index(b"<!--cef:slot hero-->") + 7,
    "open slot": PAGE.index(b"<h1>") + 3,
    "trailing <": PAGE.index(b"<p>products") + 1,
}


@pytest.mark.parametrize("where", sorted(CUTS))
@pytest.mark.parametrize("location", ["up", "buf"])
def test_aborted_upstream_closes_the_client_connection(shop, where,
                                                       location):
    """send_timeout is 30 s: a client that waits 20 s for the end of the
    response sees the connection closed (as with cef off), not held open
    for bytes that only more upstream input could release."""
    cut = CUTS[where]
    path = "/body/chain-page?abort=%d&chunk=%d" % (cut, cut)
    for loc in ("off", location):
        t0 = time.monotonic()
        raw, closed = read_until_eof(shop.port(), "/%s%s" % (loc, path),
                                     gold(), 20)
        print("%s, %s: closed after %.3f s" % (where, loc,
                                               time.monotonic() - t0))
        assert raw.startswith(b"HTTP/1.1 200"), raw[:100]
        assert closed, "%s: connection still open after 20 s" % loc
        head, _, body = raw.partition(b"\r\n\r\n")
        # never finished: the client knows it is incomplete
        if loc == "off":
            assert len(body) == cut
        else:
            assert b"chunked" in head.lower()
            assert not body.endswith(b"0\r\n\r\n")
    assert shop.log_text().count("upstream prematurely closed") == 2
