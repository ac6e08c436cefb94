# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""cef_rules: compiled when nginx reads its configuration.

`nginx -t` rejects a broken rule file with the file's own line and column;
a reload with a fixed file takes effect while requests keep succeeding; a
reload with a broken file leaves the running rule set in place.  Which rule
set a location uses is observable through $cef_rules_hash (the SHA-256 of
the rule file).
"""

import hashlib
import os
import pathlib
import re
import signal
import subprocess
import threading
import time

from client import request

REPO = pathlib.Path(__file__).resolve().parents[2]
FIX = REPO / "tests" / "rules"

RULES_V1 = """\
version: 1
offers:
  hello:
    slot: hero
    html: '<p>Hello {{ profile.first_name | default("you") }}</p>'
rules:
  - name: everyone
    show: hello
"""

RULES_V2 = RULES_V1.replace("Hello", "Welcome back")

BROKEN = """\
version: 1
offers:
  hello:
    slot: hero
    html: '<p>Hello</p>'
rules:
  - name: everyone
    when: profile.clv > "abc"
    show: hello
"""

SNIPPET = """
    cef_rules @PREFIX@/rules.yaml;
    server {
        listen 127.0.0.1:@PORT@;
        location / { return 200 "$cef_rules_hash\\n"; }
        location /other {
            cef_rules @PREFIX@/other.yaml;
            return 200 "$cef_rules_hash\\n";
        }
        location /none {
            cef_rules off;
            return 200 "[$cef_rules_hash]\\n";
        }
    }
"""


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


def hup_expecting_failure(inst, timeout=15):
    """SIGHUP with a configuration that does not load: wait for the master
    to log why, keeping the old workers."""
    before = inst.log_text().count("reconfiguring")
    old = set(inst.worker_pids())
    os.kill(inst.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = inst.log_text()
        if log.count("reconfiguring") > before and re.search(
                r"\[emerg\] %d#\d+: cef_rules: " % inst.proc.pid,
                log.split("reconfiguring")[-1]):
            assert set(inst.worker_pids()) == old
            return log
        time.sleep(0.05)
    raise AssertionError("no failed reload in the log:\n" + inst.log_text())


def prepare(nginx, rules=RULES_V1, other=RULES_V2):
    inst = nginx.prepare(SNIPPET)
    (inst.prefix / "rules.yaml").write_text(rules)
    (inst.prefix / "other.yaml").write_text(other)
    return inst


def test_rule_sets_are_compiled_and_inherited(nginx):
    inst = prepare(nginx).start()
    assert request(inst, "/")[::2] == (200, (sha(RULES_V1) + "\n").encode())
    assert request(inst, "/other")[2] == (sha(RULES_V2) + "\n").encode()
    assert request(inst, "/none")[2] == b"[]\n"


def test_config_test_rejects_a_broken_file_with_its_position(nginx):
    inst = prepare(nginx, rules=BROKEN)
    rc, out = inst.test_config()
    inst.expect_bad_log = True
    assert rc != 0
    path = inst.prefix / "rules.yaml"
    assert re.search(r"\[emerg\].*cef_rules: %s:8:25: in when: type error: "
                     r"'>' needs numbers, not a string in .*nginx\.conf:\d+"
                     % re.escape(str(path)), out), out


def test_config_test_reports_every_problem(nginx):
    inst = nginx.prepare(SNIPPET.replace("@PREFIX@/rules.yaml",
                                         str(FIX / "broken.yaml")))
    (inst.prefix / "other.yaml").write_text(RULES_V1)
    inst.expect_bad_log = True
    rc, out = inst.test_config()
    assert rc != 0
    f = re.escape(str(FIX / "broken.yaml"))
    for where in ("7:5: unknown key 'slott'", "14:11: rule 'typo' shows "
                  "unknown offer 'gold-perk' \\(did you mean 'gold-perks'",
                  "16:11: duplicate rule name", "17:32: in when: invalid "
                  "regex"):
        assert re.search(f + ":" + where, out), out


def test_missing_file_and_unknown_variable(nginx):
    inst = nginx.prepare(SNIPPET)
    (inst.prefix / "other.yaml").write_text(RULES_V1)
    inst.expect_bad_log = True
    rc, out = inst.test_config()
    assert rc != 0
    assert re.search(r"cef_rules: .*rules\.yaml: cannot open: No such file",
                     out), out

    inst = prepare(nginx, rules=RULES_V1.replace(
        "    show: hello", "    when: var.no_such_variable == \"x\"\n"
        "    show: hello"))
    inst.expect_bad_log = True
    rc, out = inst.test_config()
    assert rc != 0
    path = re.escape(str(inst.prefix / "rules.yaml"))
    assert re.search(r"\[emerg\].*cef_rules: %s:8:11: unknown nginx "
                     r'variable "no_such_variable"' % path, out), out
    assert 'unknown "no_such_variable" variable' not in out, out


UNKNOWN_VARS = """\
version: 1
offers:
  a:
    slot: hero
    html: '<p>{{ var.later }} {{ var.NoSuchThing | default("x") }}</p>'
rules:
  - name: one
    when: var.later == "x" or var.arg_q == "y" or var.http_x_a == "z"
    show: a
  - name: two
    when: >-
      var.host == "h" and var.also_missing != ""
    show: a
"""


def test_unknown_variables_are_reported_at_their_position(nginx):
    """Every var.NAME that no nginx variable (defined anywhere in the
    configuration, or a prefix variable such as $arg_*) answers is
    reported at its first use: FILE:LINE:COL, as load errors."""
    inst = nginx.prepare("""
        cef_rules @PREFIX@/vars.yaml;
        server {
            listen 127.0.0.1:@PORT@;
            location / { return 200 "$cef_rules_offers\\n"; }
        }
        map $http_x_later $later { default ""; ~(.+) $1; }
    """)
    (inst.prefix / "vars.yaml").write_text(UNKNOWN_VARS)
    inst.expect_bad_log = True
    rc, out = inst.test_config()
    assert rc != 0
    path = re.escape(str(inst.prefix / "vars.yaml"))
    found = re.findall(r"cef_rules: %s:(\d+):(\d+): unknown nginx variable "
                       r'"([^"]+)"' % path, out)
    # var.later is defined by the map that follows; arg_ and http_ are
    # prefix variables; host is nginx's own; a folded scalar's position
    # is its start (docs/rules.md)
    assert sorted(found) == [("11", "11", "also_missing"),
                             ("5", "34", "nosuchthing")], out


def test_variables_defined_after_the_rules_are_found(nginx):
    """A map later in the configuration than cef_rules defines var.later
    in time: it is not reported and answers at request time."""
    inst = nginx.prepare("""
        cef_rules @PREFIX@/vars.yaml;
        server {
            listen 127.0.0.1:@PORT@;
            location / { return 200 "$cef_rules_offers\\n"; }
        }
        map $http_x_later $later { default ""; ~(.+) $1; }
    """)
    (inst.prefix / "vars.yaml").write_text("""\
version: 1
offers:
  a: {slot: hero, html: A}
rules:
  - {name: one, when: var.later == "x" and var.arg_q == "y", show: a}
""")
    inst.start()
    assert request(inst, "/?q=y", headers={"X-Later": "x"})[2] == \
        b"hero=a\n"
    assert request(inst, "/?q=y", headers={"X-Later": "no"})[2] == \
        b"hero=-\n"


def test_directive_is_checked(nginx):
    rc, out = nginx.check("""
        server {
            listen 127.0.0.1:@PORT@;
            location / { cef_rules off; cef_rules off; }
        }
    """)
    assert rc != 0
    assert '"cef_rules" directive is duplicate' in out, out

    rc, out = nginx.check("cef_rules;")
    assert rc != 0
    assert 'invalid number of arguments in "cef_rules"' in out, out


def test_reload_applies_a_fixed_file_while_serving(nginx):
    inst = prepare(nginx).start()
    rules = inst.prefix / "rules.yaml"
    assert request(inst, "/")[2] == (sha(RULES_V1) + "\n").encode()

    statuses = []
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            statuses.append(request(inst, "/")[0])

    t = threading.Thread(target=hammer)
    t.start()
    try:
        # a broken deploy: nginx -t says where, a reload keeps the old set
        rules.write_text(BROKEN)
        rc, out = inst.test_config()
        assert rc != 0 and "rules.yaml:8:25:" in out, out
        inst.expect_bad_log = True
        log = hup_expecting_failure(inst)
        assert "rules.yaml:8:25: in when: type error" in log
        assert request(inst, "/")[2] == (sha(RULES_V1) + "\n").encode()

        # the fix
        rules.write_text(RULES_V2)
        rc, out = inst.test_config()
        assert rc == 0, out
        inst.reload()
        assert request(inst, "/")[2] == (sha(RULES_V2) + "\n").encode()
    finally:
        stop.set()
        t.join()

    assert len(statuses) > 10
    assert set(statuses) == {200}


OFFERS_RULES = """\
version: 1
offers:
  winter: {slot: hero, html: W}
  back: {slot: hero, html: B}
  dach: {slot: topbar, html: D}
  intl: {slot: topbar, html: I}
  cart: {slot: side, html: C}
  mobile: {slot: side, html: M}
rules:
  - name: campaign landing
    when: request.arg.utm_campaign == "winter-sale"
    show: winter
    priority: 10
  - name: returning, by cookie
    when: request.cookie.seen == "1" and request.method == "GET"
    show: back
    priority: 5
  - name: dach
    when: var.geo_country in ["DE", "AT", "CH"]
    show: dach
  - name: international
    when: var.geo_country != ""
    show: intl
    priority: -1
  - name: cart pages
    when: request.path starts_with "/cart" and request.host == "shop.test"
    show: cart
    priority: 3
  - name: phones
    when: lower(request.header.user-agent) contains "mobile"
    show: mobile
  - name: no profile without a store
    when: profile.clv > 0 or visitor.new
    show: [winter, dach, cart]
    priority: 100
"""


def test_request_inputs_reach_the_rules(nginx):
    """$cef_rules_offers decides from the request alone: request.*, var.*
    (a map here) and time.*, with profile.* and visitor.* null."""
    inst = nginx.prepare("""
        map $http_x_country $geo_country {
            default "";
            ~^([A-Z][A-Z])$ $1;
        }
        server {
            listen 127.0.0.1:@PORT@;
            cef_rules @PREFIX@/offers.yaml;
            location / { return 200 "$cef_rules_offers\\n"; }
        }
    """)
    (inst.prefix / "offers.yaml").write_text(OFFERS_RULES)
    inst.start()

    def offers(path, **headers):
        status, _, body = request(inst, path, headers=headers)
        assert status == 200
        return body.decode().strip()

    assert offers("/") == "hero=- topbar=- side=-"
    assert offers("/?utm_campaign=winter-sale") == "hero=winter topbar=- side=-"
    assert offers("/?x=1&utm_campaign=winter-salex") == "hero=- topbar=- side=-"
    assert offers("/", Cookie="a=b; seen=1") == "hero=back topbar=- side=-"
    assert offers("/", **{"X-Country": "DE"}) == "hero=- topbar=dach side=-"
    assert offers("/", **{"X-Country": "FR"}) == "hero=- topbar=intl side=-"
    assert offers("/cart/1", Host="shop.test") == "hero=- topbar=- side=cart"
    assert offers("/cart/1", Host="other.test") == "hero=- topbar=- side=-"
    assert offers("/cart", Host="shop.test",
                  **{"User-Agent": "X (Mobile)"}) == \
        "hero=- topbar=- side=cart"
    assert offers("/", **{"User-Agent": "Foo MOBILE"}) == \
        "hero=- topbar=- side=mobile"
    assert offers("/?utm_campaign=winter-sale", Cookie="seen=1",
                  **{"X-Country": "AT", "User-Agent": "mobile"}) == \
        "hero=winter topbar=dach side=mobile"


def test_offers_are_rendered_escaped(nginx):
    inst = nginx.prepare("""
        server {
            listen 127.0.0.1:@PORT@;
            cef_rules @PREFIX@/html.yaml;
            location / { return 200 "$cef_rules_html"; }
        }
    """)
    (inst.prefix / "html.yaml").write_text("""\
version: 1
offers:
  hello:
    slot: hero
    html: '<p class="x">Hi {{ request.header.x-name | default("you & me") }}, {{ profile.first_name | default("<friend>") }}</p>'
  side:
    slot: side
    html: '<aside>{{ request.arg.utm_campaign }}</aside>'
rules:
  - name: everyone
    show: hello
  - name: campaigns
    when: request.arg.utm_campaign != null
    show: side
""")
    inst.start()

    assert request(inst, "/")[2] == \
        b'hero: <p class="x">Hi you &amp; me, &lt;friend&gt;</p>\n'
    body = request(inst, "/?utm_campaign=a'b",
                   headers={"X-Name": '<Ann & "Bob">'})[2]
    assert body == (b'hero: <p class="x">Hi &lt;Ann &amp; &quot;Bob&quot;'
                    b'&gt;, &lt;friend&gt;</p>\n'
                    b"side: <aside>a&#39;b</aside>\n")


def test_a_rule_depending_on_its_own_decision_is_cut_off(nginx):
    inst = nginx.prepare("""
        map $cef_rules_offers $loop {
            default $cef_rules_offers;
        }
        server {
            listen 127.0.0.1:@PORT@;
            cef_rules @PREFIX@/loop.yaml;
            location / { return 200 "$cef_rules_offers\\n"; }
        }
    """)
    (inst.prefix / "loop.yaml").write_text("""\
version: 1
offers:
  a: {slot: hero, html: A}
  b: {slot: hero, html: B}
rules:
  - name: loop
    when: var.loop == "hero=a"
    show: a
    priority: 1
  - name: fallback
    show: b
""")
    inst.start()
    assert request(inst, "/")[::2] == (200, b"hero=b\n")
    assert "a rule depends on its own decision" in inst.log_text()


# --- issue 16: the whole truth ----------------------------------------------

def test_a_fifo_as_rule_path_is_refused_at_once(nginx):
    """Opening a FIFO waits for a writer: nginx -t (and a reloading
    master) hung on it."""
    inst = nginx.prepare(SNIPPET)
    os.mkfifo(inst.prefix / "rules.yaml")
    (inst.prefix / "other.yaml").write_text(RULES_V1)
    inst.expect_bad_log = True
    rc, out = inst.test_config()
    assert rc != 0
    assert re.search(r"\[emerg\].*cef_rules: %s: not a regular file"
                     % re.escape(str(inst.prefix / "rules.yaml")), out), out


def test_config_test_reports_offer_and_plugin_problems_together(nginx):
    inst = prepare(nginx, rules="""\
version: 1
offers:
  a: {slot: hero, html: A, campaign: c, starts: 2026-12-01, ends: 2026-11-01}
rules:
  - {name: r, show: a}
slots:
  hero: {holdout: 120%}
plugins:
  freqcap: {caps: [{campaign: nosuch, max: 3, per: 7d}]}
""")
    inst.expect_bad_log = True
    rc, out = inst.test_config()
    assert rc != 0
    f = re.escape(str(inst.prefix / "rules.yaml"))
    for where in ("3:67: offer 'a' ends before it starts",
                  "7:19: experiment: holdout must be a percentage",
                  "9:31: freqcap: no offer has campaign 'nosuch'"):
        assert re.search(f + ":" + where, out), out


def test_cef_rules_check_agrees_with_nginx_on_variables(nginx):
    """cef-rules check --nginx-conf reads what nginx -t knows: the same
    var.NAMEs pass and fail, with the same message."""
    tool = REPO / "build" / "cef-rules"
    snippet = """
        cef_rules @PREFIX@/vars.yaml;
        map $http_x_tier $tier { default ""; ~(?<lvl>gold|silver) $lvl; }
        server {
            listen 127.0.0.1:@PORT@;
            location ~ ^/p/(?<sku>\\d+)$ { set $shelf "a"; return 200; }
            location / { return 200 "$cef_rules_offers\\n"; }
        }
    """
    good = """\
version: 1
offers:
  a: {slot: hero, html: '{{ var.sku }} {{ var.host }} {{ var.cookie_x }}'}
rules:
  - {name: r, when: var.tier == "gold" and var.LVL != "" and var.shelf != "", show: a}
"""
    for rules, ok in ((good, True),
                      (good.replace("var.shelf", "var.shelves"), False)):
        inst = nginx.prepare(snippet)
        (inst.prefix / "vars.yaml").write_text(rules)
        inst.expect_bad_log = not ok
        rc, out = inst.test_config()
        p = subprocess.run([str(tool), "check", "--nginx-conf",
                            str(inst.conf), str(inst.prefix / "vars.yaml")],
                           capture_output=True, text=True, timeout=60)
        assert (rc == 0) == ok == (p.returncode == 0), (out, p.stdout)
        if not ok:
            line = p.stdout.strip()
            assert line.endswith('unknown nginx variable "shelves"'), line
            assert "cef_rules: " + line in out, out
