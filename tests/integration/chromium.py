# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""Headless Chromium (Debian's chromium package) for pages that are the
product: a screenshot decoded with the standard library (PNG: zlib and the
five row filters), and the DOM after parsing.

    render(html_path, png_path)   -> Image (width, height; pixels() as
                                     (r, g, b), count(predicate))
    dom(html_path)                -> the serialised DOM as text
"""

import collections
import os
import struct
import subprocess
import tempfile
import zlib

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

# root runs Chromium without its sandbox (it refuses to start otherwise);
# no GPU on this machine, no first-run dialogs, no network
FLAGS = ["--headless", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         "--no-default-browser-check", "--disable-extensions",
         "--disable-background-networking", "--disable-sync",
         "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]
if os.geteuid() == 0:
    FLAGS.append("--no-sandbox")


def _run(args, timeout=90):
    with tempfile.TemporaryDirectory(prefix="cef-chromium-") as profile:
        p = subprocess.run([CHROMIUM, *FLAGS, "--user-data-dir=" + profile,
                            *args], capture_output=True, timeout=timeout)
    return p


def render(html_path, png_path, width=1200, height=2400):
    p = _run(["--screenshot=%s" % png_path,
              "--window-size=%d,%d" % (width, height),
              "file://%s" % os.path.abspath(html_path)])
    assert p.returncode == 0 and os.path.exists(png_path), \
        p.stderr.decode(errors="replace")[-3000:]
    return Image.read(png_path)


def dom(html_path):
    p = _run(["--dump-dom", "file://%s" % os.path.abspath(html_path)])
    assert p.returncode == 0, p.stderr.decode(errors="replace")[-3000:]
    return p.stdout.decode()


class Image:
    """An 8-bit RGB or RGBA PNG, decoded (non-interlaced, as Chromium
    writes them)."""

    def __init__(self, width, height, rows):
        self.width = width
        self.height = height
        self.rows = rows              # unfiltered rows of bytes
        self.bpp = len(rows[0]) // width if rows else 3
        self._colors = None

    @classmethod
    def read(cls, path):
        with open(path, "rb") as f:
            data = f.read()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
        pos, idat, ihdr = 8, [], None
        while pos < len(data):
            length, kind = struct.unpack(">I4s", data[pos:pos + 8])
            chunk = data[pos + 8:pos + 8 + length]
            pos += 12 + length
            if kind == b"IHDR":
                ihdr = struct.unpack(">IIBBBBB", chunk)
            elif kind == b"IDAT":
                idat.append(chunk)
            elif kind == b"IEND":
                break
        width, height, depth, ctype, _, _, interlace = ihdr
        assert depth == 8 and ctype in (2, 6) and interlace == 0, ihdr
        bpp = 3 if ctype == 2 else 4
        raw = zlib.decompress(b"".join(idat))
        stride = width * bpp
        rows, prev = [], bytearray(stride)
        for y in range(height):
            start = y * (stride + 1)
            ftype = raw[start]
            line = bytearray(raw[start + 1:start + 1 + stride])
            _unfilter(ftype, line, prev, bpp)
            rows.append(line)
            prev = line
        return cls(width, height, rows)

    def pixels(self):
        """Every pixel as an (r, g, b) tuple, row by row."""
        n = self.bpp
        for row in self.rows:
            yield from zip(row[0::n], row[1::n], row[2::n])

    def count(self, pred):
        """The number of pixels for which pred((r, g, b)) holds."""
        if self._colors is None:
            self._colors = collections.Counter(self.pixels())
        return sum(n for px, n in self._colors.items() if pred(px))


def _add_bytes(x, y):
    """Bytewise x + y mod 256 of two equal-length byte strings, as one
    big-integer operation (the carries kept out of the neighbouring
    bytes)."""
    n = len(x)
    low, high = int.from_bytes(b"\x7f" * n, "big"), \
        int.from_bytes(b"\x80" * n, "big")
    a, b = int.from_bytes(x, "big"), int.from_bytes(y, "big")
    return bytearray((((a & low) + (b & low)) ^ ((a ^ b) & high))
                     .to_bytes(n, "big"))


def _unfilter(ftype, line, prev, bpp):
    if ftype == 0:
        return
    if ftype == 2:                   # Up, most rows: no dependency in a row
        line[:] = _add_bytes(line, prev)
        return
    for i in range(len(line)):
        a = line[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        if ftype == 1:
            line[i] = (line[i] + a) & 0xff
        elif ftype == 2:
            line[i] = (line[i] + b) & 0xff
        elif ftype == 3:
            line[i] = (line[i] + ((a + b) >> 1)) & 0xff
        elif ftype == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            line[i] = (line[i] + pred) & 0xff
        else:
            raise AssertionError("PNG filter type %d" % ftype)


def near(color, tolerance=40):
    """A predicate: a pixel within tolerance of color ("#rrggbb") on every
    channel."""
    want = tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))
    return lambda px: all(abs(p - w) <= tolerance for p, w in zip(px, want))


def white(px):
    return px[0] >= 250 and px[1] >= 250 and px[2] >= 250
