"""The event processor: applies canonical events to appointments so that any delivery order converges.

- Each event sets the facts it is the newest for (``domain.convergence``); older news is recorded as
  superseded. History gets one entry per event, applied or not.
- A redelivered event (its delivery id is among the appointment's recent ones) changes nothing.
- A PSA ticket event that changes nothing, from a PSA whose ticket status the write-back set
  (``Appointment.psa_statuses``), is our own change coming back: recorded as ``psa_echo``, acted on never.
- An event about a booking we do not hold yet waits under the booking's external id (a PSA ticket
  event: under the ticket) and is applied, in the same transaction, when the booking arrives. A booking
  change (not a ticket event) still waiting ``unmatched_alert_after`` later alerts ops once
  (``services.unmatched_alerts``).
- Creation claims the booking's external ids: when two deliveries race, the first writer wins and the
  other, re-reading, applies its event to the appointment the first one created.
- A version conflict (another writer first) is re-read and decided again.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from appointments.domain import lifecycle
from appointments.domain.convergence import BOOKING_KINDS, absorb, claims_of, merge
from appointments.domain.events import EventKind, wait_key_for_ref, wait_key_for_ticket
from appointments.domain.history import Action, HistoryEntry, Record
from appointments.domain.ids import new_ulid
from appointments.domain.lifecycle import AppointmentDraft, Change
from appointments.domain.model import Actor, Appointment, CancelledBy, Fact, Status
from appointments.domain.outbox import MailKind, OutboxMail
from appointments.domain.rules import RuleTimings, armed
from appointments.errors import ExternalRefTaken, VersionConflict
from appointments.observability import record_events, record_parked

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from datetime import datetime

    from appointments.domain.appointment_types import AppointmentTypeCatalog
    from appointments.domain.convergence import Merged
    from appointments.domain.events import CanonicalEvent
    from appointments.domain.model import Technician
    from appointments.ports import AppointmentStore, Clock

MAX_RECENT_DELIVERIES = 100
MAX_COPIED_HISTORY = 60
ATTEMPTS = 4

_TICKET_KINDS = frozenset({EventKind.TICKET_COMPLETED, EventKind.TICKET_NO_SHOW, EventKind.TICKET_ASSIGNED})
_OPEN = frozenset({Status.REQUESTED, Status.SCHEDULED})
_DETAIL_FACTS = frozenset(
    {Fact.CUSTOMER, Fact.TIMEZONE, Fact.TYPE, Fact.TICKET, Fact.LINKS, Fact.ANSWERS, Fact.METADATA}
)


@dataclass(frozen=True)
class SourcePolicy:
    """How bookings from each source are taken in (from settings)."""

    ops_alert_email: str
    fallback_type: str = "remote_call_in"
    default_types: Mapping[str, str] = field(default_factory=dict)  # source -> our type key
    type_map: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # source -> vendor type -> key
    customer_mail_sources: frozenset[str] = frozenset()  # sources whose changes we mail customers about
    timings: RuleTimings = field(default_factory=RuleTimings)  # when the timed rules look next
    waiting_retention: timedelta = timedelta(hours=72)  # how long an event waits for its booking
    # Ops are alerted about a booking change still waiting this long after it arrived; None: never.
    unmatched_alert_after: timedelta | None = None

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
            self._apply_ticket_event(event)
        else:
            self._retrying(lambda: self._apply_booking_event(event))

    def _retrying(self, attempt: Callable[[], None]) -> None:
        for remaining in reversed(range(ATTEMPTS)):
            try:
                attempt()
                return
            except (VersionConflict, ExternalRefTaken):
                if remaining == 0:
                    raise

    # -- routing ---------------------------------------------------------------------------------

    def _apply_booking_event(self, event: CanonicalEvent) -> None:
        holders = self._holders(event)
        if len(holders) > 1:
            # The event links two bookings we took for different appointments: they are one.
            self._merge_appointments(*sorted(holders))
        appointment_id = min(holders, default=None)
        if appointment_id is not None:
            self._update(appointment_id, (event,))
        elif event.kind in BOOKING_KINDS and event.booking is not None:
            self._create(event)
        else:
            self._wait(event)

    def _apply_ticket_event(self, event: CanonicalEvent) -> None:
        if event.ticket is None:
            raise ValueError("a ticket event without a ticket")
        appointment_ids = self._store.find_by_ticket(event.ticket)
        if not appointment_ids:
            # Its booking may still be on its way: wait, then look again in case it landed meanwhile.
            self._store.keep_waiting(wait_key_for_ticket(event.ticket), event, self._waiting_until())
            record_parked()
            appointment_ids = self._store.find_by_ticket(event.ticket)
        for appointment_id in appointment_ids:
            self._retrying(functools.partial(self._update, appointment_id, (event,)))

    def _wait(self, event: CanonicalEvent) -> None:
        """An event that overtook its booking: kept under the booking's id until the booking arrives."""
        if event.external_ref is None:
            raise ValueError(f"{event.kind} names no booking")
        key = wait_key_for_ref(event.external_ref)
        now, after = self._clock.now(), self._policy.unmatched_alert_after
        alert_at = None if after is None else now + after
        self._store.keep_waiting(key, event, self._waiting_until(), alert_at=alert_at, arrived_at=now)
        record_parked()
        # The booking may have landed between our look and our write; whoever writes second sees the other.
        appointment_id = self._find(event)
        if appointment_id is not None:
            self._update(appointment_id, (event,), released=((key, event),))

    def _find(self, event: CanonicalEvent) -> str | None:
        return min(self._holders(event), default=None)

    def _holders(self, event: CanonicalEvent) -> set[str]:
        """The appointments holding the event's booking ids (two when it links bookings we took apart)."""
        refs = (event.external_ref, event.previous_ref)
        found = (self._store.find_by_external_ref(ref) for ref in refs if ref is not None)
        return {appointment_id for appointment_id in found if appointment_id is not None}

    def _merge_appointments(self, survivor_id: str, absorbed_id: str) -> None:
        """One appointment from two: the older id survives (ULIDs sort by creation), with both histories."""
        survivor = self._store.get(survivor_id)
        absorbed_record = self._store.load(absorbed_id)
        absorbed, at = absorbed_record.appointment, self._clock.now()
        fields = {**dict(survivor), **absorb(survivor, absorbed), "version": survivor.version + 1, "updated_at": at}
        fields.update(lifecycle.watched(survivor, fields, at=at))
        after = Appointment.model_validate(fields)
        detail = {"merged": absorbed.id, "external_ids": [str(ref) for ref in absorbed.external_refs]}
        entry = HistoryEntry(
            at=at,
            actor=Actor.system(),
            action=Record.MERGED,
            from_status=survivor.status,
            to_status=after.status,
            detail=detail,
        )
        # A transaction holds 100 items: the latest entries come along; older ones stay under the absorbed id.
        copied = absorbed_record.history[-MAX_COPIED_HISTORY:]
        change = Change(before=survivor, after=after, history=(*copied, entry), absorbed=absorbed)
        self._store.commit(armed(change, self._catalog, self._policy.timings))

    def _waiting_until(self) -> datetime:
        return self._clock.now() + self._policy.waiting_retention

    # -- applying --------------------------------------------------------------------------------

    def _create(self, event: CanonicalEvent) -> None:
        booking = event.booking
        assert booking is not None  # noqa: S101 - routed here only with one
        at, actor = self._clock.now(), Actor.source(event.source)
        type_key, mapped = self._type_of(event)
        draft = AppointmentDraft(
            status=Status.REQUESTED if event.kind is EventKind.REQUESTED else Status.SCHEDULED,
            start=booking.start,
            end=booking.end,
            timezone=booking.timezone,
            type=type_key,
            customer=booking.customer,
        )
        created = lifecycle.create(draft, appointment_id=new_ulid(at), catalog=self._catalog, at=at, actor=actor)
        # Nothing is known until the event says it: every fact is set by the merge, stamped with the event.
        blank = created.after.model_copy(update={"fact_stamps": {}})
        change = self._changed(None, blank, (event,), released=())
        if not mapped:
            after = change.after
            unmapped = {"vendor_type": booking.vendor_type, "kept_as": type_key}
            entry = HistoryEntry(
                at=at,
                actor=actor,
                action=Record.TYPE_UNMAPPED,
                from_status=after.status,
                to_status=after.status,
                detail=unmapped,
            )
            alert = self._ops_alert(after, "type_unmapped", "unmapped appointment type", unmapped)
            change = change.with_history(entry).with_mails(alert)
        self._store.commit(change)
        record_events(change.history)
        self._drain(change)

    def _update(
        self,
        appointment_id: str,
        events: tuple[CanonicalEvent, ...],
        *,
        released: tuple[tuple[str, CanonicalEvent], ...] = (),
    ) -> None:
        appointment = self._store.get(appointment_id)
        fresh = tuple(e for e in events if e.delivery_id not in appointment.recent_deliveries)
        if not fresh and not released:
            return
        change = self._changed(appointment, appointment, fresh, released=released)
        self._store.commit(change)
        record_events(change.history)
        self._drain(change)

    def _changed(
        self,
        before: Appointment | None,
        start: Appointment,
        events: tuple[CanonicalEvent, ...],
        *,
        released: tuple[tuple[str, CanonicalEvent], ...],
    ) -> Change:
        """One commit for ``events`` and for everything waiting on a booking or ticket they link first."""
        at = self._clock.now()
        current = start
        history: list[HistoryEntry] = []
        alerts: list[tuple[str, str, dict[str, Any]]] = []
        pending = list(events) + [event for _, event in released]
        released_keys = [(key, event.delivery_id) for key, event in released]
        seen_keys: set[str] = set()
        while pending:
            pending.sort(key=lambda e: e.stamp.order)
            for event in pending:
                if event.delivery_id in current.recent_deliveries:
                    continue
                current, entry, alert = self._merged(before is None and not history, current, event, at)
                history.append(entry)
                alerts.extend(alert)
            pending = []
            # A booking or ticket this change links for the first time may have events waiting for it.
            for key in self._wait_keys(before, current):
                if key in seen_keys:
                    continue
                seen_keys.add(key)
                waiting = self._store.waiting(key)
                pending += [e for e in waiting if e.delivery_id not in current.recent_deliveries]
                if key.startswith("ref#"):
                    released_keys += [(key, e.delivery_id) for e in waiting]
        version = 1 if before is None else before.version + 1
        after = current.model_copy(update={"version": version, "updated_at": at})
        released_once = tuple(dict.fromkeys(released_keys))
        change = Change(before=before, after=after, history=tuple(history), released=released_once)
        change = self._with_customer_mail(change, events)
        if alerts:
            change = change.with_mails(*(self._ops_alert(after, *alert) for alert in alerts))
        return armed(change, self._catalog, self._policy.timings)

    def _merged(
        self, creating: bool, appointment: Appointment, event: CanonicalEvent, at: datetime
    ) -> tuple[Appointment, HistoryEntry, list[tuple[str, str, dict[str, Any]]]]:
        """``appointment`` with ``event`` merged in (same version), the history entry, and any ops alert."""
        type_key = self._type_of(event)[0] if event.booking is not None else None
        claims = claims_of(event, type_key=type_key, start=appointment.start)
        merged = merge(appointment, claims, event.stamp, source=event.source)
        refs = [r for r in (event.external_ref, event.previous_ref) if r is not None and event.kind in BOOKING_KINDS]
        known = appointment.external_refs
        fields = {
            **dict(appointment),
            **merged.updates,
            "external_refs": (*known, *(r for r in dict.fromkeys(refs) if r not in known)),
            "recent_deliveries": (*appointment.recent_deliveries, event.delivery_id)[-MAX_RECENT_DELIVERIES:],
            "updated_at": at,
        }
        fields.update(lifecycle.watched(appointment, fields, at=at))
        after = Appointment.model_validate(fields)
        action = Action.CREATE if creating else _action(appointment, after, merged)
        detail = {**_event_detail(event), **_what_changed(appointment, after, action), **_facts(merged)}
        if claims.reason and after.status is not appointment.status:
            detail["reason"] = claims.reason
        if action is Record.EVENT_IGNORED and _echo_of_ours(appointment, event):
            # Our own write-back coming back as the PSA's ticket webhook: already applied, not news to act on.
            action = Record.PSA_ECHO
            detail = {**_event_detail(event), "status": appointment.psa_statuses[event.source], "reason": _ECHO}
        elif event.kind is EventKind.SUPERSEDED:
            detail["reason"] = "the first half of a reschedule, not a cancellation"
        elif action is Record.EVENT_IGNORED:
            detail["reason"] = "the appointment is already as the event says"
        elif action is Record.EVENT_SUPERSEDED:
            terminal = appointment.status is Status.CANCELLED
            detail["reason"] = "the appointment is cancelled" if terminal else "newer news already set these facts"
        entry = HistoryEntry(
            at=at,
            actor=Actor.source(event.source),
            action=action,
            from_status=None if creating else appointment.status,
            to_status=after.status,
            detail=detail,
        )
        alerts: list[tuple[str, str, dict[str, Any]]] = []
        if action is Record.PSA_ECHO:
            return after, entry, alerts
        if appointment.status is Status.NO_SHOW and after.status is Status.SCHEDULED and claims.check_in:
            called: dict[str, Any] = {"event": event.kind.value, "checked_in_at": event.occurred_at.isoformat()}
            subject = "the customer checked in before the no-show was marked: it is scheduled again"
            alerts.append(("check_in_before_no_show", subject, called))
        cancellation = appointment.cancellation
        if (
            appointment.status is Status.CANCELLED
            and cancellation is not None
            and cancellation.by is CancelledBy.SYSTEM
            and claims.technicians
            and event.occurred_at < cancellation.at
        ):
            late: dict[str, Any] = {"event": event.kind.value, "technicians": [t.id for t in claims.technicians]}
            subject = "a technician was assigned before the auto-cancel, but the news came after it"
            alerts.append(("late_assignment", subject, late))
        return after, entry, alerts

    def _wait_keys(self, before: Appointment | None, after: Appointment) -> Iterable[str]:
        known = () if before is None else before.external_refs
        keys = [wait_key_for_ref(ref) for ref in after.external_refs if ref not in known]
        ticket = after.ticket
        if ticket is not None and (before is None or before.ticket is None or before.ticket.id != ticket.id):
            keys.append(wait_key_for_ticket(ticket))
        return keys

    def _drain(self, change: Change) -> None:
        """Events that began to wait while this change was decided: the writer of each saw no booking yet."""
        after = change.after
        stragglers: list[tuple[str, CanonicalEvent]] = []
        ticket_events: list[CanonicalEvent] = []
        for key in self._wait_keys(change.before, after):
            waiting = self._store.waiting(key)
            if key.startswith("ref#"):
                stragglers += [(key, event) for event in waiting]  # this change released the others
            else:
                ticket_events += [event for event in waiting if event.delivery_id not in after.recent_deliveries]
        if stragglers or ticket_events:
            self._retrying(lambda: self._update(after.id, tuple(ticket_events), released=tuple(stragglers)))

    def _type_of(self, event: CanonicalEvent) -> tuple[str, bool]:
        booking = event.booking
        if booking is not None and booking.type is not None:
            return booking.type, True
        return self._policy.type_for(event.source, booking.vendor_type if booking else None)

    # -- mail ------------------------------------------------------------------------------------

    def _with_customer_mail(self, change: Change, events: tuple[CanonicalEvent, ...]) -> Change:
        """Schedulers mail their customers themselves; we do too only for sources configured so."""
        after = change.after
        email = after.customer.email
        sources = {event.source for event in events}
        if email is None or not sources & self._policy.customer_mail_sources:
            return change
        kind = _customer_mail(change.before, after)
        if kind is None:
            return change
        reasons = [e.reason for e in events if e.reason]
        context = {"reason": reasons[-1]} if reasons else {}
        return change.with_mails(OutboxMail.for_change(kind, after, to=(email,), at=after.updated_at, context=context))

    def _ops_alert(self, appointment: Appointment, code: str, subject: str, detail: dict[str, Any]) -> OutboxMail:
        to, at = (self._policy.ops_alert_email,), appointment.updated_at
        return OutboxMail.ops_alert(appointment, code=code, subject=subject, to=to, at=at, context=detail)


def _customer_mail(before: Appointment | None, after: Appointment) -> MailKind | None:
    """The one mail a customer gets for a change, judged on where the appointment ended up."""
    if before is None:
        if after.status in _OPEN:
            return MailKind.CONFIRMATION
        return MailKind.CANCELLED if after.status is Status.CANCELLED else None
    if before.status is Status.CANCELLED:
        return None
    if after.status is Status.CANCELLED:
        return MailKind.CANCELLED
    if after.status not in _OPEN:
        return None
    if after.status is Status.REQUESTED and before.status is not Status.REQUESTED:
        return MailKind.RESCHEDULE_REQUEST
    if (after.start, after.end) != (before.start, before.end):
        return MailKind.RESCHEDULED
    if before.status is Status.REQUESTED and after.status is Status.SCHEDULED:
        return MailKind.CONFIRMATION
    if _who(after.technicians) != _who(before.technicians):
        return MailKind.REASSIGNED
    return None


_TRANSITION_ACTIONS: Mapping[Status, Action] = {
    Status.CANCELLED: Action.CANCEL,
    Status.COMPLETED: Action.COMPLETE,
    Status.NO_SHOW: Action.NO_SHOW,
    Status.REQUESTED: Action.REQUEST_RESCHEDULE,
}


def _action(before: Appointment, after: Appointment, merged: Merged) -> Action | Record:
    """What one event did, named as the verb a dispatcher would have used for it."""
    if before.status is Status.CANCELLED or not merged.set:
        return Record.EVENT_SUPERSEDED if merged.superseded else Record.EVENT_IGNORED
    if after.status is not before.status:
        if after.status is Status.SCHEDULED:
            return Action.CONFIRM if before.status is Status.REQUESTED else Action.REOPEN
        return _TRANSITION_ACTIONS[after.status]
    if (after.start, after.end) != (before.start, before.end):
        return Action.RESCHEDULE
    if _who(after.technicians) != _who(before.technicians):
        return Action.REASSIGN
    if after.checked_in_at is not None and before.checked_in_at is None:
        return Action.CHECK_IN
    if any(getattr(after, fact.value) != getattr(before, fact.value) for fact in _DETAIL_FACTS):
        return Record.DETAILS_UPDATED
    return Record.EVENT_IGNORED


_ECHO = "the ticket is as the write-back set it: our own change, already applied"


def _echo_of_ours(appointment: Appointment, event: CanonicalEvent) -> bool:
    """A PSA ticket event that changes nothing, from a PSA the write-back set a status in: our change's echo."""
    return event.kind in _TICKET_KINDS and event.source in appointment.psa_statuses


def _what_changed(before: Appointment, after: Appointment, action: Action | Record) -> dict[str, Any]:
    if action is Action.RESCHEDULE:
        return {
            "from": {"start": before.start.isoformat(), "end": before.end.isoformat()},
            "to": {"start": after.start.isoformat(), "end": after.end.isoformat()},
        }
    if action is Action.REASSIGN:
        return {"from": [t.id for t in before.technicians], "to": [t.id for t in after.technicians]}
    if action is Action.CANCEL and after.cancellation is not None:
        return {"by": after.cancellation.by.value}
    return {}


def _facts(merged: Merged) -> dict[str, Any]:
    detail: dict[str, Any] = {}
    if merged.set:
        detail["set"] = [fact.value for fact in merged.set]
    if merged.superseded:
        detail["superseded"] = [fact.value for fact in merged.superseded]
    return detail


def _who(technicians: tuple[Technician, ...]) -> list[tuple[str, bool]]:
    """Who is assigned, and who leads: a PSA may know a technician by another name or no email."""
    return [(t.id, t.primary) for t in technicians]


def _event_detail(event: CanonicalEvent) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "event": event.kind.value,
        "delivery_id": event.delivery_id,
        "occurred_at": event.occurred_at.isoformat(),
    }
    if event.sequence is not None:
        detail["sequence"] = event.sequence
    return detail
