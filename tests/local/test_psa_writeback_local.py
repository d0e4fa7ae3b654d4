"""The PSA write-back through the local runner: the no-show reaches the ticket in the runner's fake Autotask.

A call-in appointment linked to an Autotask ticket passes its start with nobody calling in: the rules mark it a
no-show, the customer's missed-appointment mail goes out, and the ticket (``GET /_local/psa``) is set to the
NO-SHOW status with one internal note. Autotask's webhook about that status, our own change coming back, is
recorded as such and changes nothing.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.local.conftest import OPS_TOKEN, START, LocalRunner
from tests.signing import sample

AUTH = {"Authorization": f"Bearer {OPS_TOKEN}", "Content-Type": "application/json"}
NO_SHOW_STATUS = "23"  # the runner's AutotaskNoShowStatusId


@pytest.fixture(autouse=True)
def _fresh(product: LocalRunner) -> None:
    assert product.post("/_local/reset").status == 200
    assert product.post("/_local/clock", {"now": START.isoformat()}).status == 200


def at(hour: int, minute: int = 0) -> datetime:
    return START.replace(hour=hour, minute=minute, second=0)


def book(local: LocalRunner, start: datetime) -> str:
    created = local.request(
        "POST",
        "/appointments",
        body=json.dumps(
            {
                "start": start.isoformat(),
                "end": (start + timedelta(minutes=30)).isoformat(),
                "timezone": "America/New_York",
                "type": "remote_call_in",
                "customer": {"name": "Lee Park", "email": "lee@parklaw.example"},
                "technicians": [{"id": "29683", "name": "Sam Okafor"}],
                "ticket": {"system": "autotask", "id": "48213", "number": "T20261123.0042"},
            }
        ).encode(),
        headers=AUTH,
    )
    assert created.status == 201, created.body
    appointment_id: str = created.json()["id"]
    return appointment_id


def detail(local: LocalRunner, appointment_id: str) -> dict[str, Any]:
    reply = local.request("GET", f"/appointments/{appointment_id}", headers=AUTH)
    assert reply.status == 200, reply.body
    body: dict[str, Any] = reply.json()
    return body


def test_a_no_show_reaches_the_ticket_with_one_note_and_the_mail_goes_out(product: LocalRunner) -> None:
    # Given a call-in appointment at 11:00 New York time, linked to Autotask ticket 48213
    appointment_id = book(product, at(16))  # 16:00 UTC = 11:00 EST
    # When its start passes and nobody calls in for ten minutes
    assert product.post("/_local/clock", {"now": at(16, 10).isoformat()}).status == 200
    # Then the appointment is a no-show and the missed-appointment mail is in the outbox
    assert detail(product, appointment_id)["status"] == "no_show"
    subjects = [mail["subject"] for mail in product.get("/_local/outbox").json()["items"]]
    assert any(subject.startswith("We missed you") for subject in subjects), subjects
    # And the fake Autotask shows the ticket in the NO-SHOW status with one internal note
    writes = product.get("/_local/psa").json()["items"]
    assert [(w["system"], w["ticket_id"], w["kind"]) for w in writes] == [
        ("autotask", "48213", "status"),
        ("autotask", "48213", "note"),
    ]
    assert writes[0]["status"] == NO_SHOW_STATUS
    assert "did not call in within 10 minutes of 11:00 EST" in writes[1]["text"]
    assert "missed-appointment mail sent" in writes[1]["text"]
    # And the appointment's history says it was written back
    history = detail(product, appointment_id)["history"]
    assert history[-1]["action"] == "psa_written"
    assert history[-1]["detail"]["status"] == NO_SHOW_STATUS

    # When Autotask's webhook about that status comes back (our own change)
    echo = json.loads(sample("autotask/ticket_no_show.json"))
    echo.update({"Id": 48213, "EventTime": at(16, 11).isoformat().replace("+00:00", "Z"), "SequenceNumber": 40})
    reply = product.send("autotask/ticket_no_show.json", body=json.dumps(echo).encode())
    assert reply.status == 202, reply.body
    assert product.post("/_local/settle").status == 200
    # Then it is recorded as our own change, with no second transition, mail or note
    after = detail(product, appointment_id)
    assert after["history"][-1]["action"] == "psa_echo"
    assert [e["action"] for e in after["history"]].count("no_show") == 1
    assert len(product.get("/_local/outbox").json()["items"]) == len(subjects)
    assert len(product.get("/_local/psa").json()["items"]) == 2
