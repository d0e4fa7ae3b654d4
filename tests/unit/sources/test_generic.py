"""The generic source: signature scheme, freshness, and the canonical JSON of DESIGN §6."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from appointments.domain.events import EventKind
from appointments.domain.model import CancelledBy, ExternalRef, TicketRef
from appointments.errors import InvalidSignature, MalformedPayload, UnsupportedPayload
from appointments.sources.base import WebhookRequest
from appointments.sources.generic import GenericSource
from tests.signing import sample, timestamped_signature

SECRET = "whsec_generic_test"
NOW = datetime(2026, 11, 23, 10, 0, 5, tzinfo=UTC)
SOURCE = GenericSource()


def signed(body: bytes, *, at: datetime = NOW, secret: str = SECRET) -> WebhookRequest:
    return WebhookRequest(headers={"x-signature": timestamped_signature(secret, body, at)}, body=body)


def test_a_signed_fresh_request_verifies() -> None:
    body = sample("generic/appointment_scheduled.json")
    SOURCE.verify(signed(body), SECRET, NOW)


@pytest.mark.parametrize("offset", [timedelta(minutes=5), -timedelta(minutes=5)])
def test_the_tolerance_is_five_minutes_either_way(offset: timedelta) -> None:
    body = sample("generic/appointment_scheduled.json")
    SOURCE.verify(signed(body, at=NOW + offset), SECRET, NOW)


@pytest.mark.parametrize(
    "request_of",
    [
        pytest.param(lambda b: signed(b, at=NOW - timedelta(minutes=5, seconds=1)), id="stale"),
        pytest.param(lambda b: signed(b, at=NOW + timedelta(minutes=5, seconds=1)), id="from-the-future"),
        pytest.param(lambda b: signed(b, secret="another secret"), id="wrong-secret"),
        pytest.param(lambda b: WebhookRequest(headers={}, body=b), id="missing-header"),
        pytest.param(lambda b: WebhookRequest(headers={"x-signature": "v1=abc"}, body=b), id="no-timestamp"),
        pytest.param(lambda b: WebhookRequest(headers={"x-signature": "t=abc,v1=abc"}, body=b), id="bad-timestamp"),
        pytest.param(
            lambda b: WebhookRequest(headers=signed(b).headers, body=b.replace(b"15:00", b"16:00")), id="tampered"
        ),
    ],
)
def test_a_bad_signature_is_refused(request_of) -> None:
    body = sample("generic/appointment_scheduled.json")
    with pytest.raises(InvalidSignature) as raised:
        SOURCE.verify(request_of(body), SECRET, NOW)
    assert raised.value.http_status == 401
    assert raised.value.message == "the request signature is missing or not valid"


def test_an_empty_secret_never_verifies() -> None:
    body = sample("generic/appointment_scheduled.json")
    with pytest.raises(InvalidSignature):
        SOURCE.verify(signed(body, secret=""), "", NOW)


def test_one_of_several_signatures_may_match_during_a_secret_rotation() -> None:
    body = sample("generic/appointment_scheduled.json")
    good = timestamped_signature(SECRET, body, NOW).split(",")[1]
    header = f"t={int(NOW.timestamp())},v1={'0' * 64},{good}"
    SOURCE.verify(WebhookRequest(headers={"x-signature": header}, body=body), SECRET, NOW)


def test_a_scheduled_booking_becomes_one_canonical_event() -> None:
    [event] = SOURCE.parse(signed(sample("generic/appointment_scheduled.json")))
    assert event.kind is EventKind.SCHEDULED
    assert (event.source, event.delivery_id) == ("generic", "evt_01JDQ3F8ZB6W2Y1N7T5K4M9H2C")
    assert event.entity == "generic:stf-981"
    assert event.external_ref == ExternalRef(system="generic", id="stf-981")
    assert event.occurred_at == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert event.ticket == TicketRef(system="autotask", id="48213", number="T20261123.0004")
    booking = event.booking
    assert booking is not None
    assert (booking.start, booking.end) == (
        datetime(2026, 11, 23, 15, 0, tzinfo=UTC),
        datetime(2026, 11, 23, 15, 30, tzinfo=UTC),
    )
    assert (booking.timezone, booking.type) == ("America/New_York", "remote_call_in")
    assert booking.customer.email == "dana@example.com"
    assert [t.id for t in booking.technicians or ()] == ["t-17"]
    assert booking.links.reschedule == "https://book.example/r/stf-981"


def test_an_assignment_carries_the_new_technicians_and_no_booking() -> None:
    [event] = SOURCE.parse(signed(sample("generic/appointment_assigned.json")))
    assert event.kind is EventKind.ASSIGNED
    assert [t.id for t in event.technicians or ()] == ["t-23"]
    assert event.booking is None


def test_a_cancellation_says_who_and_why() -> None:
    [event] = SOURCE.parse(signed(sample("generic/appointment_cancelled.json")))
    assert (event.kind, event.cancelled_by, event.reason) == (
        EventKind.CANCELLED,
        CancelledBy.CUSTOMER,
        "no longer needed",
    )


@pytest.mark.parametrize("name", ["rescheduled", "checked_in", "scheduled_unassigned"])
def test_every_sample_parses(name: str) -> None:
    [event] = SOURCE.parse(signed(sample(f"generic/appointment_{name}.json")))
    assert event.source == "generic"


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"\xff\xfe"])
def test_a_body_that_is_not_a_json_object_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedPayload) as raised:
        SOURCE.parse(WebhookRequest(headers={}, body=body))
    assert raised.value.http_status == 400


def _mutated(change: dict[str, object], *, drop: str | None = None) -> bytes:
    document = json.loads(sample("generic/appointment_scheduled.json"))
    if drop:
        del document["appointment"][drop]
    document.update(change)
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_mutated({"type": "appointment.exploded"}), "type"),
        (_mutated({}, drop="start"), "appointment.start"),
        (_mutated({}, drop="external_id"), "appointment.external_id"),
        (_mutated({"occurred_at": "yesterday"}), "occurred_at"),
        (_mutated({"appointment": {"external_id": "x", "timezone": "Mars/Base"}}), "appointment.timezone"),
    ],
)
def test_json_of_the_wrong_shape_names_the_field(body: bytes, field: str) -> None:
    with pytest.raises(UnsupportedPayload) as raised:
        SOURCE.parse(WebhookRequest(headers={}, body=body))
    assert raised.value.field == field
    assert raised.value.http_status == 422


def test_an_assignment_without_technicians_is_refused() -> None:
    body = json.dumps(
        {
            "event_id": "e",
            "type": "appointment.assigned",
            "occurred_at": "2026-11-23T10:00:00Z",
            "appointment": {"external_id": "x"},
        }
    ).encode()
    with pytest.raises(UnsupportedPayload) as raised:
        SOURCE.parse(WebhookRequest(headers={}, body=body))
    assert raised.value.field == "appointment.technicians"
