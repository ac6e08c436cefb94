# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""Helpers for the profile store's integration tests: snapshot and delta
streams written with python3-msgpack (or as NDJSON), and the real cef-sync
and cef-store-probe binaries run as processes."""

import json
import os
import pathlib
import subprocess

import msgpack

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = REPO / "build"
CEF_SYNC = str(BUILD / "cef-sync")
PROBE = str(BUILD / "cef-store-probe")
SECRET = b"integration-secret-0123456789"


def header(snap_id="S1", created_at=1700000000):
    return {"cef": "snapshot", "version": 1, "id": snap_id,
            "created_at": created_at}


def profile(i, snap="S1", seq=0, extra=None):
    """The i-th test profile; "snap" and "seq" follow the probe's
    convention (see tests/tools/store_probe.c)."""
    attrs = {"snap": snap, "seq": seq,
             "segments": ["vip", "newsletter", "seg%d" % (i % 7)],
             "clv": round(i * 1.25, 2), "churn_risk": (i % 100) / 100,
             "nps": i % 11, "lifecycle": ["new", "active", "lapsed"][i % 3],
             "first_name": "Name%d" % (i % 50),
             "last_purchase_at": 1690000000 + i,
             "interests": {"sports": 0.5, "books%d" % (i % 3): 0.25},
             "consent_email": i % 2 == 0, "note": None}
    if extra:
        attrs.update(extra)
    return {"id": "p%d" % i,
            "keys": [["email", "u%d@example.com" % i], ["crm", "C%d" % i]],
            "attrs": attrs}


def encode(records, fmt="msgpack"):
    if fmt == "msgpack":
        return b"".join(msgpack.packb(r, use_bin_type=True)
                        for r in records)
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def snapshot(n, snap="S1", fmt="msgpack", start=0):
    recs = [header(snap)] + [profile(i, snap) for i in range(start, n)]
    recs.append({"end": True, "count": n - start})
    return encode(recs, fmt)


def deltas(records, fmt="msgpack"):
    return encode([{"cef": "delta", "version": 1}] + list(records), fmt)


def patch_round(first_seq, k, snap_unused=None):
    """K patches: seq s sets profile (s-1) % k's "seq" to s."""
    return [{"seq": s, "op": "patch", "id": "p%d" % ((s - 1) % k),
             "set": {"seq": s}}
            for s in range(first_seq, first_seq + k)]


class Store:
    """A store directory with a secret, driven through cef-sync."""

    def __init__(self, tmp_path):
        self.tmp = pathlib.Path(tmp_path)
        self.dir = str(self.tmp / "store")
        self.secret = str(self.tmp / "secret")
        with open(self.secret, "wb") as f:
            f.write(SECRET + b"\n")

    def run(self, *args, input=None, timeout=120, **kw):
        return subprocess.run([CEF_SYNC] + list(args), input=input,
                              capture_output=True, timeout=timeout, **kw)

    def load(self, data, *extra, **kw):
        return self.run("load", "--store", self.dir, "--secret", self.secret,
                        *extra, "-", input=data, **kw)

    def load_file(self, path, *extra, **kw):
        return self.run("load", "--store", self.dir, "--secret", self.secret,
                        *extra, str(path), **kw)

    def apply(self, data, *extra, **kw):
        return self.run("apply", "--store", self.dir, "--secret",
                        self.secret, *extra, "-", input=data, **kw)

    def apply_file(self, path, *extra, **kw):
        return self.run("apply", "--store", self.dir, "--secret",
                        self.secret, *extra, str(path), **kw)

    def stat(self):
        r = self.run("stat", "--store", self.dir, "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def get(self, key=None, id=None):
        args = ["get", "--store", self.dir, "--secret", self.secret]
        args += ["--key", key] if key else ["--id", id]
        r = self.run(*args)
        return r.returncode, (json.loads(r.stdout) if r.returncode == 0
                              else r.stderr.decode())

    def verify(self):
        return self.run("verify", "--store", self.dir, "--secret",
                        self.secret)

    def entries(self):
        return sorted(os.listdir(self.dir))

    def disk_bytes(self):
        total = 0
        for root, _, files in os.walk(self.dir):
            for f in files:
                p = os.path.join(root, f)
                if not os.path.islink(p):
                    total += os.lstat(p).st_blocks * 512
        return total

    def data_bytes(self):
        return self.stat()["data_bytes"]


def write_keys(path, k):
    with open(path, "w") as f:
        for i in range(k):
            f.write("email:u%d@example.com %d\n" % (i, i))
