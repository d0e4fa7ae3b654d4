"""Canonical events: what every vendor's webhook is translated into before it is queued.

A source module verifies a vendor's request and parses it into these; the event processor applies
them to appointments. Nothing here knows a vendor's payload shape.
"""

from __future__ import annotations

import functools
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, TypeAdapter, ValidationInfo, field_validator
from pydantic_core import to_json

from appointments.domain.model import (
    Answer,
    CancelledBy,
    Customer,
    ExternalRef,
    Frozen,
    Links,
    NonEmpty,
    Stamp,
    Technician,
    TicketRef,
    TimeZoneName,
    UtcDatetime,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from datetime import datetime


class EventKind(StrEnum):
    REQUESTED = "appointment.requested"  # a time proposed, awaiting confirmation
    SCHEDULED = "appointment.scheduled"  # booked at a fixed time (or a requested one confirmed)
    RESCHEDULED = "appointment.rescheduled"  # a new time; ``previous_ref`` names the booking it replaces
    RESCHEDULE_REQUESTED = "appointment.reschedule_requested"  # the host asked the customer to pick a new time
    SUPERSEDED = "appointment.superseded"  # the first half of a two-event reschedule: never a cancellation
    ASSIGNED = "appointment.assigned"  # technicians replace the list; empty = unassigned
    CHECKED_IN = "appointment.checked_in"
    COMPLETED = "appointment.completed"
    NO_SHOW = "appointment.no_show"
    NO_SHOW_CLEARED = "appointment.no_show_cleared"  # a no-show mark taken back
    CANCELLED = "appointment.cancelled"
    REJECTED = "appointment.rejected"  # the host declined a requested booking
    TICKET_COMPLETED = "ticket.completed"  # PSA ticket COMPLETE: cancel its future appointments, complete past ones
    TICKET_NO_SHOW = "ticket.no_show"  # PSA ticket moved to the configured NO-SHOW status
    TICKET_ASSIGNED = "ticket.assigned"  # PSA ticket's assigned resource changed


# What an appointment can hold, so that a booking the ingress accepts is one the processor and the store take.
MAX_TECHNICIANS = 20  # as the ops API
MAX_ANSWERS = 50  # each at most 500 + 5000 characters (``Answer``)
MAX_ANSWERS_BYTES = 64 * 1024  # all answers, as JSON in UTF-8
MAX_METADATA_KEYS = 50
MAX_METADATA_BYTES = 16 * 1024  # as JSON in UTF-8
MAX_METADATA_DEPTH = 16  # nested lists and objects: JSON serialisers give up some 250 levels down
# A ref's or ticket's system and id together, in UTF-8: the store keys on them (``REF#<system>#<id>``,
# ``TICKET#<system>#<id>``) and a DynamoDB key must stay within 1024 bytes, prefix included. Counted in
# bytes, not characters: 500 characters of 4-byte UTF-8 would be 2000 bytes.
MAX_KEY_ID_BYTES = 1000


def json_bytes(value: object) -> int:
    """The size of ``value`` as the queue and the store hold it: compact JSON in UTF-8."""
    return len(to_json(value))


def fits_a_key(system: str, id_: str) -> bool:
    return len(system.encode()) + len(id_.encode()) <= MAX_KEY_ID_BYTES


def nesting_depth(value: object, *, limit: int = MAX_METADATA_DEPTH) -> int:
    """How deep lists and objects nest in ``value`` (a scalar is 0), counted up to ``limit + 1`` only."""
    deepest = 0
    pending: list[tuple[object, int]] = [(value, 0)]
    while pending and deepest <= limit:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list | tuple) else None
        if children is not None:
            deepest = max(deepest, depth + 1)
            pending.extend((child, depth + 1) for child in children)
    return deepest


def kept_answers(answers: Iterable[Answer]) -> tuple[Answer, ...]:
    """The answers an appointment can hold, in order: at most ``MAX_ANSWERS`` within ``MAX_ANSWERS_BYTES``.

    For a vendor's questionnaire, where clipping keeps the booking: an answer that would not fit is left out.
    """
    kept: list[Answer] = []
    size = 2  # the brackets of the JSON array
    for answer in answers:
        if len(kept) == MAX_ANSWERS:
            break
        added = json_bytes(answer) + 1  # and its comma
        if size + added <= MAX_ANSWERS_BYTES:
            kept.append(answer)
            size += added
    return tuple(kept)


def kept_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The metadata an appointment can hold, in order: at most ``MAX_METADATA_KEYS`` within ``MAX_METADATA_BYTES``.

    For a vendor's metadata, where clipping keeps the booking: an entry that would not fit is left out.
    """
    kept: dict[str, Any] = {}
    size = 2  # the braces of the JSON object
    for key, value in metadata.items():
        if len(kept) == MAX_METADATA_KEYS:
            break
        if nesting_depth(value) >= MAX_METADATA_DEPTH:  # the metadata object itself is one level
            continue
        added = json_bytes(key) + 1 + json_bytes(value) + 1  # "key":value,
        if size + added <= MAX_METADATA_BYTES:
            kept[key] = value
            size += added
    return kept


class BookingDetails(Frozen):
    """What a booking says about the appointment; absent fields are unknown, not empty.

    Bounded as an appointment is (end after start, the lists and sizes above), so that every source
    refuses or clips at the door what the processor or the store would refuse later.
    """

    start: UtcDatetime
    end: UtcDatetime
    timezone: TimeZoneName
    type: Annotated[str, Field(max_length=64)] | None = None  # our type key, when the source names one
    vendor_type: Annotated[str, Field(max_length=200)] | None = None  # the vendor's type (slug, event type)
    customer: Customer
    technicians: Annotated[tuple[Technician, ...], Field(max_length=MAX_TECHNICIANS)] | None = None
    ticket: TicketRef | None = None
    links: Links = Links()
    answers: Annotated[tuple[Answer, ...], Field(max_length=MAX_ANSWERS)] = ()
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, end: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("start")  # absent when the start itself was refused
        if start is not None and end <= start:
            raise ValueError("must be after the start")
        return end

    @field_validator("ticket")
    @classmethod
    def _ticket_fits_a_key(cls, ticket: TicketRef | None) -> TicketRef | None:
        if ticket is not None and not fits_a_key(ticket.system, ticket.id):
            raise ValueError(f"system and id must together be at most {MAX_KEY_ID_BYTES} bytes in UTF-8")
        return ticket

    @field_validator("answers")
    @classmethod
    def _answers_fit(cls, answers: tuple[Answer, ...]) -> tuple[Answer, ...]:
        if json_bytes(answers) > MAX_ANSWERS_BYTES:
            raise ValueError(f"must be at most {MAX_ANSWERS_BYTES // 1024} KiB as JSON")
        return answers

    @field_validator("metadata")
    @classmethod
    def _metadata_fits(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        if len(metadata) > MAX_METADATA_KEYS:
            raise ValueError(f"must have at most {MAX_METADATA_KEYS} keys")
        if nesting_depth(metadata) > MAX_METADATA_DEPTH:
            raise ValueError(f"must nest lists and objects at most {MAX_METADATA_DEPTH} levels deep")
        if json_bytes(metadata) > MAX_METADATA_BYTES:
            raise ValueError(f"must be at most {MAX_METADATA_BYTES // 1024} KiB as JSON")
        return metadata


class CanonicalEvent(Frozen):
    source: NonEmpty  # generic, calcom, calendly, autotask, ...
    delivery_id: Annotated[str, Field(min_length=1, max_length=500)]  # the vendor's dedupe key for this delivery
    kind: EventKind
    occurred_at: UtcDatetime
    # The vendor's own order among events of one entity (Autotask ``SequenceNumber``), where it has one.
    sequence: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None
    # Ordering key: events of one entity are applied in order (the SQS FIFO message group).
    entity: Annotated[str, Field(min_length=1, max_length=128)]
    external_ref: ExternalRef | None = None  # the booking the event is about
    previous_ref: ExternalRef | None = None  # for a reschedule: the booking it replaces
    ticket: TicketRef | None = None  # for ticket events, or the booking's ticket
    booking: BookingDetails | None = None
    technicians: tuple[Technician, ...] | None = None  # for assignment events
    reason: Annotated[str, Field(max_length=2000)] | None = None
    cancelled_by: CancelledBy | None = None

    @property
    def stamp(self) -> Stamp:
        """Where the event stands among the events of its booking: the same whatever order they arrive in."""
        return Stamp(at=self.occurred_at, sequence=self.sequence or 0, tiebreak=self.delivery_id)


# One queue message per entity of a delivery: its one event as an object, or its events in order as an array.
# A delivery's events about one entity then travel (and are applied) all or none: a queue that takes part
# of a batch can never leave half a delivery applied while the vendor is told 503 and may give up retrying.
@functools.cache
def _events_in_order() -> TypeAdapter[list[CanonicalEvent]]:
    return TypeAdapter(list[CanonicalEvent])  # built on the first delivery of several events, not at import


def queue_message(events: Sequence[CanonicalEvent]) -> str:
    """The body of one queue message holding ``events`` (of one entity, in the delivery's order)."""
    if len(events) == 1:
        return events[0].model_dump_json()
    return _events_in_order().dump_json(list(events)).decode()


def events_of_message(body: str | bytes) -> list[CanonicalEvent]:
    """The events of one queue message, in order (``ValidationError`` for a body that is neither shape)."""
    text = body.decode() if isinstance(body, bytes) else body
    if text.lstrip().startswith("["):
        return _events_in_order().validate_json(text)
    return [CanonicalEvent.model_validate_json(text)]


def wait_key_for_ref(ref: ExternalRef) -> str:
    """Where an event about a booking we do not hold yet waits for it."""
    return f"ref#{ref.system}#{ref.id}"


def wait_key_for_ticket(ticket: TicketRef) -> str:
    """Where a PSA ticket event waits for a booking that names its ticket."""
    return f"ticket#{ticket.system}#{ticket.id}"
