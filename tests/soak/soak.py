#!/usr/bin/python3
# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""make soak: a personalising nginx under wrk at full rate for SOAK_SECONDS
(default 600) while cef-sync applies a delta batch every second.

nginx (master + 2 workers, Debian's binary with build/ngx_http_cef_module.so)
serves a 10 KB page with three slots, recognising visitors by a signed
cookie from a store of SOAK_PROFILES (default 20000) profiles and deciding
with a small rule file; one request in ten is anonymous (a visitor cookie
is issued).  Every second a delta stream of SOAK_DELTAS (default 200)
patches changes the attributes the rules read.

Pass criteria (exit status 1 if any fails):
  - zero non-200 responses and zero socket errors (wrk);
  - every worker's RSS grows by less than 5 MB between the end of the
    warm-up (SOAK_WARMUP, default 60 s) and the end, not counting the
    store's pages: deltas make data.mdb grow (LMDB copies pages on
    write), and the workers map that file, so its growth shows up as
    file-backed RSS (RssFile, page cache shared with every process).
    Growth of RssFile up to the growth of data.mdb is excused; anonymous
    memory (RssAnon: the heap, where leaks go) must also grow by less
    than 5 MB on its own;
  - no worker restarted;
  - no error.log line above warn ([error], [crit], [alert], [emerg]);
  - every delta batch applied (cef-sync exit 0).

Prints the figures: requests, req/s, latency, RSS per worker over time,
delta batches and records applied.
"""

import functools
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))

import cef_fixtures as fixtures  # noqa: E402
from store_helpers import deltas, snapshot  # noqa: E402

BUILD = REPO / "build"
WORK = BUILD / "soak"
MODULE = BUILD / "ngx_http_cef_module.so"
CEF_SYNC = BUILD / "cef-sync"
NGINX = os.environ.get("NGINX_BIN", "/usr/sbin/nginx")

SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))
WARMUP = int(os.environ.get("SOAK_WARMUP", "60"))
PROFILES = int(os.environ.get("SOAK_PROFILES", "20000"))
DELTAS = int(os.environ.get("SOAK_DELTAS", "200"))
CONNS = int(os.environ.get("SOAK_CONNECTIONS", "64"))
RSS_LIMIT_KB = 5 * 1024

SIGNING = b"soak-signing-secret"
STORE_SECRET = b"soak-store-secret-0123456789"

RULES = r"""
version: 1
offers:
  vip-hero:
    slot: hero
    html: '<div class="offer">Hello {{ profile.first_name }}, VIP {{ profile.clv }}</div>'
  churn-hero:
    slot: hero
    html: '<div class="offer">We miss you, {{ profile.first_name | default("friend") }}</div>'
  welcome:
    slot: footer
    html: '<p>Welcome, new visitor</p>'
  sports:
    slot: side
    html: '<aside>{{ profile.segments }} / {{ profile.lifecycle }}</aside>'
rules:
  - name: vip
    when: '"vip" in profile.segments and profile.clv >= 100'
    show: vip-hero
    priority: 50
  - name: churn
    when: profile.churn_risk >= 0.5
    show: churn-hero
    priority: 40
  - name: new
    when: visitor.new
    show: welcome
  - name: sports
    when: profile.interests.sports >= 0.5 and profile.nps >= 3
    show: sports
"""

CONF = """
load_module %(module)s;
daemon off;
master_process on;
worker_processes 2;
%(user)s
error_log %(work)s/error.log warn;
pid %(work)s/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path %(work)s/tmp/body;
    proxy_temp_path %(work)s/tmp/proxy;
    fastcgi_temp_path %(work)s/tmp/fastcgi;
    uwsgi_temp_path %(work)s/tmp/uwsgi;
    scgi_temp_path %(work)s/tmp/scgi;
    types { text/html html; }

    cef_store %(work)s/store;
    cef_store_secret %(work)s/store.secret;

    server {
        listen 127.0.0.1:%(port)d;
        root %(work)s/html;

        cef on;
        cef_rules %(work)s/rules.yaml;
        cef_signing_secret %(work)s/signing.secret;
        cef_key crm $cookie_c signed;
        cef_visitor_cookie vid;
    }
}
"""

PAGE = ("<html><body>\n<!--cef:slot hero--><h1>Autumn</h1><!--/cef:slot-->\n"
        + "<p>" + "lorem ipsum dolor sit amet " * 180 + "</p>\n"
        + "<!--cef:slot side--><aside>generic</aside><!--/cef:slot-->\n"
        + "<p>" + "consectetur adipiscing elit " * 180 + "</p>\n"
        + "<!--cef:slot footer--><p>footer</p><!--/cef:slot-->\n"
        + "</body></html>\n")


def signed(key_type, value):
    return fixtures.signed(SIGNING, key_type, value)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@functools.lru_cache(maxsize=None)
def access():
    """As root: workers run as Debian runs them (fixtures.WORKER_USER), and
    cef-sync gives the store to their group (docs/store.md)."""
    if os.geteuid() != 0:
        return "", []
    fixtures.store_group()
    return ("user %s;" % fixtures.WORKER_USER,
            ["--group", fixtures.STORE_GROUP, "--nginx-user",
             fixtures.WORKER_USER])


def sync(cmd, *args, data=None):
    """cef-sync CMD ARGS (the last is the input), the store given to the
    workers' group."""
    argv = [str(CEF_SYNC), cmd, *map(str, args[:-1]), *access()[1],
            str(args[-1])]
    return subprocess.run(argv, input=data, capture_output=True, timeout=60)


def workers(master):
    out = []
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % e) as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == master:
                    out.append(int(e))
        except (OSError, ValueError):
            pass
    return sorted(out)


def rss_kb(pid):
    """(VmRSS, RssAnon, RssFile) in kB."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k = line.split(":")[0]
            if k in ("VmRSS", "RssAnon", "RssFile"):
                out[k] = int(line.split()[1])
    return (out.get("VmRSS", 0), out.get("RssAnon", 0),
            out.get("RssFile", 0))


def data_kb():
    try:
        return os.path.getsize(WORK / "store" / "current" / "data.mdb") \
            // 1024
    except OSError:
        return 0


def setup(port):
    shutil.rmtree(WORK, ignore_errors=True)
    for d in ("tmp", "html"):
        (WORK / d).mkdir(parents=True)
    (WORK / "store.secret").write_bytes(STORE_SECRET + b"\n")
    (WORK / "signing.secret").write_bytes(SIGNING + b"\n")
    (WORK / "rules.yaml").write_text(RULES)
    (WORK / "html" / "page.html").write_text(PAGE)
    (WORK / "nginx.conf").write_text(CONF % {
        "module": MODULE, "work": WORK, "port": port,
        "user": access()[0]})

    r = sync("load", "--quiet", "--store", WORK / "store", "--secret",
             WORK / "store.secret", "-", data=snapshot(PROFILES, "soak"))
    # a warning: the workers could not use the store
    assert r.returncode == 0 and not r.stderr, r.stderr.decode()

    with open(WORK / "cookies.txt", "w") as f:
        for i in range(PROFILES):
            if i % 10 == 9:
                f.write("\n")          # anonymous
            else:
                f.write("c=%s\n" % signed("crm", "C%d" % i))


class DeltaFeeder(threading.Thread):
    """A batch of patches every second, through cef-sync apply."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.seq = 0
        self.batches = 0
        self.records = 0
        self.failures = []
        self.slow = 0

    def run(self):
        n = 0
        while not self.stop.wait(1.0):
            recs = []
            for _ in range(DELTAS):
                self.seq += 1
                n += 1
                i = (n * 7919) % PROFILES
                recs.append({"seq": self.seq, "op": "patch",
                             "id": "p%d" % i,
                             "set": {"clv": (n % 500) * 1.5,
                                     "churn_risk": (n % 97) / 97,
                                     "segments": ["vip", "s%d" % (n % 13)]
                                     if n % 2 else ["s%d" % (n % 13)],
                                     "first_name": "N%d" % n}})
            t0 = time.monotonic()
            r = sync("apply", "--quiet", "--store", WORK / "store",
                     "--secret", WORK / "store.secret", "-",
                     data=deltas(recs))
            if time.monotonic() - t0 > 1.0:
                self.slow += 1
            if r.returncode != 0:
                self.failures.append(r.stderr.decode()[-300:])
            else:
                self.batches += 1
                self.records += len(recs)


def main():
    for p in (MODULE, CEF_SYNC):
        if not p.exists():
            sys.exit("build first: make all (%s missing)" % p)
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: make deps")

    port = free_port()
    setup(port)
    nginx = subprocess.Popen([NGINX, "-p", str(WORK), "-c",
                              str(WORK / "nginx.conf"), "-e",
                              str(WORK / "error.log")],
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    problems = []
    try:
        deadline = time.monotonic() + 10
        while len(workers(nginx.pid)) < 2:
            assert nginx.poll() is None, nginx.stderr.read().decode()
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.05)
        time.sleep(0.3)

        # personalisation happens at all
        # personalisation happens at all: p100 is a vip with clv 125
        req = urllib.request.Request(
            "http://127.0.0.1:%d/page.html" % port,
            headers={"Cookie": "c=" + signed("crm", "C100")})
        body = urllib.request.urlopen(req, timeout=5).read().decode()
        assert "Hello Name0, VIP 125</div>" in body, body[:400]

        pids0 = workers(nginx.pid)
        feeder = DeltaFeeder()
        feeder.start()

        env = dict(os.environ, SOAK_COOKIES=str(WORK / "cookies.txt"))
        wrk = subprocess.Popen(
            ["wrk", "-t2", "-c%d" % CONNS, "-d%ds" % SECONDS, "--latency",
             "-s", str(pathlib.Path(__file__).with_name("soak.lua")),
             "http://127.0.0.1:%d/page.html" % port],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)

        t_start = time.monotonic()
        samples = []      # (seconds, {pid: (rss, anon, file)}, data.mdb)
        while wrk.poll() is None:
            time.sleep(min(10, max(1, SECONDS // 60)))
            t = time.monotonic() - t_start
            samples.append((t, {p: rss_kb(p) for p in workers(nginx.pid)},
                            data_kb()))
            print("  t=%4ds rss/anon/file kB %s  data.mdb %d kB  deltas %d"
                  % (t, " ".join("%d/%d/%d" % v
                                 for v in samples[-1][1].values()),
                     samples[-1][2], feeder.batches), flush=True)
        out = wrk.stdout.read().decode()
        feeder.stop.set()
        feeder.join(30)

        print(out)
        m = re.search(r"non200 (\d+)", out)
        non200 = int(m.group(1)) if m else -1
        sock = re.search(r"Socket errors: (.*)", out)
        reqs = re.search(r"(\d+) requests in", out)
        rps = re.search(r"Requests/sec:\s*([\d.]+)", out)

        if non200 != 0:
            problems.append("non-200 responses: %d" % non200)
        if sock:
            problems.append("socket errors: " + sock.group(1))

        pids1 = workers(nginx.pid)
        if pids1 != pids0:
            problems.append("workers changed: %s -> %s" % (pids0, pids1))

        base = [s for s in samples if s[0] >= WARMUP]
        growth = {}
        if base:
            first, last = base[0][1], samples[-1][1]
            data_growth = max(0, samples[-1][2] - base[0][2])
            for p in last:
                if p not in first:
                    continue
                rss, anon, fil = (last[p][i] - first[p][i] for i in range(3))
                counted = rss - min(max(fil, 0), data_growth)
                growth[p] = (rss, anon, fil, counted)
                if counted >= RSS_LIMIT_KB:
                    problems.append("worker %d RSS grew %d kB after warm-up "
                                    "(%d kB of it the store file's)"
                                    % (p, rss, rss - counted))
                if anon >= RSS_LIMIT_KB:
                    problems.append("worker %d anonymous memory grew %d kB "
                                    "after warm-up" % (p, anon))
        else:
            data_growth = 0
            problems.append("run shorter than the warm-up: no RSS figures")

        bad = [line for line in
               (WORK / "error.log").read_text(errors="replace").splitlines()
               if re.search(r"\[(error|crit|alert|emerg)\]", line)]
        if bad:
            problems.append("error.log lines above warn: %d, first: %s"
                            % (len(bad), bad[0]))
        if feeder.failures:
            problems.append("delta batches failed: %d, first: %s"
                            % (len(feeder.failures), feeder.failures[0]))

        print("soak: %ss, %s requests, %s req/s, non-200 %d, "
              "delta batches %d (%d records, %d took over 1 s)" % (
                  SECONDS, reqs.group(1) if reqs else "?",
                  rps.group(1) if rps else "?", non200, feeder.batches,
                  feeder.records, feeder.slow))
        print("growth after the %ds warm-up, kB (VmRSS / RssAnon / RssFile "
              "/ counted): %s; data.mdb %+d kB" % (
                  WARMUP, ", ".join("worker %d: %+d / %+d / %+d / %+d"
                                    % ((p,) + g) for p, g in growth.items()),
                  data_growth))
        if samples:
            print("worker (VmRSS, RssAnon, RssFile) kB at warm-up end / "
                  "end: %s / %s" % (base[0][1] if base else "-",
                                    samples[-1][1]))
    finally:
        nginx.send_signal(signal.SIGQUIT)
        try:
            nginx.wait(15)
        except subprocess.TimeoutExpired:
            nginx.kill()

    if problems:
        print("SOAK FAILED:\n  " + "\n  ".join(problems))
        sys.exit(1)
    print("soak passed")


if __name__ == "__main__":
    main()
