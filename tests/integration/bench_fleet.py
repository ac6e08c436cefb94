# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""Benchmarks of rule sets served from the store (make bench-fleet; not in
make test: they print figures and assert nothing about speed).

- publish -> live: cef-rules publish | cef-sync apply (file road), and a
  record produced to librdkafka's mock cluster with cef-sync consume
  running (Kafka road), until the edge's page shows the new version;
- a switch of a 10 000-rule set under wrk load versus the same load idle:
  latency percentiles and the worst request;
- shadow at 5 %: worker CPU per request with and without the shadow.

On a shared 2-core machine the figures are indicative only."""

import os
import re
import subprocess
import time

import msgpack

from kafka_helpers import TOPIC, KafkaMock, kill_leftovers
from test_fleet import CEF_RULES, CEF_SYNC, Edge, big, files, \
    served_by_all, vid_of

N = int(os.environ.get("BENCH_FLEET_N", "20"))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def until_served(edge, tag, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if edge.page(vid_of(7)) == tag:
            return time.monotonic()
        time.sleep(0.002)
    raise AssertionError("not served: " + tag)


def test_publish_to_live(nginx, tmp_path):
    edge = Edge(nginx)
    f = files(tmp_path, *["t%d" % i for i in range(2 * N + 1)])
    edge.publish(f["t0"])
    served_by_all(edge, "t0")

    road = []
    for i in range(1, N + 1):
        t0 = time.monotonic()
        edge.publish(f["t%d" % i])
        road.append(until_served(edge, "t%d" % i) - t0)

    mock = KafkaMock(tmp_path, partitions=1)
    consumer = subprocess.Popen(
        [CEF_SYNC, "consume", "--store", str(edge.store), "--secret",
         str(edge.inst.prefix / "store.secret"), "--brokers", mock.bootstrap,
         "--topic", TOPIC], stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "consume.log", "wb"))
    kafka = []
    try:
        time.sleep(2)
        for i in range(N + 1, 2 * N + 1):
            r = subprocess.run([CEF_RULES, "publish", str(f["t%d" % i]),
                                "--name", "shop"], capture_output=True,
                               check=True)
            t0 = time.monotonic()
            mock.produce([(0, b"rules:shop", msgpack.packb(
                __import__("json").loads(r.stdout)))])
            kafka.append(until_served(edge, "t%d" % i) - t0)
    finally:
        consumer.kill()
        consumer.wait()
        mock.close()
        kill_leftovers()

    for name, xs in (("file (publish | cef-sync apply)", road),
                     ("kafka (produce -> consume)", kafka)):
        print("\npublish -> live, %s, %d runs: p50 %.0f ms, p99 %.0f ms, "
              "max %.0f ms" % (name, len(xs), pct(xs, 50) * 1000,
                               pct(xs, 99) * 1000, max(xs) * 1000))


WRK_RE = re.compile(r"Latency Distribution.*?50%\s+(\S+).*?90%\s+(\S+).*?"
                    r"99%\s+(\S+)", re.S)


def ms(s):
    v = float(re.match(r"[\d.]+", s).group(0))
    return v / 1000 if s.endswith("us") else v * 1000 if s.endswith("s") \
        and not s.endswith("ms") else v


def wrk(edge, seconds, during=None):
    cmd = ["wrk", "-t2", "-c8", "-d%ds" % seconds, "--latency",
           "-H", "Cookie: vid=" + vid_of(3),
           "http://127.0.0.1:%d/page.html" % edge.inst.port(0)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    if during:
        time.sleep(1)
        during()
    out = p.communicate(timeout=seconds + 60)[0]
    m = WRK_RE.search(out)
    mx = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", out).group(1)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    rps = re.search(r"Requests/sec:\s+(\S+)", out).group(1)
    return ([ms(x) for x in m.groups()], ms(mx),
            int(non2xx.group(1)) if non2xx else 0, rps)


def test_switch_latency_10k(nginx, tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    big(a, "one")
    big(b, "two")
    edge = Edge(nginx)
    t0 = time.monotonic()
    edge.publish(a)
    served_by_all(edge, "one")
    print("\n10 000-rule set: first publish -> served by every worker "
          "%.2f s" % (time.monotonic() - t0))

    idle = wrk(edge, 6)
    t = {}

    def switch():
        t["start"] = time.monotonic()
        edge.publish(b)

    sw = wrk(edge, 6, during=switch)
    assert edge.page(vid_of(3)) == "two"
    for name, (p, mx, bad, rps) in (("idle", idle), ("switch", sw)):
        print("10 000-rule set, wrk -t2 -c8 6 s, %s: p50 %.2f ms, p90 %.2f "
              "ms, p99 %.2f ms, max %.2f ms, %s req/s, non-2xx %d"
              % (name, p[0], p[1], p[2], mx, rps, bad))


def cpu_ticks(edge):
    total = 0
    for pid in edge.inst.worker_pids():
        with open("/proc/%d/stat" % pid) as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total


def test_shadow_cpu(nginx, tmp_path):
    f = files(tmp_path, "one", "two")
    edge = Edge(nginx)
    edge.publish(f["one"])
    served_by_all(edge, "one")

    def run(n=3):
        """CPU ticks per 1000 requests over n wrk runs of many visitors."""
        out = []
        for _ in range(n):
            c0 = cpu_ticks(edge)
            p = subprocess.run(
                ["wrk", "-t2", "-c8", "-d4s", "-s",
                 str(tmp_path / "vids.lua"),
                 "http://127.0.0.1:%d/page.html" % edge.inst.port(0)],
                capture_output=True, text=True, timeout=60)
            reqs = int(re.search(r"(\d+) requests in", p.stdout).group(1))
            out.append((cpu_ticks(edge) - c0) * 1000.0 / reqs)
        return min(out)

    (tmp_path / "vids.lua").write_text(
        'local i = 0\nrequest = function()\n  i = i + 1\n'
        '  return wrk.format(nil, nil, {["Cookie"] = "vid=" .. '
        'string.format("%021dA", i)})\n'
        'end\n')
    base = run()
    edge.publish(f["two"], "--shadow", "5%")
    time.sleep(1)
    shadow = run()
    print("\nshadow 5%%: worker CPU %.3f ticks per 1000 requests without, "
          "%.3f with (%+.1f %%; min of 3 wrk runs of 4 s)"
          % (base, shadow, 100.0 * (shadow - base) / base))
