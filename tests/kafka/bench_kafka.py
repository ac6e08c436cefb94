#!/usr/bin/python3
# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""make bench-kafka: cef-sync consume against librdkafka's mock cluster.

1. Rate: N records (the test workload's mix of upserts, patches, key
   changes, merges, deletes and tombstones over P partitions) are produced
   first; then `cef-sync consume --from-beginning --exit-at-end` applies
   them into an empty store, for a few --batch sizes.  The rate is the one
   consume prints (first record to last commit).
2. Delay: records produced at a steady RATE records/s for SECONDS while
   consume runs with its defaults; a reader (cef-kafka-dump --watch) polls
   the store's offsets every millisecond.  A record's delay is from its
   produce call to the first poll that sees its offset committed.

librdkafka's mock cluster keeps about 5 MB per partition (older records
are dropped, as by retention): at ~90 bytes a record that is ~55 000
records per partition, hence 8 partitions for 300 000 records.  A run
whose consumer does not see every record says so instead of a rate.

It prints figures; it asserts nothing.  Both processes share the machine
(2 cores here) with the mock cluster and the producer.
"""

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from kafka_helpers import (DUMP, KafkaMock, Workload, caught_up,  # noqa
                           empty_store)
from store_helpers import CEF_SYNC  # noqa


def rate(tmp, n, parts, batches):
    w = Workload(seed=1, partitions=parts, ids=50000)
    while len(w.records) < n:
        w.generate(n - len(w.records))
    mock = KafkaMock(tmp, partitions=parts)
    t = time.monotonic()
    mock.produce(w.messages())
    print("produced %d records into %d partitions in %.1fs" %
          (n, parts, time.monotonic() - t))
    print()
    print("%-8s %-10s %10s %7s %6s %8s %12s" % (
        "--batch", "--batch-ms", "records/s", "wall s", "cpu s", "batches",
        "slowest ms"))
    try:
        for batch, ms in batches:
            d = tempfile.mkdtemp(dir=tmp)
            store = empty_store(d)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.monotonic()
            r = subprocess.run([CEF_SYNC, "consume", "--store", store.dir,
                                "--secret", store.secret, "--brokers",
                                mock.bootstrap, "--topic", "cef.profiles",
                                "--from-beginning", "--exit-at-end",
                                "--batch", str(batch), "--batch-ms",
                                str(ms)], capture_output=True, text=True)
            wall = time.monotonic() - t
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime
                   + after.ru_stime - before.ru_stime)
            m = re.search(r"consumed (\d+) records .* in (\d+) batches "
                          r"\(slowest commit (\d+) ms\), [\d.]+s "
                          r"\((\d+) records/s\)", r.stdout)
            if r.returncode != 0 or not m or int(m.group(1)) != n:
                print("consume failed or saw only part of the records:",
                      r.returncode, r.stdout, r.stderr[-2000:])
                continue
            print("%-8d %-10d %10s %7.2f %6.2f %8s %12s" % (
                batch, ms, m.group(4), wall, cpu, m.group(2), m.group(3)))
    finally:
        mock.close()


def delay(tmp, rec_rate, seconds):
    n = int(rec_rate * seconds)
    w = Workload(seed=2, partitions=3, ids=50000)
    while len(w.records) < n:
        w.generate(n - len(w.records))
    mock = KafkaMock(tmp)
    store = empty_store(tmp)
    log = os.path.join(tmp, "produced.txt")
    stop = os.path.join(tmp, "stop")
    watch_out = os.path.join(tmp, "watch.txt")
    consumer = subprocess.Popen([CEF_SYNC, "consume", "--store", store.dir,
                                 "--secret", store.secret, "--brokers",
                                 mock.bootstrap, "--topic", "cef.profiles",
                                 "--from-beginning"],
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    try:
        # the consumer is assigned (and idle) before the producer starts
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "kafka" not in store.stat():
            time.sleep(0.05)
        # warm the producer up (metadata, idempotent producer id): its
        # first second is slow and is not what is measured here
        warm = Workload(seed=3, partitions=3, ids=100, prefix="warm")
        warm.generate(300)
        mock.produce(warm.messages())
        deadline = time.monotonic() + 30
        cond = caught_up(store, warm.counts())
        while time.monotonic() < deadline and not cond():
            time.sleep(0.05)
        w.next_offset = {p: n + warm.counts().get(p, 0)
                         for p, n in w.next_offset.items()}
        watcher = subprocess.Popen([DUMP, "--store", store.dir, "--watch",
                                    stop], stdout=open(watch_out, "w"))
        time.sleep(0.2)
        mock.produce(w.messages(), rate=rec_rate, log=log)
        deadline = time.monotonic() + 60
        cond = caught_up(store, w.counts())
        while time.monotonic() < deadline and not cond():
            time.sleep(0.05)
        time.sleep(0.1)
        open(stop, "w").close()
        watcher.wait(timeout=30)
    finally:
        consumer.terminate()
        consumer.wait(timeout=60)
        mock.close()

    seen = []                      # (t_ns, [next per partition])
    with open(watch_out) as f:
        for line in f:
            v = [int(x) for x in line.split()]
            seen.append((v[0], v[1:]))
    delays = []
    buckets = {}
    with open(log) as f:
        produced = [tuple(int(x) for x in line.split()) for line in f]
    # walk the records by partition and offset against the polls in order
    by_part = {}
    for part, off, t in produced:
        by_part.setdefault(part, []).append((off, t))
    for part, recs in by_part.items():
        recs.sort()
        i = 0
        for off, t in recs:
            while i < len(seen) and (len(seen[i][1]) <= part
                                     or seen[i][1][part] <= off):
                i += 1
            if i == len(seen):
                break
            delays.append((seen[i][0] - t) / 1e6)
            buckets.setdefault(t // 500000000, []).append(delays[-1])
    if os.environ.get("CEF_BENCH_DEBUG"):
        # the worst delay per half second of production
        t0 = min(buckets)
        for b in sorted(buckets):
            print("  %4.1fs: max %.0f ms over %d records" % (
                (b - t0) / 2, max(buckets[b]), len(buckets[b])))
    delays.sort()
    if len(delays) < len(produced):
        print("only %d of %d records were seen" % (len(delays),
                                                   len(produced)))
    if not delays:
        return

    def pct(p):
        return delays[min(len(delays) - 1, int(p / 100 * len(delays)))]
    print()
    print("produce -> visible in the store, %d records at %d records/s "
          "(consume defaults):" % (len(delays), rec_rate))
    print("  p50 %.1f ms   p90 %.1f ms   p99 %.1f ms   max %.1f ms" % (
        pct(50), pct(90), pct(99), delays[-1]))
    print("  %d commits seen by the reader (%.1f per second)" % (
        len(seen), len(seen) / seconds))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=300000)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--rate", type=int, default=5000)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--batches", default="1000:200,10000:200,50000:1000")
    a = ap.parse_args()
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print("cef-sync consume benchmark: %d CPUs, load average %s" % (
        os.cpu_count(), load))
    with tempfile.TemporaryDirectory(prefix="cef-bench-kafka-") as tmp:
        rate(tmp, a.records, a.partitions,
             [tuple(int(x) for x in b.split(":"))
              for b in a.batches.split(",")])
        delay(tmp, a.rate, a.seconds)


if __name__ == "__main__":
    main()
