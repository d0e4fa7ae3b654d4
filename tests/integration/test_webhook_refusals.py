"""A 202 means the event will be applied: what the processor or the store would refuse is a 422 at the door.

Through the real webhook_ingress handler under moto: the refusal names the field, and nothing is queued.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.integration.stack import Stack, stack_under_moto
from tests.signing import sample

NOW = datetime(2026, 11, 23, 10, 0, 5, tzinfo=UTC)


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with stack_under_moto(monkeypatch, NOW) as built:
        yield built


def changed(name: str, edit: Callable[[dict[str, Any]], None]) -> bytes:
    document = json.loads(sample(name))
    edit(document)
    return json.dumps(document).encode()


def generic(**appointment: Any) -> bytes:
    return changed("generic/appointment_scheduled.json", lambda d: d["appointment"].update(appointment))


CASES = [
    pytest.param(
        "generic",
        generic(start="2026-11-23T15:00:00Z", end="2026-11-23T15:00:00Z"),
        "appointment.end",
        id="generic-ends-at-its-start",
    ),
    pytest.param(
        "generic",
        generic(technicians=[{"id": f"t-{i}", "name": f"T {i}"} for i in range(21)]),
        "appointment.technicians",
        id="generic-21-technicians",
    ),
    pytest.param("generic", generic(external_id="x" * 121), "appointment.external_id", id="generic-long-external-id"),
    pytest.param(
        "generic",
        generic(ticket={"system": "autotask", "id": "😀" * 500}),
        "appointment.ticket",
        id="generic-ticket-too-long-for-a-key",
    ),
    pytest.param(
        "calcom",
        changed(
            "calcom/booking_created.json",
            lambda d: d["payload"].update(startTime="2026-11-24T15:00:00Z", endTime="2026-11-24T14:00:00Z"),
        ),
        "payload.endTime",
        id="calcom-ends-before-it-starts",
    ),
    pytest.param(
        "calendly",
        changed(
            "calendly/invitee_created.json",
            lambda d: d["payload"]["scheduled_event"].update(
                start_time="2026-11-24T15:00:00Z", end_time="2026-11-24T14:00:00Z"
            ),
        ),
        "payload.scheduled_event.end_time",
        id="calendly-ends-before-it-starts",
    ),
]


@pytest.mark.parametrize(("source", "body", "field"), CASES)
def test_a_delivery_the_processor_would_refuse_is_422_naming_the_field_and_queues_nothing(
    stack: Stack, source: str, body: bytes, field: str
) -> None:
    # Given a signed delivery that the processor or the store could not take
    # When it is posted to the webhook
    response = stack.signed_post(source, body)
    # Then it is refused at the door, naming the field, and nothing is queued or stored
    assert response["statusCode"] == 422
    error = json.loads(response["body"])["error"]
    assert error["code"] == "unsupported_payload"
    assert error["details"][0]["field"] == field
    assert error["message"].startswith(f"{field}: ")
    assert stack.queued() == []
    assert stack.table_items() == []


def test_a_vendor_questionnaire_larger_than_an_appointment_holds_is_clipped_and_the_booking_applied(
    stack: Stack,
) -> None:
    # Given a Cal.com booking with 80 answers and 80 metadata keys
    def oversized(document: dict[str, Any]) -> None:
        document["payload"]["responses"] = {f"q{i}": {"label": f"Q {i}", "value": "yes"} for i in range(80)}
        document["payload"]["metadata"] = {f"k{i}": i for i in range(80)}

    # When it is posted and the queue drained through the processor
    response = stack.post_calcom(changed("calcom/booking_created.json", oversized))
    assert response["statusCode"] == 202
    stack.drain()
    # Then the appointment is stored, with what an appointment holds
    [appointment] = [json.loads(i["doc"]["S"]) for i in stack.table_items() if i["SK"]["S"] == "A"]
    assert (len(appointment["answers"]), len(appointment["metadata"])) == (50, 50)
