# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""Visitor recognition: keys, signatures, link tokens, consent, variables,
and the store coming and going under a running nginx."""

import base64
import concurrent.futures
import json
import re
import threading
import time

import pytest

from cef_fixtures import (KNOWN_VISITOR, PROFILES, b64url, legacy_link_token,
                          legacy_signed, link_token, load_store,
                          sign, signed, state_cookie, write_secret)
from client import request

SIGN_NEW = b"signing-secret-new"
SIGN_OLD = b"signing-secret-old"
STORE_SECRET = b"store-secret-0123456789"

SHOW = ("v=$cef_visitor new=$cef_visitor_new p=$cef_profile k=$cef_key_type "
        "c=$cef_consent name=$cef_attr_first_name seg=$cef_attr_segments "
        "clv=$cef_attr_clv churn=$cef_attr_churn_risk "
        "int=$cef_attr_interests missing=[$cef_attr_nope]\\n")

CONF = """
    cef_store @PREFIX@/store;
    cef_store_secret @PREFIX@/store.secret;
    log_format cef '$arg_n|$cef_profile|$cef_key_type|$cef_attr_lifecycle';

    server {
        listen 127.0.0.1:@PORT@;
        access_log @PREFIX@/cef.log cef;

        cef_signing_secret @PREFIX@/signing.secret;
        cef_visitor_cookie cef_vid max_age=30d httponly samesite=strict;
        cef_key customer $cookie_shop_customer signed;
        cef_key device $http_x_device_id;
        cef_link_token $arg_cef_t;

        location / {
            return 200 "%(show)s";
        }
        location /consent/ {
            cef_consent $cookie_consent;
            return 200 "%(show)s";
        }
        location /page.html {
            root @PREFIX@/html;
            cef on;
        }
        location /ssi.html {
            root @PREFIX@/html;
            ssi on;
            cef on;
        }
        location = /who {
            return 200 "[$cef_visitor|$cef_profile]";
        }
    }
""" % {"show": SHOW}


def fields(body):
    return dict(re.findall(r"(\w+)=(\[[^\]]*\]|\S*)", body.decode()))


def set_cookies(headers):
    return [c for c in headers.get("set-cookie", "").split("\n") if c]


@pytest.fixture
def shop(nginx):
    inst = nginx.prepare(CONF)
    write_secret(inst.prefix / "store.secret", STORE_SECRET + b"\n")
    write_secret(inst.prefix / "signing.secret", SIGN_NEW + b"\n" + SIGN_OLD
                 + b"\n")
    (inst.prefix / "html" / "page.html").write_bytes(b"<p>hi</p>")
    (inst.prefix / "html" / "ssi.html").write_bytes(
        b'<!--# include virtual="/who" -->'
        b'<!--# echo var="cef_visitor" -->'
        b'<!--# include virtual="/who" -->')
    load_store(inst.prefix / "store", inst.prefix / "store.secret")
    return inst.start()


def get(inst, path="/", cookies=None, headers=None):
    h = dict(headers or {})
    if cookies:
        h["Cookie"] = "; ".join("%s=%s" % kv for kv in cookies.items())
    return request(inst, path, headers=h)


def test_anonymous_visitor_gets_a_cookie(shop):
    status, headers, body = get(shop)
    f = fields(body)
    assert status == 200
    assert f["new"] == "1" and f["p"] == "" and f["k"] == "" and f["c"] == "1"
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", f["v"])
    (cookie,) = set_cookies(headers)
    assert cookie == ("cef_vid=%s; Max-Age=2592000; Path=/; HttpOnly; "
                      "SameSite=Strict" % f["v"])

    # the id it was given is accepted back, and no new cookie is set
    status, headers, body = get(shop, cookies={"cef_vid": f["v"]})
    assert fields(body)["v"] == f["v"] and fields(body)["new"] == "0"
    assert set_cookies(headers) == []


def test_two_anonymous_visitors_get_different_ids(shop):
    ids = {fields(get(shop)[2])["v"] for _ in range(20)}
    assert len(ids) == 20


@pytest.mark.parametrize("bad", ["short", "A" * 21 + "B", "A" * 23,
                                 "A" * 20 + "+Q", "%00" * 22])
def test_malformed_visitor_id_is_replaced(shop, bad):
    status, headers, body = get(shop, cookies={"cef_vid": bad})
    f = fields(body)
    assert status == 200 and f["new"] == "1" and f["v"] != bad
    assert len(set_cookies(headers)) == 1


def test_known_visitor_cookie_finds_its_profile(shop):
    f = fields(get(shop, cookies={"cef_vid": KNOWN_VISITOR})[2])
    assert (f["p"], f["k"], f["new"], f["name"]) == \
        ("p-visitor", "visitor", "0", "Vic")


def test_signed_customer_key_and_attribute_rendering(shop):
    f = fields(get(shop, cookies={
        "shop_customer": signed(SIGN_NEW, "customer", "1001")})[2])
    assert (f["p"], f["k"], f["name"]) == ("p-gold", "customer", "Greta")
    assert f["seg"] == "gold,newsletter,outdoor"
    assert f["clv"] == "1234"
    assert float(f["churn"]) == pytest.approx(0.1)
    assert sorted(f["int"].split(",")) == ["jackets:0.25", "shoes:0.8"]
    assert f["missing"] == "[]"


@pytest.mark.parametrize("value", [
    "1001",                                                  # unsigned
    "1001." + "A" * 22,                                      # wrong sig
    "1002." + sign(SIGN_NEW, "customer", "1001"),            # other value
    "1001." + sign(SIGN_NEW, "device", "1001"),              # other type
    "1001." + sign(b"removed-secret", "customer", "1001"),   # removed secret
    "1001." + sign(SIGN_NEW, "customer", "1001")[:-1],       # truncated
    "1001.." + sign(SIGN_NEW, "customer", "1001"),
])
def test_forged_signed_keys_are_ignored(shop, value):
    f = fields(get(shop, cookies={"shop_customer": value})[2])
    assert f["p"] == "" and f["name"] == ""


def test_a_rejected_key_is_not_logged(shop):
    # the value may be an address: the info line names the key, not it
    for value in ("greta@example.com." + "A" * 22,
                  "greta@example.com." + sign(b"other", "customer", "x")):
        f = fields(get(shop, cookies={"shop_customer": value})[2])
        assert f["p"] == ""
    log = shop.log_text()
    assert 'invalid signed "customer" key' in log
    assert "greta@" not in log


def test_retired_secret_still_in_the_file_verifies(shop):
    f = fields(get(shop, cookies={
        "shop_customer": signed(SIGN_OLD, "customer", "1002")})[2])
    assert (f["p"], f["k"]) == ("p-churn", "customer")


def test_keys_are_tried_in_the_order_written(shop):
    both = {"shop_customer": signed(SIGN_NEW, "customer", "1001"),
            "cef_vid": KNOWN_VISITOR}
    f = fields(get(shop, cookies=both, headers={"X-Device-Id": "dev-42"})[2])
    assert (f["p"], f["k"]) == ("p-gold", "customer")

    # a customer key without a profile falls through to the next key
    nobody = {"shop_customer": signed(SIGN_NEW, "customer", "9999"),
              "cef_vid": KNOWN_VISITOR}
    f = fields(get(shop, cookies=nobody, headers={"X-Device-Id": "dev-42"})[2])
    assert (f["p"], f["k"]) == ("p-device", "device")

    # the visitor cookie comes last
    f = fields(get(shop, cookies=nobody)[2])
    assert (f["p"], f["k"]) == ("p-visitor", "visitor")


def test_link_token_identifies_and_sets_a_cookie(shop):
    token = link_token(SIGN_NEW, STORE_SECRET, "email", "greta@example.com",
                       int(time.time()) + 3600)
    status, headers, body = get(shop, "/?cef_t=" + token)
    f = fields(body)
    assert (f["p"], f["k"]) == ("p-gold", "email")
    link = [c for c in set_cookies(headers) if c.startswith("cef_id=")]
    assert len(link) == 1
    assert "Max-Age=2592000" in link[0]
    value = link[0].split(";")[0][len("cef_id="):]

    # the cookie alone recognises the following requests
    f = fields(get(shop, cookies={"cef_id": value})[2])
    assert (f["p"], f["k"]) == ("p-gold", "email")


@pytest.mark.parametrize("token", [
    link_token(SIGN_NEW, STORE_SECRET, "email", "greta@example.com",
               int(time.time()) - 5),
    link_token(b"other", STORE_SECRET, "email", "greta@example.com",
               4102444800),
    link_token(SIGN_NEW, STORE_SECRET, "email", "greta@example.com",
               4102444800)[:-2] + "AA",
    # the format before 2.0 carried the address: no longer accepted
    legacy_link_token(SIGN_NEW, "email", "greta@example.com", 4102444800),
    "garbage", "%ff%fe.%00",
])
def test_expired_or_tampered_link_tokens_are_ignored(shop, token):
    status, headers, body = get(shop, "/?cef_t=" + token)
    assert status == 200
    assert fields(body)["p"] == ""
    assert not [c for c in set_cookies(headers) if c.startswith("cef_id=")]


def test_consent_withheld_means_no_lookup_and_no_cookie(shop):
    key = signed(SIGN_NEW, "customer", "1001")
    for consent in ("0", "no", "false", ""):
        cookies = {"shop_customer": key, "consent": consent}
        status, headers, body = get(shop, "/consent/", cookies=cookies)
        f = fields(body)
        assert (f["c"], f["p"], f["v"], f["name"]) == ("0", "", "", ""), \
            consent
        assert set_cookies(headers) == []

    status, headers, body = get(shop, "/consent/", cookies={
        "shop_customer": key, "consent": "yes"})
    f = fields(body)
    assert (f["c"], f["p"]) == ("1", "p-gold")
    assert len(set_cookies(headers)) == 1


def test_variables_in_the_access_log(shop):
    get(shop, "/?n=1",
        cookies={"shop_customer": signed(SIGN_NEW, "customer", "1001")})
    get(shop, "/?n=2", cookies={"cef_vid": KNOWN_VISITOR})
    get(shop, "/?n=3")
    # two workers write the log: lines may land in any order
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [l for l in (shop.prefix / "cef.log").read_text().splitlines()
                 if l[:1] in "123"]
        if len(lines) >= 3:
            break
        time.sleep(0.05)
    assert sorted(lines) == ["1|p-gold|customer|loyal",
                             "2|p-visitor|visitor|prospect", "3|||"]


def test_personalised_page_sets_the_visitor_cookie(shop):
    status, headers, body = get(shop, "/page.html")
    assert (status, body) == (200, b"<p>hi</p>")
    (cookie,) = set_cookies(headers)
    assert cookie.startswith("cef_vid=")


def test_subrequests_share_the_main_request_identity(shop):
    status, headers, body = get(shop, "/ssi.html")
    (cookie,) = set_cookies(headers)
    vid = cookie.split(";")[0][len("cef_vid="):]
    assert body.decode() == "[%s|]%s[%s|]" % (vid, vid, vid)

    key = signed(SIGN_NEW, "customer", "1001")
    status, headers, body = get(shop, "/ssi.html",
                                cookies={"shop_customer": key})
    assert body.decode().count("|p-gold]") == 2


@pytest.mark.parametrize("cookie", [
    "shop_customer=" + "x" * 6000,
    "; ".join("c%d=%d" % (i, i) for i in range(700)),
    "shop_customer=%00%01%ff.\xff\xfe; cef_vid=\xff\x01\x7f",
    "shop_customer=" + "\xc3\x28" * 40 + "." + "\xff" * 22,
    "cef_id=" + "A" * 3000 + "." + "B" * 22,
])
def test_hostile_cookies_are_anonymous(shop, cookie):
    status, headers, body = request(shop, "/", headers={"Cookie": cookie})
    assert status == 200
    assert fields(body)["p"] == ""


def test_nul_bytes_are_refused_by_nginx_itself(shop):
    status, _, _ = request(shop, "/", headers={"Cookie": "cef_vid=a\x00b"})
    assert status == 400


def test_nul_in_a_key_value_is_anonymous(shop):
    status, _, body = get(shop, "/?cef_t=%00", headers={
        "X-Device-Id": "dev-42%00"})
    assert status == 200 and fields(body)["p"] == ""


def test_store_missing_at_start_then_created(nginx):
    inst = nginx.prepare(CONF)
    write_secret(inst.prefix / "store.secret", STORE_SECRET)
    write_secret(inst.prefix / "signing.secret", SIGN_NEW)
    inst.start()
    cookies = {"shop_customer": signed(SIGN_NEW, "customer", "1001")}
    status, _, body = get(inst, cookies=cookies)
    assert status == 200 and fields(body)["p"] == ""
    assert "is not available" in inst.log_text()

    load_store(inst.prefix / "store", inst.prefix / "store.secret")
    deadline = time.monotonic() + 10
    while fields(get(inst, cookies=cookies)[2])["p"] != "p-gold":
        assert time.monotonic() < deadline, "store never picked up"
        time.sleep(0.2)


def test_store_replaced_under_load(shop):
    cookies = {"shop_customer": signed(SIGN_NEW, "customer", "1001")}
    stop = threading.Event()
    seen, errors = set(), []

    def client():
        n = 0
        while not stop.is_set() and n < 5000:
            n += 1
            try:
                status, _, body = get(shop, cookies=cookies)
            except OSError as e:
                errors.append(repr(e))
                continue
            if status != 200:
                errors.append(status)
            seen.add(fields(body)["name"])

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(client) for _ in range(4)]
        for i in range(5):
            profiles = [dict(p, attrs=dict(p["attrs"], first_name="Gen%d" % i))
                        if p["id"] == "p-gold" else p for p in PROFILES]
            load_store(shop.prefix / "store", shop.prefix / "store.secret",
                       profiles, snap_id="snap-%d" % (i + 2))
            time.sleep(0.3)
        time.sleep(1.2)
        stop.set()
        for f in futures:
            f.result()

    assert errors == []
    assert "" not in seen, "a request saw no profile while the store changed"
    assert "Gen4" in seen


# --- link tokens and cookies carry no readable personal data -------------

def decoded(text):
    """text, and what it base64url-decodes to (ignoring bad padding)."""
    out = [text.encode()]
    for part in text.split("."):
        try:
            out.append(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        except ValueError:
            pass
    return b"|".join(out)


def test_link_token_and_cookie_reveal_no_address(shop):
    token = link_token(SIGN_NEW, STORE_SECRET, "email", "greta@example.com",
                       int(time.time()) + 3600)
    assert b"greta" not in decoded(token)

    status, headers, body = get(shop, "/?cef_t=" + token)
    assert fields(body)["p"] == "p-gold"
    (link,) = [c for c in set_cookies(headers) if c.startswith("cef_id=")]
    value = link.split(";")[0][len("cef_id="):]
    assert b"greta" not in decoded(value) and b"example" not in decoded(value)
    assert "; HttpOnly" in link     # the default: scripts cannot read it
    assert fields(get(shop, cookies={"cef_id": value})[2])["p"] == "p-gold"


def test_link_cookie_httponly_can_be_turned_off(nginx):
    inst = nginx.prepare(CONF.replace(
        "cef_link_token $arg_cef_t;",
        "cef_link_token $arg_cef_t max_age=1d httponly=off;"))
    write_secret(inst.prefix / "store.secret", STORE_SECRET)
    write_secret(inst.prefix / "signing.secret", SIGN_NEW)
    load_store(inst.prefix / "store", inst.prefix / "store.secret")
    inst.start()
    token = link_token(SIGN_NEW, STORE_SECRET, "email", "greta@example.com",
                       int(time.time()) + 3600)
    status, headers, body = get(inst, "/?cef_t=" + token)
    (link,) = [c for c in set_cookies(headers) if c.startswith("cef_id=")]
    assert "HttpOnly" not in link and "Max-Age=86400" in link


# --- signatures are domain-separated -------------------------------------

PROBE_STATE = "winback:1:4102444800"

CROSS_CONF = """
    cef_store @PREFIX@/store;
    cef_store_secret @PREFIX@/store.secret;

    server {
        listen 127.0.0.1:@PORT@;
        root @PREFIX@/html;

        cef_signing_secret @PREFIX@/signing.secret;
        cef_visitor_cookie vid;
        cef_key email $cookie_email signed;
        # key types that share a name with the caps cookie's signature
        cef_key cef_freqcap $cookie_cef_freqcap signed;
        cef_key freqcap $cookie_freqcap signed;
        cef_link_token $arg_t;

        location = /who {
            return 200 "p=$cef_profile k=$cef_key_type";
        }
        location = /index.html {
            cef on;
            cef_rules @PREFIX@/rules.yaml;
        }
        location = /cef/explain {
            cef_rules @PREFIX@/rules.yaml;
            cef_explain;
        }
    }
"""

CROSS_RULES = """\
version: 1
offers:
  winback:
    slot: hero
    html: '<b>winback offer</b>'
    campaign: winback
rules:
  - name: everyone
    show: [winback]
plugins:
  freqcap:
    caps:
      - {campaign: winback, max: 5, per: 1h}
"""

# identities a forged value could name: were any signature valid for
# another purpose, one of these would be found
PROBE_PROFILES = PROFILES + [
    {"id": "p-probe",
     "keys": [["email", "greta@example.com:4102444800"],
              ["email", "probe@example.com"],
              ["cef_freqcap", PROBE_STATE], ["freqcap", PROBE_STATE]],
     "attrs": {"first_name": "Probe"}},
]


@pytest.fixture
def cross(nginx):
    inst = nginx.prepare(CROSS_CONF)
    write_secret(inst.prefix / "store.secret", STORE_SECRET)
    write_secret(inst.prefix / "signing.secret", SIGN_NEW)
    (inst.prefix / "html" / "index.html").write_bytes(
        b"<!--cef:slot hero--><h1>default</h1><!--/cef:slot-->")
    (inst.prefix / "rules.yaml").write_text(CROSS_RULES)
    load_store(inst.prefix / "store", inst.prefix / "store.secret",
               PROBE_PROFILES)
    return inst.start()


def who(inst, path="/who", **cookies):
    return fields(get(inst, path, cookies=cookies)[2])["p"]


def test_signed_key_is_not_a_link_token(cross):
    # the shop signs whatever a customer registered as their e-mail
    value = "greta@example.com:4102444800"
    assert who(cross, email=signed(SIGN_NEW, "email", value)) == "p-probe"

    sig = sign(SIGN_NEW, "email", value)
    raw = base64.urlsafe_b64decode(sig + "==")
    body_ok = link_token(SIGN_NEW, STORE_SECRET, "email",
                         "greta@example.com", 4102444800)
    body = base64.urlsafe_b64decode(body_ok + "=" * (-len(body_ok) % 4))[:-16]
    forged = [
        b64url(("email:" + value).encode()) + "." + sig,   # the case
        b64url(body + raw),                 # a key's MAC on a token's body
        signed(SIGN_NEW, "email", value),   # the key as it is
    ]
    for token in forged:
        assert who(cross, "/who?t=" + token) == "", token
        assert who(cross, cef_id=token) == "", token


def test_explain_shows_no_address_for_a_link_token(cross):
    token = link_token(SIGN_NEW, STORE_SECRET, "email", "greta@example.com",
                       4102444800)
    status, _, body = get(cross, "/cef/explain?t=" + token)
    assert status == 200
    steps = [s for s in json.loads(body)["identity"]["steps"]
             if s["source"] == "link_token"]
    assert steps == [{"source": "link_token", "signature": "ok",
                      "key_type": "email", "result": "found",
                      "profile": "p-gold"}]
    assert b"greta@" not in body.replace(b"Greta", b"")


def test_link_token_is_not_a_signed_key(cross):
    token = link_token(SIGN_NEW, STORE_SECRET, "email", "greta@example.com",
                       4102444800)
    assert who(cross, "/who?t=" + token) == "p-gold"
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    old = legacy_link_token(SIGN_NEW, "email", "greta@example.com",
                            4102444800)
    forged = [
        token,
        b64url(raw[:-16]) + "." + b64url(raw[-16:]),
        "greta@example.com:4102444800." + b64url(raw[-16:]),
        # a token of the old format, its signature on the key it spelled
        "greta@example.com:4102444800." + old.split(".")[1],
    ]
    for key in forged:
        assert who(cross, email=key) == "", key


def caps_cookie(headers):
    for c in set_cookies(headers):
        if c.startswith("cef_freqcap="):
            return c.split(";")[0].split("=", 1)[1]
    return None


def test_plugin_state_cookie_is_neither_key_nor_token(cross):
    _, headers, body = get(cross, "/index.html", cookies={"vid": KNOWN_VISITOR})
    assert b"winback offer" in body
    cookie = caps_cookie(headers)
    state, sig = cookie.rsplit(".", 1)

    # a store that knows the state's text as a key of both types
    profiles = PROBE_PROFILES + [{
        "id": "p-state", "keys": [["cef_freqcap", state], ["freqcap", state],
                                  ["email", "state@example.com"]],
        "attrs": {"first_name": "State"}}]
    load_store(cross.prefix / "store", cross.prefix / "store.secret",
               profiles, snap_id="snap-2")
    deadline = time.monotonic() + 10
    while who(cross, email=signed(SIGN_NEW, "email", "state@example.com")) \
            != "p-state":
        assert time.monotonic() < deadline, "store never picked up"
        time.sleep(0.2)

    assert who(cross, cef_freqcap=cookie) == ""
    assert who(cross, freqcap=cookie) == ""
    assert who(cross, email=cookie) == ""
    assert who(cross, "/who?t=" + cookie) == ""
    assert who(cross, "/who?t=" + b64url(state.encode()) + "." + sig) == ""
    assert who(cross, cef_id=cookie) == ""


def test_key_and_token_are_not_a_plugin_state(cross):
    # a caps state the visitor would like: 5 of 5 impressions hides the offer
    state = "winback:5:%d" % (int(time.time()) - 10)
    _, _, body = get(cross, "/index.html", cookies={
        "vid": KNOWN_VISITOR,
        "cef_freqcap": state_cookie(SIGN_NEW, "freqcap", state)})
    assert b"winback offer" not in body

    token = link_token(SIGN_NEW, STORE_SECRET, "email", "greta@example.com",
                       4102444800)
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    for forged in (signed(SIGN_NEW, "freqcap", state),
                   signed(SIGN_NEW, "cef_freqcap", state),
                   state + "." + b64url(raw[-16:])):
        _, headers, body = get(cross, "/index.html",
                               cookies={"vid": KNOWN_VISITOR,
                                        "cef_freqcap": forged})
        assert b"winback offer" in body, forged
        assert caps_cookie(headers).startswith("winback:1:")
    assert "invalid \"cef_freqcap\" cookie" in cross.log_text()


# --- the transition: signed keys of the old format, for a bounded time ----

LEGACY_CONF = CONF.replace(
    "cef_signing_secret @PREFIX@/signing.secret;",
    "cef_signing_secret @PREFIX@/signing.secret legacy_keys_until=%s;")


def legacy_shop(nginx, until):
    inst = nginx.prepare(LEGACY_CONF % until)
    write_secret(inst.prefix / "store.secret", STORE_SECRET)
    write_secret(inst.prefix / "signing.secret", SIGN_NEW + b"\n" + SIGN_OLD)
    load_store(inst.prefix / "store", inst.prefix / "store.secret")
    return inst.start()


def test_old_signed_keys_verify_until_the_date(nginx):
    until = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 30 * 86400))
    inst = legacy_shop(nginx, until)
    old = legacy_signed(SIGN_OLD, "customer", "1002")
    assert fields(get(inst, cookies={"shop_customer": old})[2])["p"] \
        == "p-churn"
    assert fields(get(inst, cookies={
        "shop_customer": signed(SIGN_NEW, "customer", "1001")})[2])["p"] \
        == "p-gold"
    # only keys: an old link token stays refused
    token = legacy_link_token(SIGN_NEW, "email", "greta@example.com",
                              4102444800)
    assert fields(get(inst, "/?cef_t=" + token)[2])["p"] == ""


def test_old_signed_keys_are_refused_after_the_date(nginx):
    inst = legacy_shop(nginx, "2020-01-01")
    old = legacy_signed(SIGN_NEW, "customer", "1001")
    assert fields(get(inst, cookies={"shop_customer": old})[2])["p"] == ""
    assert "legacy_keys_until=2020-01-01\" has passed" in inst.log_text()


def test_old_signed_keys_are_refused_by_default(shop):
    old = legacy_signed(SIGN_NEW, "customer", "1001")
    assert fields(get(shop, cookies={"shop_customer": old})[2])["p"] == ""


# --- logs and caches without the token (docs/observability.md) -----------

CLEAN_CONF = """
    cef_store @PREFIX@/store;
    cef_store_secret @PREFIX@/store.secret;
    upstream shop { server @UPSTREAM@; }
    proxy_cache_path @PREFIX@/cache keys_zone=pages:1m;

    # $request_uri without the link token (docs/observability.md)
    map $request_uri $cef_request_uri {
        "~^(?<cef_a>[^?]*)\\?cef=[^&]*$"               $cef_a;
        "~^(?<cef_a>[^?]*\\?)cef=[^&]*&(?<cef_b>.*)$"   $cef_a$cef_b;
        "~^(?<cef_a>[^?]*\\?.*?)&cef=[^&]*(?<cef_b>.*)$" $cef_a$cef_b;
        default                                        $request_uri;
    }
    log_format shop '$remote_addr [$time_local] '
                    '"$request_method $cef_request_uri" $status '
                    'profile=$cef_profile cache=$upstream_cache_status';

    server {
        listen 127.0.0.1:@PORT@;
        access_log @PREFIX@/shop.log shop;

        cef_signing_secret @PREFIX@/signing.secret;
        cef_link_token $arg_cef;

        location / {
            proxy_pass http://shop$cef_request_uri;
            proxy_cache pages;
            proxy_cache_valid 200 1m;
            proxy_cache_key $scheme$proxy_host$cef_request_uri;
            cef on;
        }
    }
"""


def test_documented_log_format_and_cache_key_leave_the_token_out(nginx,
                                                                  upstream):
    inst = nginx.prepare(CLEAN_CONF)
    write_secret(inst.prefix / "store.secret", STORE_SECRET)
    write_secret(inst.prefix / "signing.secret", SIGN_NEW)
    load_store(inst.prefix / "store", inst.prefix / "store.secret")
    inst.start()

    tokens = [link_token(SIGN_NEW, STORE_SECRET, "email", "greta@example.com",
                         int(time.time()) + 3600 + i) for i in range(4)]
    fetched = upstream.hits.get("/gen?size=317", 0)
    uris = ["/gen?size=317&cef=" + tokens[0],
            "/gen?size=317&cef=" + tokens[1],
            "/gen?cef=%s&size=317" % tokens[2],
            "/gen?size=317&cef=%s&seed=0" % tokens[3]]
    for uri in uris:
        status, _, _ = get(inst, uri)
        assert status == 200
    status, _, _ = get(inst, "/gen?size=317")

    deadline = time.monotonic() + 5
    while True:
        lines = (inst.prefix / "shop.log").read_text().splitlines()
        if len(lines) == 5 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(lines) == 5, lines
    text = (inst.prefix / "shop.log").read_text()
    for t in tokens:
        assert t not in text
    assert [l.split('"')[1] for l in lines] == [
        "GET /gen?size=317", "GET /gen?size=317", "GET /gen?size=317",
        "GET /gen?size=317&seed=0", "GET /gen?size=317"]
    assert text.count("profile=p-gold") == 4
    # one cache entry for the page, whatever token came with it
    assert [l.rsplit("cache=", 1)[1] for l in lines] == [
        "MISS", "HIT", "HIT", "MISS", "HIT"]
    cached = b"".join(p.read_bytes() for p in (inst.prefix / "cache").rglob("*")
                      if p.is_file())
    for t in tokens:
        assert t.encode() not in cached
    # nor does the upstream see one
    assert upstream.hits.get("/gen?size=317") == fetched + 1
    assert not [p for p in upstream.hits if "cef=" in p]
