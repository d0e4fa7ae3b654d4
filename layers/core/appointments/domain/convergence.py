"""Convergence: what a vendor event claims about an appointment, and how a claim is merged.

Vendors deliver in parallel, retry, and deliver out of order, so the state an appointment reaches must
depend only on the set of events received. Each fact keeps the stamp (time, vendor sequence,
tie-break) of the change that last set it, and an event sets exactly the facts it is newer for. The
rules, written out for people in ``docs/convergence.md``:

- time, technicians and each booking detail: the newest claim wins;
- status: the newest claim wins, except that a cancellation is terminal: it applies whatever its
  stamp, nothing moves a cancelled appointment again, and the earliest cancellation is the one kept;
- check-in: stands while it is newer than the time; a newer time (a reschedule) clears it.

Pure: no clock, no store. The processor decides what the merge means for history and mail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from appointments.domain.events import EventKind
from appointments.domain.model import Cancellation, CancelledBy, Completion, Fact, Status, with_primary

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from appointments.domain.events import CanonicalEvent
    from appointments.domain.model import Appointment, Stamp, Technician

# Kinds that carry the whole booking.
BOOKING_KINDS = frozenset({EventKind.REQUESTED, EventKind.SCHEDULED, EventKind.RESCHEDULED})

_STATUS_OF: Mapping[EventKind, Status] = {
    EventKind.REQUESTED: Status.REQUESTED,
    EventKind.SCHEDULED: Status.SCHEDULED,
    EventKind.RESCHEDULED: Status.SCHEDULED,
    EventKind.RESCHEDULE_REQUESTED: Status.REQUESTED,
    EventKind.COMPLETED: Status.COMPLETED,
    EventKind.NO_SHOW: Status.NO_SHOW,
    EventKind.TICKET_NO_SHOW: Status.NO_SHOW,
    EventKind.NO_SHOW_CLEARED: Status.SCHEDULED,
    EventKind.CANCELLED: Status.CANCELLED,
    EventKind.REJECTED: Status.CANCELLED,
}


@dataclass(frozen=True)
class Claims:
    """What one event says; ``None`` (or absent) means the event says nothing about that fact."""

    status: Status | None = None
    cancelled_by: CancelledBy = CancelledBy.CUSTOMER
    reason: str | None = None
    time: tuple[datetime, datetime] | None = None
    technicians: tuple[Technician, ...] | None = None
    details: Mapping[Fact, Any] = field(default_factory=dict)  # CUSTOMER, TIMEZONE, TYPE, ... -> value
    check_in: bool = False

    @property
    def facts(self) -> tuple[Fact, ...]:
        claimed = [Fact.STATUS] if self.status is not None else []
        claimed += [Fact.TIME] if self.time is not None else []
        claimed += [Fact.TECHNICIANS] if self.technicians is not None else []
        claimed += [Fact.CHECK_IN] if self.check_in else []
        return (*claimed, *self.details)


def claims_of(event: CanonicalEvent, *, type_key: str | None, start: datetime) -> Claims:
    """The facts ``event`` claims. ``type_key``: our type for its booking (None: it names none we know);
    ``start``: the appointment's start, which decides what a completed ticket means for it."""
    kind = event.kind
    if kind in BOOKING_KINDS and event.booking is not None:
        booking = event.booking
        details: dict[Fact, Any] = {Fact.CUSTOMER: booking.customer, Fact.TIMEZONE: booking.timezone}
        optional = {
            Fact.TYPE: type_key,
            Fact.TICKET: booking.ticket or event.ticket,
            Fact.LINKS: booking.links if (booking.links.reschedule or booking.links.cancel) else None,
            Fact.ANSWERS: booking.answers or None,
            Fact.METADATA: booking.metadata or None,
        }
        details.update({fact: value for fact, value in optional.items() if value is not None})
        return Claims(
            status=_STATUS_OF[kind],
            time=(booking.start, booking.end),
            technicians=booking.technicians,
            details=details,
        )
    if kind in (EventKind.ASSIGNED, EventKind.TICKET_ASSIGNED):
        return Claims(technicians=event.technicians or ())
    if kind is EventKind.CHECKED_IN:
        return Claims(check_in=True)
    if kind is EventKind.TICKET_COMPLETED:
        # The ticket is done: an appointment still ahead then will not happen, one already started was the work.
        if event.occurred_at < start:
            reason = event.reason or f"ticket completed in {event.source}"
            return Claims(status=Status.CANCELLED, cancelled_by=CancelledBy.OPS, reason=reason)
        return Claims(status=Status.COMPLETED, reason=event.reason)
    status = _STATUS_OF.get(kind)
    if status is None:  # SUPERSEDED: the first half of a reschedule says nothing about the appointment
        return Claims()
    if status is Status.CANCELLED:
        by = event.cancelled_by or (CancelledBy.OPS if kind is EventKind.REJECTED else CancelledBy.CUSTOMER)
        verb = "rejected" if kind is EventKind.REJECTED else "cancelled"
        return Claims(status=status, cancelled_by=by, reason=event.reason or f"{verb} in {event.source}")
    return Claims(status=status, reason=event.reason)


@dataclass(frozen=True)
class Merged:
    """The appointment's fields after a merge (to validate as the next version) and what the claim did."""

    updates: Mapping[str, Any]
    set: tuple[Fact, ...]
    superseded: tuple[Fact, ...]


def cancelled_by_the_desk(appointment: Appointment) -> bool:
    """Cancelled by a dispatcher or the rules (not reported by a vendor): a decision we made and told the
    customer about, so nothing a vendor says afterwards changes the appointment."""
    status = appointment.fact_stamps.get(Fact.STATUS)
    return appointment.status is Status.CANCELLED and status is not None and status.tiebreak.startswith("~")


def _no_show_too_soon(appointment: Appointment, check_in: Stamp) -> bool:
    """A no-show the rules marked after the customer had called in (the check-in's news came after it)."""
    status = appointment.fact_stamps.get(Fact.STATUS)
    return (
        appointment.status is Status.NO_SHOW
        and status is not None
        and status.tiebreak == "~system"
        and check_in.at <= status.at
    )


def merge(appointment: Appointment, claims: Claims, stamp: Stamp, *, source: str) -> Merged:
    stamps = dict(appointment.fact_stamps)
    updates: dict[str, Any] = {}
    applied: list[Fact] = []
    superseded: list[Fact] = []
    frozen = cancelled_by_the_desk(appointment)

    def take(fact: Fact, values: Mapping[str, Any]) -> None:
        if not frozen and stamp.newer_than(stamps.get(fact)):
            stamps[fact] = stamp
            updates.update(values)
            applied.append(fact)
        else:
            superseded.append(fact)

    if claims.time is not None:
        take(Fact.TIME, {"start": claims.time[0], "end": claims.time[1]})
    if claims.technicians is not None:
        technicians = with_primary(claims.technicians)
        if _who(technicians) == _who(appointment.technicians):
            # The same people: a PSA knows them only by id, so the names and emails we have are kept.
            technicians = appointment.technicians
        take(Fact.TECHNICIANS, {"technicians": technicians})
    for fact, value in claims.details.items():
        take(fact, {fact.value: value})
    if claims.check_in:
        take(Fact.CHECK_IN, {})
    if claims.status is not None:
        _merge_status(appointment, claims, stamp, stamps, updates, applied, superseded, source=source)

    checked_in = stamps.get(Fact.CHECK_IN)
    updates["checked_in_at"] = (
        checked_in.at if checked_in is not None and checked_in.newer_than(stamps.get(Fact.TIME)) else None
    )
    if claims.check_in and updates["checked_in_at"] is not None and _no_show_too_soon(appointment, stamp):
        # The customer called in before the rules marked the no-show; the news came late. The call stands.
        stamps[Fact.STATUS] = stamp
        updates.update(status=Status.SCHEDULED, no_show_at=None)
        applied.append(Fact.STATUS)
    status = updates.get("status", appointment.status)
    if status is Status.COMPLETED and appointment.status is not Status.COMPLETED:
        start, end = updates.get("start", appointment.start), updates.get("end", appointment.end)
        minutes = min(24 * 60, max(0, int((end - start).total_seconds() // 60)))
        outcome = claims.reason or f"completed in {source}"
        updates["completion"] = Completion(at=stamp.at, duration_minutes=minutes, outcome=outcome)
    updates["fact_stamps"] = stamps
    return Merged(updates=updates, set=tuple(applied), superseded=tuple(superseded))


def _merge_status(
    appointment: Appointment,
    claims: Claims,
    stamp: Stamp,
    stamps: dict[Fact, Stamp],
    updates: dict[str, Any],
    applied: list[Fact],
    superseded: list[Fact],
    *,
    source: str,
) -> None:
    claimed, current = claims.status, appointment.status
    cancellation = appointment.cancellation
    if current is Status.CANCELLED:
        # Terminal. Only an earlier vendor cancellation, arriving late, says better who cancelled and why.
        if (
            claimed is Status.CANCELLED
            and cancellation is not None
            and not cancelled_by_the_desk(appointment)
            and not stamp.newer_than(stamps.get(Fact.STATUS))
        ):
            stamps[Fact.STATUS] = stamp
            updates["cancellation"] = cancellation.model_copy(
                update={"at": stamp.at, "by": claims.cancelled_by, "reason": claims.reason or cancellation.reason}
            )
            applied.append(Fact.STATUS)
        else:
            superseded.append(Fact.STATUS)
        return
    if claimed is Status.CANCELLED:
        stamps[Fact.STATUS] = stamp
        reason = claims.reason or f"cancelled in {source}"
        updates.update(
            status=Status.CANCELLED,
            cancellation=Cancellation(at=stamp.at, by=claims.cancelled_by, reason=reason),
            next_due_at=None,
        )
        applied.append(Fact.STATUS)
        return
    if not stamp.newer_than(stamps.get(Fact.STATUS)):
        superseded.append(Fact.STATUS)
        return
    stamps[Fact.STATUS] = stamp
    applied.append(Fact.STATUS)
    updates["status"] = claimed
    if claimed is not Status.COMPLETED:
        updates["completion"] = None
    updates["no_show_at"] = stamp.at if claimed is Status.NO_SHOW else None


def _who(technicians: tuple[Technician, ...]) -> list[tuple[str, bool]]:
    return [(t.id, t.primary) for t in technicians]


_FIELDS_OF: Mapping[Fact, tuple[str, ...]] = {
    Fact.TIME: ("start", "end"),
    Fact.TECHNICIANS: ("technicians",),
    Fact.STATUS: ("status", "cancellation", "completion", "no_show_at"),
    Fact.CHECK_IN: (),
    **{fact: (fact.value,) for fact in (Fact.CUSTOMER, Fact.TIMEZONE, Fact.TYPE, Fact.TICKET)},
    **{fact: (fact.value,) for fact in (Fact.LINKS, Fact.ANSWERS, Fact.METADATA)},
}


def absorb(survivor: Appointment, absorbed: Appointment) -> dict[str, Any]:
    """The fields of ``survivor`` once ``absorbed`` (the same booking, known under other ids) is merged in.

    Each fact takes the newer of the two stamps, as if every event of both had reached one appointment;
    a cancellation is terminal here too, and the earlier of two is kept. What people added (notes,
    contact attempts, hold, discount) is kept from both.
    """
    stamps = dict(survivor.fact_stamps)
    updates: dict[str, Any] = {}
    for fact, theirs in absorbed.fact_stamps.items():
        if fact is Fact.STATUS:
            continue
        if theirs.newer_than(stamps.get(fact)):
            stamps[fact] = theirs
            updates.update({name: getattr(absorbed, name) for name in _FIELDS_OF[fact]})
    ours, theirs_status = stamps.get(Fact.STATUS), absorbed.fact_stamps.get(Fact.STATUS)
    cancelled = [a for a in (survivor, absorbed) if a.status is Status.CANCELLED]
    if cancelled:
        # A cancelled appointment's status always carries a stamp (the cancellation's).
        winner = min(cancelled, key=lambda a: a.fact_stamps[Fact.STATUS].order)
    else:
        winner = absorbed if theirs_status is not None and theirs_status.newer_than(ours) else survivor
    if winner is absorbed:
        updates.update({name: getattr(absorbed, name) for name in _FIELDS_OF[Fact.STATUS]})
    if winner.fact_stamps.get(Fact.STATUS) is not None:
        stamps[Fact.STATUS] = winner.fact_stamps[Fact.STATUS]
    checked_in = stamps.get(Fact.CHECK_IN)
    updates["checked_in_at"] = (
        checked_in.at if checked_in is not None and checked_in.newer_than(stamps.get(Fact.TIME)) else None
    )
    refs = survivor.external_refs + tuple(r for r in absorbed.external_refs if r not in survivor.external_refs)
    deliveries = dict.fromkeys((*absorbed.recent_deliveries, *survivor.recent_deliveries))
    return {
        **updates,
        "fact_stamps": stamps,
        "external_refs": refs,
        "recent_deliveries": tuple(deliveries),
        "notes": tuple(sorted((*survivor.notes, *absorbed.notes), key=lambda note: note.at)),
        "contact_attempts": tuple(
            sorted((*survivor.contact_attempts, *absorbed.contact_attempts), key=lambda attempt: attempt.at)
        ),
        "hold": survivor.hold or absorbed.hold,
        "discount": survivor.discount or absorbed.discount,
        "notices_sent": {**absorbed.notices_sent, **survivor.notices_sent},
        "psa_statuses": {**absorbed.psa_statuses, **survivor.psa_statuses},
        "created_at": min(survivor.created_at, absorbed.created_at),
    }
