"""One appointment's whole life through the local runner over HTTP, as its customer (``/_local/outbox``, what
SES sent) and a subscriber to the event bus (``/_local/events``) see it.

Nothing but the API and the runner's clock moves it: the table's stream hands each change to the outbox
relay, which sends the mail through SES and publishes the history as domain events; moving the clock
fires ``scheduled_checks``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from tests.local.conftest import OPS_TOKEN, START

if TYPE_CHECKING:
    from tests.local.conftest import LocalRunner

AUTH = {"Authorization": f"Bearer {OPS_TOKEN}", "Content-Type": "application/json"}
CUSTOMER = "lee@parklaw.example"
FIRST_START = START.replace(hour=17, minute=0, second=0)  # Monday 12:00 PM EST; the runner starts at 10:00:30Z
MOVED_START = START.replace(hour=19, minute=0, second=0)  # Monday 2:00 PM EST
FIRST = "Monday 23 November 2026, 12:00 PM EST"
MOVED = "Monday 23 November 2026, 2:00 PM EST"


@pytest.fixture(autouse=True)
def _fresh(product: LocalRunner) -> None:
    assert product.post("/_local/reset").status == 200
    assert product.post("/_local/clock", {"now": START.isoformat()}).status == 200


def ops(local: LocalRunner, path: str, document: Any) -> dict[str, Any]:
    """An ops action, then ``settle``: the stream has reached the relay, as the background pump would do at once."""
    reply = local.request("POST", path, body=json.dumps(document).encode(), headers=AUTH)
    assert reply.status in (200, 201), reply.body
    assert local.post("/_local/settle").status == 200
    body: dict[str, Any] = reply.json()
    return body


def move_clock(local: LocalRunner, now: datetime) -> None:
    reply = local.post("/_local/clock", {"now": now.isoformat()})
    assert reply.status == 200, reply.body
    assert "ScheduledChecksFunction.EveryMinute" in reply.json()["ran"]


def outbox(local: LocalRunner) -> list[tuple[str, tuple[str, ...], str]]:
    """(subject, recipients, sent at) of each mail SES took, oldest first."""
    return [(m["subject"], tuple(m["to"]), m["sent_at"]) for m in local.get("/_local/outbox").json()["items"]]


def bus_events(local: LocalRunner) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = local.get("/_local/events").json()["items"]
    return items


def test_one_appointments_life_mails_the_customer_at_each_turn_and_publishes_each_change_once(
    product: LocalRunner,
) -> None:
    # Given a dispatcher's booking at 10:00 for 17:00 UTC (noon in New York) with nobody assigned yet
    booked = ops(
        product,
        "/appointments",
        {
            "start": FIRST_START.isoformat(),
            "end": (FIRST_START + timedelta(minutes=30)).isoformat(),
            "timezone": "America/New_York",
            "type": "remote_call_in",
            "customer": {"name": "Lee Park", "email": CUSTOMER},
        },
    )
    appointment_id = booked["id"]
    # When the clock reaches S - 3 h with nobody assigned
    move_clock(product, FIRST_START - timedelta(hours=3))
    # And a dispatcher assigns Alex at 14:05, then moves the appointment to 19:00 at 14:10
    product.post("/_local/clock", {"now": "2026-11-23T14:05:00Z"})
    ops(product, f"/appointments/{appointment_id}/reassign", {"technicians": [{"id": "t-23", "name": "Alex Kim"}]})
    product.post("/_local/clock", {"now": "2026-11-23T14:10:00Z"})
    ops(product, f"/appointments/{appointment_id}/reschedule", {"start": MOVED_START.isoformat()})
    # And nobody calls in by ten minutes after the new start
    move_clock(product, MOVED_START + timedelta(minutes=10))

    # Then SES sent the customer, in order and each when its turn came: the confirmation, the pre-notice,
    # the new technician, the new time and the missed appointment, all in the customer's own time
    to = (CUSTOMER,)
    assert outbox(product) == [
        (f"Appointment confirmed: {FIRST}", to, "2026-11-23T10:00:30+00:00"),
        (f"We are still assigning a technician for {FIRST}", to, "2026-11-23T14:00:00+00:00"),
        (f"New technician for your appointment on {FIRST}: Alex Kim", to, "2026-11-23T14:05:00+00:00"),
        (f"Your appointment has moved to {MOVED}", to, "2026-11-23T14:10:00+00:00"),
        (f"We missed you: your appointment on {MOVED}", to, "2026-11-23T19:10:00+00:00"),
    ]
    # And the bus carried one event per history entry, in order, each with its own id
    events = bus_events(product)
    history = product.request("GET", f"/appointments/{appointment_id}", headers=AUTH).json()["history"]
    assert [event["detail_type"] for event in events] == [f"appointment.{entry['action']}" for entry in history]
    assert [event["detail_type"] for event in events] == [
        "appointment.create",
        "appointment.notice_skipped",  # booked after its 24 h reminder time
        "appointment.pre_notice",
        "appointment.reassign",
        "appointment.reschedule",
        "appointment.notice_skipped",  # the new time's reminder was due before the move
        "appointment.no_show",
    ]
    ids = [event["detail"]["event_id"] for event in events]
    assert len(set(ids)) == len(ids)
    assert all(event_id.startswith(f"{appointment_id}/H#") for event_id in ids)
    assert {(event["source"], event["bus"]) for event in events} == {("appointment-desk", "local-appointments")}
    assert [event["detail"]["to_status"] for event in events][-1] == "no_show"
    assert events[-1]["detail"]["appointment"]["start"].startswith("2026-11-23T19:00:00")
