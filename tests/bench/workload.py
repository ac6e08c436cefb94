# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""The workload of `make bench`: the shop page, the generated rule files
(YAML for the module, the same rules as a Lua table for the OpenResty-style
server), and the nginx configuration of the servers.

The rules read only profile attributes that `cef-bench snapshot` writes
(tests/bench/cef_bench.c): segments, clv, churn_risk, orders, lifecycle,
first_name, interests.  Priorities fall in file order, so the module and
the Lua server try the rules in the same order and must pick the same
offers for the same visitor (the harness checks that on a sample).
"""

import random

SLOTS = ["hero", "sidebar", "banner"]
DEFAULTS = {"hero": "<h1>Autumn collection</h1>",
            "sidebar": "<p>Browse our bestsellers</p>",
            "banner": "<p>Free returns within 30 days</p>"}
# sub_filter's three fixed substitutions
SUBSTITUTIONS = {"hero": '<div class="fixed-offer">Free shipping over '
                         '50 EUR</div>',
                 "sidebar": '<div class="fixed-offer">New: rain jackets'
                            '</div>',
                 "banner": '<div class="fixed-offer">Members save 5%'
                           '</div>'}

# must match tests/bench/cef_bench.c
SEGS = ["vip", "newsletter", "cart_abandoner", "high_value", "mobile_app",
        "sports_fan", "bargain_hunter", "new_customer", "loyalty_gold",
        "loyalty_silver", "outdoor", "tech_enthusiast", "parent", "student",
        "frequent_buyer", "weekend_shopper", "email_engaged", "sms_engaged",
        "premium_brand", "lapsed_buyer"]
CATS = ["sports", "outdoor", "books", "electronics", "fashion", "home",
        "garden", "toys", "beauty", "music", "travel", "food"]
STAGES = ["new", "active", "at_risk", "lapsed", "vip"]

PAGE_SIZE = 12 * 1024


def strip_markers(page):
    """The page as the module sends it when every slot keeps its default."""
    out = page
    for s in SLOTS:
        out = out.replace("<!--cef:slot %s-->" % s, "", 1)
    return out.replace("<!--/cef:slot-->", "")


def make_page(size=PAGE_SIZE):
    """A shop page of size bytes (12 KB by default) with 3 slots, near the
    top, in the middle and near the end (deterministic)."""
    head = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>Outdoor shop</title>\n"
            "<link rel=\"stylesheet\" href=\"/shop.css\"></head>\n<body>\n"
            "<header><nav><a href=\"/\">Home</a> <a href=\"/men\">Men</a> "
            "<a href=\"/women\">Women</a> <a href=\"/sale\">Sale</a></nav>"
            "</header>\n"
            "<!--cef:slot banner-->%s<!--/cef:slot-->\n"
            "<main>\n<!--cef:slot hero-->%s<!--/cef:slot-->\n"
            "<section class=\"products\">\n"
            % (DEFAULTS["banner"], DEFAULTS["hero"]))
    tail = ("</section>\n<aside><!--cef:slot sidebar-->%s<!--/cef:slot-->"
            "</aside>\n</main>\n<footer><p>Outdoor shop GmbH</p></footer>\n"
            "</body></html>\n" % DEFAULTS["sidebar"])
    rng = random.Random(12)
    items = []
    used = len(head) + len(tail)
    i = 0
    while True:
        item = ("<article class=\"product\" data-sku=\"SKU-%05d\"><a href="
                "\"/products/%d.html\"><img src=\"/img/%d.jpg\" alt=\"\" "
                "loading=\"lazy\"><h3>%s %s</h3></a><p class=\"price\">"
                "%d.%02d EUR</p></article>\n"
                % (i, i, i, rng.choice(["Trail", "Summit", "Alpine",
                                        "Coastal", "Forest"]),
                   rng.choice(["boots", "jacket", "backpack", "tent",
                               "gloves"]), rng.randrange(20, 400),
                   rng.randrange(100)))
        if used + len(item) > size:
            break
        items.append(item)
        used += len(item)
        i += 1
    page = head + "".join(items) + tail
    page = page.replace("</footer>", " " * (size - len(page))
                        + "</footer>", 1)
    assert len(page) == size
    return page


def _condition(rng):
    """(YAML expression, Lua table literal) of a rule condition that a few
    per cent of the reference profiles match."""
    kind = rng.randrange(5)
    if kind == 0:
        x = rng.randrange(4500, 4990)
        return ("profile.clv > %d" % x, '{k="gt", n=%d}' % x)
    if kind == 1:
        a, b = rng.sample(SEGS, 2)
        return ("'\"%s\" in profile.segments and \"%s\" in "
                "profile.segments'" % (a, b),
                '{k="seg2", a="%s", b="%s"}' % (a, b))
    if kind == 2:
        c = rng.choice(CATS)
        t = rng.randrange(80, 100) / 100
        return ("profile.interests.%s >= %.2f" % (c, t),
                '{k="int2", a="%s", n=%.2f}' % (c, t))
    if kind == 3:
        s = rng.choice(STAGES)
        t = rng.randrange(80, 96) / 100
        return ("profile.lifecycle == \"%s\" and profile.churn_risk >= %.2f"
                % (s, t), '{k="life2", a="%s", n=%.2f}' % (s, t))
    n = rng.randrange(50, 60)
    s = rng.choice(SEGS)
    return ("'profile.orders >= %d and \"%s\" in profile.segments'" % (n, s),
            '{k="orders2", a="%s", n=%d}' % (s, n))


def _realistic_one(rng, kind):
    """(YAML, Lua) of one condition of the issue-22 mix; kind 0: segment
    membership, 1: lifecycle equality, 2: a numeric threshold, 3: a map
    lookup."""
    if kind == 0:
        a = rng.choice(SEGS)
        return '"%s" in profile.segments' % a, '{k="seg", a="%s"}' % a
    if kind == 1:
        a = rng.choice(STAGES)
        return 'profile.lifecycle == "%s"' % a, '{k="life", a="%s"}' % a
    if kind == 2:
        t = rng.randrange(4)
        if t == 0:
            n = 500 * rng.randrange(1, 9)
            return "profile.clv >= %d" % n, '{k="clv", n=%d}' % n
        if t == 1:
            n = rng.randrange(5, 40)
            return "profile.orders > %d" % n, '{k="orders", n=%d}' % n
        if t == 2:
            n = rng.randrange(30, 90) / 100
            return ("profile.churn_risk >= %.2f" % n,
                    '{k="churn", n=%.2f}' % n)
        n = rng.randrange(3, 9)
        return "profile.nps <= %d" % n, '{k="nps", n=%d}' % n
    c = rng.choice(CATS)
    n = rng.randrange(30, 90) / 100
    return ("profile.interests.%s >= %.2f" % (c, n),
            '{k="int", a="%s", n=%.2f}' % (c, n))


def _realistic(rng):
    """(YAML expression, Lua list) of a rule of the issue-22 mix: a segment
    (70 %) or a lifecycle stage, and one or two more conditions of any of
    the four kinds; a few per cent of the reference profiles match."""
    parts = [_realistic_one(rng, 0 if rng.random() < 0.7 else 1)]
    for _ in range(rng.randrange(1, 3)):
        parts.append(_realistic_one(rng, rng.randrange(4)))
    return ("'%s'" % " and ".join(y for y, _ in parts),
            "{%s}" % ", ".join(lua for _, lua in parts))


def offer_html(k):
    """(template for the module, Lua pre, Lua post or None)."""
    pre = '<div class="cef-offer" data-offer="o%d">' % k
    if k % 2 == 0:
        return (pre + 'Hi {{ profile.first_name | default("friend") }}, '
                'offer %d is yours</div>' % k,
                pre + "Hi ", ", offer %d is yours</div>" % k)
    return pre + "Offer %d: 10%% off today</div>" % k, \
        pre + "Offer %d: 10%% off today</div>" % k, None


def make_rules(nrules, plugins_yaml="", campaigns=False, mix="realistic"):
    """A rule file of nrules rules over the 3 slots (the last three are
    per-slot fallbacks every profile matches), and the same as Lua.

    mix "realistic" (issue 22): each rule is two or three conditions, a
    segment or a lifecycle stage first, then thresholds, interests,
    segments, stages; mix "classic": the one- or two-condition rules of
    issue 9 (the figures of bench runs before issue 22)."""
    rng = random.Random(nrules)
    offers, rules, lua = [], [], []
    nspecific = max(nrules - len(SLOTS), 0)
    for k in range(nrules):
        slot = SLOTS[k % len(SLOTS)]
        html, pre, post = offer_html(k)
        offers.append("  o%d:\n    slot: %s\n    html: '%s'\n%s"
                      % (k, slot, html, "    campaign: c%d\n" % (k % 5)
                         if campaigns else ""))
        if k < nspecific and mix == "classic":
            when, cond = _condition(rng)
            cond = "{%s}" % cond
        elif k < nspecific:
            when, cond = _realistic(rng)
        else:
            when, cond = "profile.clv >= 0", '{{k="any"}}'
        rules.append("  - name: rule %d\n    when: %s\n    show: o%d\n"
                     "    priority: %d\n" % (k, when, k, nrules - k))
        lua.append('  {slot="%s", offer="o%d", c=%s, pre=%s, post=%s},'
                   % (slot, k, cond, _lua_str(pre),
                      _lua_str(post) if post else "nil"))
    yaml = ("version: 1\n%soffers:\n%srules:\n%s"
            % (plugins_yaml, "".join(offers), "".join(rules)))
    return yaml, "return {\n%s\n}\n" % "\n".join(lua)


def _lua_str(s):
    return "[==[%s]==]" % s


CONF = """
load_module %(module)s;
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
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

    lua_package_path "%(lua_dir)s/?.lua;;";
    lua_shared_dict cef_profiles %(dict_mb)dm;
    init_by_lua_block {
        require("cefbench").init("%(profiles_tsv)s", "%(work)s/rules.lua")
    }

    # 1: plain static, the ceiling
    server {
        listen 127.0.0.1:%(port1)d;
        root %(work)s/html;
    }

    # 6 (a reference, not one of the issue's five): plain static without
    #   sendfile, the ceiling of any server that rewrites the body (a body
    #   filter needs the file in memory, which turns sendfile off)
    server {
        listen 127.0.0.1:%(port6)d;
        root %(work)s/html;
        sendfile off;
    }

    # 2: sub_filter with 3 fixed substitutions, in its best form: with
    #    sendfile on, nginx's sub_filter sends the unchanged stretches of
    #    the file with sendfile(2) between writev(2)s of the substitutions
    #    (14 system calls per response instead of 4) and stalls ~40 ms per
    #    response on pages over 32 KB (docs/bench.md, make bench-peers)
    server {
        listen 127.0.0.1:%(port2)d;
        root %(work)s/html;
        location / {
%(sub_filters)s
            sub_filter_once on;
            sendfile off;
        }
    }

    # 3: OpenResty-style Lua: cookie -> lua_shared_dict profile -> offers
    #    -> ngx.re.gsub on the body
    server {
        listen 127.0.0.1:%(port3)d;
        root %(work)s/html;
        location / {
            access_by_lua_block { require("cefbench").decide() }
            header_filter_by_lua_block { require("cefbench").header() }
            body_filter_by_lua_block { require("cefbench").body() }
        }
    }

    # 7 (a reference): sub_filter with a pattern that never matches: what
    #   any body filter costs (the page in memory, chunked output) plus
    #   sub_filter's scan of every byte; sendfile off, as server 2 and 6
    server {
        listen 127.0.0.1:%(port7)d;
        root %(work)s/html;
        location / {
            sub_filter '<!--never-in-the-page-->' 'x';
            sendfile off;
        }
    }

    # 8 (a reference): the module's body filter alone: cef on without rules
    #   or identity keys, so the slots get their defaults; the scanner, the
    #   output buffers and chunked encoding without a decision
    server {
        listen 127.0.0.1:%(port8)d;
        root %(work)s/html;
        location / {
            cef on;
        }
    }

    # 4: the module configured as in 5, but cef off
    server {
        listen 127.0.0.1:%(port4)d;
        root %(work)s/html;
%(cef_server)s
        location / {
            cef off;
        }
    }

    # 5: the module personalising
    server {
        listen 127.0.0.1:%(port5)d;
        root %(work)s/html;
%(cef_server)s
        location / {
            cef on;
        }
    }
}
"""

CEF_SERVER = """        cef_rules %(rules)s;
        cef_signing_secret %(signing)s;
        cef_key customer $cookie_c signed;
        cef_visitor_cookie vid;
"""


def nginx_conf(**kw):
    kw["sub_filters"] = "\n".join(
        "            sub_filter '%s' '%s';" % (DEFAULTS[s], SUBSTITUTIONS[s])
        for s in SLOTS)
    kw["cef_server"] = CEF_SERVER % kw
    return CONF % kw
