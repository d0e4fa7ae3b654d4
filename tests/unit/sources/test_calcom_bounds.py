"""Cal.com: a booking is never dropped for what its questionnaire or team holds, but one that cannot be is refused.

Hosts, answers and metadata beyond what an appointment keeps are clipped; an end not after the start,
or an id too long for an event, is a 422 naming Cal.com's own field.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from appointments.domain.events import (
    MAX_ANSWERS,
    MAX_ANSWERS_BYTES,
    MAX_METADATA_BYTES,
    MAX_METADATA_KEYS,
    MAX_TECHNICIANS,
    CanonicalEvent,
    json_bytes,
)
from appointments.errors import UnsupportedPayload
from appointments.sources.base import WebhookRequest
from appointments.sources.calcom import CalcomSource
from tests.signing import sample

SOURCE = CalcomSource(booking_base_url="https://book.msp.example")


def booking_with(trigger: str = "booking_created", **payload: Any) -> bytes:
    document = json.loads(sample(f"calcom/{trigger}.json"))
    document["payload"].update(payload)
    return json.dumps(document).encode()


def parsed(body: bytes) -> CanonicalEvent:
    [event] = SOURCE.parse(WebhookRequest(headers={}, body=body))
    return event


def refusal(body: bytes) -> UnsupportedPayload:
    with pytest.raises(UnsupportedPayload) as raised:
        SOURCE.parse(WebhookRequest(headers={}, body=body))
    assert raised.value.http_status == 422
    return raised.value


@pytest.mark.parametrize("trigger", ["booking_created", "booking_requested", "booking_rescheduled"])
def test_a_booking_that_ends_when_it_starts_is_refused_naming_payload_end_time(trigger: str) -> None:
    # Given a booking whose end is its start
    body = booking_with(trigger, startTime="2026-11-24T15:00:00Z", endTime="2026-11-24T15:00:00Z")
    # When it is parsed, Then it is refused naming Cal.com's field
    assert refusal(body).field == "payload.endTime"


def test_a_booking_that_ends_before_it_starts_is_refused() -> None:
    body = booking_with(startTime="2026-11-24T15:00:00Z", endTime="2026-11-24T14:30:00Z")
    refused = refusal(body)
    assert refused.field == "payload.endTime"
    assert "after the start" in refused.message


def test_a_team_larger_than_an_appointment_holds_is_clipped_organizer_first() -> None:
    # Given a team of 30 hosts besides the organizer
    members = [{"id": 5000 + i, "name": f"Host {i}", "email": f"host{i}@msp.example"} for i in range(30)]
    # When the booking is parsed
    event = parsed(booking_with(team={"name": "Service Desk", "members": members}))
    # Then it is kept with the first 20 hosts, the organizer first
    assert event.booking is not None
    technicians = event.booking.technicians or ()
    assert len(technicians) == MAX_TECHNICIANS
    assert technicians[0].name == "Sam Okafor"
    assert technicians[-1].id == str(5000 + MAX_TECHNICIANS - 2)


def test_a_questionnaire_larger_than_an_appointment_holds_is_clipped() -> None:
    # Given 80 answered questions, each near the 5000 characters an answer holds
    responses = {f"q{i}": {"label": f"Question {i}", "value": "€" * 4999} for i in range(80)}
    # When the booking is parsed
    event = parsed(booking_with(responses=responses))
    # Then the first answers that fit are kept, in order
    assert event.booking is not None
    answers = event.booking.answers
    assert 0 < len(answers) <= MAX_ANSWERS
    assert json_bytes(answers) <= MAX_ANSWERS_BYTES
    assert [a.question for a in answers[:2]] == ["Question 0", "Question 1"]


def test_many_short_answers_are_clipped_to_fifty() -> None:
    responses = {f"q{i}": {"label": f"Question {i}", "value": "yes"} for i in range(70)}
    event = parsed(booking_with(responses=responses))
    assert event.booking is not None
    assert [a.question for a in event.booking.answers] == [f"Question {i}" for i in range(MAX_ANSWERS)]


def test_an_answer_nested_deeper_than_a_person_types_is_left_out_rather_than_overflowing() -> None:
    # Given an answer whose value nests 900 lists deep (json.loads takes it; reading it recursively would not)
    deep: Any = "x"
    for _ in range(900):
        deep = [deep]
    responses = {"notes": {"label": "Notes", "value": deep}, "topic": {"label": "Topic", "value": "VPN"}}
    # When the booking is parsed, Then the booking is kept with the answer a person could give
    event = parsed(booking_with(responses=responses))
    assert event.booking is not None
    assert [(a.question, a.answer) for a in event.booking.answers] == [("Topic", "VPN")]


def test_metadata_larger_than_an_appointment_holds_is_clipped() -> None:
    # Given metadata with one value over 16 KiB and more keys than are kept
    metadata: dict[str, Any] = {"transcript": "x" * MAX_METADATA_BYTES}
    metadata |= {f"k{i}": f"v{i}" for i in range(70)}
    # When the booking is parsed
    event = parsed(booking_with(metadata=metadata))
    # Then the booking is kept with the first keys that fit
    assert event.booking is not None
    assert list(event.booking.metadata) == [f"k{i}" for i in range(MAX_METADATA_KEYS)]


def test_a_uid_too_long_for_an_event_is_refused_naming_it() -> None:
    assert refusal(booking_with(uid="u" * 121)).field == "payload.uid"


def test_the_longest_uid_makes_a_valid_event_whose_store_key_fits() -> None:
    # Given a uid of 120 four-byte characters
    event = parsed(booking_with(uid="😀" * 120))
    # Then its entity and delivery id fit, and so does the store's key on it
    assert len(event.entity) == len("calcom:") + 120
    assert event.external_ref is not None
    assert len(f"REF#{event.external_ref.system}#{event.external_ref.id}".encode()) <= 1024


def test_a_host_id_too_large_for_an_id_is_refused_naming_it() -> None:
    # Given an organizer id of 600 digits (Python reads it; as text it would be longer than an id holds)
    document = json.loads(sample("calcom/booking_created.json"))
    document["payload"]["organizer"]["id"] = int("9" * 600)
    assert refusal(json.dumps(document).encode()).field == "payload.organizer.id"
