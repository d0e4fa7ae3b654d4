"""The Cal.com source: its signature, and each booking trigger turned into a canonical event."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from appointments.domain.events import EventKind
from appointments.domain.model import Answer, CancelledBy, Customer, ExternalRef, Links, Technician
from appointments.errors import InvalidSignature, MalformedPayload, UnsupportedPayload
from appointments.sources.base import WebhookRequest
from appointments.sources.calcom import CalcomSource
from tests.signing import one_byte_changed, sample

if TYPE_CHECKING:
    from collections.abc import Callable

    from appointments.domain.events import CanonicalEvent

SECRET = "calcom-webhook-secret-for-tests"
NOW = datetime(2026, 11, 20, 14, 2, 12, tzinfo=UTC)
BASE_URL = "https://book.msp.example"
SOURCE = CalcomSource(booking_base_url=BASE_URL)

CREATED_UID = "bXk3n8QvTz2LmP4rWc7yHd"
RESCHEDULED_UID = "hV5wN9pQ2rS7tU3xY8zA1b"
REQUESTED_UID = "qR8sT2uVwX4yZ6aB1cD3eF"


def signature(body: bytes, secret: str = SECRET) -> str:
    # Computed here rather than with the module's helper, so a wrong scheme cannot agree with itself.
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed(body: bytes, *, secret: str = SECRET) -> WebhookRequest:
    return WebhookRequest(headers={"x-cal-signature-256": signature(body, secret)}, body=body)


def parse_sample(name: str, source: CalcomSource = SOURCE) -> CanonicalEvent:
    request = signed(sample(f"calcom/{name}.json"))
    source.verify(request, SECRET, NOW)
    [event] = source.parse(request)
    return event


def changed(name: str, *, drop: str | None = None, **payload: Any) -> bytes:
    """A sample with payload fields replaced (or one dropped)."""
    document = json.loads(sample(f"calcom/{name}.json"))
    if drop:
        del document["payload"][drop]
    document["payload"].update(payload)
    return json.dumps(document).encode()


def parse_body(body: bytes, source: CalcomSource = SOURCE) -> tuple[CanonicalEvent, ...]:
    return source.parse(signed(body))


# --- signature


def test_a_request_signed_with_the_secret_verifies() -> None:
    SOURCE.verify(signed(sample("calcom/booking_created.json")), SECRET, NOW)


@pytest.mark.parametrize(
    "request_of",
    [
        pytest.param(lambda body: signed(body, secret="another secret"), id="wrong-secret"),
        pytest.param(lambda body: WebhookRequest(headers={}, body=body), id="missing-header"),
        pytest.param(
            lambda body: WebhookRequest(headers={"x-cal-signature-256": "no-secret-provided"}, body=body),
            id="webhook-without-secret",
        ),
        pytest.param(
            lambda body: WebhookRequest(headers=signed(body).headers, body=one_byte_changed(body)), id="tampered"
        ),
        pytest.param(
            lambda body: WebhookRequest(headers={"x-cal-signature-256": f"sha256={signature(body)}"}, body=body),
            id="prefixed",
        ),
    ],
)
def test_a_bad_signature_is_refused(request_of: Callable[[bytes], WebhookRequest]) -> None:
    body = sample("calcom/booking_created.json")
    with pytest.raises(InvalidSignature) as raised:
        SOURCE.verify(request_of(body), SECRET, NOW)
    assert raised.value.http_status == 401


def test_an_empty_secret_never_verifies() -> None:
    # Given a body signed with an empty key: a secret left unset must not make every request valid
    body = sample("calcom/booking_created.json")
    with pytest.raises(InvalidSignature):
        SOURCE.verify(signed(body, secret=""), "", NOW)


# --- booking triggers


def test_a_booking_is_scheduled_with_everything_it_says() -> None:
    event = parse_sample("booking_created")

    assert event.kind is EventKind.SCHEDULED
    assert event.source == "calcom"
    assert event.delivery_id == f"BOOKING_CREATED:{CREATED_UID}:2026-11-20T14:02:11.412000+00:00"
    assert event.occurred_at == datetime(2026, 11, 20, 14, 2, 11, 412000, tzinfo=UTC)
    assert event.entity == f"calcom:{CREATED_UID}"
    assert event.external_ref == ExternalRef(system="calcom", id=CREATED_UID)
    assert (event.previous_ref, event.reason, event.cancelled_by, event.ticket) == (None, None, None, None)
    booking = event.booking
    assert booking is not None
    assert (booking.start, booking.end) == (
        datetime(2026, 11, 23, 15, 0, tzinfo=UTC),
        datetime(2026, 11, 23, 15, 30, tzinfo=UTC),
    )
    assert booking.timezone == "America/New_York"  # the customer's, not the organizer's
    assert (booking.type, booking.vendor_type) == (None, "remote-support-call")
    assert booking.customer == Customer(name="Dana Reyes", email="dana@example.com", phone="+12125550100")
    assert booking.technicians == (
        Technician(id="1187", name="Sam Okafor", email="sam@msp.example"),
        Technician(id="1203", name="Priya Natarajan", email="priya@msp.example"),
    )
    assert booking.links == Links(
        reschedule=f"{BASE_URL}/reschedule/{CREATED_UID}", cancel=f"{BASE_URL}/booking/{CREATED_UID}?cancel=true"
    )
    # Name, email and phone are the customer's; unanswered and empty fields are left out.
    assert booking.answers == (
        Answer(question="location", answer="+12125550100"),
        Answer(question="additional_notes", answer="Outlook keeps asking for my password since Tuesday's update."),
        Answer(question="Company", answer="Reyes Dental"),
        Answer(question="What is affected?", answer="Email, Printing"),
    )
    assert booking.metadata == {"ticket": "T20261123.0004"}


def test_a_booking_awaiting_the_hosts_confirmation_is_requested() -> None:
    event = parse_sample("booking_requested")

    assert event.kind is EventKind.REQUESTED
    assert event.external_ref == ExternalRef(system="calcom", id=REQUESTED_UID)
    booking = event.booking
    assert booking is not None
    assert (booking.timezone, booking.vendor_type) == ("America/Chicago", "onsite-visit")
    # The attendee carries no phone here: it comes from the booking form.
    assert booking.customer == Customer(name="Marcus Bell", email="marcus@bellhvac.example", phone="+12175550142")
    assert booking.technicians == (Technician(id="1187", name="Sam Okafor", email="sam@msp.example"),)
    assert Answer(question="location", answer="410 Elm St, Springfield, IL 62701") in booking.answers
    assert booking.metadata == {}


def test_a_created_booking_that_is_still_pending_is_requested() -> None:
    [event] = parse_body(changed("booking_created", status="PENDING"))
    assert event.kind is EventKind.REQUESTED


def test_a_reschedule_names_both_bookings_and_is_queued_with_the_one_it_replaces() -> None:
    event = parse_sample("booking_rescheduled")

    assert event.kind is EventKind.RESCHEDULED
    assert event.external_ref == ExternalRef(system="calcom", id=RESCHEDULED_UID)
    assert event.previous_ref == ExternalRef(system="calcom", id=CREATED_UID)
    assert event.entity == f"calcom:{CREATED_UID}"
    assert event.delivery_id == f"BOOKING_RESCHEDULED:{RESCHEDULED_UID}:2026-11-21T09:15:42.108000+00:00"
    booking = event.booking
    assert booking is not None
    assert (booking.start, booking.end) == (
        datetime(2026, 11, 24, 16, 0, tzinfo=UTC),
        datetime(2026, 11, 24, 16, 30, tzinfo=UTC),
    )
    # The links lead to the new booking, the one that can still be changed.
    assert booking.links.reschedule == f"{BASE_URL}/reschedule/{RESCHEDULED_UID}"
    assert Answer(question="reason_for_reschedule", answer="Our office is closed Monday afternoon.") in booking.answers


def test_a_cancellation_by_the_customer_says_who_and_why() -> None:
    event = parse_sample("booking_cancelled")

    assert event.kind is EventKind.CANCELLED
    assert event.external_ref == ExternalRef(system="calcom", id=RESCHEDULED_UID)
    assert event.entity == f"calcom:{RESCHEDULED_UID}"
    assert (event.cancelled_by, event.reason) == (CancelledBy.CUSTOMER, "The problem went away after a restart.")
    assert event.booking is None


def test_a_cancellation_by_the_organizer_is_ours() -> None:
    [event] = parse_body(changed("booking_cancelled", cancelledBy="Sam@MSP.example"))
    assert event.cancelled_by is CancelledBy.OPS


def test_a_cancellation_naming_nobody_and_giving_no_reason_is_the_customers() -> None:
    [event] = parse_body(changed("booking_cancelled", drop="cancelledBy", cancellationReason=""))
    assert (event.cancelled_by, event.reason) == (CancelledBy.CUSTOMER, None)


def test_a_reason_longer_than_we_keep_is_cut_rather_than_refused() -> None:
    [event] = parse_body(changed("booking_cancelled", cancellationReason="x" * 2500))
    assert event.reason == "x" * 2000


def test_the_host_asking_for_a_new_time_is_not_a_cancellation() -> None:
    event = parse_sample("booking_cancelled_request_reschedule")

    assert event.kind is EventKind.RESCHEDULE_REQUESTED
    assert event.external_ref == ExternalRef(system="calcom", id="mK2jH7gF4dS9aQ1wE6rT3y")
    assert event.reason == "Please reschedule. Sam is out sick on Tuesday."
    assert event.cancelled_by is None


def test_a_rejection_carries_the_hosts_reason() -> None:
    event = parse_sample("booking_rejected")

    assert event.kind is EventKind.REJECTED
    assert event.external_ref == ExternalRef(system="calcom", id=REQUESTED_UID)
    assert event.reason == "No on-site slots left that day; a remote session can be booked instead."


def test_an_attendee_marked_absent_is_a_no_show() -> None:
    event = parse_sample("booking_no_show_updated")

    assert event.kind is EventKind.NO_SHOW
    assert event.external_ref == ExternalRef(system="calcom", id="pL4kJ8hG2fD6sA9qW3eR7t")
    assert event.entity == "calcom:pL4kJ8hG2fD6sA9qW3eR7t"
    assert event.delivery_id == "BOOKING_NO_SHOW_UPDATED:pL4kJ8hG2fD6sA9qW3eR7t:2026-11-30T15:12:09.311000+00:00"
    assert event.occurred_at == datetime(2026, 11, 30, 15, 12, 9, 311000, tzinfo=UTC)


def test_an_absence_taken_back_clears_the_no_show() -> None:
    [event] = parse_body(changed("booking_no_show_updated", attendees=[{"email": "dana@example.com", "noShow": False}]))
    assert event.kind is EventKind.NO_SHOW_CLEARED


@pytest.mark.parametrize(
    "trigger",
    [
        "BOOKING_PAID",
        "BOOKING_PAYMENT_INITIATED",
        "MEETING_STARTED",
        "MEETING_ENDED",
        "RECORDING_READY",
        "FORM_SUBMITTED",
        "PING",
        "SOMETHING_NEW",
    ],
)
def test_other_triggers_are_deliberately_ignored(trigger: str) -> None:
    document = json.loads(sample("calcom/booking_created.json")) | {"triggerEvent": trigger}
    assert parse_body(json.dumps(document).encode()) == ()


def test_a_flat_meeting_ended_body_with_no_payload_is_ignored() -> None:
    # Given MEETING_ENDED as Cal.com sends it: the booking spread at the top level, no payload object
    request = signed(sample("calcom/meeting_ended.json"))
    SOURCE.verify(request, SECRET, NOW)
    assert "payload" not in json.loads(request.body)
    assert SOURCE.parse(request) == ()


@pytest.mark.parametrize(
    "document",
    [
        pytest.param({"triggerEvent": "MEETING_STARTED", "uid": CREATED_UID, "startTime": 1}, id="flat-started"),
        pytest.param({"triggerEvent": "RECORDING_READY", "downloadLink": "https://x.example"}, id="no-created-at"),
        pytest.param({"triggerEvent": "INSTANT_MEETING", "payload": "not an object"}, id="payload-not-object"),
        pytest.param({"triggerEvent": "FORM_SUBMITTED", "formId": "f-1", "responses": {}}, id="form"),
        pytest.param({"triggerEvent": "BOOKING_PAYMENT_INITIATED", "createdAt": "yesterday"}, id="bad-created-at"),
        pytest.param({"triggerEvent": "OOO_CREATED", "payload": {"oooEntry": {"id": 9}}}, id="out-of-office"),
        pytest.param({"triggerEvent": "AFTER_HOSTS_CAL_VIDEO_NO_SHOW", "bookingId": 4}, id="cal-video-no-show"),
    ],
)
def test_a_trigger_we_do_not_use_is_ignored_whatever_its_shape(document: dict[str, Any]) -> None:
    assert parse_body(json.dumps(document).encode()) == ()


# --- links and team


def test_without_a_booking_site_there_are_no_links() -> None:
    event = parse_sample("booking_created", source=CalcomSource())
    assert event.booking is not None
    assert event.booking.links == Links()


def test_a_trailing_slash_on_the_booking_site_is_not_doubled() -> None:
    event = parse_sample("booking_created", source=CalcomSource(booking_base_url=f"{BASE_URL}/"))
    assert event.booking is not None
    assert event.booking.links.cancel == f"{BASE_URL}/booking/{CREATED_UID}?cancel=true"


def test_the_organizer_listed_among_the_team_members_is_one_technician() -> None:
    # Given a team whose members include the organizer, and a member who never set a name
    members = [
        {"id": 1187, "name": "Sam Okafor", "email": "sam@msp.example"},
        {"id": 1203, "name": "", "email": "priya@msp.example"},
    ]
    [event] = parse_body(changed("booking_created", team={"name": "Service Desk", "id": 42, "members": members}))
    assert event.booking is not None
    assert event.booking.technicians == (
        Technician(id="1187", name="Sam Okafor", email="sam@msp.example"),
        Technician(id="1203", name="priya@msp.example", email="priya@msp.example"),
    )


# --- bodies that are not Cal.com's


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"\xff\xfe"])
def test_a_body_that_is_not_a_json_object_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedPayload) as raised:
        SOURCE.parse(WebhookRequest(headers={}, body=body))
    assert raised.value.http_status == 400


def _envelope_changed(**fields: Any) -> bytes:
    return json.dumps(json.loads(sample("calcom/booking_created.json")) | fields).encode()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param(changed("booking_created", drop="startTime"), "payload.startTime", id="no-start"),
        pytest.param(_envelope_changed(triggerEvent=42), "triggerEvent", id="trigger-not-a-string"),
        pytest.param(
            json.dumps({"createdAt": "2026-11-20T14:02:11Z", "payload": {}}).encode(), "triggerEvent", id="no-trigger"
        ),
        pytest.param(_envelope_changed(createdAt="yesterday"), "createdAt", id="bad-created-at"),
        pytest.param(changed("booking_rescheduled", drop="rescheduleUid"), "payload.rescheduleUid", id="no-old-uid"),
        pytest.param(changed("booking_created", attendees=[]), "payload.attendees", id="no-attendee"),
        pytest.param(
            changed("booking_created", attendees=[{"name": "D", "email": "d@example.com", "timeZone": "Mars/Base"}]),
            "payload.attendees.0.timeZone",
            id="unknown-zone",
        ),
        pytest.param(changed("booking_cancelled", drop="uid"), "payload.uid", id="cancel-without-uid"),
        pytest.param(changed("booking_no_show_updated", attendees=[]), "payload.attendees", id="no-show-of-nobody"),
    ],
)
def test_json_of_the_wrong_shape_names_the_field(body: bytes, field: str) -> None:
    with pytest.raises(UnsupportedPayload) as raised:
        parse_body(body)
    assert raised.value.field == field
    assert raised.value.http_status == 422
