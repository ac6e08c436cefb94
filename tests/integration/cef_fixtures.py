# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""Helpers shared by integration tests that need a store or signed values:
snapshots written with python3-msgpack, loaded by the real cef-sync, and
signatures computed independently of the module (Python's hmac)."""

import base64
import grp
import hashlib
import hmac
import os
import struct
import subprocess
import time

import msgpack

from conftest import BUILD, STORE_GROUP, WORKER_USER

CEF_SYNC = BUILD / "cef-sync"

# a well-formed visitor id (16 bytes, base64url) with a profile
KNOWN_VISITOR = base64.urlsafe_b64encode(b"known-visitor-01").rstrip(b"=")\
    .decode()

PROFILES = [
    {"id": "p-gold",
     "keys": [["customer", "1001"], ["email", "greta@example.com"]],
     "attrs": {"first_name": "Greta", "segments": ["gold", "newsletter",
                                                   "outdoor"],
               "clv": 1234, "churn_risk": 0.1, "lifecycle": "loyal",
               "interests": {"shoes": 0.8, "jackets": 0.25},
               "consent_email": True}},
    {"id": "p-churn",
     "keys": [["customer", "1002"]],
     "attrs": {"first_name": "Chris", "segments": ["silver"], "clv": 800,
               "churn_risk": 0.85}},
    {"id": "p-device",
     "keys": [["device", "dev-42"]],
     "attrs": {"first_name": "Dana"}},
    {"id": "p-visitor",
     "keys": [["visitor", KNOWN_VISITOR]],
     "attrs": {"first_name": "Vic", "lifecycle": "prospect"}},
    {"id": "p-html",
     "keys": [["customer", "1003"]],
     "attrs": {"first_name": "<script>alert(1)</script>"}},
]


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# Signatures (docs/directives.md, "Signed values"): every signed message is
# a purpose label and the fields, each prefixed with its length (2 bytes,
# big-endian), so that no value signed for one purpose verifies for another.
KEY_LABEL = b"cef-signed-key-v2"
LINK_LABEL = b"cef-link-token-v2"
STATE_LABEL = b"cef-plugin-state-v2"


def lp(data):
    return struct.pack(">H", len(data)) + data


def mac16(secret, label, *fields):
    msg = lp(label) + b"".join(lp(f) for f in fields)
    return hmac.new(secret, msg, hashlib.sha256).digest()[:16]


def sign(secret, key_type, value):
    return b64url(mac16(secret, KEY_LABEL, key_type.encode(), value.encode()))


def signed(secret, key_type, value):
    return "%s.%s" % (value, sign(secret, key_type, value))


def state_cookie(secret, plugin, state):
    return "%s.%s" % (state, b64url(mac16(secret, STATE_LABEL,
                                          plugin.encode(), state.encode())))


def store_key(store_secret, key_type, value):
    """The store's key of an identity: what cef-sync indexes profiles by."""
    return hmac.new(store_secret, ("%s:%s" % (key_type, value)).encode(),
                    hashlib.sha256).digest()[:16]


def link_token(secret, store_secret, key_type, value, expires):
    body = (lp(key_type.encode()) + lp(store_key(store_secret, key_type, value))
            + lp(struct.pack(">q", expires)))
    mac = hmac.new(secret, lp(LINK_LABEL) + body, hashlib.sha256).digest()
    return b64url(body + mac[:16])


# the format before domain separation (cef_signing_secret legacy_keys_until=)
def legacy_sign(secret, key_type, value):
    mac = hmac.new(secret, ("%s:%s" % (key_type, value)).encode(),
                   hashlib.sha256).digest()[:16]
    return b64url(mac)


def legacy_signed(secret, key_type, value):
    return "%s.%s" % (value, legacy_sign(secret, key_type, value))


def legacy_link_token(secret, key_type, value, expires):
    payload = "%s:%s:%d" % (key_type, value, expires)
    mac = hmac.new(secret, payload.encode(), hashlib.sha256).digest()[:16]
    return "%s.%s" % (b64url(payload.encode()), b64url(mac))


def store_group():
    """docs/store.md's recipe (run as root): the system group STORE_GROUP
    exists and nginx's worker user WORKER_USER is in it, as the Debian
    package sets it up.  Returns its gid.  Shared by the integration suite
    (conftest's store_gid) and the benchmarks (tests/bench/benchlib.py)."""
    if subprocess.run(["getent", "group", STORE_GROUP],
                      capture_output=True).returncode != 0:
        subprocess.run(["groupadd", "--system", STORE_GROUP], check=True)
    members = subprocess.run(["id", "-nG", WORKER_USER], capture_output=True,
                             text=True, check=True).stdout.split()
    if STORE_GROUP not in members:
        subprocess.run(["usermod", "-aG", STORE_GROUP, WORKER_USER],
                       check=True)
    return grp.getgrnam(STORE_GROUP).gr_gid


def write_secret(path, content, mode=0o600):
    path.write_bytes(content)
    os.chmod(path, mode)
    return path


def snapshot_bytes(profiles, snap_id="snap-1"):
    out = [msgpack.packb({"cef": "snapshot", "version": 1, "id": snap_id,
                          "created_at": int(time.time())})]
    out += [msgpack.packb(p) for p in profiles]
    out.append(msgpack.packb({"end": True, "count": len(profiles)}))
    return b"".join(out)


def cef_sync(*args, input=None, check=True):
    p = subprocess.run([str(CEF_SYNC), *map(str, args)], input=input,
                       capture_output=True, timeout=120)
    if check:
        assert p.returncode == 0, (p.returncode, p.stderr.decode())
    return p


def load_store(store, secret_file, profiles=PROFILES, snap_id="snap-1"):
    snap = store.parent / ("%s.msgpack" % snap_id)
    snap.write_bytes(snapshot_bytes(profiles, snap_id))
    cef_sync("load", "--quiet", "--store", store, "--secret", secret_file,
             snap)
