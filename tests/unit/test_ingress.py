"""Webhook ingress: every refusal changes nothing; an accepted delivery is queued once, whole."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from appointments.adapters.clock import ManualClock
from appointments.domain.events import EventKind
from appointments.errors import (
    InvalidSignature,
    MalformedPayload,
    PayloadTooLarge,
    QueueUnavailable,
    UnknownAppointmentType,
    UnknownSource,
    UnsupportedPayload,
)
from appointments.services.ingress import MAX_BODY_BYTES, WebhookIngress
from appointments.sources.base import WebhookRequest
from appointments.sources.generic import GenericSource
from tests.factories import CATALOG
from tests.fakes import DictSecrets, RecordingQueue
from tests.signing import sample, timestamped_signature

SECRET = "whsec_generic_test"
NOW = datetime(2026, 11, 23, 10, 0, 5, tzinfo=UTC)


@pytest.fixture
def queue() -> RecordingQueue:
    return RecordingQueue()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def ingress(queue: RecordingQueue, clock: ManualClock) -> WebhookIngress:
    return WebhookIngress({"generic": GenericSource()}, DictSecrets({"generic": SECRET}), queue, clock, CATALOG)


def signed(body: bytes, at: datetime = NOW, secret: str = SECRET) -> WebhookRequest:
    return WebhookRequest(headers={"x-signature": timestamped_signature(secret, body, at)}, body=body)


def test_a_signed_booking_is_queued_and_acknowledged(ingress: WebhookIngress, queue: RecordingQueue) -> None:
    accepted = ingress.accept("generic", signed(sample("generic/appointment_scheduled.json")))
    assert accepted.delivery_ids == ("evt_01JDQ3F8ZB6W2Y1N7T5K4M9H2C",)
    assert [e.kind for e in queue.events] == [EventKind.SCHEDULED]


def test_a_redelivery_gets_the_same_answer(ingress: WebhookIngress) -> None:
    body = sample("generic/appointment_scheduled.json")
    assert ingress.accept("generic", signed(body)) == ingress.accept("generic", signed(body))


def test_an_unknown_source_is_404_and_names_the_known_ones(ingress: WebhookIngress, queue: RecordingQueue) -> None:
    with pytest.raises(UnknownSource) as raised:
        ingress.accept("acuity", signed(b"{}"))
    assert raised.value.http_status == 404
    assert "generic" in raised.value.message
    assert queue.events == []


def test_a_source_without_a_configured_secret_refuses_everything(queue: RecordingQueue, clock: ManualClock) -> None:
    ingress = WebhookIngress({"generic": GenericSource()}, DictSecrets({}), queue, clock, CATALOG)
    with pytest.raises(InvalidSignature):
        ingress.accept("generic", signed(sample("generic/appointment_scheduled.json"), secret=""))
    assert queue.events == []


def test_a_body_over_256_kib_is_413_before_anything_else(ingress: WebhookIngress, queue: RecordingQueue) -> None:
    body = b" " * (MAX_BODY_BYTES + 1)
    with pytest.raises(PayloadTooLarge) as raised:
        ingress.accept("generic", WebhookRequest(headers={}, body=body))
    assert raised.value.http_status == 413
    assert queue.events == []


def test_a_body_of_exactly_256_kib_is_read(ingress: WebhookIngress) -> None:
    body = sample("generic/appointment_scheduled.json")
    padded = body.rstrip() + b" " * (MAX_BODY_BYTES - len(body.rstrip()))
    assert len(padded) == MAX_BODY_BYTES
    ingress.accept("generic", signed(padded))


def test_the_signature_is_checked_before_the_body_is_read(ingress: WebhookIngress, queue: RecordingQueue) -> None:
    # Given a body that is not even JSON, signed with the wrong secret
    with pytest.raises(InvalidSignature):
        ingress.accept("generic", signed(b"not json", secret="wrong"))
    assert queue.events == []


def test_freshness_uses_the_injected_clock(ingress: WebhookIngress, clock: ManualClock, queue: RecordingQueue) -> None:
    request = signed(sample("generic/appointment_scheduled.json"))
    clock.advance(timedelta(minutes=6))
    with pytest.raises(InvalidSignature):
        ingress.accept("generic", request)
    assert queue.events == []


def test_a_signed_body_that_is_not_json_is_400(ingress: WebhookIngress, queue: RecordingQueue) -> None:
    with pytest.raises(MalformedPayload):
        ingress.accept("generic", signed(b"not json"))
    assert queue.events == []


def test_a_signed_body_of_the_wrong_shape_is_422(ingress: WebhookIngress, queue: RecordingQueue) -> None:
    with pytest.raises(UnsupportedPayload):
        ingress.accept("generic", signed(b'{"event_id": "x"}'))
    assert queue.events == []


def test_a_generic_booking_must_name_a_known_type(ingress: WebhookIngress, queue: RecordingQueue) -> None:
    document = json.loads(sample("generic/appointment_scheduled.json"))
    document["appointment"]["type"] = "remote_call"
    with pytest.raises(UnknownAppointmentType) as raised:
        ingress.accept("generic", signed(json.dumps(document).encode()))
    assert raised.value.http_status == 422
    assert queue.events == []


def test_a_failed_enqueue_is_retryable_and_queues_nothing(ingress: WebhookIngress, queue: RecordingQueue) -> None:
    queue.fail_with = QueueUnavailable("the event queue is unavailable")
    with pytest.raises(QueueUnavailable) as raised:
        ingress.accept("generic", signed(sample("generic/appointment_scheduled.json")))
    assert (raised.value.http_status, raised.value.retryable) == (503, True)
    assert queue.events == []
