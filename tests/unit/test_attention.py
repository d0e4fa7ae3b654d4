"""Needs attention (GET /attention) on the in-memory store: what is listed, what resolves it, the order and
what it costs to read."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from appointments.adapters.clock import ManualClock
from appointments.domain import lifecycle
from appointments.domain.coupons import CouponPolicy
from appointments.domain.events import CanonicalEvent, EventKind
from appointments.domain.history import NEEDS_A_HUMAN, Record
from appointments.domain.model import Actor, ContactOutcome, ExternalRef
from appointments.domain.rules import RuleTimings
from appointments.services import attention as attention_module
from appointments.services.attention import Attention, Kind
from appointments.services.back_office import (
    BackOffice,
    BackOfficePolicy,
    Cancel,
    LogContactAttempt,
    Reassign,
)
from tests.factories import ALEX, CATALOG, NOW, OPS, a_draft
from tests.fakes import InMemoryAppointmentStore

if TYPE_CHECKING:
    from appointments.domain.model import Appointment
    from appointments.ports import AppointmentRecord


class CountingStore(InMemoryAppointmentStore):
    """Counts the reads the attention list makes."""

    def __init__(self) -> None:
        super().__init__()
        self.loads = 0
        self.listings = 0

    def load(self, appointment_id: str) -> AppointmentRecord:
        self.loads += 1
        return super().load(appointment_id)

    def list_between(self, start_from: datetime, start_to: datetime, limit: int, cursor: str | None) -> Any:
        self.listings += 1
        return super().list_between(start_from, start_to, limit, cursor)


class Desk:
    def __init__(self) -> None:
        self.store = CountingStore()
        self.clock = ManualClock(NOW)
        self.office = BackOffice(self.store, self.clock, CATALOG, BackOfficePolicy(coupons=CouponPolicy()))
        self.attention = Attention(self.store, self.clock, RuleTimings())

    def book(self, hours: float, **overrides: Any) -> Appointment:
        start = self.clock.now() + timedelta(hours=hours)
        return self.office.create(
            a_draft(start=start, end=start + timedelta(minutes=30), external_refs=(), **overrides), actor=OPS
        )

    def record(self, appointment_id: str, fact: Record, **detail: Any) -> None:
        appointment = self.store.get(appointment_id)
        self.store.commit(lifecycle.record(appointment, fact, at=self.clock.now(), actor=Actor.system(), detail=detail))

    def kinds(self) -> list[tuple[str, str | None]]:
        return [(item.kind.value, item.appointment_id) for item in self.attention.report().items]


def test_an_unassigned_appointment_within_24_hours_is_listed_with_its_pre_notice_and_auto_cancel_times() -> None:
    # Given an unassigned booking starting in 6 hours and another in 30 hours
    desk = Desk()
    soon = desk.book(6, technicians=())
    desk.book(30, technicians=())

    # When the attention list is read
    report = desk.attention.report()

    # Then only the first is listed, with its countdown targets and the suggested action
    [item] = report.items
    assert (item.kind, item.appointment_id, item.action) == (Kind.UNASSIGNED_SOON, soon.id, "reassign")
    assert item.pre_notice_at == soon.start - timedelta(hours=3)
    assert item.auto_cancel_at == soon.start - timedelta(hours=1)
    assert (item.customer, item.timezone, item.technicians) == ("Dana Reyes", "America/New_York", ())
    assert report.now == NOW


def test_at_risk_is_listed_until_someone_is_assigned_and_replaces_unassigned_soon() -> None:
    # Given an unassigned booking the rules flagged at risk
    desk = Desk()
    risky = desk.book(0.5, technicians=())
    desk.record(risky.id, Record.AT_RISK, due_at=NOW.isoformat())

    # Then it is listed once, as at risk
    assert desk.kinds() == [("at_risk", risky.id)]

    # When a technician is assigned, then it is resolved
    desk.office.act(risky.id, Reassign(technicians=(ALEX,)), actor=OPS)
    assert desk.kinds() == []


def test_a_cancelled_appointment_is_no_longer_at_risk_nor_unassigned() -> None:
    desk = Desk()
    risky = desk.book(0.5, technicians=())
    desk.record(risky.id, Record.UNASSIGNED_AT_START, due_at=NOW.isoformat())
    desk.office.act(risky.id, Cancel(reason="nobody free"), actor=OPS)
    assert desk.kinds() == []


def test_a_bounced_mail_is_listed_until_the_customer_is_called() -> None:
    # Given an assigned appointment whose confirmation bounced
    desk = Desk()
    bounced = desk.book(48)
    desk.record(bounced.id, Record.MAIL_BOUNCED, kind="confirmation", feedback="bounce", reason="mailbox full")

    # Then it is listed with what happened and the suggested call
    [item] = desk.attention.report().items
    assert (item.kind, item.action, item.technicians) == (Kind.MAIL_BOUNCED, "contact_attempt", ("Sam Okafor",))
    assert "confirmation mail came back (bounce): mailbox full" in item.detail
    assert (item.pre_notice_at, item.auto_cancel_at) == (None, None)

    # When someone calls the customer, then it is resolved
    desk.office.act(bounced.id, LogContactAttempt(outcome=ContactOutcome.REACHED), actor=OPS)
    assert desk.kinds() == []


def test_a_bounced_ops_alert_is_not_the_dispatchers_business() -> None:
    desk = Desk()
    appointment = desk.book(48)
    desk.record(appointment.id, Record.MAIL_BOUNCED, kind="ops_alert", feedback="bounce")
    assert desk.kinds() == []


def test_a_psa_write_back_failure_is_listed_until_a_later_write_succeeds() -> None:
    desk = Desk()
    appointment = desk.book(48)
    desk.record(appointment.id, Record.PSA_WRITEBACK_FAILED, system="autotask", ticket="48213", reason="HTTP 500")
    [item] = desk.attention.report().items
    assert (item.kind, item.action) == (Kind.PSA_WRITEBACK_FAILED, "open_ticket")
    assert item.detail == "the ticket 48213 in autotask could not be updated: HTTP 500"
    desk.record(appointment.id, Record.PSA_WRITTEN, system="autotask")
    assert desk.kinds() == []


def test_records_older_than_two_days_are_not_news() -> None:
    # Given a mail that failed three days ago for an appointment starting in four days
    desk = Desk()
    desk.clock.set(NOW - timedelta(days=3))
    old = desk.book(7 * 24)
    desk.record(old.id, Record.MAIL_FAILED, kind="confirmation", reason="rejected")
    desk.clock.set(NOW)

    # Then it is not listed, and the appointment is not even loaded: it has not changed since
    report = desk.attention.report()
    assert report.items == ()
    assert report.loads == 0


def test_unmatched_booking_changes_are_listed_ticket_events_are_not() -> None:
    desk = Desk()
    ref = ExternalRef(system="calcom", id="bk-missing")
    event = CanonicalEvent(
        source="calcom",
        delivery_id="d-1",
        kind=EventKind.CANCELLED,
        occurred_at=NOW - timedelta(minutes=5),
        entity="calcom#bk-missing",
        external_ref=ref,
    )
    desk.store.keep_waiting("ref#calcom#bk-missing", event, NOW + timedelta(hours=72))
    desk.store.keep_waiting("ticket#autotask#1", event.model_copy(update={"delivery_id": "d-2"}), NOW)
    [item] = desk.attention.report().items
    assert (item.kind, item.appointment_id, item.customer, item.start, item.action) == (
        Kind.UNMATCHED,
        None,
        None,
        None,
        "review",
    )
    assert "calcom:bk-missing" in item.detail
    assert item.at == NOW - timedelta(minutes=5)


def test_most_urgent_first_and_one_load_per_appointment_with_a_recent_record_needing_a_human() -> None:
    # Given, booked three days ago, 30 assigned appointments nobody touched since, and today an unassigned one,
    # a bounced mail and an at-risk one
    desk = Desk()
    desk.clock.set(NOW - timedelta(days=3))
    for n in range(30):
        desk.book(3 * 24 + 2 + n)
    desk.clock.set(NOW)
    bounced = desk.book(2)
    desk.record(bounced.id, Record.MAIL_BOUNCED, kind="reminder", feedback="bounce", reason="no such user")
    soon = desk.book(20, technicians=())
    risky = desk.book(0.75, technicians=())
    desk.record(risky.id, Record.AT_RISK, due_at=NOW.isoformat())
    desk.store.loads = desk.store.listings = 0

    # When the attention list is read
    report = desk.attention.report()

    # Then the unassigned ones come first (soonest start first), then the mail trouble
    assert [(i.kind.value, i.appointment_id) for i in report.items] == [
        ("at_risk", risky.id),
        ("unassigned_soon", soon.id),
        ("mail_bounced", bounced.id),
    ]
    # And only the two with a record needing a human were loaded (the unassigned one is told by its summary);
    # the window was listed once (one page)
    assert (report.loads, desk.store.loads, desk.store.listings) == (2, 2, 1)


def test_a_busy_day_of_ordinary_changes_costs_no_load() -> None:
    # Given 40 appointments booked, confirmed and noted today: changed, but nothing a dispatcher must act on
    desk = Desk()
    for n in range(40):
        desk.book(26 + n)
    desk.store.loads = desk.store.listings = 0
    # When the console polls the attention list
    report = desk.attention.report()
    # Then nothing is listed and no appointment was loaded: one listing of the window is the whole cost
    assert (report.items, report.loads, desk.store.loads, desk.store.listings) == ((), 0, 0, 1)


def test_every_record_a_dispatcher_must_see_stamps_attention_at() -> None:
    # The attention list trusts attention_at: every kind it reads from history must set it
    assert set(attention_module._RECORDS) == NEEDS_A_HUMAN
    desk = Desk()
    for record in sorted(NEEDS_A_HUMAN):
        booked = desk.book(30)
        desk.clock.advance(timedelta(minutes=1))
        desk.record(booked.id, record)
        assert desk.store.get(booked.id).attention_at == desk.clock.now()
    plain = desk.book(30)
    desk.record(plain.id, Record.DETAILS_UPDATED)
    assert desk.store.get(plain.id).attention_at is None


def test_every_page_of_the_window_is_read() -> None:
    desk = Desk()
    for n in range(205):
        desk.book(1 + n * 0.5, technicians=())  # hours 1 .. 103: the first 46 start within 24 h
    desk.store.listings = 0
    items = desk.attention.report().items
    assert desk.store.listings == 2
    assert len(items) == 46
    assert [i.start for i in items] == sorted(i.start for i in items if i.start is not None)
