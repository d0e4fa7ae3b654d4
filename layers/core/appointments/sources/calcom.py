"""The Cal.com source: booking webhooks (payload version 2021-10-20) into canonical events.

Signed with ``X-Cal-Signature-256: <hex HMAC-SHA256(secret, raw body)>``. Cal.com sends no timestamp,
so there is no freshness check, and no delivery id, so a delivery is told apart by trigger, booking
and ``createdAt``. Handled: BOOKING_CREATED, BOOKING_REQUESTED, BOOKING_RESCHEDULED, BOOKING_CANCELLED
(with ``requestReschedule``: the host asks for a new time), BOOKING_REJECTED, BOOKING_NO_SHOW_UPDATED.
Deliberately ignored (no event, answered 2xx once the signature passed, whatever the body's shape): BOOKING_PAID,
BOOKING_PAYMENT_INITIATED, MEETING_STARTED, MEETING_ENDED, AFTER_HOSTS_CAL_VIDEO_NO_SHOW and
AFTER_GUESTS_CAL_VIDEO_NO_SHOW (Cal Video only, and known to misfire), RECORDING_READY,
RECORDING_TRANSCRIPTION_GENERATED, INSTANT_MEETING, FORM_SUBMITTED, FORM_SUBMITTED_NO_EVENT, OOO_CREATED,
PING, and any trigger Cal.com adds later. Only ``triggerEvent`` of those is read: they do not share the booking
envelope. MEETING_STARTED and MEETING_ENDED, for one, are sent flat, ``{"triggerEvent", ...booking}`` with no
``payload`` and no ``createdAt`` (cal.com ``packages/features/webhooks/lib/scheduleTrigger.ts``), and a Cal.com
instance's custom payload template may shape any of them as it likes.

A booking is never dropped for what the questionnaire or the team holds: beyond what an appointment keeps,
hosts are clipped to the first 20 (the organizer first), answers to the first 50 within 64 KiB, metadata
to the first 50 keys within 16 KiB and 16 levels of nesting, and a phone number too long to be one is left
out. What cannot be a booking is refused with a 422 naming the field: ``payload.endTime`` not after
``payload.startTime``, a ``uid`` over 120 characters (``calcom:<uid>`` is the event's entity, at most 128),
a name over 500 characters, an email that is not one.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, ValidationError

from appointments.domain.events import (
    MAX_TECHNICIANS,
    BookingDetails,
    CanonicalEvent,
    EventKind,
    kept_answers,
    kept_metadata,
)
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
from appointments.errors import InvalidSignature, UnsupportedPayload
from appointments.sources.base import (
    Lenient,
    Reason,
    WebhookRequest,
    booking_event,
    clipped,
    constant_time_equal,
    hmac_hex,
    load_json_object,
    validated,
)

if TYPE_CHECKING:
    from datetime import datetime

SIGNATURE_HEADER = "X-Cal-Signature-256"
# What Cal.com puts in the signature header of a webhook that has no secret.
UNSIGNED_MARKER = "no-secret-provided"
_PHONE_FIELD = "attendeePhoneNumber"
# Booking-form fields that become the customer's name, email and phone rather than answers.
_CUSTOMER_FIELDS = frozenset({"name", "email", _PHONE_FIELD})
_PHONE_MAX_CHARS = 50  # Customer.phone
_ANSWER_MAX_CHARS = 5000  # Answer.answer
_ANSWER_MAX_DEPTH = 8  # lists and objects in an answer's value: deeper ones are no answer a person gave
# Where a field of the booking details comes from, to name it when the details are refused.
_BOOKING_FIELDS = {"start": "payload.startTime", "end": "payload.endTime"}


Uid = Annotated[str, Field(min_length=1, max_length=120)]  # "calcom:<uid>" must fit an event's entity (128)


# The triggers turned into events; every other one is acknowledged and ignored, whatever its body holds.
HANDLED_TRIGGERS = frozenset(
    {
        "BOOKING_CREATED",
        "BOOKING_REQUESTED",
        "BOOKING_RESCHEDULED",
        "BOOKING_CANCELLED",
        "BOOKING_REJECTED",
        "BOOKING_NO_SHOW_UPDATED",
    }
)


class _Trigger(Lenient):
    triggerEvent: str


class _Envelope(_Trigger):
    createdAt: UtcDatetime
    payload: dict[str, Any]


class _Person(Lenient):
    id: Annotated[int, Field(ge=-(2**63), le=2**63 - 1)] | None = None  # Cal.com's user id, for hosts
    name: Annotated[str, Field(max_length=500)] = ""  # "" for a user who never set a name
    email: Email
    timeZone: TimeZoneName | None = None
    phoneNumber: str | None = None


class _Team(Lenient):
    members: tuple[_Person, ...] = ()


class _Response(Lenient):
    label: Annotated[str | None, clipped(500)] = None
    value: Any = None  # text, number, boolean, list (checkboxes, guests) or {value, optionValue} (location)


class _Booking(Lenient):
    uid: Uid
    status: str | None = None
    type: Annotated[str, Field(max_length=200)] | None = None  # the event type's slug
    startTime: UtcDatetime
    endTime: UtcDatetime
    organizer: _Person
    attendees: Annotated[tuple[_Person, ...], Field(min_length=1)]
    team: _Team | None = None
    responses: dict[Annotated[str, Field(min_length=1, max_length=500)], _Response] | None = None
    metadata: dict[str, Any] | None = None


class _Reschedule(_Booking):
    rescheduleUid: Uid  # the booking this one replaces


class _Contact(Lenient):
    email: str | None = None


class _Decision(Lenient):
    """A cancellation or rejection. The whole booking comes along, but only the uid and the why are needed."""

    uid: Uid
    organizer: _Contact = _Contact()
    cancelledBy: str | None = None  # the email of whoever cancelled
    cancellationReason: Reason = None
    requestReschedule: bool = False
    rejectionReason: Reason = None


class _NoShowMark(Lenient):
    email: str | None = None
    noShow: bool


class _NoShowUpdate(Lenient):
    bookingUid: Uid
    attendees: Annotated[tuple[_NoShowMark, ...], Field(min_length=1)]


class CalcomSource:
    name = "calcom"

    def __init__(self, booking_base_url: str | None = None) -> None:
        # Cal.com sends no reschedule or cancel links: they are built from the booking site's address.
        self._booking_base_url = booking_base_url.rstrip("/") if booking_base_url else None

    def verify(self, request: WebhookRequest, secret: str, now: datetime) -> None:
        signature = request.header(SIGNATURE_HEADER)
        if not secret or not signature or signature == UNSIGNED_MARKER:
            raise InvalidSignature
        if not constant_time_equal(hmac_hex(secret, request.body), signature):
            raise InvalidSignature

    def parse(self, request: WebhookRequest) -> tuple[CanonicalEvent, ...]:
        document = load_json_object(request.body)
        # The trigger alone decides: an ignored trigger's body need not be the booking envelope.
        if validated(_Trigger, document).triggerEvent not in HANDLED_TRIGGERS:
            return ()
        envelope = validated(_Envelope, document)
        event = self._translate(envelope)
        return () if event is None else (event,)

    def _translate(self, envelope: _Envelope) -> CanonicalEvent | None:
        payload = envelope.payload
        event = functools.partial(booking_event, self.name, envelope.triggerEvent, envelope.createdAt)
        match envelope.triggerEvent:
            case "BOOKING_CREATED" | "BOOKING_REQUESTED":
                booking = validated(_Booking, payload, prefix="payload")
                # A booking awaiting the host's confirmation may also be announced as created, but PENDING.
                awaiting = envelope.triggerEvent == "BOOKING_REQUESTED" or booking.status == "PENDING"
                kind = EventKind.REQUESTED if awaiting else EventKind.SCHEDULED
                return event(kind, booking.uid, booking=self._details(booking))
            case "BOOKING_RESCHEDULED":
                new = validated(_Reschedule, payload, prefix="payload")
                details = self._details(new)
                return event(EventKind.RESCHEDULED, new.uid, previous_id=new.rescheduleUid, booking=details)
            case "BOOKING_CANCELLED":
                cancellation = validated(_Decision, payload, prefix="payload")
                reason = cancellation.cancellationReason
                # "Request reschedule" arrives as a cancellation, but the host is asking the customer for a new time.
                if cancellation.requestReschedule:
                    return event(EventKind.RESCHEDULE_REQUESTED, cancellation.uid, reason=reason)
                by = _cancelled_by(cancellation)
                return event(EventKind.CANCELLED, cancellation.uid, reason=reason, cancelled_by=by)
            case "BOOKING_REJECTED":
                rejection = validated(_Decision, payload, prefix="payload")
                return event(EventKind.REJECTED, rejection.uid, reason=rejection.rejectionReason)
            case "BOOKING_NO_SHOW_UPDATED":
                update = validated(_NoShowUpdate, payload, prefix="payload")
                marked = any(attendee.noShow for attendee in update.attendees)
                kind = EventKind.NO_SHOW if marked else EventKind.NO_SHOW_CLEARED
                return event(kind, update.bookingUid)
        return None

    def _details(self, booking: _Booking) -> BookingDetails:
        customer = booking.attendees[0]
        timezone = customer.timeZone or booking.organizer.timeZone
        if timezone is None:
            raise UnsupportedPayload("payload.attendees.0.timeZone", "is required when the organizer has none")
        try:
            return BookingDetails(
                start=booking.startTime,
                end=booking.endTime,
                timezone=timezone,
                vendor_type=booking.type,
                customer=Customer(name=customer.name or customer.email, email=customer.email, phone=_phone(booking)),
                technicians=_technicians(booking)[:MAX_TECHNICIANS],
                links=self._links(booking.uid),
                answers=kept_answers(_answers(booking.responses or {})),
                metadata=kept_metadata(booking.metadata or {}),
            )
        except ValidationError as error:
            first = error.errors(include_input=False, include_url=False)[0]
            location = str(first["loc"][0]) if first["loc"] else ""
            raise UnsupportedPayload(_BOOKING_FIELDS.get(location, "payload"), first["msg"]) from None

    def _links(self, uid: str) -> Links:
        base = self._booking_base_url
        if base is None:
            return Links()
        return Links(reschedule=f"{base}/reschedule/{uid}", cancel=f"{base}/booking/{uid}?cancel=true")


def _cancelled_by(cancellation: _Decision) -> CancelledBy:
    """The organizer cancelling is our side; anyone else (an attendee, or nobody named) is the customer."""
    canceller = (cancellation.cancelledBy or "").casefold()
    organizer = (cancellation.organizer.email or "").casefold()
    return CancelledBy.OPS if canceller and canceller == organizer else CancelledBy.CUSTOMER


def _technicians(booking: _Booking) -> tuple[Technician, ...]:
    technicians: dict[str, Technician] = {}
    for host in (booking.organizer, *(booking.team.members if booking.team else ())):
        host_id = str(host.id) if host.id is not None else host.email
        # setdefault: the organizer may be listed among the team members as well.
        technicians.setdefault(host_id, Technician(id=host_id, name=host.name or host.email, email=host.email))
    return tuple(technicians.values())


def _phone(booking: _Booking) -> str | None:
    answer = (booking.responses or {}).get(_PHONE_FIELD)
    for candidate in (booking.attendees[0].phoneNumber, answer.value if answer else None):
        phone = candidate.strip() if isinstance(candidate, str) else ""
        # Cal.com checks numbers when booking; anything too long to be one is left out rather than refused.
        if 0 < len(phone) <= _PHONE_MAX_CHARS:
            return phone
    return None


def _answers(responses: dict[str, _Response]) -> tuple[Answer, ...]:
    answers = []
    for field, response in responses.items():
        text = _text(response.value)
        if text and field not in _CUSTOMER_FIELDS:
            answers.append(Answer(question=response.label or field, answer=text[:_ANSWER_MAX_CHARS]))
    return tuple(answers)


def _text(value: object, depth: int = 0) -> str:
    if isinstance(value, list | dict) and depth == _ANSWER_MAX_DEPTH:
        return ""
    if isinstance(value, list):
        return ", ".join(text for item in value if (text := _text(item, depth + 1)))
    if isinstance(value, dict):  # a location: the kind chosen, and the address or number typed for it
        return _text(value.get("optionValue") or value.get("value"), depth + 1)
    return "" if value is None else str(value).strip()
