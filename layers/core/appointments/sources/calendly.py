"""The Calendly source: webhook subscriptions (API v2) into canonical events.

Signed with ``Calendly-Webhook-Signature: t=<unix>,v1=<hex HMAC-SHA256(signing key, "<t>.<raw body>")>``
and fresh for 3 minutes. Calendly sends no delivery id, so a delivery is told apart by event, invitee
and ``created_at``. The appointment is the invitee: its UUID (the last segment of its URI) is the
external id, and the event type's UUID is the vendor type that ``VendorTypeMap`` maps.

Handled: invitee.created (with ``old_invitee``: the second half of a reschedule, the same appointment
at a new time), invitee.canceled (with ``rescheduled: true``: the first half of a reschedule, recorded
but never a cancellation), invitee_no_show.created and invitee_no_show.deleted. Deliberately ignored
(no event): routing_form_submission.created, event_type.*, meeting_recap.*, contact.*, and any event
Calendly adds later.

A booking is never dropped for what the questionnaire or the hosts hold: beyond what an appointment keeps,
hosts are clipped to the first 20, answers to the first 50 within 64 KiB (each question to 500 characters,
each answer to 5000), a name made of first and last name to 500 characters, and a phone number too long to
be one is left out. What cannot be a booking is refused with a 422 naming the field:
``payload.scheduled_event.end_time`` not after its ``start_time``, an invitee URI not ending in an id of at
most 110 characters (``calendly:<uuid>`` is the event's entity, at most 128), an email that is not one.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, Field, ValidationError

from appointments.domain.events import MAX_TECHNICIANS, BookingDetails, CanonicalEvent, EventKind, kept_answers
from appointments.domain.model import (
    Answer,
    CancelledBy,
    Customer,
    Email,
    Links,
    Technician,
    TimeZoneName,
    UtcDatetime,
)
from appointments.errors import UnsupportedPayload
from appointments.sources.base import (
    Lenient,
    Reason,
    WebhookRequest,
    booking_event,
    clipped,
    load_json_object,
    validated,
    verify_timestamped_signature,
)

if TYPE_CHECKING:
    from datetime import datetime

SIGNATURE_HEADER = "Calendly-Webhook-Signature"
TOLERANCE_SECONDS = 180
_UUID_MAX_CHARS = 110  # "calendly:<uuid>" must fit an event's entity (128)
_ANSWER_MAX_CHARS = 5000  # Answer.answer
_PHONE_MAX_CHARS = 50  # Customer.phone
_NAME_MAX_CHARS = 500  # Customer.name
# Where a field of the booking details comes from, to name it when the details are refused.
_BOOKING_FIELDS = {"start": "payload.scheduled_event.start_time", "end": "payload.scheduled_event.end_time"}


def _last_segment(uri: str) -> str:
    segment = uri.rstrip("/").rpartition("/")[2]
    if not segment or len(segment) > _UUID_MAX_CHARS:
        raise ValueError(f"must be a Calendly URI ending in an id of at most {_UUID_MAX_CHARS} characters")
    return segment


def _invitee_uuid(uri: str) -> str:
    if "/invitees/" not in uri:
        raise ValueError("must be an invitee URI (…/scheduled_events/<uuid>/invitees/<uuid>)")
    return _last_segment(uri)


# Read from a URI, kept as its last segment: the UUID.
InviteeId = Annotated[str, Field(max_length=2000), AfterValidator(_invitee_uuid)]
ResourceId = Annotated[str, Field(max_length=2000), AfterValidator(_last_segment)]
Url = Annotated[str, Field(max_length=2000)]


class _Envelope(Lenient):
    event: str
    created_at: UtcDatetime
    payload: dict[str, Any]


class _Membership(Lenient):
    """A host of the scheduled event: a Calendly user."""

    user: ResourceId | None = None
    user_email: Email | None = None
    user_name: Annotated[str, Field(max_length=500)] | None = None


class _ScheduledEvent(Lenient):
    start_time: UtcDatetime
    end_time: UtcDatetime
    event_type: ResourceId | None = None
    event_memberships: tuple[_Membership, ...] = ()


class _QuestionAndAnswer(Lenient):
    question: Annotated[str | None, clipped(500)] = None
    answer: Annotated[str | None, clipped(_ANSWER_MAX_CHARS)] = None


class _Invitee(Lenient):
    uri: InviteeId
    email: Email
    name: Annotated[str, Field(max_length=500)] | None = None
    first_name: Annotated[str, Field(max_length=250)] | None = None
    last_name: Annotated[str, Field(max_length=250)] | None = None
    timezone: TimeZoneName | None = None
    old_invitee: InviteeId | None = None  # set on the second half of a reschedule
    text_reminder_number: str | None = None
    cancel_url: Url | None = None
    reschedule_url: Url | None = None
    questions_and_answers: tuple[_QuestionAndAnswer, ...] = ()
    scheduled_event: _ScheduledEvent


class _CancellationDetails(Lenient):
    canceler_type: str | None = None  # host | invitee
    reason: Reason = None


class _Cancellation(Lenient):
    """A cancelled invitee: the whole invitee comes along, but only the id and the why are needed."""

    uri: InviteeId
    rescheduled: bool = False  # true: the first half of a reschedule
    cancellation: _CancellationDetails | None = None


class _NoShowMark(Lenient):
    """The invitee the mark is about (the payload is the invitee; a no-show object names it in ``invitee``)."""

    uri: Annotated[str, Field(max_length=2000)]
    invitee: InviteeId | None = None


class CalendlySource:
    name = "calendly"

    def verify(self, request: WebhookRequest, secret: str, now: datetime) -> None:
        verify_timestamped_signature(
            request.header(SIGNATURE_HEADER), secret, request.body, now, tolerance_seconds=TOLERANCE_SECONDS
        )

    def parse(self, request: WebhookRequest) -> tuple[CanonicalEvent, ...]:
        envelope = validated(_Envelope, load_json_object(request.body))
        event = self._translate(envelope)
        return () if event is None else (event,)

    def _translate(self, envelope: _Envelope) -> CanonicalEvent | None:
        payload = envelope.payload
        event = functools.partial(booking_event, self.name, envelope.event, envelope.created_at)
        match envelope.event:
            case "invitee.created":
                invitee = validated(_Invitee, payload, prefix="payload")
                kind = EventKind.RESCHEDULED if invitee.old_invitee else EventKind.SCHEDULED
                return event(kind, invitee.uri, previous_id=invitee.old_invitee, booking=_details(invitee))
            case "invitee.canceled":
                cancelled = validated(_Cancellation, payload, prefix="payload")
                if cancelled.rescheduled:
                    return event(EventKind.SUPERSEDED, cancelled.uri)
                details = cancelled.cancellation or _CancellationDetails()
                by = CancelledBy.OPS if details.canceler_type == "host" else CancelledBy.CUSTOMER
                return event(EventKind.CANCELLED, cancelled.uri, reason=details.reason, cancelled_by=by)
            case "invitee_no_show.created" | "invitee_no_show.deleted":
                return event(_NO_SHOW_KINDS[envelope.event], _no_show_invitee(payload))
        return None


_NO_SHOW_KINDS = {"invitee_no_show.created": EventKind.NO_SHOW, "invitee_no_show.deleted": EventKind.NO_SHOW_CLEARED}


def _no_show_invitee(payload: dict[str, Any]) -> str:
    mark = validated(_NoShowMark, payload, prefix="payload")
    if mark.invitee is not None:
        return mark.invitee
    try:
        return _invitee_uuid(mark.uri)
    except ValueError as error:
        raise UnsupportedPayload("payload.uri", str(error)) from None


def _details(invitee: _Invitee) -> BookingDetails:
    if invitee.timezone is None:
        raise UnsupportedPayload("payload.timezone", "is required")
    event = invitee.scheduled_event
    # Two parts of up to 250 characters and a space are one more than a name holds.
    full_name = " ".join(part for part in (invitee.first_name, invitee.last_name) if part)[:_NAME_MAX_CHARS]
    phone = (invitee.text_reminder_number or "").strip()
    try:
        return BookingDetails(
            start=event.start_time,
            end=event.end_time,
            timezone=invitee.timezone,
            vendor_type=event.event_type,
            customer=Customer(
                name=invitee.name or full_name or invitee.email,
                email=invitee.email,
                # Calendly checks numbers when booking; anything too long to be one is left out rather than refused.
                phone=phone if 0 < len(phone) <= _PHONE_MAX_CHARS else None,
            ),
            technicians=_technicians(event)[:MAX_TECHNICIANS],
            links=Links(reschedule=invitee.reschedule_url, cancel=invitee.cancel_url),
            answers=kept_answers(
                Answer(question=qa.question, answer=qa.answer)
                for qa in invitee.questions_and_answers
                if qa.question and qa.answer
            ),
        )
    except ValidationError as error:
        first = error.errors(include_input=False, include_url=False)[0]
        location = str(first["loc"][0]) if first["loc"] else ""
        raise UnsupportedPayload(_BOOKING_FIELDS.get(location, "payload"), first["msg"]) from None


def _technicians(event: _ScheduledEvent) -> tuple[Technician, ...]:
    technicians: dict[str, Technician] = {}
    for host in event.event_memberships:
        host_id = host.user or host.user_email
        if host_id is None:
            continue
        name = host.user_name or host.user_email or host_id
        technicians.setdefault(host_id, Technician(id=host_id, name=name, email=host.user_email))
    return tuple(technicians.values())
