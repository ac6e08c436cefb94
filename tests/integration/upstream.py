# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""An upstream stub for the integration tests.

It runs in the test process (a thread per connection) so that tests can
hold a response half-way with a gate and count how often a URL was fetched.

GET /gen?size=N[&seed=S][&chunk=K][&chunked=1][&delay=MS][&gzip=1]
         [&type=T][&gate=NAME&gate_at=BYTES][&status=CODE]
    a deterministic HTML-like body of N bytes (see make_body), written K
    bytes at a time (each write its own TCP segment; with chunked=1 each
    its own HTTP chunk), sleeping MS milliseconds between writes; gzip=1
    sends it gzip-encoded with Content-Encoding: gzip; with a gate, the
    first BYTES bytes are sent, then the response waits until the test
    opens the gate.
GET /body/NAME[?split=A,B,...][&chunked=1][&chunk=K][&gzip=1][&abort=N]
         [&ranges=1]
    a body the test registered with Upstream.set_body(), written in pieces
    cut at the given offsets (or every K bytes), each its own TCP segment.
    abort=N: after N bytes of the body the upstream closes the connection
    (the response announced the whole body).  ranges=1: a "Range:
    bytes=A-B" request gets 206 Partial Content with those bytes, as the
    slice module needs.
    [&hdr=NAME:VALUE] adds a header (e.g. the shop's X-Order-Total).
    [&etag=E][&lm=1][&cc=C][&exp=D][&xae=V] add an ETag E, a fixed
    Last-Modified, Cache-Control C, Expires D or X-Accel-Expires V; with
    etag or lm the stub answers
    a matching If-None-Match / If-Modified-Since itself with 304.

Upstream.last_headers(path) is the request headers of the last request for
path (lower-case names).
"""

import gzip
import hashlib
import http.server
import socket
import threading
import time
import urllib.parse


def make_body(size, seed=0):
    """Deterministic HTML-ish bytes: markup, comments and near-misses of the
    slot markers (`<!--cef` not followed by `:slot`), never a full marker."""
    parts = []
    n = 0
    i = seed
    while n < size:
        digest = hashlib.sha256(b"%d" % i).hexdigest()
        line = (
            '<div class="p%d"><!-- c%s --><p>%s &amp; <!--cef %s</p>'
            "<!--ce%s--></div>\n" % (i % 7, digest[:4], digest, digest[:6],
                                      digest[6:9])
        ).encode()
        parts.append(line)
        n += len(line)
        i += 1
    return b"".join(parts)[:size]


class Upstream:
    def __init__(self):
        self.gates = {}
        self.bodies = {}
        self.hits = {}
        self.seen = {}
        self.lock = threading.Lock()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      _Handler)
        self.server.daemon_threads = True
        self.server.stub = self
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def gate(self, name):
        with self.lock:
            return self.gates.setdefault(name, threading.Event())

    def set_body(self, name, body, content_type="text/html"):
        self.bodies[name] = (body, content_type)

    def hit_count(self, path):
        with self.lock:
            return self.hits.get(path, 0)

    def last_headers(self, path):
        with self.lock:
            return dict(self.seen.get(path, {}))

    def close(self):
        for g in list(self.gates.values()):
            g.set()
        self.server.shutdown()
        self.server.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.do_GET(head=True)

    def do_GET(self, head=False):
        stub = self.server.stub
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        with stub.lock:
            stub.hits[self.path] = stub.hits.get(self.path, 0) + 1
            stub.seen[self.path] = {k.lower(): v
                                    for k, v in self.headers.items()}

        if url.path.startswith("/body/"):
            body, ctype = stub.bodies[url.path[6:]]
            headers = {}
            if q.get("hdr"):
                name, _, value = q["hdr"].partition(":")
                headers[name] = value
            if q.get("gzip") == "1":
                body = gzip.compress(body)
                headers["Content-Encoding"] = "gzip"
            cuts = [int(x) for x in q["split"].split(",")] \
                if q.get("split") else None
            if self._validators(q, headers):
                return self._send(b"", ctype, headers, True, 304)
            status = int(q.get("status", "200"))
            if q.get("ranges") == "1":
                status, body = self._range(body, headers, status)
            return self._send(body, ctype, headers, head, status,
                              int(q.get("chunk", "0")),
                              q.get("chunked") == "1", cuts=cuts,
                              delay=int(q.get("delay", "0")) / 1000,
                              abort=int(q.get("abort", "-1")))

        if url.path != "/gen":
            return self._send(b"not found\n", "text/plain", {}, head, 404)

        body = make_body(int(q.get("size", "1000")), int(q.get("seed", "0")))
        headers = {}
        if q.get("gzip") == "1":
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        self._send(body, q.get("type", "text/html"), headers, head,
                   int(q.get("status", "200")), int(q.get("chunk", "0")),
                   q.get("chunked") == "1", int(q.get("delay", "0")) / 1000,
                   q.get("gate"), int(q.get("gate_at", "0")))

    def _range(self, body, headers, status):
        spec = self.headers.get("Range", "")
        if status != 200 or not spec.startswith("bytes="):
            return status, body
        first, _, last = spec[6:].partition("-")
        first = int(first)
        last = min(int(last), len(body) - 1) if last else len(body) - 1
        headers["Content-Range"] = "bytes %d-%d/%d" % (first, last, len(body))
        return 206, body[first:last + 1]

    LAST_MODIFIED = "Tue, 01 Sep 2026 10:00:00 GMT"

    def _validators(self, q, headers):
        """Add the validators q asks for; True: the request's conditional
        matches them (the answer is 304)."""
        for name, key in (("ETag", "etag"), ("Cache-Control", "cc"),
                          ("Expires", "exp"), ("X-Accel-Expires", "xae")):
            if q.get(key):
                headers[name] = q[key]
        if q.get("lm") == "1":
            headers["Last-Modified"] = self.LAST_MODIFIED
        inm = self.headers.get("If-None-Match")
        if inm is not None and q.get("etag"):
            tags = [t.strip() for t in inm.split(",")]
            strip = (lambda t: t[2:] if t.startswith("W/") else t)
            return strip(q["etag"]) in [strip(t) for t in tags]
        ims = self.headers.get("If-Modified-Since")
        return inm is None and ims is not None and q.get("lm") == "1" \
            and ims == self.LAST_MODIFIED

    def _send(self, body, ctype, headers, head, status=200, chunk=0,
              chunked=False, delay=0.0, gate=None, gate_at=0, cuts=None,
              abort=-1):
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.send_response(status)
        if status != 304:
            self.send_header("Content-Type", ctype)
        for k, v in headers.items():
            self.send_header(k, v)
        if status == 304:
            pass
        elif chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if head:
            return

        chunk = chunk or len(body) or 1
        sent = 0
        try:
            while sent < len(body):
                if sent == abort:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if gate and sent >= gate_at:
                    self.server.stub.gate(gate).wait(30)
                    gate = None
                end = min(sent + chunk, len(body))
                if cuts is not None:
                    later = [c for c in cuts if sent < c < len(body)]
                    end = min(later) if later else len(body)
                if gate and sent < gate_at < end:
                    end = gate_at
                if sent < abort < end:
                    end = abort
                piece = body[sent:end]
                if chunked:
                    piece = b"%x\r\n%s\r\n" % (len(piece), piece)
                self.wfile.write(piece)
                sent = end
                if delay:
                    time.sleep(delay)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
