"""When the timed rules must next look at an appointment (the sweeper's ``due`` index).

Every change sets ``next_due_at`` from here, so the rules only act on what the change recorded:
the earliest time at which a reminder, the pre-notice, the auto-cancel, the unassigned-at-start alert
or the no-show check may apply. A time already past means "look now"; the rules decide then whether
the notice's purpose has passed and record the skip. Nothing is due for an appointment that is not
scheduled, and nothing once each rule has run or can no longer apply.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from appointments.domain.model import Status

if TYPE_CHECKING:
    from datetime import datetime

    from appointments.domain.appointment_types import AppointmentTypeCatalog
    from appointments.domain.lifecycle import Change
    from appointments.domain.model import Appointment


@dataclass(frozen=True)
class RuleTimings:
    reminder_offsets: tuple[timedelta, ...] = field(default=(timedelta(hours=24),))
    pre_notice: timedelta = timedelta(hours=3)
    auto_cancel: timedelta = timedelta(hours=1)
    no_show_limit: timedelta = timedelta(hours=24)


def reminder_key(offset: timedelta, start: datetime) -> str:
    return f"reminder:{int(offset.total_seconds() // 60)}m#{start.isoformat()}"


def pre_notice_key(start: datetime) -> str:
    return f"pre_notice#{start.isoformat()}"


def unassigned_at_start_key(start: datetime) -> str:
    return f"unassigned_at_start#{start.isoformat()}"


def next_check(
    appointment: Appointment, catalog: AppointmentTypeCatalog, timings: RuleTimings, *, now: datetime
) -> datetime | None:
    if appointment.status is not Status.SCHEDULED:
        return None
    start, sent = appointment.start, appointment.notices_sent
    candidates: list[datetime] = []
    if now < start:
        candidates += [start - o for o in timings.reminder_offsets if reminder_key(o, start) not in sent]
        if not appointment.is_assigned:
            if pre_notice_key(start) not in sent:
                candidates.append(start - timings.pre_notice)
            if appointment.hold is None:
                candidates.append(start - timings.auto_cancel)
    if not appointment.is_assigned and unassigned_at_start_key(start) not in sent:
        candidates.append(start)
    appointment_type = catalog.get(appointment.type)
    if (
        appointment.is_assigned
        and appointment_type.no_show_rule_applies
        and appointment.checked_in_at is None
        and now <= start + timings.no_show_limit
    ):
        candidates.append(start + timedelta(minutes=appointment_type.no_show_after_minutes))
    return min(candidates, default=None)


def armed(change: Change, catalog: AppointmentTypeCatalog, timings: RuleTimings, *, now: datetime) -> Change:
    """The change with the appointment's next check set from its state after the change."""
    due = next_check(change.after, catalog, timings, now=now)
    if due == change.after.next_due_at:
        return change
    return dataclasses.replace(change, after=change.after.model_copy(update={"next_due_at": due}))
