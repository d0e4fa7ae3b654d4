"""Running one section of the bench: here, not in ``__main__``, so a spawned process can import it."""

from __future__ import annotations

import importlib
import inspect
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import multiprocessing

# The package the sections measure, importable in a spawned process as in the tests (pyproject's pythonpath).
LAYER = str(Path(__file__).resolve().parents[2] / "layers" / "core")
if LAYER not in sys.path:
    sys.path.insert(0, LAYER)


def run_one(name: str, quick: bool, measured: dict[str, Any]) -> dict[str, Any]:
    module = importlib.import_module(f"tools.bench.{name}")
    started = time.perf_counter()
    print(f"bench: {name} …", file=sys.stderr, flush=True)
    arguments: dict[str, Any] = {"quick": quick}
    if "measured" in inspect.signature(module.run).parameters:
        arguments["measured"] = measured
    result: dict[str, Any] = module.run(**arguments)
    result["seconds_taken"] = round(time.perf_counter() - started, 1)
    print(f"bench: {name} done in {result['seconds_taken']} s", file=sys.stderr, flush=True)
    return result


def run_into(name: str, quick: bool, answers: multiprocessing.Queue[tuple[str, dict[str, Any]]]) -> None:
    answers.put((name, run_one(name, quick, {})))
