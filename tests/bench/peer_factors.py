# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""make bench-peers: what moves the peer ratios of `make bench` (issue 22;
docs/bench.md, "Why another measurement found different peer ratios").

An independent measurement found sub_filter (3 fixed substitutions) at
0.75 x plain static and a one-pass ngx.re.gsub Lua peer at 0.47 x, where
make bench reports about 0.50 x and 0.28 x.  This measures plain static,
sub_filter, the Lua peer and the module (make bench's servers 1, 2, 3 and
5, exactly as make bench configures them) in one nginx (one worker pinned to CPU 0, wrk -t1 on CPU 1), under
make bench's setup and under each factor changed alone:

  64 connections     instead of 16
  ordinary configuration   every server configured as a stock nginx.conf
             is: an access log written to a file, no open_file_cache
             (also: plain static alone so, the peers as in make bench)
  sendfile off         every server (also: plain static alone, make
             bench's server 6); make bench's sub_filter has it off already
  1 cookie, 100 visitors   the signed customer key alone and 100 visitors,
             instead of three cookies and 200 000 rotating visitors
  page 4 KB, page 48 KB    instead of 12 KB, the same three slots
  Lua: fixed table     the Lua peer as the issue names it: one
             ngx.re.gsub with a fixed table of offers, no profile and no
             rules, instead of ours (the module's rule file, a profile from
             a shared dict)
  sub_filter: sendfile on  sub_filter as a stock configuration runs it
             (make bench's before 2026-12-07): nginx then sends the
             unchanged stretches of the file with sendfile(2) between
             writev(2)s of the substitutions; at 12 KB and at 48 KB
  combined   64 connections, ordinary configuration, sendfile off, Lua
             with a fixed table: the factors that raise the ratios

Rounds interleaved (every run of every condition once per round, each
condition's runs together); per run the req/s and the worker's CPU time per
request (user + system from /proc/PID/stat around the wrk run).  Per
condition and server: the median over rounds of each round's ratio to plain
static of the same condition and round, by req/s and by CPU time (plain's
CPU µs per request / the server's), and the median CPU µs per request.
Writes bench/results/peers.md (--out) and prints it.

Refuses to report (exit 1, the reason on stderr) if a sample of bodies is
not what each server should send, on any non-200 or socket error, or on an
[alert]/[crit]/[emerg] line in nginx's error log.
"""

import argparse
import fcntl
import http.client
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import benchlib as bl  # noqa: E402
import bench  # noqa: E402
import serving_cost  # noqa: E402
import workload as wl  # noqa: E402

# the pages: file name -> size
PAGES = {"index.html": wl.PAGE_SIZE, "p4k.html": 4096, "p48k.html": 49152}

# A server is a kind and its configuration: "sub", "sub+o" (ordinary: an
# access log, no open_file_cache), "sub+nosf" (sendfile off), "sub+o+nosf".
KINDS = {
    "plain": "plain static (make bench's 1)",
    "sub": "sub_filter, 3 fixed substitutions, sendfile off (2)",
    "subsf": "sub_filter, 3 fixed substitutions, sendfile on",
    "lua": "OpenResty-style Lua, our rules (3)",
    "cef": "module personalising (5)",
    "luafix": "Lua, one ngx.re.gsub with a fixed table",
}
ROLES = ("plain", "sub", "lua", "cef")

ORDINARY = """        access_log %(work)s/logs/access.log;
        open_file_cache off;
"""

LUA = """        location / {
            access_by_lua_block { require("cefbench").decide() }
            header_filter_by_lua_block { require("cefbench").header() }
            body_filter_by_lua_block { require("cefbench").body() }
        }
"""

LUA_FIXED = """        location / {
            header_filter_by_lua_block { require("cefbench").fixed_header() }
            body_filter_by_lua_block { require("cefbench").body() }
        }
"""

CONF = """
load_module %(module)s;
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
%(common)s
http {
    # make bench's http block (workload.CONF)
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

    lua_package_path "%(lua_dir)s/?.lua;;";
    lua_shared_dict cef_profiles %(dict_mb)dm;
    init_by_lua_block {
        local b = require("cefbench")
        b.init("%(profiles_tsv)s", "%(work)s/rules.lua")
        b.fixed_offers(%(fixed_lua)s)
    }
%(servers)s
}
"""


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=3, help="per wrk run")
    ap.add_argument("--profiles", type=int, default=1000000,
                    help="the module's store (make bench's)")
    ap.add_argument("--visitors", type=int, default=200000)
    ap.add_argument("--out", default=str(bl.REPO / "bench" / "results"),
                    help="where peers.md goes")
    a = ap.parse_args()
    a.out = pathlib.Path(a.out)
    a.work = bl.BUILD / "bench" / "peers"
    a.data = bl.BUILD / "bench-data"
    return a


def kind(server):
    """The server's kind without its configuration: "sub+o" -> "sub"."""
    return server.split("+")[0]


def server_block(server, port, work, cef_server):
    k, opts = kind(server), server.split("+")[1:]
    subs = "\n".join("            sub_filter '%s' '%s';"
                     % (wl.DEFAULTS[s], wl.SUBSTITUTIONS[s])
                     for s in wl.SLOTS)
    body = {"plain": "",
            "sub": "        location / {\n%s\n            sub_filter_once on;"
                   "\n            sendfile off;\n        }\n" % subs,
            "subsf": "        location / {\n%s\n            sub_filter_once "
                     "on;\n        }\n" % subs,
            "lua": LUA, "luafix": LUA_FIXED,
            "cef": cef_server + "        location / {\n            cef on;\n"
                                "        }\n"}[k]
    conf = (ORDINARY % {"work": work} if "o" in opts else "") + \
        ("        sendfile off;\n" if "nosf" in opts else "")
    what = KINDS[k] + "".join({"o": ", ordinary configuration",
                               "nosf": ", sendfile off"}[o] for o in opts)
    return ("\n    # %s\n    server {\n        listen 127.0.0.1:%d;\n"
            "        root %s/html;\n%s%s    }\n"
            % (what, port, work, conf, body))


# A condition: (name, what changes, {role: run}), a run being (server,
# page, cookies, connections); cookies "full" (make bench's) or "one100".
def conditions():
    def run(server, page="index.html", cookies="full", conns=16):
        return (server, page, cookies, conns)

    def each(f):
        return {r: f(r) for r in ROLES}

    base = each(run)

    def nosf(r):
        # make bench's sub_filter has sendfile off in its location already
        return r if r == "sub" else r + "+nosf"

    return [
        ("make bench", "16 connections, 3 cookies × 200 000 visitors, "
         "12 KB page, make bench's configuration, our Lua", base),
        ("64 connections", "wrk -c64",
         each(lambda r: run(r, conns=64))),
        ("ordinary configuration", "every server: access_log to a file, "
         "no open_file_cache", each(lambda r: run(r + "+o"))),
        ("ordinary, plain only", "plain static as above, the peers as in "
         "make bench", dict(base, plain=run("plain+o"))),
        ("sendfile off", "every server: sendfile off",
         each(lambda r: run(nosf(r)))),
        ("sendfile off, plain only", "plain static without sendfile (make "
         "bench's server 6), the peers as in make bench",
         dict(base, plain=run("plain+nosf"))),
        ("1 cookie, 100 visitors", "Cookie: c=KEY.SIG only, 100 visitors "
         "rotated", each(lambda r: run(r, cookies="one100"))),
        ("page 4 KB", "the same 3 slots",
         each(lambda r: run(r, page="p4k.html"))),
        ("page 48 KB", "the same 3 slots",
         each(lambda r: run(r, page="p48k.html"))),
        ("Lua: fixed table", "one ngx.re.gsub with a fixed table of offers, "
         "no profile, no rules", dict(base, lua=run("luafix"))),
        ("sub_filter: sendfile on", "sub_filter without its `sendfile off` "
         "(make bench's server 2 before 2026-12-07)",
         dict(base, sub=run("subsf"))),
        ("sub_filter: sendfile on, page 48 KB", "the same at 48 KB",
         dict(each(lambda r: run(r, page="p48k.html")),
              sub=run("subsf", page="p48k.html"))),
        ("combined", "64 connections, every server ordinary and sendfile "
         "off, Lua with a fixed table",
         {r: run(("luafix" if r == "lua" else r) + "+o"
                 + ("" if r == "sub" else "+nosf"), conns=64)
          for r in ROLES}),
    ]


def fixed_page(page):
    """What sub_filter sends: its three substitutions made."""
    for s in wl.SLOTS:
        page = page.replace(wl.DEFAULTS[s], wl.SUBSTITUTIONS[s], 1)
    return page


def luafix_page(page):
    """What the fixed-table Lua peer sends: each slot, markers included,
    replaced by sub_filter's offer."""
    return re.sub(r"<!--cef:slot ([a-z]+)-->.*?<!--/cef:slot-->",
                  lambda m: wl.SUBSTITUTIONS[m.group(1)], page, flags=re.S)


OFFER = re.compile(r'<div class="cef-offer" data-offer="(o\d+)">')


def get(port, path, cookie):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", "/" + path, headers={"Cookie": cookie})
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        c.close()


def check_bodies(ports, pages, cookies, conds):
    """Refuse unless every server answers 200 on every page it is measured
    with, with what it should send: plain unchanged, sub_filter and the
    fixed-table Lua their fixed offers, our Lua three offers, the module
    personalised (the hero slot may be held out)."""
    sample = []
    for lines in cookies.values():
        step = max(1, len(lines) // 20)
        sample += lines[::step][:20]
    pairs = sorted({(run[0], run[1]) for _, _, roles in conds
                    for run in roles.values()})
    for server, path in pairs:
        page = pages[path]
        for cookie in sample:
            status, body = get(ports[server], path, cookie)
            if status != 200:
                raise bench.Refuse("%s answered %d to /%s (Cookie: %s)"
                                   % (server, status, path, cookie))
            k = kind(server)
            if k == "plain":
                ok = body == page
            elif k in ("sub", "subsf"):
                ok = body == fixed_page(page)
            elif k == "luafix":
                ok = body == luafix_page(page)
            elif k == "lua":
                ok = len(OFFER.findall(body)) == 3 and "cef:slot" not in body
            else:
                ok = len(OFFER.findall(body)) >= 2 and "cef:slot" not in body
            if not ok:
                raise bench.Refuse("%s sent an unexpected body for /%s "
                                   "(Cookie: %s)" % (server, path, cookie))
    return len(sample)


# the servers and pages whose system calls per response are counted
SYSCALL_RUNS = [("plain", "index.html"), ("plain+nosf", "index.html"),
                ("subsf", "index.html"), ("sub", "index.html"),
                ("lua", "index.html"), ("luafix", "index.html"),
                ("cef", "index.html"), ("subsf", "p48k.html"),
                ("sub", "p48k.html"), ("plain+o", "index.html"),
                ("sub+o", "index.html"), ("lua+o", "index.html"),
                ("cef+o", "index.html")]


def syscalls(work, pid, port, path, cookies, n=200):
    """The worker's system calls per response: `strace -c` attached to it
    while one keep-alive connection makes n requests (after 20 that are
    not counted).  Counts, not times: strace slows the worker down but not
    what it calls.  Returns {syscall: calls per response}."""
    out = work / "strace.txt"
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    buf = b""
    try:
        for i in range(20):
            buf = serving_cost.http_get(sock, cookies[i], buf, "/" + path)
        p = subprocess.Popen(["strace", "-c", "-o", str(out), "-p",
                              str(pid)], stderr=subprocess.DEVNULL)
        time.sleep(1)
        for i in range(n):
            buf = serving_cost.http_get(sock, cookies[i % len(cookies)], buf,
                                        "/" + path)
        p.send_signal(signal.SIGINT)
        p.wait(30)
    finally:
        sock.close()
    calls = {}
    for line in out.read_text().splitlines():
        f = line.split()
        # % time, seconds, usecs/call, calls, [errors,] syscall
        if len(f) >= 5 and f[3].isdigit() and f[-1] != "total":
            calls[f[-1]] = int(f[3]) / n
    return calls


def measure(a, ports, files, pid, conds):
    """{run: [wrk result with cpu per round]}; a run is (server, page,
    cookies, connections), measured once per round whichever conditions
    share it."""
    order = []
    for _, _, roles in conds:
        for r in ROLES:
            if roles[r] not in order:
                order.append(roles[r])
    bl.log("warm-up ...")
    for run in order:
        server, page, cookies, conns = run
        bl.wrk(ports[server], "/" + page, files[cookies], 1, conns)
    res = {run: [] for run in order}
    for rnd in range(a.rounds):
        for run in order:
            server, page, cookies, conns = run
            c0 = bench.worker_cpu(pid)
            t0 = time.monotonic()
            w = bl.wrk(ports[server], "/" + page, files[cookies], a.seconds,
                       conns)
            el = time.monotonic() - t0
            c1 = bench.worker_cpu(pid)
            if w["non2xx"] or w["errors"]:
                raise bench.Refuse("%s /%s: %d non-2xx, %d socket errors"
                                   % (server, page, w["non2xx"],
                                      w["errors"]))
            cpu = (c1[0] - c0[0]) + (c1[1] - c0[1])
            w["cpu"] = 1e6 * cpu / w["requests"]
            w["busy"] = cpu / el
            res[run].append(w)
            bl.log("  round %d %-10s %-10s %-6s -c%-2d %7.0f req/s  worker "
                   "%5.1f us/req, busy %3.0f %%"
                   % (rnd + 1, server, page, cookies, conns, w["rps"],
                      w["cpu"], 100 * w["busy"]))
    return res


def summarise(res, conds):
    """Per condition and role: req/s, × plain (req/s), CPU µs/req, × plain
    (CPU), the worker's busy share; medians over rounds of per-round
    figures."""
    out = []
    for name, what, roles in conds:
        p = res[roles["plain"]]
        row = {}
        for r in ROLES:
            ws = res[roles[r]]
            row[r] = {"rps": bl.median([w["rps"] for w in ws]),
                      "ratio": bl.median([w["rps"] / q["rps"]
                                          for w, q in zip(ws, p)]),
                      "cpu": bl.median([w["cpu"] for w in ws]),
                      "cpu_ratio": bl.median([q["cpu"] / w["cpu"]
                                              for w, q in zip(ws, p)]),
                      "busy": bl.median([w["busy"] for w in ws])}
        out.append((name, what, roles, row))
    return out


def report(a, m, rows, calls, nsample, t_s):
    L = ["# make bench-peers — what moves the peer ratios", "",
         "Generated by `make bench-peers` (tests/bench/peer_factors.py); "
         "see [docs/bench.md](../../docs/bench.md#why-another-measurement-"
         "found-different-peer-ratios) for what is measured and how to read "
         "it. Figures, not assertions.", "",
         "| | |", "|---|---|",
         "| date | %s |" % m["date"], "| commit | %s |" % m["commit"],
         "| CPU | %s × %s (nproc) |" % (m["cpu"], m["nproc"]),
         "| nginx | %s (Debian), 1 worker on CPU 0 (www-data when run as "
         "root); wrk -t1 on CPU 1 |" % m["nginx"],
         "| module | %s-profile store, 100 rules (realistic mix, holdout and "
         "caps as in make bench) |" % bench.fmt_n(a.profiles),
         "| rounds | %d rounds of %d s per run, interleaved; %.0f s in all |"
         % (a.rounds, a.seconds, t_s),
         "| load average | %s at the start, %s at the end |"
         % (m["loadavg"], m["loadavg_end"]), "",
         "The machine is shared (2 cores): read directions and sizes, not "
         "third digits. × plain is the median over rounds of each round's "
         "ratio to plain static of the same condition; by CPU it is plain's "
         "worker CPU µs per request divided by the server's (what the ratio "
         "would be if the worker were the only bottleneck). Body check "
         "before the rounds: %d visitors' pages from every server and page "
         "size, all 200 and as expected." % nsample, "",
         "| condition | sub_filter × plain | Lua × plain | module × plain "
         "| sub_filter × plain (CPU) | Lua × plain (CPU) | module × plain "
         "(CPU) |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, what, roles, row in rows:
        L.append("| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |"
                 % (name, row["sub"]["ratio"], row["lua"]["ratio"],
                    row["cef"]["ratio"], row["sub"]["cpu_ratio"],
                    row["lua"]["cpu_ratio"], row["cef"]["cpu_ratio"]))
    L += ["", "Worker CPU µs per request (user + system, median over "
          "rounds) and req/s; busy: the worker's CPU time over the run's "
          "wall time (below ~95 % the worker waited: for wrk, or for the "
          "CPU, which it shares with the machine's other work):", "",
          "| condition | what changes | plain µs | sub_filter µs | Lua µs "
          "| module µs | plain req/s | sub_filter req/s | Lua req/s "
          "| module req/s | plain busy |",
          "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, what, roles, row in rows:
        L.append("| %s | %s | %.1f | %.1f | %.1f | %.1f | %.0f | %.0f | %.0f "
                 "| %.0f | %.0f %% |"
                 % (name, what, row["plain"]["cpu"], row["sub"]["cpu"],
                    row["lua"]["cpu"], row["cef"]["cpu"],
                    row["plain"]["rps"], row["sub"]["rps"],
                    row["lua"]["rps"], row["cef"]["rps"],
                    100 * row["plain"]["busy"]))
    if calls:
        L += ["", "System calls the worker makes per response (`strace -c` "
              "attached to it while one keep-alive connection makes 200 "
              "requests; counts, not times):", "",
              "| server | page | all | writev | sendfile | pread64 "
              "| recvfrom | setsockopt | write | openat | other |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        named = ("writev", "sendfile", "pread64", "recvfrom", "setsockopt",
                 "write", "openat")
        for (server, path), c in calls.items():
            L.append("| %s | %s | %.1f | %s | %.1f |"
                     % (server, path, sum(c.values()),
                        " | ".join("%.1f" % c.get(x, 0) for x in named),
                        sum(v for x, v in c.items() if x not in named)))
    text = "\n".join(L) + "\n"
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "peers.md").write_text(text)
    return text


def setup(a, procs):
    work = a.work
    shutil.rmtree(work, ignore_errors=True)
    for d in ("html", "lua", "logs"):
        (work / d).mkdir(parents=True)
    pages = {}
    for path, size in PAGES.items():
        pages[path] = wl.make_page(size)
        (work / "html" / path).write_text(pages[path])
    signing = work / "signing.secret"
    bl.write_secret(signing, bench.SIGNING)
    plugins_yaml, note = bench.plugins(work)
    bl.log("plugins: " + note)
    rules = bench.write_rules(work, 100, plugins_yaml)
    shutil.copy(work / "rules-100.lua", work / "rules.lua")
    shutil.copy(bl.REPO / "tests/bench/cefbench.lua", work / "lua")
    st = bl.reference_store(a.data, a.profiles, snapshot_file=True)
    cookies, full = bench.visitor_files(work, a.profiles, a.visitors)
    one = work / "cookies-one100.txt"
    one_lines = [c.split(";")[0] for c in cookies[:100]]
    one.write_text("\n".join(one_lines) + "\n")
    servers = sorted({run[0] for _, _, roles in conditions()
                      for run in roles.values()})
    ports = dict(zip(servers, bl.free_ports(len(servers))))
    cef_server = wl.CEF_SERVER % {"rules": rules, "signing": signing}
    conf = CONF % {
        "module": bl.BUILD / "ngx_http_cef_module.so",
        "common": bl.nginx_common(work),
        "temp_paths": bl.nginx_temp_paths(work), "work": work,
        "store": st["store"], "store_secret": st["secret"],
        "lua_dir": work / "lua", "profiles_tsv": work / "profiles.tsv",
        "dict_mb": max(32, a.visitors * 400 // 1000000 + 16),
        "fixed_lua": "{%s}" % ", ".join(
            "%s=[==[%s]==]" % (s, wl.SUBSTITUTIONS[s]) for s in wl.SLOTS),
        "servers": "".join(server_block(s, ports[s], work, cef_server)
                           for s in servers)}
    (work / "error.log").write_text("")
    master = bl.start_nginx(procs, work, conf, ports[servers[-1]])
    for p in ports.values():
        bl.wait_port(p)
    subprocess.run("cat %s/current/*.mdb > /dev/null" % st["store"],
                   shell=True, timeout=300)
    return (master, ports, pages, {"full": full, "one100": one},
            {"full": cookies, "one100": one_lines})


def main():
    a = parse_args()
    t0 = time.monotonic()
    try:
        bench.need_tools()
        m = bench.machine()
        (bl.BUILD / "bench").mkdir(parents=True, exist_ok=True)
        # one benchmark at a time: they share build/bench-data
        lock = open(bl.BUILD / "bench" / ".lock", "a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.seek(0)
            raise bench.Refuse("another benchmark is running (%s)"
                               % (lock.read().strip() or "?"))
        lock.seek(0)
        lock.truncate()
        lock.write("pid %d since %s (bench-peers)" % (os.getpid(), m["date"]))
        lock.flush()
        bl.log("load average at the start: " + m["loadavg"])
        conds = conditions()
        with bl.Processes() as procs:
            master, ports, pages, files, lines = setup(a, procs)
            nsample = check_bodies(ports, pages, lines, conds)
            bl.log("body check: %d visitors, every server and page as "
                   "expected" % nsample)
            pid = bench.worker_pid(master)
            calls = {}
            if shutil.which("strace"):
                for server, path in SYSCALL_RUNS:
                    calls[(server, path)] = syscalls(a.work, pid,
                                                     ports[server], path,
                                                     lines["full"])
            res = measure(a, ports, files, pid, conds)
            errors = [x for x in (a.work / "error.log").read_text()
                      .splitlines()
                      if re.search(r"\[(alert|crit|emerg)\]", x)]
            procs.stop(master)
        if errors:
            raise bench.Refuse("nginx logged: %s" % errors[0])
        (a.work / "logs" / "access.log").unlink(missing_ok=True)
        m["loadavg_end"] = " ".join(open("/proc/loadavg").read().split()[:3])
        text = report(a, m, summarise(res, conds), calls, nsample,
                      time.monotonic() - t0)
    except (bench.Refuse, RuntimeError, subprocess.SubprocessError,
            OSError) as e:
        print("bench-peers: refusing to report: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench-peers: interrupted", file=sys.stderr)
        return 130
    print()
    print(text)
    print("written: %s (%.0f s)" % (a.out / "peers.md",
                                    time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
