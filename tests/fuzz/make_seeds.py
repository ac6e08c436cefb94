#!/usr/bin/python3
# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""Write the seed corpora of tests/fuzz/corpus/ (run from anywhere).

The committed seeds are this script's output plus regression inputs added
by hand (named crash-*, timeout-*, leak-* or regress-*); rerunning it
rewrites only the seed-* files.
"""

import base64
import hashlib
import hmac
import json
import os
import struct

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
REPO = os.path.dirname(os.path.dirname(HERE))


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


SNAP = [
    {"cef": "snapshot", "version": 1, "id": "2024-06-01T00:00Z",
     "created_at": 1717200000},
    {"id": "c-1001", "keys": [["email", "ann@example.com"], ["crm", "1001"]],
     "attrs": {"first_name": "Ann", "segments": ["vip", "newsletter"],
               "clv": 1234.56, "churn_risk": 0.12, "nps": 9,
               "lifecycle": "active", "last_purchase_at": 1716000000,
               "interests": {"shoes": 0.8, "outdoor": 0.4},
               "consent_email": True, "note": None}},
    {"id": "c-1002", "keys": [["email", "bob@example.com"]],
     "attrs": {"first_name": "Bob", "lifecycle": "new"}},
    {"end": True, "count": 2},
]
DELTA = [
    {"cef": "delta", "version": 1},
    {"seq": 101, "op": "patch", "id": "c-1001",
     "set": {"clv": 1300.0, "segments": ["vip"]}, "unset": ["churn_risk"]},
    {"seq": 102, "op": "keys", "id": "c-1002",
     "add": [["device", "d-77"]], "remove": [["email", "bob@example.com"]]},
    {"seq": 103, "op": "upsert", "id": "c-1003",
     "keys": [["crm", "1003"]], "attrs": {"nps": -3, "vip": False}},
    {"seq": 104, "op": "merge", "from": "c-1002", "into": "c-1001"},
    {"seq": 105, "op": "delete", "id": "c-0999"},
    {"seq": 106, "op": "delete", "id": "c-1003"},
]


def ndjson(recs):
    import json
    return "".join(json.dumps(r, separators=(",", ":")) + "\n"
                   for r in recs).encode()


def mp(recs):
    return b"".join(msgpack.packb(r) for r in recs)


def streams():
    yield "snapshot.ndjson", ndjson(SNAP), 0
    yield "snapshot.msgpack", mp(SNAP), 0
    yield "delta.ndjson", ndjson(DELTA), 1
    yield "delta.msgpack", mp(DELTA), 1
    yield "snapshot-empty.ndjson", ndjson([SNAP[0], {"end": True,
                                                     "count": 0}]), 0
    yield "snapshot-notrailer.ndjson", ndjson(SNAP[:2]), 0
    yield "delta-crlf.ndjson", ndjson(DELTA[:3]).replace(b"\n", b"\r\n"), 1
    yield "delta-f32.msgpack", mp(DELTA[:2]) + msgpack.packb(
        {"seq": 200, "op": "patch", "id": "c-1001",
         "set": {"x": 1.5}}, use_single_float=True), 1


for name, data, kind in streams():
    put("input", name, data)
    put("store", name, bytes([kind]) + data)


# stored profiles: u8 format, u8 nhints, u16be hints[], u8 idlen, id, map
def profile(pid, attrs, hints=(7, 300)):
    out = bytes([1, len(hints)])
    out += b"".join(struct.pack(">H", h) for h in hints)
    out += bytes([len(pid)]) + pid
    out += msgpack.packb(attrs)
    return out


# byte 0: (strs count << 4) | names count, as fuzz_profile.c reads it
DICT = 0x59
put("profile", "full", bytes([DICT]) + profile(b"c-1001", {
    0: "Ann", 1: ["vip", 1, "x"], 2: 1234.5, 3: {"shoes": 0.8, 3: 1},
    4: True, 5: 9, 6: 2}))
put("profile", "empty", bytes([DICT]) + profile(b"c-1", {}, hints=()))
put("profile", "nil-neg", bytes([DICT]) + profile(b"x", {
    0: None, 2: -1.25, 5: -7, 7: 2 ** 63 - 1}))
put("profile", "decimal", bytes([DICT]) + profile(b"d", {
    2: msgpack.ExtType(16, b"\x01\x02"), 3: {"a": msgpack.ExtType(18, b"\x05")}}))
put("profile", "bare-values", bytes([DICT]) + msgpack.packb("a")
    + msgpack.packb([0, 1]) + msgpack.packb({"k": 1}))


def copy_rules():
    for rel in ("rules/examples/webshop.yaml", "tests/rules/good.yaml",
                "tests/rules/broken.yaml"):
        with open(os.path.join(REPO, rel), "rb") as f:
            put("rules", os.path.basename(rel), f.read())
    put("rules", "small.yaml", """version: 1
offers:
  a:
    slot: hero
    html: '<b>{{ profile.first_name | default("you") }}</b>'
    starts: 2026-01-01
    ends: 2099-12-31T23:59:59+01:00
rules:
  - name: r
    when: profile.clv >= 1000 and "vip" in profile.segments
    show: a
    priority: 3
""")

    put("rules", "goals.yaml", """version: 1
offers:
  a: {slot: hero, html: A}
  b: {slot: hero, html: B}
rules:
  - {name: r, show: a}
  - {name: s, show: b}
slots:
  hero:
    holdout: 10%
    experiment: {name: 'q"4', variants: {x: 50, y: {weight: 50, offers: [b]}}}
goals:
  purchase: {min: 0, max: 100000, description: an order}
  signup: {}
  newsletter:
""")


copy_rules()

# the impression record with an experiment's name, salt and split
put("record", "split", b"\x00" + b'{"v":1,"t":1,"rules":"x","slots":{"hero":'
    b'{"offer":null,"rule":null,"plugin":"experiment","variant":"control",'
    b'"bucket":720,"experiment":"q\\"4","salt":"q4","split":{"control":1000,'
    b'"x":4500,"y":4500},"would":"a","would_rule":"r"}}}')

EXPRS = [
    'profile.churn_risk >= 0.7 and profile.clv >= 500',
    '"vip" in profile.segments or profile.clv >= 2000',
    'request.arg.utm_campaign == "winter-sale"',
    'visitor.new or profile.orders == null',
    'request.path starts_with "/products/" and days_since(profile.last_purchase_at) <= 60',
    'profile.interests.shoes >= 0.6',
    'time.hour >= 12 and time.hour < 14 and time.weekday <= 5',
    'var.geoip2_country_code in ["DE", "AT", "CH"]',
    'request.header.user-agent matches "(?i)bot|crawl"',
    'lower(profile.first_name) ends_with "nn" and len(profile.segments) > 1',
    'not (profile.vip == true) or hours_since("2026-01-01T00:00Z") > 30d',
    '"shoes" in profile.interests and profile.lifecycle != "churned"',
    'profile.clv + 1 * 2 - 3 / 4 > -5 and 1e3 < 2w',
    'request.cookie.c contains "x" or visitor.key_type == "customer"',
]
for i, e in enumerate(EXPRS):
    put("expr", "%02d" % i, bytes([i % 3 if i < 12 else 1]) + e.encode())
put("expr", "path", b"\x02profile.first_name")
put("expr", "time", b"\x002026-02-28T23:59:59+01:00")

TEMPLATES = [
    '<div class="offer">We miss you, {{ profile.first_name | default("friend") }}!</div>',
    '{{ profile.evil }} {{ profile.segments }} {{ profile.interests.shoes }}',
    "{{ var.geo | default('XX') }} {{ time.hour }} {{ request.arg.q }}",
    'plain { braces } and }} and {',
    '{{ profile.clv }}/{{ profile.nps }}/{{ profile.big }}/{{ profile.nan }}',
]
for i, t in enumerate(TEMPLATES):
    put("template", "%02d" % i, t)


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def lp(b):
    return struct.pack(">H", len(b)) + b


def mac(secret, label, *fields):
    return hmac.new(secret, lp(label) + b"".join(lp(f) for f in fields),
                    hashlib.sha256).digest()[:16]


def sig(secret, label, *fields):
    return b64(mac(secret, label, *fields))


# byte 0: signer (mode % 3) and key type ((mode >> 2) % 4), fuzz_identity.c
# (0x06: the first secret and "email"); the formats: lib/identity/cef_sign.h
put("identity", "signed-key", b"\x00" +
    ("1001." + sig(b"first-secret", b"cef-signed-key-v2", b"customer",
                   b"1001")).encode())
put("identity", "signed-key-old", b"\x01" +
    ("1001." + sig(b"old-secret", b"cef-signed-key-v2", b"customer",
                   b"1001")).encode())
put("identity", "signed-key-legacy", b"\x00" +
    ("1001." + b64(hmac.new(b"first-secret", b"customer:1001",
                            hashlib.sha256).digest()[:16])).encode())
put("identity", "plugin-state", b"\x00" +
    ("winback:1:4102444800." + sig(b"first-secret", b"cef-plugin-state-v2",
                                   b"customer", b"winback:1:4102444800"))
    .encode())
store_key = hmac.new(b"store-secret", b"email:ann@example.com",
                     hashlib.sha256).digest()[:16]
body = lp(b"email") + lp(store_key) + lp(struct.pack(">q", 4102444800))
put("identity", "link-token", b"\x06" +
    b64(body + mac(b"first-secret", b"cef-link-token-v2", b"email",
                   store_key, struct.pack(">q", 4102444800))).encode())
put("identity", "visitor-id", b"\x00" + b64(bytes(range(16))).encode())
put("identity", "dots", b"\x08a.b.c..")


# fuzz_consume.c: byte 0 flags (bit 0 JSON, bit 1 commit), then messages,
# each a 2-byte big-endian length and the value; length 0 is a tombstone
# followed by a 1-byte key length and the key
MESSAGES = [
    {"op": "upsert", "id": "c-1003",
     "keys": [["email", "cy@example.com"], ["device", "d-9"]],
     "attrs": {"first_name": "Cy", "segments": ["new"], "clv": 12.5,
               "interests": {"garden": 0.7}, "vip": False}},
    {"op": "patch", "id": "c-1001", "set": {"clv": 1300.0},
     "unset": ["nps"]},
    {"op": "keys", "id": "c-1002", "add": [["crm", "1002"]],
     "remove": [["email", "bob@example.com"]]},
    {"op": "merge", "from": "c-1002", "into": "c-1001"},
    {"op": "delete", "id": "c-1001"},
    {"seq": 7, "op": "patch", "id": "c-0999", "set": {"x": 1}},
]


def consume_input(flags, values):
    out = bytes([flags])
    for v in values:
        if isinstance(v, tuple):        # a tombstone: ("tomb", key)
            out += b"\x00\x00" + bytes([len(v[1])]) + v[1]
        else:
            out += struct.pack(">H", len(v)) + v
    return out


for i, m in enumerate(MESSAGES):
    put("consume", "mp-%02d" % i, consume_input(2, [msgpack.packb(m)]))
    put("consume", "json-%02d" % i,
        consume_input(3, [json.dumps(m).encode()]))
put("consume", "mp-batch", consume_input(
    2, [msgpack.packb(m) for m in MESSAGES[:4]] + [("tomb", b"c-1003")]))
put("consume", "json-batch-abandoned", consume_input(
    1, [json.dumps(m).encode() for m in MESSAGES[:5]]))
put("consume", "mp-bad", consume_input(2, [
    b"\xdd\xff\xff\xff\xff", b"\x81\xa2op\xa6rename", msgpack.packb([1, 2]),
    b'{"op":"delete","id":"c-1001"}', b"\xc1"]))
put("consume", "json-bad", consume_input(3, [
    b'{"op":"delete","id":"c-1001","id":"x"}', b"[1]", b'{"op":',
    b"[" * 40 + b"]" * 40]))
