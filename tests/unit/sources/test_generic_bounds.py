"""The generic source refuses, naming the field, whatever an appointment or the store could not hold.

The format is ours: nothing is clipped, so a sender learns at once what to fix.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from appointments.domain.events import EventKind
from appointments.errors import UnsupportedPayload
from appointments.sources.base import WebhookRequest
from appointments.sources.generic import GenericSource
from tests.signing import sample

SOURCE = GenericSource()


def body_with(*, kind: str = "scheduled", **appointment: Any) -> bytes:
    document = json.loads(sample("generic/appointment_scheduled.json"))
    document["type"] = f"appointment.{kind}"
    document["appointment"].update(appointment)
    return json.dumps(document).encode()


def technicians(count: int) -> list[dict[str, str]]:
    return [{"id": f"t-{i}", "name": f"Tech {i}"} for i in range(count)]


def refusal(body: bytes) -> UnsupportedPayload:
    with pytest.raises(UnsupportedPayload) as raised:
        SOURCE.parse(WebhookRequest(headers={}, body=body))
    assert raised.value.http_status == 422
    return raised.value


@pytest.mark.parametrize("end", ["2026-11-23T15:00:00Z", "2026-11-23T14:30:00Z", "2026-11-23T10:00:00-05:00"])
def test_a_booking_that_ends_before_it_starts_is_refused_naming_appointment_end(end: str) -> None:
    # Given a booking starting at 15:00 UTC whose end is not after it (the last is 15:00 UTC too)
    body = body_with(start="2026-11-23T15:00:00Z", end=end)
    # When it is parsed, Then it is refused naming the field
    assert refusal(body).field == "appointment.end"


@pytest.mark.parametrize("kind", ["scheduled", "requested", "rescheduled"])
def test_more_than_twenty_technicians_are_refused_for_a_booking(kind: str) -> None:
    assert refusal(body_with(kind=kind, technicians=technicians(21))).field == "appointment.technicians"


def test_more_than_twenty_technicians_are_refused_for_an_assignment() -> None:
    assert refusal(body_with(kind="assigned", technicians=technicians(21))).field == "appointment.technicians"


def test_twenty_technicians_are_taken() -> None:
    [event] = SOURCE.parse(WebhookRequest(headers={}, body=body_with(kind="assigned", technicians=technicians(20))))
    assert event.kind is EventKind.ASSIGNED
    assert len(event.technicians or ()) == 20


def test_an_external_id_whose_entity_would_not_fit_is_refused_naming_it() -> None:
    # Given an id of 121 characters: "generic:" and the id would be 129, one more than an entity holds
    assert refusal(body_with(external_id="x" * 121)).field == "appointment.external_id"


def test_the_longest_external_id_is_taken_and_fits_the_entity() -> None:
    # Given an id of 120 characters, each four bytes in UTF-8
    [event] = SOURCE.parse(WebhookRequest(headers={}, body=body_with(external_id="😀" * 120)))
    # Then the entity is as long as it may be, and the ref is the whole id
    assert len(event.entity) == 128
    assert event.external_ref is not None and event.external_ref.id == "😀" * 120


def test_an_event_id_over_200_characters_is_refused_naming_it() -> None:
    document = json.loads(sample("generic/appointment_scheduled.json"))
    document["event_id"] = "e" * 201
    assert refusal(json.dumps(document).encode()).field == "event_id"


@pytest.mark.parametrize("kind", ["scheduled", "cancelled"])
def test_a_ticket_too_long_for_a_store_key_is_refused_naming_it(kind: str) -> None:
    # Given a ticket id of 500 characters that is 2000 bytes in UTF-8 (each within TicketRef's 500 characters)
    ticket = {"system": "autotask", "id": "😀" * 500}
    # When it comes with a booking or any other event, Then it is refused naming the ticket
    assert refusal(body_with(kind=kind, ticket=ticket)).field == "appointment.ticket"


def test_a_ticket_of_500_ascii_characters_is_taken() -> None:
    [event] = SOURCE.parse(WebhookRequest(headers={}, body=body_with(ticket={"system": "psa", "id": "9" * 500})))
    assert event.ticket is not None and len(event.ticket.id) == 500
