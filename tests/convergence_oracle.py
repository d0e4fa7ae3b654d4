"""The right final state of an appointment, computed from the set of its events alone (docs/convergence.md).

Written apart from the product's merge, as plainly as the rules read, so the tests hold the processor to
the documented rules rather than to itself: whatever order the events arrive in, with whatever
duplicates, the appointment must end as this says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from appointments.domain.events import EventKind
from appointments.domain.model import CancelledBy, Status

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    from appointments.domain.events import CanonicalEvent
    from appointments.domain.model import Appointment

BOOKINGS = {EventKind.REQUESTED, EventKind.SCHEDULED, EventKind.RESCHEDULED}
STATUS_OF = {
    EventKind.REQUESTED: Status.REQUESTED,
    EventKind.SCHEDULED: Status.SCHEDULED,
    EventKind.RESCHEDULED: Status.SCHEDULED,
    EventKind.RESCHEDULE_REQUESTED: Status.REQUESTED,
    EventKind.COMPLETED: Status.COMPLETED,
    EventKind.NO_SHOW: Status.NO_SHOW,
    EventKind.TICKET_NO_SHOW: Status.NO_SHOW,
    EventKind.NO_SHOW_CLEARED: Status.SCHEDULED,
}


@dataclass(frozen=True)
class Expected:
    status: Status
    start: datetime
    end: datetime
    technicians: tuple[str, ...]
    customer: str
    cancelled_by: CancelledBy | None
    checked_in: bool

    @classmethod
    def of(cls, appointment: Appointment) -> Expected:
        cancellation = appointment.cancellation
        return cls(
            status=appointment.status,
            start=appointment.start,
            end=appointment.end,
            technicians=tuple(t.id for t in appointment.technicians),
            customer=appointment.customer.name,
            cancelled_by=cancellation.by if cancellation is not None else None,
            checked_in=appointment.checked_in_at is not None,
        )


def order(event: CanonicalEvent) -> tuple[datetime, int, str]:
    return (event.occurred_at, event.sequence or 0, event.delivery_id)


def expected(events: Iterable[CanonicalEvent]) -> Expected:
    """Newest news per fact; a cancellation, whenever it happened, is final, and the first one says who."""
    unique = sorted({e.delivery_id: e for e in events}.values(), key=order)
    bookings = [e for e in unique if e.kind in BOOKINGS and e.booking is not None]
    newest_booking = bookings[-1]
    assert newest_booking.booking is not None
    start, end = newest_booking.booking.start, newest_booking.booking.end

    technicians: tuple[str, ...] = ()
    for event in unique:
        if event.kind in BOOKINGS and event.booking is not None and event.booking.technicians is not None:
            technicians = tuple(t.id for t in event.booking.technicians)
        elif event.kind in (EventKind.ASSIGNED, EventKind.TICKET_ASSIGNED):
            technicians = tuple(t.id for t in event.technicians or ())

    cancellations: list[CancelledBy] = []
    status: Status | None = None
    for event in unique:
        if event.kind is EventKind.CANCELLED:
            cancellations.append(event.cancelled_by or CancelledBy.CUSTOMER)
        elif event.kind is EventKind.REJECTED:
            cancellations.append(event.cancelled_by or CancelledBy.OPS)
        elif event.kind is EventKind.TICKET_COMPLETED:
            if event.occurred_at < start:
                cancellations.append(CancelledBy.OPS)
            else:
                status = Status.COMPLETED
        elif event.kind in STATUS_OF:
            status = STATUS_OF[event.kind]
    assert status is not None

    newest_time = order(newest_booking)
    check_ins = [order(e) for e in unique if e.kind is EventKind.CHECKED_IN]
    return Expected(
        status=Status.CANCELLED if cancellations else status,
        start=start,
        end=end,
        technicians=technicians,
        customer=newest_booking.booking.customer.name,
        cancelled_by=cancellations[0] if cancellations else None,
        checked_in=bool(check_ins) and max(check_ins) > newest_time,
    )
