# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""Faults under a running nginx: the store deleted or truncated, a worker
killed with SIGKILL under load, a reload every second under load, and
cef-sync killed twenty times in a row during loads and applies.  Every test
is bounded to a few seconds; the harness fails any of them whose error.log
holds an [alert], [crit] or [emerg] (a worker dying on a signal is an
[alert]) or a sanitizer report."""

import concurrent.futures
import os
import random
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest

from cef_fixtures import load_store, signed, write_secret
from client import request
from conftest import VALGRIND
from store_helpers import CEF_SYNC, Store, deltas, patch_round, snapshot

SIGN = b"faults-signing-secret"
STORE_SECRET = b"faults-store-secret-0123"

CONF = """
    cef_store @PREFIX@/store;
    cef_store_secret @PREFIX@/store.secret;

    map $http_x_country $geoip2_country_code {
        default DE;
    }

    server {
        listen 127.0.0.1:@PORT@;
        access_log off;

        cef_signing_secret @PREFIX@/signing.secret;
        cef_key customer $cookie_shop_customer signed;

        location / {
            return 200 "pid=$pid p=$cef_profile name=$cef_attr_first_name\\n";
        }

        location /offers {
            cef_rules @REPO@/rules/examples/webshop.yaml;
            return 200 "pid=$pid offers=$cef_offers\\n";
        }
    }
"""

GOLD = {"Cookie": "shop_customer=" + signed(SIGN, "customer", "1001")}

# with master_process off nothing restarts a process that dies, and there
# are no workers to kill or replace
needs_master = pytest.mark.skipif(VALGRIND, reason="needs worker processes")


@pytest.fixture
def shop(nginx):
    inst = nginx.prepare(CONF)
    write_secret(inst.prefix / "store.secret", STORE_SECRET + b"\n")
    write_secret(inst.prefix / "signing.secret", SIGN + b"\n")
    load_store(inst.prefix / "store", inst.prefix / "store.secret")
    inst.store = inst.prefix / "store"
    return inst.start()


def who(inst):
    status, _, body = request(inst, "/", headers=GOLD, timeout=10)
    assert status == 200, status
    return dict(re.findall(r"(\w+)=(\S*)", body.decode()))


def reload_store(inst, name="Greta"):
    from cef_fixtures import PROFILES
    profiles = [dict(p, attrs=dict(p["attrs"], first_name=name))
                if p["id"] == "p-gold" else p for p in PROFILES]
    load_store(inst.store, inst.prefix / "store.secret", profiles,
               snap_id="snap-%s" % name)


def wait_for(pred, timeout=10, what="condition"):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, what + " never happened"
        time.sleep(0.1)


def hammer(inst, seconds, threads=4, check=None):
    """Requests from `threads` clients for `seconds`; returns (count,
    failures) where a failure is an exception, a non-200 status or a body
    `check` rejects."""
    stop = time.monotonic() + seconds
    failures, counts = [], []

    def client():
        n = 0
        while time.monotonic() < stop:
            try:
                status, _, body = request(inst, "/", headers=GOLD, timeout=10)
            except OSError as e:
                failures.append(repr(e))
                continue
            n += 1
            if status != 200:
                failures.append(status)
            elif check is not None and not check(body):
                failures.append(body)
        counts.append(n)

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for f in [pool.submit(client) for _ in range(threads)]:
            f.result()
    return sum(counts), failures


def generation(inst):
    return os.path.realpath(inst.store / "current")


def readers(gen_dir):
    """PIDs holding reader slots in an LMDB environment (mdb_stat -r)."""
    p = subprocess.run(["mdb_stat", "-r", gen_dir], capture_output=True,
                       text=True, timeout=10)
    # mdb_stat exits 1 after printing the reader table
    assert "Reader Table Status" in p.stdout, (p.returncode, p.stderr)
    pids = set()
    for line in p.stdout.splitlines():
        m = re.match(r"\s*(\d+)\s+[0-9a-f]+\s+(\d+|-)\s*$", line)
        if m:
            pids.add(int(m.group(1)))
    return pids


# -- the store under a running nginx -----------------------------------------

def test_store_deleted_then_restored(shop):
    assert who(shop)["p"] == "p-gold"

    shutil.rmtree(shop.store)
    # fail open: pages keep coming, with the old mapping or anonymous
    for _ in range(30):
        assert who(shop)["p"] in ("p-gold", "")
    pids = shop.worker_pids()

    reload_store(shop, "Restored")
    wait_for(lambda: who(shop)["name"] == "Restored", what="store restored")
    assert shop.worker_pids() == pids, "a worker died"


def test_store_current_link_broken_then_restored(shop):
    gen = generation(shop)
    os.unlink(shop.store / "current")
    os.symlink("gen-does-not-exist", shop.store / "current")
    for _ in range(30):
        assert who(shop)["p"] in ("p-gold", "")
    pids = shop.worker_pids()

    os.unlink(shop.store / "current")
    os.symlink(os.path.basename(gen), shop.store / "current")
    reload_store(shop, "Back")
    wait_for(lambda: who(shop)["name"] == "Back", what="store restored")
    assert shop.worker_pids() == pids, "a worker died"


@pytest.mark.parametrize("damage", ["lock", "data-garbage"])
def test_store_files_damaged_then_restored(shop, damage):
    """A damaged generation that a worker has yet to open (the next full
    load's) is refused and the worker keeps the store it has; restoring a
    good load is picked up."""
    assert who(shop)["p"] == "p-gold"
    pids = shop.worker_pids()
    reload_store(shop, "Second")
    gen = generation(shop)

    # damage the new generation before the workers switch to it (they stat
    # `current` at most once per check interval, 1 s by default) ...
    if damage == "lock":
        os.unlink(os.path.join(gen, "lock.mdb"))
    else:
        with open(os.path.join(gen, "data.mdb"), "r+b") as f:
            f.write(b"\xff" * 8192)
    for _ in range(20):
        assert who(shop)["p"] in ("p-gold", "")
        time.sleep(0.1)

    # ... then a good load replaces it
    reload_store(shop, "Third")
    wait_for(lambda: who(shop)["name"] == "Third", what="good store used")
    assert shop.worker_pids() == pids, "a worker died"


def _truncate_data(shop, path="/"):
    """Cut data.mdb to a quarter under the running workers; returns the
    statuses of 20 requests to path that follow."""
    assert who(shop)["p"] == "p-gold"
    gen = generation(shop)
    size = os.path.getsize(os.path.join(gen, "data.mdb"))
    os.truncate(os.path.join(gen, "data.mdb"), size // 4)
    statuses = []
    for _ in range(20):
        try:
            statuses.append(request(shop, path, headers=GOLD, timeout=10)[0])
        except OSError as e:
            statuses.append(repr(e))
    return statuses


def _expect_alerts(inst, pattern):
    """Mark the [alert]s a test causes on purpose (lines matching pattern)
    so that the harness's log check passes over them and still fails the
    test on any other."""
    rx = re.compile(pattern)
    inst.error_log.write_text("".join(
        line.replace("[alert]", "[expected alert]") if rx.search(line)
        else line for line in inst.log_text().splitlines(True)))


@needs_master
@pytest.mark.parametrize("path", ["/", "/offers"])
def test_store_data_file_truncated_no_worker_dies(shop, path):
    """data.mdb cut short under workers that have it mapped: reading a page
    past the new end raises SIGBUS, which the module catches around its
    store reads (identity and attributes on /, the rules' decision on
    /offers): the page goes out generic and the worker lives."""
    pids = shop.worker_pids()
    statuses = _truncate_data(shop, path)
    assert statuses == [200] * 20
    log = shop.log_text()
    assert "exited on signal" not in log
    assert "faulted (SIGBUS" in log
    assert shop.worker_pids() == pids, "a worker died"


@needs_master
def test_store_data_file_truncated_then_recovers(shop):
    """After the truncation a good load brings personalisation back, in
    the same workers."""
    pids = shop.worker_pids()
    _truncate_data(shop)
    reload_store(shop, "AfterTruncate")

    # a worker that faulted reopens the store at most once a second
    recovered = set()

    def both_recovered():
        f = who(shop)
        if f["name"] == "AfterTruncate":
            recovered.add(int(f["pid"]))
        return recovered == set(pids)

    wait_for(both_recovered, what="store recovered in both workers")
    for _ in range(20):
        assert who(shop)["name"] == "AfterTruncate"
    assert shop.worker_pids() == pids, "a worker died"


@needs_master
def test_store_fault_during_a_decision_then_recovers(shop):
    """A fault caught in the middle of the rules' decision (a profile page
    cut away while the rules read it) leaves nothing behind: after a good
    load the same workers decide with rules again."""
    pids = shop.worker_pids()
    _truncate_data(shop, "/offers")
    reload_store(shop, "AfterDecisionFault")
    decided = set()

    def both_decide():
        status, _, body = request(shop, "/offers", headers=GOLD, timeout=10)
        f = dict(re.findall(r"(\w+)=(\S*)", body.decode()))
        if status == 200 and f["offers"]:
            decided.add(int(f["pid"]))
        return decided == set(pids)

    wait_for(both_decide, what="rules deciding again in both workers")
    assert "depends on its own decision" not in shop.log_text()
    assert shop.worker_pids() == pids, "a worker died"


# -- workers and reloads -----------------------------------------------------

@needs_master
def test_worker_killed_under_load(shop):
    before = shop.worker_pids()
    assert len(before) == 2
    victim = before[0]
    gen = generation(shop)
    wait_for(lambda: all(who(shop)["p"] == "p-gold" for _ in range(4)))

    def kill_soon():
        time.sleep(0.7)
        os.kill(victim, signal.SIGKILL)

    killer = threading.Thread(target=kill_soon)
    killer.start()
    count, failures = hammer(shop, 2.0, check=lambda b: b"p=p-gold" in b)
    killer.join()

    # requests on the killed worker's connections may fail; the rest not
    assert count > 100
    assert len(failures) <= 8, failures[:10]

    wait_for(lambda: len(shop.worker_pids()) == 2
             and victim not in shop.worker_pids(), what="worker restarted")
    new = (set(shop.worker_pids()) - set(before)).pop()

    # the new worker opened the store and serves profiles
    served = set()
    deadline = time.monotonic() + 10
    while new not in served:
        assert time.monotonic() < deadline, "new worker never served"
        f = who(shop)
        assert f["p"] == "p-gold"
        served.add(int(f["pid"]))

    # no reader slot of the dead worker is left in the generation in use
    assert generation(shop) == gen
    assert victim not in readers(gen), readers(gen)
    # the one [alert] this test causes on purpose; any other still fails it
    mark = "worker process %d exited on signal 9" % victim
    assert mark in shop.log_text()
    _expect_alerts(shop, re.escape(mark))


@needs_master
def test_reload_every_second_under_load(shop):
    stop = threading.Event()
    reloads = []

    def reloader():
        while not stop.wait(1.0):
            os.kill(shop.proc.pid, signal.SIGHUP)
            reloads.append(time.monotonic())

    t = threading.Thread(target=reloader)
    t.start()
    try:
        count, failures = hammer(shop, 6.5,
                                 check=lambda b: b"p=p-gold" in b)
    finally:
        stop.set()
        t.join()

    assert len(reloads) >= 5
    assert count > 500
    assert failures == [], failures[:10]
    assert shop.log_text().count("reconfiguring") >= 5


# -- cef-sync killed again and again -----------------------------------------

K = 200


def _expected_seq(i, last, k):
    return 0 if last <= i else last - (last - 1 - i) % k


def test_kill_apply_twenty_times_nothing_lost_or_doubled(tmp_path):
    """kill -9 of `cef-sync apply` at 20 random moments: after each the
    store verifies and every profile holds exactly the value of the last
    committed sequence (nothing lost, nothing applied twice, no profile or
    key gained or lost); then one replay finishes the stream."""
    store = Store(tmp_path)
    assert store.load(snapshot(K)).returncode == 0
    path = tmp_path / "deltas.msgpack"
    recs = []
    for r in range(200):
        recs += patch_round(r * K + 1, K)
    path.write_bytes(deltas(recs))
    total = len(recs)

    data = path.read_bytes()

    def feed(p, cut):
        try:
            p.stdin.write(data[:cut])
            p.stdin.flush()
        except OSError:
            pass

    rnd = random.Random(10)
    lasts = []
    for i in range(20):
        # from a pipe, as a feed arrives: batches commit as they fill (a
        # file would be validated whole first).  The pipe gets a random
        # part of the stream (cut anywhere, mid-record too) and stays open,
        # so the kill always lands during the apply, however fast it is.
        p = subprocess.Popen([CEF_SYNC, "apply", "--quiet", "--batch", "53",
                              "--store", store.dir, "--secret",
                              store.secret, "-"], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        cut = rnd.randint(len(data) // 20, len(data) * 19 // 20)
        t = threading.Thread(target=feed, args=(p, cut))
        t.start()
        time.sleep(rnd.uniform(0.005, 0.06))
        p.send_signal(signal.SIGKILL)
        p.wait()
        t.join()
        try:
            p.stdin.close()
        except OSError:
            pass

        assert store.verify().returncode == 0
        st = store.stat()
        last = st["last_seq"]
        lasts.append(last)
        assert st["profiles"] == K and st["keys"] == 2 * K
        for j in (0, 1, 77, K - 1):
            got = store.get(id="p%d" % j)[1]["attrs"]["seq"]
            assert got == _expected_seq(j, last, k=K), (i, j, last)

    # progress was made and every kill landed mid-stream
    assert 0 < max(lasts) < total and len(set(lasts)) >= 5, lasts

    r = store.apply_file(path, "--batch", "53")
    assert r.returncode == 0, r.stderr
    st = store.stat()
    assert st["last_seq"] == total
    assert st["profiles"] == K and st["keys"] == 2 * K
    for j in range(0, K, 7):
        assert store.get(id="p%d" % j)[1]["attrs"]["seq"] == \
            _expected_seq(j, total, K)
    assert store.verify().returncode == 0


def test_kill_load_twenty_times(tmp_path):
    """kill -9 of `cef-sync load` at 20 random moments: the store always
    verifies and holds either the whole old or the whole new snapshot,
    never a mixture; leftovers go with the next load."""
    store = Store(tmp_path)
    assert store.load(snapshot(50, "old")).returncode == 0
    big = tmp_path / "new.msgpack"
    big.write_bytes(snapshot(20000, "new"))

    t0 = time.monotonic()
    assert store.load_file(big, "--quiet").returncode == 0
    duration = time.monotonic() - t0
    assert store.load(snapshot(50, "old")).returncode == 0

    rnd = random.Random(11)
    outcomes = []
    for i in range(20):
        p = subprocess.Popen([CEF_SYNC, "load", "--quiet", "--store",
                              store.dir, "--secret", store.secret, str(big)],
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0.0, duration * 0.9))
        p.send_signal(signal.SIGKILL)
        p.wait()

        assert store.verify().returncode == 0, i
        st = store.stat()
        outcomes.append(st["snapshot_id"])
        want = {"old": 50, "new": 20000}[st["snapshot_id"]]
        assert st["profiles"] == want and st["keys"] == 2 * want
        rc, prof = store.get(key="email:u7@example.com")
        assert rc == 0 and prof["attrs"]["snap"] == st["snapshot_id"]
        if st["snapshot_id"] == "new":
            assert store.load(snapshot(50, "old")).returncode == 0

    # most kills landed mid-load (a loaded machine may finish some first)
    assert outcomes.count("old") >= 5, outcomes

    assert store.load_file(big, "--quiet").returncode == 0
    entries = store.entries()
    assert not [e for e in entries if e.startswith("tmp-")]
    assert len([e for e in entries if e.startswith("gen-")]) == 1
    assert store.stat()["profiles"] == 20000
