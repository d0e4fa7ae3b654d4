"""AWS calls per operation: what one webhook, one event applied, one sweep, one mail, one published event,
one PSA write, one ops request and one console screen cost in requests to AWS (and to the PSA).

Each operation runs through the real handlers (loaded from template.yaml) on a fresh stack under moto
(``tests/integration/stack.py``); the PSA write-back talks HTTP to the fake PSA (``localdev/fake_psa.py``)
on 127.0.0.1. The count comes from botocore itself: a ``before-call.*.*`` hook on the default boto3
session, registered before the wiring builds its clients, so every client a handler makes carries it. It
fires once per API operation: an SDK retry of the same operation is not counted again (moto never
throttles). Containers are warm unless an operation says ``first``: its setup has already built the
function's service, so cached secrets and the PSA's zone are not looked up again.

The counts are deterministic, so each is compared with its budget in ``tools/bench/call_budgets.py``,
which ``tests/integration/test_call_budgets.py`` asserts exactly. ``run`` measures in a child interpreter
(the environment the tests use, the Lambda logs discarded), so nothing of moto or of that environment is
left in the caller's process.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[2]
# What pytest's ``pythonpath`` gives the tests: the layer, and the repository for ``localdev`` and ``tests``.
for _path in (ROOT, ROOT / "layers" / "core"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import boto3  # noqa: E402
import pytest  # noqa: E402

from appointments import wiring  # noqa: E402
from appointments.domain import lifecycle  # noqa: E402
from appointments.domain.history import Record  # noqa: E402
from appointments.domain.model import Actor  # noqa: E402
from appointments.services.outbox_relay import history_record  # noqa: E402
from localdev.fake_psa import FakePsa, fake_psa_credentials, serve  # noqa: E402
from tests.integration.conftest import CallCounter  # noqa: E402
from tests.integration.stack import Stack, stack_under_moto  # noqa: E402
from tests.integration.test_outbox_relay import TableStream  # noqa: E402
from tests.signing import sample  # noqa: E402
from tools.bench.call_budgets import BUDGETS  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

Counts = dict[str, int]

# Monday 23 November 2026, 10:00 UTC. The appointments the timed rules act on start on Tuesday at 18:00 UTC:
# their reminder (24 h before) falls due this evening, their no-show check ten minutes after the start.
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
START = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
REMINDER_AT = START - timedelta(hours=24)
NO_SHOW_AT = START + timedelta(minutes=10)
# The no-show's Autotask status, so the write-back sets a status as well as adding its note.
PARAMETERS = {"AutotaskNoShowStatusId": "23"}
TICKET = {"system": "autotask", "id": "48213", "number": "T20261123.0004"}
# The environment tests/conftest.py gives the tests: fake credentials, no tracing, a metrics namespace.
TEST_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "AppointmentDesk",
}
_HOOK_ID = "bench-calls"


class ServiceCallCounter(CallCounter):
    """``CallCounter`` keyed by service too: ``dynamodb.GetItem``, ``sesv2.SendEmail``."""

    def __call__(self, model: Any, **kwargs: Any) -> None:
        self.calls[f"{model.service_model.service_name}.{model.name}"] += 1


@contextmanager
def counted_calls(stack: Stack) -> Iterator[ServiceCallCounter]:
    """Every AWS call made from now on by a client of the default session; the wiring rebuilds its clients,
    so all of theirs are counted."""
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None  # noqa: S101 - set just above
    counter = ServiceCallCounter()
    # A client copies the session's handlers when it is built: register first, then let the wiring rebuild.
    session.events.register("before-call.*.*", counter, unique_id=_HOOK_ID)
    wiring.use_clock(stack.clock)
    try:
        yield counter
    finally:
        session.events.unregister("before-call.*.*", unique_id=_HOOK_ID)


class CountedPsa(FakePsa):
    """The fake PSA, counting its requests by ``<system>.<METHOD> <path>`` (ids as ``{id}``)."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        super().__init__(clock=clock)
        self.counted = ServiceCallCounter()

    def answer(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Any:
        system, _, rest = path.strip("/").partition("/")
        endpoint = re.sub(r"\d+", "{id}", re.sub(r"^(ws\d+/)?atservicesrest/v1\.0/", "", rest, flags=re.IGNORECASE))
        self.counted.calls[f"{system}.{method} {endpoint}"] += 1
        return super().answer(method, path, query, headers, body)


@dataclass
class Desk:
    """The stack, its table's stream, and the AWS calls counted one operation at a time."""

    stack: Stack
    stream: TableStream
    counter: ServiceCallCounter

    def count(self, operation: Callable[[], object]) -> Counts:
        """The AWS calls ``operation`` made, by ``service.Operation``."""
        self.counter.reset()
        operation()
        return dict(sorted(self.counter.calls.items()))

    # -- what puts the stack where an operation starts -----------------------------------------------------

    def book(self, *, start: datetime = START, relay: bool = True, **changes: Any) -> str:
        """An ops booking of an assigned call-in appointment; ``relay``: its confirmation sent, its events out."""
        body: dict[str, Any] = {
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=30)).isoformat(),
            "timezone": "America/New_York",
            "type": "remote_call_in",
            "customer": {"name": "Dana Reyes", "email": "dana@example.com"},
            "technicians": [{"id": "t-17", "name": "Sam Okafor"}],
        }
        appointment_id: str = self.ops("POST", "/appointments", body | changes)["id"]
        if relay:
            self.relay_pending()
        return appointment_id

    def relay_pending(self) -> None:
        """The stream hands the relay everything committed since it last did."""
        if records := self.stream.new_records():
            self.relay(records)

    def relay(self, records: list[dict[str, Any]]) -> None:
        response = self.stack.invoke("OutboxRelayFunction", {"Records": records})
        assert response == {"batchItemFailures": []}, response  # noqa: S101

    def sweep_at(self, at: datetime) -> None:
        """EventBridge Scheduler's run of ``scheduled_checks`` at ``at``."""
        self.stack.clock.set(at)
        summary = self.stack.run_schedule()
        assert summary["failed"] == 0, summary  # noqa: S101

    def post(self, source: str, body: bytes) -> None:
        """A signed webhook from ``source``, answered 202."""
        response = self.stack.signed_post(source, body)
        assert response["statusCode"] == 202, response  # noqa: S101

    def received(self) -> list[dict[str, Any]]:
        """What the queue holds, taken off it as the event source mapping does, as the processor's records."""
        messages = self.stack.queued()
        for message in messages:
            self.stack.sqs.delete_message(QueueUrl=self.stack.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return [self.stack.record_of(message) for message in messages]

    def process(self, records: list[dict[str, Any]]) -> None:
        assert self.stack.process(records) == [], "a record failed"  # noqa: S101

    def ops(self, method: str, path: str, body: Any = None) -> Any:
        reply = self.stack.ops(method, path, body)
        assert reply.status < 300, reply.body  # noqa: S101
        return reply.body

    def records_of(self, kind: str) -> list[dict[str, Any]]:
        """The stream's new records of ``kind`` (``mail`` or ``history``); the others are read and dropped."""
        return [r for r in self.stream.new_records() if r["dynamodb"]["NewImage"]["kind"]["S"] == kind]


@contextmanager
def open_desk(monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    """A fresh stack under moto at ``NOW``, its AWS calls counted from here on."""
    with stack_under_moto(monkeypatch, NOW, **PARAMETERS) as stack, counted_calls(stack) as counter:
        yield Desk(stack, TableStream(stack), counter)


def generic(name: str, **appointment: Any) -> bytes:
    """A sample generic webhook body, its appointment changed by ``appointment``."""
    document = json.loads(sample(f"generic/{name}.json"))
    document["appointment"].update(appointment)
    document["event_id"] += "-" + "-".join(str(v) for v in appointment.values()) if appointment else ""
    return json.dumps(document).encode()


# -- the operations --------------------------------------------------------------------------------------
# Each takes a fresh desk, builds what its operation starts from (warming the function it measures where a
# cache would otherwise be counted), and returns the calls of that one operation.


def webhook_first(desk: Desk) -> Counts:
    """Given a new container; When a generic webhook comes in: the secrets are read, then it is queued."""
    return desk.count(lambda: desk.post("generic", sample("generic/appointment_scheduled.json")))


def webhook_generic(desk: Desk) -> Counts:
    """Given a warm container; When a signed generic webhook comes in."""
    desk.post("generic", generic("appointment_scheduled", external_id="stf-warm"))
    return desk.count(lambda: desk.post("generic", sample("generic/appointment_scheduled.json")))


def webhook_autotask(desk: Desk) -> Counts:
    """Given a warm container; When Autotask's signed ticket webhook comes in."""
    desk.post("generic", generic("appointment_scheduled", external_id="stf-warm"))
    return desk.count(lambda: desk.post("autotask", sample("autotask/ticket_assigned.json")))


def _booked_by_webhook(desk: Desk) -> None:
    desk.post("generic", sample("generic/appointment_scheduled.json"))
    desk.process(desk.received())
    desk.relay_pending()


def event_new_booking(desk: Desk) -> Counts:
    """Given a generic booking on the queue; When the processor applies it."""
    desk.post("generic", sample("generic/appointment_scheduled.json"))
    records = desk.received()
    return desk.count(lambda: desk.process(records))


def event_update(desk: Desk) -> Counts:
    """Given a booking held, and its reschedule on the queue; When the processor applies it."""
    _booked_by_webhook(desk)
    desk.post("generic", sample("generic/appointment_rescheduled.json"))
    records = desk.received()
    return desk.count(lambda: desk.process(records))


def event_ticket_update(desk: Desk) -> Counts:
    """Given a booking linked to Autotask ticket 48213, and the ticket's assignment on the queue; When applied."""
    _booked_by_webhook(desk)
    desk.post("autotask", sample("autotask/ticket_assigned.json"))
    records = desk.received()
    return desk.count(lambda: desk.process(records))


def _sweep_with_reminders_due(desk: Desk, due: int) -> Counts:
    for n in range(due):
        desk.book(start=START + timedelta(minutes=n))
    desk.sweep_at(NOW)  # warm: the service is built, nothing is due yet
    return desk.count(lambda: desk.sweep_at(REMINDER_AT + timedelta(minutes=due)))


def sweep_nothing_due(desk: Desk) -> Counts:
    """Given nothing due; When the minute's sweep runs: the due index read, shard by shard."""
    return _sweep_with_reminders_due(desk, 0)


def sweep_one_reminder(desk: Desk) -> Counts:
    """Given one confirmed booking whose reminder is due; When the sweep runs: applied in one transaction (its
    mail goes out through the stream's relay, ``relay.mail``)."""
    return _sweep_with_reminders_due(desk, 1)


def sweep_three_reminders(desk: Desk) -> Counts:
    """Given three bookings whose reminders are due; When the sweep runs."""
    return _sweep_with_reminders_due(desk, 3)


def sweep_one_no_show(desk: Desk) -> Counts:
    """Given a booking reminded, nobody calling in; When the sweep runs ten minutes after its start."""
    desk.book()
    desk.sweep_at(REMINDER_AT)
    desk.relay_pending()
    return desk.count(lambda: desk.sweep_at(NO_SHOW_AT))


def relay_mail(desk: Desk) -> Counts:
    """Given a reschedule request's mail on the stream; When the relay takes its record: claimed, the
    appointment read, sent through SES, marked sent."""
    appointment_id = desk.book()
    desk.ops("POST", f"/appointments/{appointment_id}/request-reschedule", {})
    [mail] = desk.records_of("mail")
    return desk.count(lambda: desk.relay([mail]))


def sweep_mail_safety_net(desk: Desk) -> Counts:
    """Given a reminder's mail the stream never handed the relay; When the sweep runs a minute later: the
    sweep's safety net claims, reads, sends and marks it."""
    desk.book()
    desk.sweep_at(REMINDER_AT)
    desk.records_of("mail")  # taken off the stream, never relayed: a lost stream record
    return desk.count(lambda: desk.sweep_at(REMINDER_AT + timedelta(minutes=1)))


def relay_mail_already_sent(desk: Desk) -> Counts:
    """Given a reminder the relay sent; When the stream hands the relay its mail record again (the stream is
    at-least-once): one refused claim."""
    desk.book()
    desk.sweep_at(REMINDER_AT)
    [mail] = desk.records_of("mail")
    desk.relay([mail])
    return desk.count(lambda: desk.relay([mail]))


def relay_event(desk: Desk) -> Counts:
    """Given a note's history entry on the stream; When the relay takes its record: claimed, published, marked."""
    appointment_id = desk.book()
    desk.ops("POST", f"/appointments/{appointment_id}/notes", {"text": "Prefers mornings."})
    [entry] = desk.records_of("history")
    return desk.count(lambda: desk.relay([entry]))


def relay_booking_batch(desk: Desk) -> Counts:
    """Given a booking and a note on it, not yet relayed; When the stream hands the relay its three records
    (two history entries and the confirmation) in one batch."""
    desk.book()  # warm
    appointment_id = desk.book(start=START + timedelta(hours=1), relay=False)
    desk.ops("POST", f"/appointments/{appointment_id}/notes", {"text": "Prefers mornings."})
    records = desk.stream.new_records()
    return desk.count(lambda: desk.relay(records))


def _no_show_events(desk: Desk, count: int) -> list[dict[str, Any]]:
    """``count`` no-shows of bookings against Autotask ticket 48213, as the bus's rule hands each to the write-back."""
    for n in range(count):
        desk.book(start=START + timedelta(minutes=n), ticket=TICKET)
    desk.sweep_at(REMINDER_AT)
    desk.relay_pending()
    desk.sweep_at(NO_SHOW_AT + timedelta(minutes=count))
    records = desk.stream.new_records()
    desk.relay(records)
    entries = [entry for r in records if (entry := history_record(r["dynamodb"]["NewImage"])) is not None]
    events = [entry.event for entry in entries if entry.entry.action == "no_show"]
    return [{"detail-type": e.detail_type, "source": "appointment-desk", "detail": e.detail} for e in events]


@contextmanager
def _psa(desk: Desk) -> Iterator[CountedPsa]:
    """The fake PSA on 127.0.0.1, named by the ``PsaCredentials`` secret the write-back reads when it is built."""
    psa = CountedPsa(clock=desk.stack.clock.now)
    with serve(psa) as base_url:
        boto3.client("secretsmanager").put_secret_value(
            SecretId=os.environ["PSA_CREDENTIALS_ID"],
            SecretString=json.dumps(fake_psa_credentials(base_url, psa.credentials)),
        )
        wiring.use_clock(desk.stack.clock)  # the write-back is built (again) with these credentials
        yield psa


def _write(desk: Desk, psa: CountedPsa, event: dict[str, Any], written: str) -> Counts:
    def write() -> None:
        answer = desk.stack.invoke("PsaWritebackFunction", event)
        assert answer == {"written": written}, answer  # noqa: S101

    psa.counted.reset()
    aws = desk.count(write)
    return dict(sorted({**aws, **psa.counted.calls}.items()))


def psa_write_first(desk: Desk) -> Counts:
    """Given a new container; When a no-show is written back: the credentials read, Autotask's zone looked up."""
    [no_show] = _no_show_events(desk, 1)
    with _psa(desk) as psa:
        return _write(desk, psa, no_show, "written")


def psa_write(desk: Desk) -> Counts:
    """Given a warm container; When a no-show is written back to its Autotask ticket: status, note search, note."""
    warm, no_show = _no_show_events(desk, 2)
    with _psa(desk) as psa:
        _write(desk, psa, warm, "written")
        return _write(desk, psa, no_show, "written")


def psa_write_again(desk: Desk) -> Counts:
    """Given a no-show written back; When EventBridge delivers its event again: found written, nothing sent."""
    [no_show] = _no_show_events(desk, 1)
    with _psa(desk) as psa:
        _write(desk, psa, no_show, "written")
        return _write(desk, psa, no_show, "already_written")


def ops_confirm(desk: Desk) -> Counts:
    """Given an appointment waiting for a new time; When a dispatcher confirms it (POST .../confirm)."""
    appointment_id = desk.book()
    desk.ops("POST", f"/appointments/{appointment_id}/request-reschedule", {})
    return desk.count(lambda: desk.ops("POST", f"/appointments/{appointment_id}/confirm", {}))


def ops_reassign(desk: Desk) -> Counts:
    """Given a booking; When a dispatcher gives it another technician (POST .../reassign)."""
    appointment_id = desk.book()
    body = {"technicians": [{"id": "t-23", "name": "Alex Kim"}]}
    return desk.count(lambda: desk.ops("POST", f"/appointments/{appointment_id}/reassign", body))


def ops_get(desk: Desk) -> Counts:
    """Given a booking; When its detail is read (GET /appointments/{id}): state, history and mails at once."""
    appointment_id = desk.book()
    return desk.count(lambda: desk.ops("GET", f"/appointments/{appointment_id}"))


def _attention(desk: Desk, booked: int, *, bounced: int = 0) -> Counts:
    """``booked`` appointments today, the first ``bounced`` of them with a bounced mail (a record needing a human)."""
    for n in range(booked):
        appointment_id = desk.book(start=START + timedelta(hours=n))
        if n < bounced:
            store = wiring.store()
            appointment = store.get(appointment_id)
            bounce = lifecycle.record(appointment, Record.MAIL_BOUNCED, at=appointment.updated_at, actor=Actor.system())
            store.commit(bounce)
    return desk.count(lambda: desk.ops("GET", "/attention"))


def console_attention_empty(desk: Desk) -> Counts:
    """Given an empty desk; When the console asks what needs attention (every screen, every 10 s)."""
    return _attention(desk, 0)


def console_attention_three(desk: Desk) -> Counts:
    """Given three bookings made today, one with a bounced mail; When the console asks what needs attention: the
    one with the bounce is loaded (its history says what bounced), the two others are not."""
    return _attention(desk, 3, bounced=1)


# The console's day: midnight to midnight in New York, as ``renderToday`` asks for it.
TODAY = "/appointments?from=2026-11-24T05:00:00Z&to=2026-11-25T05:00:00Z&limit=200"


def console_today(desk: Desk) -> Counts:
    """Given one booking; When the console shows its day: attention, then the day's list."""
    desk.book()
    return desk.count(lambda: (desk.ops("GET", "/attention"), desk.ops("GET", TODAY)))


def console_appointment(desk: Desk) -> Counts:
    """Given one booking; When the console opens it: attention, then its detail."""
    appointment_id = desk.book()
    return desk.count(lambda: (desk.ops("GET", "/attention"), desk.ops("GET", f"/appointments/{appointment_id}")))


OPERATIONS: dict[str, Callable[[Desk], Counts]] = {
    "webhook.first": webhook_first,
    "webhook.generic": webhook_generic,
    "webhook.autotask": webhook_autotask,
    "event.new_booking": event_new_booking,
    "event.update": event_update,
    "event.ticket_update": event_ticket_update,
    "sweep.nothing_due": sweep_nothing_due,
    "sweep.one_reminder": sweep_one_reminder,
    "sweep.three_reminders": sweep_three_reminders,
    "sweep.one_no_show": sweep_one_no_show,
    "sweep.mail_safety_net": sweep_mail_safety_net,
    "relay.mail": relay_mail,
    "relay.mail_already_sent": relay_mail_already_sent,
    "relay.event": relay_event,
    "relay.booking_batch": relay_booking_batch,
    "psa.write_first": psa_write_first,
    "psa.write": psa_write,
    "psa.write_again": psa_write_again,
    "ops.confirm": ops_confirm,
    "ops.reassign": ops_reassign,
    "ops.get": ops_get,
    "console.attention_empty": console_attention_empty,
    "console.attention_three": console_attention_three,
    "console.today": console_today,
    "console.appointment": console_appointment,
}
# One of each kind: what ``quick`` measures.
QUICK = (
    "webhook.generic",
    "event.new_booking",
    "sweep.nothing_due",
    "sweep.one_reminder",
    "relay.mail",
    "relay.event",
    "psa.write",
    "ops.reassign",
    "console.today",
)


def measure(name: str) -> Counts:
    """One operation on a fresh stack."""
    with pytest.MonkeyPatch.context() as monkeypatch, open_desk(monkeypatch) as desk:
        return OPERATIONS[name](desk)


def _measure_all(names: list[str], rounds: int) -> dict[str, Any]:
    """In this process (the child): each operation ``rounds`` times; the counts and whether they ever varied."""
    operations: dict[str, Any] = {}
    for name in names:
        seen = [measure(name) for _ in range(rounds)]
        operations[name] = {"calls": seen[0], "stable": all(counts == seen[0] for counts in seen)}
    return {"rounds": rounds, "operations": operations}


def run(quick: bool = False) -> dict[str, Any]:
    names = list(QUICK if quick else OPERATIONS)
    rounds = 1 if quick else 2
    environment = {name: value for name, value in os.environ.items() if name not in ("AWS_PROFILE", "AWS_ENDPOINT_URL")}
    environment |= TEST_ENVIRONMENT | {"PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "core"), str(ROOT)])}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "calls.json"
        done = subprocess.run(  # noqa: S603 - our own interpreter, our own module
            [sys.executable, "-m", "tools.bench.calls", "--child", out, str(rounds), *names],
            env=environment,
            cwd=ROOT,
            capture_output=True,  # the handlers' log lines and metrics
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"measuring AWS calls failed\n{done.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(out.read_text())
    result["seconds"] = time.perf_counter() - started
    result["budgets"] = {name: BUDGETS.get(name) for name in names}
    return result


AWS_SERVICES = ("dynamodb", "sqs", "sesv2", "events", "secretsmanager")


def _cell(counts: Counts | None) -> str:
    if counts is None:
        return "no budget"
    return "<br>".join(f"{name}: {n}" for name, n in sorted(counts.items())) or "none"


def _aws_total(counts: Counts) -> int:
    return sum(n for name, n in counts.items() if name.split(".", 1)[0] in AWS_SERVICES)


def verdict(calls: Counts, budget: Counts | None) -> str:
    """Within budget: no call over its budget, none unbudgeted. Under it means the budget is stale."""
    if budget is None or any(n > budget.get(name, 0) for name, n in calls.items()):
        return "**over budget**"
    return "within budget" if calls == budget else "within budget (under it: lower the budget)"


def markdown(result: dict[str, Any]) -> str:
    operations: dict[str, Any] = result["operations"]
    budgets: dict[str, Counts | None] = result["budgets"]
    lines = [
        "## AWS calls per operation",
        "",
        "Each operation runs through the real handlers on a fresh stack under moto (the PSA write-back against "
        "the fake PSA over HTTP); a `before-call` hook on the boto3 session counts every AWS API operation, the "
        "fake PSA every request it takes (`autotask.*`). Counts, not times: they are exact, so each operation "
        f"ran {result['rounds']} time(s) only to show they do not vary. Budgets: `tools/bench/call_budgets.py` "
        "(its comments say why each call is there, and which could go), asserted exactly by "
        "`tests/integration/test_call_budgets.py`. Containers are warm unless the operation says `first`.",
        "",
        "| Operation | Measured | Budget | AWS calls | Verdict |",
        "|---|---|---|---:|---|",
    ]
    over = 0
    for name, measured in operations.items():
        calls: Counts = measured["calls"]
        budget = budgets.get(name)
        said = verdict(calls, budget)
        over += said.startswith("**over")
        if not measured["stable"]:
            said += ", **varied between rounds**"
        lines.append(f"| `{name}` | {_cell(calls)} | {_cell(budget)} | {_aws_total(calls)} | {said} |")
    if {"sweep.one_reminder", "sweep.three_reminders"} <= set(operations):
        lines += ["", _per_due_item(operations)]
    if "console.today" in operations:
        queries = operations["console.today"]["calls"].get("dynamodb.Query", 0)
        lines += [
            "",
            f"The console refreshes its screen every 10 s: {queries} queries a refresh on the Today screen with one "
            f"appointment ({queries * 360:,} an hour per open console), plus one per appointment of the attention "
            "window with a record needing a human in the last 2 days (its `attention_at`), and one more per 200 "
            "appointments of a day in the window (pages).",
        ]
    lines += ["", "Every operation within budget." if not over else f"**{over} operation(s) over budget.**"]
    return "\n".join(lines) + "\n"


def _per_due_item(operations: dict[str, Any]) -> str:
    one: Counts = operations["sweep.one_reminder"]["calls"]
    three: Counts = operations["sweep.three_reminders"]["calls"]
    fixed: Counts = operations.get("sweep.nothing_due", {}).get("calls", {})
    each = {name: (three.get(name, 0) - one.get(name, 0)) / 2 for name in sorted(set(one) | set(three))}
    per_item = ", ".join(f"{name}: {n:g}" for name, n in each.items() if n)
    fixed_text = ", ".join(f"{name}: {n}" for name, n in fixed.items()) or "nothing"
    return f"Per sweep: {fixed_text} whatever is due; each due reminder adds {per_item} (3 due minus 1 due, halved)."


def _child(argv: list[str]) -> None:
    out, rounds, names = Path(argv[0]), int(argv[1]), argv[2:]
    out.write_text(json.dumps(_measure_all(names, rounds)))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2:])
    else:
        print(markdown(run(quick="--quick" in sys.argv)))
