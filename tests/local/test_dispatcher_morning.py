"""A dispatcher's Monday morning, through the local runner over HTTP: webhooks in, ops actions out."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from appointments import wiring
from appointments.domain.model import ExternalRef
from appointments.domain.outbox import MailKind
from tests.local.conftest import OPS_TOKEN, START

if TYPE_CHECKING:
    from tests.local.conftest import LocalRunner, Reply

AUTH = {"Authorization": f"Bearer {OPS_TOKEN}", "Content-Type": "application/json"}


@pytest.fixture(autouse=True)
def _fresh(product: LocalRunner) -> None:
    assert product.post("/_local/reset").status == 200
    assert product.post("/_local/clock", {"now": START.isoformat()}).status == 200


def ops(local: LocalRunner, method: str, path: str, body: Any = None) -> Reply:
    payload = b"{}" if body is None and method == "POST" else None if body is None else json.dumps(body).encode()
    return local.request(method, path, body=payload, headers=AUTH)


def book(local: LocalRunner, start_hour: int, *, name: str) -> str:
    start = START.replace(hour=start_hour, minute=0, second=0)
    reply = ops(
        local,
        "POST",
        "/appointments",
        {
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=30)).isoformat(),
            "timezone": "America/New_York",
            "type": "remote_call_in",
            "customer": {"name": name, "email": f"{name.lower()}@example.com"},
            "technicians": [{"id": "t-17", "name": "Sam Okafor"}],
        },
    )
    assert reply.status == 201, reply.body
    identifier: str = reply.json()["id"]
    return identifier


def history(local: LocalRunner, appointment_id: str) -> list[str]:
    reply = ops(local, "GET", f"/appointments/{appointment_id}")
    assert reply.status == 200
    return [entry["action"] for entry in reply.json()["history"]]


def test_a_dispatchers_morning(product: LocalRunner) -> None:
    # A booking page books an unassigned appointment for 18:00
    assert product.send("generic/appointment_scheduled_unassigned.json").status == 202
    product.post("/_local/settle")
    webhook_booked = wiring.store().find_by_external_ref(ExternalRef(system="generic", id="stf-982"))
    assert webhook_booked is not None

    # Ops find it among today's unassigned appointments and assign Alex
    listed = ops(product, "GET", "/appointments?from=2026-11-23T00:00:00Z&unassigned=true").json()["items"]
    assert [item["id"] for item in listed] == [webhook_booked]
    reassigned = ops(
        product,
        "POST",
        f"/appointments/{webhook_booked}/reassign",
        {"technicians": [{"id": "t-23", "name": "Alex Kim"}]},
    )
    assert reassigned.status == 200
    assert reassigned.headers["ETag"] == '"2"'

    # A second customer does not answer: voicemail, the link is mailed, the status stays
    voicemail = book(product, 14, name="Ravi")
    attempt = ops(product, "POST", f"/appointments/{voicemail}/contact-attempts", {"outcome": "voicemail"})
    assert attempt.json()["status"] == "scheduled"
    assert MailKind.CONTACT_ATTEMPT in [m.kind for m in wiring.store().load(voicemail).mails]

    # A third cancels and is offered the 15% coupon
    cancelled = book(product, 15, name="Mia")
    reply = ops(product, "POST", f"/appointments/{cancelled}/cancel", {"reason": "Fixed it themselves"})
    assert reply.json()["cancellation"]["coupon"]["percent"] == 15

    # A fourth misses the call, calls back, and the work gets done
    no_show = book(product, 11, name="Lee")
    assert ops(product, "POST", f"/appointments/{no_show}/no-show", {}).status == 409  # not started yet
    product.post("/_local/clock", {"now": "2026-11-23T11:12:00Z"})
    # The rules marked it at 11:10 and mailed the customer; Lee calls back and the dispatcher reopens it
    missed = ops(product, "GET", f"/appointments/{no_show}").json()
    assert (missed["status"], missed["history"][-1]["actor"]["kind"]) == ("no_show", "system")
    assert ops(product, "POST", f"/appointments/{no_show}/reopen").json()["status"] == "scheduled"
    done = ops(product, "POST", f"/appointments/{no_show}/complete", {"duration_minutes": 20, "outcome": "Reset MFA"})
    assert done.json()["status"] == "completed"

    # Each appointment's history tells its story (booked the same day: the 24 h reminder is skipped, and says so)
    assert history(product, webhook_booked) == ["create", "reassign", "notice_skipped"]
    assert history(product, voicemail) == ["create", "contact_attempt", "notice_skipped"]
    assert history(product, cancelled) == ["create", "cancel"]
    assert history(product, no_show) == ["create", "notice_skipped", "no_show", "reopen", "complete"]


def test_the_ops_api_refuses_a_missing_or_wrong_token_before_the_function_runs(product: LocalRunner) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}):
        reply = product.request("POST", "/appointments", body=b"{not json", headers=headers)
        assert reply.status == 401
        assert reply.json()["error"]["code"] == "unauthorized"


def test_the_actor_in_history_is_the_dev_identity(product: LocalRunner) -> None:
    appointment_id = book(product, 16, name="Ana")
    [entry] = ops(product, "GET", f"/appointments/{appointment_id}").json()["history"]
    assert entry["actor"] == {"kind": "ops", "id": "arn:aws:iam::123456789012:user/local-dev"}


def test_swagger_ui_is_served_through_the_runner_without_a_token(product: LocalRunner) -> None:
    reply = product.request("GET", "/docs")
    assert reply.status == 200
    assert b"swagger-ui" in reply.body.lower()
