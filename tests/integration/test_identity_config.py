# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""Identity directives are validated by `nginx -t`, with file and line."""

import re

import pytest

from cef_fixtures import write_secret

LINE = r".*nginx\.conf:\d+"


@pytest.fixture
def secrets(tmp_path):
    write_secret(tmp_path / "ok.secret", b"s3cret\n")
    write_secret(tmp_path / "empty.secret", b"")
    write_secret(tmp_path / "open.secret", b"s3cret\n", mode=0o644)
    return tmp_path


def server(body):
    return "server { listen 127.0.0.1:@PORT@; %s }" % body


@pytest.mark.parametrize("snippet, message", [
    ("cef_store /nonexistent;",
     r'"cef_store" requires "cef_store_secret"'),
    ("cef_store /x; cef_store_secret %(d)s/missing.secret;",
     r'missing\.secret" failed \(2: No such file'),
    ("cef_store /x; cef_store_secret %(d)s/empty.secret;",
     r'empty\.secret" is empty'),
    (server("cef_key customer $cookie_c signed;"),
     r'signed "cef_key customer" requires "cef_signing_secret"'),
    (server("cef_link_token $arg_t;"),
     r'"cef_link_token" requires "cef_signing_secret"'),
    (server("cef_signing_secret %(d)s/empty.secret;"),
     r'empty\.secret" is empty'),
    (server("cef_key Customer $cookie_c;"), r'invalid key type "Customer"'),
    (server("cef_key customer $cookie_c sgned;"),
     r'invalid parameter "sgned"'),
    (server("cef_visitor_cookie vid samesite=none;"),
     r'"samesite=none" requires "secure"'),
    (server("cef_visitor_cookie vid max_age=forever;"),
     r'invalid parameter "max_age=forever"'),
    (server("cef_visitor_cookie v;id;"), r'invalid cookie name|unknown'),
    (server("cef_visitor_cookie off secure;"),
     r'takes no parameters after "off"'),
    (server("cef_link_token $arg_t httponly=maybe;"),
     r'invalid parameter "httponly=maybe"'),
    (server("cef_signing_secret %(d)s/ok.secret legacy_keys_until=soon;"),
     r'invalid date in "legacy_keys_until=soon"'),
    (server("cef_signing_secret %(d)s/ok.secret legacy_keys_until=2027-02-30;"),
     r'invalid date in "legacy_keys_until=2027-02-30"'),
    (server("cef_signing_secret %(d)s/ok.secret legacy_keys_until=2999-01-01;"),
     r'"legacy_keys_until=2999-01-01" is more than a year ahead'),
    (server("cef_signing_secret %(d)s/ok.secret until=2027-01-01;"),
     r'invalid parameter "until=2027-01-01"'),
])
def test_config_errors(nginx, secrets, snippet, message):
    rc, out = nginx.check(snippet % {"d": secrets})
    assert rc != 0, out
    assert re.search(message + LINE, out) or re.search(message, out), out
    assert re.search(r"nginx\.conf:\d+", out), out


def test_world_readable_secret_is_a_warning(nginx, secrets):
    rc, out = nginx.check(server("cef_signing_secret %s/open.secret;"
                                 % secrets))
    assert rc == 0, out
    assert re.search(r'\[warn\].*open\.secret" is readable by everyone'
                     + LINE, out), out


def test_full_configuration_is_accepted(nginx, secrets):
    rc, out = nginx.check("""
        cef_store %(d)s/store;
        cef_store_secret %(d)s/ok.secret;
        server {
            listen 127.0.0.1:@PORT@;
            cef_signing_secret %(d)s/ok.secret;
            cef_visitor_cookie vid max_age=1y domain=.shop.example path=/
                               secure httponly samesite=none;
            cef_key customer $cookie_customer signed;
            cef_key device $http_x_device_id;
            cef_link_token $arg_cef cookie=cef_link max_age=7d secure;
            cef_consent $cookie_consent;
            location /assets/ { cef_visitor_cookie off; }
        }
    """ % {"d": secrets})
    assert rc == 0, out
