"""The timed rules, decided: which apply now, which are skipped because their purpose has passed, and
when an appointment must be looked at next (the sweeper's sparse ``due`` index).

Pure: the appointment, its type, the timings and the clock's now go in; a ``Verdict`` comes out. The
sweeper applies it; every other change calls ``armed`` so the index always says when to look next.

For a scheduled appointment starting at S, with the defaults:

- reminder, due S-24h (each offset): sent before S to an appointment booked before that time; else skipped.
- pre-notice, due S-3h, no technician: sent before S, unless the auto-cancel applies instead; else skipped.
- auto-cancel, due S-1h, no technician, not on hold: cancelled by the system (a late sweep too, while
  the start is ahead), unless it came under the rule inside the window (``exposed_since``: booked,
  moved, left without a technician or released from hold after S-1h): then the at-risk ops alert.
- unassigned at start, due S, no technician: an ops alert, never a customer no-show.
- no-show, due S + the type's minutes (customer calls in), assigned, not checked in: marked up to S+24h;
  later, or for a start set after that time (a record of the past), skipped.

Each rule acts once per start time (its key holds the start), so a reschedule re-arms them all and a
retry repeats none. A rule whose due time lies before ``rules_from`` (a reopened appointment) never
acts: reopening never fires rules for the past.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from appointments.domain.model import Status

if TYPE_CHECKING:
    from datetime import datetime

    from appointments.domain.appointment_types import AppointmentType, AppointmentTypeCatalog
    from appointments.domain.lifecycle import Change
    from appointments.domain.model import Appointment


@dataclass(frozen=True)
class RuleTimings:
    reminder_offsets: tuple[timedelta, ...] = field(default=(timedelta(hours=24),))
    pre_notice: timedelta = timedelta(hours=3)
    auto_cancel: timedelta = timedelta(hours=1)
    no_show_limit: timedelta = timedelta(hours=24)


class Rule(StrEnum):
    REMINDER = "reminder"
    PRE_NOTICE = "pre_notice"
    AUTO_CANCEL = "auto_cancel"
    AT_RISK = "at_risk"  # unassigned inside the cancel window: too late to cancel, ops alerted
    UNASSIGNED_AT_START = "unassigned_at_start"  # ops alerted; never a customer no-show
    NO_SHOW = "no_show"


@dataclass(frozen=True)
class Due:
    """One rule for one start time: its key (kept in ``notices_sent`` once settled) and when it is due."""

    rule: Rule
    key: str
    at: datetime


@dataclass(frozen=True)
class Skip:
    due: Due
    reason: str


@dataclass(frozen=True)
class Verdict:
    apply: tuple[Due, ...]  # in due order; at most one of them changes the status (auto-cancel, no-show)
    skip: tuple[Skip, ...]

    def __bool__(self) -> bool:
        return bool(self.apply or self.skip)


def reminder_key(offset: timedelta, start: datetime) -> str:
    return f"reminder:{int(offset.total_seconds() // 60)}m#{start.isoformat()}"


def rule_key(rule: Rule, start: datetime) -> str:
    return f"{rule}#{start.isoformat()}"


def pre_notice_key(start: datetime) -> str:
    return rule_key(Rule.PRE_NOTICE, start)


def unassigned_at_start_key(start: datetime) -> str:
    return rule_key(Rule.UNASSIGNED_AT_START, start)


def pending(appointment: Appointment, kind: AppointmentType, timings: RuleTimings) -> tuple[Due, ...]:
    """Every rule not yet settled for the current start, whatever the time: what the index must watch."""
    if appointment.status is not Status.SCHEDULED:
        return ()
    start, settled = appointment.start, appointment.notices_sent
    dues = [Due(Rule.REMINDER, reminder_key(offset, start), start - offset) for offset in timings.reminder_offsets]
    if not appointment.is_assigned:
        dues.append(Due(Rule.PRE_NOTICE, pre_notice_key(start), start - timings.pre_notice))
        if appointment.hold is None:
            dues.append(_cancel_or_at_risk(appointment, timings))
        dues.append(Due(Rule.UNASSIGNED_AT_START, unassigned_at_start_key(start), start))
    elif kind.no_show_rule_applies and appointment.checked_in_at is None:
        no_show_at = start + timedelta(minutes=kind.no_show_after_minutes)
        dues.append(Due(Rule.NO_SHOW, rule_key(Rule.NO_SHOW, start), no_show_at))
    floor = appointment.rules_from
    return tuple(
        sorted(
            (due for due in dues if due.key not in settled and (floor is None or due.at >= floor)),
            key=lambda due: due.at,
        )
    )


def _cancel_or_at_risk(appointment: Appointment, timings: RuleTimings) -> Due:
    """The auto-cancel at its point; for an appointment that became unassigned inside the window (booked
    late, or a technician taken off), too late to cancel: the at-risk alert, due at once."""
    start, since = appointment.start, appointment.exposed_since
    cancel_point = start - timings.auto_cancel
    if since is not None and since >= cancel_point:
        return Due(Rule.AT_RISK, rule_key(Rule.AT_RISK, start), since)
    return Due(Rule.AUTO_CANCEL, rule_key(Rule.AUTO_CANCEL, start), cancel_point)


def decide(appointment: Appointment, kind: AppointmentType, timings: RuleTimings, *, now: datetime) -> Verdict:
    """What the rules do to ``appointment`` at ``now``: every rule due by then is applied or skipped."""
    start, booked_at = appointment.start, appointment.start_set_at
    apply: list[Due] = []
    skip: list[Skip] = []
    dues = pending(appointment, kind, timings)
    cancels = any(due.rule is Rule.AUTO_CANCEL and due.at <= now < start for due in dues)
    for due in dues:
        if due.at > now:
            break
        match due.rule:
            case Rule.REMINDER | Rule.PRE_NOTICE | Rule.AUTO_CANCEL | Rule.AT_RISK if now >= start:
                # Each of these is for before the start; the unassigned-at-start alert covers what is left.
                skip.append(Skip(due, "the start has passed"))
            case Rule.REMINDER if booked_at is not None and booked_at >= due.at:
                skip.append(Skip(due, "booked after the reminder time: the booking's own mail covers it"))
            case Rule.REMINDER | Rule.PRE_NOTICE if cancels:
                skip.append(Skip(due, "past the auto-cancel point: the appointment is cancelled instead"))
            case Rule.NO_SHOW if booked_at is not None and booked_at >= due.at:
                skip.append(Skip(due, "booked or moved after its no-show time: a record, not a missed call"))
            case Rule.NO_SHOW if now > start + timings.no_show_limit:
                skip.append(Skip(due, f"more than {_hours(timings.no_show_limit)} after the start"))
            case _:
                apply.append(due)
                if due.rule in (Rule.AUTO_CANCEL, Rule.NO_SHOW):
                    break  # the status changes: no other rule applies to it
    return Verdict(apply=tuple(apply), skip=tuple(skip))


def next_check(appointment: Appointment, catalog: AppointmentTypeCatalog, timings: RuleTimings) -> datetime | None:
    """When the sweeper must look next: the earliest unsettled rule (a time already past means at once)."""
    return min((due.at for due in pending(appointment, catalog.get(appointment.type), timings)), default=None)


def armed(change: Change, catalog: AppointmentTypeCatalog, timings: RuleTimings) -> Change:
    """The change with the appointment's next check set from its state after the change."""
    due = next_check(change.after, catalog, timings)
    if due == change.after.next_due_at:
        return change
    return dataclasses.replace(change, after=change.after.model_copy(update={"next_due_at": due}))


def _hours(span: timedelta) -> str:
    return f"{span.total_seconds() / 3600:g} h"
