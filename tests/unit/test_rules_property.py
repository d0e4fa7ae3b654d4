"""The timed rules under random days at the desk: bookings, dispatchers' actions (some landing between a
sweep's read and its write), clock moves and a sweep after each move.

Whatever happens: no rule acts twice for one start time, nothing assigned or on hold is auto-cancelled,
no-shows only for an assigned call-in appointment not checked in, and each rule acts at the first sweep
at or after its due time (the sweeps' times are tracked here, independently of the sweeper's report).
RULES_EXAMPLES explores further.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from hypothesis import given, settings
from hypothesis import strategies as st

from appointments.domain.history import Action, Record
from appointments.domain.model import ActorKind, CancelledBy, Status
from appointments.domain.outbox import MailKind
from appointments.domain.rules import next_check
from appointments.errors import InvalidInput, InvalidTransition
from appointments.ports import DueKind
from appointments.services.back_office import Cancel, CheckIn, Complete, Reassign, Reopen, Reschedule, SetHold
from tests.factories import ALEX, CATALOG, SAM
from tests.unit.test_sweeper import RacingStore, a_desk

if TYPE_CHECKING:
    from appointments.domain.history import HistoryEntry
    from appointments.services.back_office import Command
    from tests.unit.test_sweeper import Desk

EXAMPLES = int(os.environ.get("RULES_EXAMPLES", "200"))
M = timedelta(minutes=1)
RULE_ENTRIES = frozenset(
    {
        Action.REMINDER,
        Action.PRE_NOTICE,
        Action.AUTO_CANCEL,
        Action.NO_SHOW,
        Record.AT_RISK,
        Record.UNASSIGNED_AT_START,
        Record.NOTICE_SKIPPED,
    }
)
CALL_IN = frozenset(t.key for t in CATALOG if t.no_show_rule_applies)


# --- what happens at the desk


@dataclass(frozen=True)
class Book:
    minutes_ahead: int
    assigned: bool
    type_key: str


@dataclass(frozen=True)
class Act:
    """A dispatcher's action on the ``target``-th booking; ``racing``: it lands inside the next commit of
    an existing appointment (a sweep's, usually), between that writer's read and its write."""

    target: int
    what: str
    minutes: int = 0  # a reschedule's new start, from now
    racing: bool = False


@dataclass(frozen=True)
class Wait:
    minutes: int


Step = Book | Act | Wait

# (reschedule and reopen twice: refused more often, by the status)
ACTIONS = (
    *("assign", "unassign", "reschedule", "reschedule", "hold", "release"),
    *("check_in", "cancel", "complete", "reopen", "reopen"),
)
minutes_ahead = st.one_of(st.integers(1, 90), st.integers(1, 4 * 60), st.integers(4 * 60, 3 * 24 * 60))
bookings = st.builds(Book, minutes_ahead, st.booleans(), st.sampled_from(["remote_call_in", "remote_we_call"]))
actions = st.builds(
    Act,
    st.integers(0, 7),
    st.sampled_from(ACTIONS),
    st.one_of(st.integers(-60, 4 * 60), minutes_ahead),
    st.booleans(),
)
waits = st.builds(
    Wait,
    st.one_of(
        st.integers(1, 15),
        st.integers(1, 59),
        st.integers(1, 8).map(lambda hours: hours * 60),
        st.integers(9 * 60, 30 * 60),
    ),
)
days = st.tuples(
    st.lists(bookings, min_size=1, max_size=6),  # the morning's bookings
    st.lists(st.one_of(bookings, actions, actions, waits, waits), min_size=5, max_size=60),  # then the day
)
FINALLY = [Wait(minutes=60)] * (4 * 24)  # then hourly sweeps, far enough ahead for every rule


def command(act: Act, now: datetime) -> Command:
    match act.what:
        case "assign":
            return Reassign(technicians=(SAM, ALEX)[: 1 + act.minutes % 2])
        case "unassign":
            return Reassign(technicians=())
        case "reschedule":
            return Reschedule(start=now + act.minutes * M)
        case "hold" | "release":
            return SetHold(on=act.what == "hold")
        case "check_in":
            return CheckIn()
        case "cancel":
            return Cancel(reason="customer called")
        case "complete":
            return Complete(duration_minutes=20, outcome="done")
        case "reopen":
            return Reopen()
    raise AssertionError(act.what)


# --- the day, and what it records for the checks


@dataclass
class Day:
    desk: Desk
    store: RacingStore
    ids: list[str] = field(default_factory=list)
    booked_assigned: dict[str, bool] = field(default_factory=dict)
    booked_start: dict[str, datetime] = field(default_factory=dict)
    position: float = 0  # where we are in the day: each step one further
    last_change: dict[str, float] = field(default_factory=dict)  # appointment -> position of its last ops change
    sweeps: list[tuple[float, datetime]] = field(default_factory=list)
    raced: list[str] = field(default_factory=list)  # targets of races that fired during the current step

    def take(self, step: Step) -> None:
        self.position += 1
        match step:
            case Book():
                self.book(step)
            case Act():
                self.act(step)
            case Wait():
                self.wait(step)
        self.settle_races()

    def book(self, step: Book) -> None:
        technicians = (SAM,) if step.assigned else ()
        appointment = self.desk.book(
            self.desk.clock.now() + step.minutes_ahead * M, technicians=technicians, type=step.type_key
        )
        self.ids.append(appointment.id)
        self.booked_assigned[appointment.id] = step.assigned
        self.booked_start[appointment.id] = appointment.start
        self.last_change[appointment.id] = self.position
        check_armed(self.desk, appointment.id)

    def act(self, step: Act) -> None:
        # A dispatcher acts on an appointment the action suits (reopen a closed one, change an open one)
        suits = {Status.COMPLETED, Status.NO_SHOW} if step.what == "reopen" else {Status.SCHEDULED}
        candidates = [i for i in self.ids if self.store.get(i).status in suits] or self.ids
        if not candidates:
            return
        target = candidates[step.target % len(candidates)]

        def attempt() -> None:
            try:
                self.desk.act(target, command(step, self.desk.clock.now()))
            except (InvalidTransition, InvalidInput):
                return  # refused (the status does not allow it): nothing changed
            self.raced.append(target)

        if step.racing:
            self.store.race = attempt
        else:
            attempt()
            check_armed(self.desk, target)

    def wait(self, step: Wait) -> None:
        self.desk.clock.advance(step.minutes * M)
        at = self.desk.clock.now()
        marks = {i: len(self.store.history[i]) for i in self.ids}
        before, commits = dict(self.store.appointments), self.store.commits
        report = self.desk.sweeper.sweep()
        assert report.failed == 0, report
        if not self.raced:  # each appointment's effects in one transaction
            changed = sum(1 for i in self.ids if self.store.appointments[i] != before[i])
            assert self.store.commits - commits == changed
        self.sweeps.append((self.position, at))
        raced_here = set(self.raced)
        for appointment_id in self.ids:
            produced = self.store.history[appointment_id][marks[appointment_id] :]
            by_rules = [e for e in produced if e.actor.kind is ActorKind.SYSTEM]
            assert all(e.at == at for e in by_rules)
            if appointment_id not in raced_here:
                assert len(by_rules) == len(produced), produced  # only the sweep wrote
                self.check_timely(appointment_id, by_rules, at)
                self.check_nothing_left_due(appointment_id, at)

    def check_timely(self, appointment_id: str, entries: list[HistoryEntry], at: datetime) -> None:
        """Each rule entry of this sweep was due by now, and no earlier sweep since the appointment last
        changed came at or after its due time (that one should have applied it)."""
        since = self.last_change[appointment_id]
        for entry in entries:
            assert entry.action in RULE_ENTRIES, entry
            due_at = datetime.fromisoformat(entry.detail["due_at"])
            assert due_at <= at, entry
            missed = [t for position, t in self.sweeps[:-1] if position > since and t >= due_at]
            assert not missed, f"{entry.action} due {due_at} was not applied by the sweep at {missed[0]}"

    def check_nothing_left_due(self, appointment_id: str, at: datetime) -> None:
        appointment = self.store.get(appointment_id)
        check_armed(self.desk, appointment_id)
        assert appointment.next_due_at is None or appointment.next_due_at > at, appointment

    def settle_races(self) -> None:
        """A race that fired in this step is a dispatcher's change at this point of the day."""
        for appointment_id in self.raced:
            self.last_change[appointment_id] = self.position + 0.5
        self.raced.clear()


def check_armed(desk: Desk, appointment_id: str) -> None:
    appointment = desk.get(appointment_id)
    assert appointment.next_due_at == next_check(appointment, CATALOG, desk.timings), appointment


# --- what must hold over the whole day, read back from history and the outbox


@dataclass
class Replay:
    """An appointment's facts at each history entry, rebuilt from the entries alone."""

    start: datetime
    assigned: bool
    type_key: str
    held: bool = False
    checked_in: bool = False
    reopened_at: datetime | None = None  # rules due before it never act
    exposed_since: datetime | None = None
    settled: Counter[tuple[str, datetime]] = field(default_factory=Counter)


def replay(day: Day, appointment_id: str) -> None:
    appointment = day.store.get(appointment_id)
    facts = Replay(day.booked_start[appointment_id], day.booked_assigned[appointment_id], appointment.type)
    for entry in day.store.history[appointment_id]:
        check_entry(facts, entry)
        follow(facts, entry)
    assert max(facts.settled.values(), default=0) <= 1, facts.settled
    if appointment.cancellation is not None and appointment.cancellation.by is CancelledBy.SYSTEM:
        assert appointment.status is Status.CANCELLED and not appointment.is_assigned, appointment


def check_entry(facts: Replay, entry: HistoryEntry) -> None:
    at, start = entry.at, facts.start
    match entry.action:
        case Action.AUTO_CANCEL:
            # never with a technician assigned (and not taken off since), never on hold, only before the start
            assert not facts.assigned, entry
            assert not facts.held, entry
            assert start - timedelta(hours=1) <= at < start, entry
            # unassigned since before the cancel point: one unassigned inside the window is at risk instead
            assert facts.exposed_since is not None and facts.exposed_since < start - timedelta(hours=1), entry
        case Action.NO_SHOW if entry.actor.kind is ActorKind.SYSTEM:
            assert facts.assigned and not facts.checked_in and facts.type_key in CALL_IN, entry
            assert start + timedelta(minutes=10) <= at <= start + timedelta(hours=24), entry
        case Action.PRE_NOTICE | Record.AT_RISK:
            assert not facts.assigned and at < start, entry
        case Record.UNASSIGNED_AT_START:
            assert not facts.assigned and at >= start, entry
        case Action.REMINDER:
            assert at < start, entry
    if entry.action in RULE_ENTRIES and entry.actor.kind is ActorKind.SYSTEM:
        due_at = datetime.fromisoformat(entry.detail["due_at"])
        assert facts.reopened_at is None or due_at >= facts.reopened_at, entry
        rule = entry.detail.get("rule", str(entry.action))
        facts.settled[(rule, start)] += 1  # once per start time, applied or skipped


def follow(facts: Replay, entry: HistoryEntry) -> None:
    match entry.action:
        case Action.CREATE:
            facts.exposed_since = None if facts.assigned else entry.at
        case Action.REASSIGN:
            was = facts.assigned
            facts.assigned = bool(entry.detail["to"])
            if facts.assigned:
                facts.exposed_since = None
            elif was:
                facts.exposed_since = entry.at
        case Action.RESCHEDULE | Action.DEFER:
            facts.start = datetime.fromisoformat(entry.detail["to"]["start"])
            facts.checked_in = False
            if not facts.assigned:
                facts.exposed_since = entry.at  # moved while unassigned: under the rule from now on
        case Action.CHECK_IN:
            facts.checked_in = True
        case Action.HOLD:
            released = facts.held and not entry.detail["on"]
            facts.held = bool(entry.detail["on"])
            if released and not facts.assigned:
                facts.exposed_since = entry.at  # released from hold while unassigned
        case Action.REOPEN:
            facts.reopened_at = entry.at


def check_mails(day: Day, appointment_id: str) -> None:
    """No notice, no no-show mail and no ops alert twice for one start time (the store would refuse a
    repeated key; this also catches one written under a second key)."""
    seen: Counter[tuple[str, ...]] = Counter()
    for mail in day.store.mails[appointment_id].values():
        parts = mail.key.split("#")
        match mail.kind:
            case MailKind.REMINDER | MailKind.PRE_NOTICE:
                seen[(mail.kind, mail.key)] += 1
            case MailKind.NO_SHOW:
                seen[(mail.kind, parts[1])] += 1
            case MailKind.OPS_ALERT:
                seen[(mail.kind, parts[1], parts[-1])] += 1
    assert max(seen.values(), default=0) <= 1, seen


@settings(max_examples=EXAMPLES, derandomize=True, deadline=None)
@given(days)
def test_the_rules_act_once_on_time_and_never_cancel_an_assigned_appointment(
    day_steps: tuple[list[Book], list[Step]],
) -> None:
    # Given a desk on in-memory fakes whose store lets a dispatcher's change land inside another's commit
    store = RacingStore()
    day = Day(desk=a_desk(store=store), store=store)
    morning, rest = day_steps

    # When the day goes by: bookings, dispatchers' actions, the clock moving with a sweep after each move,
    # and then hourly sweeps with nobody at the desk
    for step in [*morning, *rest]:
        day.take(step)
    store.race = None  # (a race still armed would land unseen)
    for step in FINALLY:
        day.take(step)

    # Then every appointment's history and mail hold the rules' promises, and nothing is left due
    for appointment_id in day.ids:
        replay(day, appointment_id)
        check_mails(day, appointment_id)
    at = day.desk.clock.now()
    assert all(not store.due(DueKind.APPOINTMENT, shard, at, limit=1000).items for shard in range(4))
