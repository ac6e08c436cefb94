# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""cef-sync end to end: load, apply, stat, get, verify; exit codes; every
bad input names the record and byte offset and leaves the store as it
was."""

import json
import os
import pty
import resource
import signal
import subprocess
import time

import msgpack
import pytest

from store_helpers import (CEF_SYNC, Store, deltas, encode, header,
                           profile, snapshot)


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path)


@pytest.mark.parametrize("fmt", ["msgpack", "ndjson"])
def test_load_get_stat_verify(store, fmt):
    r = store.load(snapshot(50, "snap-1", fmt))
    assert r.returncode == 0, r.stderr
    assert b"loaded 50 profiles, 100 keys" in r.stdout

    st = store.stat()
    assert st["snapshot_id"] == "snap-1"
    assert st["profiles"] == 50 and st["keys"] == 100
    assert st["created_at"] == 1700000000
    assert st["last_seq"] == 0 and st["generation"] == 1
    assert abs(st["loaded_at"] - time.time()) < 60

    rc, p = store.get(key="email:u7@example.com")
    assert rc == 0
    want = profile(7, "snap-1")
    assert p["id"] == "p7"
    assert p["attrs"] == want["attrs"]

    rc, p2 = store.get(key="crm:C7")
    assert rc == 0 and p2 == p
    rc, p3 = store.get(id="p7")
    assert rc == 0 and p3 == p

    rc, msg = store.get(key="email:nobody@example.com")
    assert rc == 1 and "no profile" in msg

    r = store.verify()
    assert r.returncode == 0, r.stderr
    assert b"50 profiles, 100 keys" in r.stdout

    # the store never holds the raw identifiers or the secret
    for root, _, files in os.walk(store.dir):
        for f in files:
            data = open(os.path.join(root, f), "rb").read()
            assert b"u7@example.com" not in data
            assert b"integration-secret" not in data


def test_text_stat(store):
    assert store.load(snapshot(3)).returncode == 0
    r = store.run("stat", "--store", store.dir)
    assert r.returncode == 0
    out = r.stdout.decode()
    assert "profiles     3" in out and "snapshot     S1" in out


def test_apply_every_op(store):
    assert store.load(snapshot(5)).returncode == 0
    ops = [
        {"seq": 1, "op": "upsert", "id": "p9",
         "keys": [["email", "new@example.com"]],
         "attrs": {"lifecycle": "new", "clv": 1.5}},
        {"seq": 2, "op": "patch", "id": "p0", "set": {"nps": 10},
         "unset": ["clv"]},
        {"seq": 3, "op": "keys", "id": "p1", "add": [["device", "d1"]],
         "remove": [["crm", "C1"]]},
        {"seq": 4, "op": "merge", "from": "p2", "into": "p3"},
        {"seq": 5, "op": "delete", "id": "p4"},
        {"seq": 6, "op": "upsert", "id": "p0",
         "keys": [["email", "zero@example.com"]], "attrs": {"x": "y"}},
    ]
    r = store.apply(deltas(ops, "ndjson"))
    assert r.returncode == 0, r.stderr
    assert b"applied 6 records" in r.stdout

    st = store.stat()
    assert st["last_seq"] == 6 and st["profiles"] == 4

    assert store.get(key="email:new@example.com")[1]["id"] == "p9"
    assert store.get(key="email:u0@example.com")[0] == 1   # replaced keys
    assert store.get(key="email:zero@example.com")[1]["attrs"] == {"x": "y"}
    assert store.get(key="crm:C1")[0] == 1
    assert store.get(key="device:d1")[1]["id"] == "p1"
    assert store.get(key="email:u2@example.com")[1]["id"] == "p3"
    assert store.get(id="p2")[0] == 1
    assert store.get(key="crm:C4")[0] == 1
    assert store.get(id="p4")[0] == 1
    assert store.verify().returncode == 0

    # replay: everything skipped, nothing changes
    before = store.stat()
    r = store.apply(deltas(ops))
    assert r.returncode == 0
    assert b"applied 0 records (6 skipped" in r.stdout
    after = store.stat()
    for k in ("last_seq", "profiles", "keys"):
        assert before[k] == after[k]


def test_exit_codes_and_usage(store, tmp_path):
    r = store.run()
    assert r.returncode == 2 and b"usage" in r.stderr
    r = store.run("frobnicate", "--store", store.dir)
    assert r.returncode == 2
    r = store.run("load", "--store", store.dir, "-")
    assert r.returncode == 2 and b"--secret" in r.stderr
    r = store.run("load", "--secret", store.secret, "-")
    assert r.returncode == 2
    r = store.run("get", "--store", store.dir, "--secret", store.secret)
    assert r.returncode == 2
    r = store.run("get", "--store", store.dir, "--secret", store.secret,
                  "--key", "novalue")
    assert r.returncode == 2
    r = store.run("load", "--store", store.dir, "--secret", store.secret,
                  "--bogus", "-")
    assert r.returncode == 2
    r = store.run("--version")
    assert r.returncode == 0 and r.stdout.startswith(b"cef-sync ")

    # no store yet: store errors
    assert store.run("stat", "--store", store.dir).returncode == 3
    assert store.apply(deltas([])).returncode == 3
    assert store.run("verify", "--store", store.dir).returncode == 3

    # secrets: missing, empty, wrong
    r = store.run("load", "--store", store.dir, "--secret",
                  str(tmp_path / "nope"), "-", input=snapshot(1))
    assert r.returncode == 1 and b"secret" in r.stderr
    empty = tmp_path / "empty"
    empty.write_bytes(b"\n")
    r = store.run("load", "--store", store.dir, "--secret", str(empty), "-",
                  input=snapshot(1))
    assert r.returncode == 1 and b"empty" in r.stderr
    r = store.load_file(tmp_path / "missing.msgpack")
    assert r.returncode == 1 and b"cannot open" in r.stderr

    assert store.load(snapshot(2)).returncode == 0
    other = tmp_path / "other"
    other.write_bytes(b"another secret\n")
    r = store.run("apply", "--store", store.dir, "--secret", str(other), "-",
                  input=deltas([]))
    assert r.returncode == 1 and b"secret" in r.stderr
    r = store.run("get", "--store", store.dir, "--secret", str(other),
                  "--id", "p1")
    assert r.returncode == 1 and b"secret" in r.stderr


# every numeric option, each with its meaningless values: one parser
_NUMERIC = [
    ("load", "--map-size", ["-1", "0", "+1M", " 1M", "1M ", "1MB", "1.5G",
                            "0x10", "", "M", "18446744073709551616",
                            "16777216T", "-0"]),
    ("apply", "--batch", ["-1", "0", "1x", "+2", "", "4294967296", " 7"]),
    ("apply", "--idle-ms", ["-1", "abc", "10ms", "86400001", "", "1e3"]),
    ("consume", "--batch-ms", ["-1", "0", "5s", "86400001", ""]),
    ("consume", "--refresh-ms", ["-5", "0", "1k", "99999999999999999999"]),
]


@pytest.mark.parametrize("cmd,opt,bad", [(c, o, b) for c, o, bads in _NUMERIC
                                         for b in bads])
def test_numeric_options_parse_strictly(store, cmd, opt, bad):
    if cmd != "load":
        assert store.load(snapshot(2)).returncode == 0
    before = store.entries() if cmd != "load" else None
    args = [cmd, "--store", store.dir, "--secret", store.secret, opt, bad]
    if cmd == "consume":
        args += ["--brokers", "127.0.0.1:1", "--topic", "t"]
    else:
        args += ["-"]
    r = store.run(*args, input=snapshot(2) if cmd == "load" else deltas([]))
    err = r.stderr.decode()
    assert r.returncode == 2, err
    assert err.startswith("cef-sync: invalid %s \"%s\": " % (opt, bad)), err
    assert "usage:" in err
    if cmd == "load":
        assert not os.path.exists(store.dir)
    else:
        assert store.entries() == before


def test_numeric_options_accept_their_range(store):
    r = store.load(snapshot(2), "--map-size", "1048576")
    assert r.returncode == 0, r.stderr
    for size in ("64k", "64K", "1m", "1G", "1T"):
        r = store.load(snapshot(2), "--map-size", size)
        assert r.returncode == 0, (size, r.stderr)
    r = store.apply(deltas([]), "--batch", "4294967295", "--idle-ms", "0")
    assert r.returncode == 0, r.stderr
    r = store.apply(deltas([]), "--batch", "1", "--idle-ms", "86400000")
    assert r.returncode == 0, r.stderr


def _bad_snapshots():
    big = profile(1)
    big["attrs"]["blob"] = "x" * 70000
    return [
        ("truncated", snapshot(5)[:-30], "record 6 (byte"),
        ("no trailer", encode([header(), profile(0), profile(1)]),
         "no trailer"),
        ("count", encode([header(), profile(0),
                          {"end": True, "count": 2}]), "count mismatch"),
        ("wrong type", encode([header(), profile(0),
                               {"id": "p1", "keys": "email:x",
                                "attrs": {}}]),
         "record 3 (byte"),
        ("bad value", encode([header(), dict(profile(0), attrs={"a": [1]}),
                              {"end": True, "count": 1}]), "attrs.a"),
        ("binary value", msgpack.packb(header()) +
         msgpack.packb({"id": "b", "keys": [], "attrs": {"b": b"\x00"}},
                       use_bin_type=True) +
         msgpack.packb({"end": True, "count": 1}), "binary"),
        ("over 64k", encode([header(), big, {"end": True, "count": 1}]),
         "larger than 65536"),
        ("malformed msgpack", snapshot(3)[:80] + b"\xc1" + snapshot(3)[81:],
         "malformed msgpack"),
        ("malformed json", snapshot(3, fmt="ndjson").replace(b'"p1"', b'p1'),
         "malformed JSON"),
        ("duplicate key", encode([header(), profile(0),
                                  dict(profile(1), keys=[["crm", "C0"]]),
                                  {"end": True, "count": 2}]),
         "also belongs to the profile of record 2"),
        ("not a snapshot", deltas([]), "snapshot header"),
    ]


@pytest.mark.parametrize("name,data,msg", _bad_snapshots(),
                         ids=[b[0] for b in _bad_snapshots()])
def test_bad_snapshot_changes_nothing(store, name, data, msg):
    assert store.load(snapshot(10, "good")).returncode == 0
    before = store.stat()
    entries = store.entries()

    r = store.load(data)
    err = r.stderr.decode()
    assert r.returncode == 1, err
    assert msg in err
    assert "record " in err and "byte " in err
    assert "nothing changed" in err
    assert err.count("\n") == 1          # one clear message

    after = store.stat()
    assert after == before
    assert store.entries() == entries
    assert store.get(key="email:u3@example.com")[1]["attrs"]["snap"] == \
        "good"


def _bad_deltas():
    ok = {"seq": 1, "op": "delete", "id": "p1"}
    return [
        ("backwards", [ok, {"seq": 1, "op": "delete", "id": "p2"}],
         "record 3 (byte 70): seq 1 is not greater"),
        ("unknown op", [ok, {"seq": 2, "op": "rename", "id": "p2"}],
         "unknown op \"rename\""),
        ("wrong type", [ok, {"seq": 2, "op": "patch", "id": "p2",
                             "set": ["a"]}], "\"set\" must be a map"),
        ("missing field", [ok, {"seq": 2, "op": "upsert", "id": "p2",
                                "keys": []}], "\"attrs\" is missing"),
        ("seq type", [ok, {"seq": "2", "op": "delete", "id": "p2"}],
         "\"seq\" must be an integer"),
    ]


@pytest.mark.parametrize("name,recs,msg", _bad_deltas(),
                         ids=[b[0] for b in _bad_deltas()])
def test_bad_deltas_change_nothing(store, tmp_path, name, recs, msg):
    assert store.load(snapshot(10)).returncode == 0
    before = store.stat()

    # from a file: validated completely first
    path = tmp_path / "d.ndjson"
    path.write_bytes(deltas(recs, "ndjson"))
    r = store.apply_file(path)
    err = r.stderr.decode()
    assert r.returncode == 1, err
    assert msg in err and "nothing changed" in err

    assert store.stat() == before
    assert store.get(id="p1")[0] == 0     # the good first record too


def test_truncated_delta_stream(store):
    assert store.load(snapshot(3)).returncode == 0
    data = deltas([{"seq": 1, "op": "delete", "id": "p1"},
                   {"seq": 2, "op": "delete", "id": "p2"}])
    r = store.apply(data[:-5])
    assert r.returncode == 1
    assert b"truncated record" in r.stderr and b"record 3" in r.stderr


def test_map_full_and_disk_full(store, tmp_path):
    assert store.load(snapshot(10, "small")).returncode == 0
    before = store.stat()

    r = store.load(snapshot(3000, "big"), "--map-size", "256K")
    assert r.returncode == 3
    assert b"map is full" in r.stderr and b"record " in r.stderr
    assert store.stat() == before

    # a file size limit stands in for a full disk: writes fail with EFBIG
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (300000, 300000))

    r = store.load(snapshot(3000, "big"), preexec_fn=limit)
    assert r.returncode == 3, r.stderr
    assert b"disk full" in r.stderr and b"record " in r.stderr
    assert store.stat() == before
    assert not [e for e in store.entries() if e.startswith("tmp-")]
    assert store.verify().returncode == 0


def test_apply_grows_map(store):
    assert store.load(snapshot(10), "--map-size", "1M").returncode == 0
    ups = [{"seq": s, "op": "upsert", "id": "n%d" % s,
            "keys": [["email", "n%d@example.com" % s]],
            "attrs": {"pad": "x" * 200, "n": s}} for s in range(1, 6001)]
    r = store.apply(deltas(ups))
    assert r.returncode == 3 and b"map is full" in r.stderr
    r = store.apply(deltas(ups), "--map-size", "64M")
    assert r.returncode == 0, r.stderr
    assert store.stat()["profiles"] == 6010
    assert store.verify().returncode == 0


def _pty_run(args, data):
    """Run with stderr on a pseudo-terminal; return (rc, stderr text)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(args, stdin=subprocess.PIPE,
                         stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    p.stdin.write(data)
    p.stdin.close()
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return p.wait(), out.decode(errors="replace")


def test_progress_on_a_terminal(store, tmp_path):
    path = tmp_path / "snap.msgpack"
    path.write_bytes(snapshot(200000))
    master, slave = pty.openpty()
    p = subprocess.Popen([CEF_SYNC, "load", "--store", store.dir, "--secret",
                          store.secret, str(path)],
                         stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert p.wait() == 0
    text = out.decode(errors="replace")
    assert "records/s" in text and "ETA" in text

    rc, text = _pty_run([CEF_SYNC, "load", "--quiet", "--store", store.dir,
                         "--secret", store.secret, str(path)], b"")
    assert rc == 0 and text == ""

    # not a terminal: no progress, a summary on stdout only
    r = store.load_file(path)
    assert r.returncode == 0 and r.stderr == b""


def test_two_writers(store):
    assert store.load(snapshot(10)).returncode == 0
    first = subprocess.Popen([CEF_SYNC, "load", "--quiet", "--store",
                              store.dir, "--secret", store.secret, "-"],
                             stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    data = snapshot(200, "second")
    first.stdin.write(data[:100])      # holds the lock, waiting for input
    first.stdin.flush()
    time.sleep(0.3)

    r = store.load(snapshot(5, "third"), "--no-wait")
    assert r.returncode == 3
    assert b"another cef-sync" in r.stderr

    waiter = subprocess.Popen([CEF_SYNC, "apply", "--store", store.dir,
                               "--secret", store.secret, "-"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    waiter.stdin.write(deltas([{"seq": 1, "op": "patch", "id": "p1",
                                "set": {"after": True}}]))
    waiter.stdin.close()
    time.sleep(0.3)
    assert waiter.poll() is None       # serialised: it waits

    first.stdin.write(data[100:])
    first.stdin.close()
    assert first.wait(timeout=30) == 0
    assert waiter.wait(timeout=30) == 0
    err = waiter.stderr.read()
    assert b"waiting for another cef-sync" in err

    st = store.stat()
    assert st["snapshot_id"] == "second" and st["last_seq"] == 1
    assert store.get(id="p1")[1]["attrs"]["after"] is True


def test_apply_from_a_pipe_commits_while_idle(store):
    assert store.load(snapshot(10)).returncode == 0
    p = subprocess.Popen([CEF_SYNC, "apply", "--store", store.dir, "--secret",
                          store.secret, "--idle-ms", "100", "-"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    p.stdin.write(encode([{"cef": "delta", "version": 1}], "ndjson"))
    for s in range(1, 4):
        p.stdin.write(encode([{"seq": s, "op": "patch", "id": "p%d" % s,
                               "set": {"seen": s}}], "ndjson"))
        p.stdin.flush()
        deadline = time.time() + 10
        while store.stat()["last_seq"] != s:
            assert time.time() < deadline, "batch not committed while idle"
            time.sleep(0.05)
    p.stdin.close()
    assert p.wait(timeout=10) == 0
    assert store.get(id="p3")[1]["attrs"]["seen"] == 3
