# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
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
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import benchlib as bl  # noqa: E402

N = int(os.environ.get("BENCH_PROFILES", "1000000"))
VISITORS = int(os.environ.get("BENCH_VISITORS", "200000"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
WORK = bl.BUILD / "bench-identity"
SIGNING = b"bench-signing-secret"


CONF = """
load_module %(module)s;
%(common)s
http {
    access_log off;
%(temp_paths)s
    cef_store %(store)s;
    cef_store_secret %(store_secret)s;

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


def main():
    # the reference store of make bench (tests/bench/cef_bench.c: keys
    # customer:I and email), shared with it and reused between runs
    st = bl.reference_store(bl.BUILD / "bench-data", N)
    print("store of %d profiles: %s" % (N, "reused" if st["reused"] else
                                        "loaded in %.1f s" % st["load_s"]))
    WORK.mkdir(parents=True, exist_ok=True)
    bl.write_secret(WORK / "signing.secret", SIGNING)

    cookies = WORK / "cookies.txt"
    with open(cookies, "w") as f:
        for i in bl.pick_visitors(N, VISITORS):
            f.write("c=%s; u=%d; session=abcdef0123456789\n"
                    % (bl.signed(SIGNING, "customer", str(i)), i))

    port = bl.free_port()
    conf = CONF % {"module": bl.BUILD / "ngx_http_cef_module.so",
                   "common": bl.nginx_common(WORK),
                   "temp_paths": bl.nginx_temp_paths(WORK), "work": WORK,
                   "store": st["store"], "store_secret": st["secret"],
                   "port": port}
    with bl.Processes() as procs:
        bl.start_nginx(procs, WORK, conf, port)
        paths = ["/plain", "/off", "/signed", "/unsigned", "/anonymous"]
        results = {p: [] for p in paths}
        for r in range(ROUNDS):
            for p in paths:
                results[p].append(bl.wrk(port, p, cookies, SECONDS))

    print("\n%d profiles, %d visitors, %d rounds x %d s, 1 worker "
          "(CPU 0), wrk -t1 -c16 (CPU 1)" % (N, VISITORS, ROUNDS, SECONDS))
    print("%-10s %10s %9s %9s %12s %7s" % ("location", "req/s", "p50 us",
                                          "p99 us", "added us/req",
                                          "non-2xx"))
    base = bl.median([x["rps"] for x in results["/plain"]])
    for p in paths:
        med = sorted(results[p], key=lambda x: x["rps"])[ROUNDS // 2]
        print("%-10s %10.0f %9.0f %9.0f %12.2f %7d" % (
            p[1:], med["rps"], med["p50"], med["p99"],
            1e6 / med["rps"] - 1e6 / base,
            sum(x["non2xx"] for x in results[p])))


if __name__ == "__main__":
    main()
