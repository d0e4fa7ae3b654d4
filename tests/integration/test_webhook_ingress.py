"""webhook_ingress through API Gateway events, under moto: what is queued, and what is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from appointments.services.ingress import MAX_BODY_BYTES
from localdev.signing import signature_headers
from tests.integration.stack import CALCOM_SECRET, GENERIC_SECRET, Stack, stack_under_moto
from tests.signing import one_byte_changed, sample, timestamped_signature

SECRET = GENERIC_SECRET
NOW = datetime(2026, 11, 23, 10, 0, 5, tzinfo=UTC)


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with stack_under_moto(monkeypatch, NOW) as built:
        yield built


def signed_headers(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"X-Signature": timestamped_signature(secret, body, NOW)}


def error_of(response: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(response["body"])
    assert set(document) == {"error", "request_id"}
    assert document["request_id"]
    return document["error"]  # type: ignore[no-any-return]


def test_a_signed_booking_is_queued_in_its_appointments_group(stack: Stack) -> None:
    body = sample("generic/appointment_scheduled.json")
    response = stack.post("generic", body, signed_headers(body))
    assert response["statusCode"] == 202
    assert json.loads(response["body"]) == {"accepted": True, "source": "generic", "events": 1}
    [message] = stack.queued()
    assert message["Attributes"]["MessageGroupId"] == "generic:stf-981"
    event = json.loads(message["Body"])
    assert (event["kind"], event["delivery_id"]) == ("appointment.scheduled", "evt_01JDQ3F8ZB6W2Y1N7T5K4M9H2C")


def test_three_deliveries_of_one_event_queue_it_once_and_answer_alike(stack: Stack) -> None:
    body = sample("generic/appointment_scheduled.json")
    responses = [stack.post("generic", body, signed_headers(body)) for _ in range(3)]
    assert {r["statusCode"] for r in responses} == {202}
    assert len({r["body"] for r in responses}) == 1
    assert len(stack.queued()) == 1


def test_a_base64_encoded_body_is_verified_on_its_decoded_bytes(stack: Stack) -> None:
    body = sample("generic/appointment_scheduled.json")
    response = stack.post("generic", body, signed_headers(body), base64_body=True)
    assert response["statusCode"] == 202
    assert len(stack.queued()) == 1


@pytest.mark.parametrize(
    ("source", "body", "headers", "status", "code"),
    [
        ("generic", b'{"event_id": "x"}', {"X-Signature": "t=1,v1=00"}, 401, "unauthorized"),
        ("generic", b'{"event_id": "x"}', {}, 401, "unauthorized"),
        ("acuity", b"{}", {}, 404, "unknown_source"),
        ("generic", b"not json", None, 400, "malformed_payload"),
        ("generic", b'{"event_id": "x"}', None, 422, "unsupported_payload"),
        ("generic", b" " * (MAX_BODY_BYTES + 1), None, 413, "payload_too_large"),
    ],
    ids=["bad-signature", "no-signature", "unknown-source", "not-json", "wrong-shape", "too-large"],
)
def test_bad_input_gets_its_status_and_changes_nothing(
    stack: Stack, source: str, body: bytes, headers: dict[str, str] | None, status: int, code: str
) -> None:
    response = stack.post(source, body, signed_headers(body) if headers is None else headers)
    assert response["statusCode"] == status
    assert error_of(response)["code"] == code
    assert stack.queued() == []
    assert stack.table_items() == []


def test_a_refused_signature_says_nothing_that_helps_an_attacker(stack: Stack) -> None:
    body = sample("generic/appointment_scheduled.json")
    stale = {"X-Signature": timestamped_signature(SECRET, body, datetime(2026, 11, 23, 9, 0, tzinfo=UTC))}
    wrong = signed_headers(body, secret="guess")
    errors = [error_of(stack.post("generic", body, headers)) for headers in (stale, wrong, {})]
    assert errors[0] == errors[1] == errors[2]


def test_an_unknown_appointment_type_is_422_naming_the_field(stack: Stack) -> None:
    document = json.loads(sample("generic/appointment_scheduled.json"))
    document["appointment"]["type"] = "remote_call"
    body = json.dumps(document).encode()
    response = stack.post("generic", body, signed_headers(body))
    assert response["statusCode"] == 422
    assert error_of(response)["details"][0]["field"] == "type"
    assert stack.queued() == []


def test_a_queue_that_cannot_take_the_event_is_503_so_the_sender_retries(stack: Stack) -> None:
    stack.sqs.delete_queue(QueueUrl=stack.queue_url)
    body = sample("generic/appointment_scheduled.json")
    response = stack.post("generic", body, signed_headers(body))
    assert response["statusCode"] == 503
    assert error_of(response)["code"] == "queue_unavailable"


@pytest.mark.parametrize("signature", ["no-secret-provided", "0" * 64, ""])
def test_calcom_without_a_valid_signature_is_refused(stack: Stack, signature: str) -> None:
    body = sample("calcom/booking_created.json")
    response = stack.post("calcom", body, {"X-Cal-Signature-256": signature} if signature else {})
    assert response["statusCode"] == 401
    assert stack.queued() == []


def test_a_signed_calcom_trigger_we_ignore_is_acknowledged_and_queues_nothing(stack: Stack) -> None:
    document = json.loads(sample("calcom/booking_created.json"))
    document["triggerEvent"] = "MEETING_ENDED"
    response = stack.post_calcom(json.dumps(document).encode())
    assert response["statusCode"] == 202
    assert json.loads(response["body"])["events"] == 0
    assert stack.queued() == []


@pytest.mark.parametrize(
    "trigger",
    ["MEETING_ENDED", "MEETING_STARTED", "RECORDING_READY", "INSTANT_MEETING", "AFTER_HOSTS_CAL_VIDEO_NO_SHOW"],
)
def test_a_signed_flat_calcom_trigger_we_do_not_use_is_acknowledged_and_queues_nothing(
    stack: Stack, trigger: str
) -> None:
    # Given a genuine delivery shaped as Cal.com's scheduled triggers are: the booking at the top level, no payload
    body = sample("calcom/meeting_ended.json").replace(b'"MEETING_ENDED"', f'"{trigger}"'.encode())
    response = stack.post_calcom(body)
    assert response["statusCode"] == 202, response["body"]
    assert json.loads(response["body"])["events"] == 0
    assert stack.queued() == []
    assert stack.table_items() == []


def test_a_tampered_flat_calcom_meeting_ended_is_still_refused(stack: Stack) -> None:
    body = sample("calcom/meeting_ended.json")
    headers = signature_headers("calcom", CALCOM_SECRET, body, NOW)
    response = stack.post("calcom", one_byte_changed(body), headers)
    assert response["statusCode"] == 401
    assert stack.queued() == []
