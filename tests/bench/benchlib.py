# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""Pieces shared by the wrk benchmarks (bench.py, bench_identity.py):
free loopback ports, nginx started in the foreground and always stopped
(workers unprivileged, as Debian runs them, when run as root), wrk pinned
to a CPU with rotating cookies, reference stores loaded by cef-sync, given
to the workers' group and reused while their parameters match, signed
cookies.

Everything here is bounded: every subprocess has a timeout, every server
listens on 127.0.0.1, and Processes.stop_all() (also run on Ctrl-C and on
errors through `with Processes() as procs:`) ends what was started.
"""

import base64
import hashlib
import json
import os
import pathlib
import random
import re
import signal
import socket
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = REPO / "build"
NGINX = "/usr/sbin/nginx"
CEF_SYNC = BUILD / "cef-sync"
CEF_BENCH = BUILD / "bench" / "cef-bench"
WRK_LUA = REPO / "tests" / "bench" / "wrk_cookies.lua"

sys.path.insert(0, str(REPO / "tests" / "integration"))

from cef_fixtures import signed  # noqa: E402,F401  (re-exported)
# the worker user and the store's group of the integration suite and of
# docs/store.md's recipe: www-data, in group cef
from cef_fixtures import STORE_GROUP, WORKER_USER, store_group  # noqa: E402


def log(*args):
    print(*args, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n):
    """n distinct free ports (bound together, so never the same one)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_port(port, timeout=15, proc=None):
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError("nginx exited with status %s"
                                   % proc.returncode)
            if time.monotonic() > deadline:
                raise RuntimeError("nothing listens on port %d after %d s"
                                   % (port, timeout))
            time.sleep(0.05)


class Processes:
    """Background processes that are stopped whatever happens: on normal
    exit, on an exception, on Ctrl-C and on SIGTERM."""

    def __init__(self):
        self.procs = []

    def __enter__(self):
        self._old = signal.signal(signal.SIGTERM, self._on_term)
        return self

    def __exit__(self, *exc):
        self.stop_all()
        signal.signal(signal.SIGTERM, self._old)
        return False

    def _on_term(self, signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    def start(self, argv, stop_signal=signal.SIGTERM, **kw):
        kw.setdefault("start_new_session", True)
        p = subprocess.Popen(argv, **kw)
        p.stop_signal = stop_signal
        self.procs.append(p)
        return p

    def stop(self, p, timeout=10):
        if p.poll() is None:
            try:
                # the process group: a shell pipeline, nginx's worker
                os.killpg(p.pid, p.stop_signal)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(5)
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self):
        for p in reversed(list(self.procs)):
            self.stop(p)


def start_nginx(procs, work, conf_text, port):
    """nginx in the foreground with conf_text; waits until port listens."""
    conf = work / "nginx.conf"
    conf.write_text(conf_text)
    (work / "tmp").mkdir(exist_ok=True)
    (work / "logs").mkdir(exist_ok=True)
    r = subprocess.run([NGINX, "-t", "-q", "-p", str(work), "-c", str(conf),
                        "-e", str(work / "error.log")],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("nginx -t failed:\n" + r.stderr)
    p = procs.start([NGINX, "-p", str(work), "-c", str(conf), "-e",
                     str(work / "error.log")], stop_signal=signal.SIGQUIT)
    wait_port(port, proc=p)
    r = subprocess.run(["ps", "--ppid", str(p.pid), "-o", "user="],
                       capture_output=True, text=True, timeout=30)
    if os.geteuid() == 0 and set(r.stdout.split()) != {WORKER_USER}:
        raise RuntimeError("nginx's workers run as %r, not %s"
                           % (r.stdout.split(), WORKER_USER))
    return p


def nginx_user():
    """The `user` directive of every benchmark's nginx.conf: workers run
    unprivileged, as Debian runs them (WORKER_USER), when the benchmark
    runs as root; otherwise nginx cannot switch and they run as the
    invoking user, who owns the stores anyway."""
    return "user %s;" % WORKER_USER if os.geteuid() == 0 else ""


def sync_access():
    """cef-sync load/apply options that give a store to the workers
    (docs/store.md, "Permissions"): as root, --group STORE_GROUP (the store
    directory setgid, every file group-writable, so the workers can write
    lock.mdb) and --nginx-user for cef-sync's own check after a load.
    Makes the group first, as the integration suite does."""
    if os.geteuid() != 0:
        return []
    store_group()
    return ["--group", STORE_GROUP, "--nginx-user", WORKER_USER]


def workers_can_use(store):
    """Whether nginx's workers can use the store's current generation:
    read data.mdb and write lock.mdb as WORKER_USER, through every
    directory above (runuser; always true when not root)."""
    if os.geteuid() != 0:
        return True
    gen = pathlib.Path(store) / "current"
    r = subprocess.run(["runuser", "-u", WORKER_USER, "--", "test", "-r",
                        str(gen / "data.mdb"), "-a", "-w",
                        str(gen / "lock.mdb")], timeout=30)
    return r.returncode == 0


def sync_load(store, secret, source, stdin=None, timeout=1800):
    """cef-sync load --quiet of source (a file or "-") into store, given to
    the workers (sync_access).  Refuses (RuntimeError) if cef-sync fails or
    warns that the workers could not use the new generation."""
    r = subprocess.run([str(CEF_SYNC), "load", "--quiet", "--store",
                        str(store), "--secret", str(secret)] + sync_access()
                       + [str(source)], stdin=stdin, capture_output=True,
                       text=True, timeout=timeout)
    if r.returncode != 0 or "warning" in r.stderr:
        raise RuntimeError("cef-sync load into %s: exit %d: %s"
                           % (store, r.returncode, r.stderr.strip()))


def nginx_common(work):
    """The top of an nginx.conf: 1 worker on CPU 0, foreground, temp paths
    in work, workers unprivileged when run as root (nginx_user)."""
    return """
worker_processes 1;
worker_cpu_affinity 01;
daemon off;
%(user)s
error_log %(work)s/error.log error;
pid %(work)s/nginx.pid;
events { worker_connections 1024; }
""" % {"work": work, "user": nginx_user()}


def nginx_temp_paths(work):
    return "\n".join("    %s_temp_path %s/tmp;" % (t, work) for t in
                     ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))


_PCT = re.compile(r"^\s+(50|75|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$",
                  re.M)


def parse_wrk(out):
    """req/s, p50 us, p99 us, non-2xx/3xx count, socket errors, requests."""
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m is None:
        raise RuntimeError("wrk printed no Requests/sec:\n" + out)
    pct = {}
    for p, v, unit in _PCT.findall(out):
        pct[p] = float(v) * {"us": 1, "ms": 1000, "s": 1000000}[unit]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), "
                     r"write (\d+), timeout (\d+)", out)
    reqs = re.search(r"(\d+) requests in", out)
    return {"rps": float(m.group(1)), "p50": pct.get("50"),
            "p99": pct.get("99"),
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "errors": sum(int(x) for x in errs.groups()) if errs else 0,
            "requests": int(reqs.group(1)) if reqs else 0}


def wrk(port, path, cookies, seconds, connections=16, cpu=1):
    """One wrk run pinned to cpu, cookies rotated from the file cookies
    (one Cookie header value a line).  Returns parse_wrk()'s dict."""
    env = dict(os.environ, COOKIES=str(cookies), BENCH_PATH=path)
    argv = ["wrk", "-t1", "-c%d" % connections, "-d%ds" % seconds,
            "--timeout", "5s", "--latency", "-s", str(WRK_LUA),
            "http://127.0.0.1:%d%s" % (port, path)]
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu)] + argv
    r = subprocess.run(argv, env=env, capture_output=True, text=True,
                       timeout=seconds + 60)
    if r.returncode != 0:
        raise RuntimeError("wrk failed (%d): %s" % (r.returncode, r.stderr))
    w = parse_wrk(r.stdout)
    if w["requests"] == 0 or w["p50"] is None:
        raise RuntimeError("wrk made no requests to port %d:\n%s%s"
                           % (port, r.stdout, r.stderr))
    return w


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def visitor_id(rng):
    """A canonical cef visitor id: 16 random bytes, base64url, 22 chars."""
    return base64.urlsafe_b64encode(rng.randbytes(16)).rstrip(b"=").decode()


def pick_visitors(nprofiles, nvisitors, seed=1):
    """nvisitors distinct profile numbers out of nprofiles."""
    rng = random.Random(seed)
    return rng.sample(range(nprofiles), min(nvisitors, nprofiles))


def write_secret(path, value):
    path.write_bytes(value + b"\n")
    os.chmod(path, 0o600)


def sync_stat(store):
    r = subprocess.run([str(CEF_SYNC), "stat", "--store", str(store),
                        "--json"], capture_output=True, text=True,
                       timeout=60, check=True)
    return json.loads(r.stdout)


def file_digest(*paths):
    h = hashlib.sha1()
    for p in paths:
        h.update(pathlib.Path(p).read_bytes())
    return h.hexdigest()[:12]


def reference_store(data_dir, n, secret_value=b"bench-store-secret",
                    snapshot_file=False, timeout=1800):
    """A store of n reference profiles (cef-bench snapshot N, piped into
    cef-sync load), reused while n, the generator and cef-sync's version
    match.  Returns a dict: store, secret, n, load_s, rate, data_bytes,
    bytes_per_profile, measured_at, reused, snapshot (a file holding the
    same snapshot when snapshot_file is set, for later reloads)."""
    d = data_dir / ("store-%d" % n)
    stamp = d / "stamp.json"
    version = subprocess.run([str(CEF_SYNC), "--version"],
                             capture_output=True, text=True,
                             timeout=30).stdout.strip()
    params = {"n": n, "generator": file_digest(REPO / "tests/bench/"
                                               "cef_bench.c"),
              "cef_sync": version}
    snap = d / "snapshot.msgpack"
    if stamp.exists():
        info = json.loads(stamp.read_text())
        if not workers_can_use(d / "store"):
            # made before the workers ran unprivileged: loaded again, with
            # cef-sync's --group (docs/store.md), never chmod'ed
            log("store-%d: nginx's workers (%s) cannot use it; loading it "
                "again with cef-sync --group %s" % (n, WORKER_USER,
                                                    STORE_GROUP))
        elif info.get("params") == params and (not snapshot_file
                                               or snap.exists()):
            # the directory may have moved since
            info.update(reused=True, store=str(d / "store"),
                        secret=str(d / "store.secret"),
                        snapshot=str(snap) if snap.exists() else None)
            return info
    subprocess.run(["rm", "-rf", str(d)], check=True, timeout=600)
    d.mkdir(parents=True)
    secret = d / "store.secret"
    write_secret(secret, secret_value)
    store = d / "store"
    if snapshot_file:
        with open(snap, "wb") as f:
            subprocess.run([str(CEF_BENCH), "snapshot", str(n)], stdout=f,
                           check=True, timeout=timeout)
    t = time.monotonic()
    if snapshot_file:
        sync_load(store, secret, snap, timeout=timeout)
    else:
        gen = subprocess.Popen([str(CEF_BENCH), "snapshot", str(n)],
                               stdout=subprocess.PIPE)
        try:
            sync_load(store, secret, "-", stdin=gen.stdout, timeout=timeout)
        finally:
            gen.stdout.close()
            if gen.wait(60) != 0:
                raise RuntimeError("cef-bench snapshot failed")
    load_s = time.monotonic() - t
    st = sync_stat(store)
    info = {"params": params, "store": str(store), "secret": str(secret),
            "n": n, "load_s": load_s, "rate": n / load_s,
            "data_bytes": st["data_bytes"],
            "bytes_per_profile": st["data_bytes"] / n,
            "measured_at": time.strftime("%Y-%m-%d %H:%M UTC",
                                         time.gmtime()),
            "snapshot": str(snap) if snapshot_file else None,
            "from": "file" if snapshot_file else "pipe"}
    stamp.write_text(json.dumps(info, indent=1))
    info["reused"] = False
    return info
