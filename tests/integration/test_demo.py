"""`make demo`'s script serves the demo shop through the module, its personas
are recognised as printed, and Ctrl-C stops it."""

import os
import pwd
import re
import shlex
import signal
import subprocess
import time

from client import request
from conftest import REPO, free_port


def read_personas(proc, deadline):
    personas = {}
    for raw in proc.stdout:
        line = raw.decode()
        m = re.match(r"  (\S.*?\S)\s{2,}(curl .*)$", line)
        if m:
            personas[m.group(1)] = shlex.split(m.group(2))
        if "forged cookie" in line:
            return personas
        assert time.monotonic() < deadline
    raise AssertionError("the demo printed no personas")


def run_curl(port, argv, path=None):
    """Do what the printed curl line does, on `path` if given."""
    cookie = argv[argv.index("-b") + 1] if "-b" in argv else None
    url = re.sub(r"^http://[^/]+", "", argv[-1])
    if path is not None:
        url = path + url[url.index("?"):] if "?" in url else path
    status, headers, body = request(
        "http://127.0.0.1:%d%s" % (port, url),
        headers={"Cookie": cookie} if cookie else {})
    assert status == 200
    return body, headers


def whoami(port, argv):
    body, headers = run_curl(port, argv, "/whoami")
    return dict(re.findall(r"(\w+)=(\S*)", body.decode())), headers


def hero(port, argv):
    body, headers = run_curl(port, argv)
    m = re.search(rb'<section class="hero">\s*(.*?)\s*</section>', body,
                  re.S)
    return m.group(1).decode(), headers


def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == pid:
                out.append(int(entry))
    return out


def worker_uid(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"^Uid:\s+(\d+)", f.read(), re.M).group(1))


def test_demo_serves_the_shop_and_its_personas():
    port = free_port()
    proc = subprocess.Popen([str(REPO / "examples/demo/run")],
                            env={"DEMO_PORT": str(port),
                                 "PATH": "/usr/bin:/bin"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        personas = read_personas(proc, deadline)
        while True:
            try:
                status, headers, body = request("http://127.0.0.1:%d/" % port)
                break
            except OSError:
                assert proc.poll() is None, "demo exited"
                assert time.monotonic() < deadline, "demo did not come up"
                time.sleep(0.05)
        assert status == 200
        if os.geteuid() == 0:
            # run as root, the demo's workers are Debian's www-data
            uids = {worker_uid(pid) for pid in children(proc.pid)}
            assert uids == {pwd.getpwnam("www-data").pw_uid}, uids
        assert b"Nordhaus Outdoor" in body
        assert b"Welcome! 10% off" in body     # a new visitor's hero
        assert b"<!--cef:slot" not in body
        status, _, body = request("http://127.0.0.1:%d/products/boots.html"
                                  % port)
        assert status == 200 and b"Vidde Hiking Boots" in body

        f, headers = whoami(port, personas["anonymous"])
        assert f["profile"] == "" and f["new"] == "1"
        assert "cef_vid=" in headers.get("set-cookie", "")
        f, _ = whoami(port, personas["a known visitor"])
        assert (f["profile"], f["key"]) == ("vis-demo", "visitor")
        f, _ = whoami(port, personas["gold customer 1001"])
        assert (f["profile"], f["name"]) == ("cust-1001", "Greta")
        assert "gold" in f["segments"].split(",")
        f, headers = whoami(port, personas["churn-risk 1002"])
        assert (f["profile"], f["key"]) == ("cust-1002", "email")
        assert float(f["churn_risk"]) > 0.7
        assert "cef_id=" in headers.get("set-cookie", "")
        f, _ = whoami(port, personas["forged cookie"])
        assert f["profile"] == ""

        # the pages come from proxy_cache, each persona sees its own offer
        seen = {}
        for name in personas:
            seen[name], headers = hero(port, personas[name])
            assert headers["x-cache"] in ("HIT", "MISS", "EXPIRED")
        assert "Welcome! 10% off" in seen["anonymous"]
        assert "Welcome! 10% off" in seen["a known visitor"]
        assert "Gold members ship free" in seen["gold customer 1001"]
        assert "We miss you, Chris!" in seen["churn-risk 1002"]
        assert "Welcome! 10% off" in seen["forged cookie"]
        assert headers["x-cache"] == "HIT"
        assert "<!--cef:slot" not in seen["anonymous"]
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=15)[0].decode(errors="replace")
    assert proc.returncode == 0, out
    assert "[emerg]" not in out and "[alert]" not in out, out
    assert "warning" not in out, out        # cef-sync's permission check
