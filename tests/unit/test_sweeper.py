"""The sweeper on in-memory fakes: each rule's effect (state, history, mails, next check) written once,
late and catch-up runs, windows, reschedules, holds, reopens, races with dispatchers and other sweeps."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest

from appointments.adapters.clock import ManualClock
from appointments.domain.coupons import CouponPolicy
from appointments.domain.history import Action, HistoryEntry, Record
from appointments.domain.model import Actor, CancelledBy, Discount, Status
from appointments.domain.outbox import MailKind, NoShowMailBy
from appointments.domain.rules import RuleTimings, pre_notice_key, reminder_key
from appointments.errors import InvalidTransition
from appointments.ports import DueKind, DuePage
from appointments.services.back_office import (
    BackOffice,
    BackOfficePolicy,
    CheckIn,
    Command,
    Complete,
    NoShow,
    Reassign,
    Reopen,
    Reschedule,
    SetHold,
)
from appointments.services.processor import EventProcessor, SourcePolicy
from appointments.services.sweeper import PAGE_SIZE, Sweeper, SweepPolicy
from appointments.sources.base import WebhookRequest
from appointments.sources.generic import GenericSource
from tests.factories import ALEX, CATALOG, DANA, NOW, OPS, SAM, a_draft
from tests.fakes import ConflictingStore, InMemoryAppointmentStore
from tests.signing import sample

if TYPE_CHECKING:
    from collections.abc import Callable

    from appointments.domain.appointment_types import AppointmentTypeCatalog
    from appointments.domain.events import CanonicalEvent
    from appointments.domain.lifecycle import Change
    from appointments.domain.model import Appointment, Technician
    from appointments.services.sweeper import SweepReport

OPS_MAIL = "ops@msp.example"
CUSTOMER = (DANA.email,)
OPS_ALERT = (OPS_MAIL,)
S = NOW + timedelta(days=2)  # a start far enough ahead that every rule is still to come
H = timedelta(hours=1)
M = timedelta(minutes=1)


# --- the desk: a store, a clock, the back office and the sweeper, all in memory


class Codes:
    """Coupon codes that never repeat and are known in advance."""

    def __init__(self) -> None:
        self._next = itertools.count(1)

    def __call__(self) -> str:
        return f"TEST-{next(self._next):04d}-0000-0000"


@dataclass
class Desk:
    store: InMemoryAppointmentStore
    clock: ManualClock
    office: BackOffice
    sweeper: Sweeper
    timings: RuleTimings
    catalog: AppointmentTypeCatalog

    def book(self, start: datetime = S, *, technicians: tuple[Technician, ...] = (SAM,), **draft: Any) -> Appointment:
        """A booking made now by a dispatcher (ops create), 30 minutes long."""
        fields: dict[str, Any] = {"end": start + timedelta(minutes=30), "external_refs": (), **draft}
        return self.office.create(a_draft(start=start, technicians=technicians, **fields), actor=OPS)

    def act(self, appointment_id: str, command: Command) -> Appointment:
        return self.office.act(appointment_id, command, actor=OPS)

    def sweep_at(self, when: datetime, **kwargs: Any) -> SweepReport:
        self.clock.set(when)
        return self.sweeper.sweep(**kwargs)

    def get(self, appointment_id: str) -> Appointment:
        return self.store.get(appointment_id)

    def mark(self, appointment_id: str) -> Mark:
        return Mark(len(self.store.history[appointment_id]), frozenset(self.store.mails[appointment_id]))

    def new_history(self, appointment_id: str, since: Mark) -> list[HistoryEntry]:
        return self.store.history[appointment_id][since.history :]

    def new_actions(self, appointment_id: str, since: Mark) -> list[str]:
        return [str(e.action) for e in self.new_history(appointment_id, since)]

    def new_mails(self, appointment_id: str, since: Mark) -> list[tuple[MailKind, tuple[str, ...]]]:
        return [(m.kind, m.to) for k, m in self.store.mails[appointment_id].items() if k not in since.mails]

    def notice_keys(self, appointment_id: str) -> list[str]:
        return [m.key for m in self.store.mails[appointment_id].values() if m.kind in NOTICE_KINDS]


NOTICE_KINDS = frozenset({MailKind.REMINDER, MailKind.PRE_NOTICE})


@dataclass(frozen=True)
class Mark:
    history: int
    mails: frozenset[str]


def a_desk(
    *,
    store: InMemoryAppointmentStore | None = None,
    now: datetime = NOW,
    timings: RuleTimings | None = None,
    catalog: AppointmentTypeCatalog = CATALOG,
    shards: int = 4,
    reserve_seconds: float = 10.0,
    no_show_mail_by: NoShowMailBy = NoShowMailBy.DESK,
) -> Desk:
    store = store if store is not None else InMemoryAppointmentStore(due_shards=shards)
    timings = timings or RuleTimings()
    clock = ManualClock(now)
    coupons = CouponPolicy(new_code=Codes())
    office_policy = BackOfficePolicy(coupons=coupons, timings=timings, no_show_mail_by=no_show_mail_by)
    office = BackOffice(store, clock, catalog, office_policy)
    policy = SweepPolicy(
        coupons=coupons,
        ops_alert_email=OPS_MAIL,
        timings=timings,
        shards=store.due_shards,
        reserve_seconds=reserve_seconds,
        no_show_mail_by=no_show_mail_by,
    )
    return Desk(store, clock, office, Sweeper(store, clock, catalog, policy), timings, catalog)


def rules_of(report: SweepReport) -> list[tuple[str, bool]]:
    """(rule, applied) for each effect of a run, in order."""
    return [(str(e.rule), e.skipped is None) for e in report.effects]


class RacingStore(InMemoryAppointmentStore):
    """Another writer commits once between a reader's read and its commit: ``race`` runs right before
    the next commit of an existing appointment, then the commit goes on (and meets the new version)."""

    def __init__(self, due_shards: int = 4) -> None:
        super().__init__(due_shards)
        self.race: Callable[[], object] | None = None

    def commit(self, change: Change) -> None:
        race, self.race = self.race, None
        if race is not None and change.before is not None:
            race()
        super().commit(change)


class CountingStore(InMemoryAppointmentStore):
    def __init__(self, due_shards: int = 4) -> None:
        super().__init__(due_shards)
        self.gets: list[str] = []
        self.due_queries = 0

    def get(self, appointment_id: str) -> Appointment:
        self.gets.append(appointment_id)
        return super().get(appointment_id)

    def due(self, kind: DueKind, shard: int, until: datetime, *, limit: int, cursor: str | None = None) -> DuePage:
        self.due_queries += 1
        return super().due(kind, shard, until, limit=limit, cursor=cursor)


class StaleIndexStore(InMemoryAppointmentStore):
    """``after_due`` runs once, after the first page of the due index is read and before it is returned:
    whatever it changes, the reader goes on with what it read."""

    def __init__(self, due_shards: int = 4) -> None:
        super().__init__(due_shards)
        self.after_due: Callable[[], object] | None = None

    def due(self, kind: DueKind, shard: int, until: datetime, *, limit: int, cursor: str | None = None) -> DuePage:
        page = super().due(kind, shard, until, limit=limit, cursor=cursor)
        hook, self.after_due = self.after_due, None
        if hook is not None:
            hook()
        return page


class KeyCursorStore(InMemoryAppointmentStore):
    """The due index paged as DynamoDB pages it: the cursor is the last key returned (not an offset), so
    items that leave the index while a run pages through it move nothing else."""

    def due(self, kind: DueKind, shard: int, until: datetime, *, limit: int, cursor: str | None = None) -> DuePage:
        everything = super().due(kind, shard, until, limit=10**9).items
        after = [
            item for item in everything if cursor is None or f"{item.due_at.isoformat()}|{item.appointment_id}" > cursor
        ]
        page = tuple(after[:limit])
        last = page[-1] if len(after) > limit else None
        return DuePage(items=page, cursor=None if last is None else f"{last.due_at.isoformat()}|{last.appointment_id}")


# --- each effect: exact state, history, mails, next check, one transaction


def test_the_reminder_mails_the_customer_once_and_arms_the_no_show() -> None:
    # Given an assigned call-in appointment booked two days ahead
    desk = a_desk()
    booked = desk.book()
    before, commits = desk.mark(booked.id), desk.store.commits

    # When the sweep runs at the reminder time
    report = desk.sweep_at(S - 24 * H)

    # Then one transaction: the reminder mail to the customer, a history entry by the system, the next check
    after = desk.get(booked.id)
    assert desk.store.commits == commits + 1
    assert desk.new_mails(booked.id, before) == [(MailKind.REMINDER, CUSTOMER)]
    [entry] = desk.new_history(booked.id, before)
    assert (entry.action, entry.actor, entry.from_status, entry.to_status) == (
        Action.REMINDER,
        Actor.system(),
        Status.SCHEDULED,
        Status.SCHEDULED,
    )
    key = reminder_key(24 * H, S)
    assert entry.detail == {"notice": key, "due_at": (S - 24 * H).isoformat()}
    assert after.notices_sent == {key: S - 24 * H}
    assert after.next_due_at == S + 10 * M
    assert after.version == booked.version + 1
    assert desk.notice_keys(booked.id) == [key]
    assert rules_of(report) == [("reminder", True)]
    assert report.summary()["applied"] == {"reminder": 1}


def test_the_pre_notice_mails_the_customer_that_a_technician_is_still_being_assigned() -> None:
    desk = a_desk()
    booked = desk.book(technicians=())
    desk.sweep_at(S - 24 * H)
    before = desk.mark(booked.id)

    desk.sweep_at(S - 3 * H)

    assert desk.new_mails(booked.id, before) == [(MailKind.PRE_NOTICE, CUSTOMER)]
    assert desk.new_actions(booked.id, before) == ["pre_notice"]
    assert desk.new_history(booked.id, before)[0].detail["due_at"] == (S - 3 * H).isoformat()
    assert desk.get(booked.id).next_due_at == S - H


def test_the_auto_cancel_cancels_by_the_system_with_a_coupon_mails_the_customer_and_alerts_ops() -> None:
    # Given an unassigned appointment whose reminder and pre-notice went out
    desk = a_desk()
    booked = desk.book(technicians=())
    desk.sweep_at(S - 24 * H)
    desk.sweep_at(S - 3 * H)
    before = desk.mark(booked.id)

    # When the sweep runs at the auto-cancel point
    report = desk.sweep_at(S - H)

    # Then it is cancelled by the system with a coupon, the customer told, ops alerted, nothing left to check
    after = desk.get(booked.id)
    assert after.status is Status.CANCELLED
    assert after.cancellation is not None
    assert (after.cancellation.by, after.cancellation.reason) == (
        CancelledBy.SYSTEM,
        "no technician could be assigned in time",
    )
    coupon = after.cancellation.coupon
    assert coupon is not None and coupon.percent == 15
    assert after.next_due_at is None
    assert desk.new_mails(booked.id, before) == [(MailKind.CANCELLED, CUSTOMER), (MailKind.OPS_ALERT, OPS_ALERT)]
    cancelled_mail, alert = (
        desk.store.mails[booked.id][k] for k in desk.store.mails[booked.id] if k not in before.mails
    )
    assert cancelled_mail.context["coupon"] == {"code": coupon.code, "percent": 15}
    assert alert.context["rule"] == "auto_cancel"
    [entry] = desk.new_history(booked.id, before)
    assert (entry.action, entry.actor, entry.from_status, entry.to_status) == (
        Action.AUTO_CANCEL,
        Actor.system(),
        Status.SCHEDULED,
        Status.CANCELLED,
    )
    assert entry.detail["due_at"] == (S - H).isoformat()
    assert entry.detail["coupon"] == coupon.code
    assert rules_of(report) == [("auto_cancel", True)]


def test_an_auto_cancel_offers_no_coupon_to_a_customer_with_a_discount() -> None:
    desk = a_desk()
    booked = desk.book(technicians=(), discount=Discount(percent=10))
    desk.sweep_at(S - H)
    cancellation = desk.get(booked.id).cancellation
    assert cancellation is not None and cancellation.coupon is None
    [cancelled] = (m for m in desk.store.mails[booked.id].values() if m.kind is MailKind.CANCELLED)
    assert "coupon" not in cancelled.context


def test_the_no_show_marks_the_appointment_and_mails_the_customer() -> None:
    desk = a_desk()
    booked = desk.book()
    desk.sweep_at(S - 24 * H)
    before = desk.mark(booked.id)

    desk.sweep_at(S + 10 * M)

    after = desk.get(booked.id)
    assert (after.status, after.no_show_at, after.next_due_at) == (Status.NO_SHOW, S + 10 * M, None)
    assert desk.new_mails(booked.id, before) == [(MailKind.NO_SHOW, CUSTOMER)]
    [entry] = desk.new_history(booked.id, before)
    assert (entry.action, entry.actor, entry.to_status) == (Action.NO_SHOW, Actor.system(), Status.NO_SHOW)
    assert entry.detail["due_at"] == (S + 10 * M).isoformat()
    assert entry.detail["mail"] == "desk"


@pytest.mark.parametrize(
    ("mail_by", "ticketed", "email", "mailed", "told"),
    [
        (NoShowMailBy.DESK, True, True, True, "desk"),
        (NoShowMailBy.DESK, False, True, True, "desk"),
        (NoShowMailBy.DESK, True, False, False, "none"),
        (NoShowMailBy.PSA, True, True, False, "psa"),  # setting the ticket to NO-SHOW fires the PSA's own mail
        (NoShowMailBy.PSA, True, False, False, "psa"),  # the PSA mails its ticket contact
        (NoShowMailBy.PSA, False, True, True, "desk"),  # no ticket to set: the desk still tells the customer
        (NoShowMailBy.PSA, False, False, False, "none"),
    ],
)
def test_the_no_show_mail_is_sent_by_whoever_no_show_mail_by_names(
    mail_by: NoShowMailBy, ticketed: bool, email: bool, mailed: bool, told: str
) -> None:
    # Given a call-in appointment, with or without a ticket and a customer address
    desk = a_desk(no_show_mail_by=mail_by)
    customer = DANA if email else DANA.model_copy(update={"email": None})
    ticket = a_draft().ticket if ticketed else None
    booked = desk.book(customer=customer, ticket=ticket)
    desk.sweep_at(S - 24 * H)
    before = desk.mark(booked.id)

    # When nobody calls in
    desk.sweep_at(S + 10 * M)

    # Then it is a no-show either way; only the desk's mail depends on the setting, and history says who told
    assert desk.get(booked.id).status is Status.NO_SHOW
    assert desk.new_mails(booked.id, before) == ([(MailKind.NO_SHOW, CUSTOMER)] if mailed else [])
    [entry] = desk.new_history(booked.id, before)
    assert (entry.action, entry.detail["mail"]) == (Action.NO_SHOW, told)


@pytest.mark.parametrize(
    ("mail_by", "ticketed", "told"),
    [(NoShowMailBy.DESK, True, "none"), (NoShowMailBy.PSA, True, "psa"), (NoShowMailBy.PSA, False, "none")],
)
def test_a_dispatchers_no_show_is_never_mailed_by_the_desk_and_says_who_tells_the_customer(
    mail_by: NoShowMailBy, ticketed: bool, told: str
) -> None:
    desk = a_desk(no_show_mail_by=mail_by)
    booked = desk.book(ticket=a_draft().ticket if ticketed else None)
    desk.clock.set(S + 5 * M)
    before = desk.mark(booked.id)

    desk.act(booked.id, NoShow(note="did not pick up"))

    assert desk.get(booked.id).status is Status.NO_SHOW
    assert desk.new_mails(booked.id, before) == []
    [entry] = desk.new_history(booked.id, before)
    assert (entry.action, entry.detail["mail"], entry.detail["note"]) == (Action.NO_SHOW, told, "did not pick up")


def test_an_unassigned_start_alerts_ops_and_never_makes_a_no_show() -> None:
    # Given an unassigned call-in appointment kept by a hold, its notices sent
    desk = a_desk()
    booked = desk.book(technicians=())
    desk.act(booked.id, SetHold(on=True, reason="customer insists"))
    desk.sweep_at(S - 24 * H)
    desk.sweep_at(S - 3 * H)
    before = desk.mark(booked.id)

    # When the start comes and goes
    desk.sweep_at(S)
    desk.sweep_at(S + 10 * M)
    desk.sweep_at(S + 2 * H)

    # Then ops got one alert; the customer nothing; it is still scheduled
    assert desk.new_mails(booked.id, before) == [(MailKind.OPS_ALERT, OPS_ALERT)]
    assert desk.new_actions(booked.id, before) == ["unassigned_at_start"]
    [alert] = (m for k, m in desk.store.mails[booked.id].items() if k not in before.mails)
    assert alert.context["rule"] == "unassigned_at_start"
    after = desk.get(booked.id)
    assert (after.status, after.next_due_at) == (Status.SCHEDULED, None)


def test_the_customer_has_no_mail_address_the_rules_still_act() -> None:
    desk = a_desk()
    booked = desk.book(customer=DANA.model_copy(update={"email": None}))
    desk.sweep_at(S - 24 * H)
    desk.sweep_at(S + 10 * M)
    assert desk.get(booked.id).status is Status.NO_SHOW
    assert dict(desk.store.mails[booked.id]) == {}
    assert [str(e.action) for e in desk.store.history[booked.id]] == ["create", "reminder", "no_show"]


# --- late and catch-up runs


def test_a_catch_up_before_the_start_still_sends_the_reminder_late_and_reports_how_late() -> None:
    desk = a_desk()
    booked = desk.book()
    before = desk.mark(booked.id)

    report = desk.sweep_at(S - 2 * H)

    assert desk.new_mails(booked.id, before) == [(MailKind.REMINDER, CUSTOMER)]
    assert report.summary()["max_lateness_seconds"] == 22 * 3600


def test_a_catch_up_after_the_start_skips_and_records_the_reminder_then_marks_the_no_show_on_time() -> None:
    # Given an assigned call-in appointment that no sweep saw before its start
    desk = a_desk()
    booked = desk.book()
    before = desk.mark(booked.id)

    # When a sweep runs 5 minutes after the start, and then at the no-show time
    skipped = desk.sweep_at(S + 5 * M)
    marked = desk.sweep_at(S + 10 * M)

    # Then the reminder is skipped and recorded with its reason, no mail; the no-show still applies
    [skip, no_show] = desk.new_history(booked.id, before)
    assert (skip.action, skip.actor, skip.detail) == (
        Record.NOTICE_SKIPPED,
        Actor.system(),
        {"rule": "reminder", "due_at": (S - 24 * H).isoformat(), "reason": "the start has passed"},
    )
    assert no_show.action is Action.NO_SHOW
    assert desk.new_mails(booked.id, before) == [(MailKind.NO_SHOW, CUSTOMER)]
    assert rules_of(skipped) == [("reminder", False)]
    assert skipped.summary()["skipped"] == {"reminder": 1}
    assert rules_of(marked) == [("no_show", True)]


def test_a_catch_up_23_hours_after_the_start_still_marks_the_no_show() -> None:
    desk = a_desk()
    booked = desk.book()
    before = desk.mark(booked.id)

    desk.sweep_at(S + 23 * H)

    assert desk.new_actions(booked.id, before) == ["notice_skipped", "no_show"]
    assert desk.new_mails(booked.id, before) == [(MailKind.NO_SHOW, CUSTOMER)]
    assert desk.get(booked.id).status is Status.NO_SHOW


def test_a_catch_up_past_the_no_show_limit_skips_and_records_it() -> None:
    desk = a_desk()
    booked = desk.book()
    desk.sweep_at(S - 24 * H)
    before = desk.mark(booked.id)

    desk.sweep_at(S + 25 * H)

    [skip] = desk.new_history(booked.id, before)
    assert (skip.action, skip.detail["rule"], skip.detail["reason"]) == (
        Record.NOTICE_SKIPPED,
        "no_show",
        "more than 24 h after the start",
    )
    after = desk.get(booked.id)
    assert (after.status, after.next_due_at) == (Status.SCHEDULED, None)
    assert desk.new_mails(booked.id, before) == []


def test_a_catch_up_past_the_auto_cancel_point_skips_the_pre_notice_and_cancels() -> None:
    desk = a_desk()
    booked = desk.book(technicians=())
    desk.sweep_at(S - 24 * H)
    before = desk.mark(booked.id)

    desk.sweep_at(S - 30 * M)

    assert desk.new_actions(booked.id, before) == ["notice_skipped", "auto_cancel"]
    assert desk.new_history(booked.id, before)[0].detail["rule"] == "pre_notice"
    assert desk.new_mails(booked.id, before) == [(MailKind.CANCELLED, CUSTOMER), (MailKind.OPS_ALERT, OPS_ALERT)]


def test_a_catch_up_that_cancels_sends_no_reminder_with_the_cancellation() -> None:
    # Given an unassigned appointment booked days ahead that no sweep saw until inside its cancel window
    desk = a_desk()
    booked = desk.book(technicians=())
    before = desk.mark(booked.id)

    # When the late sweep runs
    desk.sweep_at(S - 30 * M)

    # Then the customer is told it is cancelled, and not reminded of it in the same breath
    assert MailKind.CANCELLED in [kind for kind, _ in desk.new_mails(booked.id, before)]
    assert MailKind.REMINDER not in [kind for kind, _ in desk.new_mails(booked.id, before)]


def test_a_catch_up_after_an_unassigned_start_skips_every_customer_notice_and_alerts_ops() -> None:
    desk = a_desk()
    booked = desk.book(technicians=())
    before = desk.mark(booked.id)

    desk.sweep_at(S + 5 * M)

    history = desk.new_history(booked.id, before)
    assert [(str(e.action), e.detail.get("rule")) for e in history] == [
        ("notice_skipped", "reminder"),
        ("notice_skipped", "pre_notice"),
        ("notice_skipped", "auto_cancel"),
        ("unassigned_at_start", None),
    ]
    assert desk.new_mails(booked.id, before) == [(MailKind.OPS_ALERT, OPS_ALERT)]
    assert desk.get(booked.id).status is Status.SCHEDULED


# --- booked or unassigned inside a window


def test_a_booking_made_unassigned_after_its_pre_notice_time_gets_it_at_the_next_sweep() -> None:
    # Given a booking made unassigned 2 hours before its start (after the pre-notice time, before the cancel point)
    desk = a_desk()
    booked = desk.book(NOW + 2 * H, technicians=())
    before = desk.mark(booked.id)

    # When the next sweep runs
    desk.sweep_at(NOW + M)

    # Then the pre-notice goes at once; the reminder (passed at booking) is skipped; the cancel is next
    assert desk.new_actions(booked.id, before) == ["notice_skipped", "pre_notice"]
    assert desk.new_mails(booked.id, before) == [(MailKind.PRE_NOTICE, CUSTOMER)]
    assert desk.get(booked.id).next_due_at == NOW + H
    desk.sweep_at(NOW + H)
    assert desk.get(booked.id).status is Status.CANCELLED


def test_a_booking_made_unassigned_inside_the_cancel_window_gets_the_pre_notice_and_an_at_risk_alert() -> None:
    # Given a booking made unassigned 30 minutes before its start
    desk = a_desk()
    start = NOW + 30 * M
    booked = desk.book(start, technicians=())
    assert booked.next_due_at is not None and booked.next_due_at <= NOW  # due at once
    before = desk.mark(booked.id)

    # When the next sweep runs, and again at the start
    desk.sweep_at(NOW + M)
    in_window = desk.mark(booked.id)
    desk.sweep_at(start)

    # Then the customer hears a technician is being assigned, ops that it is at risk; nothing cancels it
    assert desk.new_actions(booked.id, before)[:3] == ["notice_skipped", "pre_notice", "at_risk"]
    assert desk.new_mails(booked.id, before)[:2] == [(MailKind.PRE_NOTICE, CUSTOMER), (MailKind.OPS_ALERT, OPS_ALERT)]
    [at_risk] = (e for e in desk.new_history(booked.id, before) if e.action is Record.AT_RISK)
    assert at_risk.detail["due_at"] == NOW.isoformat()
    alerts = [m for m in desk.store.mails[booked.id].values() if m.kind is MailKind.OPS_ALERT]
    assert [m.context["rule"] for m in alerts] == ["at_risk", "unassigned_at_start"]
    assert desk.new_actions(booked.id, in_window) == ["unassigned_at_start"]
    assert desk.get(booked.id).status is Status.SCHEDULED
    assert not any(e.action is Action.AUTO_CANCEL for e in desk.store.history[booked.id])


def test_a_technician_taken_off_inside_the_cancel_window_makes_it_at_risk_not_cancelled() -> None:
    desk = a_desk()
    booked = desk.book()
    desk.sweep_at(S - 24 * H)
    desk.clock.set(S - 30 * M)
    desk.act(booked.id, Reassign(technicians=()))
    before = desk.mark(booked.id)

    desk.sweep_at(S - 29 * M)
    desk.sweep_at(S - M)

    assert desk.new_actions(booked.id, before) == ["pre_notice", "at_risk"]
    assert desk.get(booked.id).status is Status.SCHEDULED


def test_an_unassigned_appointment_rescheduled_into_its_cancel_window_is_at_risk_not_cancelled() -> None:
    # Given an unassigned appointment booked days ahead
    desk = a_desk()
    booked = desk.book(technicians=())

    # When, a day later, the dispatcher moves it to 30 minutes from then (the customer can take a call)
    desk.clock.set(NOW + 24 * H)
    desk.act(booked.id, Reschedule(start=NOW + 24 * H + 30 * M))
    desk.sweep_at(NOW + 24 * H + M)

    # Then it stays scheduled and ops are alerted that it is at risk
    after = desk.get(booked.id)
    assert after.status is Status.SCHEDULED
    assert any(e.action is Record.AT_RISK for e in desk.store.history[booked.id])


# --- a reschedule re-arms every rule for the new time


def test_a_reschedule_re_arms_every_rule_and_resends_each_notice_for_the_new_start() -> None:
    # Given an unassigned appointment reminded and pre-noticed for its first start
    desk = a_desk()
    booked = desk.book(technicians=())
    desk.sweep_at(S - 24 * H)
    desk.sweep_at(S - 3 * H)
    assert desk.notice_keys(booked.id) == [reminder_key(24 * H, S), pre_notice_key(S)]

    # When, two hours before that start, it moves a day later
    new = S + 24 * H
    desk.clock.set(S - 2 * H)
    moved = desk.act(booked.id, Reschedule(start=new))

    # Then every rule is due again for the new start: nothing at the old cancel point, each notice again
    assert moved.next_due_at == new - 24 * H
    desk.sweep_at(S - H)
    assert desk.get(booked.id).status is Status.SCHEDULED
    for at in (new - 24 * H, new - 3 * H, new - H):
        desk.sweep_at(at)
    assert desk.notice_keys(booked.id) == [
        reminder_key(24 * H, S),
        pre_notice_key(S),
        reminder_key(24 * H, new),
        pre_notice_key(new),
    ]
    after = desk.get(booked.id)
    assert after.status is Status.CANCELLED
    assert [e.detail["due_at"] for e in desk.store.history[booked.id] if e.action is Action.AUTO_CANCEL] == [
        (new - H).isoformat()
    ]


def test_a_reschedule_re_arms_the_no_show_and_clears_the_check_in() -> None:
    desk = a_desk()
    booked = desk.book()
    desk.clock.set(S - M)
    desk.act(booked.id, CheckIn())
    assert desk.get(booked.id).next_due_at == S - 24 * H  # only the reminder is left (checked in)
    new = S + 3 * H
    desk.act(booked.id, Reschedule(start=new))

    desk.sweep_at(new + 10 * M)

    after = desk.get(booked.id)
    assert after.status is Status.NO_SHOW
    assert [str(e.action) for e in desk.store.history[booked.id]][-2:] == ["notice_skipped", "no_show"]


# --- assign and unassign move the next check; hold on and off


def test_assigning_and_unassigning_moves_the_next_check() -> None:
    # Given an unassigned call-in appointment, its reminder sent
    desk = a_desk()
    booked = desk.book(technicians=())
    desk.sweep_at(S - 24 * H)
    assert desk.get(booked.id).next_due_at == S - 3 * H

    # When a technician is assigned, then taken off, then another assigned
    desk.clock.set(S - 5 * H)
    assigned = desk.act(booked.id, Reassign(technicians=(SAM,)))
    unassigned = desk.act(booked.id, Reassign(technicians=()))
    reassigned = desk.act(booked.id, Reassign(technicians=(ALEX,)))

    # Then the next check follows: the no-show for an assigned one, the pre-notice for an unassigned one
    assert assigned.next_due_at == S + 10 * M
    assert unassigned.next_due_at == S - 3 * H
    assert reassigned.next_due_at == S + 10 * M

    # And the cancel point passes with nothing done
    before = desk.mark(booked.id)
    report = desk.sweep_at(S - H)
    assert report.due == 0
    assert desk.new_actions(booked.id, before) == []


def test_assigning_inside_the_cancel_window_disarms_the_alerts() -> None:
    desk = a_desk()
    booked = desk.book(NOW + 30 * M, technicians=())
    desk.act(booked.id, Reassign(technicians=(SAM,)))
    before = desk.mark(booked.id)
    desk.sweep_at(NOW + 30 * M)
    assert desk.new_actions(booked.id, before) == ["notice_skipped"]
    assert desk.new_mails(booked.id, before) == []


def test_a_hold_keeps_an_unassigned_appointment_past_its_cancel_point() -> None:
    desk = a_desk()
    booked = desk.book(technicians=())
    desk.sweep_at(S - 24 * H)
    desk.sweep_at(S - 3 * H)
    held = desk.act(booked.id, SetHold(on=True, reason="VIP"))
    assert held.next_due_at == S

    desk.sweep_at(S - H)
    desk.sweep_at(S - M)

    assert desk.get(booked.id).status is Status.SCHEDULED


def test_releasing_the_hold_before_the_cancel_point_re_arms_the_auto_cancel() -> None:
    desk = a_desk()
    booked = desk.book(technicians=())
    desk.act(booked.id, SetHold(on=True))
    desk.sweep_at(S - 24 * H)
    desk.clock.set(S - 2 * H)
    released = desk.act(booked.id, SetHold(on=False))
    assert released.next_due_at == S - 3 * H  # the pre-notice is due (at once)

    desk.sweep_at(S - 2 * H + M)
    desk.sweep_at(S - H)

    assert desk.get(booked.id).status is Status.CANCELLED


# --- reopen never fires rules for the past


def test_a_reopened_no_show_gets_no_rule_for_the_past() -> None:
    # Given a no-show marked by the rules
    desk = a_desk()
    booked = desk.book()
    desk.sweep_at(S - 24 * H)
    desk.sweep_at(S + 10 * M)

    # When a dispatcher reopens it half an hour after the start
    desk.clock.set(S + 30 * M)
    reopened = desk.act(booked.id, Reopen())
    before = desk.mark(booked.id)

    # Then nothing is due and no sweep touches it
    assert (reopened.status, reopened.next_due_at, reopened.rules_from) == (Status.SCHEDULED, None, S + 30 * M)
    for at in (S + 31 * M, S + 2 * H, S + 25 * H):
        desk.sweep_at(at)
    assert desk.new_actions(booked.id, before) == []
    assert desk.new_mails(booked.id, before) == []


def test_a_reopened_appointment_never_reminded_gets_no_late_reminder() -> None:
    # Given an appointment completed early (before its reminder) and reopened after the reminder time
    desk = a_desk()
    booked = desk.book()
    desk.act(booked.id, Complete(duration_minutes=10, outcome="fixed over the phone"))
    desk.clock.set(S - 5 * H)
    reopened = desk.act(booked.id, Reopen())

    # Then the reminder (due before the reopen) never goes; the no-show (due after) still applies
    assert reopened.next_due_at == S + 10 * M
    before = desk.mark(booked.id)
    desk.sweep_at(S - 4 * H)
    desk.sweep_at(S + 10 * M)
    assert desk.new_actions(booked.id, before) == ["no_show"]
    assert desk.new_mails(booked.id, before) == [(MailKind.NO_SHOW, CUSTOMER)]


def test_a_reopened_appointment_rescheduled_is_ruled_again_for_its_new_start() -> None:
    desk = a_desk()
    booked = desk.book()
    desk.sweep_at(S + 10 * M)
    desk.clock.set(S + H)
    desk.act(booked.id, Reopen())
    new = S + 3 * 24 * H
    desk.act(booked.id, Reschedule(start=new))
    before = desk.mark(booked.id)

    desk.sweep_at(new - 24 * H)
    desk.sweep_at(new + 10 * M)

    assert desk.new_actions(booked.id, before) == ["reminder", "no_show"]


# --- across a change of daylight saving time


def test_the_reminder_across_the_end_of_dst_is_24_real_hours_before_and_goes_once() -> None:
    # Given an appointment at 09:00 New York time on 2 Nov 2026, the day after DST ends, booked a week ahead
    new_york = ZoneInfo("America/New_York")
    booked_at = datetime(2026, 10, 26, 12, 0, tzinfo=UTC)
    start = datetime(2026, 11, 2, 9, 0, tzinfo=new_york)
    desk = a_desk(now=booked_at)
    booked = desk.book(start, timezone="America/New_York")
    assert booked.next_due_at == datetime(2026, 11, 1, 14, 0, tzinfo=UTC)

    # When the sweep runs every 20 minutes through the change of clocks, until the start
    sweeps = []
    at = datetime(2026, 10, 31, 12, 0, tzinfo=UTC)
    while at < start:
        sweeps.append((at, desk.sweep_at(at)))
        at += 20 * M

    # Then exactly one reminder went, by the first sweep at or after 1 Nov 14:00 UTC (09:00 EST)
    fired = [(when, rules_of(report)) for when, report in sweeps if report.effects]
    assert fired == [(datetime(2026, 11, 1, 14, 0, tzinfo=UTC), [("reminder", True)])]
    assert desk.notice_keys(booked.id) == [reminder_key(24 * H, start.astimezone(UTC))]


# --- runs that meet each other, dispatchers and the clock


def test_a_second_sweep_at_the_same_time_finds_nothing_to_do() -> None:
    desk = a_desk()
    ids = [desk.book(technicians=()).id, desk.book().id, desk.book(NOW + 30 * M, technicians=()).id]
    first = desk.sweep_at(S - 24 * H)
    commits = desk.store.commits

    second = desk.sweeper.sweep()

    assert first.effects and first.due == 3
    assert (second.due, second.effects, second.failed) == (0, [], 0)
    assert desk.store.commits == commits
    assert all((desk.get(i).next_due_at or S) > S - 24 * H for i in ids)


def test_two_sweeps_at_once_apply_each_rule_once() -> None:
    # Given two runs of the sweeper on one store, the second running in full between the first's read and write
    store = RacingStore()
    desk = a_desk(store=store)
    other = Sweeper(
        store, desk.clock, CATALOG, SweepPolicy(coupons=CouponPolicy(new_code=Codes()), ops_alert_email=OPS_MAIL)
    )
    booked = desk.book(technicians=())
    desk.sweep_at(S - 24 * H)
    before = desk.mark(booked.id)
    reports: list[SweepReport] = []
    store.race = lambda: reports.append(other.sweep())

    # When both run at the auto-cancel point
    mine = desk.sweep_at(S - 30 * M)

    # Then the other's cancel stands, mine re-read and found nothing; one cancel, one coupon, one set of mails
    [theirs] = reports
    assert sorted(rules_of(theirs)) == [("auto_cancel", True), ("pre_notice", False)]
    assert (mine.effects, mine.failed) == ([], 0)
    assert desk.new_actions(booked.id, before) == ["notice_skipped", "auto_cancel"]
    assert desk.new_mails(booked.id, before) == [(MailKind.CANCELLED, CUSTOMER), (MailKind.OPS_ALERT, OPS_ALERT)]
    assert len(store.coupons) == 1


def test_a_run_whose_index_page_another_run_settled_re_reads_and_writes_nothing() -> None:
    # Given a run that read the due index, then another run settled all of it before this one re-read
    store = StaleIndexStore(due_shards=1)
    desk = a_desk(store=store)
    ids = [desk.book().id for _ in range(5)]
    other = Sweeper(store, desk.clock, CATALOG, SweepPolicy(coupons=CouponPolicy(), ops_alert_email=OPS_MAIL, shards=1))
    reports: list[SweepReport] = []
    store.after_due = lambda: reports.append(other.sweep())

    # When the first run goes on with the page it read
    mine = desk.sweep_at(S - 24 * H)

    # Then each reminder went once, by the other run; this one re-read each and wrote nothing
    [theirs] = reports
    assert (mine.due, mine.effects, mine.failed) == (5, [], 0)
    assert len(theirs.effects) == 5
    assert all(len(desk.notice_keys(i)) == 1 for i in ids)
    assert store.commits == 5 + 5  # the bookings, the other run's reminders


def test_an_assignment_racing_the_auto_cancel_wins_and_the_appointment_is_never_cancelled_with_a_technician() -> None:
    # Given an unassigned appointment at its cancel point
    store = RacingStore()
    desk = a_desk(store=store)
    booked = desk.book(technicians=())
    desk.sweep_at(S - 24 * H)
    desk.sweep_at(S - 3 * H)

    # When a dispatcher assigns a technician between the sweeper's read and its write
    store.race = lambda: desk.act(booked.id, Reassign(technicians=(SAM,)))
    report = desk.sweep_at(S - H)

    # Then the sweeper re-read and decided again: assigned, scheduled, no cancel mail, the no-show armed
    after = desk.get(booked.id)
    assert (after.status, after.technicians[0].id, after.cancellation) == (Status.SCHEDULED, SAM.id, None)
    assert (report.effects, report.failed) == ([], 0)
    assert after.next_due_at == S + 10 * M
    assert not any(m.kind is MailKind.CANCELLED for m in store.mails[booked.id].values())
    assert store.coupons == {}


def test_an_assignment_after_the_auto_cancel_is_refused_so_it_never_ends_cancelled_with_a_technician() -> None:
    desk = a_desk()
    booked = desk.book(technicians=())
    desk.sweep_at(S - H)
    with pytest.raises(InvalidTransition):
        desk.act(booked.id, Reassign(technicians=(SAM,)))
    assert desk.get(booked.id).technicians == ()


def test_a_reschedule_racing_the_no_show_never_marks_the_new_time_missed() -> None:
    # Given an assigned call-in appointment at its no-show time
    store = RacingStore()
    desk = a_desk(store=store)
    booked = desk.book()
    desk.sweep_at(S - 24 * H)
    new = S + 24 * H

    # When a dispatcher moves it to tomorrow between the sweeper's read and its write
    store.race = lambda: desk.act(booked.id, Reschedule(start=new))
    report = desk.sweep_at(S + 10 * M)

    # Then it is scheduled for the new time, nobody is told they missed it, the new time's rules armed
    after = desk.get(booked.id)
    assert (after.status, after.start, after.no_show_at) == (Status.SCHEDULED, new, None)
    # (the new start's reminder time had passed when it was moved: skipped, the reschedule mail covers it)
    assert rules_of(report) == [("reminder", False)]
    assert not any(m.kind is MailKind.NO_SHOW for m in store.mails[booked.id].values())
    assert after.next_due_at == new + 10 * M


def test_a_check_in_racing_the_no_show_keeps_the_customers_check_in() -> None:
    store = RacingStore()
    desk = a_desk(store=store)
    booked = desk.book()
    desk.sweep_at(S - 24 * H)

    store.race = lambda: desk.act(booked.id, CheckIn())
    desk.sweep_at(S + 10 * M)

    after = desk.get(booked.id)
    assert (after.status, after.checked_in_at, after.next_due_at) == (Status.SCHEDULED, S + 10 * M, None)
    assert not any(m.kind is MailKind.NO_SHOW for m in store.mails[booked.id].values())


def test_a_vendor_check_in_racing_the_no_show_keeps_the_customers_check_in() -> None:
    # Given an appointment booked under a vendor's id, at its no-show time
    store = RacingStore()
    desk = a_desk(store=store)
    booked = desk.book(external_refs=a_draft().external_refs)
    desk.sweep_at(S - 24 * H)
    processor = EventProcessor(store, desk.clock, CATALOG, SourcePolicy(ops_alert_email=OPS_MAIL))

    # When the vendor's check-in lands between the sweeper's read and its write
    store.race = lambda: processor.apply(_checked_in(S + 9 * M))
    desk.sweep_at(S + 10 * M)

    # Then the customer stays checked in, not a no-show
    after = desk.get(booked.id)
    assert (after.status, after.checked_in_at) == (Status.SCHEDULED, S + 9 * M)


def test_a_check_in_delivered_after_the_no_show_it_preceded_is_not_left_a_silent_no_show() -> None:
    desk = a_desk()
    booked = desk.book(external_refs=a_draft().external_refs)
    desk.sweep_at(S - 24 * H)
    desk.sweep_at(S + 10 * M)
    processor = EventProcessor(desk.store, desk.clock, CATALOG, SourcePolicy(ops_alert_email=OPS_MAIL))

    desk.clock.set(S + 11 * M)
    processor.apply(_checked_in(S + 9 * M))

    after = desk.get(booked.id)
    assert after.checked_in_at == S + 9 * M
    assert after.status is Status.SCHEDULED  # the call stands: scheduled again, checked in
    [alert] = [m for m in desk.store.mails[booked.id].values() if m.kind is MailKind.OPS_ALERT]
    assert alert.context["checked_in_at"] == (S + 9 * M).isoformat()


def _checked_in(at: datetime) -> CanonicalEvent:
    """The generic source's check-in sample, as if the customer called in at ``at``."""
    document = json.loads(sample("generic/appointment_checked_in.json"))
    document["occurred_at"] = at.isoformat()
    [event] = GenericSource().parse(WebhookRequest(headers={}, body=json.dumps(document).encode()))
    return event


def test_a_conflict_on_every_attempt_leaves_the_appointment_due_for_the_next_run() -> None:
    store = ConflictingStore()
    desk = a_desk(store=store)
    booked = desk.book()
    store.conflicts = 3

    report = desk.sweep_at(S - 24 * H)

    assert (report.failed, report.effects) == (1, [])
    assert desk.get(booked.id).next_due_at == S - 24 * H
    retry = desk.sweeper.sweep()
    assert rules_of(retry) == [("reminder", True)]


def test_stopping_early_when_time_runs_low_leaves_the_rest_due_for_the_next_run() -> None:
    # Given five appointments whose reminder is due, and a run with time for two of them
    desk = a_desk(shards=1)
    ids = [desk.book().id for _ in range(5)]
    desk.clock.set(S - 24 * H)
    start_commits = desk.store.commits

    def seconds_left() -> float:
        return 60.0 if desk.store.commits - start_commits < 2 else 5.0

    # When it runs
    report = desk.sweeper.sweep(seconds_left=seconds_left)

    # Then it stopped after two, said so, and the other three are still due; the next run takes them
    assert report.stopped_early
    assert len(report.effects) == 2
    still_due = [i for i in ids if desk.get(i).next_due_at == S - 24 * H]
    assert len(still_due) == 3
    rest = desk.sweeper.sweep()
    assert (len(rest.effects), rest.stopped_early) == (3, False)
    assert all(len(desk.notice_keys(i)) == 1 for i in ids)


def test_a_run_with_no_time_left_takes_no_work() -> None:
    desk = a_desk()
    desk.book()
    report = desk.sweep_at(S - 24 * H, seconds_left=lambda: 1.0)
    assert (report.stopped_early, report.due, report.effects) == (True, 0, [])


def test_the_sweep_reads_only_what_the_due_index_says_is_due() -> None:
    # Given 200 appointments with nothing due and 3 due for their reminder
    store = CountingStore()
    desk = a_desk(store=store)
    for offset in range(200):
        desk.book(S + (offset + 1) * H)
    due = {desk.book().id for _ in range(3)}
    store.gets.clear()

    # When a sweep runs
    report = desk.sweep_at(S - 24 * H)

    # Then it re-read only the 3 due ones, once each, with one index query per shard
    assert sorted(store.gets) == sorted(due)
    assert store.due_queries == 4
    assert report.due == 3


def test_a_run_settles_more_than_one_page_of_a_shard() -> None:
    # Given more due appointments in one shard than a page holds, on a store paging as DynamoDB does
    store = KeyCursorStore(due_shards=1)
    desk = a_desk(store=store)
    ids = [desk.book().id for _ in range(PAGE_SIZE + 30)]

    report = desk.sweep_at(S - 24 * H)

    assert report.due == PAGE_SIZE + 30
    assert all(len(desk.notice_keys(i)) == 1 for i in ids)


def test_the_shared_fake_pages_the_due_index_as_dynamodb_does() -> None:
    store = InMemoryAppointmentStore(due_shards=1)
    desk = a_desk(store=store)
    ids = [desk.book().id for _ in range(PAGE_SIZE + 30)]

    desk.sweep_at(S - 24 * H)

    assert all(len(desk.notice_keys(i)) == 1 for i in ids)


def test_an_appointment_gone_since_the_index_was_read_is_passed_over() -> None:
    # Given an appointment merged into another (removed) after the run read the index
    store = StaleIndexStore()
    desk = a_desk(store=store)
    gone, kept = desk.book(), desk.book()
    store.after_due = lambda: store.appointments.pop(gone.id)

    # When the run goes on
    report = desk.sweep_at(S - 24 * H)

    # Then it is passed over without a failure, and the rest is swept
    assert report.failed == 0
    assert [e.appointment_id for e in report.effects] == [kept.id]


def test_a_run_requested_by_ops_is_named_in_each_entry() -> None:
    desk = a_desk()
    booked = desk.book()
    desk.clock.set(S - 24 * H)
    desk.sweeper.sweep(requested_by=OPS.id)
    assert desk.store.history[booked.id][-1].detail["requested_by"] == OPS.id


def test_a_stale_index_entry_only_moves_the_next_check() -> None:
    # Given an appointment whose next check says "now" though nothing is due (the index a step behind)
    desk = a_desk()
    booked = desk.book()
    desk.store.appointments[booked.id] = booked.model_copy(update={"next_due_at": NOW})

    report = desk.sweep_at(NOW + M)

    after = desk.get(booked.id)
    assert report.effects == []
    assert after.next_due_at == S - 24 * H
    assert len(desk.store.history[booked.id]) == 1  # no history for a change of bookkeeping


# --- a mail key is never written twice


def test_several_reminder_offsets_each_send_their_own_mail() -> None:
    # Given reminders 24 h and 2 h ahead
    desk = a_desk(timings=RuleTimings(reminder_offsets=(24 * H, 2 * H)))
    booked = desk.book()

    # When both come due, and then the no-show time
    first = desk.sweep_at(S - 24 * H)
    second = desk.sweep_at(S - 2 * H)
    last = desk.sweep_at(S + 10 * M)

    # Then two reminder mails went, each under its own key, and the no-show applied
    assert (first.failed, second.failed, last.failed) == (0, 0, 0)
    assert desk.notice_keys(booked.id) == [reminder_key(24 * H, S), reminder_key(2 * H, S)]
    assert desk.get(booked.id).status is Status.NO_SHOW


def test_no_mail_key_is_written_twice_over_a_life_of_reschedules() -> None:
    # Given a store that refuses a mail key already written (AlreadyExists), and an appointment moved about
    desk = a_desk()
    booked = desk.book(technicians=())
    starts = [S, S + 24 * H, S, S + 48 * H]  # back to the first start once
    failed = 0
    for previous, start in itertools.pairwise(starts):
        for at in (previous - 24 * H, previous - 3 * H):
            failed += desk.sweep_at(at).failed
        desk.clock.set(min(previous, start) - 2 * H)  # ops move an appointment only to a start still ahead
        if start != desk.get(booked.id).start:
            desk.act(booked.id, Reschedule(start=start))
    for at in (S + 24 * H, S + 47 * H, S + 48 * H - H):
        failed += desk.sweep_at(at).failed

    # Then every run succeeded and each mail key is unique (the store would have refused a second)
    assert failed == 0
    keys = [m.key for m in desk.store.mails[booked.id].values()]
    assert len(keys) == len(set(keys))


def test_the_mails_of_a_run_carry_the_version_it_commits() -> None:
    desk = a_desk()
    booked = desk.book()
    before = desk.mark(booked.id)
    desk.sweep_at(S + 10 * M)  # skips the reminder, then marks the no-show: two steps, one commit
    after = desk.get(booked.id)
    [no_show] = (m for k, m in desk.store.mails[booked.id].items() if k not in before.mails)
    assert no_show.key.endswith(f"#v{after.version}")
