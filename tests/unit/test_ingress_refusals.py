"""The ingress is the net under the sources: what a source lets through that cannot be held is a 422, never queued."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from appointments.adapters.clock import ManualClock
from appointments.domain.events import BookingDetails, CanonicalEvent, EventKind
from appointments.domain.model import ExternalRef, Technician, TicketRef
from appointments.errors import UnsupportedPayload
from appointments.services.ingress import WebhookIngress
from appointments.sources.base import WebhookRequest
from tests.factories import CATALOG, DANA
from tests.fakes import DictSecrets, RecordingQueue

NOW = datetime(2026, 11, 23, 10, 0, 5, tzinfo=UTC)
TOO_LONG_FOR_A_KEY = "😀" * 300  # 300 characters (an id holds 500), 1200 bytes


class ScriptedSource:
    """A source that takes every signature and parses every body into what ``events`` builds."""

    name = "scripted"

    def __init__(self, events: Callable[[], tuple[CanonicalEvent, ...]]) -> None:
        self._events = events

    def verify(self, request: WebhookRequest, secret: str, now: datetime) -> None:
        return None

    def parse(self, request: WebhookRequest) -> tuple[CanonicalEvent, ...]:
        return self._events()


def an_event(**overrides: Any) -> CanonicalEvent:
    fields: dict[str, Any] = {
        "source": "scripted",
        "delivery_id": "d-1",
        "kind": EventKind.CANCELLED,
        "occurred_at": NOW,
        "entity": "scripted:b-1",
        "external_ref": ExternalRef(system="scripted", id="b-1"),
    }
    fields.update(overrides)
    return CanonicalEvent(**fields)


def refusal(events: Callable[[], tuple[CanonicalEvent, ...]]) -> tuple[UnsupportedPayload, RecordingQueue]:
    queue = RecordingQueue()
    ingress = WebhookIngress(
        {"scripted": ScriptedSource(events)}, DictSecrets({"scripted": "s"}), queue, ManualClock(NOW), CATALOG
    )
    with pytest.raises(UnsupportedPayload) as raised:
        ingress.accept("scripted", WebhookRequest(headers={}, body=b"{}"))
    return raised.value, queue


def test_a_canonical_event_the_source_cannot_build_is_a_422_not_a_500() -> None:
    # Given a source whose ids make an entity longer than an event holds
    refused, queue = refusal(lambda: (an_event(entity="scripted:" + "x" * 200),))
    # Then the delivery is refused naming the event's field, and nothing is queued
    assert (refused.http_status, refused.field) == (422, "event.entity")
    assert queue.events == []


def test_booking_details_the_source_cannot_build_are_a_422() -> None:
    def booking_ending_at_its_start() -> tuple[CanonicalEvent, ...]:
        details = BookingDetails(start=NOW, end=NOW, timezone="UTC", customer=DANA)
        return (an_event(kind=EventKind.SCHEDULED, booking=details),)

    refused, queue = refusal(booking_ending_at_its_start)
    assert refused.field == "event.end"
    assert queue.events == []


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"external_ref": ExternalRef(system="scripted", id=TOO_LONG_FOR_A_KEY)}, "event.external_ref"),
        ({"previous_ref": ExternalRef(system="scripted", id=TOO_LONG_FOR_A_KEY)}, "event.previous_ref"),
        ({"ticket": TicketRef(system="psa", id=TOO_LONG_FOR_A_KEY)}, "event.ticket"),
        (
            {
                "kind": EventKind.ASSIGNED,
                "technicians": tuple(Technician(id=f"t-{i}", name="T") for i in range(21)),
            },
            "event.technicians",
        ),
    ],
    ids=["external-ref", "previous-ref", "ticket", "21-technicians"],
)
def test_an_event_the_store_cannot_hold_is_refused_and_nothing_of_the_delivery_is_queued(
    overrides: dict[str, Any], field: str
) -> None:
    # Given a delivery of a good event followed by one the store cannot hold
    refused, queue = refusal(lambda: (an_event(delivery_id="d-0"), an_event(**overrides)))
    # Then it is refused naming the field, and not even the good event is queued
    assert (refused.http_status, refused.field) == (422, field)
    assert queue.events == []


def test_a_booking_ticket_the_store_cannot_key_on_is_refused() -> None:
    def booking_with_long_ticket() -> tuple[CanonicalEvent, ...]:
        # model_construct: a source's bug that skipped BookingDetails' own checks
        details = BookingDetails.model_construct(
            start=NOW,
            end=NOW + timedelta(minutes=30),
            timezone="UTC",
            customer=DANA,
            ticket=TicketRef(system="psa", id=TOO_LONG_FOR_A_KEY),
        )
        return (an_event(kind=EventKind.SCHEDULED, booking=details),)

    refused, queue = refusal(booking_with_long_ticket)
    assert refused.field == "event.booking.ticket"
    assert queue.events == []
