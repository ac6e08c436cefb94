# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""The permission model out of the box: nginx workers as Debian runs them
(www-data), a store written by cef-sync as root, and the recipe of
docs/store.md (--group, a setgid store directory).  Also cef-sync's warning
when what a load wrote is not usable by the workers."""

import grp
import os
import pwd
import re

import pytest

from cef_fixtures import (PROFILES, cef_sync, signed, snapshot_bytes,
                          write_secret)
from client import request
from conftest import STORE_GROUP, WORKER_USER

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root to start workers as "
                                       "www-data and to change groups")

SIGN = b"signing-secret-perm"
STORE_SECRET = b"store-secret-perm-0123456789"

# the README's quick-start configuration
CONF = """
    cef_store        %(store)s;
    cef_store_secret @PREFIX@/store.secret;
    cef_rules        @PREFIX@/rules.yaml;
    server {
        listen 127.0.0.1:@PORT@;
        cef_signing_secret @PREFIX@/signing.secret;
        cef_key customer $cookie_shop_customer signed;
        location / {
            root @PREFIX@/html;
            cef on;
        }
    }
"""

PAGE = b"<p><!--cef:slot hero-->generic<!--/cef:slot--></p>"
RULES = b"""
version: 1
offers:
  gold:
    slot: hero
    html: 'Gold {{ profile.first_name }}'
rules:
  - name: gold
    when: '"gold" in profile.segments'
    show: gold
"""


def plain_dir(path):
    """A directory as an operator makes it without the recipe: root's,
    0755, not setgid (tmp_path itself is the recipe's 2775 root:cef)."""
    path.mkdir()
    os.chown(path, 0, 0)
    os.chmod(path, 0o755)
    return path


def load(store, secret, *extra, check=True):
    snap = store.parent / "snap.msgpack"
    snap.write_bytes(snapshot_bytes(PROFILES))
    return cef_sync("load", "--quiet", "--store", store, "--secret", secret,
                    *extra, snap, check=check)


def start(nginx, store):
    inst = nginx.prepare(CONF % {"store": store})
    write_secret(inst.prefix / "store.secret", STORE_SECRET + b"\n")
    write_secret(inst.prefix / "signing.secret", SIGN + b"\n")
    (inst.prefix / "rules.yaml").write_bytes(RULES)
    (inst.prefix / "html" / "index.html").write_bytes(PAGE)
    return inst


def gold_page(inst):
    return request(inst.url("/index.html"), headers={
        "Cookie": "shop_customer=" + signed(SIGN, "customer", "1001")})


def test_workers_run_unprivileged(nginx, tmp_path):
    inst = start(nginx, tmp_path / "store").start()
    uids = set()
    for pid in inst.worker_pids():
        with open("/proc/%d/status" % pid) as f:
            uids.add(re.search(r"^Uid:\s+(\d+)", f.read(), re.M).group(1))
    assert uids == {str(pwd.getpwnam(WORKER_USER).pw_uid)}


def test_group_option_makes_the_store_the_workers(nginx, tmp_path):
    base = plain_dir(tmp_path / "lib")
    store = base / "store"
    secret = write_secret(base / "store.secret", STORE_SECRET + b"\n")
    load(store, secret, "--group", STORE_GROUP)

    gid = grp.getgrnam(STORE_GROUP).gr_gid
    st = os.stat(store)
    assert st.st_gid == gid and st.st_mode & 0o7777 == 0o2775
    gen = os.path.realpath(store / "current")
    assert os.stat(gen).st_mode & 0o7777 == 0o2775
    for name in ("data.mdb", "lock.mdb"):
        fst = os.stat(os.path.join(gen, name))
        assert fst.st_gid == gid, name
        assert fst.st_mode & 0o777 == 0o664, (name, oct(fst.st_mode))

    inst = start(nginx, store).start()
    status, _, body = gold_page(inst)
    assert status == 200
    assert b"Gold Greta" in body

    # an apply keeps it so, and a second load's new generation too
    load(store, secret)
    gen2 = os.path.realpath(store / "current")
    assert gen2 != gen
    assert os.stat(os.path.join(gen2, "lock.mdb")).st_mode & 0o777 == 0o664
    assert b"Gold Greta" in gold_page(inst)[2]


def test_setgid_store_directory_is_followed_without_the_option(tmp_path):
    base = plain_dir(tmp_path / "lib")
    store = base / "store"
    store.mkdir()
    os.chown(store, 0, grp.getgrnam(STORE_GROUP).gr_gid)
    os.chmod(store, 0o2775)         # install -d -g cef -m 2775 ...
    secret = write_secret(base / "store.secret", STORE_SECRET + b"\n")
    old = os.umask(0o077)           # whatever the umask
    try:
        load(store, secret)
    finally:
        os.umask(old)
    gen = os.path.realpath(store / "current")
    assert os.stat(os.path.join(gen, "lock.mdb")).st_mode & 0o777 == 0o664
    assert os.stat(os.path.join(gen, "data.mdb")).st_mode & 0o777 == 0o664


def test_load_without_group_warns_with_the_fix(nginx, tmp_path):
    base = plain_dir(tmp_path / "lib")
    store = base / "store"
    secret = write_secret(base / "store.secret", STORE_SECRET + b"\n")
    p = load(store, secret, "--nginx-user", WORKER_USER)
    err = p.stderr.decode()
    assert p.returncode == 0
    assert ("warning: nginx workers (user %s) cannot read and write"
            % WORKER_USER) in err, err
    assert "lock.mdb" in err
    assert "--group" in err and "chmod -R g+rwX %s" % store in err

    # the warning is right: the workers cannot personalise from it
    inst = start(nginx, store).start()
    status, _, body = gold_page(inst)
    assert status == 200 and b"generic" in body

    # with the fix it gives, they can
    p = load(store, secret, "--group", STORE_GROUP, "--nginx-user",
             WORKER_USER)
    assert b"warning" not in p.stderr, p.stderr
    inst.reload()
    assert b"Gold Greta" in gold_page(inst)[2]


def test_warning_names_a_closed_directory_above_the_store(tmp_path):
    closed = plain_dir(tmp_path / "closed")
    os.chmod(closed, 0o700)
    store = closed / "store"
    secret = write_secret(tmp_path / "s.secret", STORE_SECRET + b"\n")
    p = load(store, secret, "--group", STORE_GROUP, "--nginx-user",
             WORKER_USER)
    err = p.stderr.decode()
    assert "cannot enter \"%s\"" % closed in err, err
    assert "chmod o+x %s" % closed in err


def test_nginx_user_comes_from_nginx_conf(tmp_path):
    conf = open("/etc/nginx/nginx.conf").read()
    m = re.search(r"^\s*user\s+([^\s;]+)", conf, re.M)
    assert m, "Debian's nginx.conf names its worker user"
    base = plain_dir(tmp_path / "lib")
    secret = write_secret(base / "store.secret", STORE_SECRET + b"\n")
    p = load(base / "store", secret)
    assert ("nginx workers (user %s)" % m.group(1)) in p.stderr.decode()


def test_group_option_rejects_an_unknown_group(tmp_path):
    secret = write_secret(tmp_path / "s.secret", STORE_SECRET + b"\n")
    p = load(tmp_path / "store", secret, "--group", "no-such-group-cef",
             check=False)
    assert p.returncode == 2
    assert b'unknown group "no-such-group-cef"' in p.stderr
    assert not (tmp_path / "store").exists()
