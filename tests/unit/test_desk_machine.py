"""The whole desk as a state machine (hypothesis, stateful), in memory: generic webhooks about three
bookings (book, reschedule, assign, unassign, cancel; any vendor time, so any order, and redelivered),
dispatchers' actions (reassign, cancel, check-in, hold, reschedule), the clock moving a little or a lot,
sweeps (with the outbox relay sending the due mails through a fake mailer), and the PSA write-back fed
every history entry as its domain event, twice.

What must hold after every step: an assigned appointment is never auto-cancelled; each notice goes out at
most once per start time, and no mail twice; each sweep applies exactly the rules the pure
``domain.rules.decide`` says are due at its time, and leaves nothing due (so every rule fires at the first
sweep at or after its due time); history has one entry per delivery; cancelled is terminal; the PSA gets
each domain event's note at most once. DESK_MACHINE_EXAMPLES and DESK_MACHINE_STEPS size it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from appointments.adapters.clock import ManualClock
from appointments.adapters.dynamo_store import appointment_summary, history_key
from appointments.domain.coupons import CouponPolicy
from appointments.domain.events import CanonicalEvent
from appointments.domain.history import Action, Record
from appointments.domain.model import ActorKind, Status
from appointments.domain.outbox import MailKind
from appointments.domain.psa_writeback import WritebackPolicy
from appointments.domain.rules import RuleTimings, decide, next_check
from appointments.errors import InvalidInput, InvalidTransition
from appointments.services.back_office import (
    BackOffice,
    BackOfficePolicy,
    Cancel,
    CheckIn,
    Command,
    Reassign,
    Reschedule,
    SetHold,
)
from appointments.services.outbox_relay import HistoryRecord
from appointments.services.processor import EventProcessor, SourcePolicy
from appointments.services.psa_writeback import PsaWriteback, WritebackSettings
from appointments.services.sweeper import Sweeper, SweepPolicy
from appointments.sources.base import WebhookRequest
from appointments.sources.generic import GenericSource
from tests.factories import ALEX, CATALOG, NOW, OPS, SAM
from tests.fakes import InMemoryAppointmentStore
from tests.unit.test_outbox_relay import ScriptedMailer, a_relay
from tests.unit.test_psa_writeback import FakeTickets
from tests.unit.test_sweeper import Codes

EXAMPLES = int(os.environ.get("DESK_MACHINE_EXAMPLES", "30"))
STEPS = int(os.environ.get("DESK_MACHINE_STEPS", "30"))
OPS_MAIL = "ops@msp.example"
BOOKINGS = ("sm-0", "sm-1", "sm-2")
KINDS = (
    "appointment.scheduled",
    "appointment.rescheduled",
    "appointment.assigned",
    "unassign",
    "appointment.cancelled",
)
ACTIONS = ("assign", "unassign", "cancel", "check_in", "hold", "release", "reschedule")
RULE_ACTIONS = frozenset({Action.REMINDER, Action.PRE_NOTICE, Action.AUTO_CANCEL, Action.NO_SHOW})
RULE_RECORDS = frozenset({Record.AT_RISK, Record.UNASSIGNED_AT_START, Record.NOTICE_SKIPPED})
TECHNICIANS = [{"id": "t-17", "name": "Sam Okafor", "email": "sam@msp.example"}, {"id": "t-23", "name": "Alex Kim"}]
M = timedelta(minutes=1)
RUNS = Counter[str]()  # examples and steps run, for the report


def webhook(booking: str, kind: str, *, occurred_at: datetime, start: datetime, technicians: int, n: int) -> bytes:
    appointment: dict[str, Any] = {"external_id": booking}
    if kind in ("appointment.scheduled", "appointment.rescheduled"):
        appointment.update(
            start=start.isoformat(),
            end=(start + timedelta(minutes=30)).isoformat(),
            timezone="America/New_York",
            type="remote_call_in",
            customer={"name": "Dana Reyes", "email": "dana@example.com"},
            technicians=TECHNICIANS[:technicians],
            ticket={"system": "autotask", "id": f"4{BOOKINGS.index(booking)}"},
        )
    elif kind in ("appointment.assigned", "unassign"):
        appointment["technicians"] = [] if kind == "unassign" else TECHNICIANS[: max(1, technicians)]
    document = {
        "event_id": f"evt-{n}",
        "type": "appointment.assigned" if kind == "unassign" else kind,
        "occurred_at": occurred_at.isoformat(),
        "appointment": appointment,
        "reason": "machine" if kind == "appointment.cancelled" else None,
    }
    return json.dumps(document).encode()


def command(what: str, now: datetime, minutes: int) -> Command:
    match what:
        case "assign":
            return Reassign(technicians=(SAM, ALEX)[: 1 + minutes % 2])
        case "unassign":
            return Reassign(technicians=())
        case "cancel":
            return Cancel(reason="customer called")
        case "check_in":
            return CheckIn()
        case "hold" | "release":
            return SetHold(on=what == "hold")
        case _:
            return Reschedule(start=now + minutes * M)


def rule_name(entry: Any) -> str:
    return str(entry.detail.get("rule", entry.action)) if entry.action is Record.NOTICE_SKIPPED else str(entry.action)


class DeskMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        RUNS["examples"] += 1
        self.store = InMemoryAppointmentStore()
        self.clock = ManualClock(NOW)
        self.timings = RuleTimings()
        coupons = CouponPolicy(new_code=Codes())
        self.office = BackOffice(
            self.store, self.clock, CATALOG, BackOfficePolicy(coupons=coupons, timings=self.timings)
        )
        self.processor = EventProcessor(
            self.store, self.clock, CATALOG, SourcePolicy(ops_alert_email=OPS_MAIL, timings=self.timings)
        )
        self.mailer = ScriptedMailer()
        relay = a_relay(self.store, self.mailer, clock=self.clock)
        sweep_policy = SweepPolicy(
            coupons=coupons, ops_alert_email=OPS_MAIL, timings=self.timings, shards=self.store.due_shards
        )
        self.sweeper = Sweeper(self.store, self.clock, CATALOG, sweep_policy, mail=relay)
        self.tickets = FakeTickets()
        writeback = WritebackSettings(
            rules=WritebackPolicy(statuses={"no_show": {"autotask": "17"}}), ops_alert_email=OPS_MAIL
        )
        self.writeback = PsaWriteback(self.store, {"autotask": self.tickets}, self.clock, lambda _s: None, writeback)
        self.sent: list[CanonicalEvent] = []
        self.cancelled: set[str] = set()
        self.event_keys: dict[tuple[str, int], str] = {}  # (appointment, history index) -> its key, when first seen
        self.n = 0

    # --- webhooks

    @rule(
        booking=st.sampled_from(BOOKINGS),
        kind=st.sampled_from(KINDS),
        age=st.integers(0, 24 * 60),  # the vendor's time: any, so events arrive in any order
        ahead=st.one_of(st.integers(-60, 5 * 60), st.integers(-60, 5 * 60), st.integers(5 * 60, 2 * 24 * 60)),
        technicians=st.integers(0, 2),
    )
    def a_webhook(self, booking: str, kind: str, age: int, ahead: int, technicians: int) -> None:
        self.n += 1
        now = self.clock.now()
        body = webhook(
            booking,
            kind,
            occurred_at=NOW - timedelta(days=1) + age * M,
            start=now + ahead * M,
            technicians=technicians,
            n=self.n,
        )
        [event] = GenericSource().parse(WebhookRequest(headers={}, body=body))
        self.sent.append(event)
        self.processor.apply(event)
        RUNS["webhooks"] += 1

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data())
    def a_redelivery(self, data: st.DataObject) -> None:
        self.processor.apply(data.draw(st.sampled_from(self.sent)))

    # --- dispatchers

    @precondition(lambda self: bool(self.store.appointments))
    @rule(which=st.integers(0, 10), what=st.sampled_from(ACTIONS), minutes=st.integers(-30, 3 * 24 * 60))
    def an_ops_action(self, which: int, what: str, minutes: int) -> None:
        ids = sorted(self.store.appointments)
        appointment_id = ids[which % len(ids)]
        with contextlib.suppress(InvalidTransition, InvalidInput):  # refused: nothing changed
            self.office.act(appointment_id, command(what, self.clock.now(), minutes), actor=OPS)

    # --- time

    @rule(minutes=st.one_of(st.integers(1, 30), st.integers(31, 180), st.integers(180, 30 * 60)))
    def the_clock_moves(self, minutes: int) -> None:
        self.clock.advance(minutes * M)

    @rule()
    def a_sweep(self) -> None:
        now = self.clock.now()
        before = dict(self.store.appointments)
        marks = {i: len(self.store.history[i]) for i in before}
        expected: dict[str, Counter[str]] = {}
        for appointment_id, appointment in before.items():
            verdict = decide(appointment, CATALOG.get(appointment.type), self.timings, now=now)
            expected[appointment_id] = Counter(
                [str(d.rule) for d in verdict.apply] + [str(s.due.rule) for s in verdict.skip]
            )
        report = self.sweeper.sweep()
        RUNS["sweeps"] += 1
        assert report.failed == 0, report
        for appointment_id, appointment in before.items():
            after = self.store.get(appointment_id)
            produced = [
                e
                for e in self.store.history[appointment_id][marks[appointment_id] :]
                if e.actor.kind is ActorKind.SYSTEM
            ]
            by_rules = [e for e in produced if e.action in RULE_ACTIONS | RULE_RECORDS]
            # exactly what the pure rules said was due by now, applied or skipped
            assert Counter(rule_name(e) for e in by_rules) == expected[appointment_id], (by_rules, expected)
            RUNS.update(f"rule {rule_name(e)}" for e in by_rules)
            if appointment.is_assigned:
                assert all(e.action is not Action.AUTO_CANCEL for e in by_rules), by_rules
            # nothing due by now is left for a later sweep
            assert after.next_due_at is None or after.next_due_at > now, after
            assert after.next_due_at == next_check(after, CATALOG, self.timings)

    # --- the PSA write-back, fed every domain event twice

    @precondition(lambda self: bool(self.store.appointments))
    @rule()
    def the_writeback_runs(self) -> None:
        for appointment_id in sorted(self.store.appointments):
            for index, entry in enumerate(list(self.store.history[appointment_id])):
                key = self.event_keys[(appointment_id, index)]
                summary = appointment_summary(self.store.get(appointment_id))
                detail = HistoryRecord(appointment_id, key, entry, summary).event.detail
                self.writeback.handle(detail)
                self.writeback.handle(detail)

    # --- what always holds

    @invariant()
    def steps_counted(self) -> None:
        RUNS["steps"] += 1

    @invariant()
    def history_keys_are_stable(self) -> None:
        for appointment_id, history in self.store.history.items():
            version = (
                self.store.appointments[appointment_id].version if appointment_id in self.store.appointments else 0
            )
            for index in range(len(history)):
                self.event_keys.setdefault((appointment_id, index), history_key(version, index))

    @invariant()
    def one_entry_per_delivery(self) -> None:
        for appointment_id, history in self.store.history.items():
            deliveries = Counter(e.detail["delivery_id"] for e in history if "delivery_id" in e.detail)
            assert max(deliveries.values(), default=0) <= 1, (appointment_id, deliveries)

    @invariant()
    def notices_once_per_start_and_no_mail_twice(self) -> None:
        for appointment_id, mails in self.store.mails.items():
            notices = Counter(
                (m.kind, m.key.split("#")[-1])
                for m in mails.values()
                if m.kind in (MailKind.REMINDER, MailKind.PRE_NOTICE)
            )
            assert max(notices.values(), default=0) <= 1, (appointment_id, notices)
        sent = Counter((m.appointment_id, m.mail_key) for m in self.mailer.sent)
        assert max(sent.values(), default=0) <= 1, sent

    @invariant()
    def cancelled_is_terminal(self) -> None:
        for appointment_id, appointment in self.store.appointments.items():
            if appointment_id in self.cancelled:
                assert appointment.status is Status.CANCELLED, (appointment, self.store.history[appointment_id])
            elif appointment.status is Status.CANCELLED:
                self.cancelled.add(appointment_id)

    @invariant()
    def the_psa_saw_each_event_once(self) -> None:
        references = Counter(note.reference for notes in self.tickets.notes.values() for note in notes)
        assert max(references.values(), default=0) <= 1, references


DeskMachine.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestDeskMachine = DeskMachine.TestCase


def test_report_how_many_ran() -> None:
    """Runs after the machine (file order): prints how many examples and steps it ran."""
    print(
        f"\ndesk machine: {RUNS['examples']} examples, {RUNS['steps']} steps (max {EXAMPLES} x {STEPS}): {dict(RUNS)}"
    )
