"""The README's shell blocks that talk to the local runner, run as written against a runner on a free port.

Each ```bash block that mentions ``localhost:3000`` or ``localdev send`` runs with ``bash -e``, in README
order, like one terminal session: the variables a block sets (``T``, ``ID``, ...) are there for the next
ones. ``localhost:3000`` becomes the runner's address, ``localdev send`` finds it through
``$LOCALDEV_URL``, ``.venv/bin/python`` is this interpreter and the dev ops token is the test runner's.
Every block must exit 0 and everything it prints that looks like JSON must parse, and not be an error.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from localdev.template import TEMPLATE
from tests.local.conftest import OPS_TOKEN, running

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
_BLOCK = re.compile(r"^```bash\n(.*?)^```$", flags=re.MULTILINE | re.DOTALL)
_ASSIGNED = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=", flags=re.MULTILINE)


def runner_blocks() -> list[str]:
    blocks = _BLOCK.findall(README.read_text())
    return [block for block in blocks if "localhost:3000" in block or "localdev send" in block]


def json_values(output: str) -> list[Any]:
    """Every JSON value in ``output`` (curl prints them back to back); other lines are skipped."""
    decoder = json.JSONDecoder()
    values, index = [], 0
    while index < len(output):
        if output[index].isspace():
            index += 1
        elif output[index] in "{[":
            value, index = decoder.raw_decode(output, index)  # a ValueError fails the test
            values.append(value)
        else:
            line_end = output.find("\n", index)
            index = len(output) if line_end < 0 else line_end + 1
    return values


def test_the_readme_has_runner_blocks() -> None:
    blocks = runner_blocks()
    assert len(blocks) >= 3
    assert "localdev send" in blocks[0]  # the first screen


def test_the_readme_runner_blocks_run_as_written(tmp_path: Path) -> None:
    state = tmp_path / "state.sh"
    state.write_text("")
    with running(TEMPLATE, background=True) as local:
        address = local.base.removeprefix("http://")
        env = {**os.environ, "LOCALDEV_URL": local.base, "OPS_API_TOKEN": OPS_TOKEN}
        for number, block in enumerate(runner_blocks(), 1):
            script = block.replace("localhost:3000", address).replace(".venv/bin/python", sys.executable)
            script = script.replace("dev-ops-token", OPS_TOKEN)
            names = sorted(set(_ASSIGNED.findall(block)))
            keep = "".join(f'printf "%s=%q\\n" {name} "${name}" >> "{state}"\n' for name in names)
            run = subprocess.run(  # noqa: S603 - our own README, against our own runner
                ["bash", "-e", "-c", f'source "{state}"\n{script}\n{keep}'],  # noqa: S607
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert run.returncode == 0, f"block {number}:\n{block}\nstdout:\n{run.stdout}\nstderr:\n{run.stderr}"
            values = json_values(run.stdout)
            assert values, f"block {number} printed no JSON:\n{run.stdout}"
            errors = [value for value in values if isinstance(value, dict) and "error" in value]
            assert not errors, f"block {number}:\n{block}\nanswered errors: {errors}"
            if "localhost:3000/_local/psa" in block:  # the write-back example: the no-show reached the ticket
                kinds = [(w["ticket_id"], w["kind"]) for w in values[-1]["items"]]
                assert kinds[-2:] == [("48213", "status"), ("48213", "note")], kinds
            if "timezest:sreq_readme1" in block:  # the TimeZest example: the poller took the booking in
                [appointment] = values[-1]["items"]
                assert (appointment["status"], appointment["technicians"]) == ("scheduled", [])
                assert appointment["ticket"]["id"] == "48213"
