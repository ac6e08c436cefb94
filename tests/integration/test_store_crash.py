# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""kill -9 at any moment of a load or an apply leaves a sound store that
serves the previous snapshot (or the new one, if the switch happened), the
next writer cleans up, replays neither lose nor duplicate anything, and
repeated loads do not grow the store without bound."""

import os
import random
import signal
import subprocess
import threading
import time

import pytest

from store_helpers import (CEF_SYNC, Store, deltas, encode, patch_round,
                           snapshot)

N_BIG = 120000


@pytest.fixture(scope="module")
def big_snapshot(tmp_path_factory):
    path = tmp_path_factory.mktemp("snap") / "big.msgpack"
    path.write_bytes(snapshot(N_BIG, "new"))
    return path


def _check_sound(store, allowed):
    r = store.verify()
    assert r.returncode == 0, r.stderr
    st = store.stat()
    assert st["snapshot_id"] in allowed
    rc, p = store.get(key="email:u5@example.com")
    assert rc == 0 and p["attrs"]["snap"] == st["snapshot_id"]
    return st


def test_kill_during_load(tmp_path, big_snapshot):
    store = Store(tmp_path)
    assert store.load(snapshot(100, "old")).returncode == 0

    t0 = time.time()
    assert store.load_file(big_snapshot, "--quiet").returncode == 0
    duration = time.time() - t0
    assert store.load(snapshot(100, "old")).returncode == 0

    rnd = random.Random(1)
    killed_mid = 0
    for i in range(8):
        p = subprocess.Popen([CEF_SYNC, "load", "--quiet", "--store",
                              store.dir, "--secret", store.secret,
                              str(big_snapshot)],
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        # a busy machine stretches the load: kill at a random point of
        # the run that is actually under way (its tmp- generation exists)
        deadline = time.time() + 10 * duration + 5
        while (p.poll() is None and time.time() < deadline
               and not [e for e in store.entries() if e.startswith("tmp-")]):
            time.sleep(0.005)
        time.sleep(rnd.uniform(0, duration * 0.5))
        p.send_signal(signal.SIGKILL)
        rc = p.wait()
        killed_mid += rc == -signal.SIGKILL

        st = _check_sound(store, {"old", "new"})
        if st["snapshot_id"] == "new":
            assert st["profiles"] == N_BIG
            assert store.load(snapshot(100, "old")).returncode == 0
        else:
            assert st["profiles"] == 100

    assert killed_mid >= 6

    # leftovers are cleaned by the next writer, and a reload works
    assert store.load_file(big_snapshot, "--quiet").returncode == 0
    entries = store.entries()
    assert not [e for e in entries if e.startswith("tmp-")]
    assert len([e for e in entries if e.startswith("gen-")]) == 1
    st = _check_sound(store, {"new"})
    assert st["profiles"] == N_BIG


def test_kill_during_load_from_a_pipe(tmp_path):
    store = Store(tmp_path)
    assert store.load(snapshot(100, "old")).returncode == 0
    data = snapshot(5000, "new")

    for cut in (10, len(data) // 3, len(data) - 10):
        p = subprocess.Popen([CEF_SYNC, "load", "--quiet", "--store",
                              store.dir, "--secret", store.secret, "-"],
                             stdin=subprocess.PIPE,
                             stderr=subprocess.DEVNULL)
        p.stdin.write(data[:cut])
        p.stdin.flush()
        time.sleep(0.3)
        p.send_signal(signal.SIGKILL)
        p.wait()
        p.stdin.close()
        assert any(e.startswith("tmp-") for e in store.entries())
        _check_sound(store, {"old"})

    assert store.load(data).returncode == 0
    assert not [e for e in store.entries() if e.startswith("tmp-")]
    _check_sound(store, {"new"})


def _expected_seq(i, last, k):
    return 0 if last <= i else last - (last - 1 - i) % k


def test_kill_during_apply_then_replay(tmp_path):
    store = Store(tmp_path)
    k = 300
    assert store.load(snapshot(k)).returncode == 0
    path = tmp_path / "deltas.msgpack"
    recs = []
    for r in range(40):
        recs += patch_round(r * k + 1, k)
    path.write_bytes(deltas(recs))
    total = len(recs)

    rnd = random.Random(2)
    for i in range(5):
        p = subprocess.Popen([CEF_SYNC, "apply", "--quiet", "--batch", "97",
                              "--store", store.dir, "--secret",
                              store.secret, str(path)],
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0.05, 0.6))
        p.send_signal(signal.SIGKILL)
        p.wait()

        assert store.verify().returncode == 0
        st = store.stat()
        last = st["last_seq"]
        assert st["profiles"] == k and st["keys"] == 2 * k
        for j in (0, 1, 150, k - 1):
            got = store.get(id="p%d" % j)[1]["attrs"]["seq"]
            assert got == _expected_seq(j, last, k), (j, last)

    # replaying the whole stream finishes it: nothing lost or doubled
    r = store.apply_file(path, "--batch", "97")
    assert r.returncode == 0, r.stderr
    st = store.stat()
    assert st["last_seq"] == total
    assert st["profiles"] == k and st["keys"] == 2 * k
    for j in range(0, k, 37):
        assert store.get(id="p%d" % j)[1]["attrs"]["seq"] == \
            _expected_seq(j, total, k)
    assert store.verify().returncode == 0


def test_repeated_loads_stay_bounded(tmp_path):
    store = Store(tmp_path)
    data = snapshot(20000, "x")
    assert store.load(data).returncode == 0
    live = store.data_bytes()

    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], store.disk_bytes())
            except FileNotFoundError:
                pass
            time.sleep(0.005)

    t = threading.Thread(target=sample)
    t.start()
    try:
        for i in range(8):
            assert store.load(data).returncode == 0
            assert store.disk_bytes() <= 1.1 * live + 65536
    finally:
        stop.set()
        t.join()

    assert peak[0] <= 2.2 * live, (peak[0], live)
    assert len([e for e in store.entries() if e.startswith("gen-")]) == 1
