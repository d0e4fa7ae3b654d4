"""The timed rules through the real handlers under moto: ``scheduled_checks`` as EventBridge Scheduler calls
it each minute, ``POST /checks/run`` through the ops API, and what one sweep costs on a large table.

Time passes only by moving the stack's ManualClock; nothing sleeps.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest

from appointments import wiring
from appointments.adapters.clock import ManualClock
from appointments.adapters.dynamo_store import DynamoAppointmentStore
from appointments.domain.coupons import CouponPolicy
from appointments.domain.history import Action, HistoryEntry, Record
from appointments.domain.lifecycle import Change
from appointments.domain.model import ActorKind, Appointment, CancelledBy, ExternalRef, Status
from appointments.domain.outbox import MailKind, OutboxMail
from appointments.domain.rules import RuleTimings, next_check
from appointments.ports import AppointmentRecord
from appointments.services.sweeper import Sweeper, SweepPolicy
from tests.factories import CATALOG, SAM, an_appointment
from tests.integration.conftest import TABLE
from tests.integration.stack import OPS_CALLER, Stack, stack_under_moto
from tests.signing import sample

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import UniversalAttributeValueTypeDef, WriteRequestTypeDef

NOW = datetime(2026, 11, 23, 10, 5, tzinfo=UTC)
# The sample unassigned booking (generic stf-982) starts at 18:00: pre-notice 15:00, auto-cancel 17:00.
START = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
PRE_NOTICE_AT = START - timedelta(hours=3)
AUTO_CANCEL_AT = START - timedelta(hours=1)
SUMMARY_KEYS = {"due", "applied", "skipped", "failed", "stopped_early", "max_lateness_seconds"}


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with stack_under_moto(monkeypatch, NOW) as built:
        yield built


def book_unassigned_by_webhook(stack: Stack) -> str:
    assert stack.post_generic(sample("generic/appointment_scheduled_unassigned.json"))["statusCode"] == 202
    stack.drain()
    appointment_id = wiring.store().find_by_external_ref(ExternalRef(system="generic", id="stf-982"))
    assert appointment_id is not None
    return appointment_id


def book_by_ops(stack: Stack, start: datetime, *, technicians: list[dict[str, str]]) -> str:
    reply = stack.ops(
        "POST",
        "/appointments",
        {
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=30)).isoformat(),
            "timezone": "America/New_York",
            "type": "remote_call_in",
            "customer": {"name": "Dana Reyes", "email": "dana@example.com"},
            "technicians": technicians,
        },
    )
    assert reply.status == 201, reply.body
    appointment_id: str = reply.body["id"]
    return appointment_id


def sweep_at(stack: Stack, at: datetime) -> dict[str, Any]:
    """The clock moves to ``at`` and the minute's scheduled run fires."""
    stack.clock.set(at)
    summary: dict[str, Any] = stack.run_schedule()
    return summary


def record(appointment_id: str) -> AppointmentRecord:
    return wiring.store().load(appointment_id)


def actions(appointment_id: str) -> list[str]:
    return [str(entry.action) for entry in record(appointment_id).history]


def mails(appointment_id: str, kind: MailKind) -> list[OutboxMail]:
    return [mail for mail in record(appointment_id).mails if mail.kind is kind]


def last_entry(appointment_id: str) -> HistoryEntry:
    return record(appointment_id).history[-1]


# -- the rules, by moving the clock -------------------------------------------------------------


def test_an_unassigned_booking_gets_its_pre_notice_at_s_minus_3h_and_is_auto_cancelled_at_s_minus_1h(
    stack: Stack,
) -> None:
    # Given a booking page's unassigned booking for 18:00, booked at 10:05 (its 24 h reminder time is past)
    appointment_id = book_unassigned_by_webhook(stack)
    assert sweep_at(stack, NOW)["skipped"] == {"reminder": 1}
    assert record(appointment_id).appointment.next_due_at == PRE_NOTICE_AT

    # When the clock reaches a minute before the pre-notice, then the pre-notice itself (30 s into the minute)
    early = sweep_at(stack, PRE_NOTICE_AT - timedelta(minutes=1))
    on_time = sweep_at(stack, PRE_NOTICE_AT + timedelta(seconds=30))

    # Then nothing happens early; on time the customer is told we are still assigning a technician
    assert (early["due"], early["applied"]) == (0, {})
    assert on_time == {
        "due": 1,
        "applied": {"pre_notice": 1},
        "skipped": {},
        "failed": 0,
        "stopped_early": False,
        "max_lateness_seconds": 30.0,
    }
    notice = last_entry(appointment_id)
    assert (notice.action, notice.actor.kind, notice.to_status) == (Action.PRE_NOTICE, ActorKind.SYSTEM, "scheduled")
    assert notice.detail["due_at"] == PRE_NOTICE_AT.isoformat()
    [pre_notice] = mails(appointment_id, MailKind.PRE_NOTICE)
    assert pre_notice.to == ("lee@parklaw.example",)
    assert record(appointment_id).appointment.next_due_at == AUTO_CANCEL_AT

    # When nobody is assigned by 17:00 and the minute's run fires
    cancelled_run = sweep_at(stack, AUTO_CANCEL_AT)

    # Then the system cancels it with a coupon, mails the customer and alerts ops; nothing is left to check
    assert (cancelled_run["due"], cancelled_run["applied"]) == (1, {"auto_cancel": 1})
    appointment = record(appointment_id).appointment
    assert appointment.status is Status.CANCELLED
    assert appointment.cancellation is not None
    assert appointment.cancellation.by is CancelledBy.SYSTEM
    assert appointment.cancellation.coupon is not None
    assert appointment.cancellation.coupon.percent == 15
    assert appointment.next_due_at is None
    cancel = last_entry(appointment_id)
    assert (cancel.action, cancel.actor.kind, cancel.to_status) == (Action.AUTO_CANCEL, ActorKind.SYSTEM, "cancelled")
    [cancelled_mail] = mails(appointment_id, MailKind.CANCELLED)
    assert cancelled_mail.to == ("lee@parklaw.example",)
    assert cancelled_mail.context["coupon"]["code"] == appointment.cancellation.coupon.code
    [alert] = mails(appointment_id, MailKind.OPS_ALERT)
    assert (alert.to, alert.context["rule"]) == (("ops@msp.example",), "auto_cancel")
    assert actions(appointment_id) == ["create", "notice_skipped", "pre_notice", "auto_cancel"]

    # And its start passes without another effect (no unassigned-at-start alert for a cancelled appointment)
    assert sweep_at(stack, START + timedelta(minutes=15))["due"] == 0


def test_an_assigned_call_in_appointment_nobody_calls_for_is_a_no_show_at_s_plus_10_min(stack: Stack) -> None:
    # Given a call-in appointment at 12:00 with Sam assigned, booked by phone this morning
    start = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    appointment_id = book_by_ops(stack, start, technicians=[{"id": SAM.id, "name": SAM.name}])
    sweep_at(stack, NOW)

    # When the clock passes the start, then the no-show time, and nobody has called in
    before = sweep_at(stack, start + timedelta(minutes=9, seconds=59))
    at_time = sweep_at(stack, start + timedelta(minutes=10))

    # Then it is marked at 12:10, by the system, and the customer is mailed
    assert before["applied"] == {}
    assert (at_time["applied"], at_time["max_lateness_seconds"]) == ({"no_show": 1}, 0.0)
    appointment = record(appointment_id).appointment
    assert (appointment.status, appointment.no_show_at) == (Status.NO_SHOW, start + timedelta(minutes=10))
    assert appointment.next_due_at is None
    marked = last_entry(appointment_id)
    assert (marked.action, marked.actor.kind, marked.from_status) == (Action.NO_SHOW, ActorKind.SYSTEM, "scheduled")
    assert [mail.to for mail in mails(appointment_id, MailKind.NO_SHOW)] == [("dana@example.com",)]


def test_post_checks_run_sweeps_now_and_names_the_caller_in_each_history_entry(stack: Stack) -> None:
    # Given an unassigned appointment booked by phone for 18:00, never swept
    appointment_id = book_by_ops(stack, START, technicians=[])
    stack.clock.set(PRE_NOTICE_AT + timedelta(minutes=2))

    # When a dispatcher runs the checks at 15:02
    reply = stack.ops("POST", "/checks/run")

    # Then the answer is the run's summary: the reminder skipped (booked after its time), the pre-notice sent
    assert reply.status == 200, reply.body
    assert set(reply.body) == SUMMARY_KEYS
    assert reply.body == {
        "due": 1,
        "applied": {"pre_notice": 1},
        "skipped": {"reminder": 1},
        "failed": 0,
        "stopped_early": False,
        "max_lateness_seconds": 120.0,
    }
    # And the effects keep the system as actor, with the caller as requested_by
    skipped, notice = record(appointment_id).history[1:]
    assert (skipped.action, notice.action) == (Record.NOTICE_SKIPPED, Action.PRE_NOTICE)
    for entry in (skipped, notice):
        assert entry.actor.kind is ActorKind.SYSTEM
        assert entry.detail["requested_by"] == OPS_CALLER
    assert len(mails(appointment_id, MailKind.PRE_NOTICE)) == 1


def test_post_checks_run_needs_a_caller(stack: Stack) -> None:
    # Given a due appointment
    appointment_id = book_by_ops(stack, START, technicians=[])
    stack.clock.set(PRE_NOTICE_AT)

    # When the request reaches the function without an IAM caller
    reply = stack.ops("POST", "/checks/run", caller=None)

    # Then it is refused and nothing ran
    assert reply.status == 401
    assert actions(appointment_id) == ["create"]


def test_a_second_run_at_the_same_clock_applies_nothing(stack: Stack) -> None:
    # Given the pre-notice applied by one run at 15:00
    appointment_id = book_unassigned_by_webhook(stack)
    first = sweep_at(stack, PRE_NOTICE_AT)
    assert first["applied"] == {"pre_notice": 1}
    settled = record(appointment_id)

    # When the schedule fires again at the same clock (a retry), and the checks are run by hand too
    again = stack.run_schedule()
    by_hand = stack.ops("POST", "/checks/run").body

    # Then neither applies nor skips anything: no history, no mail, no new version
    for summary in (again, by_hand):
        assert (summary["due"], summary["applied"], summary["skipped"], summary["failed"]) == (0, {}, {}, 0)
    assert record(appointment_id) == settled


def emf_metrics(stdout: str) -> dict[str, list[float]]:
    """Each metric the EMF lines on stdout carry (name -> values), as CloudWatch would read them."""
    found: dict[str, list[float]] = {}
    for line in stdout.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        document = json.loads(line)
        [directive] = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "AppointmentDesk"
        for metric in directive["Metrics"]:
            value = document[metric["Name"]]
            found.setdefault(metric["Name"], []).extend(value if isinstance(value, list) else [value])
    return found


def test_the_scheduled_run_emits_a_metric_per_effect_skip_and_lateness(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the unassigned booking swept once at booking time (its reminder skipped)
    book_unassigned_by_webhook(stack)
    capsys.readouterr()
    sweep_at(stack, NOW)
    booked = emf_metrics(capsys.readouterr().out)

    # When the runs at 15:00:45 and 17:01 apply the pre-notice and the auto-cancel
    sweep_at(stack, PRE_NOTICE_AT + timedelta(seconds=45))
    pre_notice = emf_metrics(capsys.readouterr().out)
    sweep_at(stack, AUTO_CANCEL_AT + timedelta(minutes=1))
    auto_cancel = emf_metrics(capsys.readouterr().out)

    # Then each run's EMF line names what it did, and how late
    assert booked == {"DueAppointments": [1.0], "RuleFailures": [0.0], "ReminderSkipped": [1.0]}
    # (a run sends no mail it just made: the stream's relay does; this stack has no relay, so the second run's
    # safety net takes the pre-notice, pending for two hours, and skips it: the appointment it announces was
    # just cancelled. The cancellation's own mails are left to the relay.)
    assert pre_notice == {
        "DueAppointments": [1.0],
        "RuleFailures": [0.0],
        "PreNoticeApplied": [1.0],
        "PreNoticeLatenessSeconds": [45.0],
    }
    assert auto_cancel == {
        "DueAppointments": [1.0],
        "RuleFailures": [0.0],
        "AutoCancelApplied": [1.0],
        "AutoCancelLatenessSeconds": [60.0],
        "MailsSkipped": [1.0],
    }


# -- what a sweep reads: the due items, not the table ------------------------------------------

SWEEP_NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
TABLE_SIZE = 10_000
DUE_NOW = 20
PENDING_MAILS = 300
SHARDS = 4


@pytest.fixture
def one_rollback_copy_per_transaction(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto deep-copies the whole table for rollback once per *action* of a transaction, all before its
    first write: the same state five times for a sweep's five-action transaction (2 s each on 10,000
    items). One copy per transaction keeps moto's rollback as it is, at a fifth of the cost."""
    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table

    transact_write_items = models.DynamoDBBackend.transact_write_items
    snapshots: dict[int, Any] = {}

    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        if not isinstance(value, Table):
            return copy.deepcopy(value, memo)
        if id(value) not in snapshots:
            snapshots[id(value)] = copy.deepcopy(value, memo)
        return snapshots[id(value)]

    def once_per_transaction(backend: Any, transact_items: list[dict[str, Any]]) -> None:
        snapshots.clear()
        try:
            transact_write_items(backend, transact_items)
        finally:
            snapshots.clear()

    monkeypatch.setattr(models, "copy", SimpleNamespace(deepcopy=deepcopy))
    monkeypatch.setattr(models.DynamoDBBackend, "transact_write_items", once_per_transaction)


class ReadMeter:
    """What DynamoDB answered: calls per operation, items read per operation, the shards queried."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.items: Counter[str] = Counter()
        self.queried: list[tuple[str | None, str]] = []

    def params(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "Query":
            self.queried.append((params.get("IndexName"), params["ExpressionAttributeValues"][":shard"]["S"]))

    def answered(self, http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls[model.name] += 1
        if model.name == "Query":
            self.items["Query"] += len(parsed.get("Items", []))
        elif model.name == "GetItem":
            self.items["GetItem"] += 1 if "Item" in parsed else 0


def booked_for(start: datetime, *, status: Status = Status.SCHEDULED, **fields: Any) -> Appointment:
    """An appointment booked three days before the sweep, for ``start``, with its next check armed."""
    booked = an_appointment(
        status, at=SWEEP_NOW - timedelta(days=3), start=start, end=start + timedelta(minutes=30), **fields
    )
    return booked.model_copy(update={"next_due_at": next_check(booked, CATALOG, RuleTimings())})


def seed(client: DynamoDBClient, store: DynamoAppointmentStore) -> list[str]:
    """10,000 appointments written as the store writes them (its own item building), straight to the
    table: 20 due now, the rest due later or never; plus pending mails in the mail shards. The ids of
    the 20 due now."""
    items: list[Mapping[str, UniversalAttributeValueTypeDef]] = []
    due_now: list[str] = []
    for n in range(TABLE_SIZE):
        if n < DUE_NOW:  # unassigned, starting in 2 h: reminder and pre-notice due
            appointment = booked_for(SWEEP_NOW + timedelta(hours=2, minutes=n), technicians=())
        elif n % 3 == 0:  # already completed: nothing left to check
            appointment = booked_for(SWEEP_NOW - timedelta(days=1, minutes=n), status=Status.COMPLETED)
        else:  # assigned, days ahead: the reminder is due later
            appointment = booked_for(SWEEP_NOW + timedelta(days=2, minutes=n))
        if n < DUE_NOW:
            assert appointment.next_due_at is not None
            assert appointment.next_due_at <= SWEEP_NOW
            due_now.append(appointment.id)
        else:
            assert appointment.next_due_at is None or appointment.next_due_at > SWEEP_NOW
        put = store._appointment_put(Change(before=None, after=appointment, history=()))
        items.append(put["Put"]["Item"])
        if n < PENDING_MAILS:  # mails waiting for the sender: due, but in shards of their own
            mail = OutboxMail.for_change(
                MailKind.CONFIRMATION, appointment, to=("dana@example.com",), at=appointment.created_at, context={}
            )
            items.append(store._mail_item(mail))
    for first in range(0, len(items), 25):
        batch: list[WriteRequestTypeDef] = [{"PutRequest": {"Item": item}} for item in items[first : first + 25]]
        unprocessed = client.batch_write_item(RequestItems={TABLE: batch})["UnprocessedItems"]
        assert not unprocessed
    return due_now


@pytest.mark.usefixtures("one_rollback_copy_per_transaction")
def test_a_sweep_of_a_10000_appointment_table_reads_the_due_items_not_the_table(dynamodb: DynamoDBClient) -> None:
    # Given 10,000 appointments (20 due now, 6,653 due later, 3,327 never) and 300 pending mails
    store = DynamoAppointmentStore(dynamodb, TABLE, due_shards=SHARDS)
    due_now = seed(dynamodb, store)
    assert dynamodb.describe_table(TableName=TABLE)["Table"]["ItemCount"] == TABLE_SIZE + PENDING_MAILS
    policy = SweepPolicy(coupons=CouponPolicy(), ops_alert_email="ops@msp.example", shards=SHARDS)
    sweeper = Sweeper(store, ManualClock(SWEEP_NOW), CATALOG, policy)
    meter = ReadMeter()
    dynamodb.meta.events.register("provide-client-params.dynamodb.Query", meter.params)
    dynamodb.meta.events.register("after-call.dynamodb.*", meter.answered)

    # When one sweep runs
    report = sweeper.sweep()

    # Then it read the 20 due index entries and the 20 appointments behind them, nothing else
    assert report.summary() == {
        "due": DUE_NOW,
        "applied": {"pre_notice": DUE_NOW, "reminder": DUE_NOW},
        "skipped": {},
        "failed": 0,
        "stopped_early": False,
        # the first one's 24 h reminder, due at 11:00 yesterday: 22 h late (booked 3 days ago, never swept)
        "max_lateness_seconds": 22 * 3600.0,
    }
    assert meter.items == {"Query": DUE_NOW, "GetItem": DUE_NOW}
    assert sum(meter.items.values()) <= 2 * DUE_NOW + 5  # of the order of what is due, not of the table
    # And its calls: one Query per rules shard of the due index (no mail shard), one GetItem and one
    # TransactWriteItems per due appointment
    assert sorted(meter.queried) == [("due", f"DUE#{shard}") for shard in range(SHARDS)]
    assert meter.calls == {"Query": SHARDS, "GetItem": DUE_NOW, "TransactWriteItems": DUE_NOW}
    # And each due appointment got its notices and waits for its auto-cancel; a second sweep finds nothing due
    for appointment_id in due_now:
        swept = store.get(appointment_id)
        assert swept.next_due_at == swept.start - timedelta(hours=1)
    meter.calls.clear()
    assert sweeper.sweep().due == 0
    assert meter.calls == {"Query": SHARDS}
