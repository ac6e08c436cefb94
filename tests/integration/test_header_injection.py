# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""No header injection through profile data: variables that carry profile-
or client-derived data never yield a control byte, so `add_header X $var`
(to the client) and `proxy_set_header X $var` (to the upstream) set one
header line each, whatever cef-sync wrote into the store."""

import base64
import json
import socket
import threading

import pytest

from cef_fixtures import load_store, write_secret
from client import raw_exchange

STORE_SECRET = b"header-injection-store-secret"


def vid(tag):
    return base64.urlsafe_b64encode(tag.ljust(16, b"-")).rstrip(b"=").decode()


VID_ATTRS = vid(b"inject-attrs")
VID_ID = vid(b"inject-id")
VID_PLAIN = vid(b"inject-plain")

CONTROLS = "".join(chr(c) for c in range(0x20)) + "\x7f\\"

PROFILES = [
    {"id": "p-attrs",
     "keys": [["visitor", VID_ATTRS]],
     "attrs": {"note": "ok\r\nX-Injected: yes",
               "lf": "a\nX-Injected: lf",
               "nul": "a\x00X-Injected: nul",
               "ctl": CONTROLS,
               "tags": ["t1\r\nX-Injected: array", "t2"],
               "scores": {"k\r\nX-Injected: map": 0.5}}},
    {"id": "p-id\r\nX-Injected: id",
     "keys": [["visitor", VID_ID]],
     "attrs": {"note": "fine"}},
    {"id": "p-plain",
     "keys": [["visitor", VID_PLAIN]],
     "attrs": {"note": "J\u00fcrgen <ok> & 'fine', 50% off",
               "tags": ["gold", "newsletter"]}},
]

# the value each header must carry: control bytes, DEL and "\" as \xHH
ESCAPED = {
    "note": r"ok\x0D\x0AX-Injected: yes",
    "lf": r"a\x0AX-Injected: lf",
    "nul": r"a\x00X-Injected: nul",
    "ctl": "".join(r"\x%02X" % c for c in range(0x20)) + r"\x7F\x5C",
    "tags": r"t1\x0D\x0AX-Injected: array,t2",
    "scores": r"k\x0D\x0AX-Injected: map:0.5",
}

RULES = """
version: 1
offers:
  hello:
    slot: hero
    html: '<b>{{ profile.note }}</b>'
rules:
  - name: probe
    when: request.header.x-probe != null or profile.note != null
    show: hello
"""

HEADERS = [("X-Note", "$cef_attr_note"), ("X-Lf", "$cef_attr_lf"),
           ("X-Nul", "$cef_attr_nul"), ("X-Ctl", "$cef_attr_ctl"),
           ("X-Tags", "$cef_attr_tags"), ("X-Scores", "$cef_attr_scores"),
           ("X-Profile", "$cef_profile"), ("X-Visitor", "$cef_visitor"),
           ("X-Key-Type", "$cef_key_type"), ("X-Offers", "$cef_offers"),
           ("X-Variant", "$cef_variant"), ("X-Decision", "$cef_decision")]

CONF = """
    cef_store @PREFIX@/store;
    cef_store_secret @PREFIX@/store.secret;

    server {
        listen 127.0.0.1:@PORT@;
        cef_rules @PREFIX@/rules.yaml;
        cef_visitor_cookie vid;

        location / {
%(add)s
%(set)s
            proxy_set_header X-Probe "";
            proxy_pass http://127.0.0.1:%%(backend)d;
        }
    }
""" % {"add": "\n".join("            add_header %s %s;" % h
                        for h in HEADERS),
       "set": "\n".join("            proxy_set_header %s %s;" % h
                        for h in HEADERS)}


class Backend:
    """A raw HTTP upstream that keeps the request header bytes it got."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.requests = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.requests.append(data.split(b"\r\n\r\n", 1)[0])
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain"
                             b"\r\nContent-Length: 3\r\nConnection: close"
                             b"\r\n\r\nok\n")

    def close(self):
        self.sock.close()


@pytest.fixture
def shop(nginx):
    backend = Backend()
    inst = nginx.prepare(CONF % {"backend": backend.port})
    write_secret(inst.prefix / "store.secret", STORE_SECRET)
    (inst.prefix / "rules.yaml").write_text(RULES)
    load_store(inst.prefix / "store", inst.prefix / "store.secret",
               profiles=PROFILES)
    inst.start()
    inst.backend = backend
    yield inst
    backend.close()


def header_lines(block):
    """The header lines of a head (status or request line dropped), each
    checked to hold no control byte: the only line breaks are the CRLFs
    between lines."""
    lines = block.split(b"\r\n")[1:]
    for line in lines:
        bad = [b for b in line if b < 0x20 or b == 0x7f]
        assert not bad, "control bytes %r in header line %r" % (bad, line)
    return lines


def fields(lines):
    out = {}
    for line in lines:
        name, _, value = line.partition(b":")
        assert name.strip() == name and name, "not a header line: %r" % line
        out.setdefault(name.decode().lower(), []).append(
            value.strip().decode("utf-8", "surrogateescape"))
    return out


def exchange(inst, cookie, extra=b""):
    """(response header fields, request header fields the upstream got)"""
    before = len(inst.backend.requests)
    raw = raw_exchange(inst.port(), b"GET /page HTTP/1.1\r\nHost: shop\r\n"
                       b"Cookie: vid=" + cookie.encode() + b"\r\n" + extra
                       + b"Connection: close\r\n\r\n")
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.startswith(b"HTTP/1.1 200"), raw[:200]
    assert len(inst.backend.requests) == before + 1
    return (fields(header_lines(head)),
            fields(header_lines(inst.backend.requests[before])))


def test_profile_values_reach_headers_escaped(shop):
    client, upstream = exchange(shop, VID_ATTRS)
    for got in (client, upstream):
        assert "x-injected" not in got
        for attr, want in ESCAPED.items():
            assert got["x-" + attr] == [want], attr
        assert got["x-profile"] == ["p-attrs"]
        assert got["x-key-type"] == ["visitor"]
        assert got["x-visitor"] == [VID_ATTRS]
        assert got["x-offers"] == ["hero=hello"]
        assert got["x-variant"] == ["hero=treatment"]


def test_profile_id_reaches_headers_escaped(shop):
    client, upstream = exchange(shop, VID_ID)
    for got in (client, upstream):
        assert "x-injected" not in got
        assert got["x-profile"] == [r"p-id\x0D\x0AX-Injected: id"]
        assert got["x-note"] == ["fine"]


def test_decision_record_in_a_header_is_one_json_line(shop):
    # request.header.x-probe is an input of the record: the client's DEL
    # and control bytes in it stay JSON escapes, as does the profile id
    client, upstream = exchange(shop, VID_ID,
                                b"X-Probe: a\x7fb\x01c\tz\r\n")
    for got in (client, upstream):
        assert "x-injected" not in got
        record = json.loads(got["x-decision"][0])
        assert record["profile"] == "p-id\r\nX-Injected: id"
        assert record["in"]["request.header.x-probe"] == "a\x7fb\x01c\tz"
        assert record["slots"]["hero"]["offer"] == "hello"


def test_plain_values_are_unchanged(shop):
    client, upstream = exchange(shop, VID_PLAIN)
    for got in (client, upstream):
        assert got["x-note"] == ["J\u00fcrgen <ok> & 'fine', 50% off"]
        assert got["x-tags"] == ["gold,newsletter"]
        assert got["x-profile"] == ["p-plain"]
