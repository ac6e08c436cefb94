"""Helpers shared by integration tests that need a store or signed values:
snapshots written with python3-msgpack, loaded by the real cef-sync, and
signatures computed independently of the module (Python's hmac)."""

import base64
import hashlib
import hmac
import os
import subprocess
import time

import msgpack

from conftest import BUILD

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


def sign(secret, key_type, value):
    mac = hmac.new(secret, ("%s:%s" % (key_type, value)).encode(),
                   hashlib.sha256).digest()[:16]
    return b64url(mac)


def signed(secret, key_type, value):
    return "%s.%s" % (value, sign(secret, key_type, value))


def link_token(secret, key_type, value, expires):
    payload = "%s:%s:%d" % (key_type, value, expires)
    mac = hmac.new(secret, payload.encode(), hashlib.sha256).digest()[:16]
    return "%s.%s" % (b64url(payload.encode()), b64url(mac))


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
