# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""A small real HTTP/1.1 client for the tests (http.client, no decoding)."""

import http.client
import socket
import time


def request(url_or_inst, path=None, method="GET", headers=None, body=None,
            timeout=30):
    """(status, headers as a dict with lower-case names, body bytes).

    Call as request("http://127.0.0.1:PORT/path") or request(inst, "/path").
    """
    if path is not None:
        host, port = "127.0.0.1", url_or_inst.port(0)
    else:
        rest = url_or_inst.split("://", 1)[1]
        hostport, _, path = rest.partition("/")
        path = "/" + path
        host, _, port = hostport.partition(":")
        port = int(port)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        hdrs = {"Connection": "close"}
        hdrs.update(headers or {})
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        out = {}
        for k, v in resp.getheaders():
            k = k.lower()
            out[k] = out[k] + "\n" + v if k in out else v
        return resp.status, out, data
    finally:
        conn.close()


def raw_exchange(port, request_bytes, timeout=10):
    """Send raw bytes, read until the server closes; returns the bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout) as s:
        s.sendall(request_bytes)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)
