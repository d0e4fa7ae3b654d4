"""How long ``python -m localdev serve`` takes from launch to answering ``/_local/health``.

Usage: ``python -m tools.bench_local_startup [runs]`` (default 5). Each run starts a fresh process on
a free loopback port, polls health until it answers, then stops it with SIGINT and checks it exited.
Prints each run and the median; a figure, never a test: this machine is noisy.
"""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
READY = re.compile(r"on http://127\.0\.0\.1:(\d+) \(ready in ([0-9.]+) s")


@dataclass
class Served:
    port: int
    own_start_seconds: float  # what the runner's banner reports
    exit_code: int | None = None  # set once the runner stopped
    output: str = ""  # everything it printed, once it stopped


@contextmanager
def serving(stop: signal.Signals = signal.SIGINT) -> Iterator[Served]:
    """``python -m localdev serve`` on a free loopback port until the block ends, then Ctrl-C (``stop``)."""
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
            banner = []
            for line in process.stdout or ():  # blocks until the runner prints; no sleeping
                banner.append(line)
                if match := READY.search(line):
                    break
            else:
                raise RuntimeError("the runner exited before it was ready:\n" + "".join(banner))
            served = Served(port=int(match.group(1)), own_start_seconds=float(match.group(2)))
            yield served
            process.send_signal(stop)
            served.exit_code = process.wait(timeout=20)  # its last lines are few: the pipe cannot fill up
            served.output = "".join(banner) + (process.stdout.read() if process.stdout else "")
        finally:
            if process.poll() is None:
                process.kill()


def health(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_local/health", timeout=10) as response:
        document: dict[str, Any] = json.loads(response.read())
        return document


def one_run() -> tuple[float, float]:
    """Seconds from launch to the first answer of /_local/health, and the runner's own start time."""
    launched = time.monotonic()
    with serving() as served:
        health(served.port)
        answered = time.monotonic() - launched
    if served.exit_code != 0:
        raise SystemExit("the runner did not stop cleanly")
    return answered, served.own_start_seconds


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    figures = [one_run() for _ in range(runs)]
    for index, (answered, own) in enumerate(figures, 1):
        print(f"run {index}: health answered {answered:.2f} s after launch (runner's own start {own:.2f} s)")
    launch_to_health = [a for a, _ in figures]
    print(f"median {statistics.median(launch_to_health):.2f} s, max {max(launch_to_health):.2f} s over {runs} runs")


if __name__ == "__main__":
    main()
