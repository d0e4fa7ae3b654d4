"""Random event streams of one appointment, shaped as each source really sends them (hypothesis strategies).

Each stream starts from a booking and adds what its source can say afterwards: reschedules (Cal.com and
Calendly as chains of new booking ids naming the one they replace), assignments, check-ins, no-shows
and their clearing, completions, reschedule requests, cancellations and rejections, and the PSA
ticket's own events. Times are drawn from a small pool so that ties happen and the tie-break is tested.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from appointments.domain.events import BookingDetails, CanonicalEvent, EventKind
from appointments.domain.model import CancelledBy, Customer, ExternalRef, Technician, TicketRef

EVENTS_FROM = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)  # every event happens in the days before any start
STARTS_FROM = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
AFTER_EVERY_START = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
PEOPLE = [Technician(id=f"t-{n}", name=f"Tech {n}") for n in range(1, 5)]
CUSTOMERS = ["Dana Reyes", "Ana Silva", "Lee Park"]
SOURCES = ("generic", "calcom", "calendly", "autotask")

_moments = st.integers(min_value=0, max_value=40).map(lambda n: EVENTS_FROM + timedelta(minutes=7 * n))


@st.composite
def _booking(draw: st.DrawFn, *, with_technicians: bool = True) -> BookingDetails:
    start = STARTS_FROM + timedelta(hours=draw(st.integers(min_value=0, max_value=200)))
    technicians = draw(st.none() | st.lists(st.sampled_from(PEOPLE), max_size=2, unique=True).map(tuple))
    return BookingDetails(
        start=start,
        end=start + timedelta(minutes=draw(st.sampled_from([30, 45, 60]))),
        timezone="America/New_York",
        type="remote_call_in",
        customer=Customer(name=draw(st.sampled_from(CUSTOMERS)), email="customer@example.com"),
        technicians=technicians if with_technicians else None,
        ticket=None,
    )


@st.composite
def stream(draw: st.DrawFn, source: str, key: str) -> list[CanonicalEvent]:
    """One appointment's events from ``source``; ``key`` makes its ids unique within a test run."""
    draw_source = {"generic": _generic, "calcom": _chained, "calendly": _chained, "autotask": _with_ticket}
    return draw(draw_source[source](source, key))


def streams(key: str) -> st.SearchStrategy[list[CanonicalEvent]]:
    return st.sampled_from(SOURCES).flatmap(lambda source: stream(source, key))


def _event(source: str, entity: str, n: int, kind: EventKind, at: datetime, **fields: Any) -> CanonicalEvent:
    return CanonicalEvent(
        source=source, delivery_id=f"{entity}#{n}#{kind}", kind=kind, occurred_at=at, entity=entity, **fields
    )


_LATER_KINDS = [
    EventKind.RESCHEDULED,
    EventKind.ASSIGNED,
    EventKind.CHECKED_IN,
    EventKind.COMPLETED,
    EventKind.NO_SHOW,
    EventKind.CANCELLED,
]


@st.composite
def _generic(draw: st.DrawFn, source: str, key: str) -> list[CanonicalEvent]:
    external_id = f"{key}-g"
    ref = ExternalRef(system=source, id=external_id)
    entity = f"{source}:{external_id}"
    first = EventKind.REQUESTED if draw(st.booleans()) else EventKind.SCHEDULED
    events = [_event(source, entity, 0, first, draw(_moments), external_ref=ref, booking=draw(_booking()))]
    for n, kind in enumerate(draw(st.lists(st.sampled_from(_LATER_KINDS), max_size=7)), start=1):
        at = draw(_moments)
        if kind is EventKind.RESCHEDULED:
            events.append(_event(source, entity, n, kind, at, external_ref=ref, booking=draw(_booking())))
        elif kind is EventKind.ASSIGNED:
            technicians = tuple(draw(st.lists(st.sampled_from(PEOPLE), max_size=2, unique=True)))
            events.append(_event(source, entity, n, kind, at, external_ref=ref, technicians=technicians))
        elif kind is EventKind.CANCELLED:
            by = draw(st.sampled_from(list(CancelledBy)))
            events.append(_event(source, entity, n, kind, at, external_ref=ref, cancelled_by=by, reason="r"))
        else:
            events.append(_event(source, entity, n, kind, at, external_ref=ref))
    return events


@st.composite
def _chained(draw: st.DrawFn, source: str, key: str) -> list[CanonicalEvent]:
    """Cal.com and Calendly: every reschedule is a new booking id naming the one it replaces."""
    ids = [f"{key}-{source}-{n}" for n in range(draw(st.integers(min_value=1, max_value=4)))]
    refs = [ExternalRef(system=source, id=i) for i in ids]
    events = []
    for n, ref in enumerate(refs):
        previous = refs[n - 1] if n else None
        kind = (
            EventKind.RESCHEDULED if previous else (EventKind.REQUESTED if draw(st.booleans()) else EventKind.SCHEDULED)
        )
        entity = f"{source}:{(previous or ref).id}"
        at = draw(_moments)
        events.append(
            _event(source, entity, n, kind, at, external_ref=ref, previous_ref=previous, booking=draw(_booking()))
        )
        if previous is not None and source == "calendly" and draw(st.booleans()):
            # Calendly's first half of a reschedule: the old invitee "cancelled", rescheduled: never a cancellation.
            events.append(_event(source, f"{source}:{previous.id}", n, EventKind.SUPERSEDED, at, external_ref=previous))
    later = [EventKind.CANCELLED, EventKind.REJECTED, EventKind.NO_SHOW, EventKind.NO_SHOW_CLEARED]
    later += [EventKind.RESCHEDULE_REQUESTED]
    for n, kind in enumerate(draw(st.lists(st.sampled_from(later), max_size=4)), start=len(refs)):
        ref = draw(st.sampled_from(refs))
        entity = f"{source}:{ref.id}"
        fields: dict[str, Any] = {"external_ref": ref}
        if kind is EventKind.CANCELLED:
            fields.update(cancelled_by=draw(st.sampled_from([CancelledBy.CUSTOMER, CancelledBy.OPS])), reason="r")
        events.append(_event(source, entity, n, kind, draw(_moments), **fields))
    return events


@st.composite
def _with_ticket(draw: st.DrawFn, source: str, key: str) -> list[CanonicalEvent]:
    """A booking (generic) against a PSA ticket, and the ticket's own events from Autotask."""
    ticket = TicketRef(system="autotask", id=f"{key}-t")
    booking_events = draw(_generic("generic", key))
    booking_events = [
        e.model_copy(update={"booking": e.booking.model_copy(update={"ticket": ticket})}) if e.booking else e
        for e in booking_events
    ]
    entity = f"autotask:ticket:{ticket.id}"
    events = list(booking_events)
    kinds = [EventKind.TICKET_ASSIGNED, EventKind.TICKET_NO_SHOW, EventKind.TICKET_COMPLETED]
    for n, kind in enumerate(draw(st.lists(st.sampled_from(kinds), max_size=4))):
        sequence = draw(st.integers(min_value=0, max_value=50))
        at = draw(_moments)
        fields: dict[str, Any] = {"ticket": ticket, "sequence": sequence}
        if kind is EventKind.TICKET_ASSIGNED:
            fields["technicians"] = tuple(draw(st.lists(st.sampled_from(PEOPLE), max_size=1)))
        if kind is EventKind.TICKET_COMPLETED and draw(st.booleans()):
            at = AFTER_EVERY_START  # completed after the work: never ambiguous about which start it followed
        events.append(_event(source, entity, n, kind, at, **fields))
    return events


@st.composite
def deliveries(draw: st.DrawFn, events: list[CanonicalEvent]) -> list[CanonicalEvent]:
    """The events in any order, some delivered more than once."""
    repeated = draw(st.lists(st.sampled_from(events), max_size=max(1, len(events) // 3)))
    return draw(st.permutations([*events, *repeated]))
