# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""With `cef on` and nothing to personalise, every body leaves byte-identical.

These tests pin down the filter's plumbing: they fail if it corrupts,
truncates or reorders a body, buffers a whole large body, or breaks gzip,
HEAD, 304, subrequests or the proxy cache.
"""

import email.utils
import gzip
import hashlib
import socket
import time

import pytest

from client import request
from upstream import make_body

SERVER = """
    upstream stub { server @UPSTREAM@; }
    proxy_cache_path @PREFIX@/cache keys_zone=pc:1m;

    server {
        listen 127.0.0.1:@PORT@;
        root @PREFIX@/html;
        cef on;

        location /up/ {
            proxy_pass http://stub/;
            proxy_http_version 1.1;
        }
        location /unbuf/ {
            proxy_pass http://stub/;
            proxy_http_version 1.1;
            proxy_buffering off;
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
        location /off/ {
            cef off;
            proxy_pass http://stub/;
        }
    }
"""


@pytest.fixture
def shop(nginx):
    inst = nginx.prepare(SERVER, level="debug")
    html = inst.prefix / "html"
    (html / "ssi").mkdir()
    (html / "frag").mkdir()
    (html / "page.html").write_bytes(make_body(12000, seed=7))
    (html / "frag" / "a.html").write_bytes(make_body(700, seed=11))
    (html / "ssi" / "index.html").write_bytes(
        b"<html>before\n"
        b'<!--# include virtual="/frag/a.html" -->\n'
        b"middle\n"
        b'<!--# include virtual="/unbuf/gen?size=5000&seed=3&chunk=1'
        b'&chunked=1" -->\n'
        b"after</html>\n")
    return inst.start()


def dechunk(data):
    out, pos = bytearray(), 0
    while True:
        eol = data.index(b"\r\n", pos)
        size = int(data[pos:eol].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += data[eol + 2:eol + 2 + size]
        pos = eol + 2 + size + 2


def passed_bytes(inst):
    """Body sizes the cef filter logged as passed through (debug log)."""
    import re
    return [int(m) for m in re.findall(r"cef filter: (\d+) body bytes passed",
                                       inst.log_text())]


@pytest.mark.parametrize("location", ["up", "unbuf"])
def test_byte_split_chunked_upstream(shop, location):
    path = "/%s/gen?size=3000&seed=1&chunk=1&chunked=1" % location
    status, headers, body = request(shop, path)
    assert status == 200
    assert body == make_body(3000, seed=1)
    assert 3000 in passed_bytes(shop), "the cef filter did not see the body"


def test_small_writes_with_delays(shop):
    path = "/unbuf/gen?size=400&seed=2&chunk=7&chunked=1&delay=2"
    status, _, body = request(shop, path)
    assert status == 200
    assert body == make_body(400, seed=2)


def test_off_location_is_identical_and_unfiltered(shop):
    status, _, body = request(shop, "/off/gen?size=3333&seed=4")
    assert status == 200
    assert body == make_body(3333, seed=4)
    assert 3333 not in passed_bytes(shop)


def test_static_file(shop):
    status, headers, body = request(shop, "/page.html")
    assert status == 200
    assert body == make_body(12000, seed=7)
    assert 12000 in passed_bytes(shop)


def test_large_body_is_streamed_with_bounded_memory(shop, upstream):
    size = 5 * 1024 * 1024
    first = 1024 * 1024
    gate = "big-%d" % time.monotonic_ns()
    path = "/up/gen?size=%d&seed=5&chunk=65536&gate=%s&gate_at=%d" % (
        size, gate, first)
    before = shop.memory_kb("VmHWM")

    with socket.create_connection(("127.0.0.1", shop.port()), 30) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                   % path).encode())
        data = bytearray()
        deadline = time.monotonic() + 15
        # With the upstream stalled after 1 MB, most of that megabyte must
        # already reach the client: the body is streamed, not held.
        while len(data) < first // 2 and time.monotonic() < deadline:
            chunk = s.recv(65536)
            assert chunk, "connection closed early"
            data += chunk
        assert len(data) >= first // 2, "body held back while upstream waits"
        upstream.gate(gate).set()
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            data += chunk

    head, _, body = bytes(data).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    if b"transfer-encoding: chunked" in head.lower():
        body = dechunk(body)
    assert hashlib.sha256(body).digest() == \
        hashlib.sha256(make_body(size, seed=5)).digest()
    after = shop.memory_kb("VmHWM")
    growth = max(after[p] - before.get(p, after[p]) for p in after)
    print("worker VmHWM growth for a 5 MB body: %d kB" % growth)
    assert growth < 3 * 1024, "worker memory grew by %d kB" % growth
    assert size in passed_bytes(shop)


def test_head(shop):
    status, headers, body = request(shop, "/page.html", method="HEAD")
    assert status == 200
    assert body == b""
    # the headers a GET gets: the body would be filtered
    assert "content-length" not in headers
    assert "last-modified" not in headers
    assert headers["etag"] == request(shop, "/page.html")[1]["etag"]

    status, headers, body = request(shop, "/up/gen?size=900", method="HEAD")
    assert status == 200
    assert body == b""


def test_not_modified(shop):
    status, headers, _ = request(shop, "/page.html")
    assert status == 200
    # the body may differ from the file: the validators say so
    assert "last-modified" not in headers
    etag = headers["etag"]
    assert etag.startswith('W/"'), etag
    modified = email.utils.formatdate(
        (shop.prefix / "html" / "page.html").stat().st_mtime, usegmt=True)

    status, headers, body = request(shop, "/page.html",
                                    headers={"If-None-Match": etag})
    assert (status, body) == (304, b"")

    # the file's date is no validator of what the module sent
    status, headers, body = request(shop, "/page.html",
                                    headers={"If-Modified-Since": modified})
    assert (status, len(body)) == (200, 12000)


def test_ssi_subrequests(shop):
    status, _, body = request(shop, "/ssi/index.html")
    assert status == 200
    expected = (b"<html>before\n" + make_body(700, seed=11) + b"\nmiddle\n"
                + make_body(5000, seed=3) + b"\nafter</html>\n")
    assert body == expected
    seen = passed_bytes(shop)
    assert 700 in seen and 5000 in seen, seen


def test_gzip_compresses_after_the_filter(shop):
    status, headers, body = request(shop, "/gz/gen?size=20000&seed=6",
                                    headers={"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers.get("content-encoding") == "gzip"
    assert gzip.decompress(body) == make_body(20000, seed=6)
    assert 20000 in passed_bytes(shop), "filter must see the plain body"


def test_gzip_encoded_upstream_passes_untouched(shop):
    status, headers, body = request(shop, "/up/gen?size=8000&seed=8&gzip=1",
                                    headers={"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers.get("content-encoding") == "gzip"
    assert body == gzip.compress(make_body(8000, seed=8), mtime=0) or \
        gzip.decompress(body) == make_body(8000, seed=8)


def test_proxy_cache_miss_then_hit(shop, upstream):
    path = "/cached/gen?size=10000&seed=9&chunk=333&chunked=1"
    s1, h1, b1 = request(shop, path)
    s2, h2, b2 = request(shop, path)
    expected = make_body(10000, seed=9)
    assert (s1, h1["x-cache"]) == (200, "MISS")
    assert (s2, h2["x-cache"]) == (200, "HIT")
    assert b1 == expected and b2 == expected
    assert upstream.hit_count(path[len("/cached"):]) == 1
    assert passed_bytes(shop).count(10000) == 2


def test_many_concurrent_requests(shop):
    import concurrent.futures
    paths = ["/up/gen?size=%d&seed=%d&chunk=500" % (2000 + i * 37, i)
             for i in range(40)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda p: request(shop, p), paths))
    for i, (status, _, body) in enumerate(results):
        assert status == 200
        assert body == make_body(2000 + i * 37, seed=i)
