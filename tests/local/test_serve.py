"""``python -m localdev serve`` as a developer runs it: up in seconds, answering, and gone on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from tools.bench_local_startup import READY, ROOT, health, serving


def test_serve_comes_up_answers_health_and_stops_cleanly_on_ctrl_c() -> None:
    with serving() as served:
        assert health(served.port)["status"] == "ok"
    assert served.exit_code == 0


def test_serve_stops_in_order_on_sigterm_and_says_its_state_is_gone() -> None:
    # Given `python -m localdev serve` up on a free loopback port
    environment = {key: value for key, value in os.environ.items() if not key.startswith("AWS_ENDPOINT_URL")}
    with subprocess.Popen(
        [sys.executable, "-m", "localdev", "serve", "--port", "0", "--clock", "manual"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        try:
            banner = ""
            for line in process.stdout or ():  # blocks until the runner prints; no sleeping
                banner += line
                if match := READY.search(line):
                    break
            assert match, banner
            assert health(int(match.group(1)))["status"] == "ok"

            # When it gets SIGTERM
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)  # its last lines are few: the pipe cannot fill up meanwhile
            rest = banner + (process.stdout.read() if process.stdout else "")
        finally:
            if process.poll() is None:
                process.kill()

    # Then it stopped cleanly, saying so
    assert process.returncode == 0
    assert "State (tables, queues, mail) lives in memory: it is gone when the runner stops." in rest
    assert "stopping: new requests get 503" in rest
    assert "stopped; its tables, queues and mail are gone" in rest
