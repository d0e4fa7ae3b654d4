"""TimeZest through the local runner over HTTP: a request put into the runner's fake TimeZest is read by the
TimeZest poller as EventBridge Scheduler would run it (every minute of the runner's clock), and shows in the
ops API as the appointment it is."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from tests.local.conftest import OPS_TOKEN, START

if TYPE_CHECKING:
    from tests.local.conftest import LocalRunner

AUTH = {"Authorization": f"Bearer {OPS_TOKEN}"}
POLLER = "TimeZestPollerFunction.EveryMinute"
REQUEST_ID = "sreq_local_0001"
TOMORROW = START.replace(minute=0, second=0) + timedelta(days=1)


@pytest.fixture(autouse=True)
def _fresh(product: LocalRunner) -> None:
    assert product.post("/_local/reset").status == 200
    assert product.post("/_local/clock", {"now": START.isoformat()}).status == 200


def a_request(**changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "id": REQUEST_ID,
        "status": "scheduled",
        "appointment_type_id": "apty_remote30",
        "end_user_name": "Pat Customer",
        "end_user_email": "pat@client.example",
        "associated_entities": [
            {"type": "connectwise_psa/service_ticket", "id": 4711, "number": "#T20264711"},
            {"type": "connectwise_psa/company", "id": 12},
        ],
        "resources": [{"type": "team", "id": "team_1", "name": "Tier 1"}],
        "scheduled_agents": [],
        "selected_start_time": int(TOMORROW.timestamp()),
        "selected_time_zone": "America/New_York",
        "scheduling_url": "https://msp.timezest.com/r/local-1",
    }
    request.update(changes)
    return request


def put(local: LocalRunner, request: dict[str, Any]) -> dict[str, Any]:
    reply = local.post("/_local/timezest/requests", request)
    assert reply.status == 200, reply.body
    stored: dict[str, Any] = reply.json()
    return stored


def a_minute_passes(local: LocalRunner) -> list[str]:
    moved = local.post("/_local/clock", {"advance_seconds": 60})
    assert moved.status == 200, moved.body
    assert local.post("/_local/settle").status == 200
    ran: list[str] = moved.json()["ran"]
    return ran


def found(local: LocalRunner) -> list[dict[str, Any]]:
    reply = local.get(f"/appointments?external_id=timezest:{REQUEST_ID}", headers=AUTH)
    assert reply.status == 200, reply.body
    items: list[dict[str, Any]] = reply.json()["items"]
    return items


def detail(local: LocalRunner, appointment_id: str) -> dict[str, Any]:
    reply = local.get(f"/appointments/{appointment_id}", headers=AUTH)
    assert reply.status == 200, reply.body
    body: dict[str, Any] = reply.json()
    return body


def test_the_runner_schedules_the_timezest_poller_every_minute(product: LocalRunner) -> None:
    # When the runner's schedules are listed
    schedules = product.get("/_local/schedules").json()["items"]
    # Then the TimeZest poller runs every minute, enabled for local development
    polled = [s for s in schedules if f"{s['function']}.{s['event']}" == POLLER]
    assert len(polled) == 1, schedules
    assert polled[0]["expression"] == "rate(1 minute)"


def test_a_request_put_in_the_fake_timezest_is_booked_then_cancelled_by_the_poller(product: LocalRunner) -> None:
    # Given a request booked in TimeZest for tomorrow, given to a team nobody has taken yet
    stored = put(product, a_request())
    assert stored["updated_at"] == int(START.timestamp())
    assert [r["id"] for r in product.get("/_local/timezest/requests").json()["items"]] == [REQUEST_ID]
    assert found(product) == []

    # When a minute passes (the poller runs) and everything settles
    assert POLLER in a_minute_passes(product)

    # Then the desk holds it: scheduled, unassigned, with its ticket, at the time picked
    [item] = found(product)
    booked = detail(product, item["id"])
    assert booked["status"] == "scheduled"
    assert booked["technicians"] == []
    assert booked["ticket"]["system"] == "connectwise"
    assert booked["ticket"]["id"] == "4711"
    assert booked["ticket"]["number"] == "T20264711"
    assert booked["timezone"] == "America/New_York"
    assert booked["start"].replace("Z", "+00:00") == TOMORROW.isoformat()

    # When the customer cancels it in TimeZest and another minute passes
    put(product, a_request(status="cancelled"))
    assert POLLER in a_minute_passes(product)

    # Then the same appointment is cancelled
    [after] = found(product)
    assert after["id"] == item["id"]
    cancelled = detail(product, item["id"])
    assert cancelled["status"] == "cancelled"
    assert [entry["action"] for entry in cancelled["history"]][:1] == ["create"]


def test_an_invitation_not_answered_yet_books_nothing(product: LocalRunner) -> None:
    # Given an invitation sent but not answered (no time picked)
    put(product, a_request(status="sent", selected_start_time=None))
    # When a minute passes
    assert POLLER in a_minute_passes(product)
    # Then there is no appointment
    assert found(product) == []
