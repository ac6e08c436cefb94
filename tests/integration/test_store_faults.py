# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""A damaged store under running workers: meta pages or data pages
overwritten in place, a new generation that cannot be opened.  Workers
never die, serve generic pages, say so once per fault and generation, count
the rest in a metric, and pick up the next good generation."""

import os
import random
import re
import time

import pytest

from cef_fixtures import PROFILES, load_store, signed, write_secret
from client import request
from conftest import VALGRIND

SIGN = b"storefault-signing-secret"
STORE_SECRET = b"storefault-store-secret-0123"

CONF = """
    cef_store @PREFIX@/store;
    cef_store_secret @PREFIX@/store.secret;
    cef_metrics_zone cef_metrics 1m;

    server {
        listen 127.0.0.1:@PORT@;
        access_log off;

        cef_signing_secret @PREFIX@/signing.secret;
        cef_key customer $cookie_shop_customer signed;

        location / {
            return 200 "pid=$pid p=$cef_profile name=$cef_attr_first_name age=$cef_store_age\\n";
        }

        location = /cef/metrics {
            cef_metrics;
        }
    }
"""

GOLD = {"Cookie": "shop_customer=" + signed(SIGN, "customer", "1001")}

needs_master = pytest.mark.skipif(VALGRIND, reason="needs worker processes")


@pytest.fixture
def shop(nginx):
    inst = nginx.prepare(CONF)
    write_secret(inst.prefix / "store.secret", STORE_SECRET + b"\n")
    write_secret(inst.prefix / "signing.secret", SIGN + b"\n")
    inst.store = inst.prefix / "store"
    load(inst, "Greta")
    return inst.start()


def load(inst, name):
    profiles = [dict(p, attrs=dict(p["attrs"], first_name=name))
                if p["id"] == "p-gold" else p for p in PROFILES]
    load_store(inst.store, inst.prefix / "store.secret", profiles,
               snap_id="snap-%s" % name)


def who(inst, headers=GOLD):
    status, _, body = request(inst, "/", headers=headers, timeout=10)
    assert status == 200, status
    return dict(re.findall(r"(\w+)=(\S*)", body.decode()))


def metrics(inst):
    status, _, body = request(inst, "/cef/metrics", timeout=10)
    assert status == 200
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def wait_for(pred, timeout=15, what="condition"):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, what + " never happened"
        time.sleep(0.1)


def generation(inst):
    return os.path.realpath(inst.store / "current")


def gen_number(path):
    return int(os.path.basename(path)[len("gen-"):])


def scribble(path, offset, length, seed):
    """Overwrite length bytes of path at offset with seeded random bytes,
    in place (the workers' mapping sees them at once)."""
    rnd = random.Random(seed)
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(bytes(rnd.getrandbits(8) for _ in range(length)))


def served_by_every_worker(inst, pred, what):
    """Wait until every worker has answered a request satisfying pred."""
    pids = set(inst.worker_pids())
    seen = set()

    def done():
        f = who(inst)
        if pred(f):
            seen.add(int(f["pid"]))
        return seen >= pids

    wait_for(done, what=what)


def error_lines(inst, pattern):
    return [l for l in inst.log_text().splitlines()
            if "[error]" in l and re.search(pattern, l)]


def per_worker(lines):
    """How many of lines each worker wrote (pid from "[error] PID#TID:")."""
    out = {}
    for l in lines:
        pid = int(re.search(r"\[error\] (\d+)#", l).group(1))
        out[pid] = out.get(pid, 0) + 1
    return out


# -- item 3: a corrupted store never crashes a worker ------------------------

@needs_master
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_meta_pages_overwritten_no_worker_dies(shop, seed):
    """The first 8 KB of the mapped data.mdb (both meta pages) overwritten
    with random bytes: every request still gets a 200, no worker dies, each
    worker logs the fault once, and a good load brings profiles back."""
    served_by_every_worker(shop, lambda f: f["p"] == "p-gold", "profiles")
    pids = shop.worker_pids()
    gen = generation(shop)

    scribble(os.path.join(gen, "data.mdb"), 0, 8192, seed)
    # past the check interval (1 s), so that workers renew their view
    for _ in range(40):
        assert who(shop)["p"] in ("p-gold", "")
        time.sleep(0.05)
    assert shop.worker_pids() == pids, "a worker died"
    assert "exited on signal" not in shop.log_text()

    load(shop, "Restored")
    served_by_every_worker(shop, lambda f: f["name"] == "Restored",
                           "recovery in every worker")
    for _ in range(20):
        assert who(shop)["name"] == "Restored"
    assert shop.worker_pids() == pids, "a worker died"

    faults = error_lines(shop, r"cef: store .*generation %d\b" % gen_number(gen))
    assert all(n == 1 for n in per_worker(faults).values()), faults
    assert len(faults) <= len(pids)


def damage_profile(gen, profile_id, seed):
    """Random bytes over the attributes of one stored profile (the bytes
    that follow its id), leaving LMDB's own structure intact."""
    data = os.path.join(gen, "data.mdb")
    with open(data, "rb") as f:
        at = f.read().find(profile_id.encode())
    assert at > 0
    scribble(data, at + len(profile_id), 24, seed)


@needs_master
@pytest.mark.parametrize("damage", ["profile", "pages"])
def test_data_pages_garbage_logged_once_per_generation(shop, damage):
    """Random bytes over one stored profile, or over every data page of the
    generation in use: requests keep getting 200, no worker dies, each
    worker writes at most one line per kind of fault for this generation
    (not one per request), the metric counts the faults it did not log,
    and a good generation brings profiles back."""
    served_by_every_worker(shop, lambda f: f["p"] == "p-gold", "profiles")
    pids = shop.worker_pids()
    gen = generation(shop)
    data = os.path.join(gen, "data.mdb")

    if damage == "profile":
        damage_profile(gen, "p-gold", 7)
    else:
        scribble(data, 2 * 4096, os.path.getsize(data) - 2 * 4096, 7)

    n = 300
    for _ in range(n):
        assert who(shop)["p"] in ("p-gold", "")
    assert shop.worker_pids() == pids, "a worker died"

    lines = error_lines(shop, r"cef: ")
    # one line per kind of fault and worker: a few, not one per request
    assert len(lines) <= 4 * len(pids), lines
    texts = [re.sub(r"^.*?\[error\] (\d+)#\d+: \*?\d* ?", r"\1 ", l)
             .split(", client:")[0] for l in lines]
    assert len(texts) == len(set(texts)), texts

    m = metrics(shop)
    written = m['cef_store_faults_total{log="written"}']
    suppressed = m['cef_store_faults_total{log="suppressed"}']
    assert written == len(lines)
    if damage == "profile":
        # every request for the damaged profile faults
        assert 0 < len(lines)
        assert written + suppressed >= n

    load(shop, "Restored")
    served_by_every_worker(shop, lambda f: f["name"] == "Restored",
                           "recovery in every worker")
    assert shop.worker_pids() == pids, "a worker died"


# -- item 4: a generation a worker cannot open is loud -----------------------

@needs_master
def test_unopenable_generation_is_logged_once_and_shown(shop):
    """A new generation whose data file is garbage cannot be opened: each
    worker keeps the old one, logs the failure once at error, and the
    metrics show the generation served behind the newest on disk."""
    served_by_every_worker(shop, lambda f: f["name"] == "Greta", "profiles")
    pids = shop.worker_pids()
    old = gen_number(generation(shop))

    load(shop, "Second")
    new = generation(shop)
    with open(os.path.join(new, "data.mdb"), "r+b") as f:
        f.write(b"\xff" * 8192)

    for _ in range(40):
        assert who(shop)["name"] in ("Greta", "")
        time.sleep(0.05)

    lines = error_lines(shop, r"cannot switch to generation %d\b"
                        % gen_number(new))
    assert per_worker(lines) == {pid: 1 for pid in pids}, lines
    m = metrics(shop)
    assert m['cef_store_generation{state="serving"}'] == old
    assert m['cef_store_generation{state="newest"}'] == gen_number(new)

    load(shop, "Third")
    served_by_every_worker(shop, lambda f: f["name"] == "Third",
                           "good generation used")
    newest = gen_number(generation(shop))
    wait_for(lambda: metrics(shop)['cef_store_generation{state="serving"}']
             == newest, what="serving the newest")
    assert metrics(shop)['cef_store_generation{state="newest"}'] == newest
    assert shop.worker_pids() == pids, "a worker died"


@needs_master
def test_unreadable_generation_is_logged_once_and_shown(shop):
    """cef-sync run so that the new generation is closed to the worker user
    (here: its directory chmod 0700, owned by root): each worker keeps the
    old generation, logs once at error that it cannot switch and why, the
    metrics show it behind, and once the permissions are fixed it switches
    by itself."""
    assert os.geteuid() == 0, "needs root to run workers as another user"
    served_by_every_worker(shop, lambda f: f["name"] == "Greta", "profiles")
    pids = shop.worker_pids()
    old = gen_number(generation(shop))

    load(shop, "Second")
    new = generation(shop)
    mode = os.stat(new).st_mode & 0o7777
    os.chmod(new, 0o700)

    for _ in range(40):
        assert who(shop)["name"] == "Greta"
        time.sleep(0.05)

    lines = error_lines(shop, r"cannot switch to generation %d, still "
                        r"serving generation %d: .*Permission denied"
                        % (gen_number(new), old))
    assert per_worker(lines) == {pid: 1 for pid in pids}, lines
    m = metrics(shop)
    assert m['cef_store_generation{state="serving"}'] == old
    assert m['cef_store_generation{state="newest"}'] == gen_number(new)

    os.chmod(new, mode)
    served_by_every_worker(shop, lambda f: f["name"] == "Second",
                           "switch once readable")
    wait_for(lambda: metrics(shop)['cef_store_generation{state="serving"}']
             == gen_number(new), what="serving the newest")
    assert shop.worker_pids() == pids, "a worker died"
    assert len(error_lines(shop, r"cannot switch")) == len(pids)
