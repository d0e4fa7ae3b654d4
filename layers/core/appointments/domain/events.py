"""Canonical events: what every vendor's webhook is translated into before it is queued.

A source module verifies a vendor's request and parses it into these; the event processor applies
them to appointments. Nothing here knows a vendor's payload shape.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field

from appointments.domain.model import (
    Answer,
    CancelledBy,
    Customer,
    ExternalRef,
    Frozen,
    Links,
    NonEmpty,
    Technician,
    TicketRef,
    TimeZoneName,
    UtcDatetime,
)


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


class BookingDetails(Frozen):
    """What a booking says about the appointment; absent fields are unknown, not empty."""

    start: UtcDatetime
    end: UtcDatetime
    timezone: TimeZoneName
    type: Annotated[str, Field(max_length=64)] | None = None  # our type key, when the source names one
    vendor_type: Annotated[str, Field(max_length=200)] | None = None  # the vendor's type (slug, event type)
    customer: Customer
    technicians: tuple[Technician, ...] | None = None
    ticket: TicketRef | None = None
    links: Links = Links()
    answers: tuple[Answer, ...] = ()
    metadata: dict[str, Any] = Field(default_factory=dict)


class CanonicalEvent(Frozen):
    source: NonEmpty  # generic, calcom, calendly, autotask, ...
    delivery_id: Annotated[str, Field(min_length=1, max_length=500)]  # the vendor's dedupe key for this delivery
    kind: EventKind
    occurred_at: UtcDatetime
    # Ordering key: events of one entity are applied in order (the SQS FIFO message group).
    entity: Annotated[str, Field(min_length=1, max_length=128)]
    external_ref: ExternalRef | None = None  # the booking the event is about
    previous_ref: ExternalRef | None = None  # for a reschedule: the booking it replaces
    ticket: TicketRef | None = None  # for ticket events, or the booking's ticket
    booking: BookingDetails | None = None
    technicians: tuple[Technician, ...] | None = None  # for assignment events
    reason: Annotated[str, Field(max_length=2000)] | None = None
    cancelled_by: CancelledBy | None = None
