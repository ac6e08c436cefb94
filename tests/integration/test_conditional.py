# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""Conditional requests on personalised pages: a rewritten response's
validators describe what this visitor was shown, so a 304 is only ever the
answer to a validator of this visitor's own rendering, and every response
the module touched, 200 or 304, HEAD or GET, carries one caching policy.

The same page is served from a static root, through a plain proxy whose
upstream answers conditionals itself, through proxy_cache and through
proxy_cache with proxy_cache_revalidate."""

import base64
import email.utils
import hashlib
import hmac
import re
import struct

import pytest

from cef_fixtures import load_store, signed, write_secret
from client import request

SIGN = b"conditional-signing-secret"

# Greta and Chris get the same offer, rendered with their own names
RULES = r"""
version: 1
offers:
  hello:
    slot: hero
    html: '<b>Hello {{ profile.first_name }}</b>'
  welcome:
    slot: footer
    html: '<p>Welcome, new visitor</p>'
rules:
  - name: customers
    when: profile.clv > 0
    show: hello
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
        }
        location /cached/ {
            proxy_pass http://stub/;
            proxy_cache pc;
            proxy_cache_valid 200 10m;
            add_header X-Cache $upstream_cache_status;
        }
        location /reval/ {
            proxy_pass http://stub/;
            proxy_cache pc;
            proxy_cache_revalidate on;
            proxy_cache_valid 200 10m;
            add_header X-Cache $upstream_cache_status;
        }
        location /static-cc/ {
            alias @PREFIX@/html/static/;
            add_header Cache-Control "public, max-age=60";
        }
        location /static-expires/ {
            alias @PREFIX@/html/static/;
            expires 1h;
        }
        location /up-cc/ {
            proxy_pass http://stub/;
            add_header Cache-Control "no-transform, s-maxage=600" always;
            add_header Cache-Control "max-age=30, public";
        }
        location /quoted-cc/ {
            proxy_pass http://stub/;
            add_header Cache-Control
                'no-cache="Set-Cookie, X-A", Public, max-age=5, no-cache';
        }
        location /nostore-expires/ {
            proxy_pass http://stub/;
            cef_cache_control no-store;
            expires 1h;
        }
    }
"""

PAGE = (b"<html><body>\n"
        b"<!--cef:slot hero--><h1>Autumn collection</h1><!--/cef:slot-->\n"
        b"<p>products</p>\n"
        b"<!--cef:slot footer--><p>newsletter</p><!--/cef:slot-->\n"
        b"</body></html>\n")

GENERIC = re.sub(rb"<!--/?cef:slot[^>]*-->", b"", PAGE)

UPSTREAM_ETAG = '"page-v1"'
UPSTREAM_QUERY = ("?etag=%22page-v1%22&lm=1"
                  "&cc=public,%20max-age=60")

VID = "A" * 21 + "Q"


def persona(customer=None):
    cookie = "vid=" + VID
    if customer:
        cookie += "; shop_customer=" + signed(SIGN, "customer", customer)
    return {"Cookie": cookie}


GRETA, CHRIS, ANON = persona("1001"), persona("1002"), persona()

BODIES = {
    "greta": GENERIC.replace(b"<h1>Autumn collection</h1>",
                             b"<b>Hello Greta</b>"),
    "chris": GENERIC.replace(b"<h1>Autumn collection</h1>",
                             b"<b>Hello Chris</b>"),
    "anon": GENERIC,
}

# every way the page reaches the module
SOURCES = {
    "static": "/static/page.html",
    "proxy": "/up/body/page" + UPSTREAM_QUERY,
    "proxy_cache": "/cached/body/page" + UPSTREAM_QUERY,
    "revalidate": "/reval/body/page" + UPSTREAM_QUERY + "&xae=@1",
}


@pytest.fixture
def shop(nginx, upstream):
    inst = nginx.prepare(CONF)
    write_secret(inst.prefix / "store.secret", b"conditional-store-secret")
    write_secret(inst.prefix / "signing.secret", SIGN)
    (inst.prefix / "rules.yaml").write_text(RULES)
    (inst.prefix / "html" / "static").mkdir(parents=True)
    (inst.prefix / "html" / "static" / "page.html").write_bytes(PAGE)
    load_store(inst.prefix / "store", inst.prefix / "store.secret")
    upstream.set_body("page", PAGE)
    return inst.start()


def with_headers(who, **extra):
    h = dict(who)
    h.update({k.replace("_", "-"): v for k, v in extra.items()})
    return h


def get(shop, path, who, method="GET", **extra):
    return request(shop, path, method=method, headers=with_headers(who,
                                                                   **extra))


def single(headers, name):
    """The value of a header that must occur exactly once."""
    value = headers.get(name)
    assert value is not None, "no %s in %r" % (name, headers)
    assert "\n" not in value, "%s sent twice: %r" % (name, value)
    return value


def upstream_validators(shop, path):
    """What the page carried before the module: ETag and Last-Modified."""
    if path.startswith("/static/"):
        st = (shop.prefix / "html" / "static" / "page.html").stat()
        return ('"%x-%x"' % (int(st.st_mtime), st.st_size),
                email.utils.formatdate(st.st_mtime, usegmt=True))
    return UPSTREAM_ETAG, "Tue, 01 Sep 2026 10:00:00 GMT"


@pytest.mark.parametrize("source", SOURCES)
def test_each_rendering_has_its_own_validator(shop, source):
    path = SOURCES[source]
    tags = {}
    for name, who in (("greta", GRETA), ("chris", CHRIS), ("anon", ANON)):
        status, headers, body = get(shop, path, who)
        assert (status, body) == (200, BODIES[name])
        assert "last-modified" not in headers
        tags[name] = single(headers, "etag")
        assert tags[name].startswith('W/"'), tags[name]
        assert tags[name] not in upstream_validators(shop, path)
        # stable: the same rendering, the same tag, from any worker
        for _ in range(3):
            assert get(shop, path, who)[1]["etag"] == tags[name]
    assert len(set(tags.values())) == 3, tags


def documented_tag(validator, offers):
    """The ETag docs/slots.md defines, computed here from its description:
    W/"cef1-" base64url(SHA-256(label, key, "E", the upstream's ETag, then
    slot and rendered HTML per offer)[0:16]), each field length-prefixed
    (uint32, host order), key = HMAC-SHA256(store secret, label ":")[0:16]."""
    label = b"cef-etag-1"
    key = hmac.new(b"conditional-store-secret", label + b":",
                   hashlib.sha256).digest()[:16]

    def field(b):
        return struct.pack("=I", len(b)) + b

    msg = field(label) + field(key) + field(b"E") + field(validator.encode())
    for slot, html in offers:
        msg += field(slot) + field(html)
    tag = base64.urlsafe_b64encode(hashlib.sha256(msg).digest()[:16])
    return 'W/"cef1-%s"' % tag.rstrip(b"=").decode()


@pytest.mark.parametrize("source", ["static", "proxy"])
def test_the_tag_is_the_documented_digest(shop, source):
    path = SOURCES[source]
    etag = upstream_validators(shop, path)[0]
    for who, offers in ((GRETA, [(b"hero", b"<b>Hello Greta</b>")]),
                        (CHRIS, [(b"hero", b"<b>Hello Chris</b>")]),
                        (ANON, [])):
        status, headers, _ = get(shop, path, who)
        assert status == 200
        assert single(headers, "etag") == documented_tag(etag, offers)


@pytest.mark.parametrize("source", SOURCES)
def test_if_none_match_only_matches_this_visitors_rendering(shop, source):
    path = SOURCES[source]
    anon_200 = get(shop, path, ANON)
    greta_200 = get(shop, path, GRETA)
    anon_tag, greta_tag = anon_200[1]["etag"], greta_200[1]["etag"]
    upstream_tag = upstream_validators(shop, path)[0]

    # a browser that cached another rendering gets this visitor's page
    for who, name, tag in ((GRETA, "greta", anon_tag),
                           (CHRIS, "chris", greta_tag),
                           (ANON, "anon", greta_tag),
                           (GRETA, "greta", upstream_tag),
                           (GRETA, "greta", "W/" + upstream_tag)):
        status, headers, body = get(shop, path, who, If_None_Match=tag)
        assert (status, body) == (200, BODIES[name]), (name, tag)

    # its own rendering: 304, weak comparison (W/ or not, in a list)
    for tag in (greta_tag, greta_tag[2:], '"x", ' + greta_tag):
        status, headers, body = get(shop, path, GRETA, If_None_Match=tag)
        assert (status, body) == (304, b""), tag
        assert headers["etag"] == greta_tag
        assert "last-modified" not in headers
        assert single(headers, "cache-control") == \
            single(greta_200[1], "cache-control") == "private"

    # the generic page's 304 carries what its 200 carries
    status, headers, _ = get(shop, path, ANON, If_None_Match=anon_tag)
    assert status == 304
    assert headers.get("cache-control") == anon_200[1].get("cache-control")


@pytest.mark.parametrize("source", SOURCES)
def test_if_modified_since_is_no_validator_of_a_rendering(shop, source):
    path = SOURCES[source]
    _, modified = upstream_validators(shop, path)
    greta_tag = get(shop, path, GRETA)[1]["etag"]
    for extra in ({"If_Modified_Since": modified},
                  {"If_Modified_Since": "Fri, 01 Jan 2100 00:00:00 GMT"}):
        status, headers, body = get(shop, path, GRETA, **extra)
        assert (status, body) == (200, BODIES["greta"]), extra
        assert headers["cache-control"] == "private"
    # If-None-Match decides when both are sent
    status, _, body = get(shop, path, GRETA, If_None_Match=greta_tag,
                          If_Modified_Since=modified)
    assert (status, body) == (304, b"")


@pytest.mark.parametrize("source", SOURCES)
def test_if_range_never_yields_part_of_a_personalised_page(shop, source):
    path = SOURCES[source]
    greta_tag = get(shop, path, GRETA)[1]["etag"]
    upstream_tag, modified = upstream_validators(shop, path)
    for if_range in (greta_tag, greta_tag[2:], upstream_tag, modified, None):
        extra = {"Range": "bytes=0-9"}
        if if_range:
            extra["If_Range"] = if_range
        status, headers, body = get(shop, path, GRETA, **extra)
        assert (status, body) == (200, BODIES["greta"]), if_range
        assert "content-range" not in headers
        assert "accept-ranges" not in headers


@pytest.mark.parametrize("source", SOURCES)
def test_head_and_get_agree(shop, source):
    path = SOURCES[source]
    for who in (GRETA, ANON):
        _, got, _ = get(shop, path, who)
        status, head, body = get(shop, path, who, method="HEAD")
        assert (status, body) == (200, b"")
        for name in ("etag", "cache-control", "last-modified",
                     "content-length", "accept-ranges", "expires"):
            assert head.get(name) == got.get(name), name
        status, head, body = get(shop, path, who, method="HEAD",
                                 If_None_Match=got["etag"])
        assert (status, body) == (304, b"")


def test_upstream_never_answers_a_forwarded_conditional(shop, upstream):
    """Without a cache the client's conditionals used to reach the upstream,
    which answered 304 for the generic page it knows: the browser kept the
    anonymous page after login.  They are now nginx's to evaluate."""
    path = SOURCES["proxy"]
    for tag in (UPSTREAM_ETAG, "W/" + UPSTREAM_ETAG):
        status, headers, body = get(shop, path, GRETA, If_None_Match=tag)
        assert (status, body) == (200, BODIES["greta"])
        assert headers["cache-control"] == "private"
        seen = upstream.last_headers(path[3:])
        assert "if-none-match" not in seen and "if-modified-since" not in seen
    status, _, body = get(shop, path, GRETA,
                          If_Modified_Since=upstream_validators(shop, path)[1])
    assert (status, body) == (200, BODIES["greta"])

    # responses the module leaves alone still get nginx's own 304
    upstream.set_body("style", b"a{}", "text/css")
    status, headers, _ = get(shop, "/up/body/style?etag=%22css%22", ANON,
                             If_None_Match='"css"')
    assert status == 304
    assert "if-none-match" not in \
        upstream.last_headers("/body/style?etag=%22css%22")


def test_proxy_cache_revalidate_serves_each_visitor_their_page(shop,
                                                              upstream):
    path = SOURCES["revalidate"]
    upstream_path = path[len("/reval"):]
    hits = upstream.hit_count(upstream_path)
    status, headers, body = get(shop, path, ANON)
    assert (status, headers["x-cache"], body) == (200, "MISS", GENERIC)
    anon_tag = headers["etag"]

    status, headers, body = get(shop, path, GRETA, If_None_Match=anon_tag)
    assert (status, headers["x-cache"]) == (200, "REVALIDATED")
    assert body == BODIES["greta"]
    # nginx revalidated its own copy with the upstream's validator
    assert upstream.last_headers(upstream_path)["if-none-match"] == \
        UPSTREAM_ETAG
    greta_tag = headers["etag"]

    status, headers, body = get(shop, path, GRETA, If_None_Match=greta_tag)
    assert (status, headers["x-cache"], body) == (304, "REVALIDATED", b"")
    assert headers["cache-control"] == "private"
    assert "last-modified" not in headers
    assert upstream.hit_count(upstream_path) == hits + 3


def test_the_policy_replaces_the_upstreams_expires(shop):
    path = ("/up/body/page" + UPSTREAM_QUERY
            + "&exp=Fri,%2001%20Jan%202100%2000:00:00%20GMT")
    status, headers, body = get(shop, path, GRETA)
    assert (status, body) == (200, BODIES["greta"])
    assert single(headers, "cache-control") == "private"
    assert "expires" not in headers
    status, headers, _ = get(shop, path, GRETA, If_None_Match=headers["etag"])
    assert status == 304
    assert (headers["cache-control"], headers.get("expires")) == \
        ("private", None)
    # a generic page keeps the upstream's policy whole
    headers = get(shop, path, ANON)[1]
    assert (headers["cache-control"], headers["expires"]) == \
        ("public, max-age=60", "Fri, 01 Jan 2100 00:00:00 GMT")


@pytest.mark.parametrize("path,policy", [
    ("/static-cc/page.html", "private, max-age=60"),
    ("/static-expires/page.html", "private, max-age=3600"),
    ("/up-cc/body/page" + UPSTREAM_QUERY,
     "private, no-transform, max-age=30"),
    ("/quoted-cc/body/page" + UPSTREAM_QUERY,
     'private, no-cache="Set-Cookie, X-A", max-age=5'),
    ("/nostore-expires/body/page" + UPSTREAM_QUERY,
     "private, no-store, max-age=3600"),
])
def test_add_header_and_expires_merge_into_one_policy(shop, path, policy):
    status, headers, body = get(shop, path, GRETA)
    assert (status, body) == (200, BODIES["greta"])
    assert single(headers, "cache-control") == policy
    status, headers, body = get(shop, path, GRETA,
                                If_None_Match=headers["etag"])
    assert (status, body) == (304, b"")
    assert single(headers, "cache-control") == policy
    status, headers, _ = get(shop, path, GRETA, method="HEAD")
    assert single(headers, "cache-control") == policy
