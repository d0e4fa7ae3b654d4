"""The TimeZest source: scheduling requests, read by polling (TimeZest sends no webhooks), into canonical events.

A poll returns each changed request as it is now, not what changed, so a request maps to the events that
bring an appointment to that state; replaying one is harmless (the delivery id is the request's id, status
and update time, and the processor merges facts by their stamps).

- ``scheduled`` with a ``selected_start_time``: one ``appointment.scheduled`` carrying the whole booking
  (time, zone, customer, ticket, technicians, ``scheduling_url`` as the reschedule link). A later poll with
  another time is a reschedule of the same appointment (the ``sreq_`` id is its external id).
  Technicians: the ``scheduled_agents`` (who took it; the first is the primary); with none, the agents
  among ``resources``; a request whose resources name only teams is **unassigned** (an empty list), which
  the timed rules then chase (pre-notice, auto-cancel).
- ``cancelled`` or ``closed`` (closed by a workflow, can no longer book) of a request that had a time:
  ``appointment.cancelled`` (closed: by the system).
- ``new`` and ``sent`` (an invitation not answered yet), and a cancelled or closed request that never had a
  time: no event. There is no appointment until the customer picks a time: our ``requested`` status is a
  time proposed and awaiting confirmation, which a TimeZest invitation is not.

The ticket comes from ``associated_entities``: the entity whose type ends in ``ticket``
(``connectwise_psa/service_ticket``, ``autotask/ticket``, ``halo_psa/ticket``), its ``number`` without the
``#``. A request booked through a shareable URL has no ticket at first; the poll that sees the ticket
TimeZest created links it (and releases the PSA events that waited for it).

The end is the start plus the appointment type's ``duration_mins`` (read from ``/appointment_types``);
an unknown type lasts ``DEFAULT_DURATION``. The type id (``apty_…``) is the vendor type the configured
type map turns into our type key.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

from pydantic import BeforeValidator, Field, TypeAdapter, ValidationError

from appointments.domain.events import MAX_TECHNICIANS, BookingDetails, CanonicalEvent, EventKind
from appointments.domain.model import (
    LATEST_YEAR,
    CancelledBy,
    Customer,
    Email,
    ExternalRef,
    Links,
    Technician,
    TicketRef,
    TimeZoneName,
)
from appointments.sources.base import Lenient, clipped

if TYPE_CHECKING:
    from collections.abc import Mapping

SOURCE = "timezest"
DEFAULT_DURATION = timedelta(minutes=30)
_EMAIL: TypeAdapter[str] = TypeAdapter(Email)
_ZONE: TypeAdapter[str] = TypeAdapter(TimeZoneName)
_PSA_SYSTEMS = (("connectwise", "connectwise"), ("autotask", "autotask"), ("halo", "halopsa"))


def _as_text(value: object) -> object:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Text = Annotated[str, BeforeValidator(_as_text), Field(max_length=500)]
# Up to the end of 2199, the latest an appointment may be (``domain.model``), so the end still fits too.
UnixSeconds = Annotated[int, Field(ge=0, le=int(datetime(LATEST_YEAR, 1, 1, tzinfo=UTC).timestamp()) - 1)]
MAX_DURATION_MINUTES = 7 * 24 * 60  # a type longer than a week is a typo: such a booking lasts DEFAULT_DURATION


class Person(Lenient):
    """An agent, or a resource (an agent or a team: ``type``)."""

    id: Annotated[Text, Field(min_length=1)]
    name: Text | None = None
    email: Text | None = None
    type: Text | None = None


class Entity(Lenient):
    type: Text
    id: Annotated[Text, Field(min_length=1, max_length=200)] | None = None
    number: Annotated[str | None, BeforeValidator(_as_text), clipped(100)] = None  # shown, never a key


class SchedulingRequest(Lenient):
    id: Annotated[str, Field(min_length=1, max_length=100)]  # the entity ``timezest:<id>`` holds 128
    status: Text
    appointment_type_id: Text | None = None
    end_user_name: Text | None = None
    end_user_email: Text | None = None
    associated_entities: tuple[Entity, ...] = ()
    resources: tuple[Person, ...] = ()
    scheduled_agents: tuple[Person, ...] = ()
    selected_start_time: UnixSeconds | None = None
    selected_time_zone: Text | None = None
    scheduling_url: Annotated[str, Field(max_length=2000)] | None = None
    updated_at: UnixSeconds

    @property
    def changed_at(self) -> datetime:
        return datetime.fromtimestamp(self.updated_at, UTC)


def events_of(request: SchedulingRequest, durations: Mapping[str, int]) -> tuple[CanonicalEvent, ...]:
    """The events that bring an appointment to what ``request`` says now (see the module's notes)."""
    status = request.status.casefold()
    if request.selected_start_time is None:
        return ()
    if status == "scheduled":
        booking = _booking(request, durations)
        return (_event(request, EventKind.SCHEDULED, booking=booking, ticket=booking.ticket),)
    if status in ("cancelled", "closed"):
        closed = status == "closed"
        reason = "closed in TimeZest" if closed else "cancelled in TimeZest"
        return (_event(request, EventKind.CANCELLED, reason=reason, by=CancelledBy.SYSTEM if closed else None),)
    return ()


def _event(
    request: SchedulingRequest,
    kind: EventKind,
    *,
    booking: BookingDetails | None = None,
    ticket: TicketRef | None = None,
    reason: str | None = None,
    by: CancelledBy | None = None,
) -> CanonicalEvent:
    return CanonicalEvent(
        source=SOURCE,
        # The state it reports, at the time it reports: a later poll of the same change is the same delivery.
        delivery_id=f"{request.id}:{request.status.casefold()}:{request.updated_at}",
        kind=kind,
        occurred_at=request.changed_at,
        entity=f"{SOURCE}:{request.id}",
        external_ref=ExternalRef(system=SOURCE, id=request.id),
        ticket=ticket,
        booking=booking,
        reason=reason,
        cancelled_by=by,
    )


def _booking(request: SchedulingRequest, durations: Mapping[str, int]) -> BookingDetails:
    assert request.selected_start_time is not None  # noqa: S101 - only scheduled requests with a time come here
    start = datetime.fromtimestamp(request.selected_start_time, UTC)
    minutes = durations.get(request.appointment_type_id or "")
    length = timedelta(minutes=minutes) if minutes and 0 < minutes <= MAX_DURATION_MINUTES else DEFAULT_DURATION
    email = _email(request.end_user_email)
    return BookingDetails(
        start=start,
        end=start + length,
        timezone=_zone(request.selected_time_zone),
        vendor_type=request.appointment_type_id,
        customer=Customer(name=request.end_user_name or email or "TimeZest customer", email=email),
        technicians=technicians_of(request),
        ticket=ticket_of(request),
        links=Links(reschedule=request.scheduling_url) if request.scheduling_url else Links(),
    )


def technicians_of(request: SchedulingRequest) -> tuple[Technician, ...]:
    """Who took it, else the agents it was assigned to; only teams (or nobody) = unassigned."""
    people = request.scheduled_agents or tuple(r for r in request.resources if (r.type or "agent") != "team")
    # An appointment holds MAX_TECHNICIANS: a booking is never lost for a crowd, the first ones are kept.
    people = people[:MAX_TECHNICIANS]
    return tuple(
        Technician(id=person.id, name=person.name or person.id, email=_email(person.email), primary=index == 0)
        for index, person in enumerate(people)
    )


def ticket_of(request: SchedulingRequest) -> TicketRef | None:
    for entity in request.associated_entities:
        kind = entity.type.casefold()
        if not kind.endswith("ticket") or entity.id is None:
            continue
        system = next((ours for theirs, ours in _PSA_SYSTEMS if theirs in kind.split("/")[0]), None)
        if system is not None:
            number = entity.number.lstrip("#") or None if entity.number else None
            return TicketRef(system=system, id=entity.id, number=number)
    return None


def _email(value: str | None) -> str | None:
    """An address we can write to, or none: a mistyped address must not cost the booking."""
    if not value:
        return None
    try:
        return _EMAIL.validate_python(value.strip())
    except ValidationError:
        return None


def _zone(value: str | None) -> str:
    """The customer's zone; UTC when TimeZest sends none or one we do not know (the times stay right)."""
    try:
        return _ZONE.validate_python(value) if value else "UTC"
    except ValidationError:
        return "UTC"
