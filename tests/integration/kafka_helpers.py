# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""Helpers for the Kafka tests: librdkafka's mock cluster driven through
build/cef-kafka-mock, a generator of delta records keyed by profile id, a
reference model of the store computed in Python from the same records, and
a comparison of a store (dumped by build/cef-kafka-dump) with it."""

import json
import os
import random
import signal
import struct
import subprocess
import time
import zlib

import msgpack

from store_helpers import BUILD, CEF_SYNC, Store

MOCK = str(BUILD / "cef-kafka-mock")
DUMP = str(BUILD / "cef-kafka-dump")
TOPIC = "cef.profiles"


class KafkaMock:
    """A mock cluster (3 brokers) with one topic; commands on its stdin."""

    def __init__(self, tmp_path, partitions=3, spare=0, brokers=3,
                 proxy=False):
        self.tmp = tmp_path
        self.partitions = partitions
        self.proc = subprocess.Popen(
            [MOCK] + (["--proxy"] if proxy else []) +
            ["--brokers", str(brokers), "--partitions",
             str(partitions), "--spare", str(spare), "--topic", TOPIC],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=open(os.path.join(str(tmp_path), "mock.log"), "ab"),
            text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("bootstrap "), line
        self.bootstrap = line.split()[1]
        self.files = 0

    def cmd(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline().strip()
        assert reply.startswith("ok"), (line, reply)
        return reply[2:].strip()

    def produce(self, records, rate=None, log=None):
        """records: (partition, key bytes or None, value bytes or None)."""
        self.files += 1
        path = os.path.join(str(self.tmp), "produce-%d.bin" % self.files)
        with open(path, "wb") as f:
            for part, key, value in records:
                f.write(struct.pack("<i", part))
                for b in (key, value):
                    if b is None:
                        f.write(struct.pack("<i", -1))
                    else:
                        f.write(struct.pack("<i", len(b)) + b)
        line = "produce " + path
        if rate:
            line += " %g %s" % (rate, log)
        return int(self.cmd(line))

    def committed(self, group):
        out = {}
        for item in self.cmd("committed " + group).split():
            p, o = item.split(":")
            out[int(p)] = int(o)
        return out

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=20)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def partition_of(pid, partitions):
    return zlib.crc32(pid.encode()) % partitions


class Workload:
    """Delta records keyed by profile id.  Records of one profile go to one
    partition; a merge joins two profiles of the same partition and keys
    are derived from ids of their own partition, so that no two partitions'
    records touch the same profile or key: any interleaving of the
    partitions gives the same store, and the reference model can apply the
    records in production order.

    Every record that changes a profile sets its attribute "n" to the
    number of records applied to it so far: a record applied twice, or
    one lost, shows as a wrong "n"."""

    def __init__(self, seed=1, partitions=3, ids=3000, prefix="c"):
        self.rnd = random.Random(seed)
        self.partitions = partitions
        self.ids = ["%s%d" % (prefix, i) for i in range(ids)]
        self.by_part = {}
        for i in self.ids:
            self.by_part.setdefault(partition_of(i, partitions), []).append(i)
        self.count = {}
        self.records = []        # (partition, offset, key, record or None)
        self.next_offset = {}
        self.keys_used = set()

    def _n(self, pid):
        self.count[pid] = self.count.get(pid, 0) + 1
        return self.count[pid]

    def _key(self, t, v):
        self.keys_used.add("%s:%s" % (t, v))
        return [t, v]

    def add(self, part, pid, rec):
        off = self.next_offset.get(part, 0)
        self.next_offset[part] = off + 1
        self.records.append((part, off, pid, rec))

    def generate(self, n, parts=None, pool=None):
        r = self.rnd
        for _ in range(n):
            if pool is None:
                pid = r.choice(self.ids)
                part = partition_of(pid, self.partitions)
            else:
                part, ids = pool
                pid = r.choice(ids)
            if parts is not None and part not in parts:
                continue
            x = r.random()
            if x < 0.30:
                rec = {"op": "upsert", "id": pid,
                       "keys": [self._key("email", pid + "@example.com"),
                                self._key("crm", "%s-%d" % (pid,
                                                            r.randrange(3)))],
                       "attrs": {"n": self._n(pid),
                                 "clv": round(r.random() * 1000, 2),
                                 "segments": r.sample(["vip", "news", "b2b",
                                                       "eu", "us"], 2),
                                 "interests": {"shoes": round(r.random(), 2)},
                                 "name": "N%d" % r.randrange(100),
                                 "ok": r.random() < 0.5, "note": None}}
            elif x < 0.75:
                rec = {"op": "patch", "id": pid,
                       "set": {"n": self._n(pid),
                               "clv": round(r.random() * 1000, 2)}}
                if r.random() < 0.2:
                    rec["unset"] = ["segments"]
                if r.random() < 0.3:
                    rec["seq"] = r.randrange(1, 1000)   # optional, ignored
            elif x < 0.80:
                rec = {"op": "keys", "id": pid,
                       "add": [self._key("dev", "%s-d%d" % (
                           pid, r.randrange(4)))],
                       "remove": [self._key("crm", "%s-%d" % (
                           pid, r.randrange(3)))]}
            elif x < 0.85:
                ids = self.by_part[part] if pool is None else pool[1]
                into = r.choice(ids)
                if into == pid:
                    continue
                rec = {"op": "merge", "from": pid, "into": into}
            elif x < 0.88:
                rec = {"op": "delete", "id": pid}
            else:
                rec = None                      # a tombstone
            self.add(part, pid, rec)

    def messages(self, fmt="msgpack", start=0):
        out = []
        for part, _, pid, rec in self.records[start:]:
            out.append((part, pid.encode(), encode(rec, fmt)))
        return out

    def counts(self):
        return dict(self.next_offset)


def encode(rec, fmt="msgpack"):
    if rec is None:
        return None
    if fmt == "msgpack":
        return msgpack.packb(rec, use_bin_type=True)
    return json.dumps(rec).encode()


class Reference:
    """The store's expected state: profiles by id ({"keys", "attrs"}) and
    key owners, applying the delta semantics of docs/formats.md."""

    def __init__(self):
        self.profiles = {}
        self.owner = {}

    def _drop_keys(self, pid):
        for k in self.profiles[pid]["keys"]:
            if self.owner.get(k) == pid:
                del self.owner[k]

    def _take(self, pid, k):
        old = self.owner.get(k)
        if old is not None and old != pid:
            self.profiles[old]["keys"].discard(k)
        self.owner[k] = pid
        self.profiles[pid]["keys"].add(k)

    def apply(self, pid, rec):
        P = self.profiles
        if rec is None:
            rec = {"op": "delete", "id": pid}
        op = rec["op"]
        if op == "upsert":
            i = rec["id"]
            if i in P:
                self._drop_keys(i)
                P[i]["keys"] = set()
            else:
                P[i] = {"keys": set(), "attrs": {}}
            for t, v in rec["keys"]:
                self._take(i, "%s:%s" % (t, v))
            P[i]["attrs"] = dict(rec["attrs"])
        elif op == "patch":
            i = rec["id"]
            if i not in P:
                return
            P[i]["attrs"].update(rec.get("set", {}))
            for name in rec.get("unset", []):
                P[i]["attrs"].pop(name, None)
        elif op == "delete":
            i = rec["id"]
            if i not in P:
                return
            self._drop_keys(i)
            del P[i]
        elif op == "keys":
            i = rec["id"]
            if i not in P:
                return
            for t, v in rec.get("remove", []):
                k = "%s:%s" % (t, v)
                if self.owner.get(k) == i:
                    del self.owner[k]
                    P[i]["keys"].discard(k)
            for t, v in rec.get("add", []):
                self._take(i, "%s:%s" % (t, v))
        elif op == "merge":
            f, t = rec["from"], rec["into"]
            if f not in P or t not in P:
                return
            for k in list(P[f]["keys"]):
                if self.owner.get(k) == f:
                    self._take(t, k)
            del P[f]


def reference(workload, offsets=None, skip=()):
    """The state after the records below offsets[partition] (all if None),
    leaving out the (partition, offset) pairs in skip."""
    ref = Reference()
    for part, off, pid, rec in workload.records:
        if offsets is not None and off >= offsets.get(part, 0):
            continue
        if (part, off) in skip:
            continue
        ref.apply(pid, rec)
    return ref


def dump(store, keys):
    path = os.path.join(str(store.tmp), "keys.txt")
    with open(path, "w") as f:
        for k in sorted(keys):
            f.write(k + "\n")
    r = subprocess.run([DUMP, "--store", store.dir, "--secret", store.secret,
                        "--keys", path], capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    profiles, owners, tail = {}, {}, None
    for line in r.stdout.decode().splitlines():
        o = json.loads(line)
        if "attrs" in o:
            assert o["id"] not in profiles, "profile %s twice" % o["id"]
            profiles[o["id"]] = o["attrs"]
        elif "key" in o:
            owners[o["key"]] = o["id"]
        else:
            tail = o
    return profiles, owners, tail


def stored_offsets(store):
    s = store.stat()
    if "kafka" not in s:
        return {}
    return {p["partition"]: p["offset"] for p in s["kafka"]["partitions"]
            if p["offset"] is not None}


def check_equal(store, workload, offsets=None, skip=()):
    """Assert the store holds exactly the reference state (at offsets, or
    at its own stored offsets when offsets == "stored")."""
    if offsets == "stored":
        offsets = stored_offsets(store)
    ref = reference(workload, offsets, skip)
    profiles, owners, tail = dump(store, workload.keys_used)
    want = {i: p["attrs"] for i, p in ref.profiles.items()}
    if profiles != want:
        missing = sorted(set(want) - set(profiles))[:5]
        extra = sorted(set(profiles) - set(want))[:5]
        diff = [i for i in want if i in profiles
                and profiles[i] != want[i]][:3]
        raise AssertionError(
            "store differs from the reference at offsets %r: missing %r, "
            "extra %r, different %r" % (
                offsets, missing, extra,
                [(i, profiles[i], want[i]) for i in diff]))
    for k in workload.keys_used:
        assert owners.get(k) == ref.owner.get(k), (k, owners.get(k),
                                                   ref.owner.get(k))
    assert tail["profiles"] == len(ref.profiles)
    assert tail["keys"] == len(ref.owner)
    return tail


RUNNING = []     # consumers started, killed by kill_leftovers()


def kill_leftovers():
    """Kill the consumers a failed test left running (consume never exits
    by itself)."""
    while RUNNING:
        c = RUNNING.pop()
        if c.proc.poll() is None:
            c.proc.kill()
            c.proc.wait()


class Consumer:
    """cef-sync consume as a background process."""

    def __init__(self, store, mock, *extra, topic=TOPIC):
        self.store = store
        self.log = os.path.join(str(store.tmp), "consume-%d.log"
                                % time.monotonic_ns())
        self.out = os.path.join(str(store.tmp), "consume-%d.out"
                                % time.monotonic_ns())
        self.proc = subprocess.Popen(
            [CEF_SYNC, "consume", "--store", store.dir, "--secret",
             store.secret, "--brokers", mock.bootstrap, "--topic", topic]
            + list(extra),
            stdout=open(self.out, "wb"), stderr=open(self.log, "wb"))
        RUNNING.append(self)

    def stderr(self):
        with open(self.log) as f:
            return f.read()

    def stdout(self):
        with open(self.out) as f:
            return f.read()

    def wait(self, timeout=60):
        return self.proc.wait(timeout=timeout)

    def alive(self):
        return self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)


def wait_for(cond, timeout, what, interval=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("timed out after %gs waiting for %s" % (timeout,
                                                                 what))


def caught_up(store, counts):
    """The stored offsets reached counts (partition -> records)."""
    def cond():
        o = stored_offsets(store)
        return all(o.get(p, 0) >= n for p, n in counts.items())
    return cond


def empty_store(tmp_path, snapshot_kafka=None):
    store = Store(tmp_path)
    hdr = {"cef": "snapshot", "version": 1, "id": "S0",
           "created_at": 1700000000}
    if snapshot_kafka is not None:
        hdr["kafka"] = snapshot_kafka
    data = msgpack.packb(hdr) + msgpack.packb({"end": True, "count": 0})
    r = store.load(data)
    assert r.returncode == 0, r.stderr
    return store


def snapshot_of(ref, header_kafka, snap_id="S1"):
    """A snapshot stream holding the reference state."""
    hdr = {"cef": "snapshot", "version": 1, "id": snap_id,
           "created_at": 1700000000, "kafka": header_kafka}
    out = [msgpack.packb(hdr)]
    for pid, p in sorted(ref.profiles.items()):
        keys = [k.split(":", 1) for k in sorted(p["keys"])
                if ref.owner.get(k) == pid]
        out.append(msgpack.packb({"id": pid, "keys": keys,
                                  "attrs": p["attrs"]}))
    out.append(msgpack.packb({"end": True, "count": len(ref.profiles)}))
    return b"".join(out)
