"""Calendly and Autotask deliveries through the real ingress and processor handlers, under moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from appointments import wiring
from appointments.domain import lifecycle
from appointments.domain.history import Action, Record
from appointments.domain.model import Actor, CancelledBy, ExternalRef, Status
from appointments.domain.outbox import MailKind
from tests.integration.stack import CALENDLY_SECRET, Stack, stack_under_moto
from tests.signing import sample, timestamped_signature

NOW = datetime(2026, 11, 20, 13, 58, 45, tzinfo=UTC)
OLD_INVITEE = "7c1e4b9a-2f3d-4a86-8e50-b3d9f6a21c47"
NEW_INVITEE = "e4a7d2c8-9b16-4f3e-a05d-6c8b1f2e9d73"
EVENT_TYPE = "3f9b2d1c-6e4a-4b87-9c05-d8a1e7f2b640"


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    mapping = json.dumps({"calendly": {EVENT_TYPE: "remote_session"}})
    with stack_under_moto(
        monkeypatch,
        NOW,
        VendorTypeMap=mapping,
        CustomerMailSources="generic,calendly",
        AutotaskNoShowStatusId="23",
    ) as built:
        yield built


def calendly(stack: Stack, *names: str) -> None:
    for name in names:
        response = stack.post_calendly(sample(f"calendly/{name}.json"))
        assert response["statusCode"] == 202, response["body"]
    stack.drain()


def calendly_appointment(invitee: str) -> str:
    found = wiring.store().find_by_external_ref(ExternalRef(system="calendly", id=invitee))
    assert found is not None, f"no appointment holds calendly:{invitee}"
    return found


# --- Calendly


def test_a_calendly_booking_is_an_appointment_of_the_mapped_type(stack: Stack) -> None:
    calendly(stack, "invitee_created")
    record = wiring.store().load(calendly_appointment(OLD_INVITEE))
    assert record.appointment.status is Status.SCHEDULED
    assert record.appointment.type == "remote_session"
    assert record.appointment.start == datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    assert [m.kind for m in record.mails] == [MailKind.CONFIRMATION]


@pytest.mark.parametrize(
    "halves",
    [
        ("invitee_canceled_rescheduled", "invitee_created_rescheduled"),
        ("invitee_created_rescheduled", "invitee_canceled_rescheduled"),
    ],
    ids=["cancel-half-first", "create-half-first"],
)
def test_a_calendly_reschedule_is_one_appointment_at_the_new_time_and_never_a_cancellation(
    stack: Stack, halves: tuple[str, str]
) -> None:
    # Given a booking, then both halves of its reschedule, in either order
    calendly(stack, "invitee_created")
    stack.clock.set(datetime(2026, 11, 21, 9, 12, 6, tzinfo=UTC))
    calendly(stack, *halves)

    # Then both invitees lead to one appointment, moved, still scheduled, with no cancellation mail
    appointment_id = calendly_appointment(OLD_INVITEE)
    assert calendly_appointment(NEW_INVITEE) == appointment_id
    record = wiring.store().load(appointment_id)
    assert record.appointment.status is Status.SCHEDULED
    assert (record.appointment.start, record.appointment.end) == (
        datetime(2026, 11, 25, 19, 0, tzinfo=UTC),
        datetime(2026, 11, 25, 19, 30, tzinfo=UTC),
    )
    assert record.appointment.cancellation is None
    actions = [e.action for e in record.history]
    assert actions[0] is Action.CREATE
    assert sorted(actions[1:]) == sorted([Action.RESCHEDULE, Record.EVENT_IGNORED])
    assert sorted(m.kind for m in record.mails) == sorted([MailKind.CONFIRMATION, MailKind.RESCHEDULED])


def test_the_cancel_half_of_a_reschedule_of_a_booking_never_seen_only_waits(stack: Stack) -> None:
    stack.clock.set(datetime(2026, 11, 21, 9, 12, 6, tzinfo=UTC))
    calendly(stack, "invitee_canceled_rescheduled")
    # Nothing but the waiting event and its ops alert, armed for later: no appointment, nothing left queued
    assert sorted(item["kind"]["S"] for item in stack.table_items()) == ["unmatched_alert", "waiting"]
    assert stack.queued() == []
    assert wiring.store().find_by_external_ref(ExternalRef(system="calendly", id=OLD_INVITEE)) is None


def test_a_calendly_cancellation_cancels_and_says_who(stack: Stack) -> None:
    calendly(stack, "invitee_created")
    stack.clock.set(datetime(2026, 11, 22, 16, 40, 20, tzinfo=UTC))
    calendly(stack, "invitee_canceled")
    record = wiring.store().load(calendly_appointment(OLD_INVITEE))
    assert record.appointment.status is Status.CANCELLED
    assert record.appointment.cancellation is not None
    assert (record.appointment.cancellation.by, record.appointment.cancellation.reason) == (
        CancelledBy.CUSTOMER,
        "Fixed it myself, thanks",
    )
    assert sorted(m.kind for m in record.mails) == sorted([MailKind.CONFIRMATION, MailKind.CANCELLED])


def test_a_calendly_no_show_is_marked_and_taken_back(stack: Stack) -> None:
    calendly(stack, "invitee_created")
    stack.clock.set(datetime(2026, 11, 24, 15, 12, 31, tzinfo=UTC))
    calendly(stack, "invitee_no_show_created")
    assert wiring.store().get(calendly_appointment(OLD_INVITEE)).status is Status.NO_SHOW
    stack.clock.set(datetime(2026, 11, 24, 15, 20, 3, tzinfo=UTC))
    calendly(stack, "invitee_no_show_deleted")
    record = wiring.store().load(calendly_appointment(OLD_INVITEE))
    assert record.appointment.status is Status.SCHEDULED
    assert [e.action for e in record.history][-2:] == [Action.NO_SHOW, Action.REOPEN]


def test_a_calendly_delivery_replayed_after_three_minutes_is_refused_and_changes_nothing(stack: Stack) -> None:
    # Given a delivery signed and applied now
    body = sample("calendly/invitee_created.json")
    headers = {"Calendly-Webhook-Signature": timestamped_signature(CALENDLY_SECRET, body, NOW)}
    assert stack.post("calendly", body, headers)["statusCode"] == 202
    stack.drain()
    items = stack.table_items()

    # When the same signed request is replayed 181 seconds later
    stack.clock.set(NOW + timedelta(seconds=181))
    replayed = stack.post("calendly", body, headers)

    # Then it is refused and nothing changes
    assert replayed["statusCode"] == 401
    assert stack.queued() == []
    assert stack.table_items() == items


def test_a_signed_calendly_event_we_ignore_is_acknowledged_and_queues_nothing(stack: Stack) -> None:
    response = stack.post_calendly(sample("calendly/routing_form_submission_created.json"))
    assert response["statusCode"] == 202
    assert json.loads(response["body"])["events"] == 0
    assert stack.queued() == []


def test_calendly_json_of_the_wrong_shape_is_422_naming_the_field(stack: Stack) -> None:
    document = json.loads(sample("calendly/invitee_created.json"))
    del document["payload"]["scheduled_event"]
    response = stack.post_calendly(json.dumps(document).encode())
    assert response["statusCode"] == 422
    assert json.loads(response["body"])["error"]["details"][0]["field"] == "payload.scheduled_event"
    assert stack.queued() == []
    assert stack.table_items() == []


# --- Autotask


def generic_booking(stack: Stack, external_id: str, start: str) -> str:
    """An appointment against Autotask ticket 48213, booked through the generic source."""
    document = json.loads(sample("generic/appointment_scheduled.json"))
    document["event_id"] = f"evt-{external_id}"
    document["occurred_at"] = "2026-11-22T08:00:00Z"  # booked before anything the ticket says happened
    document["appointment"].update(external_id=external_id, start=start, end=start.replace(":00:00", ":30:00"))
    assert stack.post_generic(json.dumps(document).encode())["statusCode"] == 202
    stack.drain()
    found = wiring.store().find_by_external_ref(ExternalRef(system="generic", id=external_id))
    assert found is not None
    return found


def test_a_completed_ticket_completes_what_started_and_cancels_what_is_ahead(stack: Stack) -> None:
    # Given two appointments of ticket 48213: one this afternoon, one next week
    stack.clock.set(datetime(2026, 11, 23, 10, 0, 30, tzinfo=UTC))
    today = generic_booking(stack, "stf-1", "2026-11-23T15:00:00Z")
    next_week = generic_booking(stack, "stf-2", "2026-11-30T15:00:00Z")

    # When the ticket is completed in Autotask after today's session
    stack.clock.set(datetime(2026, 11, 23, 16, 42, 8, tzinfo=UTC))
    assert stack.post_autotask(sample("autotask/ticket_completed.json"))["statusCode"] == 202
    stack.drain()

    # Then today's is completed and next week's is cancelled by ops
    store = wiring.store()
    assert store.get(today).status is Status.COMPLETED
    cancelled = store.get(next_week)
    assert cancelled.status is Status.CANCELLED
    assert cancelled.cancellation is not None and cancelled.cancellation.by is CancelledBy.OPS


def test_an_autotask_assignment_assigns_the_tickets_appointment_once(stack: Stack) -> None:
    stack.clock.set(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
    appointment_id = generic_booking(stack, "stf-1", "2026-11-23T15:00:00Z")
    stack.clock.set(datetime(2026, 11, 23, 9, 12, 31, tzinfo=UTC))
    body = sample("autotask/ticket_assigned.json")
    assert [stack.post_autotask(body)["statusCode"] for _ in range(3)] == [202, 202, 202]
    stack.drain()
    record = wiring.store().load(appointment_id)
    assert [t.id for t in record.appointment.technicians] == ["29682885"]
    assert [e.action for e in record.history] == [Action.CREATE, Action.REASSIGN]


def test_the_configured_no_show_status_marks_the_no_show(stack: Stack) -> None:
    document = json.loads(sample("generic/appointment_scheduled.json"))
    document["appointment"]["ticket"]["id"] = "48219"
    stack.clock.set(datetime(2026, 11, 23, 10, 0, 30, tzinfo=UTC))
    assert stack.post_generic(json.dumps(document).encode())["statusCode"] == 202
    stack.drain()
    stack.clock.set(datetime(2026, 11, 23, 15, 31, 45, tzinfo=UTC))
    assert stack.post_autotask(sample("autotask/ticket_no_show.json"))["statusCode"] == 202
    stack.drain()
    found = wiring.store().find_by_external_ref(ExternalRef(system="generic", id="stf-981"))
    assert found is not None
    assert wiring.store().get(found).status is Status.NO_SHOW


def test_a_no_show_the_psa_mails_and_its_status_coming_back_is_an_echo_not_a_second_no_show(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with stack_under_moto(monkeypatch, NOW, AutotaskNoShowStatusId="23", NoShowMailBy="psa") as stack:
        # Given a call-in appointment at 15:00 against Autotask ticket 48219, nobody calling in
        document = json.loads(sample("generic/appointment_scheduled.json"))
        document["appointment"]["ticket"]["id"] = "48219"
        stack.clock.set(datetime(2026, 11, 23, 10, 0, 30, tzinfo=UTC))
        assert stack.post_generic(json.dumps(document).encode())["statusCode"] == 202
        stack.drain()
        store = wiring.store()
        found = store.find_by_external_ref(ExternalRef(system="generic", id="stf-981"))
        assert found is not None

        # When the rules mark the no-show: the PSA is to mail the customer, so the desk does not
        stack.clock.set(datetime(2026, 11, 23, 15, 10, 30, tzinfo=UTC))
        stack.run_schedule()
        record = store.load(found)
        [no_show] = [e for e in record.history if e.action is Action.NO_SHOW]
        assert no_show.detail["mail"] == "psa"
        assert MailKind.NO_SHOW not in [m.kind for m in record.mails]

        # And the write-back sets the ticket to NO-SHOW (recorded as it records it)
        written_at = datetime(2026, 11, 23, 15, 31, 43, tzinfo=UTC)
        written = lifecycle.record(
            record.appointment, Record.PSA_WRITTEN, at=written_at, actor=Actor.system(), detail={"status": "23"}
        )
        store.commit(replace(written, after=written.after.model_copy(update={"psa_statuses": {"autotask": "23"}})))

        # And Autotask's webhook about that status comes back, twice
        stack.clock.set(datetime(2026, 11, 23, 15, 31, 45, tzinfo=UTC))
        body = sample("autotask/ticket_no_show.json")
        assert [stack.post_autotask(body)["statusCode"] for _ in range(2)] == [202, 202]
        stack.drain()

        # Then it is our own change, recorded once: no second no-show, no mail, no alert
        after = store.load(found)
        assert after.appointment.status is Status.NO_SHOW
        assert [e.action for e in after.history][-2:] == [Record.PSA_WRITTEN, Record.PSA_ECHO]
        assert after.history[-1].detail["status"] == "23"
        assert [e.action for e in after.history].count(Action.NO_SHOW) == 1
        assert after.mails == record.mails


def test_an_unsigned_deactivation_notice_changes_nothing(stack: Stack) -> None:
    body = sample("autotask/ticket_deactivated.json")
    response = stack.post("autotask", body, {})
    assert response["statusCode"] == 401
    assert stack.queued() == []
    assert stack.table_items() == []


def test_an_autotask_body_with_a_wrong_signature_is_refused(stack: Stack) -> None:
    body = sample("autotask/ticket_completed.json")
    response = stack.post("autotask", body, {"X-Hook-Signature": "sha1=AAAAAAAAAAAAAAAAAAAAAAAAAAA="})
    assert response["statusCode"] == 401
    assert stack.queued() == []
