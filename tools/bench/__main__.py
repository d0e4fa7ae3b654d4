"""``make bench``: every performance and cost figure, written to docs/performance.md and docs/performance.json.

Usage: ``python -m tools.bench [--quick] [--only cold_start,calls,...] [--out DIR]``. Each section is a
module of this package with ``run(quick)`` (a JSON-able result) and ``markdown(result)``; the cost model
runs last and reads the others' results. Figures are of this machine, medians of several runs with min
and max, ratios measured side by side: never asserted here (the call budgets are, in ``make test``).
``--quick`` runs every section small (a smoke test, about a minute), and writes nowhere unless told.
"""

from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing
import platform
import queue
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tools.bench.sections import run_into, run_one

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("cold_start", "warm", "calls", "sweep_scaling", "timeliness", "throughput", "sizes", "cost")
TITLE = "Performance and cost"


# Run in a process of their own, beside the others: the simulated day through the local runner is the
# longest section (about 6 minutes for 2,000 appointments), and the rest fit in its time on the other core.
BESIDE = frozenset({"timeliness"})


def run_sections(names: list[str], *, quick: bool) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")  # never fork a process that holds moto's threads
    answers: multiprocessing.Queue[tuple[str, dict[str, Any]]] = context.Queue()
    beside = [
        context.Process(target=run_into, args=(name, quick, answers), name=f"bench-{name}")
        for name in names
        if name in BESIDE
    ]
    for process in beside:
        print(f"bench: {process.name.removeprefix('bench-')} … (in a process of its own)", file=sys.stderr, flush=True)
        process.start()
    results: dict[str, Any] = {}
    for name in names:
        if name not in BESIDE:
            results[name] = run_one(name, quick, results)
    while len(results) < len(names):
        try:
            name, result = answers.get(timeout=5)
        except queue.Empty:
            failed = [p for p in beside if p.exitcode not in (None, 0)]
            if failed:
                raise SystemExit(f"bench: {failed[0].name} failed (exit {failed[0].exitcode})") from None
            continue
        results[name] = result
    for process in beside:
        process.join()
    return {name: results[name] for name in names}


def document(results: dict[str, Any], *, quick: bool) -> str:
    machine = f"{platform.machine()}, {_cores()} cores, Python {platform.python_version()}"
    lines = [
        f"# {TITLE}",
        "",
        "Written by `make bench` (`python -m tools.bench`): do not edit by hand, re-run it. The same figures are "
        "in `performance.json`. "
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine}"
        + (" (a `--quick` run: small sizes)." if quick else "."),
        "",
        "Absolute times of one run are not comparable with another's on a shared machine: read the ratios, which "
        "are measured side by side in the same run, and the counts, which are deterministic (the AWS call budgets "
        "are asserted by `tests/integration/test_call_budgets.py`).",
        "",
        "| section | seconds to measure |",
        "|---|---:|",
        *(
            f"| [{name.replace('_', ' ')}](#{_anchor(name, results)}) | {results[name]['seconds_taken']} |"
            for name in results
        ),
        "",
    ]
    lines += _summary(results)
    for name, result in results.items():
        module = importlib.import_module(f"tools.bench.{name}")
        lines.append(module.markdown(result).rstrip() + "\n")
    return "\n".join(lines)


def _summary(results: dict[str, Any]) -> list[str]:
    """The headline of each section that ran, from its own figures."""
    said: list[str] = []
    if cold := results.get("cold_start"):
        with_pyc, without = cold["variants"]["bytecode"], cold["variants"]["source"]
        functions = [name for name in with_pyc if name != "baseline"]
        ratios = [with_pyc[name]["ratio"]["median"] for name in functions]
        saved = [without[name]["cpu_ms"]["median"] - with_pyc[name]["cpu_ms"]["median"] for name in functions]
        met = sum(ratio <= cold["goal_ratio"] for ratio in ratios)
        said.append(
            f"- **Cold start**: {min(ratios):.2f}x to {max(ratios):.2f}x the minimal Powertools function "
            f"({met} of {len(functions)} at or below {cold['goal_ratio']:.2f}x); shipping bytecode saves "
            f"{min(saved):.0f} to {max(saved):.0f} ms of CPU per cold start."
        )
    if calls := results.get("calls"):
        over = [n for n, o in calls["operations"].items() if o.get("calls") != calls["budgets"].get(n)]
        said.append(
            f"- **AWS calls**: {len(calls['operations'])} operations, "
            + ("every one within its budget" if not over else f"{len(over)} over budget: {', '.join(over)}")
            + " (asserted by the tests)."
        )
    if sweep := results.get("sweep_scaling"):
        low, high = sweep["time_ratio_sizes"]
        said.append(
            f"- **Sweep scaling**: {high:,} stored against {low:,}, the same {sweep['due']} due: items read "
            f"x{sweep['items_read_ratio']:.2f}, time x{sweep['time_ratio']:.2f}."
        )
    if day := results.get("timeliness"):
        said.append(
            f"- **Rule timeliness**: {day['appointments']:,} appointments over {day['hours']} h, "
            f"{sum(day['applied'].values()):,} effects: {day['missed']} missed, {day['twice']} twice, "
            f"{day['early']} early, at most {day['max_lateness_ticks']} tick late."
        )
    if flow := results.get("throughput"):
        said.append(
            f"- **Throughput** (moto, this machine): {flow['webhooks']['per_second']['median']:.0f} webhooks/s "
            f"from {flow['webhooks']['threads']} threads through the local runner; "
            f"{flow['processor']['per_second']['median']:.0f} events/s applied by the processor."
        )
    if (sizes := results.get("sizes")) and sizes.get("built"):
        layer = sizes["artifacts"]["CoreLayer"]
        said.append(
            f"- **Size**: the layer {layer['unzipped'] / 1e6:.1f} MB unzipped, {layer['zipped'] / 1e6:.1f} MB "
            f"zipped; the largest function with it {sizes['largest_function_with_layer'] / 250e6:.0%} of "
            "Lambda's 250 MB."
        )
    if cost := results.get("cost"):
        monthly = cost["monthly"]
        said.append(
            "- **Cost**: "
            + "; ".join(
                f"{float(volume):,.0f} appointments a month ${bill['total_usd']:,.2f} "
                f"(${bill['with_console_usd']:,.2f} with one console)"
                for volume, bill in monthly.items()
            )
            + f"; ${cost['fixed_usd']:,.2f} of it fixed per stack."
        )
    return ["## What the figures say", "", *said, ""] if said else []


def _anchor(name: str, results: dict[str, Any]) -> str:
    module = importlib.import_module(f"tools.bench.{name}")
    heading = module.markdown(results[name]).lstrip().splitlines()[0].lstrip("#").strip().lower()
    return "".join(char for char in heading.replace(" ", "-") if char.isalnum() or char in "-_")


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every section small: a smoke test")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections, in this order")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default docs/, not with --quick)")
    arguments = parser.parse_args(argv)
    names = [name.strip() for name in arguments.only.split(",") if name.strip()]
    unknown = sorted(set(names) - set(SECTIONS))
    if unknown:
        parser.error(f"--only: unknown sections {unknown}; known: {', '.join(SECTIONS)}")
    started = time.perf_counter()
    results = run_sections(names, quick=arguments.quick)
    out = arguments.out or (None if arguments.quick else ROOT / "docs")
    text = document(results, quick=arguments.quick)
    if out is None:
        print(text)
    else:
        out.mkdir(parents=True, exist_ok=True)
        (out / "performance.md").write_text(text)
        (out / "performance.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
        print(f"bench: wrote {out / 'performance.md'} and {out / 'performance.json'}", file=sys.stderr)
    print(f"bench: {time.perf_counter() - started:.0f} s in all", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
