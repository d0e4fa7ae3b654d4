"""The Calendly source: its signature, and each invitee event turned into a canonical event."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from appointments.domain.events import EventKind
from appointments.domain.model import Answer, CancelledBy, Customer, ExternalRef, Links, Technician
from appointments.errors import InvalidSignature, MalformedPayload, UnsupportedPayload
from appointments.sources.base import WebhookRequest
from appointments.sources.calendly import CalendlySource
from tests.signing import one_byte_changed, sample, timestamped_signature

if TYPE_CHECKING:
    from collections.abc import Callable

    from appointments.domain.events import CanonicalEvent

SECRET = "calendly-signing-key-for-tests"
NOW = datetime(2026, 11, 20, 13, 58, 43, tzinfo=UTC)
SOURCE = CalendlySource()
HEADER = "calendly-webhook-signature"

INVITEE = "7c1e4b9a-2f3d-4a86-8e50-b3d9f6a21c47"
NEW_INVITEE = "e4a7d2c8-9b16-4f3e-a05d-6c8b1f2e9d73"
EVENT_TYPE = "3f9b2d1c-6e4a-4b87-9c05-d8a1e7f2b640"
HOST = "a1c8e5f2-4b3d-4e9a-8f17-c2d6b0e3a958"
EVENT_URI = "https://api.calendly.com/scheduled_events/0b6f3c2e-8d1a-4e55-9a77-2f4c1d9e6a10"


def signed(body: bytes, *, secret: str = SECRET, at: datetime = NOW) -> WebhookRequest:
    return WebhookRequest(headers={HEADER: timestamped_signature(secret, body, at)}, body=body)


def parse_sample(name: str) -> CanonicalEvent:
    [event] = SOURCE.parse(signed(sample(f"calendly/{name}.json")))
    return event


def changed(sample_name: str, /, *, drop: str | None = None, **payload: Any) -> bytes:
    """A sample with payload fields replaced (or one dropped)."""
    document = json.loads(sample(f"calendly/{sample_name}.json"))
    if drop:
        del document["payload"][drop]
    document["payload"].update(payload)
    return json.dumps(document).encode()


def parse_body(body: bytes) -> tuple[CanonicalEvent, ...]:
    return SOURCE.parse(signed(body))


# --- signature


def test_a_request_signed_with_the_signing_key_verifies() -> None:
    SOURCE.verify(signed(sample("calendly/invitee_created.json")), SECRET, NOW)


def test_a_signature_up_to_three_minutes_old_verifies() -> None:
    body = sample("calendly/invitee_created.json")
    SOURCE.verify(signed(body, at=NOW - timedelta(seconds=180)), SECRET, NOW)


@pytest.mark.parametrize(
    "request_of",
    [
        pytest.param(lambda body: signed(body, secret="another key"), id="wrong-key"),
        pytest.param(lambda body: WebhookRequest(headers={}, body=body), id="missing-header"),
        pytest.param(lambda body: WebhookRequest(headers={HEADER: "v1=abc"}, body=body), id="no-timestamp"),
        pytest.param(
            lambda body: WebhookRequest(headers=signed(body).headers, body=one_byte_changed(body)), id="tampered"
        ),
        pytest.param(lambda body: signed(body, at=NOW - timedelta(seconds=181)), id="stale"),
        pytest.param(lambda body: signed(body, at=NOW + timedelta(seconds=181)), id="from-the-future"),
    ],
)
def test_a_bad_signature_is_refused(request_of: Callable[[bytes], WebhookRequest]) -> None:
    body = sample("calendly/invitee_created.json")
    with pytest.raises(InvalidSignature) as raised:
        SOURCE.verify(request_of(body), SECRET, NOW)
    assert raised.value.http_status == 401


def test_an_empty_signing_key_never_verifies() -> None:
    body = sample("calendly/invitee_created.json")
    with pytest.raises(InvalidSignature):
        SOURCE.verify(signed(body, secret=""), "", NOW)


# --- invitee events


def test_a_new_invitee_is_scheduled_with_everything_it_says() -> None:
    event = parse_sample("invitee_created")

    assert event.kind is EventKind.SCHEDULED
    assert event.source == "calendly"
    assert event.delivery_id == f"invitee.created:{INVITEE}:2026-11-20T13:58:42+00:00"
    assert event.occurred_at == datetime(2026, 11, 20, 13, 58, 42, tzinfo=UTC)
    assert event.entity == f"calendly:{INVITEE}"
    assert event.external_ref == ExternalRef(system="calendly", id=INVITEE)
    assert (event.previous_ref, event.reason, event.cancelled_by, event.ticket) == (None, None, None, None)
    booking = event.booking
    assert booking is not None
    assert (booking.start, booking.end) == (
        datetime(2026, 11, 24, 15, 0, tzinfo=UTC),
        datetime(2026, 11, 24, 15, 30, tzinfo=UTC),
    )
    assert booking.timezone == "America/New_York"
    assert (booking.type, booking.vendor_type) == (None, EVENT_TYPE)
    assert booking.customer == Customer(
        name="Dana Customer", email="dana.customer@client.example", phone="+1 212 555 0142"
    )
    assert booking.technicians == (Technician(id=HOST, name="Sam Tech", email="sam.tech@msp.example"),)
    assert booking.links == Links(
        reschedule=f"https://calendly.com/reschedulings/{INVITEE}",
        cancel=f"https://calendly.com/cancellations/{INVITEE}",
    )
    assert booking.answers == (
        Answer(question="What do you need help with?", answer="Outlook keeps asking for my password"),
        Answer(question="Ticket number (if you have one)", answer="T20261120.0042"),
    )


def test_the_second_half_of_a_reschedule_names_both_invitees_and_is_queued_with_the_old_one() -> None:
    event = parse_sample("invitee_created_rescheduled")

    assert event.kind is EventKind.RESCHEDULED
    assert event.external_ref == ExternalRef(system="calendly", id=NEW_INVITEE)
    assert event.previous_ref == ExternalRef(system="calendly", id=INVITEE)
    assert event.entity == f"calendly:{INVITEE}"
    booking = event.booking
    assert booking is not None
    assert (booking.start, booking.end) == (
        datetime(2026, 11, 25, 19, 0, tzinfo=UTC),
        datetime(2026, 11, 25, 19, 30, tzinfo=UTC),
    )
    # The links lead to the new invitee, the one that can still be changed.
    assert booking.links.cancel == f"https://calendly.com/cancellations/{NEW_INVITEE}"


def test_the_first_half_of_a_reschedule_is_never_a_cancellation() -> None:
    event = parse_sample("invitee_canceled_rescheduled")

    assert event.kind is EventKind.SUPERSEDED
    assert event.external_ref == ExternalRef(system="calendly", id=INVITEE)
    assert event.entity == f"calendly:{INVITEE}"
    assert (event.reason, event.cancelled_by, event.booking) == (None, None, None)
    assert event.delivery_id == f"invitee.canceled:{INVITEE}:2026-11-21T09:12:05+00:00"


def test_a_cancellation_by_the_customer_says_who_and_why() -> None:
    event = parse_sample("invitee_canceled")

    assert event.kind is EventKind.CANCELLED
    assert event.external_ref == ExternalRef(system="calendly", id=INVITEE)
    assert (event.cancelled_by, event.reason) == (CancelledBy.CUSTOMER, "Fixed it myself, thanks")
    assert event.booking is None


def test_a_cancellation_by_the_host_is_ours() -> None:
    event = parse_sample("invitee_canceled_by_host")
    assert (event.cancelled_by, event.reason) == (CancelledBy.OPS, "Technician out sick")


def test_a_cancellation_without_details_is_the_customers_and_gives_no_reason() -> None:
    [event] = parse_body(changed("invitee_canceled", cancellation=None))
    assert (event.kind, event.cancelled_by, event.reason) == (EventKind.CANCELLED, CancelledBy.CUSTOMER, None)


def test_a_cancellation_reason_longer_than_we_keep_is_cut_rather_than_refused() -> None:
    [event] = parse_body(changed("invitee_canceled", cancellation={"canceler_type": "invitee", "reason": "x" * 2500}))
    assert event.reason == "x" * 2000


def test_an_invitee_marked_absent_is_a_no_show() -> None:
    event = parse_sample("invitee_no_show_created")

    assert event.kind is EventKind.NO_SHOW
    assert event.external_ref == ExternalRef(system="calendly", id=INVITEE)
    assert event.entity == f"calendly:{INVITEE}"
    assert event.occurred_at == datetime(2026, 11, 24, 15, 12, 30, tzinfo=UTC)


def test_an_absence_taken_back_clears_the_no_show() -> None:
    event = parse_sample("invitee_no_show_deleted")
    assert (event.kind, event.external_ref) == (EventKind.NO_SHOW_CLEARED, ExternalRef(system="calendly", id=INVITEE))


def test_a_no_show_object_names_its_invitee() -> None:
    # Given the no-show resource itself as the payload, as Calendly's API documents it
    document = json.loads(sample("calendly/invitee_no_show_created.json"))
    document["payload"] = {
        "uri": "https://api.calendly.com/invitee_no_shows/9d3e6b1a-5c2f-4e87-b041-7a2c8f5d1e36",
        "invitee": f"{EVENT_URI}/invitees/{INVITEE}",
        "created_at": "2026-11-24T15:12:29.000000Z",
    }
    [event] = parse_body(json.dumps(document).encode())
    assert (event.kind, event.external_ref) == (EventKind.NO_SHOW, ExternalRef(system="calendly", id=INVITEE))


def test_a_name_is_made_from_its_parts_or_else_the_email() -> None:
    [split] = parse_body(changed("invitee_created", name=None, first_name="Dana", last_name="Reyes"))
    [nameless] = parse_body(changed("invitee_created", name=None))
    assert split.booking is not None
    assert nameless.booking is not None
    assert split.booking.customer.name == "Dana Reyes"
    assert nameless.booking.customer.name == "dana.customer@client.example"


def test_a_phone_number_too_long_to_be_one_is_left_out_rather_than_refused() -> None:
    [event] = parse_body(changed("invitee_created", text_reminder_number="1" * 51))
    assert event.booking is not None
    assert event.booking.customer.phone is None


def test_hosts_listed_twice_are_one_technician_and_a_host_without_a_user_is_known_by_email() -> None:
    document = json.loads(sample("calendly/invitee_created.json"))
    user = f"https://api.calendly.com/users/{HOST}"
    document["payload"]["scheduled_event"]["event_memberships"] = [
        {
            "user": f"https://api.calendly.com/users/{HOST}",
            "user_email": "sam.tech@msp.example",
            "user_name": "Sam Tech",
        },
        {"user": user, "user_email": "sam.tech@msp.example", "user_name": "Sam"},
        {"user_email": "priya@msp.example"},
    ]
    [event] = parse_body(json.dumps(document).encode())
    assert event.booking is not None
    assert event.booking.technicians == (
        Technician(id=HOST, name="Sam Tech", email="sam.tech@msp.example"),
        Technician(id="priya@msp.example", name="priya@msp.example", email="priya@msp.example"),
    )


@pytest.mark.parametrize(
    "event_name",
    [
        "routing_form_submission.created",
        "event_type.updated",
        "meeting_recap.created",
        "invitee.updated_someday",
    ],
)
def test_other_events_are_deliberately_ignored(event_name: str) -> None:
    document = json.loads(sample("calendly/invitee_created.json")) | {"event": event_name}
    assert parse_body(json.dumps(document).encode()) == ()


def test_a_routing_form_submission_is_ignored() -> None:
    assert SOURCE.parse(signed(sample("calendly/routing_form_submission_created.json"))) == ()


# --- bodies that are not Calendly's


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"\xff\xfe"])
def test_a_body_that_is_not_a_json_object_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedPayload) as raised:
        SOURCE.parse(WebhookRequest(headers={}, body=body))
    assert raised.value.http_status == 400


def _envelope_changed(**fields: Any) -> bytes:
    return json.dumps(json.loads(sample("calendly/invitee_created.json")) | fields).encode()


def _event_changed(**fields: Any) -> bytes:
    document = json.loads(sample("calendly/invitee_created.json"))
    document["payload"]["scheduled_event"].update(fields)
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param(_envelope_changed(event=42), "event", id="event-not-a-string"),
        pytest.param(_envelope_changed(created_at="yesterday"), "created_at", id="bad-created-at"),
        pytest.param(_envelope_changed(payload=None), "payload", id="no-payload"),
        pytest.param(changed("invitee_created", drop="scheduled_event"), "payload.scheduled_event", id="no-event"),
        pytest.param(_event_changed(start_time=None), "payload.scheduled_event.start_time", id="no-start"),
        pytest.param(changed("invitee_created", timezone=None), "payload.timezone", id="no-zone"),
        pytest.param(changed("invitee_created", timezone="Mars/Base"), "payload.timezone", id="unknown-zone"),
        pytest.param(changed("invitee_created", email="not an email"), "payload.email", id="bad-email"),
        pytest.param(changed("invitee_created", uri=EVENT_URI), "payload.uri", id="not-an-invitee"),
        pytest.param(
            changed("invitee_created_rescheduled", old_invitee=EVENT_URI), "payload.old_invitee", id="bad-old-invitee"
        ),
        pytest.param(changed("invitee_canceled", drop="uri"), "payload.uri", id="cancel-without-uri"),
        pytest.param(
            changed("invitee_no_show_created", uri="https://api.calendly.com/invitee_no_shows/9d3e"),
            "payload.uri",
            id="no-show-of-nobody",
        ),
    ],
)
def test_json_of_the_wrong_shape_names_the_field(body: bytes, field: str) -> None:
    with pytest.raises(UnsupportedPayload) as raised:
        parse_body(body)
    assert raised.value.field == field
    assert raised.value.http_status == 422
