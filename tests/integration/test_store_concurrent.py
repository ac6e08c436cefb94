# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""A reader process (cef-store-probe, using the lib/ reader API) looks
profiles up in a loop while cef-sync loads snapshots and applies deltas:
it must never see an error, a missing profile, two snapshots mixed, or a
half-applied batch."""

import json
import subprocess
import time

from store_helpers import (PROBE, Store, deltas, patch_round, snapshot,
                           write_keys)

K = 150          # probed profiles
N = 3000         # profiles per snapshot


def test_reader_never_sees_a_half_state(tmp_path):
    store = Store(tmp_path)
    snaps = {name: snapshot(N, name) for name in ("A", "B")}
    assert store.load(snaps["A"]).returncode == 0

    keys = tmp_path / "keys"
    write_keys(keys, K)
    stop = tmp_path / "stop"

    probes = [subprocess.Popen([PROBE, "--store", store.dir, "--secret",
                                store.secret, "--keys", str(keys),
                                "--stop", str(stop)],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
              for _ in range(2)]

    loads = applies = 0
    end = time.time() + 8
    name = "A"
    while time.time() < end:
        for p in probes:
            assert p.poll() is None, p.stderr.read().decode()

        name = "B" if name == "A" else "A"
        r = store.load(snaps[name])
        assert r.returncode == 0, r.stderr
        loads += 1

        recs = []
        for rnd in range(4):
            recs += patch_round(rnd * K + 1, K)
        r = store.apply(deltas(recs), "--batch", "37")
        assert r.returncode == 0, r.stderr
        applies += 1

    stop.write_text("")
    results = []
    for p in probes:
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err.decode()
        results.append(json.loads(out))

    for res in results:
        assert set(res["snapshots"]) == {"A", "B"}, res
        assert res["max_seq"] > 0
        assert res["sessions"] > loads
    assert loads >= 3 and applies >= 3
