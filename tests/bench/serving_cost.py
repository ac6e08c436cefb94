# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""Where a personalised response's cost goes, measured so that a busy
machine does not blur it (make bench-cost; see docs/bench.md, "What a
response costs").

Servers (one nginx, the page and cookies of `make bench`):

  plain      static, sendfile (server 1 of make bench)
  nosendfile static, sendfile off (server 6)
  passthru   sub_filter with a pattern that never matches: the cost of any
             body filter (page read into memory, chunked output), with
             sub_filter's own byte scan on top
  sub3       sub_filter, 3 fixed substitutions, sendfile off (server 2)
  cefoff     the module configured, cef off (server 4)
  cefbody    the module's body filter alone: cef on without rules or keys,
             every slot at its default (server 8)
  cef        the module personalising (server 5)
  cefgoal    the same, and the page records a goal (cef_goal purchase;):
             what $cef_goal adds to a personalised page, the visitor
             already recognised
  cefonce    the same with `once` (the signed cef_goals cookie read, and
             written on every request: wrk never sends it back)
  beacon     cef off, the location records a goal: a goal beacon, which
             recognises the visitor itself (signed key, store lookup);
             compare with cefoff
  cefweighted  cef, the hero slot decided by strategy weighted (no
             holdout; three more hero offers every visitor matches)
  cefbandit  the same slot decided by strategy bandit over those three
             offers, weights published in the store: what a bandit
             decision costs over a weighted one (issue 19); wrk sends no
             cef_bandit cookie, so every request is a new visitor whose
             assignment is signed into the cookie

Two measures, both per request:

  cpu        the worker's CPU time (user and system, from /proc/PID/stat)
             while wrk loads the server, divided by the requests wrk made;
             rounds interleaved.  Other processes on the machine take
             wall-clock time away from the worker but do not add to its
             CPU time, so this is far steadier than req/s on a shared
             machine (caches and frequency still vary).
  callgrind  instructions executed in user space by nginx (valgrind
             --tool=callgrind, master_process off), zeroed after a warm-up
             and dumped after N requests on one keep-alive connection;
             the kernel (TCP, copies) is not counted.  Deterministic; the
             per-function split is kept in WORK/callgrind.NAME.out for
             callgrind_annotate.

  python3 tests/bench/serving_cost.py [--cpu] [--callgrind] [--servers a,b]
      [--module A.so --module B.so]   (cpu: an A/B comparison of two builds,
                                       rounds interleaved)

Uses the 100k-profile reference store of make bench-quick
(build/bench-data) and writes to build/bench/cost.
"""

import argparse
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import benchlib as bl  # noqa: E402
import bench  # noqa: E402
import workload as wl  # noqa: E402

SERVERS = ["plain", "nosendfile", "passthru", "sub3", "cefoff", "cefbody",
           "cef", "cefgoal", "cefonce", "beacon", "cefweighted", "cefbandit"]

# the hero slot's strategy in the cefweighted and cefbandit servers
HERO_WEIGHTED = "slots:\n  hero: {strategy: weighted}\n"
HERO_BANDIT = ("slots:\n  hero: {strategy: bandit, goal: purchase, "
               "experiment: hero-bandit, arms: [ba, bb, bc]}\n")
# three hero offers every visitor matches (lowest priority), in both files
ARM_OFFERS = "".join("  %s: {slot: hero, html: '<b>%s</b>'}\n" % (o, o)
                     for o in ("ba", "bb", "bc"))
ARM_RULES = "".join("  - {name: arm %s, show: %s, priority: 0}\n" % (o, o)
                    for o in ("ba", "bb", "bc"))
BANDIT_WEIGHTS = ('{"op":"weights","experiment":"hero-bandit",'
                  '"salt":"hero-bandit","version":1796000000,'
                  '"created_at":1796000000,'
                  '"weights":{"ba":2000,"bb":3000,"bc":5000}}')

# the goal the cefgoal, cefonce and beacon servers record
GOALS_YAML = "goals:\n  purchase: {min: 0, max: 100000}\n"

CONF = """
load_module %(module)s;
%(common)s
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    open_file_cache max=64;
    default_type text/html;
    types { text/html html; }
%(temp_paths)s

    cef_store %(store)s;
    cef_store_secret %(store_secret)s;

    server {
        listen 127.0.0.1:%(plain)d;
        root %(work)s/html;
    }
    server {
        listen 127.0.0.1:%(nosendfile)d;
        root %(work)s/html;
        sendfile off;
    }
    server {
        listen 127.0.0.1:%(passthru)d;
        root %(work)s/html;
        sub_filter '<!--never-there-->' 'x';
        sendfile off;
    }
    server {
        listen 127.0.0.1:%(sub3)d;
        root %(work)s/html;
%(sub_filters)s
        sendfile off;
    }
    server {
        listen 127.0.0.1:%(cefoff)d;
        root %(work)s/html;
%(cef_server)s
        cef off;
    }
    server {
        listen 127.0.0.1:%(cefbody)d;
        root %(work)s/html;
        cef on;
    }
    server {
        listen 127.0.0.1:%(cef)d;
        root %(work)s/html;
%(cef_server)s
        cef on;
    }
    server {
        listen 127.0.0.1:%(cefgoal)d;
        root %(work)s/html;
%(cef_server)s
        cef on;
        location / {
            cef_goal purchase;
        }
    }
    server {
        listen 127.0.0.1:%(cefonce)d;
        root %(work)s/html;
%(cef_server)s
        cef on;
        location / {
            cef_goal purchase once;
        }
    }
    server {
        listen 127.0.0.1:%(cefweighted)d;
        root %(work)s/html;
%(cef_server_weighted)s
        cef on;
    }
    server {
        listen 127.0.0.1:%(cefbandit)d;
        root %(work)s/html;
%(cef_server_bandit)s
        cef on;
    }
    server {
        listen 127.0.0.1:%(beacon)d;
        root %(work)s/html;
%(cef_server)s
        cef off;
        location / {
            cef_goal purchase;
        }
    }
}
"""


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cpu", action="store_true")
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--servers", default=",".join(SERVERS))
    ap.add_argument("--profiles", type=int, default=100000)
    ap.add_argument("--visitors", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=2000,
                    help="callgrind: requests measured per server")
    ap.add_argument("--module", action="append",
                    help="cpu: a module .so to compare (repeat the option "
                    "for an A/B comparison, rounds interleaved); default "
                    "build/ngx_http_cef_module.so")
    a = ap.parse_args()
    if not (a.cpu or a.callgrind):
        a.cpu = a.callgrind = True
    a.servers = a.servers.split(",")
    a.module = a.module or [str(bl.BUILD / "ngx_http_cef_module.so")]
    a.work = bl.BUILD / "bench" / "cost"
    a.data = bl.BUILD / "bench-data"
    return a


def setup(a):
    a.work.mkdir(parents=True, exist_ok=True)
    (a.work / "html").mkdir(exist_ok=True)
    (a.work / "html" / "index.html").write_text(wl.make_page())
    signing = a.work / "signing.secret"
    bl.write_secret(signing, bench.SIGNING)
    plugins_yaml, _ = bench.plugins(a.work)
    rules = bench.write_rules(a.work, 100, plugins_yaml)
    rules.write_text(rules.read_text() + GOALS_YAML)
    variants = {}
    for name, hero in (("weighted", HERO_WEIGHTED), ("bandit", HERO_BANDIT)):
        text = rules.read_text()
        text = re.sub(r"slots:\n  hero:\n    holdout: 10%\n", "", text)
        text = text.replace("offers:\n", "offers:\n" + ARM_OFFERS, 1)
        text = text.replace(GOALS_YAML, ARM_RULES + GOALS_YAML, 1)
        variants[name] = a.work / ("rules-%s.yaml" % name)
        variants[name].write_text(text + hero)
    st = bl.reference_store(a.data, a.profiles)
    publish_weights(st)
    ids = bl.pick_visitors(a.profiles, a.visitors)
    import random
    rng = random.Random(2)
    cookies = ["c=%s; vid=%s; session=9f8e7d6c5b4a3210"
               % (bl.signed(bench.SIGNING, "customer", str(i)),
                  bl.visitor_id(rng)) for i in ids]
    (a.work / "cookies.txt").write_text("\n".join(cookies) + "\n")
    a.cookies = cookies
    ports = dict(zip(SERVERS, bl.free_ports(len(SERVERS))))
    kw = dict(module=a.module[0],
              temp_paths=bl.nginx_temp_paths(a.work), work=a.work,
              store=st["store"], store_secret=st["secret"],
              sub_filters="\n".join(
                  "        sub_filter '%s' '%s';"
                  % (wl.DEFAULTS[s], wl.SUBSTITUTIONS[s]) for s in wl.SLOTS),
              cef_server=wl.CEF_SERVER % {"rules": rules,
                                          "signing": signing},
              cef_server_weighted=wl.CEF_SERVER % {
                  "rules": variants["weighted"], "signing": signing},
              cef_server_bandit=wl.CEF_SERVER % {
                  "rules": variants["bandit"], "signing": signing},
              **ports)
    return ports, kw


def publish_weights(st):
    """The cefbandit server's weights, into the reference store (a new
    seq each run: apply skips what the store has seen)."""
    seq = int(time.time())
    delta = pathlib.Path(st["store"]).parent / "bandit-weights.jsonl"
    delta.write_text('{"cef":"delta","version":1}\n'
                     + BANDIT_WEIGHTS.replace('{', '{"seq":%d,' % seq, 1)
                     + "\n")
    subprocess.run([str(bl.BUILD / "cef-sync"), "apply", "--quiet",
                    "--store", str(st["store"]), "--secret",
                    str(st["secret"])] + bl.sync_access() + [str(delta)],
                   check=True,
                   capture_output=True, timeout=120)


def worker_cpu(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    return int(f[11]) / tck, int(f[12]) / tck


def cpu_runs(a, ports, kw):
    """{(module, server): [(user us, system us, req/s) per round]}.  With
    several modules, one nginx each (on their own ports), all running;
    each round measures every server of every module in turn."""
    res = {}
    with bl.Processes() as procs:
        nginxes = []
        for k, mod in enumerate(a.module):
            work = a.work / ("cpu-%d" % k)
            work.mkdir(exist_ok=True)
            p = dict(zip(SERVERS, bl.free_ports(len(SERVERS)))) if k \
                else ports
            conf = CONF % dict(kw, module=mod, work=a.work,
                               temp_paths=bl.nginx_temp_paths(work),
                               common=bl.nginx_common(work), **p)
            master = bl.start_nginx(procs, work, conf, p["cef"])
            nginxes.append((mod, p, bench.worker_pid(master)))
        for mod, p, pid in nginxes:
            for s in a.servers:
                bl.wrk(p[s], "/index.html", a.work / "cookies.txt", 1)
        for r in range(a.rounds):
            for s in a.servers:
                for k, (mod, p, pid) in enumerate(nginxes):
                    u0, s0 = worker_cpu(pid)
                    w = bl.wrk(p[s], "/index.html", a.work / "cookies.txt",
                               a.seconds)
                    u1, s1 = worker_cpu(pid)
                    n = w["requests"]
                    if w["non2xx"] or w["errors"]:
                        raise RuntimeError("%s: non-200 or errors" % s)
                    x = (1e6 * (u1 - u0) / n, 1e6 * (s1 - s0) / n, w["rps"])
                    res.setdefault((k, s), []).append(x)
                    bl.log("round %d module %d %-10s user %5.2f us  sys "
                           "%5.2f us  (%6.0f req/s)" % (r + 1, k, s, *x))
    return res


def http_get(sock, cookie, buf, path="/index.html"):
    sock.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nCookie: %s\r\n\r\n"
                  % (path, cookie)).encode())
    # read one response: headers, then a Content-Length or chunked body
    while b"\r\n\r\n" not in buf:
        d = sock.recv(65536)
        if not d:
            raise RuntimeError("connection closed")
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError("not 200: %r" % head[:80])
    m = re.search(rb"(?i)content-length: (\d+)", head)
    if m:
        need = int(m.group(1))
        while len(rest) < need:
            rest += sock.recv(65536)
        return rest[need:]
    while b"\r\n0\r\n\r\n" not in rest:
        rest += sock.recv(65536)
    return rest.split(b"\r\n0\r\n\r\n", 1)[1]


def callgrind_count(work, name, conf, port, cookies, requests, warm=200,
                    path="/index.html"):
    """Instructions per request of nginx -c CONF (one process: master_process
    off) under callgrind: WARM requests, counters zeroed, REQUESTS more on
    one keep-alive connection (cookie i %% len(cookies) each), dumped.  The
    per-function split is kept in WORK/callgrind.NAME.out.  Also used by
    tests/integration/bench_fleet.py."""
    work = pathlib.Path(work)
    out = work / ("callgrind.%s.out" % name)
    for old in work.glob("callgrind.%s.out*" % name):
        old.unlink()
    with bl.Processes() as procs:
        p = procs.start(["valgrind", "--tool=callgrind",
                         "--callgrind-out-file=%s" % out,
                         bl.NGINX, "-p", str(work), "-c", str(conf),
                         "-e", str(work / "error.log")],
                        stop_signal=signal.SIGQUIT,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
        bl.wait_port(port, timeout=120, proc=p)
        sock = socket.create_connection(("127.0.0.1", port))
        buf = b""
        for i in range(warm):
            buf = http_get(sock, cookies[i % len(cookies)], buf, path)
        subprocess.run(["callgrind_control", "--zero", str(p.pid)],
                       check=True, capture_output=True, timeout=120)
        for i in range(requests):
            buf = http_get(sock, cookies[(warm + i) % len(cookies)], buf,
                           path)
        subprocess.run(["callgrind_control", "--dump=measured",
                        str(p.pid)], check=True, capture_output=True,
                       timeout=120)
        sock.close()
        procs.stop(p, timeout=60)
    text = ""
    for d in work.glob("callgrind.%s.out*" % name):
        t = d.read_text(errors="replace")
        if re.search(r"^desc: Trigger: .*measured", t, re.M):
            text = t
            d.rename(out)
        else:
            d.unlink()
    m = re.search(r"^summary:\s*(\d+)", text, re.M) or \
        re.search(r"^totals:\s*(\d+)", text, re.M)
    return int(m.group(1)) / requests if m else None


def callgrind_runs(a, ports, kw):
    common = """
master_process off;
daemon off;
worker_processes 1;
%s
error_log %s/error.log error;
pid %s/nginx.pid;
events { worker_connections 64; }
""" % (bl.nginx_user(), a.work, a.work)
    conf = CONF % dict(kw, common=common)
    (a.work / "nginx.conf").write_text(conf)
    res = {}
    for s in a.servers:
        res[s] = callgrind_count(a.work, s, a.work / "nginx.conf", ports[s],
                                 a.cookies, a.requests)
        bl.log("%-10s %8.0f instructions per request (user space)"
               % (s, res[s] or 0))
    return res


def main():
    a = parse_args()
    ports, kw = setup(a)
    if a.callgrind:
        cg = callgrind_runs(a, ports, kw)
    if a.cpu:
        cpu = cpu_runs(a, ports, kw)
    print()
    if a.callgrind:
        print("| server | instructions / request (callgrind, user space) |")
        print("|---|---:|")
        for s in a.servers:
            print("| %s | %.0f |" % (s, cg[s]))
        print()
    if a.cpu:
        print("| module | server | worker user µs / req | system µs / req "
              "| total | req/s (median) |")
        print("|---|---|---:|---:|---:|---:|")
        for s in a.servers:
            for k, mod in enumerate(a.module):
                x = cpu[(k, s)]
                print("| %s | %s | %.2f | %.2f | %.2f | %.0f |"
                      % (mod if len(a.module) > 1 else "", s,
                         bl.median([y[0] for y in x]),
                         bl.median([y[1] for y in x]),
                         bl.median([y[0] + y[1] for y in x]),
                         bl.median([y[2] for y in x])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
