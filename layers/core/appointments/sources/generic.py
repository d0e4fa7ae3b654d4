"""The generic source: the canonical JSON of docs/vendors.md, for any booking page (an MSP's own "STF" page).

Signed with ``X-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``, 5 minutes either way.
Unlike the vendors, it names our appointment type key directly; the ingress checks it is a known one.

The format is ours, so whatever an appointment cannot hold is refused with a 422 naming the field, never
clipped: an ``end`` not after ``start``, more than 20 technicians (as the ops API), an ``external_id`` over
120 characters (``generic:<external_id>`` is the event's entity, at most 128), an ``event_id`` over 200, and
a ticket whose system and id together exceed 1000 bytes in UTF-8 (the store keys on them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator, Field, ValidationError

from appointments.domain.events import (
    MAX_KEY_ID_BYTES,
    MAX_TECHNICIANS,
    BookingDetails,
    CanonicalEvent,
    EventKind,
    fits_a_key,
)
from appointments.domain.model import (
    CancelledBy,
    Customer,
    ExternalRef,
    Links,
    Technician,
    TicketRef,
    TimeZoneName,
    UtcDatetime,
)
from appointments.errors import UnsupportedPayload
from appointments.sources.base import (
    Lenient,
    WebhookRequest,
    load_json_object,
    unsupported,
    validated,
    verify_timestamped_signature,
)

if TYPE_CHECKING:
    from datetime import datetime

TOLERANCE_SECONDS = 5 * 60
SIGNATURE_HEADER = "X-Signature"

_KINDS = {
    f"appointment.{name}": kind
    for name, kind in {
        "requested": EventKind.REQUESTED,
        "scheduled": EventKind.SCHEDULED,
        "rescheduled": EventKind.RESCHEDULED,
        "assigned": EventKind.ASSIGNED,
        "checked_in": EventKind.CHECKED_IN,
        "completed": EventKind.COMPLETED,
        "no_show": EventKind.NO_SHOW,
        "cancelled": EventKind.CANCELLED,
    }.items()
}
# Kinds that describe the booking itself, so the booking's details must come with them.
_BOOKING_KINDS = frozenset({EventKind.REQUESTED, EventKind.SCHEDULED, EventKind.RESCHEDULED})
_EXTERNAL_ID_MAX_CHARS = 120  # "generic:<external_id>" must fit an event's entity (128)


def _fits_a_key(ticket: TicketRef) -> TicketRef:
    if not fits_a_key(ticket.system, ticket.id):
        raise ValueError(f"system and id must together be at most {MAX_KEY_ID_BYTES} bytes in UTF-8")
    return ticket


class _Appointment(Lenient):
    external_id: Annotated[str, Field(min_length=1, max_length=_EXTERNAL_ID_MAX_CHARS)]
    start: UtcDatetime | None = None
    end: UtcDatetime | None = None
    timezone: TimeZoneName | None = None
    type: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    customer: Customer | None = None
    technicians: Annotated[tuple[Technician, ...], Field(max_length=MAX_TECHNICIANS)] | None = None
    ticket: Annotated[TicketRef, AfterValidator(_fits_a_key)] | None = None
    links: Links = Links()


class _Envelope(Lenient):
    event_id: Annotated[str, Field(min_length=1, max_length=200)]
    type: str
    occurred_at: UtcDatetime
    appointment: _Appointment
    reason: Annotated[str, Field(max_length=2000)] | None = None
    cancelled_by: CancelledBy = CancelledBy.CUSTOMER


class GenericSource:
    name = "generic"

    def verify(self, request: WebhookRequest, secret: str, now: datetime) -> None:
        verify_timestamped_signature(
            request.header(SIGNATURE_HEADER), secret, request.body, now, tolerance_seconds=TOLERANCE_SECONDS
        )

    def parse(self, request: WebhookRequest) -> tuple[CanonicalEvent, ...]:
        envelope = validated(_Envelope, load_json_object(request.body))
        kind = _KINDS.get(envelope.type)
        if kind is None:
            raise UnsupportedPayload("type", f"must be one of {', '.join(_KINDS)}")
        appointment = envelope.appointment
        ref = ExternalRef(system=self.name, id=appointment.external_id)
        return (
            CanonicalEvent(
                source=self.name,
                delivery_id=envelope.event_id,
                kind=kind,
                occurred_at=envelope.occurred_at,
                entity=f"{self.name}:{appointment.external_id}",
                external_ref=ref,
                ticket=appointment.ticket,
                booking=_booking(appointment) if kind in _BOOKING_KINDS else None,
                technicians=_technicians(appointment) if kind is EventKind.ASSIGNED else None,
                reason=envelope.reason,
                cancelled_by=envelope.cancelled_by if kind is EventKind.CANCELLED else None,
            ),
        )


def _booking(appointment: _Appointment) -> BookingDetails:
    missing = [name for name in ("start", "end", "timezone", "type", "customer") if getattr(appointment, name) is None]
    if missing:
        raise UnsupportedPayload(f"appointment.{missing[0]}", "is required for this event type")
    fields = appointment.model_dump(exclude={"external_id"}, exclude_none=True)
    try:
        return BookingDetails.model_validate(fields)
    except ValidationError as error:
        raise unsupported(error, prefix="appointment") from None


def _technicians(appointment: _Appointment) -> tuple[Technician, ...]:
    if appointment.technicians is None:
        raise UnsupportedPayload("appointment.technicians", "is required for appointment.assigned (empty = unassigned)")
    return appointment.technicians
