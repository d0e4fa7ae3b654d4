"""How late the timed rules act: a simulated day of 1,000 appointments through the local runner.

The scheduled-checks function runs every minute (``rate(1 minute)`` in template.yaml). The local runner
coalesces missed fire times (``Runner.run_due``: moving its clock three hours runs the function once, at
the end), so one clock move is one sweep. The runner is started in-process on 127.0.0.1 with a manual
clock, as tests/local does, and driven over HTTP: appointments are made with the ops API
(``POST /appointments``), the clock moves with ``POST /_local/clock``. Its TimeZest poller is switched off
(``TimeZestPolling``): its every-minute run has nothing to do with the rules and would double a tick's cost.

The appointments are booked in hourly batches, each at least a tick before its first rule in the window
(a batch of the day's bookings at once, as a PSA sync or a morning's calls would bring). The clock starts
30 s into a minute and every start is on a half-hour slot (seeded), so every rule falls due on a whole
minute and the sweep that acts first after it is 30 s later: one tick. The mix:

- assigned, starting the next day: their 24 h reminder falls in the window;
- unassigned, starting 3 h or more ahead: the pre-notice at S-3h, then the auto-cancel at S-1h;
- assigned, starting in the window: the no-show at S+10 min (remote call-in; on-site has no no-show rule);
- unassigned, starting within the hour of their booking: too late to cancel, so the at-risk alert at once,
  a pre-notice at once, and the unassigned-at-start alert at S;
- assigned, starting two days ahead or more: nothing may act in the window.

Every one booked less than 24 h ahead has its reminder skipped at the first tick after its booking (the
rule's purpose has passed): skips are counted, not timed.

A rule due before the appointment was made (a late booking) is due at its making. The applied and due
times are read from the table at the end (one Scan at the runner's moto endpoint): each history entry of
a rule holds ``at`` (applied) and ``detail.due_at``. Lateness = applied - max(due, made); in ticks,
ceil(lateness / 60 s): a sweep acting at the first tick after the due time is one tick late. Missed: a rule
still unsettled (``domain.rules.pending``) whose due time came before the last tick; twice: one rule, for
one start time, applied more than once; early: applied before it was due.

Ticks: the clock moves to each batch, to the tick after it, and to each minute-tick at or after a due time
of the plan (120 of a day's 1,440), each running one sweep at the same instant the minute-by-minute
schedule would; the idle minutes are skipped (``every_minute=True`` runs them all). A sweep acts only on
what the ``due`` index holds by then: in a minute where no rule of the plan came due it holds nothing new
(the mails an effect makes are sent by the stream relay at once, the sweep only taking those left pending
for a minute; SES under moto never throttles, so there are no retries; no unmatched alerts are made).
``compare_modes()`` runs a small day both ways: 60 appointments over 2 h gave the same 61 effects,
(appointment, rule, applied at), with 120 ticks and with 8.

Size: the runner spends some 0.3 to 0.6 s on a tick with nothing to do (its pump's round trips to moto),
and some 0.1 s per rule applied or skipped (the commit; the mail claimed, rendered, sent and finished; each
history entry published by the stream relay). Measured here, at a load average of 2 to 3 on two cores:
1,000 appointments over 24 h, 119 ticks, 206 s; 2,000 over 24 h, 119 ticks, 2,540 rules applied and 1,200
skipped, 386 s (none missed, none twice, all one tick late). The default is 2,000: ``make bench`` runs this
section in a process of its own, beside the others. ``python -m tools.bench.timeliness 1000 24`` runs a
smaller day.

moto is far slower than DynamoDB where it matters here: every Query walks and sorts the whole table, and
every TransactWriteItems deep-copies every table it touches, once per item it writes, so a day of 2,000
appointments (some 15,000 items) would take hours. The runner's own patch (``localdev.moto_memory``) makes
a transaction save only the items it names; and, for this run only, a Query looks only at the items of the
partition asked for (the table's, or the index's by exact key value) before moto's own code does the rest.
"""

from __future__ import annotations

import inspect
import json
import math
import random
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto.dynamodb.models.table import Table as MotoTable

from appointments.domain.appointment_types import AppointmentTypeCatalog
from appointments.domain.history import HistoryEntry
from appointments.domain.model import Appointment
from appointments.domain.rules import RuleTimings, pending
from localdev.clock import RunnerClock
from localdev.resources import REGION
from localdev.runner import Runner, RunnerConfig
from localdev.server import LocalServer
from localdev.template import TEMPLATE

if TYPE_CHECKING:
    from collections.abc import Iterator

    from moto.dynamodb.models.dynamo_type import DynamoType

SIMULATION_START = datetime(2026, 11, 23, 0, 0, 30, tzinfo=UTC)
TICK = timedelta(minutes=1)
OPS_TOKEN = "bench-timeliness-ops-token"  # noqa: S105 - the local runner's, made up for this run
TABLE = "AppointmentsTable"
# 2,000 over 24 h took 386 s here (load average 2 to 3 on 2 cores); 1,000 took 206 s.
FULL = {"appointments": 2_000, "hours": 24}
SLOT_MINUTES = 30  # bookings start on half-hour slots: every rule falls due on one of 96 minutes of a day
QUICK = {"appointments": 100, "hours": 3}
# Shares of the mix: (group, share).
MIX = (("reminder", 0.30), ("pre_notice_then_cancel", 0.25), ("no_show", 0.25), ("late_unassigned", 0.1))
# The rest are "later": nothing acts on them in the window.
# The TimeZest poller's every-minute run has nothing to do with the rules, and costs a tick as much again.
PARAMETERS = {"TimeZestPolling": "DISABLED"}
TECHNICIAN = {"id": "t-23", "name": "Alex Kim", "email": "alex@msp.example"}


@dataclass(frozen=True)
class Planned:
    group: str
    start: datetime
    assigned: bool
    type: str
    made: datetime  # when it is booked: one of the hourly batches

    def body(self, index: int) -> dict[str, Any]:
        document: dict[str, Any] = {
            "start": self.start.isoformat(),
            "end": (self.start + timedelta(minutes=30)).isoformat(),
            "timezone": "America/New_York",
            "type": self.type,
            "customer": {"name": f"Customer {index}", "email": f"customer{index}@example.com"},
        }
        if self.assigned:
            document["technicians"] = [TECHNICIAN]
        return document


def plan(count: int, hours: int, seed: int = 7) -> list[Planned]:
    """``count`` appointments whose rules fall across a window of ``hours``, booked in hourly batches."""
    chooser = random.Random(seed)  # noqa: S311 - a reproducible mix, not a secret
    window = hours * 60
    batches = [SIMULATION_START + timedelta(hours=h) for h in range(hours)]

    def minute(low: int, high: int) -> timedelta:
        """A slot at or after ``low`` minutes and before ``high``, on the booking grid."""
        first = math.ceil(low / SLOT_MINUTES)
        return timedelta(
            minutes=SLOT_MINUTES * chooser.randrange(first, max(math.ceil(high / SLOT_MINUTES), first + 1))
        )

    def booked_before(first_rule: datetime) -> datetime:
        """A batch at least a tick before the appointment's first rule in the window."""
        return chooser.choice([b for b in batches if b + TICK <= first_rule] or batches[:1])

    base = SIMULATION_START - timedelta(seconds=30)  # starts on whole minutes
    planned: list[Planned] = []
    for index in range(count):
        group = _group(index, count)
        kind = "onsite" if index % 3 == 0 else "remote_call_in"
        if group == "late_unassigned":
            made = chooser.choice(
                [b for b in batches if b + timedelta(minutes=56) <= batches[0] + timedelta(minutes=window)]
                or batches[:1]
            )
            start = made - timedelta(seconds=30) + minute(10, 56)
            planned.append(Planned(group, start, False, kind, made))
            continue
        if group == "reminder":
            start, assigned = base + timedelta(hours=24) + minute(2, window - 1), True
            first_rule = start - timedelta(hours=24)
        elif group == "pre_notice_then_cancel":
            # Both the pre-notice (S-3h) and the auto-cancel (S-1h) inside the window.
            start, assigned = base + timedelta(hours=3) + minute(2, window - 120), False
            first_rule = start - timedelta(hours=3)
        elif group == "no_show":
            start, assigned = base + minute(2, window - 40), True
            first_rule = start - timedelta(minutes=SLOT_MINUTES)
        else:
            start, assigned = base + timedelta(hours=48) + minute(0, window), True
            first_rule = start
        planned.append(Planned(group, start, assigned, kind, booked_before(first_rule)))
    return planned


def _group(index: int, count: int) -> str:
    position = (index + 0.5) / count
    for name, share in MIX:
        if position < share:
            return name
        position -= share
    return "later"


# -- moto, made fast enough for a day -------------------------------------------------------------

_REAL_QUERY = MotoTable.query
_QUERY_SIGNATURE = inspect.signature(_REAL_QUERY)
_moto_lock = threading.RLock()


def _sorted_like_moto(items: list[Any]) -> list[Any]:
    return sorted(items, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)


def _same(value: DynamoType | None, expected: DynamoType) -> bool:
    # DynamoType's own == casts both sides; the raw type and value say the same for key attributes.
    return value is not None and value.type == expected.type and value.value == expected.value


def _items_of(table: MotoTable, partition: Any) -> list[Any]:
    return list(partition.values()) if table.range_key_attr else [partition]


def _partition_query(self: MotoTable, *args: Any, **kwargs: Any) -> Any:
    """moto's Query, looking only at the items of the partition asked for: the same answer, minus the walk
    over every item of the table."""
    bound = _QUERY_SIGNATURE.bind(self, *args, **kwargs).arguments
    partitions: dict[Any, Any] = self.items
    if bound.get("index_name"):
        conditions = bound.get("hash_key_conditions") or []
        every = [item for by_range in partitions.values() for item in _items_of(self, by_range)]
        candidates = [item for item in every if conditions and all(_same(item.attrs.get(n), v) for n, v in conditions)]
    else:
        candidates = _items_of(self, partitions[bound["hash_key"]]) if bound["hash_key"] in partitions else []
    with _moto_lock:
        self.all_items = lambda: _sorted_like_moto(candidates)  # type: ignore[method-assign]
        try:
            return _REAL_QUERY(self, *args, **kwargs)
        finally:
            del self.all_items


@contextmanager
def fast_moto() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        # Transactions: the runner's own patch (localdev.moto_memory) saves only the items they name.
        patch.setattr(MotoTable, "query", _partition_query)
        yield


# -- the runner, over HTTP -----------------------------------------------------------------------


@dataclass
class Local:
    base: str
    runner: Runner

    def call(self, method: str, path: str, document: Any = None) -> Any:
        body = None if document is None else json.dumps(document).encode()
        headers = {"Authorization": f"Bearer {OPS_TOKEN}", "Content-Type": "application/json"}
        request = urllib.request.Request(f"{self.base}{path}", data=body, headers=headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=900) as response:  # noqa: S310 - 127.0.0.1 only
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{method} {path}: {error.code} {error.read()[:500]!r}") from None


@contextmanager
def local_runner() -> Iterator[Local]:
    clock = RunnerClock(manual=True)
    clock.set(SIMULATION_START)
    runner = Runner(RunnerConfig(template_path=TEMPLATE, ops_token=OPS_TOKEN, parameters=PARAMETERS), clock)
    server = LocalServer(runner, 0)
    runner.start()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Local(base=f"http://127.0.0.1:{server.port}", runner=runner)
    finally:
        server.stop()
        thread.join(timeout=5)


# -- the day -------------------------------------------------------------------------------------


def _tick_instants(planned: list[Planned], end: datetime, timings: RuleTimings) -> list[datetime]:
    """The ticks that can act: each batch's booking and the tick after it, and the first tick at or after
    every due time of the plan, up to ``end``."""
    catalog = AppointmentTypeCatalog.with_overrides()
    instants: set[datetime] = set()
    for appointment in planned:
        instants |= {appointment.made, appointment.made + TICK}
        start = appointment.start
        dues = [start - offset for offset in timings.reminder_offsets]
        dues += [start - timings.pre_notice, start - timings.auto_cancel, start]
        dues.append(start + timedelta(minutes=catalog.get(appointment.type).no_show_after_minutes))
        for due in dues:
            if SIMULATION_START < due <= end:
                instants.add(SIMULATION_START + math.ceil((due - SIMULATION_START) / TICK) * TICK)
    return sorted(instant for instant in instants if SIMULATION_START < instant <= end)


def simulate(count: int, hours: int, *, every_minute: bool = False, keep_effects: bool = False) -> dict[str, Any]:
    planned = plan(count, hours)
    end = SIMULATION_START + timedelta(hours=hours)
    timings = RuleTimings()
    with fast_moto(), local_runner() as local:
        made: dict[str, Planned] = {}
        numbers: dict[str, int] = {}
        batches: dict[datetime, list[int]] = defaultdict(list)
        for index, appointment in enumerate(planned):
            batches[appointment.made].append(index)

        def book(instant: datetime) -> None:
            for index in batches.pop(instant, []):
                reply = local.call("POST", "/appointments", planned[index].body(index))
                made[reply["id"]], numbers[reply["id"]] = planned[index], index

        instants = (
            [SIMULATION_START + TICK * n for n in range(1, hours * 60 + 1)]
            if every_minute
            else _tick_instants(planned, end, timings)
        )
        started = time.perf_counter()
        book(SIMULATION_START)
        now = SIMULATION_START
        for instant in instants:
            local.call("POST", "/_local/clock", {"advance_seconds": (instant - now).total_seconds()})
            now = instant
            book(instant)
        day_seconds = time.perf_counter() - started
        started = time.perf_counter()
        appointments, history = _read_table(local.runner.endpoint)
        # Each customer has an address of their own: the same mail twice is the same (to, subject, body).
        mails = Counter((m.to, m.subject, m.text or m.html or "") for m in local.runner.outbox)
        read_seconds = time.perf_counter() - started
    outcome = _judge(made, appointments, history, end, timings)
    effects = outcome.pop("effects")
    if keep_effects:
        outcome["effects"] = sorted((numbers[a], rule, at) for a, rule, at in effects)
    return {
        "appointments": count,
        "hours": hours,
        "every_minute": every_minute,
        "ticks": len(instants),
        "groups": dict(Counter(p.group for p in planned)),
        "seconds": {"day": day_seconds, "read": read_seconds},
        "seconds_per_tick": day_seconds / len(instants),
        "mails_sent": sum(mails.values()),
        "mails_twice": sum(1 for times in mails.values() if times > 1),
        **outcome,
    }


def _read_table(endpoint: str) -> tuple[dict[str, Appointment], dict[str, list[HistoryEntry]]]:
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",  # noqa: S106 - moto's, on 127.0.0.1
    )
    appointments: dict[str, Appointment] = {}
    history: dict[str, list[HistoryEntry]] = defaultdict(list)
    for page in client.get_paginator("scan").paginate(TableName=TABLE):
        for item in page["Items"]:
            key, sort = item["PK"]["S"], item["SK"]["S"]
            if not key.startswith("APPT#"):
                continue
            appointment_id = key.removeprefix("APPT#")
            if sort == "A":
                appointments[appointment_id] = Appointment.model_validate_json(item["doc"]["S"])
            elif sort.startswith("H#"):
                history[appointment_id].append(HistoryEntry.model_validate_json(item["doc"]["S"]))
    return appointments, history


RULE_OF_ACTION = {
    "reminder": "reminder",
    "pre_notice": "pre_notice",
    "auto_cancel": "auto_cancel",
    "at_risk": "at_risk",
    "unassigned_at_start": "unassigned_at_start",
    "no_show": "no_show",
}


def _judge(
    made: dict[str, Planned],
    appointments: dict[str, Appointment],
    history: dict[str, list[HistoryEntry]],
    end: datetime,
    timings: RuleTimings,
) -> dict[str, Any]:
    catalog = AppointmentTypeCatalog.with_overrides()
    applied: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    by_group: dict[str, Counter[str]] = defaultdict(Counter)
    lateness_ticks: Counter[int] = Counter()
    lateness_seconds: list[float] = []
    seen: Counter[tuple[str, str, str]] = Counter()
    early = 0
    effects: list[tuple[str, str, str]] = []
    for appointment_id, entries in history.items():
        created = min(entry.at for entry in entries)
        for entry in entries:
            if entry.actor.kind != "system" or "due_at" not in entry.detail:
                continue
            due = datetime.fromisoformat(entry.detail["due_at"])
            if str(entry.action) == "notice_skipped":
                skipped[str(entry.detail.get("rule"))] += 1
                continue
            rule = RULE_OF_ACTION.get(str(entry.action))
            if rule is None:
                continue
            applied[rule] += 1
            if appointment_id in made:
                by_group[made[appointment_id].group][rule] += 1
            seen[(appointment_id, rule, entry.detail["due_at"])] += 1
            effects.append((appointment_id, rule, entry.at.isoformat()))
            late = (entry.at - max(due, created)).total_seconds()
            early += late < 0
            lateness_seconds.append(late)
            lateness_ticks[math.ceil(late / TICK.total_seconds())] += 1
    missed = [
        (appointment_id, str(due.rule), due.at.isoformat())
        for appointment_id, appointment in appointments.items()
        for due in pending(appointment, catalog.get(appointment.type), timings)
        if due.at <= end - TICK  # due before the last tick
    ]
    twice = [key for key, times in seen.items() if times > 1]
    return {
        "applied": dict(sorted(applied.items())),
        "skipped": dict(sorted(skipped.items())),
        "applied_by_group": {group: dict(sorted(rules.items())) for group, rules in sorted(by_group.items())},
        "missed": len(missed),
        "missed_examples": missed[:5],
        "twice": len(twice),
        "twice_examples": [list(key) for key in twice[:5]],
        "early": early,
        "max_lateness_ticks": max(lateness_ticks, default=0),
        "lateness_ticks_histogram": {str(ticks): n for ticks, n in sorted(lateness_ticks.items())},
        "lateness_seconds": _summary(lateness_seconds) if lateness_seconds else None,
        "effects": effects,
    }


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


# -- the section ---------------------------------------------------------------------------------


def run(
    quick: bool = False, appointments: int | None = None, hours: int | None = None, *, every_minute: bool = False
) -> dict[str, Any]:
    size = QUICK if quick else FULL
    started = time.perf_counter()
    result = simulate(appointments or size["appointments"], hours or size["hours"], every_minute=every_minute)
    result["run_seconds"] = time.perf_counter() - started
    return result


def compare_modes(count: int = 60, hours: int = 2) -> dict[str, Any]:
    """The same day ticked every minute and only at the minutes where something is due: the same effects
    (appointment, rule, applied at) either way, or the shortcut would not be a measure of the product."""
    every = simulate(count, hours, every_minute=True, keep_effects=True)
    due_only = simulate(count, hours, every_minute=False, keep_effects=True)
    return {
        "appointments": count,
        "hours": hours,
        "ticks": {"every_minute": every["ticks"], "due_minutes": due_only["ticks"]},
        "effects": len(every["effects"]),
        "same_effects": every["effects"] == due_only["effects"],
        "only_every_minute": [e for e in every["effects"] if e not in due_only["effects"]][:5],
        "only_due_minutes": [e for e in due_only["effects"] if e not in every["effects"]][:5],
    }


def markdown(result: dict[str, Any]) -> str:
    histogram = result["lateness_ticks_histogram"]
    lines = [
        "## Rule timeliness",
        "",
        f"{result['appointments']:,} appointments over a simulated {result['hours']} h through the local runner, "
        f"one sweep per tick of the every-minute schedule ({result['ticks']:,} ticks: "
        + ("every minute" if result["every_minute"] else "every minute in which a rule of the plan is due")
        + "). Lateness of each rule's effect = applied - due (or made, for a late booking), read from the "
        "appointments' history; in ticks (a minute), rounded up. One run: the figures are counts, not timings.",
        "",
        "| rule | applied | skipped |",
        "|---|---:|---:|",
    ]
    rules = sorted(set(result["applied"]) | set(result["skipped"]))
    lines += [f"| {rule} | {result['applied'].get(rule, 0)} | {result['skipped'].get(rule, 0)} |" for rule in rules]
    lines += [
        "",
        "| missed | twice | early | max lateness (ticks) | mails sent | the same mail twice |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {result['missed']} | {result['twice']} | {result['early']} | {result['max_lateness_ticks']} | "
        f"{result['mails_sent']} | {result['mails_twice']} |",
        "",
        "| lateness (ticks) | effects |",
        "|---:|---:|",
        *(f"| {ticks} | {count} |" for ticks, count in histogram.items()),
        "",
        f"Wall time of the day, bookings included: {result['seconds']['day']:.0f} s "
        f"({result['seconds_per_tick'] * 1000:.0f} ms a tick).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    if "--compare" in sys.argv:
        print(json.dumps(compare_modes(), indent=2))
        sys.exit(0)
    arguments = [a for a in sys.argv[1:] if not a.startswith("--")]
    outcome = run(
        quick="--quick" in sys.argv,
        appointments=int(arguments[0]) if arguments else None,
        hours=int(arguments[1]) if len(arguments) > 1 else None,
        every_minute="--every-minute" in sys.argv,
    )
    print(json.dumps(outcome, indent=2))
    print(markdown(outcome))
