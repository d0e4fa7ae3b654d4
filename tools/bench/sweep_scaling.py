"""One sweep over a small and a large table with the same appointments due: does its work grow with the table?

The ``due`` index is sparse and sharded (``adapters/dynamo_store.py``): a sweep queries each shard for what is
due by now, so it should read the due appointments, not the table. Every stored appointment here is
scheduled and assigned, with its reminder still ahead: each one is in the index, which is the hardest case
for it. The same 100 appointments are due in every table (reminders, pre-notices, auto-cancels, no-shows).

Two measures:

- **Items read**, under moto, by the production sweeper (``wiring.sweeper()``, as the scheduled-checks
  function builds it: the real ``DynamoAppointmentStore``, outbox relay and unmatched alerts, over the stack
  of ``tests/integration/stack.py``), at 1,000 and 100,000 appointments stored. Botocore ``after-call``
  hooks on every DynamoDB client add up ``ScannedCount`` of each Query, the item of each GetItem and the
  items of each BatchGetItem. It runs without the function's time limit: moto's Query reads its whole
  table, so at 100,000 items a sweep under moto takes longer than the function's 55 s, and a run stopped
  early would read less. Moto's times say nothing of DynamoDB's and are not reported.

  Two shortcuts through moto internals keep the section near 2 minutes (122 s measured, on a loaded
  machine): the tables are filled straight through moto's ``Table.put_item`` (18 s for 100,000 against
  35 s with BatchWriteItem), the items being exactly what the adapter writes for an appointment (its
  private ``_appointment_put``; history items are left out, a sweep never reads them); and moto's deep
  copy of the whole table for each item of a TransactWriteItems (its rollback; seconds per commit at
  100,000 items) is replaced by the local runner's (``localdev.moto_memory``: only the items a transaction
  names are saved). The run still fails if a transaction is cancelled: none should be.
- **Time** of the sweep (the ``Sweeper`` service) on the in-memory store of the unit tests
  (``tests/fakes.py``), whose ``due`` lookup models the same sharded index (a sorted list per shard), at
  1,000, 10,000 and 100,000 appointments stored: median, min and max of 5 runs, the sizes interleaved in
  each round so that the machine's noise hits them alike, each run on a freshly filled store. Mails due are
  looked up through the index but not rendered or sent: that work is per mail, whatever the table.
"""

from __future__ import annotations

import contextlib
import io
import json
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto.dynamodb import models as moto_dynamodb

from appointments import wiring
from appointments.adapters.clock import ManualClock
from appointments.adapters.dynamo_store import DynamoAppointmentStore
from appointments.domain import lifecycle
from appointments.domain.coupons import CouponPolicy
from appointments.domain.ids import new_ulid
from appointments.domain.lifecycle import Change
from appointments.domain.rules import RuleTimings, next_check
from appointments.services.sweeper import Sweeper, SweepPolicy
from localdev.moto_memory import moto_patched
from localdev.resources import ACCOUNT_ID, REGION
from tests.factories import CATALOG, NOW, OPS, SAM, a_draft
from tests.fakes import InMemoryAppointmentStore
from tests.integration.stack import stack_under_moto

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from appointments.domain.model import Appointment
    from appointments.ports import DueItem

ROOT = Path(__file__).resolve().parents[2]
PLOT = ROOT / "docs" / "performance-sweep.svg"
TABLE = "AppointmentsTable"
DUE = 100
BOOKED_AT = NOW - timedelta(days=7)  # long before every rule, so none is skipped for a late booking
TIMINGS = RuleTimings()
MOTO_SIZES = (1_000, 100_000)
MEMORY_SIZES = (1_000, 10_000, 100_000)
QUICK_MOTO_SIZES = (200, 2_000)
QUICK_MEMORY_SIZES = (1_000, 10_000)
ROUNDS = 5
READ_OPERATIONS = ("Query", "GetItem", "BatchGetItem")


def _appointment(index: int, start: datetime, *, assigned: bool) -> Appointment:
    # Ids from a fixed clock and a counter's worth of minutes: the same tables on every run.
    booked = BOOKED_AT + timedelta(microseconds=index)
    created = lifecycle.create(
        a_draft(
            start=start, end=start + timedelta(minutes=30), technicians=(SAM,) if assigned else (), external_refs=()
        ),
        appointment_id=new_ulid(booked),
        catalog=CATALOG,
        at=BOOKED_AT,
        actor=OPS,
    ).after
    return created.model_copy(update={"next_due_at": next_check(created, CATALOG, TIMINGS)})


def due_appointments(count: int = DUE) -> list[Appointment]:
    """``count`` due now, by turns: an assigned one for its reminder, unassigned ones inside the pre-notice
    and the auto-cancel windows, and an assigned one past its start for the no-show."""
    kinds = (
        (timedelta(hours=23), True),
        (timedelta(hours=2), False),
        (timedelta(minutes=30), False),
        (timedelta(minutes=-15), True),
    )
    due = []
    for index in range(count):
        ahead, assigned = kinds[index % len(kinds)]
        spread = timedelta(minutes=index // len(kinds))
        start = NOW + ahead - spread
        due.append(_appointment(index, start, assigned=assigned))
    return due


def stored_appointments(total: int, due: int = DUE) -> list[Appointment]:
    """``due`` due now, and the rest scheduled over the next two months: each in the index, none due yet."""
    due_now = due_appointments(due)
    template = _appointment(1_000_000, NOW + timedelta(days=2), assigned=True)
    rest = []
    for index in range(total - len(due_now)):
        start = NOW + timedelta(days=2, minutes=index % (60 * 24 * 60))
        appointment = template.model_copy(
            update={
                "id": new_ulid(BOOKED_AT + timedelta(microseconds=10_000 + index)),
                "start": start,
                "end": start + timedelta(minutes=30),
            }
        )
        rest.append(appointment.model_copy(update={"next_due_at": next_check(appointment, CATALOG, TIMINGS)}))
    return due_now + rest


# -- items read, under moto ---------------------------------------------------------------------


@dataclass
class ReadCounter:
    """What the DynamoDB calls of a run read: calls per operation, and items read."""

    calls: Counter[str]
    items: Counter[str]
    cancelled: int = 0

    def __call__(self, http_response: Any, parsed: dict[str, Any], model: Any, **kwargs: Any) -> None:
        name = model.name
        self.calls[name] += 1
        if name == "TransactWriteItems" and "Error" in parsed:
            self.cancelled += 1
        if name == "Query":
            self.items[name] += int(parsed.get("ScannedCount", parsed.get("Count", 0)))
        elif name == "GetItem":
            self.items[name] += 1 if "Item" in parsed else 0
        elif name == "BatchGetItem":
            self.items[name] += sum(len(found) for found in parsed.get("Responses", {}).values())


def _load_table(items: Sequence[dict[str, Any]]) -> float:
    """Straight into moto's table: half the time of BatchWriteItem, the same items."""
    table = moto_dynamodb.dynamodb_backends[ACCOUNT_ID][REGION].get_table(TABLE)
    started = time.perf_counter()
    for item in items:
        table.put_item(item)
    return time.perf_counter() - started


def sweep_reads_under_moto(total: int, due: int = DUE) -> dict[str, Any]:
    """One sweep of the scheduled-checks function's sweeper under moto with ``total`` stored, ``due`` due."""
    appointments = stored_appointments(total, due)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        return _sweep_reads(patch, appointments)


def _sweep_reads(patch: pytest.MonkeyPatch, appointments: Sequence[Appointment]) -> dict[str, Any]:
    with moto_patched(), stack_under_moto(patch, NOW):
        builder = DynamoAppointmentStore(
            boto3.client("dynamodb", region_name=REGION), TABLE, due_shards=wiring.settings().due_shards
        )
        items = [dict(builder._appointment_put(Change(None, a, ()))["Put"]["Item"]) for a in appointments]
        load_seconds = _load_table(items)
        counter = ReadCounter(Counter(), Counter())
        # Clients copy the session's handlers when made: the sweeper's are made by wiring, below.
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        session = boto3.DEFAULT_SESSION
        assert session is not None  # noqa: S101 - set up just above
        session.events.register("after-call.dynamodb", counter)
        try:
            # The function's own sweeper, without its time limit: moto's Query reads its whole table, which
            # at 100,000 items takes longer than the function's 55 s, and a stopped run would read less.
            with contextlib.redirect_stdout(io.StringIO()):  # the metrics' EMF lines, not this report's
                report = wiring.sweeper().sweep()
        finally:
            session.events.unregister("after-call.dynamodb", counter)
    if counter.cancelled:
        raise RuntimeError(f"{counter.cancelled} transactions cancelled: the sweep raced nothing, none should be")
    summary = report.summary()
    return {
        "stored": len(appointments),
        "due": summary["due"],
        "applied": summary["applied"],
        "skipped": summary["skipped"],
        "stopped_early": summary["stopped_early"],
        "mails_sent": report.mails_sent,
        "items_read": sum(counter.items.values()),
        "items_read_by_operation": dict(sorted(counter.items.items())),
        "calls": dict(sorted(counter.calls.items())),
        "load_seconds": load_seconds,
    }


# -- time, in memory -----------------------------------------------------------------------------


class _FoundMail:
    """The sweep's mail seam, finding the due mails through the index and sending nothing."""

    def __init__(self) -> None:
        self.found = 0

    def send_due(self, items: tuple[DueItem, ...]) -> int:
        self.found += len(items)
        return 0


def _filled_store(appointments: Sequence[Appointment]) -> InMemoryAppointmentStore:
    store = InMemoryAppointmentStore(due_shards=4)
    for appointment in appointments:
        store.commit(Change(None, appointment, ()))
    return store


def _timed_sweep(appointments: Sequence[Appointment]) -> tuple[float, int]:
    store = _filled_store(appointments)
    policy = SweepPolicy(coupons=CouponPolicy(), ops_alert_email="ops@msp.example", timings=TIMINGS, shards=4)
    sweeper = Sweeper(store, ManualClock(NOW), CATALOG, policy, mail=_FoundMail())
    started = time.perf_counter()
    report = sweeper.sweep()
    return time.perf_counter() - started, report.due


def sweep_times_in_memory(sizes: Sequence[int], rounds: int) -> dict[int, dict[str, Any]]:
    tables = {size: stored_appointments(size) for size in sizes}
    seconds: dict[int, list[float]] = {size: [] for size in sizes}
    due: dict[int, int] = {}
    _timed_sweep(tables[sizes[0]])  # a first sweep imports and warms what every later one uses
    for _ in range(rounds):
        for size in sizes:
            elapsed, due[size] = _timed_sweep(tables[size])
            seconds[size].append(elapsed)
    return {size: {"due": due[size], "ms": _summary([s * 1000 for s in seconds[size]])} for size in sizes}


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


# -- the section ---------------------------------------------------------------------------------


def run(quick: bool = False) -> dict[str, Any]:
    moto_sizes = QUICK_MOTO_SIZES if quick else MOTO_SIZES
    memory_sizes = QUICK_MEMORY_SIZES if quick else MEMORY_SIZES
    rounds = 3 if quick else ROUNDS
    started = time.perf_counter()
    reads = [sweep_reads_under_moto(size) for size in moto_sizes]
    times = sweep_times_in_memory(memory_sizes, rounds)
    smallest, largest = memory_sizes[0], memory_sizes[-1]
    result: dict[str, Any] = {
        "due": DUE,
        "rounds": rounds,
        "reads": reads,
        "times": {str(size): value for size, value in times.items()},
        "time_ratio": times[largest]["ms"]["median"] / times[smallest]["ms"]["median"],
        "time_ratio_sizes": [smallest, largest],
        "items_read_ratio": reads[-1]["items_read"] / reads[0]["items_read"],
        "run_seconds": 0.0,
    }
    result["run_seconds"] = time.perf_counter() - started
    return result


def markdown(result: dict[str, Any]) -> str:
    write_plot(result, PLOT)
    reads, times = result["reads"], result["times"]
    small, large = result["time_ratio_sizes"]
    lines = [
        "## Sweep scaling",
        "",
        f"One sweep with {result['due']} appointments due and ever more stored, every one of them in the `due` "
        "index with its reminder ahead. Items read: the scheduled-checks function's sweeper under moto, summing "
        "`ScannedCount` of each Query and the items of each GetItem/BatchGetItem (botocore hooks). Time: the "
        f"`Sweeper` on the in-memory store, whose lookup models the sharded index; median of {result['rounds']} "
        "runs, min and max.",
        "",
        "![Sweep time and items read against appointments stored](performance-sweep.svg)",
        "",
        "| stored | due | items read | by operation | calls | table load (s) |",
        "|---:|---:|---:|---|---|---:|",
    ]
    for row in reads:
        by_operation = ", ".join(f"{name} {count}" for name, count in row["items_read_by_operation"].items())
        calls = ", ".join(f"{name} {count}" for name, count in row["calls"].items())
        lines.append(
            f"| {row['stored']:,} | {row['due']} | {row['items_read']} | {by_operation} | {calls} | "
            f"{row['load_seconds']:.1f} |"
        )
    lines += ["", "| stored | due | sweep ms (median) | min | max |", "|---:|---:|---:|---:|---:|"]
    for size, row in times.items():
        ms = row["ms"]
        lines.append(f"| {int(size):,} | {row['due']} | {ms['median']:.1f} | {ms['min']:.1f} | {ms['max']:.1f} |")
    lines += [
        "",
        f"Items read at {reads[-1]['stored']:,} / at {reads[0]['stored']:,} stored: "
        f"**{result['items_read_ratio']:.2f}**. Sweep time at {large:,} / at {small:,} stored: "
        f"**{result['time_ratio']:.2f}**.",
        "",
    ]
    return "\n".join(lines)


# -- the plot: a small hand-made SVG, log x axis, two series on their own y axes --------------------

WIDTH, HEIGHT = 640, 360
LEFT, RIGHT, TOP, BOTTOM = 70, 70, 60, 60
TIME_COLOUR, READS_COLOUR = "#1f77b4", "#d62728"


def write_plot(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(plot_svg(result))


def plot_svg(result: dict[str, Any]) -> str:
    import math

    times = [(int(size), row["ms"]) for size, row in result["times"].items()]
    reads = [(row["stored"], float(row["items_read"])) for row in result["reads"]]
    sizes = [size for size, _ in times] + [size for size, _ in reads]
    low, high = math.floor(math.log10(min(sizes))), math.ceil(math.log10(max(sizes)))
    high = max(high, low + 1)
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_at(size: float) -> float:
        return LEFT + (math.log10(size) - low) / (high - low) * plot_width

    time_top = _nice(1.2 * max(ms["max"] for _, ms in times))
    reads_top = _nice(1.2 * max(value for _, value in reads))

    def y_at(value: float, top: float) -> float:
        return TOP + plot_height - value / top * plot_height

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="20" text-anchor="middle" font-size="14">'
        f"One sweep, {result['due']} due, against appointments stored</text>",
        f'<line x1="{LEFT}" y1="{TOP + plot_height}" x2="{LEFT + plot_width}" y2="{TOP + plot_height}" '
        'stroke="black"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_height}" stroke="{TIME_COLOUR}"/>',
        f'<line x1="{LEFT + plot_width}" y1="{TOP}" x2="{LEFT + plot_width}" y2="{TOP + plot_height}" '
        f'stroke="{READS_COLOUR}"/>',
    ]
    for power in range(low, high + 1):
        x = x_at(10**power)
        parts.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + plot_height}" stroke="#ddd"/>')
        parts.append(f'<text x="{x:.1f}" y="{TOP + plot_height + 16}" text-anchor="middle">{10**power:,}</text>')
    for step in range(5):
        fraction = step / 4
        y = TOP + plot_height - fraction * plot_height
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{TIME_COLOUR}">'
            f"{time_top * fraction:g}</text>"
        )
        parts.append(
            f'<text x="{LEFT + plot_width + 6}" y="{y + 4:.1f}" fill="{READS_COLOUR}">{reads_top * fraction:g}</text>'
        )
    parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT - 20}" text-anchor="middle">appointments stored (log scale)</text>')
    parts.append(
        f'<text x="16" y="{TOP + plot_height / 2}" text-anchor="middle" fill="{TIME_COLOUR}" '
        f'transform="rotate(-90 16 {TOP + plot_height / 2})">sweep time, ms (in memory)</text>'
    )
    parts.append(
        f'<text x="{WIDTH - 14}" y="{TOP + plot_height / 2}" text-anchor="middle" fill="{READS_COLOUR}" '
        f'transform="rotate(90 {WIDTH - 14} {TOP + plot_height / 2})">items read (moto)</text>'
    )
    time_points = [(x_at(size), y_at(ms["median"], time_top)) for size, ms in times]
    parts.append(_polyline(time_points, TIME_COLOUR))
    for (size, ms), (x, y) in zip(times, time_points, strict=True):
        low_y, high_y = y_at(ms["min"], time_top), y_at(ms["max"], time_top)
        parts.append(f'<line x1="{x:.1f}" y1="{low_y:.1f}" x2="{x:.1f}" y2="{high_y:.1f}" stroke="{TIME_COLOUR}"/>')
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{TIME_COLOUR}"><title>{size:,}: '
            f"{ms['median']:.1f} ms</title></circle>"
        )
    read_points = [(x_at(size), y_at(value, reads_top)) for size, value in reads]
    parts.append(_polyline(read_points, READS_COLOUR, dashed=True))
    for (size, value), (x, y) in zip(reads, read_points, strict=True):
        parts.append(
            f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="{READS_COLOUR}">'
            f"<title>{size:,}: {value:g} items</title></rect>"
        )
    legend_y = TOP - 14
    parts += [
        f'<line x1="{LEFT}" y1="{legend_y}" x2="{LEFT + 24}" y2="{legend_y}" stroke="{TIME_COLOUR}" stroke-width="2"/>',
        f'<text x="{LEFT + 30}" y="{legend_y + 4}">sweep time (in memory), median with min to max</text>',
        f'<line x1="{LEFT + 330}" y1="{legend_y}" x2="{LEFT + 354}" y2="{legend_y}" stroke="{READS_COLOUR}" '
        'stroke-width="2" stroke-dasharray="5,3"/>',
        f'<text x="{LEFT + 360}" y="{legend_y + 4}">items read (moto)</text>',
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def _polyline(points: list[tuple[float, float]], colour: str, *, dashed: bool = False) -> str:
    dash = ' stroke-dasharray="5,3"' if dashed else ""
    coordinates = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return f'<polyline points="{coordinates}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>'


def _nice(value: float) -> float:
    """A round axis top at or above ``value``."""
    import math

    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    return float(next(step * magnitude for step in (1, 2, 2.5, 5, 10) if step * magnitude >= value))


if __name__ == "__main__":
    outcome = run(quick="--quick" in sys.argv)
    print(json.dumps(outcome, indent=2))
    print(markdown(outcome))
