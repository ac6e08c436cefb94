"""`make demo`'s script serves the demo shop through the module; Ctrl-C stops it."""

import signal
import subprocess
import time

from client import request
from conftest import REPO, free_port


def test_demo_serves_the_shop_and_stops_on_ctrl_c():
    port = free_port()
    proc = subprocess.Popen([str(REPO / "examples/demo/run")],
                            env={"DEMO_PORT": str(port), "PATH": "/usr/bin:/bin"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                status, headers, body = request("http://127.0.0.1:%d/" % port)
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline, "demo did not come up"
                time.sleep(0.05)
        assert status == 200
        assert b"Nordhaus Outdoor" in body
        assert b"Autumn collection" in body      # the hero slot's default
        status, _, body = request("http://127.0.0.1:%d/products/boots.html"
                                  % port)
        assert status == 200 and b"Vidde Hiking Boots" in body
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=15)[0].decode(errors="replace")
    assert proc.returncode == 0, out
    assert "[emerg]" not in out and "[alert]" not in out, out
