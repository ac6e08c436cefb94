# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""Integration harness: Debian's nginx binary loading the freshly built module.

Modelled on nginx-tests: every test gets its own prefix and free loopback
ports, nginx runs as users run it (a master and two workers), and after each
test error.log must hold no [alert], [crit], [emerg] or sanitizer report.

Fixtures
  upstream   an in-process HTTP upstream stub (see upstream.py)
  nginx      a factory:
               nginx.check(snippet)  -> (returncode, output) of `nginx -t`
               nginx.start(snippet)  -> a running Nginx instance
             The snippet goes inside `http { }`.  Tokens replaced in it:
               @PORT@ @PORT2@ @PORT3@  free loopback ports (inst.port(i))
               @UPSTREAM@              host:port of the upstream stub
               @PREFIX@                the instance's directory
               @REPO@                  the repository root
               @LISTEN_H2@             a listen on @PORT2@ that speaks
                                       HTTP/2 without TLS (h2c), in the
                                       syntax of NGINX_BIN's version:
                                       "listen ... http2" before 1.25.1,
                                       "http2 on" since

NGINX_BIN and CEF_MODULE_SO run the suite against another nginx and the
module built for it (make test-nginx NGINX=1.30, mk/matrix.mk).

CEF_VALGRIND=1 (make test-valgrind) runs every nginx under valgrind memcheck
in one process (master_process off), with longer timeouts, and fails a test
whose valgrind log reports an error or a definite leak.  Suppressions:
tests/valgrind/nginx.supp; more valgrind options in CEF_VALGRIND_OPTS
(e.g. --track-origins=yes).
"""

import functools
import glob
import os
import pathlib
import re
import signal
import socket
import subprocess
import time

import pytest

from upstream import Upstream

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = REPO / "build"
# make test-nginx NGINX=1.30 (mk/matrix.mk) points both at another nginx
# version and the module built against its tree
MODULE = pathlib.Path(os.environ.get("CEF_MODULE_SO",
                                     BUILD / "ngx_http_cef_module.so"))
NGINX_BIN = os.environ.get("NGINX_BIN", "/usr/sbin/nginx")

VALGRIND = os.environ.get("CEF_VALGRIND") == "1"
VALGRIND_CMD = [
    "valgrind", "--tool=memcheck", "--quiet", "--num-callers=40",
    "--leak-check=full", "--show-leak-kinds=definite",
    "--errors-for-leak-kinds=definite",
    "--suppressions=%s" % (REPO / "tests" / "valgrind" / "nginx.supp"),
] + os.environ.get("CEF_VALGRIND_OPTS", "").split()
# how much longer to wait for nginx under valgrind
SLOW = 8 if VALGRIND else 1

# Workers run as Debian runs them, unprivileged; the store's group is the
# one docs/store.md's recipe sets up (WORKER_USER is a member of it).
WORKER_USER = "www-data"
STORE_GROUP = "cef"

BAD_LOG = re.compile(r"\[(alert|crit|emerg)\]|AddressSanitizer|"
                     r"LeakSanitizer|runtime error:|UndefinedBehaviorSanitizer")

MAIN_CONF = """\
load_module {module};
daemon off;
master_process {master};
worker_processes {workers};
{user}
error_log {prefix}/error.log {level};
pid {prefix}/nginx.pid;
events {{ worker_connections 1024; }}
{main}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    types {{
        text/html html;
        text/css css;
        application/javascript js;
        image/png png;
    }}
    default_type application/octet-stream;

{http}
}}
"""


@functools.lru_cache(maxsize=None)
def nginx_version():
    """NGINX_BIN's version as a tuple, (1, 22, 1)."""
    out = subprocess.run([NGINX_BIN, "-v"], capture_output=True, text=True,
                         timeout=60).stderr
    m = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", out)
    assert m, "no version in `%s -v`: %r" % (NGINX_BIN, out)
    return tuple(int(x) for x in m.groups())


def listen_h2(port):
    """Server-level directives for an h2c listen on port: 1.25.1 moved
    HTTP/2 from a listen parameter to the "http2" directive (and
    deprecated the parameter)."""
    if nginx_version() >= (1, 25, 1):
        return "listen 127.0.0.1:%d; http2 on;" % port
    return "listen 127.0.0.1:%d http2;" % port


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ppid(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


class Nginx:
    """One nginx master (and its workers) in its own prefix."""

    def __init__(self, factory, prefix, snippet, level, workers, main):
        self.factory = factory
        self.prefix = prefix
        self.ports = [free_port() for _ in range(3)]
        self.conf = prefix / "nginx.conf"
        self.error_log = prefix / "error.log"
        self.proc = None
        self.write_conf(snippet, level=level, workers=workers, main=main)

    # -- configuration ------------------------------------------------------

    def expand(self, text):
        text = text.replace("@LISTEN_H2@", listen_h2(self.ports[1]))
        for i, port in enumerate(self.ports):
            text = text.replace("@PORT%s@" % ("" if i == 0 else i + 1),
                                str(port))
        return (text.replace("@UPSTREAM@", "127.0.0.1:%d"
                             % self.factory.upstream.port)
                    .replace("@PREFIX@", str(self.prefix))
                    .replace("@REPO@", str(REPO)))

    def write_conf(self, snippet, level="info", workers=2, main=""):
        for d in ("tmp", "html", "logs"):
            (self.prefix / d).mkdir(exist_ok=True)
        user = "user %s;" % WORKER_USER if os.geteuid() == 0 else ""
        self.conf.write_text(MAIN_CONF.format(
            module=MODULE, master="off" if VALGRIND else "on",
            workers=workers, user=user, prefix=self.prefix,
            level=level, main=self.expand(main), http=self.expand(snippet)))

    def _cmd(self, *extra):
        return [NGINX_BIN, "-p", str(self.prefix), "-c", str(self.conf),
                "-e", str(self.error_log), *extra]

    def test_config(self):
        p = subprocess.run(self._cmd("-t"), capture_output=True, text=True,
                           timeout=60)
        return p.returncode, p.stdout + p.stderr

    # -- lifecycle ----------------------------------------------------------

    def start(self):
        rc, out = self.test_config()
        assert rc == 0, out
        cmd = self._cmd()
        if VALGRIND:
            cmd = VALGRIND_CMD + ["--log-file=%s/valgrind-%%p.log"
                                  % self.prefix] + cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        self.wait_ready()
        return self

    def wait_ready(self, timeout=10):
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("nginx exited: %s\n%s" % (
                    self.proc.returncode, self.log_text()))
            # the pid file comes after nginx installed its signal handlers
            # (a reload sent before them would kill it), the listening
            # sockets before both
            if (self._pid_written() and len(self.worker_pids()) >= 1
                    and self._accepts()):
                return
            time.sleep(0.02)
        raise AssertionError("nginx did not come up:\n" + self.log_text())

    def _pid_written(self):
        try:
            text = (self.prefix / "nginx.pid").read_text().strip()
        except OSError:
            return False
        return text == str(self.proc.pid)

    def _accepts(self):
        try:
            with socket.create_connection(("127.0.0.1", self.ports[0]), 0.2):
                return True
        except OSError:
            return False

    def worker_pids(self):
        if self.proc is None:
            return []
        if VALGRIND:
            # one process serves (master_process off)
            return [self.proc.pid] if self.proc.poll() is None else []
        pids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit() and _ppid(int(entry)) == self.proc.pid:
                pids.append(int(entry))
        return sorted(pids)

    def reload(self, snippet=None, timeout=15, **kw):
        """Rewrite the configuration (if given), SIGHUP, and wait until every
        old worker is gone and a full set of new ones is up."""
        if snippet is not None:
            self.write_conf(snippet, **kw)
        if VALGRIND:
            return self._reload_single(timeout * SLOW)
        old = set(self.worker_pids())
        os.kill(self.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = set(self.worker_pids())
            if now and not (now & old):
                return
            time.sleep(0.05)
        raise AssertionError("reload did not finish:\n" + self.log_text())

    def _reload_single(self, timeout):
        """master_process off: the one process re-reads its configuration
        in place; wait for its "reconfiguring" notice and for it to
        accept again."""
        before = self.log_text().count("reconfiguring")
        os.kill(self.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log_text().count("reconfiguring") > before:
                time.sleep(0.5)
                if self._accepts():
                    return
            time.sleep(0.05)
        raise AssertionError("reload did not finish:\n" + self.log_text())

    def valgrind_problems(self):
        """Valgrind reports with errors or definite leaks, as text."""
        out = []
        for path in sorted(glob.glob(str(self.prefix / "valgrind-*.log"))):
            with open(path, errors="replace") as f:
                text = f.read()
            # --quiet: anything but a warning is an error or a leak
            bad = [line for line in text.splitlines()
                   if line.split("== ", 1)[-1].strip()
                   and "Warning:" not in line]
            if bad:
                out.append("%s:\n%s" % (path, "\n".join(bad)[-6000:]))
        return out

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGQUIT)
        deadline = time.monotonic() + 15 * SLOW
        while time.monotonic() < deadline:
            try:
                self.proc.wait(1)
                return
            except subprocess.TimeoutExpired:
                pass
            if VALGRIND:
                # valgrind can hold a signal for the one nginx process
                # until its epoll_wait() returns: give it an event
                self._accepts()
        self.proc.kill()
        self.proc.wait(5)
        raise AssertionError("nginx did not quit on SIGQUIT")

    # -- helpers ------------------------------------------------------------

    def port(self, i=0):
        return self.ports[i]

    def url(self, path, i=0):
        return "http://127.0.0.1:%d%s" % (self.ports[i], path)

    def log_text(self):
        try:
            return self.error_log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def memory_kb(self, field="VmHWM"):
        """{worker pid: value of /proc/PID/status field in kB}"""
        out = {}
        for pid in self.worker_pids():
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith(field + ":"):
                        out[pid] = int(line.split()[1])
        return out


class NginxFactory:
    def __init__(self, tmp_path, upstream):
        self.tmp_path = tmp_path
        self.upstream = upstream
        self.instances = []

    def _new(self, snippet, level, workers, main):
        prefix = self.tmp_path / ("nginx%d" % len(self.instances))
        prefix.mkdir()
        inst = Nginx(self, prefix, snippet, level, workers, main)
        self.instances.append(inst)
        return inst

    def prepare(self, snippet, level="info", workers=2, main=""):
        """An instance with its configuration written but not started, so
        that a test can put files into inst.prefix first."""
        return self._new(snippet, level, workers, main)

    def check(self, snippet, main=""):
        inst = self._new(snippet, "info", 2, main)
        inst.expect_bad_log = True
        return inst.test_config()

    def start(self, snippet, level="info", workers=2, main=""):
        return self._new(snippet, level, workers, main).start()


def pytest_configure(config):
    # Test directories live under build/, not in /tmp/pytest-of-USER: the
    # workers (www-data) must pass through every directory above them, and
    # every pytest run on the machine resets /tmp/pytest-of-USER to 0700.
    if config.option.basetemp is None and os.geteuid() == 0:
        config.option.basetemp = str(BUILD / "pytest-tmp")


@pytest.fixture(scope="session", autouse=True)
def built_module():
    assert MODULE.exists(), "build the module first: make all"
    return MODULE


@pytest.fixture(scope="session")
def store_gid():
    """The store group of docs/store.md's recipe, with the worker user in
    it (as the Debian package sets it up); None when not root."""
    if os.geteuid() != 0:
        return None
    # imported here: cef_fixtures imports this file's constants
    from cef_fixtures import store_group
    return store_group()


@pytest.fixture(autouse=True)
def shared_tmp_path(tmp_path, store_gid):
    """tmp_path plays /var/lib/cef: group STORE_GROUP, setgid, 2775, so a
    store cef-sync creates in it is the workers' (cef-sync keeps a setgid
    store directory group-writable); the directories above it only let
    the workers pass (o+x)."""
    if store_gid is None:
        return tmp_path
    os.chown(tmp_path, -1, store_gid)
    os.chmod(tmp_path, 0o2775)
    for parent in tmp_path.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            os.chmod(parent, (mode & 0o7777) | 0o001)
    return tmp_path


@pytest.fixture(scope="session")
def upstream():
    stub = Upstream()
    yield stub
    stub.close()


@pytest.fixture
def nginx(tmp_path, upstream):
    factory = NginxFactory(tmp_path, upstream)
    yield factory
    problems = []
    for inst in factory.instances:
        try:
            inst.stop()
        except AssertionError as e:
            problems.append(str(e))
        bad = [line for line in inst.log_text().splitlines()
               if BAD_LOG.search(line)]
        if bad and not getattr(inst, "expect_bad_log", False):
            problems.append("%s:\n%s" % (inst.error_log, "\n".join(bad[:20])))
        if inst.proc is not None:
            err = inst.proc.stderr.read().decode(errors="replace")
            if BAD_LOG.search(err):
                problems.append("nginx stderr:\n" + err[-4000:])
        if VALGRIND:
            problems.extend(inst.valgrind_problems())
    assert not problems, "\n".join(problems)
