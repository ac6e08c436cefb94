# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""make bench / make bench-quick: see docs/bench.md.

1. Scaling: for stores of 10k, 100k, 1M and 10M reference profiles (loaded
   by cef-sync from `cef-bench snapshot`, reused while the parameters
   match) and rule sets of 10, 100 and 1000 rules: decision latency
   (median, p99; `cef-bench decide` on CPU 0) and callgrind instructions
   per decision; load rate and bytes per profile for each store size.
2. Serving: one nginx, five servers on free loopback ports (1 worker on
   CPU 0, wrk on CPU 1), the same 12 KB page with 3 slots, 200 000
   visitors' cookies rotated by wrk, a 1M store, a 100-rule file; a sample
   of bodies from every server is checked first; rounds interleaved
   1 2 3 4 5; then server 5 while deltas stream in and while `cef-sync
   load` replaces the whole store; then perf profiles of servers 5 and 1.
3. Writes OUT/latest.md (OUT/quick.md with --quick) and PNG plots.

Refuses to report (exit status 1, the reason on stderr) if any server
answered anything but 200, or if the sample shows server 5 not
personalising.  Targets are printed next to the figures, never asserted.
"""

import argparse
import fcntl
import http.client
import json
import os
import pathlib
import platform
import random
import re
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import benchlib as bl  # noqa: E402
import workload as wl  # noqa: E402

SIGNING = b"bench-signing-secret"
SERVERS = [(1, "plain static"), (2, "sub_filter, 3 fixed substitutions"),
           (3, "OpenResty-style Lua"), (4, "module loaded, cef off"),
           (5, "module personalising"),
           (6, "plain static, sendfile off (reference)"),
           (7, "sub_filter, a pattern that never matches (reference)"),
           (8, "module's body filter alone: cef on, no rules or keys "
               "(reference)")]
# holdout and frequency caps for server 5's rule file, once the plugins of
# issue 6 exist (checked with cef-rules check before use; see plugins())
PLUGINS_YAML = """plugins:
  freqcap:
    caps:
      - {campaign: c0, max: 3, per: 7d}
slots:
  hero:
    holdout: 10%
"""


class Refuse(Exception):
    pass


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="a ~1 minute subset, written to "
                    "build/bench/quick-results/quick.md")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--seconds", type=int, help="per wrk run")
    ap.add_argument("--profiles", type=int, help="store for serving")
    ap.add_argument("--visitors", type=int)
    ap.add_argument("--sizes", help="comma-separated store sizes")
    ap.add_argument("--rules", help="comma-separated rule counts")
    ap.add_argument("--connections", default="16,64",
                    help="comma-separated wrk connection counts of the "
                    "serving rounds (the first also for the runs under "
                    "cef-sync and perf)")
    ap.add_argument("--rule-mix", choices=("realistic", "classic"),
                    default="realistic",
                    help="the rule files: the issue-22 mix (2-3 conditions "
                    "a rule: segments, lifecycle, thresholds, interests) or "
                    "the issue-9 one of earlier runs")
    ap.add_argument("--sync-nice", type=int, default=19,
                    help="nice level of cef-sync during the serving runs")
    ap.add_argument("--no-scaling", action="store_true")
    ap.add_argument("--no-serving", action="store_true")
    ap.add_argument("--no-perf", action="store_true")
    ap.add_argument("--out", help="default bench/results (--quick: "
                    "build/bench/quick-results)")
    ap.add_argument("--replot", action="store_true",
                    help="rewrite the report and plots from the last run's "
                    "results.json")
    a = ap.parse_args()
    q = a.quick
    a.rounds = a.rounds or 3
    a.seconds = a.seconds or (2 if q else 8)
    a.profiles = a.profiles or (100000 if q else 1000000)
    a.visitors = a.visitors or (20000 if q else 200000)
    a.sizes = [int(x) for x in (a.sizes or ("10000,100000" if q else
                                            "10000,100000,1000000,10000000")
                                ).split(",")]
    a.rules = [int(x) for x in (a.rules or ("10,100" if q else
                                            "10,100,1000")).split(",")]
    a.conns = [int(x) for x in str(a.connections).split(",")]
    a.connections = a.conns[0]
    a.decisions = 20000 if q else 200000
    a.cg_decisions = 1000 if q else 2000
    a.out = pathlib.Path(a.out) if a.out else (
        bl.BUILD / "bench" / "quick-results" if q
        else bl.REPO / "bench" / "results")
    a.report = a.out / ("quick.md" if q else "latest.md")
    a.prefix = "quick-" if q else ""
    a.work = bl.BUILD / "bench" / ("quick" if q else "run")
    a.data = bl.BUILD / "bench-data"
    return a


def need_tools():
    missing = [t for t in ("wrk", "taskset", "gnuplot", "valgrind")
               if shutil.which(t) is None]
    for f in (bl.NGINX, bl.CEF_SYNC, bl.CEF_BENCH,
              bl.BUILD / "ngx_http_cef_module.so", bl.BUILD / "cef-rules",
              "/usr/lib/nginx/modules/ngx_http_lua_module.so",
              "/usr/share/lua/5.1/resty/core.lua"):
        if not pathlib.Path(f).exists():
            missing.append(str(f))
    if missing:
        raise Refuse("missing: %s (make deps; make all)" % ", ".join(missing))


def machine():
    cpu = "unknown CPU"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = "?"
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal"):
            mem = "%.1f GiB" % (int(line.split()[1]) / 1048576)
    nproc = subprocess.run(["nproc"], capture_output=True, text=True
                           ).stdout.strip()
    nginx = subprocess.run([bl.NGINX, "-v"], capture_output=True, text=True
                           ).stderr.strip().split("/")[-1]
    commit = subprocess.run(["git", "-C", str(bl.REPO), "rev-parse",
                             "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(bl.REPO), "status",
                            "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    load = open("/proc/loadavg").read().split()[:3]
    return {"cpu": cpu, "nproc": nproc, "mem": mem,
            "kernel": platform.release(), "nginx": nginx,
            "commit": commit + (" (with uncommitted changes)" if dirty
                                else ""),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "loadavg": " ".join(load)}


def plugins(work):
    """PLUGINS_YAML if this build's rule engine accepts it, else ''.
    Returns (yaml, note)."""
    probe = work / "plugins-probe.yaml"
    yaml, _ = wl.make_rules(10, PLUGINS_YAML, campaigns=True)
    probe.write_text(yaml)
    r = subprocess.run([str(bl.BUILD / "cef-rules"), "check", str(probe)],
                       capture_output=True, text=True, timeout=60)
    if r.returncode == 0:
        return PLUGINS_YAML, "holdout 10% on hero, frequency cap on c0: active"
    msg = (r.stderr or r.stdout).strip().splitlines()
    return "", ("holdout and caps NOT active: this build's rule engine "
                "rejects them (%s)" % (msg[0] if msg else "?"))


def write_rules(work, nrules, plugins_yaml, mix="realistic"):
    yaml, lua = wl.make_rules(nrules, plugins_yaml,
                              campaigns=bool(plugins_yaml), mix=mix)
    y = work / ("rules-%d.yaml" % nrules)
    y.write_text(yaml)
    (work / ("rules-%d.lua" % nrules)).write_text(lua)
    return y


# --- scaling ----------------------------------------------------------------

def scan_cost(a):
    """The body filter's slot scanner over the page, outside nginx."""
    page = a.work / "page.html"
    text = wl.make_page()
    page.write_text(text)
    r = subprocess.run(["taskset", "-c", "0", str(bl.CEF_BENCH), "scan",
                        str(page), "20000"], capture_output=True, text=True,
                       timeout=300, check=True)
    d = dict(re.findall(r"(\w+) ([\d.]+)", r.stdout))
    cg = a.work / "callgrind.scan.out"
    subprocess.run(["valgrind", "--tool=callgrind", "--collect-atstart=no",
                    "--callgrind-out-file=%s" % cg, str(bl.CEF_BENCH), "scan",
                    str(page), "200", "callgrind"], capture_output=True,
                   timeout=300, check=True)
    m = re.search(r"^summary:\s*(\d+)", cg.read_text(), re.M)
    res = {"median_ns": float(d["median_ns"]), "p99_ns": float(d["p99_ns"]),
           "ir": int(m.group(1)) / 200, "bytes": len(text),
           "lt": text.count("<")}
    bl.log("slot scanner: %.0f ns, %.0f instructions per %d-byte page "
           "(%d '<')" % (res["median_ns"], res["ir"], res["bytes"],
                         res["lt"]))
    return res


def scaling(a, plugins_yaml, signing):
    res = {"stores": [], "decide": [], "scan": scan_cost(a)}
    rules = {k: write_rules(a.work, k, plugins_yaml, a.rule_mix) for k in a.rules}
    for n in a.sizes:
        bl.log("store of %d profiles ..." % n)
        st = bl.reference_store(a.data, n, snapshot_file=(n == a.profiles))
        bl.log("  %s: %.1f s, %.0f profiles/s, %.1f bytes/profile"
               % ("reused (measured %s)" % st["measured_at"] if st["reused"]
                  else "loaded", st["load_s"], st["rate"],
                  st["bytes_per_profile"]))
        res["stores"].append(st)
        for k in a.rules:
            argv = [str(bl.CEF_BENCH), "decide", st["store"], st["secret"],
                    str(signing), str(rules[k]), str(n)]
            r = subprocess.run(["taskset", "-c", "0"] + argv
                               + [str(a.decisions)], capture_output=True,
                               text=True, timeout=600)
            if r.returncode != 0:
                raise Refuse("cef-bench decide (%d profiles, %d rules) "
                             "failed (%d): %s%s" % (n, k, r.returncode,
                                                    r.stdout, r.stderr))
            d = dict(re.findall(r"(\w+) ([\d.]+)", r.stdout))
            res["api"] = (re.findall(r"api (\S+)", r.stdout) or ["?"])[0]
            cg = a.work / ("callgrind.%d.%d.out" % (n, k))
            r2 = subprocess.run(["valgrind", "--tool=callgrind",
                                 "--collect-atstart=no",
                                 "--callgrind-out-file=%s" % cg] + argv
                                + [str(a.cg_decisions), "callgrind"],
                                capture_output=True, text=True, timeout=900)
            m = re.search(r"^summary:\s*(\d+)", cg.read_text()
                          if cg.exists() else "", re.M)
            if r2.returncode != 0 or m is None:
                raise Refuse("callgrind of cef-bench decide failed: "
                             + r2.stderr[-2000:])
            row = {"n": n, "rules": k, "median_ns": float(d["median_ns"]),
                   "p99_ns": float(d["p99_ns"]),
                   "slots": float(d["slots"]),
                   "ir": int(m.group(1)) / a.cg_decisions}
            res["decide"].append(row)
            bl.log("  %5d rules: median %.0f ns, p99 %.0f ns, %.0f "
                   "instructions/decision, %.2f slots filled"
                   % (k, row["median_ns"], row["p99_ns"], row["ir"],
                      row["slots"]))
    return res


# --- serving ----------------------------------------------------------------

def get(port, cookie):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", "/index.html", headers={"Cookie": cookie})
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        c.close()


OFFER = re.compile(r'<div class="cef-offer" data-offer="(o\d+)">')


def check_sample(ports, cookies, page, holdout_slots):
    """Refuse unless every server answers 200 with the body it should."""
    fixed = page
    for s in wl.SLOTS:
        fixed = fixed.replace(wl.DEFAULTS[s], wl.SUBSTITUTIONS[s], 1)
    agree = personalised = 0
    step = max(1, len(cookies) // 200)
    sample = cookies[::step][:200]
    for cookie in sample:
        bodies = {}
        for sid, port in ports.items():
            status, body = get(port, cookie)
            if status != 200:
                raise Refuse("server %d answered %d to a sample request "
                             "(Cookie: %s)" % (sid, status, cookie))
            bodies[sid] = body
        for sid in (1, 4, 6, 7):
            if bodies[sid] != page:
                raise Refuse("server %d changed the page" % sid)
        if bodies[8] != wl.strip_markers(page):
            raise Refuse("server 8 (cef on, no rules) did not send the page "
                         "with every slot at its default")
        if bodies[2] != fixed:
            raise Refuse("server 2 (sub_filter) did not make its 3 "
                         "substitutions")
        lua = OFFER.findall(bodies[3])
        if len(lua) != 3 or "cef:slot" in bodies[3]:
            raise Refuse("server 3 (Lua) returned a page without its 3 "
                         "offers (Cookie: %s)" % cookie)
        mod = OFFER.findall(bodies[5])
        if "cef:slot" in bodies[5] or len(mod) < 3 - holdout_slots:
            raise Refuse("server 5 returned an unpersonalised page (%d "
                         "offers, slot markers %s; Cookie: %s)"
                         % (len(mod), "left" if "cef:slot" in bodies[5]
                            else "removed", cookie))
        personalised += len(mod) == 3
        agree += sorted(mod) == sorted(lua)
    return {"sample": len(sample), "agree": agree,
            "personalised": personalised}


class SyncLoop:
    """cef-sync load of the whole store, again and again, in a thread."""

    def __init__(self, procs, st, nice):
        self.procs, self.st, self.nice = procs, st, nice
        self.stop = threading.Event()
        self.times, self.failed = [], []
        self.t = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            t = time.monotonic()
            p = self.procs.start(["nice", "-n", str(self.nice),
                                  str(bl.CEF_SYNC), "load", "--quiet",
                                  "--store", self.st["store"], "--secret",
                                  self.st["secret"]] + bl.sync_access()
                                 + [self.st["snapshot"]])
            rc = p.wait()
            self.procs.procs.remove(p)
            if rc != 0:
                self.failed.append(rc)
                return
            self.times.append(time.monotonic() - t)


def under_sync(a, procs, ports, cookies_file, st, idle, idle1):
    """Server 5 while deltas stream in, then while full loads replace the
    store, each followed by server 1 under the same activity (a control:
    what the machine's contention alone does).  Ratios to the idle
    medians."""
    out = {}
    seconds = max(a.seconds, 4 if a.quick else 12)

    def control():
        return bl.wrk(ports[1], "/index.html", cookies_file, seconds,
                      a.connections)

    # deltas: cef-bench deltas | cef-sync apply -, for the wrk window
    seq0 = bl.sync_stat(st["store"])["last_seq"]
    gen = procs.start([str(bl.CEF_BENCH), "deltas", str(a.profiles),
                       str(seq0 + 1), "1000000000"], stdout=subprocess.PIPE)
    app = procs.start(["nice", "-n", str(a.sync_nice), str(bl.CEF_SYNC),
                       "apply", "--quiet", "--store", st["store"],
                       "--secret", st["secret"]] + bl.sync_access() + ["-"],
                      stdin=gen.stdout)
    gen.stdout.close()
    t = time.monotonic()
    w = bl.wrk(ports[5], "/index.html", cookies_file, seconds,
               a.connections)
    c = control()
    procs.stop(gen)
    rc = app.wait(120)
    procs.procs.remove(app)
    el = time.monotonic() - t
    applied = bl.sync_stat(st["store"])["last_seq"] - seq0
    out["deltas"] = dict(w, ratio=w["rps"] / idle, records=applied,
                         rate=applied / el, rc=rc, control=c,
                         control_ratio=c["rps"] / idle1)
    bl.log("  server 5 during cef-sync apply: %.0f req/s (%.2f of idle), "
           "%d non-2xx, %d deltas applied (%.0f/s); server 1 meanwhile "
           "%.2f of idle" % (w["rps"], w["rps"] / idle, w["non2xx"],
                             applied, applied / el, c["rps"] / idle1))

    # full loads, back to back
    g0 = bl.sync_stat(st["store"])["generation"]
    loop = SyncLoop(procs, st, a.sync_nice)
    loop.t.start()
    w = bl.wrk(ports[5], "/index.html", cookies_file, seconds,
               a.connections)
    done_in_window = len(loop.times)
    c = control()
    loop.stop.set()
    loop.t.join(600)
    g1 = bl.sync_stat(st["store"])["generation"]
    out["load"] = dict(w, ratio=w["rps"] / idle, loads=done_in_window,
                       generations=g1 - g0,
                       load_s=bl.median(loop.times) if loop.times else None,
                       failed=loop.failed, control=c,
                       control_ratio=c["rps"] / idle1)
    bl.log("  server 5 during cef-sync load: %.0f req/s (%.2f of idle), "
           "%d non-2xx, %d full loads completed in the window (median "
           "%s s each); server 1 meanwhile %.2f of idle"
           % (w["rps"], w["rps"] / idle, w["non2xx"], done_in_window,
              "%.1f" % out["load"]["load_s"] if loop.times else "-",
              c["rps"] / idle1))
    if loop.failed or rc not in (0, None):
        raise Refuse("cef-sync failed during the serving run (load %s, "
                     "apply %s)" % (loop.failed, rc))
    return out


def worker_cpu(pid):
    """(user, system) CPU seconds of a process, or None."""
    try:
        f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return None
    tck = os.sysconf("SC_CLK_TCK")
    return int(f[11]) / tck, int(f[12]) / tck


def worker_pid(master):
    r = subprocess.run(["ps", "--ppid", str(master.pid), "-o", "pid="],
                       capture_output=True, text=True)
    pids = r.stdout.split()
    return int(pids[0]) if pids else None


def perf_profile(a, procs, pid, port, cookies_file, name):
    """A flat perf profile of the worker while wrk loads port."""
    data = a.work / ("perf.%s.data" % name)
    p = procs.start(["perf", "record", "-F", "1999", "-p", str(pid), "-o",
                     str(data), "--", "sleep", str(a.seconds)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    bl.wrk(port, "/index.html", cookies_file, a.seconds, a.connections)
    p.wait(60)
    procs.procs.remove(p)
    r = subprocess.run(["perf", "report", "-i", str(data), "--no-children",
                        "--sort", "dso,symbol", "--stdio",
                        "--percent-limit", "0.01"], capture_output=True,
                       text=True, timeout=300)
    rows = []
    for line in r.stdout.splitlines():
        m = re.match(r"\s+([\d.]+)%\s+(\S+)\s+\[.\]\s+(.+?)[\s-]*$",
                     line)
        if m:
            rows.append((float(m.group(1)), m.group(2), m.group(3)))
    groups = {}
    for share, dso, sym in rows:
        g = group_of(dso, sym)
        groups[g] = groups.get(g, 0) + share
    return {"top": [x for x in rows if x[0] >= 0.8][:25],
            "groups": sorted(groups.items(), key=lambda x: -x[1])}


GROUPS = [
    ("module: slot scanner and body filter",
     r"^(cef_slot_|ngx_http_cef_(body|output|scan))"),
    ("module: rules (evaluation, values, templates)",
     r"^(cef_(test|eval|rules_|value_|template_|load_ref|contains|operand"
     r"|expr_|decision_|plugin_|bucket_hash))"),
    ("module: store (lookups, buckets) and liblmdb",
     r"^(cef_store_|cef_bucket_|cef_profile_|mdb_)|liblmdb"),
    ("module: identity (HMAC, signatures, cookies) and libcrypto",
     r"^(cef_(identity|sign|base64|visitor|cookie))|libcrypto|SHA256|HMAC"
     r"|EVP_"),
    ("module: other", r"ngx_http_cef|^cef_"),
    ("Lua (LuaJIT, lua-nginx-module)", r"luajit|ngx_http_lua|lj_"),
    ("nginx core and other modules", r"^nginx$|^ngx_"),
    ("libc (memchr, memcpy, ...)", r"^libc\.so"),
    ("kernel (TCP, syscalls, scheduling)", r"kernel"),
]


def group_of(dso, sym):
    for name, pat in GROUPS:
        if re.search(pat, sym) or re.search(pat, dso):
            return name
    return "other"


def visitor_files(work, nprofiles, nvisitors):
    """The visitors of the serving runs: WORK/profiles.tsv (their profiles,
    for the Lua server's dict) and WORK/cookies.txt (their Cookie lines: a
    signed customer key, a visitor id, a session cookie).  Returns (the
    Cookie lines, the cookies file)."""
    ids = bl.pick_visitors(nprofiles, nvisitors)
    (work / "ids.txt").write_text("".join("%d\n" % i for i in ids))
    with open(work / "profiles.tsv", "w") as f:
        subprocess.run([str(bl.CEF_BENCH), "profiles", str(work / "ids.txt")],
                       stdout=f, check=True, timeout=120)
    rng = random.Random(2)
    cookies = ["c=%s; vid=%s; session=9f8e7d6c5b4a3210"
               % (bl.signed(SIGNING, "customer", str(i)), bl.visitor_id(rng))
               for i in ids]
    cookies_file = work / "cookies.txt"
    cookies_file.write_text("\n".join(cookies) + "\n")
    return cookies, cookies_file


def serving(a, procs, plugins_yaml, signing):
    work = a.work
    (work / "html").mkdir(parents=True, exist_ok=True)
    page = wl.make_page()
    (work / "html" / "index.html").write_text(page)

    st = bl.reference_store(a.data, a.profiles, snapshot_file=True)
    cookies, cookies_file = visitor_files(work, a.profiles, a.visitors)

    rules = write_rules(work, 100, plugins_yaml, a.rule_mix)
    shutil.copy(work / "rules-100.lua", work / "rules.lua")
    lua_dir = work / "lua"
    lua_dir.mkdir(exist_ok=True)
    shutil.copy(bl.REPO / "tests/bench/cefbench.lua", lua_dir)

    ports = dict(zip([sid for sid, _ in SERVERS],
                     bl.free_ports(len(SERVERS))))
    conf = wl.nginx_conf(
        module=bl.BUILD / "ngx_http_cef_module.so",
        common=bl.nginx_common(work), temp_paths=bl.nginx_temp_paths(work),
        work=work, store=st["store"], store_secret=st["secret"],
        lua_dir=lua_dir, profiles_tsv=work / "profiles.tsv",
        dict_mb=max(32, a.visitors * 400 // 1000000 + 16),
        rules=rules, signing=signing,
        **{"port%d" % i: p for i, p in ports.items()})
    (work / "error.log").write_text("")
    master = bl.start_nginx(procs, work, conf, ports[5])
    for p in ports.values():
        bl.wait_port(p)

    # the store's pages in the page cache, as on a warm edge
    subprocess.run("cat %s/current/*.mdb > /dev/null" % st["store"],
                   shell=True, timeout=300)

    holdout_slots = 1 if plugins_yaml else 0
    sample = check_sample(ports, cookies, page, holdout_slots)
    bl.log("sample of %d visitors: every server 200 with the right body; "
           "server 5 filled all 3 slots for %d, chose the same offers as "
           "the Lua server for %d" % (sample["sample"],
                                      sample["personalised"],
                                      sample["agree"]))

    bl.log("warm-up ...")
    for sid in ports:
        bl.wrk(ports[sid], "/index.html", cookies_file, 1, a.connections)

    # the worker's CPU time per request: other work on the machine takes
    # wall-clock time from the worker but adds little to its CPU time;
    # every connection count in its own interleaved rounds
    pid = worker_pid(master)
    runs_by_c = {}
    for conns in a.conns:
        runs_by_c[conns] = rc = {sid: [] for sid in ports}
        for r in range(a.rounds):
            for sid in ports:
                c0 = worker_cpu(pid)
                w = bl.wrk(ports[sid], "/index.html", cookies_file,
                           a.seconds, conns)
                c1 = worker_cpu(pid)
                if c0 and c1 and w["requests"]:
                    w["cpu_user"] = 1e6 * (c1[0] - c0[0]) / w["requests"]
                    w["cpu_sys"] = 1e6 * (c1[1] - c0[1]) / w["requests"]
                rc[sid].append(w)
                bl.log("  -c%d round %d server %d: %8.0f req/s  p50 %6.0f "
                       "us  p99 %6.0f us  non-2xx %d  worker CPU %s us/req"
                       % (conns, r + 1, sid, w["rps"], w["p50"], w["p99"],
                          w["non2xx"], "%.2f + %.2f" % (w["cpu_user"],
                                                        w["cpu_sys"])
                          if "cpu_user" in w else "?"))
    runs = runs_by_c[a.conns[0]]
    bad = [(sid, sum(w["non2xx"] + w["errors"] for c in runs_by_c
                     for w in runs_by_c[c][sid]))
           for sid in ports]
    bad = [x for x in bad if x[1]]
    if bad:
        raise Refuse("non-200 responses or socket errors during the rounds: "
                     + ", ".join("server %d: %d" % x for x in bad))

    idle = bl.median([w["rps"] for w in runs[5]])
    idle1 = bl.median([w["rps"] for w in runs[1]])
    sync = under_sync(a, procs, ports, cookies_file, st, idle, idle1)
    for what in ("deltas", "load"):
        ctl = sync[what]["control"]
        if (sync[what]["non2xx"] or sync[what]["errors"] or ctl["non2xx"]
                or ctl["errors"]):
            raise Refuse("server 5 answered %d non-2xx (%d socket errors) "
                         "during cef-sync %s" % (sync[what]["non2xx"],
                                                 sync[what]["errors"],
                                                 "apply" if what == "deltas"
                                                 else what))

    prof = {}
    if not a.no_perf and shutil.which("perf"):
        pid = worker_pid(master)
        if pid:
            for sid in (5, 1):
                bl.log("perf profile of server %d ..." % sid)
                prof[sid] = perf_profile(a, procs, pid, ports[sid],
                                         cookies_file, "server%d" % sid)

    errors = [line for line in (work / "error.log").read_text().splitlines()
              if re.search(r"\[(alert|crit|emerg)\]", line)]
    procs.stop(master)
    if errors:
        raise Refuse("nginx logged: %s" % errors[0])

    return {"runs": runs, "runs_by_c": runs_by_c, "sync": sync,
            "sample": sample, "perf": prof, "store": st}


# --- report -----------------------------------------------------------------

def met(ok):
    return "met" if ok else "**missed**"


def fmt_n(n):
    return ("%dM" % (n // 1000000) if n >= 1000000 and n % 1000000 == 0
            else "%dk" % (n // 1000) if n >= 1000 and n % 1000 == 0
            else str(n))


def served(srv):
    """The servers of SERVERS that this run measured (a --replot of an
    older run may have fewer)."""
    return [(sid, name) for sid, name in SERVERS if srv["runs"].get(sid)]


def serving_table(srv):
    runs = srv["runs"]
    base = bl.median([w["rps"] for w in runs[1]])
    rows, summary = [], {}
    for sid, name in served(srv):
        ws = runs[sid]
        # the ratio of each round to plain static of the same round
        ratio = bl.median([w["rps"] / p["rps"] for w, p in zip(ws, runs[1])])
        rps = bl.median([w["rps"] for w in ws])
        cpu = [w["cpu_user"] + w["cpu_sys"] for w in ws if "cpu_user" in w]
        summary[sid] = {"rps": rps, "ratio": ratio,
                        "cpu": bl.median(cpu) if cpu else None,
                        "cpu_user": bl.median([w["cpu_user"] for w in ws
                                               if "cpu_user" in w])
                        if cpu else None,
                        "p50": bl.median([w["p50"] for w in ws]),
                        "p99": bl.median([w["p99"] for w in ws]),
                        "spread": (min(w["rps"] for w in ws),
                                   max(w["rps"] for w in ws))}
    lua = summary[3]["rps"]
    targets = {1: "—", 6: "—", 7: "—", 8: "—",
               2: "—",
               3: "—",
               4: "≥ 0.99 × plain: %s" % met(summary[4]["ratio"] >= 0.99),
               5: "≥ 0.85 × plain: %s; ≥ 2 × Lua (%.2f ×): %s; worker "
                  "CPU added ≤ 3 µs: %s"
                  % (met(summary[5]["ratio"] >= 0.85),
                     summary[5]["rps"] / lua,
                     met(summary[5]["rps"] >= 2 * lua),
                     met(summary[5]["cpu"] is not None
                         and summary[1]["cpu"] is not None
                         and summary[5]["cpu"] - summary[1]["cpu"] <= 3))}
    rows.append("| server | req/s (median) | min – max | p50 µs | p99 µs | "
                "× plain | worker CPU µs / req (user) | target |")
    rows.append("|---|---:|---:|---:|---:|---:|---:|---|")
    for sid, name in served(srv):
        s = summary[sid]
        rows.append("| %d %s | %.0f | %.0f – %.0f | %.0f | %.0f | %.3f | %s "
                    "| %s |"
                    % (sid, name, s["rps"], s["spread"][0], s["spread"][1],
                       s["p50"], s["p99"], s["ratio"],
                       "%.1f (%.1f)" % (s["cpu"], s["cpu_user"])
                       if s["cpu"] is not None else "—", targets[sid]))
    rows.append("")
    rows.append("Added cost per request against plain static (1e6/req/s − "
                "1e6/req/s plain): " + ", ".join(
                    "(%d) %.1f µs" % (sid, 1e6 / summary[sid]["rps"]
                                      - 1e6 / base)
                    for sid, _ in served(srv) if sid != 1) + ".")
    if summary[1]["cpu"] is not None:
        rows.append("")
        rows.append("Added worker CPU time per request against plain static "
                    "(steadier than req/s on a shared machine): " + ", ".join(
                        "(%d) %.1f µs" % (sid, summary[sid]["cpu"]
                                          - summary[1]["cpu"])
                        for sid, _ in served(srv)
                        if sid != 1 and summary[sid]["cpu"] is not None)
                    + ".")
    return rows, summary


def write_report(a, m, note, sc, srv, pngs):
    L = ["# make bench — results", "",
         "Generated by `make %s` (tests/bench/bench.py); see "
         "[docs/bench.md](../../docs/bench.md) for what is measured and how "
         "to read it. Figures, not assertions." % ("bench-quick" if a.quick
                                                    else "bench"), "",
         "| | |", "|---|---|",
         "| date | %s |" % m["date"], "| commit | %s |" % m["commit"],
         "| CPU | %s × %s (nproc) |" % (m["cpu"], m["nproc"]),
         "| memory | %s |" % m["mem"], "| kernel | %s |" % m["kernel"],
         "| nginx | %s (Debian), 1 worker on CPU 0; wrk -t1 -c%s on CPU 1 |"
         % (m["nginx"], "/".join(str(c) for c in a.conns)),
         "| rules | %s mix (`--rule-mix`) |" % a.rule_mix,
         "| load average at start | %s |" % m["loadavg"],
         "| plugins | %s |" % note, ""]
    if srv:
        rows, s = serving_table(srv)
        st = srv["store"]
        L += ["## Serving: one nginx, %d servers, interleaved rounds"
              % len(served(srv)), "",
              "%s-byte page with 3 slots, %d visitors (signed customer "
              "cookie + visitor cookie, rotated by wrk), a store of %s "
              "reference profiles, 100 rules; %d rounds of %s, %d s "
              "each. × plain is the median over rounds of each round's "
              "ratio to plain static in the same round; worker CPU is the "
              "nginx worker's user + system time (user alone in brackets) "
              "divided by the requests wrk made, median over rounds."
              % (wl.PAGE_SIZE, a.visitors, fmt_n(st["n"]), a.rounds,
                 " ".join(str(sid) for sid, _ in served(srv)), a.seconds),
              ""] + rows
        for conns, rc in sorted(srv.get("runs_by_c", {}).items()):
            if conns == a.connections:
                continue
            L += ["", "### The same servers at %d connections" % conns, "",
                  "Rounds of their own, after those above (wrk -t1 -c%d)."
                  % conns, ""] + serving_table({"runs": rc})[0]
        smp = srv["sample"]
        L += ["", "Body check before the rounds: %d visitors on every "
              "server, all 200 with the expected body; server 5 filled all "
              "3 slots for %d of them and chose the same offers as the Lua "
              "server for %d." % (smp["sample"], smp["personalised"],
                                  smp["agree"]), ""]
        sy = srv["sync"]
        L += ["## Server 5 while cef-sync writes", "",
              "cef-sync runs at nice %d, not pinned. Server 5 is measured "
              "first (ratio to its idle median, %.0f req/s), then server 1 "
              "under the same activity as a control (ratio to its idle "
              "median): the control shows what the contention alone costs "
              "any server on this machine; \"5 / control\" is what is left "
              "for the module. Targets (on server 5's ratio): ≥ 0.8 × idle, "
              "no non-200." % (a.sync_nice, s[5]["rps"]), "",
              "| while | server 5 req/s | × idle | p50 µs | p99 µs | non-200 "
              "| control: server 1 × idle | control p99 µs | 5 / control "
              "| what cef-sync did | target |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
        for what, label, did in (
                ("deltas", "deltas stream in (`cef-bench deltas \\| "
                 "cef-sync apply -`)",
                 lambda x: "%d records, %.0f/s" % (x["records"], x["rate"])),
                ("load", "`cef-sync load` replaces the %s store, back to "
                 "back" % fmt_n(st["n"]),
                 lambda x: "%d full loads in server 5's window%s"
                 % (x["loads"], ", %.1f s each" % x["load_s"]
                    if x["load_s"] else ""))):
            x = sy[what]
            L.append("| %s | %.0f | %.3f | %.0f | %.0f | %d | %.3f | %.0f "
                     "| %.3f | %s | %s |"
                     % (label, x["rps"], x["ratio"], x["p50"], x["p99"],
                        x["non2xx"] + x["control"]["non2xx"],
                        x["control_ratio"], x["control"]["p99"],
                        x["ratio"] / x["control_ratio"],
                        did(x), met(x["ratio"] >= 0.8 and x["non2xx"] == 0)))
        L.append("")
    if sc:
        L += ["## Scaling: one decision", "",
              "`cef-bench decide` on CPU 0: verify the signed customer key, "
              "HMAC it, look the profile up (LMDB read txn renew/reset), "
              "decide the rules, render the chosen offers — what nginx does "
              "per page before the body filter (decision API: `%s`). %d "
              "decisions over random visitors after a warm-up pass; "
              "callgrind counts %d decisions."
              % (sc.get("api", "?"), a.decisions, a.cg_decisions), "",
              "| profiles | rules | median ns | p99 ns | instructions / "
              "decision | slots filled |", "|---:|---:|---:|---:|---:|---:|"]
        for r in sc["decide"]:
            L.append("| %s | %d | %.0f | %.0f | %.0f | %.2f |"
                     % (fmt_n(r["n"]), r["rules"], r["median_ns"],
                        r["p99_ns"], r["ir"], r["slots"]))
        sc_ = sc.get("scan")
        if sc_:
            L += ["", "The body filter's slot scanner (`cef-bench scan`: "
                  "`cef_slot_scanner_feed` over the page in one buffer, as "
                  "nginx reads it): %.0f ns median (p99 %.0f ns), %.0f "
                  "instructions per %d-byte page, which has %d `<`."
                  % (sc_["median_ns"], sc_["p99_ns"], sc_["ir"],
                     sc_["bytes"], sc_["lt"])]
        L += ["", "## Scaling: the store", "",
              "`cef-bench snapshot N` piped into `cef-sync load` (the "
              "serving store's from a file); stores are reused while the "
              "generator and cef-sync are unchanged, so a load rate may "
              "come from an earlier run (its date is given).", "",
              "| profiles | load s | profiles/s | data.mdb bytes | bytes / "
              "profile | measured |", "|---:|---:|---:|---:|---:|---|"]
        for st in sc["stores"]:
            L.append("| %s | %.1f | %.0f | %d | %.1f | %s |"
                     % (fmt_n(st["n"]), st["load_s"], st["rate"],
                        st["data_bytes"], st["bytes_per_profile"],
                        st["measured_at"]))
    if srv and srv["perf"]:
        L += ["", "## Where server 5's worker spends its cycles", "",
              "`perf record -F 1999 -p WORKER` (flat, no call graphs) while "
              "wrk loads the server, then server 1 for comparison. "
              "liblmdb has no symbols in Debian (addresses).", ""]
        prof = srv["perf"]
        names = [g for g, _ in prof[5]["groups"]]
        L += ["By part (share of the worker's samples; the kernel part is "
              "mostly the loopback TCP send and receive that every server "
              "pays):", "",
              "| part | server 5 | server 1 |", "|---|---:|---:|"]
        g1 = dict(prof.get(1, {}).get("groups", []))
        for g, share in prof[5]["groups"]:
            L.append("| %s | %.1f %% | %.1f %% |" % (g, share, g1.get(g, 0)))
        for g, share in g1.items():
            if g not in names:
                L.append("| %s | 0.0 %% | %.1f %% |" % (g, share))
        L.append("")
        for sid in (5, 1):
            rows = prof.get(sid, {}).get("top", [])
            L += ["Server %d, symbols with ≥ 0.8 %%:" % sid, "",
                  "| share | object | symbol |", "|---:|---|---|"]
            L += ["| %.1f %% | %s | `%s` |" % tuple(r) for r in rows[:18]]
            L.append("")
    if pngs:
        L += ["## Plots", ""] + ["![%s](%s)" % (p.stem, p.name)
                                 for p in pngs]
    a.report.write_text("\n".join(L) + "\n")
    return "\n".join(L)


def gnuplot(script, cwd):
    r = subprocess.run(["gnuplot"], input=script, text=True, cwd=cwd,
                       capture_output=True, timeout=120)
    if r.returncode != 0:
        raise Refuse("gnuplot failed: " + r.stderr[-1000:])


def plots(a, sc, srv):
    out = []
    d = a.work
    term = ("set terminal pngcairo noenhanced size 900,560 "
            "font 'DejaVu Sans,10'\n")
    if srv:
        rows, s = serving_table(srv)
        short = {1: "1 plain", 2: "2 sub_filter", 3: "3 Lua",
                 4: "4 cef off", 5: "5 cef on", 6: "6 no sendfile",
                 7: "7 sub, no match", 8: "8 cef body only"}
        with open(d / "serving.dat", "w") as f:
            for sid, name in served(srv):
                f.write('%d "%s" %.0f %.3f %.0f\n'
                        % (sid, short[sid], s[sid]["rps"], s[sid]["ratio"],
                           s[sid]["p99"]))
        top = max(s[sid]["rps"] for sid in s) * 1.25
        png = a.out / (a.prefix + "serving.png")
        gnuplot(term.replace("900,560", "1100,560") + """
set output '%s'
set title "Serving the 12 KB page with 3 slots: req/s (median of rounds), 1 nginx worker\\n1 plain static, 2 sub_filter, 3 OpenResty Lua, 4 module with cef off, 5 module personalising\\nreferences: 6 plain without sendfile, 7 sub_filter matching nothing, 8 the module's body filter without a decision"
set style fill solid 0.6 border -1
set boxwidth 0.6
set yrange [0:%.0f]
set ylabel 'requests per second'
set grid ytics
unset key
set offsets 0.5, 0.5, 0, 0
plot '%s' using 1:3:xtic(2) with boxes lc rgb '#4477aa', \\
     '' using 1:3:(sprintf("%%.0f\\n%%.2f × plain", $3, $4)) with labels offset 0,1.8
""" % (png, top, d / "serving.dat"), d)
        out.append(png)
    if sc:
        with open(d / "decide.dat", "w") as f:
            for k in a.rules:
                f.write("# rules %d\n" % k)
                for r in sc["decide"]:
                    if r["rules"] == k:
                        f.write("%d %.0f %.0f %.0f\n" % (r["n"],
                                                         r["median_ns"],
                                                         r["p99_ns"],
                                                         r["ir"]))
                f.write("\n\n")
        colors = ["#4477aa", "#ee6677", "#228833", "#ccbb44"]
        png = a.out / (a.prefix + "scaling-latency.png")
        plot = ", ".join(
            "'%s' index %d using 1:($2/1000) with linespoints lw 2 pt 7 "
            "lc rgb '%s' title '%d rules, median', '' index %d using "
            "1:($3/1000) with "
            "linespoints dt 2 pt 6 lc rgb '%s' title '%d rules, p99'"
            % (d / "decide.dat", i, colors[i % 4], k, i, colors[i % 4], k)
            for i, k in enumerate(a.rules))
        gnuplot(term + """
set output '%s'
set title 'One decision (signed key, HMAC, lookup, rules, render) vs store size'
set logscale xy
set format x '%%.0s%%c'
set xlabel 'profiles in the store'
set ylabel 'microseconds per decision (log scale)'
set grid
set key outside right
plot %s
""" % (png, plot), d)
        out.append(png)
        png = a.out / (a.prefix + "scaling-instructions.png")
        plot = ", ".join(
            "'%s' index %d using 1:4 with linespoints lw 2 pt 7 lc rgb '%s' "
            "title '%d rules'" % (d / "decide.dat", i, colors[i % 4], k)
            for i, k in enumerate(a.rules))
        gnuplot(term + """
set output '%s'
set title 'Instructions per decision (callgrind) vs store size'
set logscale x
set format x '%%.0s%%c'
set xlabel 'profiles in the store'
set ylabel 'instructions per decision'
set yrange [0:*]
set grid
set key outside right
plot %s
""" % (png, plot), d)
        out.append(png)
        with open(d / "store.dat", "w") as f:
            for st in sc["stores"]:
                f.write("%d %.0f %.1f\n" % (st["n"], st["rate"],
                                            st["bytes_per_profile"]))
        png = a.out / (a.prefix + "scaling-store.png")
        gnuplot(term + """
set output '%s'
set title 'cef-sync load: rate and bytes per profile vs store size'
set logscale x
set format x '%%.0s%%c'
set xlabel 'profiles in the store'
set ylabel 'profiles loaded per second'
set y2label 'data.mdb bytes per profile'
set yrange [0:*]
set y2range [0:*]
set ytics nomirror
set y2tics
set grid
set key bottom right
plot '%s' using 1:2 with linespoints lw 2 pt 7 lc rgb '#4477aa' title 'load rate (profiles/s)', \\
     '' using 1:3 axes x1y2 with linespoints lw 2 pt 5 lc rgb '#ee6677' title 'bytes per profile'
""" % (png, d / "store.dat"), d)
        out.append(png)
    return out


def main():
    a = parse_args()
    t0 = time.monotonic()
    try:
        need_tools()
        m = machine()
        a.work.mkdir(parents=True, exist_ok=True)
        # one run at a time: runs share build/bench-data and the work dir
        lock = open(bl.BUILD / "bench" / ".lock", "a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.seek(0)
            raise Refuse("another make bench is running (%s)"
                         % (lock.read().strip() or "?"))
        lock.seek(0)
        lock.truncate()
        lock.write("pid %d since %s" % (os.getpid(), m["date"]))
        lock.flush()
        a.data.mkdir(parents=True, exist_ok=True)
        a.out.mkdir(parents=True, exist_ok=True)
        signing = a.work / "signing.secret"
        bl.write_secret(signing, SIGNING)
        saved = a.work / "results.json"
        if a.replot:
            r = json.loads(saved.read_text())
            m, note, sc, srv = r["m"], r["note"], r["sc"], r["srv"]
            if srv:
                for k in ("runs", "perf"):
                    srv[k] = {int(x): v for x, v in srv[k].items()}
                srv["runs_by_c"] = {
                    int(c): {int(x): v for x, v in rc.items()}
                    for c, rc in srv.get("runs_by_c", {}).items()}
        else:
            plugins_yaml, note = plugins(a.work)
            bl.log("plugins: " + note)
            sc = srv = None
            with bl.Processes() as procs:
                if not a.no_scaling:
                    sc = scaling(a, plugins_yaml, signing)
                if not a.no_serving:
                    srv = serving(a, procs, plugins_yaml, signing)
            saved.write_text(json.dumps({"m": m, "note": note, "sc": sc,
                                         "srv": srv}))
        pngs = plots(a, sc, srv)
        text = write_report(a, m, note, sc, srv, pngs)
    except (Refuse, RuntimeError, subprocess.SubprocessError, OSError) as e:
        print("bench: refusing to report: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    print()
    print(text)
    print("written: %s (%.0f s)" % (a.report, time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
