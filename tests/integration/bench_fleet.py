# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""Benchmarks of rule sets served from the store (make bench-fleet; not in
make test: they print figures and assert nothing about speed).

- publish -> live: cef-rules publish | cef-sync apply (file road), and a
  record produced to librdkafka's mock cluster with cef-sync consume
  running (Kafka road), until the edge's page shows the new version;
- a switch of a 10 000-rule set under wrk load versus the same load idle:
  latency percentiles and the worst request;
- shadow at 5 %: worker CPU per request (/proc, interleaved rounds, median)
  and instructions per request (callgrind) with and without the shadow.

On a shared 2-core machine the figures are indicative only."""

import os
import pathlib
import re
import subprocess
import sys
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


def cpu_seconds(edge):
    """User + system CPU seconds of the edge's workers so far."""
    total = 0
    for pid in edge.inst.worker_pids():
        with open("/proc/%d/stat" % pid) as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


SHADOW_ROUNDS = int(os.environ.get("BENCH_SHADOW_ROUNDS", "5"))
SHADOW_SECONDS = int(os.environ.get("BENCH_SHADOW_SECONDS", "10"))
SHADOW_REQUESTS = int(os.environ.get("BENCH_SHADOW_REQUESTS", "4000"))


def callgrind(edge, name, requests):
    """(instructions per request, share of them in the shadow's sample) of
    the edge's configuration served by one process under callgrind
    (serving_cost.callgrind_count), REQUESTS rotating visitors."""
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]
                           / "bench"))
    import serving_cost
    edge.inst.stop()
    p = edge.inst.prefix
    conf = edge.inst.conf.read_text()
    conf = re.sub(r"^master_process \w+;", "master_process off;", conf,
                  flags=re.M)
    conf = re.sub(r"^worker_processes \w+;", "worker_processes 1;", conf,
                  flags=re.M)
    conf = re.sub(r"^user [^;]*;", "", conf, flags=re.M)
    # one keep-alive connection carries every request
    conf = re.sub(r"^http \{", "http {\n    keepalive_requests 1000000;",
                  conf, count=1, flags=re.M)
    (p / "callgrind.conf").write_text(conf)
    log = p / "fleet.log"
    log.write_text("")
    warm = 200
    cookies = ["vid=" + vid_of(100000 + i) for i in range(warm + requests)]
    ins = serving_cost.callgrind_count(p, name, p / "callgrind.conf",
                                       edge.inst.port(0), cookies, requests,
                                       warm=warm, path="/page.html")
    lines = log.read_text().splitlines()[warm:warm + requests]
    sampled = sum(1 for x in lines if '"shadow":""' not in x)
    return ins, sampled / float(len(lines))


def test_shadow_cpu(nginx, tmp_path):
    """The same store-served rule set on two edges, one of them with a
    candidate shadowed at 5 %: worker CPU per request from /proc (rounds
    interleaved, median), then instructions per request under callgrind
    (deterministic; the split per function in PREFIX/callgrind.*.out)."""
    f = files(tmp_path, "one", "two")
    base, shad = Edge(nginx), Edge(nginx)
    for edge in (base, shad):
        edge.publish(f["one"])
        served_by_all(edge, "one")
    shad.publish(f["two"], "--shadow", "5%")
    time.sleep(1)
    assert any(s == "shadow" for _, s in shad.versions())

    (tmp_path / "vids.lua").write_text(
        'local i = 0\nrequest = function()\n  i = i + 1\n'
        '  return wrk.format(nil, nil, {["Cookie"] = "vid=" .. '
        'string.format("%021dA", i)})\n'
        'end\n')

    def run(edge):
        """Worker CPU microseconds per request over one wrk run."""
        c0 = cpu_seconds(edge)
        p = subprocess.run(
            ["wrk", "-t2", "-c8", "-d%ds" % SHADOW_SECONDS, "-s",
             str(tmp_path / "vids.lua"),
             "http://127.0.0.1:%d/page.html" % edge.inst.port(0)],
            capture_output=True, text=True, timeout=SHADOW_SECONDS + 60)
        reqs = int(re.search(r"(\d+) requests in", p.stdout).group(1))
        return (cpu_seconds(edge) - c0) * 1e6 / reqs

    for edge in (base, shad):
        warm = subprocess.run(
            ["wrk", "-t1", "-c2", "-d1s", "-s", str(tmp_path / "vids.lua"),
             "http://127.0.0.1:%d/page.html" % edge.inst.port(0)],
            capture_output=True, timeout=60)
        assert warm.returncode == 0
    cpu = {"base": [], "shadow": []}
    for _ in range(SHADOW_ROUNDS):
        cpu["base"].append(run(base))
        cpu["shadow"].append(run(shad))
    b, s = pct(cpu["base"], 50), pct(cpu["shadow"], 50)
    print("\nshadow 5%%, worker CPU (/proc, user+system, wrk -t2 -c8, "
          "rotating visitors, %d interleaved rounds of %d s, median): "
          "%.2f us/request without, %.2f with (%+.1f %%); rounds without %s,"
          " with %s" % (SHADOW_ROUNDS, SHADOW_SECONDS, b, s,
                        100.0 * (s - b) / b,
                        " ".join("%.2f" % x for x in cpu["base"]),
                        " ".join("%.2f" % x for x in cpu["shadow"])))

    ib, _ = callgrind(base, "noshadow", SHADOW_REQUESTS)
    ish, share = callgrind(shad, "shadow5", SHADOW_REQUESTS)
    print("shadow 5%%, callgrind (user-space instructions, one process, "
          "%d rotating visitors, %.1f %% of them sampled): %.0f per request"
          " without, %.0f with (%+.2f %%); %.0f more per sampled request"
          % (SHADOW_REQUESTS, 100 * share, ib, ish, 100.0 * (ish - ib) / ib,
             (ish - ib) / share if share else float("nan")))
