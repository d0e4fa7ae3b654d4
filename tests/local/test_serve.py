"""``python -m localdev serve`` as a developer runs it: up in seconds, answering, and gone on Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
READY = re.compile(r"on http://127\.0\.0\.1:(\d+) \(ready in [0-9.]+ s")


def test_serve_comes_up_answers_health_and_stops_cleanly_on_ctrl_c() -> None:
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
            assert process.stdout is not None
            banner = []
            for line in process.stdout:  # blocks until the runner prints; no sleeping
                banner.append(line)
                if match := READY.search(line):
                    break
            else:
                raise AssertionError("the runner exited before it was ready:\n" + "".join(banner))
            port = int(match.group(1))
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_local/health", timeout=10) as response:
                assert json.loads(response.read())["status"] == "ok"

            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=20) == 0
        finally:
            if process.poll() is None:
                process.kill()
