# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""The module loads into Debian's nginx and its directives are validated."""

import re

from client import request
from conftest import VALGRIND


def test_loads_without_any_cef_directive(nginx):
    inst = nginx.start("""
        server {
            listen 127.0.0.1:@PORT@;
            location / { return 200 "plain\\n"; }
        }
    """)
    assert request(inst, "/")[::2] == (200, b"plain\n")
    # master and two workers (one process under valgrind)
    assert len(inst.worker_pids()) == (1 if VALGRIND else 2)


def test_invalid_flag_fails_config_test_with_file_and_line(nginx):
    rc, out = nginx.check("""
        server {
            listen 127.0.0.1:@PORT@;
            cef maybe;
        }
    """)
    assert rc != 0
    assert re.search(r'invalid value "maybe" in "cef" directive.*'
                     r'nginx\.conf:\d+', out), out


def test_cef_in_wrong_context_is_rejected(nginx):
    rc, out = nginx.check("", main="cef on;")
    assert rc != 0
    assert re.search(r'"cef" directive is not allowed here in .*nginx\.conf:'
                     r'\d+', out), out


def test_types_select_what_is_filtered(nginx):
    inst = nginx.prepare("""
        server {
            listen 127.0.0.1:@PORT@;
            root @PREFIX@/html;
            cef on;
            cef_types text/css;
        }
    """, level="debug")
    (inst.prefix / "html" / "a.css").write_bytes(b"a{}" * 10)
    (inst.prefix / "html" / "a.html").write_bytes(b"<p>" * 11)
    inst.start()
    assert request(inst, "/a.css")[2] == b"a{}" * 10
    assert request(inst, "/a.html")[2] == b"<p>" * 11
    log = inst.log_text()
    # text/html is always included, as with sub_filter_types
    assert "cef filter: 30 body bytes passed" in log
    assert "cef filter: 33 body bytes passed" in log


def test_reload_keeps_serving(nginx):
    snippet = """
        server {
            listen 127.0.0.1:@PORT@;
            cef %s;
            location / { return 200 "ok\\n"; }
        }
    """
    inst = nginx.start(snippet % "on")
    assert request(inst, "/")[0] == 200
    inst.reload(snippet % "off")
    assert request(inst, "/")[0] == 200


def test_statuses_refuse_a_partial_response(nginx):
    """206 is part of a page: personalising it would rewrite a fragment
    and label the result as the page's bytes A-B."""
    rc, out = nginx.check("""
        server {
            listen 127.0.0.1:@PORT@;
            cef on;
            cef_statuses 200 206;
        }
    """)
    assert rc != 0
    assert re.search(r'status 206 cannot be personalised: a partial '
                     r'response.*nginx\.conf:\d+', out), out
