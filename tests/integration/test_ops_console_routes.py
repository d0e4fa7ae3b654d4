"""What the dispatcher's console needs from the ops API, through the real handler under moto: the attention
list (and what it costs to read), search, and a person signed in with Cognito as the actor."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from appointments import wiring
from appointments.domain import lifecycle
from appointments.domain.history import Record
from appointments.domain.model import Actor
from tests.integration.stack import Stack, stack_under_moto

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
DISPATCHER = {"email": "dana.dispatch@msp.example", "sub": "5f0c7e1e-0000-4000-8000-000000000001"}


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with stack_under_moto(monkeypatch, NOW) as built:
        yield built


def create(stack: Stack, hours: float, **changes: Any) -> str:
    start = NOW + timedelta(hours=hours)
    body: dict[str, Any] = {
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=30)).isoformat(),
        "timezone": "America/New_York",
        "type": "remote_call_in",
        "customer": {"name": "Dana Reyes", "email": "dana@example.com", "company": "Reyes Dental"},
        "technicians": [{"id": "t-17", "name": "Sam Okafor"}],
        "ticket": {"system": "autotask", "id": "48213", "number": "T20261123.0004"},
    } | changes
    reply = stack.ops("POST", "/appointments", body)
    assert reply.status == 201, reply.body
    appointment_id: str = reply.body["id"]
    return appointment_id


def record(appointment_id: str, fact: Record, **detail: Any) -> None:
    store = wiring.store()
    change = lifecycle.record(store.get(appointment_id), fact, at=NOW, actor=Actor.system(), detail=detail)
    store.commit(change)


# --- GET /attention -------------------------------------------------------------------------------


def test_attention_lists_what_needs_a_human_most_urgent_first(stack: Stack) -> None:
    # Given an unassigned appointment in 5 hours, a bounced confirmation, and a quiet assigned one
    unassigned = create(stack, 5, technicians=[])
    bounced = create(stack, 30)
    record(bounced, Record.MAIL_BOUNCED, kind="confirmation", feedback="bounce", reason="no such mailbox")
    create(stack, 40)

    # When the console asks what needs attention
    reply = stack.ops("GET", "/attention")

    # Then both are listed, the unassigned one first, with the fields the console shows
    assert reply.status == 200, reply.body
    assert reply.body["now"] == "2026-11-23T10:00:00Z"
    first, second = reply.body["items"]
    assert first == {
        "kind": "unassigned_soon",
        "appointment_id": unassigned,
        "customer": "Dana Reyes",
        "start": "2026-11-23T15:00:00Z",
        "timezone": "America/New_York",
        "technicians": [],
        "pre_notice_at": "2026-11-23T12:00:00Z",
        "auto_cancel_at": "2026-11-23T14:00:00Z",
        "detail": "no technician assigned; starts in 5.0 h",
        "at": "2026-11-23T10:00:00Z",
        "action": "reassign",
    }
    assert (second["kind"], second["appointment_id"], second["action"]) == ("mail_bounced", bounced, "contact_attempt")
    assert second["technicians"] == ["Sam Okafor"]


def test_attention_reads_the_window_once_and_loads_only_what_needs_a_human(stack: Stack) -> None:
    # Given three appointments booked three days ago, one booked today, and one today whose mail bounced
    stack.clock.set(NOW - timedelta(days=3))
    for hours in (80, 90, 100):
        create(stack, hours)
    stack.clock.set(NOW)
    changed = create(stack, 20)
    bounced = create(stack, 30)
    store = wiring.store()
    appointment = store.get(bounced)
    store.commit(lifecycle.record(appointment, Record.MAIL_BOUNCED, at=NOW, actor=Actor.system()))
    calls: list[str] = []
    client = wiring.store()._client  # type: ignore[attr-defined]
    client.meta.events.register("before-call", lambda model, **_: calls.append(model.name))

    # When the attention list is read
    assert stack.ops("GET", "/attention").status == 200

    # Then: one Query per UTC day of [now - 2 days, now + 7 days] (10 days), one Query loading the appointment
    # whose mail bounced (its state, history and mails: what bounced), none for the one merely booked today,
    # one Query of the waiting events
    assert calls.count("Query") == 10 + 1 + 1, calls
    assert set(calls) == {"Query"}
    assert changed


# --- GET /appointments?q= -------------------------------------------------------------------------


def test_search_matches_name_email_company_ticket_and_id_case_insensitively(stack: Stack) -> None:
    dana = create(stack, 5)
    pat = create(
        stack,
        6,
        customer={"name": "Pat O'Neil", "email": "pat@oneil.example", "company": "O'Neil Plumbing"},
        ticket={"system": "halopsa", "id": "991", "number": "HP-991"},
    )
    found = {
        q: [item["id"] for item in stack.ops("GET", f"/appointments?q={q}").body["items"]]
        for q in ("reyes", "PAT@", "plumbing", "hp-99", "t20261123", dana[-8:].lower())
    }
    assert found == {
        "reyes": [dana],
        "PAT@": [pat],
        "plumbing": [pat],
        "hp-99": [pat],
        "t20261123": [dana],
        dana[-8:].lower(): [dana],
    }


def test_search_combines_with_the_filters_and_looks_a_week_back(stack: Stack) -> None:
    stack.clock.set(NOW - timedelta(days=6))
    earlier = create(stack, 1)  # started 6 days ago: inside the search's default window
    stack.clock.set(NOW)
    unassigned = create(stack, 24 * 29, technicians=[])  # 29 days ahead: inside it too
    create(stack, 24 * 31)  # 31 days ahead: outside
    everyone = stack.ops("GET", "/appointments?q=dana")
    assert [item["id"] for item in everyone.body["items"]] == [earlier, unassigned]
    only_unassigned = stack.ops("GET", "/appointments?q=dana&unassigned=true")
    assert [item["id"] for item in only_unassigned.body["items"]] == [unassigned]


def test_a_search_shorter_than_two_characters_is_422_naming_q(stack: Stack) -> None:
    reply = stack.ops("GET", "/appointments?q=d")
    assert reply.status == 422
    assert reply.body["error"]["details"][0]["field"] == "q"


# --- people signed in through Cognito (ConsoleApi) -------------------------------------------------


def test_a_person_signed_in_with_cognito_is_the_actor_through_the_proxy_resource(stack: Stack) -> None:
    # Given an appointment, and a request as ConsoleApi passes it: /{proxy+}, Cognito claims, no IAM caller
    appointment_id = create(stack, 5)
    reply = stack.ops_raw(
        "POST",
        f"/appointments/{appointment_id}/notes",
        {"text": "Called from the console."},
        caller=None,
        claims=DISPATCHER,
        proxy=True,
    )

    # Then the route is found by its path and the person's email is the actor in history
    assert reply["statusCode"] == 200, reply["body"]
    history = wiring.store().load(appointment_id).history
    assert (history[-1].action, history[-1].actor.id) == ("note", "dana.dispatch@msp.example")


def test_iam_stays_first_when_both_are_present(stack: Stack) -> None:
    appointment_id = create(stack, 5)
    reply = stack.ops_raw("POST", f"/appointments/{appointment_id}/notes", {"text": "x"}, claims=DISPATCHER, proxy=True)
    assert reply["statusCode"] == 200, reply["body"]
    assert wiring.store().load(appointment_id).history[-1].actor.id.startswith("arn:aws:iam::")


def test_claims_without_an_email_are_no_caller(stack: Stack) -> None:
    reply = stack.ops_raw("GET", "/attention", caller=None, claims={"sub": "x"}, proxy=True)
    assert reply["statusCode"] == 401
