# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""Published records through the store's road (issues 19 and 20, store and
CLI side): weights records and rules records written by the real cef-sync
(load, apply, consume from librdkafka's mock cluster) into a real store,
read back by `cef-sync stat` and `cef-rules history`; the version rules;
bad records that leave the store unchanged; the 50-version bound; a
10 000-rule set (over 64 KiB) through apply and Kafka; cef-rules publish
refusing a file nginx -t would refuse, naming file:line:col."""

import json
import os
import subprocess

import msgpack

from kafka_helpers import (Consumer, KafkaMock, empty_store,
                           kill_leftovers, stored_offsets)
from store_helpers import BUILD, Store

CEF_RULES = str(BUILD / "cef-rules")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
GOOD = os.path.join(ROOT, "tests", "rules", "good.yaml")
BROKEN = os.path.join(ROOT, "tests", "rules", "broken.yaml")

DELTA = b'{"cef":"delta","version":1}\n'

# docs/formats.md's example, verbatim (as cef-report bandit writes it)
DOC_WEIGHTS = ('{"op":"weights","experiment":"hero-q4","salt":"hero-q4",'
               '"version":1796600000,"created_at":1796600000,"weights":'
               '{"spring":859,"summer":4141,"winter":5000},"updated":true,'
               '"exposures":{"spring":1754,"summer":4090,"winter":4156},'
               '"goal":"purchase","metric":"conversion","method":"top-two",'
               '"draws":10000,"floor":0.01,"seed":7}')


def weights_rec(version, weights, seq=None, experiment="hero-q4"):
    r = {"op": "weights", "experiment": experiment, "salt": experiment,
         "version": version, "created_at": version, "weights": weights}
    if seq is not None:
        r["seq"] = seq
    return r


def deltas(*recs):
    return DELTA + b"".join(json.dumps(r).encode() + b"\n" for r in recs)


def rules(*args, input=None):
    return subprocess.run([CEF_RULES] + list(args), input=input,
                          capture_output=True, timeout=120)


def stored_weights(store):
    return {w["experiment"]: (w["version"], w["weights"])
            for w in store.stat()["weights"]}


def test_weights_apply_versions_and_stat(tmp_path):
    store = empty_store(tmp_path)

    rec = json.loads(DOC_WEIGHTS)
    rec["seq"] = 1
    r = store.apply(DELTA + json.dumps(rec).encode() + b"\n")
    assert r.returncode == 0, r.stderr
    assert b"published records: 1 stored" in r.stdout
    assert stored_weights(store) == {
        "hero-q4": (1796600000, {"spring": 859, "summer": 4141,
                                 "winter": 5000})}

    # an older version and the same one again: unchanged and counted; the
    # same version with other weights: kept, warned
    r = store.apply(deltas(
        weights_rec(1796599999, {"spring": 10000}, seq=2),
        weights_rec(1796600000, {"spring": 859, "summer": 4141,
                                 "winter": 5000}, seq=3),
        weights_rec(1796600000, {"spring": 5000, "summer": 5000}, seq=4)))
    assert r.returncode == 0, r.stderr
    assert b"0 stored, 3 unchanged (version not newer; 1 of them " \
        b"conflicting)" in r.stdout
    assert b"version 1796600000 again with different weights" in r.stderr
    assert stored_weights(store)["hero-q4"][0] == 1796600000

    # a newer one, and a second bandit the edge knows nothing about: kept
    r = store.apply(deltas(
        weights_rec(1796600100, {"spring": 2000, "summer": 3000,
                                 "winter": 5000}, seq=5),
        weights_rec(7, {"a": 5000, "b": 5000}, seq=6,
                    experiment="no-such-slot")))
    assert r.returncode == 0, r.stderr
    got = stored_weights(store)
    assert got["hero-q4"] == (1796600100, {"spring": 2000, "summer": 3000,
                                           "winter": 5000})
    assert got["no-such-slot"] == (7, {"a": 5000, "b": 5000})

    # the text form: version and age per bandit
    r = store.run("stat", "--store", store.dir)
    out = r.stdout.decode()
    assert "weights      EXPERIMENT [SALT]  VERSION  AGE" in out
    assert "  hero-q4  v1796600100  " in out
    assert "spring=2000 summer=3000 winter=5000" in out
    w = [x for x in store.stat()["weights"] if x["experiment"] == "hero-q4"]
    assert w[0]["age"] == w[0]["stored_at"] - 1796600100 \
        or abs(w[0]["age"] - (w[0]["stored_at"] - 1796600100)) <= 5


def without_age(weights):
    return [{k: v for k, v in w.items() if k != "age"} for w in weights]


def test_bad_records_change_nothing(tmp_path):
    store = empty_store(tmp_path)
    good = weights_rec(5, {"a": 5000, "b": 5000}, seq=1)
    r = store.apply(deltas(good))
    assert r.returncode == 0, r.stderr
    before = store.stat()

    bad = [
        weights_rec(6, {"a": 5000, "b": 4000}, seq=3),          # 9000 bp
        dict(weights_rec(6, {"a": 10000}, seq=3), colour="red"),  # unknown
        {"seq": 3, "op": "rules", "name": "shop", "action": "publish",
         "version": 9, "created_at": 9, "hash": "0" * 64,
         "source": "version: 1\n"},                              # bad hash
        {"seq": 3, "op": "rules", "name": "sh op", "action": "promote",
         "version": 9, "created_at": 9},                         # bad name
    ]
    for b in bad:
        r = store.apply(deltas(weights_rec(6, {"a": 1, "b": 9999}, seq=2),
                               b))
        assert r.returncode == 1, b
        assert b"record 3 (byte" in r.stderr, r.stderr
        assert b"(nothing changed)" in r.stderr
        after = store.stat()
        # "age" is now - created_at: it moves with the clock, not the store
        assert without_age(after["weights"]) == without_age(before["weights"])
        assert after["rules"] == before["rules"] == []
        assert after["last_seq"] == before["last_seq"]


def test_snapshot_records_and_carry_over(tmp_path):
    store = Store(tmp_path)
    snap = [{"cef": "snapshot", "version": 1, "id": "S1",
             "created_at": 1700000000},
            {"id": "c-1", "keys": [["email", "a@example.com"]],
             "attrs": {"n": 1}},
            weights_rec(3, {"a": 10000}),
            {"end": True, "count": 1}]
    r = store.load(b"".join(msgpack.packb(x) for x in snap))
    assert r.returncode == 0, r.stderr
    assert stored_weights(store) == {"hero-q4": (3, {"a": 10000})}

    pub = rules("publish", GOOD, "--name", "shop", "--label", "v1",
                "--author", "ann", "--seq", "1")
    assert pub.returncode == 0, pub.stderr
    r = store.apply(pub.stdout)
    assert r.returncode == 0, r.stderr

    # a new profile snapshot without them: weights and rule sets stay
    r = store.load(b"".join(msgpack.packb(x) for x in
                            (snap[0], snap[1], snap[3])))
    assert r.returncode == 0, r.stderr
    assert b"kept from the previous generation" in r.stdout
    st = store.stat()
    assert st["generation"] == 2
    assert stored_weights(store) == {"hero-q4": (3, {"a": 10000})}
    assert st["rules"][0]["live"]["label"] == "v1"


def test_publish_refuses_a_file_nginx_t_would(tmp_path):
    r = rules("publish", BROKEN, "--name", "shop")
    assert r.returncode == 1
    assert r.stdout == b""                  # no record at all
    err = r.stderr.decode()
    assert "broken.yaml:7:5: unknown key 'slott'" in err
    assert "would fail nginx -t" in err

    # an nginx variable the configuration does not define (as nginx -t)
    f = tmp_path / "vars.yaml"
    f.write_text("version: 1\noffers:\n  a:\n    slot: hero\n    html: x\n"
                 "rules:\n  - name: r\n    when: var.nope == \"1\"\n"
                 "    show: a\n")
    conf = tmp_path / "nginx.conf"
    conf.write_text("events {}\nhttp { server { listen 8080; } }\n")
    r = rules("publish", str(f), "--name", "shop", "--nginx-conf", str(conf))
    assert r.returncode == 1 and r.stdout == b""
    assert 'vars.yaml:8:11: unknown nginx variable "nope"' \
        in r.stderr.decode(), r.stderr

    for bad in (["--name", "sh op"], ["--name", "s", "--canary", "0%"],
                ["--name", "s", "--canary", "5%", "--shadow", "5%"]):
        r = rules("publish", GOOD, *bad)
        assert r.returncode == 2 and r.stdout == b"", bad


def history(store):
    r = rules("history", "shop", "--store", store.dir)
    assert r.returncode == 0, r.stderr
    # STATE (12 columns, "canary 10%" included), HASH (its first 12 digits)
    return [[line[:12].split()[0], line[14:26]]
            for line in r.stdout.decode().splitlines()[1:]]


def test_publish_canary_promote_rollback_history(tmp_path):
    store = empty_store(tmp_path)
    v2 = tmp_path / "v2.yaml"
    v2.write_text(open(GOOD).read() + "# v2\n")

    def step(*args, seq):
        r = rules(*args, "--store", store.dir, "--seq", str(seq))
        assert r.returncode == 0, r.stderr
        a = store.apply(r.stdout)
        assert a.returncode == 0, a.stderr
        return r.stdout.decode().splitlines()[1]

    rec1 = json.loads(step("publish", GOOD, "--name", "shop", "--label",
                           "spring", "--author", "ann", seq=1))
    assert rec1["source"] == open(GOOD).read()
    assert rec1["rollout"] == {"mode": "live"}
    h1 = rec1["hash"]

    rec2 = json.loads(step("publish", str(v2), "--name", "shop",
                           "--canary", "10%", "--author", "bob", seq=2))
    assert rec2["rollout"] == {"mode": "canary", "share": 10.0}
    h2 = rec2["hash"]
    assert history(store) == [["canary", h2[:12]], ["live", h1[:12]]]
    out = rules("history", "shop", "--store", store.dir).stdout.decode()
    assert "canary 10%" in out and "bob" in out and "spring" in out

    st = store.stat()["rules"][0]
    assert st["live"]["hash"] == h1
    assert st["candidate"]["hash"] == h2
    assert (st["candidate"]["mode"], st["candidate"]["share"]) == \
        ("canary", 10.0)

    step("promote", "shop", seq=3)
    assert history(store) == [["live", h2[:12]], ["retired", h1[:12]]]

    step("rollback", "shop", seq=4)
    assert history(store) == [["rolled-back", h2[:12]], ["live", h1[:12]]]

    step("rollback", "shop", "--to", h2, seq=5)
    assert history(store) == [["live", h2[:12]], ["rolled-back", h1[:12]]]

    j = json.loads(rules("history", "shop", "--store", store.dir,
                         "--json").stdout)
    assert [v["author"] for v in j["versions"]] == ["bob", "ann"]

    # the version of each record is above the stored one (--store)
    assert json.loads(rules("promote", "shop", "--store",
                            store.dir).stdout)["version"] > j["version"]


def test_history_keeps_fifty(tmp_path):
    store = empty_store(tmp_path)
    lines = [DELTA]
    base = open(GOOD).read()
    for i in range(60):
        f = tmp_path / ("v%d.yaml" % i)
        f.write_text(base + "# %d\n" % i)
        r = rules("publish", str(f), "--name", "shop")
        assert r.returncode == 0, r.stderr
        rec = json.loads(r.stdout)
        rec["seq"] = i + 1
        rec["version"] = i + 1
        lines.append(json.dumps(rec).encode() + b"\n")
    r = store.apply(b"".join(lines))
    assert r.returncode == 0, r.stderr
    h = history(store)
    assert len(h) == 50
    assert h[0][0] == "live"
    assert all(s == "retired" for s, _ in h[1:])
    # every kept version still has its source, the dropped ones none
    r = store.verify()
    assert r.returncode == 0, r.stdout + r.stderr


def big_rule_file(path, n=10000):
    out = ["version: 1", "offers:"]
    for i in range(n):
        out += ["  o%d:" % i, "    slot: hero",
                "    html: '<div class=\"offer\">Offer %d</div>'" % i]
    out.append("rules:")
    for i in range(n):
        out += ["  - name: rule %d" % i,
                "    when: profile.clv > %d" % i,
                "    show: o%d" % i, "    priority: %d" % (i % 100)]
    path.write_text("\n".join(out) + "\n")


def test_ten_thousand_rules_through_apply_and_kafka(tmp_path):
    f = tmp_path / "big.yaml"
    big_rule_file(f)
    size = os.path.getsize(f)
    assert size > 64 * 1024

    r = rules("publish", str(f), "--name", "big", "--label", "10k")
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)

    # delta file: one record of ~1 MB
    (tmp_path / "a").mkdir()
    store = empty_store(tmp_path / "a")
    rec["seq"] = 1
    a = store.apply(DELTA + json.dumps(rec).encode() + b"\n")
    assert a.returncode == 0, a.stderr
    assert store.stat()["rules"][0]["live"]["hash"] == rec["hash"]

    # Kafka: the same record as one msgpack message, next to weights
    del rec["seq"]
    mock = KafkaMock(tmp_path, partitions=2)
    try:
        msgs = [(0, b"rules:big", msgpack.packb(rec)),
                (1, b"weights:hero-q4",
                 msgpack.packb(json.loads(DOC_WEIGHTS))),
                (1, b"weights:hero-q4",
                 msgpack.packb(weights_rec(1796599000, {"spring": 10000})))]
        assert mock.produce(msgs) == 3
        (tmp_path / "b").mkdir()
        store = empty_store(tmp_path / "b")
        c = Consumer(store, mock, "--exit-at-end", "--from-beginning")
        assert c.wait(120) == 0, c.stderr()
        assert "published records: 2 stored, 1 unchanged" in c.stdout()
        st = store.stat()
        assert st["rules"][0]["live"]["hash"] == rec["hash"]
        assert st["rules"][0]["live"]["label"] == "10k"
        assert stored_weights(store)["hero-q4"][0] == 1796600000
        assert stored_offsets(store) == {0: 1, 1: 2}

        # a profile record over 64 KiB is still a bad record
        mock.produce([(0, b"c-1", msgpack.packb(
            {"op": "upsert", "id": "c-1", "keys": [],
             "attrs": {"s": "x" * 70000}}))])
        c = Consumer(store, mock, "--exit-at-end", "--on-bad-record=skip")
        assert c.wait(120) == 0, c.stderr()
        assert "record is larger than 65536 bytes" in c.stderr()
    finally:
        mock.close()
        kill_leftovers()
