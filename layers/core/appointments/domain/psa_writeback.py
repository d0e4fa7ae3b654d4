"""What the PSA write-back writes to a ticket for one domain event: pure, from the event alone.

The technician looks at the ticket, not at the desk: when the desk acts (the no-show rule, an auto-cancel, a
reschedule by ops), the ticket must tell the same story. Each domain event of an appointment linked to a
ticket may become a status change and an internal note. Never for a change the PSA itself caused (its own
ticket webhook): the PSA knows already, and writing it back would start an echo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field

from appointments.domain.model import NonEmpty, UtcDatetime

if TYPE_CHECKING:
    from collections.abc import Mapping

# The actions noted on the ticket by default: what a technician opening the ticket needs to know.
DEFAULT_NOTE_ACTIONS = frozenset(
    {
        "no_show",
        "auto_cancel",
        "cancel",
        "reschedule",
        "reassign",
        "request_reschedule",
        "contact_attempt",
        "check_in",
        "complete",
    }
)
_OUTCOMES = {"voicemail": "left a voicemail", "busy": "the line was busy", "no_answer": "nobody answered"}


class _Read(BaseModel):
    """Read from a published event: fields added to the event later are ignored, so consumers keep working."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class EventTicket(_Read):
    system: NonEmpty
    id: NonEmpty
    number: str | None = None


class EventAppointment(_Read):
    id: NonEmpty
    status: str
    start: UtcDatetime
    end: UtcDatetime
    timezone: str
    technicians: tuple[str, ...] = ()
    ticket: EventTicket | None = None


class EventActor(_Read):
    kind: str
    id: str | None = None


class AppointmentEvent(_Read):
    """The ``detail`` of a domain event (docs/events.md), the fields the write-back reads."""

    event_id: NonEmpty
    action: NonEmpty
    at: UtcDatetime
    actor: EventActor
    detail: dict[str, Any] = Field(default_factory=dict)
    appointment: EventAppointment


@dataclass(frozen=True)
class WritebackPolicy:
    # action → PSA system → the ticket status to set (no_show defaults to each PSA's configured NO-SHOW status)
    statuses: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    note_actions: frozenset[str] = DEFAULT_NOTE_ACTIONS
    public_notes: bool = False  # notes are internal (hidden from the ticket's contact) unless set


@dataclass(frozen=True)
class TicketWrite:
    system: str
    ticket_id: str
    status: str | None
    title: str | None
    text: str | None
    internal: bool
    reference: str  # the event id, written into the note: a retry looks for it before posting again

    @property
    def has_note(self) -> bool:
        return self.text is not None


def ticket_write(event: AppointmentEvent, policy: WritebackPolicy) -> TicketWrite | str:
    """What to write for ``event``, or why nothing is written."""
    ticket = event.appointment.ticket
    if ticket is None:
        return "the appointment has no ticket"
    if event.actor.kind == "source" and event.actor.id == ticket.system:
        return f"the change came from {ticket.system} itself"
    status = policy.statuses.get(event.action, {}).get(ticket.system)
    text = _note(event) if event.action in policy.note_actions else None
    if status is None and text is None:
        return f"nothing is written for {event.action}"
    reference = f"appointment desk event {event.event_id}"
    return TicketWrite(
        system=ticket.system,
        ticket_id=ticket.id,
        status=status,
        title=f"Appointment desk: {event.action.replace('_', ' ')}" if text else None,
        text=f"{text}\n\n({reference})" if text else None,
        internal=not policy.public_notes,
        reference=reference,
    )


# -- the notes -------------------------------------------------------------------------------------------


def _note(event: AppointmentEvent) -> str | None:
    detail, appointment = event.detail, event.appointment
    when = local_time(appointment.start, appointment.timezone)
    by = "by the customer" if detail.get("by") == "customer" else "by the desk" if detail.get("by") else ""
    match event.action:
        case "no_show":
            return _no_show(event, when)
        case "auto_cancel":
            # The event's ``coupon`` is the code (docs/events.md); a mapping with its percent is read too.
            coupon = detail.get("coupon")
            if isinstance(coupon, dict):
                offered = f" A {coupon.get('percent')}% coupon ({coupon.get('code')}) was offered."
            else:
                offered = f" A coupon ({coupon}) was offered." if coupon else ""
            return (
                f"The appointment at {when} was cancelled automatically: no technician was assigned in time. "
                f"The customer was told.{offered}"
            )
        case "cancel":
            reason = f": {detail['reason']}" if detail.get("reason") else ""
            return f"The appointment at {when} was cancelled {by}{reason}.".replace(" .", ".")
        case "reschedule":
            moved_from = (detail.get("from") or {}).get("start")
            was = f" (was {local_time(_instant(moved_from), appointment.timezone)})" if moved_from else ""
            return f"The appointment was moved to {when}{was}."
        case "reassign":
            who = ", ".join(appointment.technicians) or "nobody (unassigned)"
            return f"The appointment at {when} is now assigned to {who}."
        case "request_reschedule":
            message = f" Message: {detail['message']}" if detail.get("message") else ""
            return f"The customer was asked to pick a new time for the appointment at {when}.{message}"
        case "contact_attempt":
            outcome = _OUTCOMES.get(str(detail.get("outcome")), str(detail.get("outcome", "")).replace("_", " "))
            note = f" {detail['note']}" if detail.get("note") else ""
            return f"Tried to reach the customer about the appointment at {when}: {outcome}.{note}"
        case "check_in":
            return (
                f"The customer checked in for the appointment at {when} ({local_time(event.at, appointment.timezone)})."
            )
        case "complete":
            minutes = detail.get("duration_minutes")
            outcome = f", outcome: {detail['outcome']}" if detail.get("outcome") else ""
            took = f" in {minutes} minutes" if minutes is not None else ""
            return f"The appointment at {when} was completed{took}{outcome}."
    return f"Appointment desk: {event.action.replace('_', ' ')} (appointment at {when})."


def _no_show(event: AppointmentEvent, when: str) -> str:
    detail, appointment = event.detail, event.appointment
    mail = {
        "desk": "missed-appointment mail sent",
        "psa": "the missed-appointment mail is the PSA's to send",
        "none": "no mail: the customer has no address",
    }.get(str(detail.get("mail", "desk")), "missed-appointment mail sent")
    if event.actor.kind == "system" and detail.get("due_at"):
        waited = round((_instant(detail["due_at"]) - appointment.start).total_seconds() / 60)
        return f"Customer did not call in within {waited} minutes of {when}; {mail}."
    note = f" Note: {detail['note']}" if detail.get("note") else ""
    return f"Marked no-show for the appointment at {when}; {mail}.{note}"


def local_time(instant: datetime, zone: str) -> str:
    """``15:00 EST on Mon 23 Nov 2026``: the time as the customer (and the technician on the phone) says it."""
    try:
        local = instant.astimezone(ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError):
        local = instant
    return f"{local:%H:%M} {local.tzname() or 'UTC'} on {local:%a %d %b %Y}"


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value)
