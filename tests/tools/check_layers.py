#!/usr/bin/env python3
# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""The shape docs/architecture.md promises, checked (make check-layers).

1. lib/: a folder includes only the folders below it in LAYERS.
2. The nginx glue (ngx_cef_module/*.c): no include cycle among its headers
   and no call cycle among its files, read from the built objects (which
   file defines each ngx_http_cef_* symbol, which file uses it).
3. The module's .so exports only nginx's entry symbols (no cef_* at all).

Prints what is wrong and exits 1; prints a one-line summary and exits 0.
"""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

# folder -> the folders it may include (besides itself)
LAYERS = {
    "core": set(),
    "plugin": {"core"},
    "expr": {"core", "plugin"},
    "html": {"core"},
    "identity": {"core"},
    "store": {"core", "identity"},
    "rules": {"core", "plugin", "expr", "store"},
    "decision": {"core", "plugin", "expr", "rules", "identity", "store"},
    "writer": {"core", "identity", "store"},
}
# the glue may include every folder but these
GLUE_NEVER = {"writer"}
# what `nm -D --defined-only` may list for the module
SO_EXPORTS = re.compile(r"^(ngx_modules|ngx_module_names|ngx_module_order|"
                        r"ngx_http_cef_[a-z_]*module)$")

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def lib_headers():
    where = {}
    for folder in sorted(os.listdir(os.path.join(ROOT, "lib"))):
        path = os.path.join(ROOT, "lib", folder)
        if os.path.isdir(path):
            for name in os.listdir(path):
                where[name] = folder
    return where


def check_lib(where, problems):
    unknown = sorted(set(where.values()) - set(LAYERS))
    for folder in unknown:
        problems.append("lib/%s: a folder docs/architecture.md and "
                        "tests/tools/check_layers.py do not know" % folder)
    for name, folder in sorted(where.items()):
        if not name.endswith((".c", ".h")):
            continue
        with open(os.path.join(ROOT, "lib", folder, name)) as f:
            text = f.read()
        for inc in INCLUDE.findall(text):
            dep = where.get(inc)
            if dep is None or dep == folder:
                continue
            if dep not in LAYERS.get(folder, set()):
                problems.append("lib/%s/%s includes %s (lib/%s): %s may not "
                                "include %s" % (folder, name, inc, dep,
                                                folder, dep))


def glue_files():
    d = os.path.join(ROOT, "ngx_cef_module")
    return sorted(n for n in os.listdir(d) if n.endswith((".c", ".h")))


def check_glue_includes(where, problems):
    glue = set(glue_files())
    graph = {}
    for name in glue:
        with open(os.path.join(ROOT, "ngx_cef_module", name)) as f:
            incs = INCLUDE.findall(f.read())
        for inc in incs:
            if where.get(inc) in GLUE_NEVER:
                problems.append("ngx_cef_module/%s includes %s: the glue "
                                "never includes lib/%s" % (name, inc,
                                                           where[inc]))
        if name.endswith(".h"):
            graph[name] = {i for i in incs if i in glue and i != name}
    cycle = find_cycle(graph)
    if cycle:
        problems.append("include cycle in ngx_cef_module/: "
                        + " -> ".join(cycle))


def nm(path, *flags):
    out = subprocess.run(["nm", *flags, path], capture_output=True,
                         text=True, check=True).stdout
    return [line.split() for line in out.splitlines() if line.strip()]


def check_glue_calls(objdir, problems):
    objs = {}
    for name in glue_files():
        if name.endswith(".c"):
            o = os.path.join(objdir, name[:-2] + ".o")
            if not os.path.exists(o):
                problems.append("%s is not built: make module first" % o)
                return 0
            objs[name] = o
    defined, used = {}, {}
    for name, o in objs.items():
        used[name] = set()
        for row in nm(o):
            if len(row) == 3 and row[1] in "TDBR":
                defined[row[2]] = name
            elif len(row) == 2 and row[0] == "U":
                used[name].add(row[1])
    graph = {name: {defined[s] for s in syms
                    if s in defined and defined[s] != name}
             for name, syms in used.items()}
    cycle = find_cycle(graph)
    if cycle:
        problems.append("call cycle in ngx_cef_module/: "
                        + " -> ".join(cycle))
    return sum(len(v) for v in graph.values())


def check_exports(so, problems):
    bad = [row[-1] for row in nm(so, "-D", "--defined-only")
           if not SO_EXPORTS.match(row[-1])]
    if bad:
        problems.append("%s exports %d symbols beyond nginx's entry points, "
                        "e.g. %s" % (so, len(bad), ", ".join(sorted(bad)[:8])))


def find_cycle(graph):
    """One cycle of the directed graph as a list of nodes, or None."""
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def main():
    build = os.environ.get("BUILD", os.path.join(ROOT, "build"))
    objdir = os.path.join(build, "nginx", "objs", "addon", "ngx_cef_module")
    problems = []
    where = lib_headers()
    check_lib(where, problems)
    check_glue_includes(where, problems)
    edges = check_glue_calls(objdir, problems)
    check_exports(os.path.join(build, "ngx_http_cef_module.so"), problems)
    if problems:
        print("check-layers: %d problem(s)" % len(problems))
        for p in problems:
            print("  " + p)
        return 1
    print("check-layers: lib/ folders follow their layers, the glue has no "
          "include or call cycle (%d file-to-file call edges), the module "
          "exports only nginx's entry points" % edges)
    return 0


if __name__ == "__main__":
    sys.exit(main())
