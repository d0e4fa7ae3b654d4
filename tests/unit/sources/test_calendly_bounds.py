"""Calendly: a booking is never dropped for what its questionnaire or hosts hold, but one that cannot be is refused.

Hosts and answers beyond what an appointment keeps are clipped, and so is a name made of two long parts;
an end not after the start, or an invitee id too long for an event, is a 422 naming Calendly's own field.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from appointments.domain.events import MAX_ANSWERS, MAX_ANSWERS_BYTES, MAX_TECHNICIANS, CanonicalEvent, json_bytes
from appointments.errors import UnsupportedPayload
from appointments.sources.base import WebhookRequest
from appointments.sources.calendly import CalendlySource
from tests.signing import sample

SOURCE = CalendlySource()
EVENT_URI = "https://api.calendly.com/scheduled_events/0b6f3c2e-8d1a-4e55-9a77-2f4c1d9e6a10"


def invitee_with(
    sample_name: str = "invitee_created", /, *, scheduled_event: dict[str, Any] | None = None, **payload: Any
) -> bytes:
    document = json.loads(sample(f"calendly/{sample_name}.json"))
    document["payload"].update(payload)
    document["payload"]["scheduled_event"].update(scheduled_event or {})
    return json.dumps(document).encode()


def parsed(body: bytes) -> CanonicalEvent:
    [event] = SOURCE.parse(WebhookRequest(headers={}, body=body))
    return event


def refusal(body: bytes) -> UnsupportedPayload:
    with pytest.raises(UnsupportedPayload) as raised:
        SOURCE.parse(WebhookRequest(headers={}, body=body))
    assert raised.value.http_status == 422
    return raised.value


@pytest.mark.parametrize("name", ["invitee_created", "invitee_created_rescheduled"])
@pytest.mark.parametrize("end", ["2026-11-24T15:00:00Z", "2026-11-24T14:00:00Z"])
def test_an_event_that_ends_before_it_starts_is_refused_naming_its_end_time(name: str, end: str) -> None:
    # Given a scheduled event starting at 15:00 whose end is not after it
    body = invitee_with(name, scheduled_event={"start_time": "2026-11-24T15:00:00Z", "end_time": end})
    # When it is parsed, Then it is refused naming Calendly's field
    assert refusal(body).field == "payload.scheduled_event.end_time"


def test_more_hosts_than_an_appointment_holds_are_clipped_to_the_first_twenty() -> None:
    memberships = [
        {"user": f"https://api.calendly.com/users/host-{i}", "user_email": f"h{i}@msp.example", "user_name": f"H {i}"}
        for i in range(25)
    ]
    event = parsed(invitee_with(scheduled_event={"event_memberships": memberships}))
    assert event.booking is not None
    assert [t.id for t in event.booking.technicians or ()] == [f"host-{i}" for i in range(MAX_TECHNICIANS)]


def test_more_answers_than_an_appointment_holds_are_clipped_in_order() -> None:
    # Given 70 answers, the first ten near the 5000 characters an answer holds
    long = [{"question": f"Long {i}", "answer": "€" * 4999, "position": i} for i in range(10)]
    short = [{"question": f"Short {i}", "answer": "yes", "position": 10 + i} for i in range(60)]
    # When the invitee is parsed
    event = parsed(invitee_with(questions_and_answers=long + short))
    # Then the booking is kept with the first answers that fit
    assert event.booking is not None
    answers = event.booking.answers
    assert len(answers) == MAX_ANSWERS
    assert json_bytes(answers) <= MAX_ANSWERS_BYTES
    assert answers[0].question == "Long 0"


def test_a_name_of_two_long_parts_is_cut_to_what_a_customer_name_holds() -> None:
    # Given no full name, and first and last names of 250 characters each (with the space, one too many)
    body = invitee_with(name=None, first_name="a" * 250, last_name="b" * 250)
    # When the invitee is parsed, Then the booking is kept with the name cut to 500 characters
    event = parsed(body)
    assert event.booking is not None
    assert event.booking.customer.name == "a" * 250 + " " + "b" * 249


def test_an_invitee_id_too_long_for_an_event_is_refused_naming_the_uri() -> None:
    assert refusal(invitee_with(uri=f"{EVENT_URI}/invitees/{'i' * 111}")).field == "payload.uri"


def test_the_longest_invitee_id_makes_a_valid_event_whose_store_key_fits() -> None:
    event = parsed(invitee_with(uri=f"{EVENT_URI}/invitees/{'😀' * 110}"))
    assert event.external_ref is not None and event.external_ref.id == "😀" * 110
    assert len(f"REF#{event.external_ref.system}#{event.external_ref.id}".encode()) <= 1024
