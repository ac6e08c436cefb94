#!/usr/bin/env python3
# Copyright (C) ngx_cef_module developers
"""The licence promises of docs/licences.md, checked (make check-layers).

1. Every source file of ours (C, headers, Python, Lua, shell and make
   files, the addon scripts) names its licence in its opening lines:
   SPDX-License-Identifier: BSD-2-Clause.
2. The nginx module's .so needs (readelf -d) only the libraries on the
   permissive list below: no GPL library (GSL is cef-report's alone) ever
   reaches the module.

--fix adds the missing SPDX lines (and the copyright line where a file has
none): after the copyright line where there is one, else at the top, after
a shebang.  Run it after adding files; the check then passes.

Prints what is wrong and exits 1; prints a one-line summary and exits 0.
"""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

SPDX = "SPDX-License-Identifier: BSD-2-Clause"
COPYRIGHT = "Copyright (C) ngx_cef_module developers"
HEAD_LINES = 12

# files named by their extension, with their line-comment leader ("" for C)
BY_EXT = {".c": "", ".h": "", ".py": "#", ".lua": "--", ".mk": "#",
          ".sh": "#"}
# files named by their path
BY_NAME = {"Makefile": "#", "config": "#", "config.make": "#",
           "debian/rules": "#"}
# not ours, or data whose line numbers tests quote
SKIP_DIRS = ("build/", ".git/", "tests/fuzz/corpus/")

# what the module may need: nginx's host libraries and the permissive
# libraries of docs/licences.md
MODULE_NEEDED = re.compile(r"^(libc|libm|libdl|libpthread|ld-linux[-\w]*|"
                           r"liblmdb|libmsgpackc|libmsgpack-c|libyaml-0|"
                           r"libjansson|libcrypto|libssl|libpcre2-8|libz)"
                           r"\.so(\.[\d.]+)?$")


def files():
    out = subprocess.run(["git", "ls-files", "--cached", "--others",
                          "--exclude-standard"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    for path in sorted(set(out.split())):
        if path.startswith(SKIP_DIRS) or not os.path.isfile(
                os.path.join(ROOT, path)):
            continue
        leader = BY_NAME.get(path, BY_EXT.get(os.path.splitext(path)[1]))
        if leader is None and "." not in os.path.basename(path):
            with open(os.path.join(ROOT, path), "rb") as f:
                first = f.readline()
            if re.match(rb"#!.*\b(ba)?sh\b", first):
                leader = "#"
        if leader is not None:
            yield path, leader


def has_spdx(text):
    return SPDX in "\n".join(text.split("\n")[:HEAD_LINES])


def fixed(text, leader):
    lines = text.split("\n")
    for i, line in enumerate(lines[:HEAD_LINES]):
        if COPYRIGHT in line:
            prefix = line[:line.index(COPYRIGHT)]
            lines.insert(i + 1, prefix + SPDX)
            return "\n".join(lines)
    if leader == "":
        return "/*\n * %s\n * %s\n */\n\n%s" % (COPYRIGHT, SPDX, text)
    at = 1 if lines and lines[0].startswith("#!") else 0
    lines[at:at] = ["%s %s" % (leader, COPYRIGHT), "%s %s" % (leader, SPDX)]
    return "\n".join(lines)


def check_sources(fix):
    problems, count = [], 0
    for path, leader in files():
        count += 1
        full = os.path.join(ROOT, path)
        with open(full, encoding="utf-8") as f:
            text = f.read()
        if has_spdx(text):
            continue
        if fix:
            with open(full, "w", encoding="utf-8") as f:
                f.write(fixed(text, leader))
            print("added: %s" % path)
        else:
            problems.append("%s: no '%s' in its first %d lines (add it: "
                            "tests/tools/check_licences.py --fix)"
                            % (path, SPDX, HEAD_LINES))
    return problems, count


def check_module(so):
    if not os.path.exists(so):
        return ["%s: not built (make module)" % so]
    out = subprocess.run(["readelf", "-d", so], check=True,
                         capture_output=True, text=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)
    return ["%s needs %s, which is not on the permissive list of "
            "tests/tools/check_licences.py (docs/licences.md)" % (so, lib)
            for lib in needed if not MODULE_NEEDED.match(lib)]


def main():
    fix = "--fix" in sys.argv[1:]
    problems, count = check_sources(fix)
    if not fix:
        problems += check_module(os.path.join(ROOT, "build",
                                              "ngx_http_cef_module.so"))
    for p in problems:
        print(p)
    if problems:
        return 1
    print("check-licences: %d source files carry %s; the module needs only "
          "permissively licensed libraries" % (count, SPDX))
    return 0


if __name__ == "__main__":
    sys.exit(main())
