"""The ops API through its real handler under moto: every route, its errors, and what it records."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from appointments import wiring
from appointments.domain.outbox import MailKind
from tests.integration.stack import OPS_CALLER, Stack, stack_under_moto
from tests.signing import sample

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
START = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with stack_under_moto(monkeypatch, NOW) as built:
        yield built


def booking(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "start": START.isoformat(),
        "end": (START + timedelta(minutes=30)).isoformat(),
        "timezone": "America/New_York",
        "type": "remote_call_in",
        "customer": {"name": "Dana Reyes", "email": "dana@example.com", "phone": "+1 212 555 0100"},
        "technicians": [{"id": "t-17", "name": "Sam Okafor", "email": "sam@msp.example"}],
        "ticket": {"system": "autotask", "id": "48213", "number": "T20261123.0004"},
    }
    return body | changes


def created(stack: Stack, **changes: Any) -> dict[str, Any]:
    reply = stack.ops("POST", "/appointments", booking(**changes))
    assert reply.status == 201, reply.body
    result: dict[str, Any] = reply.body
    return result


def mails_of(appointment_id: str) -> list[MailKind]:
    return [mail.kind for mail in wiring.store().load(appointment_id).mails]


def test_a_phone_booking_is_created_confirmed_to_the_customer_and_armed(stack: Stack) -> None:
    body = created(stack)
    assert body["status"] == "scheduled"
    assert body["version"] == 1
    assert body["allowed_actions"][:3] == ["reschedule", "defer", "request_reschedule"]
    # An assigned call-in appointment: the first check is its reminder, 24 h before (already past: look now).
    assert (
        body["next_due_at"] == (START - timedelta(hours=24)).isoformat().replace("+00:00", "Z") or body["next_due_at"]
    )
    assert mails_of(body["id"]) == [MailKind.CONFIRMATION]
    [entry] = wiring.store().load(body["id"]).history
    assert entry.actor.id == OPS_CALLER


def test_the_detail_shows_notes_attempts_and_history_with_an_etag(stack: Stack) -> None:
    appointment_id = created(stack)["id"]
    stack.ops("POST", f"/appointments/{appointment_id}/notes", {"text": "Prefers mornings."})
    stack.ops("POST", f"/appointments/{appointment_id}/contact-attempts", {"outcome": "voicemail", "note": "left VM"})

    reply = stack.ops("GET", f"/appointments/{appointment_id}")

    assert reply.status == 200
    assert reply.headers["ETag"] == '"3"'
    detail = reply.body
    assert [note["text"] for note in detail["notes"]] == ["Prefers mornings."]
    assert [attempt["outcome"] for attempt in detail["contact_attempts"]] == ["voicemail"]
    assert [entry["action"] for entry in detail["history"]] == ["create", "note", "contact_attempt"]
    # A note is never mailed; a voicemail sends the link; the status stays.
    assert sorted(mails_of(appointment_id)) == sorted([MailKind.CONFIRMATION, MailKind.CONTACT_ATTEMPT])
    assert detail["status"] == "scheduled"


def test_cancelling_offers_a_coupon_and_mails_it(stack: Stack) -> None:
    appointment_id = created(stack)["id"]
    reply = stack.ops("POST", f"/appointments/{appointment_id}/cancel", {"reason": "customer fixed it"})
    assert reply.status == 200
    cancellation = reply.body["cancellation"]
    assert cancellation["by"] == "ops"
    assert cancellation["coupon"]["percent"] == 15
    assert len(cancellation["coupon"]["code"]) == 19
    [cancelled_mail] = [m for m in wiring.store().load(appointment_id).mails if m.kind is MailKind.CANCELLED]
    assert cancelled_mail.context["coupon"]["code"] == cancellation["coupon"]["code"]


def test_no_coupon_when_the_customer_already_has_a_discount(stack: Stack) -> None:
    appointment_id = created(stack, discount={"percent": 10, "code": "LOYAL10"})["id"]
    reply = stack.ops("POST", f"/appointments/{appointment_id}/cancel", {"reason": "no longer needed"})
    assert reply.body["cancellation"]["coupon"] is None


def test_an_action_the_status_does_not_allow_is_409_naming_status_and_allowed_actions(stack: Stack) -> None:
    appointment_id = created(stack)["id"]
    stack.ops("POST", f"/appointments/{appointment_id}/cancel", {"reason": "x"})
    reply = stack.ops("POST", f"/appointments/{appointment_id}/confirm", {})
    assert reply.status == 409
    assert reply.body["error"]["code"] == "invalid_transition"
    assert reply.body["error"]["details"] == [{"status": "cancelled", "action": "confirm", "allowed_actions": []}]


def test_a_stale_version_is_412_and_changes_nothing(stack: Stack) -> None:
    appointment_id = created(stack)["id"]
    stack.ops("POST", f"/appointments/{appointment_id}/notes", {"text": "first"})
    reply = stack.ops("POST", f"/appointments/{appointment_id}/notes", {"text": "late"}, headers={"If-Match": '"1"'})
    assert reply.status == 412
    assert reply.body["error"]["code"] == "precondition_failed"
    assert wiring.store().get(appointment_id).version == 2


def test_the_current_version_in_if_match_goes_through(stack: Stack) -> None:
    appointment_id = created(stack)["id"]
    reply = stack.ops(
        "POST", f"/appointments/{appointment_id}/hold", {"on": True, "reason": "VIP"}, headers={"If-Match": "1"}
    )
    assert reply.status == 200
    assert reply.headers["ETag"] == '"2"'


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/appointments", booking(start="tomorrow"), "start"),
        ("/appointments", booking(customer={"name": "Dana", "email": "not-an-email"}), "customer.email"),
        ("/appointments", booking(colour="blue"), "colour"),
        ("/appointments/{id}/cancel", {}, "reason"),
        ("/appointments/{id}/complete", {"duration_minutes": -5, "outcome": "done"}, "duration_minutes"),
        ("/appointments/{id}/contact-attempts", {"outcome": "email"}, "outcome"),
        ("/appointments/{id}/defer", {"weeks": 99}, "weeks"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_changes_nothing(
    stack: Stack, path: str, body: dict[str, Any], field: str
) -> None:
    appointment_id = created(stack)["id"]
    reply = stack.ops("POST", path.replace("{id}", appointment_id), body)
    assert reply.status == 422, reply.body
    assert field in [detail["field"] for detail in reply.body["error"]["details"]]
    assert wiring.store().get(appointment_id).version == 1


def test_an_unknown_appointment_is_404(stack: Stack) -> None:
    reply = stack.ops("POST", "/appointments/01NOPE/confirm", {})
    assert reply.status == 404
    assert reply.body["error"]["code"] == "appointment_not_found"
    assert stack.ops("GET", "/appointments/01NOPE").status == 404


def test_a_request_without_a_caller_is_401_before_its_body_is_read(stack: Stack) -> None:
    reply = stack.ops("POST", "/appointments", raw=b"not json", caller=None)
    assert reply.status == 401
    assert reply.body["error"]["code"] == "unauthorized"
    assert stack.table_items() == []
    for path in ("/appointments", "/appointments/01ANY"):
        assert stack.ops("GET", path, caller=None).status == 401


def test_the_list_filters_by_status_assignment_technician_and_external_id(stack: Stack) -> None:
    first = created(stack)["id"]
    second = created(
        stack,
        technicians=[],
        start=(START + timedelta(hours=1)).isoformat(),
        end=(START + timedelta(hours=2)).isoformat(),
    )["id"]
    everything = stack.ops("GET", "/appointments?from=2026-11-23T00:00:00Z&to=2026-11-24T00:00:00Z")
    assert [item["id"] for item in everything.body["items"]] == [first, second]
    unassigned = stack.ops("GET", "/appointments?from=2026-11-23T00:00:00Z&unassigned=true")
    assert [item["id"] for item in unassigned.body["items"]] == [second]
    by_technician = stack.ops("GET", "/appointments?from=2026-11-23T00:00:00Z&technician=t-17")
    assert [item["id"] for item in by_technician.body["items"]] == [first]
    bad = stack.ops("GET", "/appointments?status=lost")
    assert bad.status == 422
    assert bad.body["error"]["details"][0]["field"] == "status"


def act(stack: Stack, appointment_id: str, action: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    reply = stack.ops("POST", f"/appointments/{appointment_id}/{action}", body if body is not None else {})
    assert reply.status == 200, reply.body
    result: dict[str, Any] = reply.body
    return result


def test_reschedule_moves_the_time_keeps_the_length_and_mails_the_customer(stack: Stack) -> None:
    appointment_id = created(stack)["id"]
    moved = act(stack, appointment_id, "reschedule", {"start": "2026-11-24T16:00:00Z", "message": "Sam is out today"})
    assert (moved["start"], moved["end"]) == ("2026-11-24T16:00:00Z", "2026-11-24T16:30:00Z")
    [mail] = [m for m in wiring.store().load(appointment_id).mails if m.kind is MailKind.RESCHEDULED]
    assert mail.context == {"message": "Sam is out today"}


def test_request_reschedule_then_confirm(stack: Stack) -> None:
    appointment_id = created(stack)["id"]
    assert act(stack, appointment_id, "request-reschedule", {"message": "Pick a new time"})["status"] == "requested"
    assert act(stack, appointment_id, "confirm")["status"] == "scheduled"
    assert sorted(mails_of(appointment_id)) == sorted(
        [MailKind.CONFIRMATION, MailKind.RESCHEDULE_REQUEST, MailKind.CONFIRMATION]
    )


def test_reassign_replaces_the_technicians_and_mails_the_customer(stack: Stack) -> None:
    appointment_id = created(stack, technicians=[])["id"]
    after = act(stack, appointment_id, "reassign", {"technicians": [{"id": "t-23", "name": "Alex Kim"}]})
    assert [(t["id"], t["primary"]) for t in after["technicians"]] == [("t-23", True)]
    assert MailKind.REASSIGNED in mails_of(appointment_id)


def test_no_show_only_once_started_then_reopen_and_complete(stack: Stack) -> None:
    appointment_id = created(stack)["id"]
    early = stack.ops("POST", f"/appointments/{appointment_id}/no-show", {"note": "no call"})
    assert early.status == 409
    assert "has not started yet" in early.body["error"]["message"]

    stack.clock.set(START + timedelta(minutes=12))
    assert act(stack, appointment_id, "no-show", {"note": "no call"})["status"] == "no_show"
    assert act(stack, appointment_id, "reopen")["status"] == "scheduled"
    done = act(stack, appointment_id, "complete", {"duration_minutes": 25, "outcome": "Fixed Outlook profile"})
    assert done["status"] == "completed"
    assert done["completion"]["duration_minutes"] == 25
    assert done["next_due_at"] is None


def test_check_in_and_hold_change_no_status_and_disarm_their_rules(stack: Stack) -> None:
    appointment_id = created(stack)["id"]
    checked_in = act(stack, appointment_id, "check-in")
    assert checked_in["checked_in_at"] is not None
    held = act(stack, appointment_id, "hold", {"on": True, "reason": "VIP customer"})
    assert (held["status"], held["hold"]["reason"]) == ("scheduled", "VIP customer")


def test_defer_pushes_four_weeks_by_default_and_keeps_the_discount(stack: Stack) -> None:
    appointment_id = created(stack, discount={"percent": 15, "code": "SAVE15"})["id"]
    deferred = act(stack, appointment_id, "defer", {"message": "Call us when you know"})
    assert deferred["start"] == "2026-12-21T15:00:00Z"
    assert deferred["discount"]["code"] == "SAVE15"
    assert MailKind.RESCHEDULED in mails_of(appointment_id)


def test_a_contact_attempt_that_reached_the_customer_mails_nothing(stack: Stack) -> None:
    appointment_id = created(stack)["id"]
    act(stack, appointment_id, "contact-attempts", {"outcome": "reached"})
    assert mails_of(appointment_id) == [MailKind.CONFIRMATION]


def test_an_unassigned_appointment_is_checked_at_its_pre_notice_time(stack: Stack) -> None:
    body = created(stack, technicians=[], start="2026-11-24T15:00:00Z", end="2026-11-24T15:30:00Z")
    # Reminder (24 h before) and pre-notice (3 h before): the earlier one first.
    assert datetime.fromisoformat(body["next_due_at"]) == datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    assigned = act(stack, body["id"], "reassign", {"technicians": [{"id": "t-17", "name": "Sam Okafor"}]})
    assert datetime.fromisoformat(assigned["next_due_at"]) == datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    cancelled = act(stack, body["id"], "cancel", {"reason": "no longer needed"})
    assert cancelled["next_due_at"] is None


# --- every action route: the same contract


ACTIONS: dict[str, dict[str, Any]] = {
    "reschedule": {"start": "2026-11-24T16:00:00Z"},
    "request-reschedule": {},
    "reassign": {"technicians": []},
    "confirm": {},
    "cancel": {"reason": "x"},
    "complete": {"duration_minutes": 10, "outcome": "done"},
    "reopen": {},
    "no-show": {},
    "check-in": {},
    "notes": {"text": "x"},
    "contact-attempts": {"outcome": "busy"},
    "hold": {"on": True},
    "defer": {},
}


@pytest.mark.parametrize("action", ACTIONS)
def test_every_action_refuses_what_it_must(stack: Stack, action: str) -> None:
    appointment_id = created(stack)["id"]
    body = ACTIONS[action]
    path = f"/appointments/{appointment_id}/{action}"

    # missing auth, unknown id, stale version, bad input: each refused and nothing written
    assert stack.ops("POST", path, body, caller=None).status == 401
    assert stack.ops("POST", f"/appointments/01UNKNOWN/{action}", body).status == 404
    assert stack.ops("POST", path, body, headers={"If-Match": '"7"'}).status == 412
    invalid = stack.ops("POST", path, body, headers={"If-Match": "seven"})
    assert (invalid.status, invalid.body["error"]["details"][0]["field"]) == (422, "If-Match")
    if action not in ("reopen", "check-in"):  # they take no body
        assert stack.ops("POST", path, {**body, "colour": "blue"}).status == 422
    assert wiring.store().get(appointment_id).version == 1

    # a cancelled appointment allows nothing: 409 naming the status
    stack.ops("POST", f"/appointments/{appointment_id}/cancel", {"reason": "gone"})
    refused = stack.ops("POST", path, body)
    assert refused.status == 409
    assert refused.body["error"]["details"][0]["status"] == "cancelled"


def test_the_list_pages_with_a_cursor(stack: Stack) -> None:
    ids = [
        created(stack, start=f"2026-11-23T{hour}:00:00Z", end=f"2026-11-23T{hour}:30:00Z")["id"]
        for hour in (12, 13, 14)
    ]
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(5):
        query = "/appointments?from=2026-11-23T00:00:00Z&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = stack.ops("GET", query).body
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids


def test_the_list_finds_a_booking_by_its_external_id(stack: Stack) -> None:

    assert stack.post_generic(sample("generic/appointment_scheduled.json"))["statusCode"] == 202
    stack.drain()
    found = stack.ops("GET", "/appointments?external_id=generic:stf-981").body["items"]
    assert [item["external_ids"] for item in found] == [["generic:stf-981"]]
    assert stack.ops("GET", "/appointments?external_id=generic:nope").body["items"] == []
    malformed = stack.ops("GET", "/appointments?external_id=stf-981")
    assert (malformed.status, malformed.body["error"]["details"][0]["field"]) == (422, "external_id")


def test_aws_calls_per_request_are_the_bill(stack: Stack) -> None:
    calls: list[str] = []
    client = wiring.store()._client  # type: ignore[attr-defined]
    client.meta.events.register("before-call", lambda model, **_: calls.append(model.name))

    def counted(method: str, path: str, body: dict[str, Any] | None = None) -> list[str]:
        calls.clear()
        assert stack.ops(method, path, body).status < 300
        return list(calls)

    appointment_id = stack.ops("POST", "/appointments", booking()).body["id"]
    assert counted("POST", "/appointments", booking(start="2026-11-23T17:00:00Z", end="2026-11-23T17:30:00Z")) == [
        "TransactWriteItems"
    ]
    assert counted("POST", f"/appointments/{appointment_id}/notes", {"text": "x"}) == ["GetItem", "TransactWriteItems"]
    assert counted("GET", f"/appointments/{appointment_id}") == ["Query"]
    # One query per UTC day of the range: two days here.
    assert counted("GET", "/appointments?from=2026-11-23T00:00:00Z&to=2026-11-25T00:00:00Z") == ["Query", "Query"]


# --- content types --------------------------------------------------------------------------------


def test_a_json_body_without_a_content_type_is_read_as_json(stack: Stack) -> None:
    # A gateway, a bare `curl --data-binary` or a hand-written client may send no Content-Type at all.
    reply = stack.ops_raw("POST", "/appointments", raw=json.dumps(booking()).encode(), content_type=None)
    assert reply["statusCode"] == 201, reply["body"]
    appointment_id = json.loads(reply["body"])["id"]

    noted = stack.ops_raw(
        "POST", f"/appointments/{appointment_id}/notes", raw=b'{"text": "Prefers mornings."}', content_type=None
    )
    assert noted["statusCode"] == 200, noted["body"]
    assert [note.text for note in wiring.store().get(appointment_id).notes] == ["Prefers mornings."]


def test_a_json_body_sent_as_text_plain_stays_a_400(stack: Stack) -> None:
    reply = stack.ops_raw("POST", "/appointments", raw=json.dumps(booking()).encode(), content_type="text/plain")
    assert reply["statusCode"] == 400, reply["body"]
    assert json.loads(reply["body"])["error"]["code"] == "malformed_payload"


# --- the past is refused --------------------------------------------------------------------------


def test_an_appointment_starting_in_the_past_is_not_created(stack: Stack) -> None:
    past = NOW - timedelta(minutes=1)
    reply = stack.ops(
        "POST", "/appointments", booking(start=past.isoformat(), end=(past + timedelta(hours=1)).isoformat())
    )
    assert reply.status == 422, reply.body
    assert reply.body["error"]["details"][0]["field"] == "start"
    assert stack.ops("GET", "/appointments?from=2026-11-23T00:00:00Z").body["items"] == []


def test_an_appointment_is_not_rescheduled_into_the_past(stack: Stack) -> None:
    appointment_id = created(stack)["id"]
    reply = stack.ops("POST", f"/appointments/{appointment_id}/reschedule", {"start": "2026-11-23T09:00:00Z"})
    assert reply.status == 422, reply.body
    assert reply.body["error"]["details"][0]["field"] == "start"
    assert wiring.store().get(appointment_id).version == 1
    # The clock is the service's: once it passes a start, that start is past too.
    stack.clock.set(START + timedelta(hours=1))
    late = stack.ops("POST", f"/appointments/{appointment_id}/reschedule", {"start": START.isoformat()})
    assert (late.status, late.body["error"]["details"][0]["field"]) == (422, "start")


# --- by ticket ------------------------------------------------------------------------------------


def test_the_list_finds_the_appointments_of_a_ticket(stack: Stack) -> None:
    later = created(stack, start="2026-11-24T15:00:00Z", end="2026-11-24T15:30:00Z")["id"]
    first = created(stack)["id"]
    created(stack, ticket={"system": "autotask", "id": "50001"})
    created(stack, ticket=None)

    found = stack.ops("GET", "/appointments?ticket=autotask:48213")
    assert found.status == 200, found.body
    assert [item["id"] for item in found.body["items"]] == [first, later]  # by start
    assert found.body["next_cursor"] is None
    assert stack.ops("GET", "/appointments?ticket=autotask:48213&limit=1").body["items"][0]["id"] == first
    assert stack.ops("GET", "/appointments?ticket=autotask:48213&status=cancelled").body["items"] == []
    assert stack.ops("GET", "/appointments?ticket=connectwise:48213").body["items"] == []
    # The link is kept by system and id: a ticket number finds nothing, and a bare one is refused.
    assert stack.ops("GET", "/appointments?ticket=autotask:T20261123.0004").body["items"] == []
    malformed = stack.ops("GET", "/appointments?ticket=48213")
    assert (malformed.status, malformed.body["error"]["details"][0]["field"]) == (422, "ticket")


# --- the way in for a browser ---------------------------------------------------------------------


def test_the_root_redirects_to_the_documentation_without_a_caller(stack: Stack) -> None:
    reply = stack.ops("GET", "/", caller=None, content_type=None)
    assert reply.status == 302
    assert reply.headers["Location"] == "docs"  # relative: /docs locally, /v1/docs through API Gateway


def test_the_served_document_declares_the_bearer_scheme_and_a_server_at_the_root(stack: Stack) -> None:
    reply = stack.ops_raw("GET", "/docs?format=json", caller=None, content_type=None)
    assert reply["statusCode"] == 200
    spec = json.loads(reply["body"])
    # Not the stage path the request came by: the runner serves the routes at the root.
    assert [server["url"] for server in spec["servers"]] == ["/", "/v1"]
    scheme = spec["components"]["securitySchemes"]["opsToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert "SigV4" in scheme["description"]
    assert spec["security"] == [{"opsToken": []}]
