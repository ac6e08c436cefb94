# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""`make demo`'s script serves the demo shop through the module, its personas
are recognised as printed, and Ctrl-C stops it."""

import json
import os
import pwd
import re
import shlex
import signal
import subprocess
import threading
import time

import pytest

from cef_fixtures import cef_sync, write_secret
from client import request
from conftest import BUILD, REPO, free_port

CEF_RULES = BUILD / "cef-rules"
WEBSHOP = REPO / "rules/examples/webshop.yaml"
SHOPPERS = 3000       # as README.md's example
PERSONA_CASES = REPO / "rules/examples/webshop.personas.cases.yaml"

# README persona: (the key examples/demo/run's curl line is recognised by,
# visitor.new), as the demo's persona line of that name sends it
DEMO_KEYS = {
    "anonymous": (None, True),
    "a known visitor": ("visitor:ZGVtby12aXNpdG9yLTAwMQ", False),
    "gold customer 1001": ("customer:1001", True),
    "churn-risk customer 1002": ("email:chris@example.com", True),
    "forged cookie": (None, True),
}


# README persona -> the name examples/demo/run prints for it
DEMO_LABELS = {"churn-risk customer 1002": "churn-risk 1002"}


def readme_personas():
    """{persona: hero text} of README.md's persona table; a text ending in
    "…" goes on, "the anonymous welcome" is the anonymous persona's."""
    text = (REPO / "README.md").read_text()
    rows = text.split("| persona | how it is recognised | hero |\n", 1)[1]
    heroes = {}
    for line in rows.splitlines()[1:]:
        if not line.startswith("|"):
            break
        persona, _, hero = [c.strip() for c in line.strip("|").split("|")]
        quoted = re.search(r'"([^"]+)"', hero)
        heroes[persona] = (quoted.group(1) if quoted
                           else heroes["anonymous"] if "anonymous" in hero
                           else hero)
    assert set(heroes) == set(DEMO_KEYS)
    return heroes


def readme_report():
    """README.md's example of the demo's experiment: the shoppers' line,
    then the report's lines down to the "…" that ends the example."""
    text = (REPO / "README.md").read_text()
    block = text.split("```\n$ examples/demo/shoppers\n", 1)[1]
    block = block.split("\n\u2026\n```", 1)[0].splitlines()
    assert block[1] == ("$ build/cef-report build/demo/cef_impressions.log "
                        "build/demo/cef_goals.log")
    return [block[0]] + block[2:]


def shows(html, text):
    """Does the offer HTML read as the README's hero text?"""
    shown = re.sub(r"<[^>]*>", "", html).strip()
    if text.endswith("\u2026"):
        return shown.startswith(text[:-1].rstrip())
    return shown == text


def cef_rules(*args):
    p = subprocess.run([str(CEF_RULES), *map(str, args)],
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def chosen_hero(explained):
    """(offer, html) of the hero in `cef-rules explain` output."""
    m = re.search(r"^  hero: (\S+)[^\n]*\n(?:    (.*)\n)?", explained, re.M)
    assert m, explained
    return m.group(1), m.group(2) or ""


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
    rest, reader = [], None
    try:
        deadline = time.monotonic() + 20
        personas = read_personas(proc, deadline)
        # the demo logs every request to its stdout: read it all along, or
        # a full pipe stalls nginx's workers
        reader = threading.Thread(target=lambda: rest.append(
            proc.stdout.read()), daemon=True)
        reader.start()
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
        # what a browser asks for next
        status, headers, body = request("http://127.0.0.1:%d/favicon.ico"
                                        % port)
        assert status == 200 and headers["content-type"] == "image/x-icon"
        assert body[:4] == b"\0\0\1\0"

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

        # the pages come from proxy_cache, each persona sees its own offer:
        # the one README.md's table promises
        seen = {}
        for name in personas:
            seen[name], headers = hero(port, personas[name])
            assert headers["x-cache"] in ("HIT", "MISS", "EXPIRED")
        assert headers["x-cache"] == "HIT"
        for persona, text in readme_personas().items():
            assert shows(seen[DEMO_LABELS.get(persona, persona)], text), \
                (persona, seen)
        assert seen["a known visitor"] != seen["anonymous"]

        # the demo's experiment: README's shoppers on the autumn page, who
        # buy through /checkout/done (the shop's total header stays hidden)
        p = subprocess.run([str(REPO / "examples/demo/shoppers"),
                            str(SHOPPERS)],
                           env={"DEMO_PORT": str(port),
                                "PATH": "/usr/bin:/bin"},
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        shoppers_said = p.stdout
        status, headers, _ = request("http://127.0.0.1:%d/checkout/done"
                                     "?total=10" % port)
        assert status == 200 and "x-order-total" not in headers
    finally:
        proc.send_signal(signal.SIGINT)
        if reader is None:
            rest.append(proc.communicate(timeout=15)[0])
        else:
            proc.wait(timeout=15)
            reader.join(timeout=15)
        out = b"".join(rest).decode(errors="replace")
    assert proc.returncode == 0, out
    assert not re.search(r"\[(error|crit|alert|emerg)\]", out), out
    assert "warning" not in out, out        # cef-sync's permission check
    # the access log (the demo's stdout) never holds the e-mail link token
    token = re.search(r"[?&]cef=([^&\s\"']+)",
                      " ".join(personas["churn-risk 1002"])).group(1)
    assert "cef=" not in out and token not in out, out

    # README's report, verbatim (the shoppers and their draws are seeded)
    logs = [BUILD / "demo/cef_impressions.log", BUILD / "demo/cef_goals.log"]
    p = subprocess.run([str(BUILD / "cef-report"), *logs],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    example = readme_report()
    assert shoppers_said == example[0] + "\n"
    assert p.stdout.startswith("\n".join(example[1:]) + "\n"), p.stdout

    # every shopper exposed once, in the three arms, the purchases counted
    p = subprocess.run([str(BUILD / "cef-report"), "--json", *logs],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    tests = {(t["experiment"], t["goal"], t["metric"]): t
             for t in map(json.loads, p.stdout.splitlines())}
    autumn = tests[("hero-autumn", "purchase", "binomial")]
    assert [a["name"] for a in autumn["arms"]] == ["control", "classic",
                                                    "video"]
    assert sum(a["n"] for a in autumn["arms"]) == SHOPPERS
    assert sum(a["sum"] for a in autumn["arms"]) > 0
    assert autumn["srm_p"] is not None
    assert ("hero-autumn", "purchase", "mean") in tests


@pytest.mark.parametrize("days", [365, 365 + 182])
def test_readme_personas_hold_a_year_from_now(tmp_path, days):
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                        time.gmtime(time.time() + days * 86400))

    # the persona cases, with the clock fixed `days` ahead
    cases = tmp_path / "personas.cases.yaml"
    cases.write_text("now: %s\n" % now + PERSONA_CASES.read_text())
    rc, out = cef_rules("test", WEBSHOP, cases)
    assert rc == 0 and "5 passed, 0 failed" in out, out

    # the README's hero is what the demo's stored profile gets then, and
    # the offer the persona case expects
    secret = write_secret(tmp_path / "store.secret", b"demo-store-secret\n")
    cef_sync("load", "--quiet", "--store", tmp_path / "store", "--secret",
             secret, REPO / "examples/demo/profiles.ndjson")
    for persona, text in readme_personas().items():
        key, new = DEMO_KEYS[persona]
        who = (["--store", tmp_path / "store", "--secret", secret,
                "--key", key] if key else ["--attrs", "{}"])
        rc, out = cef_rules("explain", WEBSHOP, *who, "--set",
                            "visitor.new=%s" % json.dumps(new), "--now", now)
        assert rc == 0, out
        offer, html = chosen_hero(out)
        assert shows(html, text), (persona, now, html, text)
        rc, out = cef_rules("explain", WEBSHOP, "--case", cases, persona)
        assert rc == 0, out
        assert chosen_hero(out)[0] == offer, (persona, out)


@pytest.mark.parametrize("cases", sorted(
    p.name for p in (REPO / "rules/examples").glob("*.cases.yaml")))
def test_every_example_rule_file_passes_its_cases(cases):
    """FILE.cases.yaml and FILE.personas.cases.yaml test FILE.yaml."""
    rules = REPO / "rules/examples" / (cases.split(".", 1)[0] + ".yaml")
    rc, out = cef_rules("check", "--nginx-conf",
                        REPO / "examples/demo/nginx.conf.in", rules)
    assert (rc, out) == (0, "")
    rc, out = cef_rules("test", rules, REPO / "rules/examples" / cases)
    assert rc == 0 and re.search(r"^\d+ passed, 0 failed$", out, re.M), out
