"""The event processor: applies canonical events to appointments, once each, in order per entity.

- A redelivered event (its delivery id is among the appointment's recent ones) changes nothing.
- An event older than the newest one applied for its entity is recorded in history as skipped.
- An event the appointment's status does not allow is recorded as ignored; it never fails the batch.
- Creation claims the booking's external id: when two deliveries race, the first writer wins and
  the other, re-reading, finds its delivery already applied.
- A version conflict (another writer first) is re-read and decided again.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from appointments.domain import lifecycle
from appointments.domain.due import RuleTimings, armed
from appointments.domain.events import EventKind
from appointments.domain.history import HistoryEntry, Record
from appointments.domain.ids import new_ulid
from appointments.domain.lifecycle import AppointmentDraft, Change
from appointments.domain.model import Actor, CancelledBy, Status, with_primary
from appointments.domain.outbox import MailKind, OutboxMail
from appointments.errors import AppointmentNotYetKnown, ExternalRefTaken, InvalidTransition, VersionConflict

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from appointments.domain.appointment_types import AppointmentTypeCatalog
    from appointments.domain.events import CanonicalEvent
    from appointments.domain.model import Appointment, Technician
    from appointments.ports import AppointmentStore, Clock

MAX_RECENT_DELIVERIES = 50
ATTEMPTS = 3

_CREATING = frozenset({EventKind.REQUESTED, EventKind.SCHEDULED, EventKind.RESCHEDULED})
_TICKET_KINDS = frozenset({EventKind.TICKET_COMPLETED, EventKind.TICKET_NO_SHOW, EventKind.TICKET_ASSIGNED})
_OPEN = frozenset({Status.REQUESTED, Status.SCHEDULED})


@dataclass(frozen=True)
class SourcePolicy:
    """How bookings from each source are taken in (from settings)."""

    ops_alert_email: str
    fallback_type: str = "remote_call_in"
    default_types: Mapping[str, str] = field(default_factory=dict)  # source -> our type key
    type_map: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # source -> vendor type -> key
    customer_mail_sources: frozenset[str] = frozenset()  # sources whose changes we mail customers about
    timings: RuleTimings = field(default_factory=RuleTimings)  # when the timed rules look next

    def type_for(self, source: str, vendor_type: str | None) -> tuple[str, bool]:
        """Our type key for a vendor type, and whether it was mapped (False: the source's default)."""
        mapped = self.type_map.get(source, {}).get(vendor_type or "")
        if mapped is not None:
            return mapped, True
        return self.default_types.get(source, self.fallback_type), vendor_type is None


class EventProcessor:
    def __init__(
        self, store: AppointmentStore, clock: Clock, catalog: AppointmentTypeCatalog, policy: SourcePolicy
    ) -> None:
        self._store = store
        self._clock = clock
        self._catalog = catalog
        self._policy = policy

    def apply(self, event: CanonicalEvent) -> None:
        if event.kind in _TICKET_KINDS:
            if event.ticket is None:
                raise ValueError("a ticket event without a ticket")
            for appointment_id in self._store.find_by_ticket(event.ticket):
                self._retrying(functools.partial(self._update, appointment_id, event))
            return
        self._retrying(lambda: self._apply_booking_event(event))

    def _retrying(self, attempt: Callable[[], None]) -> None:
        for remaining in reversed(range(ATTEMPTS)):
            try:
                attempt()
                return
            except (VersionConflict, ExternalRefTaken):
                if remaining == 0:
                    raise

    def _apply_booking_event(self, event: CanonicalEvent) -> None:
        appointment_id = self._find(event)
        if appointment_id is not None:
            self._update(appointment_id, event)
        elif event.kind in _CREATING:
            self._store.commit(self._create(event))
        elif event.kind is EventKind.SUPERSEDED:
            # Half of a reschedule of a booking we never held: the other half creates it, nothing to wait for.
            return
        else:
            raise AppointmentNotYetKnown(f"no appointment holds {event.external_ref} yet")

    def _find(self, event: CanonicalEvent) -> str | None:
        for ref in (event.external_ref, event.previous_ref):
            if ref is not None and (found := self._store.find_by_external_ref(ref)) is not None:
                return found
        return None

    # -- creation --------------------------------------------------------------------------------

    def _create(self, event: CanonicalEvent) -> Change:
        booking = event.booking
        if booking is None:
            raise ValueError(f"{event.kind} without booking details")
        at, actor = self._clock.now(), Actor.source(event.source)
        if booking.type is not None:
            type_key, mapped = booking.type, True
        else:
            type_key, mapped = self._policy.type_for(event.source, booking.vendor_type)
        refs = tuple(ref for ref in (event.external_ref, event.previous_ref) if ref is not None)
        draft = AppointmentDraft(
            status=Status.REQUESTED if event.kind is EventKind.REQUESTED else Status.SCHEDULED,
            start=booking.start,
            end=booking.end,
            timezone=booking.timezone,
            type=type_key,
            customer=booking.customer,
            technicians=booking.technicians or (),
            ticket=booking.ticket or event.ticket,
            external_refs=refs,
            links=booking.links,
            answers=booking.answers,
            metadata=booking.metadata,
        )
        change = lifecycle.create(
            draft, appointment_id=new_ulid(at), catalog=self._catalog, at=at, actor=actor, detail=_event_detail(event)
        )
        if not mapped:
            after = change.after
            unmapped = {"vendor_type": booking.vendor_type, "kept_as": type_key}
            change = change.with_history(
                HistoryEntry(
                    at=at,
                    actor=actor,
                    action=Record.TYPE_UNMAPPED,
                    from_status=after.status,
                    to_status=after.status,
                    detail=unmapped,
                )
            ).with_mails(self._ops_alert(after, "unmapped appointment type", unmapped))
        change = self._with_customer_mail(change, event, MailKind.CONFIRMATION)
        return _stamped(self._armed(change), event, applied=True)

    # -- updates ---------------------------------------------------------------------------------

    def _update(self, appointment_id: str, event: CanonicalEvent) -> None:
        appointment = self._store.get(appointment_id)
        if event.delivery_id in appointment.recent_deliveries:
            return
        at, actor = self._clock.now(), Actor.source(event.source)
        newest = appointment.applied_event_times.get(event.entity)
        if newest is not None and event.occurred_at < newest:
            detail = {**_event_detail(event), "newest_applied": newest.isoformat()}
            skipped = lifecycle.record(appointment, Record.EVENT_SKIPPED, at=at, actor=actor, detail=detail)
            self._store.commit(_stamped(skipped, event, applied=False))
            return
        try:
            change = self._decide(appointment, event)
        except InvalidTransition as refused:
            detail = {**_event_detail(event), "reason": refused.message}
            change = lifecycle.record(appointment, Record.EVENT_IGNORED, at=at, actor=actor, detail=detail)
        self._store.commit(_stamped(self._armed(change), event, applied=True))

    def _decide(self, appointment: Appointment, event: CanonicalEvent) -> Change:
        at, actor, kind = self._clock.now(), Actor.source(event.source), event.kind
        if kind in (EventKind.SCHEDULED, EventKind.REQUESTED, EventKind.RESCHEDULED):
            return self._booked(appointment, event)
        if kind is EventKind.RESCHEDULE_REQUESTED:
            change = lifecycle.request_reschedule(appointment, at=at, actor=actor, message=event.reason)
            return self._with_customer_mail(change, event, MailKind.RESCHEDULE_REQUEST)
        if kind is EventKind.SUPERSEDED:
            detail = {**_event_detail(event), "reason": "the first half of a reschedule, not a cancellation"}
            return lifecycle.record(appointment, Record.EVENT_IGNORED, at=at, actor=actor, detail=detail)
        if kind in (EventKind.ASSIGNED, EventKind.TICKET_ASSIGNED):
            return self._assigned(appointment, event)
        if kind is EventKind.CHECKED_IN:
            return lifecycle.check_in(appointment, at=at, actor=actor)
        if kind is EventKind.COMPLETED:
            return self._complete(appointment, event)
        if kind in (EventKind.NO_SHOW, EventKind.TICKET_NO_SHOW):
            return lifecycle.mark_no_show(appointment, at=at, actor=actor, note=event.reason)
        if kind is EventKind.NO_SHOW_CLEARED:
            self._require(appointment, kind, appointment.status is Status.NO_SHOW, "it is not marked as a no-show")
            return lifecycle.reopen(appointment, at=at, actor=actor)
        if kind in (EventKind.CANCELLED, EventKind.REJECTED):
            by = event.cancelled_by or (CancelledBy.OPS if kind is EventKind.REJECTED else CancelledBy.CUSTOMER)
            reason = event.reason or f"{'rejected' if kind is EventKind.REJECTED else 'cancelled'} in {event.source}"
            change = lifecycle.cancel(appointment, by=by, reason=reason, at=at, actor=actor)
            return self._with_customer_mail(change, event, MailKind.CANCELLED)
        if kind is EventKind.TICKET_COMPLETED:
            # The ticket is done: what is still ahead will not happen, what has started was the work.
            if appointment.start > at:
                reason = f"ticket completed in {event.source}"
                return lifecycle.cancel(appointment, by=CancelledBy.OPS, reason=reason, at=at, actor=actor)
            return self._complete(appointment, event)
        raise ValueError(f"no rule for {kind}")

    def _booked(self, appointment: Appointment, event: CanonicalEvent) -> Change:
        """A booking event for an appointment we hold: confirm it, move it, or note that nothing changed."""
        at, actor, booking = self._clock.now(), Actor.source(event.source), event.booking
        if booking is None:
            raise ValueError(f"{event.kind} without booking details")
        moved = (booking.start, booking.end) != (appointment.start, appointment.end)
        if event.kind is EventKind.REQUESTED:
            self._require(appointment, event.kind, False, "the appointment is already booked")
        if moved:
            change = lifecycle.reschedule(appointment, start=booking.start, end=booking.end, at=at, actor=actor)
            change = self._with_customer_mail(change, event, MailKind.RESCHEDULED)
        elif appointment.status is Status.REQUESTED:
            change = lifecycle.confirm(appointment, at=at, actor=actor)
            change = self._with_customer_mail(change, event, MailKind.CONFIRMATION)
        else:
            detail = {**_event_detail(event), "reason": "the booking is already as the event says"}
            return lifecycle.record(appointment, Record.EVENT_IGNORED, at=at, actor=actor, detail=detail)
        new_refs = tuple(r for r in (event.external_ref,) if r is not None and r not in change.after.external_refs)
        if new_refs:
            after = change.after.model_copy(update={"external_refs": (*change.after.external_refs, *new_refs)})
            change = dataclasses.replace(change, after=after)
        return change

    def _assigned(self, appointment: Appointment, event: CanonicalEvent) -> Change:
        at, actor = self._clock.now(), Actor.source(event.source)
        self._require(appointment, event.kind, appointment.status in _OPEN, "the appointment is no longer open")
        technicians = with_primary(event.technicians or ())
        if _who(technicians) == _who(appointment.technicians):
            # PSAs repeat the assigned resource on every ticket update: no change, no mail.
            detail = {**_event_detail(event), "reason": "the technicians are already as the event says"}
            return lifecycle.record(appointment, Record.EVENT_IGNORED, at=at, actor=actor, detail=detail)
        change = lifecycle.reassign(appointment, technicians, at=at, actor=actor)
        return self._with_customer_mail(change, event, MailKind.REASSIGNED)

    def _complete(self, appointment: Appointment, event: CanonicalEvent) -> Change:
        minutes = max(0, int((appointment.end - appointment.start) / timedelta(minutes=1)))
        outcome = event.reason or f"completed in {event.source}"
        return lifecycle.complete(
            appointment,
            duration_minutes=minutes,
            outcome=outcome,
            at=self._clock.now(),
            actor=Actor.source(event.source),
        )

    def _armed(self, change: Change) -> Change:
        return armed(change, self._catalog, self._policy.timings, now=self._clock.now())

    @staticmethod
    def _require(appointment: Appointment, kind: EventKind, condition: bool, reason: str) -> None:
        if not condition:
            raise InvalidTransition(status=appointment.status, action=str(kind), allowed=(), reason=reason)

    # -- mail ------------------------------------------------------------------------------------

    def _with_customer_mail(self, change: Change, event: CanonicalEvent, kind: MailKind) -> Change:
        """Schedulers mail their customers themselves; we do too only for sources configured so."""
        email = change.after.customer.email
        if event.source not in self._policy.customer_mail_sources or email is None:
            return change
        context = {"reason": event.reason} if event.reason else {}
        return change.with_mails(
            OutboxMail.for_change(kind, change.after, to=(email,), at=change.after.updated_at, context=context)
        )

    def _ops_alert(self, appointment: Appointment, subject: str, detail: dict[str, Any]) -> OutboxMail:
        return OutboxMail.for_change(
            MailKind.OPS_ALERT,
            appointment,
            to=(self._policy.ops_alert_email,),
            at=appointment.updated_at,
            context={"subject": subject, **detail},
        )


def _who(technicians: tuple[Technician, ...]) -> list[tuple[str, bool]]:
    """Who is assigned, and who leads: a PSA may know a technician by another name or no email."""
    return [(t.id, t.primary) for t in technicians]


def _event_detail(event: CanonicalEvent) -> dict[str, Any]:
    return {"event": event.kind.value, "delivery_id": event.delivery_id, "occurred_at": event.occurred_at.isoformat()}


def _stamped(change: Change, event: CanonicalEvent, *, applied: bool) -> Change:
    """Remember the delivery (so a redelivery is a no-op) and, when applied, how far the entity got."""
    after = change.after
    recent = (*after.recent_deliveries, event.delivery_id)[-MAX_RECENT_DELIVERIES:]
    times = after.applied_event_times
    if applied and (event.entity not in times or times[event.entity] < event.occurred_at):
        times = {**times, event.entity: event.occurred_at}
    return dataclasses.replace(
        change, after=after.model_copy(update={"recent_deliveries": recent, "applied_event_times": times})
    )
