# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""cef-sync consume against librdkafka's mock cluster (no real broker):
a topic of delta records keyed by profile id, applied exactly once into the
store, whatever happens to the consumer or the brokers (docs/sync.md).

The stores are compared with a reference computed in Python from the same
records (kafka_helpers.Reference); every record sets a per-profile counter,
so a record applied twice or lost shows."""

import json
import os
import random
import re
import signal
import time

import pytest

from kafka_helpers import (TOPIC, Consumer, KafkaMock, Workload,
                           caught_up, check_equal, empty_store,
                           kill_leftovers, reference, snapshot_of,
                           stored_offsets, wait_for)
from store_helpers import Store

N_RECORDS = 100000


@pytest.fixture(autouse=True)
def no_leftover_consumers():
    yield
    kill_leftovers()


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """3 partitions, 100 000 records: upserts, patches, keys, merges,
    deletes and tombstones, produced once for the tests that only read.
    (The mock cluster keeps ~5 MB per partition, ~55 000 such records;
    more would drop the oldest, and the equality tests would fail.)"""
    tmp = tmp_path_factory.mktemp("kafka-big")
    w = Workload(seed=11, partitions=3, ids=4000)
    while len(w.records) < N_RECORDS:
        w.generate(N_RECORDS - len(w.records))
    mock = KafkaMock(tmp)
    assert mock.produce(w.messages()) == N_RECORDS
    yield w, mock
    mock.close()


def consume_to_end(store, mock, *extra, timeout=120):
    c = Consumer(store, mock, "--exit-at-end", *extra)
    rc = c.wait(timeout)
    assert rc == 0, c.stderr()
    return c


def test_consume_equals_reference(tmp_path, big):
    w, mock = big
    store = empty_store(tmp_path)
    c = consume_to_end(store, mock, "--from-beginning")
    tail = check_equal(store, w)
    assert tail["topic"] == TOPIC
    assert tail["offsets"] == {str(p): n for p, n in w.counts().items()}
    assert "consumed %d records" % N_RECORDS in c.stdout()
    r = store.verify()
    assert r.returncode == 0, r.stderr

    # stat: per-partition offsets, and with --brokers a lag of 0
    r = store.run("stat", "--store", store.dir, "--brokers", mock.bootstrap,
                  "--json")
    assert r.returncode == 0, r.stderr
    k = json.loads(r.stdout)["kafka"]
    assert k["topic"] == TOPIC
    assert [(p["partition"], p["offset"], p["lag"]) for p in k["partitions"]] \
        == [(p, w.counts()[p], 0) for p in range(3)]
    r = store.run("stat", "--store", store.dir)
    assert "kafka topic  %s" % TOPIC in r.stdout.decode()
    assert "partition 0  next offset %d" % w.counts()[0] in r.stdout.decode()

    # running again applies nothing: everything is below the stored offsets
    c = consume_to_end(store, mock)
    assert "consumed 0 records" in c.stdout()
    check_equal(store, w)


def test_kill9_ten_times(tmp_path, big):
    """kill -9 at ten points spread over the stream (mid-batch or
    mid-commit, wherever it lands): after each, the store is exactly the
    reference at its stored offsets; restarts finish with the full state."""
    w, mock = big
    store = empty_store(tmp_path)
    rnd = random.Random(5)
    kills = 0
    for i in range(10):
        c = Consumer(store, mock, "--from-beginning", "--batch", "500",
                     "--batch-ms", "20")
        target = N_RECORDS * (i + 1) // 11 + rnd.randrange(2000)
        wait_for(lambda: sum(stored_offsets(store).values()) >= target
                 or not c.alive(), 60, "consumption past %d" % target)
        time.sleep(rnd.random() * 0.05)
        if c.alive():
            c.kill()
            kills += 1
        else:
            assert c.proc.returncode == 0, c.stderr()
        check_equal(store, w, offsets="stored")
    assert kills == 10
    consume_to_end(store, mock)
    check_equal(store, w)
    assert store.verify().returncode == 0


def test_bootstrap_from_snapshot_with_offsets(tmp_path, big):
    """A new edge: a snapshot carrying the offsets it corresponds to, then
    consume from those offsets (no --from-beginning): the records before
    them are not applied again (the counters would show it)."""
    w, mock = big
    counts = w.counts()
    at = {p: n // 2 + p for p, n in counts.items()}
    snap = snapshot_of(reference(w, at),
                       {"topic": TOPIC,
                        "offsets": {str(p): o for p, o in at.items()}})
    store = Store(tmp_path)
    r = store.load(snap)
    assert r.returncode == 0, r.stderr
    assert stored_offsets(store) == at
    check_equal(store, w, offsets=at)
    c = consume_to_end(store, mock)
    assert "consumed %d records" % (N_RECORDS - sum(at.values())) \
        in c.stdout()
    check_equal(store, w)


def test_snapshot_kafka_header_errors(tmp_path):
    store = Store(tmp_path)
    import msgpack
    for kafka, msg in [("x", "field \"kafka\" must be a map"),
                       ({"topic": "t"}, "kafka.offsets must be a map"),
                       ({"topic": "t", "offsets": {"a": 1}},
                        "a partition must be a number"),
                       ({"topic": "t", "offsets": {"0": -1}},
                        "must be a non-negative integer"),
                       ({"topic": "", "offsets": {}}, "kafka.topic"),
                       ({"topic": "t", "offsets": {}, "x": 1},
                        "unknown field \"x\"")]:
        hdr = {"cef": "snapshot", "version": 1, "id": "S", "created_at": 1,
               "kafka": kafka}
        r = store.load(msgpack.packb(hdr) + msgpack.packb({"end": True,
                                                           "count": 0}))
        assert r.returncode == 1 and msg in r.stderr.decode(), r.stderr


def test_default_start_is_the_end(tmp_path):
    """No stored offsets and no --from-beginning: what is in the topic is
    taken as already in the snapshot; the end is stored at once, so records
    produced later, even while no consumer runs, are all applied."""
    mock = KafkaMock(tmp_path)
    try:
        old = Workload(seed=3, ids=300, prefix="old")
        old.generate(3000)
        mock.produce(old.messages())
        store = empty_store(tmp_path)
        c = consume_to_end(store, mock)
        assert "consumed 0 records" in c.stdout()
        assert "(the end: the store holds no offsets" in c.stderr()
        assert stored_offsets(store) == old.counts()

        new = Workload(seed=4, ids=300, prefix="new")
        new.generate(3000)
        mock.produce(new.messages())
        consume_to_end(store, mock)
        # the new records' offsets follow the old ones in each partition
        new.records = [(p, o + old.counts().get(p, 0), k, r)
                       for p, o, k, r in new.records]
        check_equal(store, new)
    finally:
        mock.close()


def _new_partition_read_from_its_beginning(tmp_path, mock, seed, command,
                                           timeout):
    """Consume 3 partitions, run the mock command that makes a fourth,
    produce into all four; the consumer reads the new one from its
    beginning.  Returns the store and the workload, checked equal."""
    w = Workload(seed=seed, partitions=3, ids=600)
    w.generate(6000)
    mock.produce(w.messages())
    store = empty_store(tmp_path)
    c = Consumer(store, mock, "--from-beginning", "--refresh-ms", "300",
                 "--batch-ms", "50")
    wait_for(caught_up(store, w.counts()), 60, "the first records")

    assert mock.cmd(command) == "4"
    # new profiles in the new partition, more changes in the old ones
    new_ids = ["n%d" % i for i in range(200)]
    before = len(w.records)
    w.generate(2000, pool=(3, new_ids))
    w.generate(2000)
    mock.produce(w.messages(start=before))
    wait_for(caught_up(store, w.counts()), timeout,
             "the records of the new partition")
    assert c.alive()
    assert c.kill(signal.SIGTERM) == 0, c.stderr()
    assert "partition 3: from the beginning (a new partition)" \
        in c.stderr()
    check_equal(store, w)
    return store, w


def test_partition_added_while_consuming(tmp_path):
    """The topic grows from 3 to 4 partitions (a new cluster behind the
    bootstrap relay, see cef_kafka_mock.c): the consumer takes the new
    partition from its beginning at its next refresh."""
    mock = KafkaMock(tmp_path, proxy=True)
    try:
        store, w = _new_partition_read_from_its_beginning(
            tmp_path, mock, 8, "grow 4", 90)
        assert stored_offsets(store) == w.counts()
    finally:
        mock.close()


def test_partition_without_leader_taken_later(tmp_path):
    """A partition the brokers list without a leader is left for a later
    refresh, then read from its beginning."""
    mock = KafkaMock(tmp_path, spare=1)
    try:
        _new_partition_read_from_its_beginning(tmp_path, mock, 7,
                                               "add-partition", 60)
    finally:
        mock.close()


def test_broker_outage(tmp_path):
    """All brokers down: the consumer logs and retries, serves nothing new
    and never exits; when they are back it catches up.  Also started while
    they are down, and stopped (SIGTERM) during an outage."""
    mock = KafkaMock(tmp_path)
    try:
        w = Workload(seed=9, ids=500)
        w.generate(4000)
        mock.produce(w.messages())

        store = empty_store(tmp_path)
        mock.cmd("down")
        c = Consumer(store, mock, "--from-beginning", "--batch-ms", "50")
        # longer than one metadata request's timeout (5 s): it retries
        wait_for(lambda: "cannot get the partitions of topic" in c.stderr(),
                 30, "a retry")
        assert c.alive(), c.stderr()
        assert "from the beginning" not in c.stderr()
        assert "kafka" not in store.stat()
        mock.cmd("up")
        wait_for(caught_up(store, w.counts()), 60, "consumption after up")

        mock.cmd("down")
        time.sleep(3)
        assert c.alive(), c.stderr()
        assert "retrying" in c.stderr()
        mock.cmd("up")
        before = len(w.records)
        w.generate(3000)
        mock.produce(w.messages(start=before))
        wait_for(caught_up(store, w.counts()), 60, "consumption after 2nd up")
        check_equal(store, w)

        mock.cmd("down")
        time.sleep(1)
        # exits (0) during the outage; c.kill() waits at most 60 s
        assert c.kill(signal.SIGTERM) == 0, c.stderr()
        mock.cmd("up")
        check_equal(store, w)
    finally:
        mock.close()


def cpu_seconds(c):
    """CPU time the process has used (all its threads), from /proc."""
    try:
        with open("/proc/%d/stat" % c.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def test_sigterm_commits_the_open_batch(tmp_path, big):
    """SIGTERM in the middle of a backlog, with a batch that neither fills
    nor ages: what was applied is committed, offsets included (the summary's
    count equals the stored offsets), and the store is the reference at
    them.  Stopped at later points until two land mid-stream."""
    w, mock = big
    interrupted = 0
    for attempt in range(6):
        (tmp_path / ("s%d" % attempt)).mkdir()
        store = empty_store(tmp_path / ("s%d" % attempt))
        c = Consumer(store, mock, "--from-beginning", "--batch", "1000000",
                     "--batch-ms", "3600000")
        wait_for(lambda: "partition 2: from" in c.stderr(), 30, "the start")
        # applying 100 000 records takes about a CPU second: stop it after
        # a few tens of milliseconds of work past its start-up
        cpu0 = cpu_seconds(c)
        wait_for(lambda: cpu_seconds(c) >= cpu0 + 0.03 * (attempt + 1)
                 or not c.alive(), 30, "some work")
        assert c.kill(signal.SIGTERM) == 0, c.stderr()
        n = int(re.search(r"consumed (\d+) records", c.stdout()).group(1))
        assert sum(stored_offsets(store).values()) == n
        check_equal(store, w, offsets="stored")
        if 0 < n < N_RECORDS:
            interrupted += 1
            if interrupted == 2:
                break
    assert interrupted, "no SIGTERM landed while records were being applied"


@pytest.mark.parametrize("mode", ["stop", "skip"])
def test_malformed_record(tmp_path, mode):
    import msgpack
    mock = KafkaMock(tmp_path)
    try:
        w = Workload(seed=21, ids=300)
        w.generate(3000)
        bad_values = [b"\xc1\x00garbage", b'{"op":"patch","id":"x"}',
                      msgpack.packb({"op": "rename", "id": "x"}),
                      msgpack.packb({"op": "patch"}),
                      # an array claiming 2^32-1 elements in 5 bytes
                      b"\x81\xa2op\xdd\xff\xff\xff\xff",
                      msgpack.packb({"op": "patch", "id": "x",
                                     "set": {"a": "x" * 70000}})]
        # bad records spread over partition 1 (keyed like a profile of it)
        msgs, skip = [], set()
        part1 = [i for i, r in enumerate(w.records) if r[0] == 1]
        bad_at = {part1[k]: k for k in (100, 400, 401, 600, 700, 900)}
        offsets = {}
        recs = []
        for i, (p, _, pid, rec) in enumerate(w.records):
            if i in bad_at:
                o = offsets.get(p, 0)
                offsets[p] = o + 1
                recs.append((p, o, pid, "BAD"))
                msgs.append((p, pid.encode(),
                             bad_values[list(bad_at).index(i)]))
                skip.add((p, o))
            o = offsets.get(p, 0)
            offsets[p] = o + 1
            recs.append((p, o, pid, rec))
            msgs.append((p, pid.encode(), None if rec is None
                         else msgpack.packb(rec)))
        w.records = [r for r in recs]
        w.next_offset = offsets
        first_bad = min(o for p, o in skip)
        mock.produce(msgs)
        store = empty_store(tmp_path)

        if mode == "stop":
            for _ in range(2):      # a restart stops at the same record
                c = Consumer(store, mock, "--from-beginning", "--exit-at-end")
                assert c.wait(60) == 1
                err = c.stderr()
                assert ('topic "%s" partition 1 offset %d: bad record: '
                        'malformed msgpack' % (TOPIC, first_bad)) in err, err
                assert stored_offsets(store)[1] == first_bad
                # nothing before it is lost
                check_equal(store, _only_good(w), offsets="stored")
            r = store.run("stat", "--store", store.dir, "--brokers",
                          mock.bootstrap, "--json")
            lag = {p["partition"]: p["lag"]
                   for p in json.loads(r.stdout)["kafka"]["partitions"]}
            assert lag[1] == offsets[1] - first_bad
        else:
            c = Consumer(store, mock, "--from-beginning", "--exit-at-end",
                         "--on-bad-record=skip")
            assert c.wait(60) == 0, c.stderr()
            err = c.stderr()
            assert err.count("bad record skipped") == len(bad_values), err
            assert "unknown op \"rename\"" in err
            assert "field \"id\" is missing" in err
            assert "record is larger than 65536 bytes" in err
            assert "%d bad records skipped" % len(bad_values) in c.stdout()
            check_equal(store, _only_good(w))
    finally:
        mock.close()


def _only_good(w):
    w.records = [r for r in w.records if r[3] != "BAD"]
    return w


def test_json_format_and_group_offsets(tmp_path):
    mock = KafkaMock(tmp_path)
    try:
        w = Workload(seed=31, ids=300)
        w.generate(3000)
        mock.produce(w.messages(fmt="json"))
        store = empty_store(tmp_path)
        consume_to_end(store, mock, "--from-beginning", "--format", "json",
                       "--kafka-group", "edge-7")
        check_equal(store, w)
        # --kafka-group: committed to Kafka for lag monitoring
        assert wait_for(lambda: mock.committed("edge-7") == w.counts(), 20,
                        "the group's committed offsets")
    finally:
        mock.close()


def test_store_age_advances_with_each_commit(tmp_path):
    mock = KafkaMock(tmp_path)
    try:
        store = empty_store(tmp_path)
        t0 = store.stat()["updated_at"]
        time.sleep(1.2)
        w = Workload(seed=41, ids=10)
        w.generate(20)
        mock.produce(w.messages())
        consume_to_end(store, mock, "--from-beginning")
        t1 = store.stat()["updated_at"]
        assert t1 > t0
    finally:
        mock.close()


def test_usage(tmp_path):
    store = empty_store(tmp_path)
    for args, msg in [([], "--secret FILE, --brokers LIST and --topic T are "
                       "required"),
                      (["--brokers", "x", "--topic", "t", "--format", "xml"],
                       "invalid --format"),
                      (["--brokers", "x", "--topic", "t",
                        "--on-bad-record=ignore"], "invalid --on-bad-record"),
                      (["--brokers", "x", "--topic", "t", "--batch-ms", "0"],
                       "invalid --batch-ms")]:
        r = store.run("consume", "--store", store.dir, "--secret",
                      store.secret, *args)
        assert r.returncode == 2 and msg in r.stderr.decode(), r.stderr


def test_store_offsets_of_another_topic(tmp_path):
    mock = KafkaMock(tmp_path)
    try:
        store = empty_store(tmp_path, {"topic": "other", "offsets": {"0": 5}})
        c = Consumer(store, mock)
        assert c.wait(30) == 1
        assert 'the store holds offsets of topic "other"' in c.stderr()
    finally:
        mock.close()


def test_nginx_store_age_follows_consume(tmp_path, nginx):
    """The module's $cef_store_age (the metrics' cef_store_age_seconds)
    counts from the last consume commit, seen by the workers while consume
    keeps the store open for writing."""
    import re
    from client import request

    mock = KafkaMock(tmp_path)
    try:
        store = empty_store(tmp_path)
        inst = nginx.start("""
    cef_store %s;
    cef_store_secret %s;
    server {
        listen 127.0.0.1:@PORT@;
        location = /age { return 200 "[$cef_store_age]"; }
    }
""" % (store.dir, store.secret))

        def age():
            body = request(inst, "/age")[2].decode()
            m = re.fullmatch(r"\[(\d+)\]", body)
            assert m, body
            return int(m.group(1))

        c = Consumer(store, mock, "--from-beginning")
        wait_for(lambda: "kafka" in store.stat(), 30, "the start")
        wait_for(lambda: age() >= 3, 30, "an age of 3 s", interval=0.2)
        w = Workload(seed=51, ids=20)
        w.generate(50)
        mock.produce(w.messages())
        wait_for(caught_up(store, w.counts()), 30, "the records")
        # workers see the commit at their next session
        wait_for(lambda: age() <= 1, 10, "the age to restart", interval=0.1)
        assert c.kill(signal.SIGTERM) == 0, c.stderr()
        check_equal(store, w)
    finally:
        mock.close()


def test_stored_offset_no_longer_in_the_topic(tmp_path):
    """Retention deleted records the store never read (the mock keeps ~5 MB
    per partition), or the topic was recreated (an offset past its end):
    consume says so, naming the partition and offset, and goes on from the
    earliest record there is."""
    mock = KafkaMock(tmp_path, partitions=1)
    try:
        w = Workload(seed=61, partitions=1, ids=2000)
        w.generate(90000)
        mock.produce(w.messages())
        end = w.counts()[0]
        for stored in (5, 10 ** 9):
            d = tmp_path / ("s%d" % stored)
            d.mkdir()
            store = empty_store(d, {"topic": TOPIC, "offsets": {"0": stored}})
            c = consume_to_end(store, mock)
            assert ('partition 0: offset %d is not in the topic any more'
                    % stored) in c.stderr(), c.stderr()
            n = int(re.search(r"consumed (\d+) records", c.stdout()).group(1))
            assert 0 < n < end          # the oldest records are gone
            low = end - n
            assert stored_offsets(store) == {0: end}
            kept = Workload(seed=61, partitions=1, ids=2000)
            kept.records = [r for r in w.records if r[1] >= low]
            kept.keys_used = w.keys_used
            check_equal(store, kept)
    finally:
        mock.close()


def test_map_full_then_grown(tmp_path):
    """A store error (the LMDB map is full) abandons the batch with its
    offsets and exits 3; run again with a larger --map-size, every record
    still takes effect once."""
    import msgpack
    mock = KafkaMock(tmp_path)
    try:
        w = Workload(seed=71, ids=3000)
        w.generate(20000)
        mock.produce(w.messages())
        store = Store(tmp_path)
        hdr = {"cef": "snapshot", "version": 1, "id": "S0", "created_at": 1}
        r = store.load(msgpack.packb(hdr) + msgpack.packb({"end": True,
                                                           "count": 0}),
                       "--map-size", "256K")
        assert r.returncode == 0, r.stderr
        c = Consumer(store, mock, "--from-beginning", "--exit-at-end")
        assert c.wait(60) == 3
        assert "the store's map is full" in c.stderr(), c.stderr()
        assert "(the batch is not committed)" in c.stderr()
        check_equal(store, w, offsets="stored")
        assert sum(stored_offsets(store).values()) < len(w.records)

        c = consume_to_end(store, mock, "--map-size", "64M")
        check_equal(store, w)
    finally:
        mock.close()


def test_waits_for_the_write_lock_and_stops_on_sigterm(tmp_path):
    """Another cef-sync writing (an apply reading a pipe) holds the store's
    lock: consume waits, says so, and still stops at once on SIGTERM."""
    import subprocess
    from store_helpers import CEF_SYNC
    mock = KafkaMock(tmp_path)
    try:
        store = empty_store(tmp_path)
        apply = subprocess.Popen([CEF_SYNC, "apply", "--store", store.dir,
                                  "--secret", store.secret, "-"],
                                 stdin=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
        apply.stdin.write(b'{"cef":"delta","version":1}\n')
        apply.stdin.flush()
        wait_for(lambda: open(store.dir + "/write.lock").read().strip()
                 == str(apply.pid), 30, "the apply to hold the lock")
        c = Consumer(store, mock, "--from-beginning")
        wait_for(lambda: "waiting for another cef-sync (pid %d)" % apply.pid
                 in c.stderr(), 30, "the consumer to wait")
        assert c.kill(signal.SIGTERM) == 0, c.stderr()
        assert "stopped while waiting for the write lock" in c.stderr()
        apply.stdin.close()
        assert apply.wait(30) == 0
    finally:
        mock.close()
