"""The timed rules through the local runner over HTTP: time passes only by ``POST /_local/clock``, and the
runner fires ``scheduled_checks`` as EventBridge Scheduler would (once per clock move, at its latest minute)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from appointments import wiring
from appointments.domain.outbox import MailKind
from tests.local.conftest import OPS_TOKEN, START
from tests.signing import sample

if TYPE_CHECKING:
    from tests.local.conftest import LocalRunner

AUTH = {"Authorization": f"Bearer {OPS_TOKEN}", "Content-Type": "application/json"}
SCHEDULED_CHECKS = "ScheduledChecksFunction.EveryMinute"


@pytest.fixture(autouse=True)
def _fresh(product: LocalRunner) -> None:
    assert product.post("/_local/reset").status == 200
    assert product.post("/_local/clock", {"now": START.isoformat()}).status == 200


def at(hour: int, minute: int = 0) -> datetime:
    return START.replace(hour=hour, minute=minute, second=0)


def move_clock(local: LocalRunner, now: datetime) -> list[str]:
    reply = local.post("/_local/clock", {"now": now.isoformat()})
    assert reply.status == 200, reply.body
    ran: list[str] = reply.json()["ran"]
    return ran


def detail(local: LocalRunner, appointment_id: str) -> dict[str, Any]:
    reply = local.request("GET", f"/appointments/{appointment_id}", headers=AUTH)
    assert reply.status == 200, reply.body
    body: dict[str, Any] = reply.json()
    return body


def actions(local: LocalRunner, appointment_id: str) -> list[str]:
    return [entry["action"] for entry in detail(local, appointment_id)["history"]]


def outbox_records(appointment_id: str) -> list[MailKind]:
    """The mails recorded with the appointment (the SES sender is not built yet: they wait there)."""
    return [mail.kind for mail in wiring.store().load(appointment_id).mails]


def book_unassigned(local: LocalRunner, start: datetime) -> str:
    """The booking page's unassigned sample, moved to ``start`` and sent now, signed as its vendor would."""
    document = json.loads(sample("generic/appointment_scheduled_unassigned.json"))
    document["occurred_at"] = local.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    document["appointment"]["start"] = start.isoformat()
    document["appointment"]["end"] = (start + timedelta(minutes=30)).isoformat()
    assert local.send("generic/appointment_scheduled_unassigned.json", body=json.dumps(document).encode()).status == 202
    local.post("/_local/settle")
    found = local.request("GET", "/appointments?external_id=generic:stf-982", headers=AUTH).json()["items"]
    assert [item["status"] for item in found] == ["scheduled"]
    appointment_id: str = found[0]["id"]
    return appointment_id


def test_an_unassigned_booking_gets_its_pre_notice_and_is_auto_cancelled_as_the_clock_moves(
    product: LocalRunner,
) -> None:
    # Given an unassigned booking made at 10:00 for 14:30 (pre-notice 11:30, auto-cancel 13:30)
    start = at(14, 30)
    appointment_id = book_unassigned(product, start)
    assert actions(product, appointment_id) == ["create"]

    # When the clock moves to a minute before the pre-notice
    assert SCHEDULED_CHECKS in move_clock(product, at(11, 29))

    # Then only the 24 h reminder has been looked at: skipped, since it was booked after its time
    assert actions(product, appointment_id) == ["create", "notice_skipped"]
    assert detail(product, appointment_id)["next_due_at"] == "2026-11-23T11:30:00Z"

    # When the clock reaches 11:30
    move_clock(product, at(11, 30))

    # Then the customer is told a technician is still being assigned, by the system
    noticed = detail(product, appointment_id)
    assert noticed["status"] == "scheduled"
    assert [(e["action"], e["actor"]["kind"]) for e in noticed["history"][-1:]] == [("pre_notice", "system")]
    assert noticed["history"][-1]["detail"]["due_at"] == "2026-11-23T11:30:00+00:00"
    assert noticed["next_due_at"] == "2026-11-23T13:30:00Z"
    assert MailKind.PRE_NOTICE in outbox_records(appointment_id)

    # When two hours pass and nobody has been assigned
    moved = product.post("/_local/clock", {"advance_seconds": 7200})

    # Then the system has cancelled it at 13:30 with a 15% coupon, mailed the customer and alerted ops
    assert SCHEDULED_CHECKS in moved.json()["ran"]
    cancelled = detail(product, appointment_id)
    assert cancelled["status"] == "cancelled"
    assert (cancelled["cancellation"]["by"], cancelled["cancellation"]["coupon"]["percent"]) == ("system", 15)
    assert cancelled["cancellation"]["at"] == "2026-11-23T13:30:00Z"
    assert cancelled["next_due_at"] is None
    assert [(e["action"], e["actor"]["kind"]) for e in cancelled["history"]] == [
        ("create", "source"),
        ("notice_skipped", "system"),
        ("pre_notice", "system"),
        ("auto_cancel", "system"),
    ]
    assert {MailKind.PRE_NOTICE, MailKind.CANCELLED, MailKind.OPS_ALERT} <= set(outbox_records(appointment_id))

    # And its start passes without anything more
    move_clock(product, start + timedelta(minutes=30))
    assert len(actions(product, appointment_id)) == 4


def test_an_assigned_call_in_appointment_nobody_calls_for_is_a_no_show_ten_minutes_after_its_start(
    product: LocalRunner,
) -> None:
    # Given a developer who had moved the clock to the afternoon and, after a reset (the clock only goes
    # back right after one), set it back to the morning
    move_clock(product, at(16))
    assert product.post("/_local/reset").status == 200
    assert move_clock(product, START) == []
    # And a call-in appointment at 11:00 with Sam assigned, booked by phone
    start = at(11)
    created = product.request(
        "POST",
        "/appointments",
        body=json.dumps(
            {
                "start": start.isoformat(),
                "end": (start + timedelta(minutes=30)).isoformat(),
                "timezone": "America/New_York",
                "type": "remote_call_in",
                "customer": {"name": "Lee Park", "email": "lee@parklaw.example"},
                "technicians": [{"id": "t-17", "name": "Sam Okafor"}],
            }
        ).encode(),
        headers=AUTH,
    )
    assert created.status == 201, created.body
    appointment_id = created.json()["id"]

    # When the clock passes the start and nobody calls in (the schedule fires again from the new morning)
    assert SCHEDULED_CHECKS in move_clock(product, at(11, 9))
    assert detail(product, appointment_id)["status"] == "scheduled"
    assert SCHEDULED_CHECKS in move_clock(product, at(11, 10))

    # Then the rules mark it a no-show at 11:10 and the customer's mail waits in the outbox
    missed = detail(product, appointment_id)
    assert (missed["status"], missed["no_show_at"]) == ("no_show", "2026-11-23T11:10:00Z")
    assert [(e["action"], e["actor"]["kind"]) for e in missed["history"][-1:]] == [("no_show", "system")]
    assert MailKind.NO_SHOW in outbox_records(appointment_id)
