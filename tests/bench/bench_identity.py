"""make bench-identity: what recognising a visitor costs per request.

One nginx worker (pinned to CPU 0) with a store of N reference profiles
loaded by cef-sync; wrk (pinned to CPU 1) sends requests whose cookies
rotate over V distinct visitors.  Locations, measured in interleaved rounds:

  plain      return 200 (the module loaded, nothing asked of it)
  off        the same location with cef off and a $cef_* free response
  signed     a signed customer key verified, hashed, looked up ($cef_profile)
  unsigned   the same key without a signature
  anonymous  no profile: a new visitor id is issued (Set-Cookie)

Prints req/s, p50/p99 latency and the added cost per request in
microseconds (1e6/rps - 1e6/rps_plain).  A benchmark: it asserts nothing.
"""

import os
import pathlib
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]
                       / "integration"))

import msgpack  # noqa: E402

from cef_fixtures import signed  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = REPO / "build"
N = int(os.environ.get("BENCH_PROFILES", "1000000"))
VISITORS = int(os.environ.get("BENCH_VISITORS", "200000"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
WORK = BUILD / "bench-identity"
SIGNING = b"bench-signing-secret"


def reference_profile(i):
    return {"id": "c%09d" % i,
            "keys": [["customer", str(i)], ["email", "u%d@example.com" % i]],
            "attrs": {"segments": ["gold", "newsletter", "outdoor"][: 1 + i % 3],
                      "clv": 100 + i % 5000, "clv_predicted": 120 + i % 4000,
                      "churn_risk": (i % 100) / 100, "nps": i % 11,
                      "lifecycle": ["new", "active", "at_risk"][i % 3],
                      "first_name": ["Anna", "Ben", "Chloe", "David"][i % 4],
                      "last_purchase_at": 1760000000 + i % 86400,
                      "interests": {"shoes": 0.5, "outdoor": 0.25,
                                    "books": (i % 10) / 10},
                      "consent_email": True, "consent_sms": i % 2 == 0}}


def build_store():
    store, secret = WORK / "store", WORK / "store.secret"
    stamp = WORK / ("loaded-%d" % N)
    if stamp.exists():
        return store, secret
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    secret.write_bytes(b"bench-store-secret\n")
    os.chmod(secret, 0o600)
    snap = WORK / "snapshot.msgpack"
    t = time.monotonic()
    with open(snap, "wb") as f:
        f.write(msgpack.packb({"cef": "snapshot", "version": 1,
                               "id": "bench", "created_at": 1760000000}))
        for i in range(N):
            f.write(msgpack.packb(reference_profile(i)))
        f.write(msgpack.packb({"end": True, "count": N}))
    print("generated %d profiles in %.1f s" % (N, time.monotonic() - t))
    t = time.monotonic()
    subprocess.run([str(BUILD / "cef-sync"), "load", "--quiet", "--store",
                    str(store), "--secret", str(secret), str(snap)],
                   check=True)
    print("cef-sync load: %.1f s" % (time.monotonic() - t))
    snap.unlink()
    stamp.touch()
    return store, secret


CONF = """
load_module %(module)s;
worker_processes 1;
worker_cpu_affinity 01;
daemon off;
%(user)s
error_log %(work)s/error.log error;
pid %(work)s/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %(work)s/tmp;
    proxy_temp_path %(work)s/tmp;
    fastcgi_temp_path %(work)s/tmp;
    uwsgi_temp_path %(work)s/tmp;
    scgi_temp_path %(work)s/tmp;
    cef_store %(work)s/store;
    cef_store_secret %(work)s/store.secret;

    server {
        listen 127.0.0.1:%(port)d;
        cef_signing_secret %(work)s/signing.secret;

        location = /plain { return 200 "ok\\n"; }
        location = /off { cef off; return 200 "ok\\n"; }
        location = /signed {
            cef_key customer $cookie_c signed;
            return 200 "$cef_profile\\n";
        }
        location = /unsigned {
            cef_key customer $cookie_u;
            return 200 "$cef_profile\\n";
        }
        location = /anonymous {
            cef_visitor_cookie vid;
            return 200 "$cef_visitor\\n";
        }
    }
}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrk(port, path, cookies):
    env = dict(os.environ, COOKIES=str(cookies), BENCH_PATH=path)
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", "-c16", "-d%ds" % SECONDS,
         "--latency", "-s", str(REPO / "tests/bench/wrk_cookies.lua"),
         "http://127.0.0.1:%d%s" % (port, path)],
        env=env, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def pct(p):
        m = re.search(r"\s%s%%\s+([\d.]+)(us|ms|s)" % p, out)
        scale = {"us": 1, "ms": 1000, "s": 1000000}[m.group(2)]
        return float(m.group(1)) * scale

    return rps, pct(50), pct(99), int(non2xx.group(1)) if non2xx else 0


def main():
    store, secret = build_store()
    (WORK / "tmp").mkdir(exist_ok=True)
    (WORK / "signing.secret").write_bytes(SIGNING + b"\n")
    os.chmod(WORK / "signing.secret", 0o600)

    rng = random.Random(1)
    ids = [rng.randrange(N) for _ in range(VISITORS)]
    cookies = WORK / "cookies.txt"
    with open(cookies, "w") as f:
        for i in ids:
            f.write("c=%s; u=%d; session=abcdef0123456789\n"
                    % (signed(SIGNING, "customer", str(i)), i))

    port = free_port()
    conf = WORK / "nginx.conf"
    conf.write_text(CONF % {
        "module": BUILD / "ngx_http_cef_module.so", "work": WORK,
        "port": port, "user": "user root root;" if os.geteuid() == 0 else ""})
    proc = subprocess.Popen(["/usr/sbin/nginx", "-p", str(WORK), "-c",
                             str(conf), "-e", str(WORK / "error.log")])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)

        paths = ["/plain", "/off", "/signed", "/unsigned", "/anonymous"]
        results = {p: [] for p in paths}
        for r in range(ROUNDS):
            for p in paths:
                results[p].append(wrk(port, p, cookies))

        print("\n%d profiles, %d visitors, %d rounds x %d s, 1 worker "
              "(CPU 0), wrk -t1 -c16 (CPU 1)" % (N, VISITORS, ROUNDS,
                                                  SECONDS))
        print("%-10s %10s %9s %9s %12s %7s" % ("location", "req/s", "p50 us",
                                              "p99 us", "added us/req",
                                              "non-2xx"))
        best = {p: max(results[p], key=lambda x: x[0]) for p in paths}
        base = sorted(x[0] for x in results["/plain"])[ROUNDS // 2]
        for p in paths:
            med = sorted(results[p], key=lambda x: x[0])[ROUNDS // 2]
            print("%-10s %10.0f %9.0f %9.0f %12.2f %7d" % (
                p[1:], med[0], med[1], med[2], 1e6 / med[0] - 1e6 / base,
                sum(x[3] for x in results[p])))
        del best
    finally:
        proc.send_signal(signal.SIGQUIT)
        proc.wait(10)


if __name__ == "__main__":
    main()
