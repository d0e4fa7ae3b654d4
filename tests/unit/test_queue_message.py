"""The event queue's message: one entity's events of a delivery, travelling (and applied) together."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from appointments.domain.events import CanonicalEvent, EventKind, events_of_message, queue_message
from appointments.domain.model import ExternalRef, TicketRef

AT = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def ticket_event(delivery: str, kind: EventKind, minutes: int) -> CanonicalEvent:
    return CanonicalEvent(
        source="connectwise",
        delivery_id=delivery,
        kind=kind,
        occurred_at=AT + timedelta(minutes=minutes),
        entity="ticket#connectwise#48213",
        ticket=TicketRef(system="connectwise", id="48213"),
    )


def test_one_event_is_its_own_object_as_before() -> None:
    # Given one event; When it is made a message; Then the body is the event itself (older messages read alike)
    event = ticket_event("d-1", EventKind.TICKET_ASSIGNED, 0)
    body = queue_message([event])
    assert json.loads(body)["delivery_id"] == "d-1"
    assert events_of_message(body) == [event]


def test_several_events_travel_in_order_and_come_back_in_that_order() -> None:
    # Given a delivery's two events about one ticket, the later first in the vendor's body
    events = [ticket_event("d-2", EventKind.TICKET_COMPLETED, 5), ticket_event("d-1", EventKind.TICKET_ASSIGNED, 0)]
    # When they are made one message and read back
    body = queue_message(events)
    # Then it is one array, and the events come back exactly, in the body's order
    assert isinstance(json.loads(body), list)
    assert events_of_message(body.encode()) == events


@pytest.mark.parametrize("body", ["", "{}", "[{}]", '"text"', "[1, 2]"])
def test_a_body_of_neither_shape_is_refused(body: str) -> None:
    with pytest.raises(ValidationError):
        events_of_message(body)


def test_an_external_ref_survives_the_round_trip() -> None:
    event = ticket_event("d-1", EventKind.TICKET_ASSIGNED, 0).model_copy(
        update={"external_ref": ExternalRef(system="generic", id="stf-1")}
    )
    assert events_of_message(queue_message([event, event])) == [event, event]
