"""Webhook → queue → event_processor → DynamoDB, under moto, with the real handlers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from appointments import wiring
from appointments.domain.events import CanonicalEvent
from appointments.domain.history import Action, Record
from appointments.domain.model import ExternalRef, Status
from appointments.domain.outbox import MailKind
from appointments.sources.base import WebhookRequest
from appointments.sources.generic import GenericSource
from localdev.sqs import sqs_record
from tests.integration.stack import Stack, stack_under_moto
from tests.signing import sample

NOW = datetime(2026, 11, 23, 10, 0, 30, tzinfo=UTC)


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    mapping = json.dumps({"calcom": {"remote-support-call": "remote_call_in"}})
    with stack_under_moto(monkeypatch, NOW, CustomerMailSources="generic", VendorTypeMap=mapping) as built:
        yield built


def generic_body(name: str, **changes: Any) -> bytes:
    document = json.loads(sample(f"generic/{name}.json"))
    document["appointment"].update(changes.pop("appointment", {}))
    document.update(changes)
    return json.dumps(document).encode()


def appointment_of(external_id: str) -> str:
    found = wiring.store().find_by_external_ref(ExternalRef(system="generic", id=external_id))
    assert found is not None, f"no appointment holds generic:{external_id}"
    return found


def test_three_deliveries_of_one_booking_make_one_appointment_and_one_mail(stack: Stack) -> None:
    body = generic_body("appointment_scheduled")
    assert [stack.post_generic(body)["statusCode"] for _ in range(3)] == [202, 202, 202]
    stack.drain()
    record = wiring.store().load(appointment_of("stf-981"))
    assert record.appointment.status is Status.SCHEDULED
    assert [e.action for e in record.history] == [Action.CREATE]
    assert [m.kind for m in record.mails] == [MailKind.CONFIRMATION]


def test_three_deliveries_past_the_queues_dedupe_window_still_apply_once(stack: Stack) -> None:
    # Given the same delivery arriving in three separate batches (as after SQS's 5-minute dedupe window)
    body = generic_body("appointment_scheduled")
    for _ in range(3):
        [event] = GenericSource().parse(WebhookRequest(headers={}, body=body))
        record = sqs_record(event.model_dump_json(), group=event.entity, dedupe="x", queue_arn=stack.queue_arn)
        assert stack.process([record]) == []
    record_ = wiring.store().load(appointment_of("stf-981"))
    assert [e.action for e in record_.history] == [Action.CREATE]
    assert len(record_.mails) == 1


def test_out_of_order_delivery_each_fact_takes_its_newest_news(stack: Stack) -> None:
    # Given the booking, then the cancellation (12:00), then a reschedule sent at 11:00 that arrived late
    for name in ("appointment_scheduled", "appointment_cancelled", "appointment_rescheduled"):
        assert stack.post_generic(generic_body(name))["statusCode"] == 202
    stack.drain()
    record = wiring.store().load(appointment_of("stf-981"))
    assert record.appointment.status is Status.CANCELLED
    assert record.appointment.start == datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # the 11:00 news on the time
    assert [e.action for e in record.history] == [Action.CREATE, Action.CANCEL, Record.EVENT_SUPERSEDED]


def _event(body: bytes) -> CanonicalEvent:
    [event] = GenericSource().parse(WebhookRequest(headers={}, body=body))
    return event


def test_events_that_overtake_their_booking_wait_and_a_replay_applies_each_once(stack: Stack) -> None:
    # Given a batch whose second and fourth records are about a booking not yet seen (stf-982)
    events = [
        _event(generic_body("appointment_scheduled")),  # stf-981
        _event(generic_body("appointment_assigned")),  # stf-982: unknown yet, waits
        _event(generic_body("appointment_scheduled", event_id="evt_c", appointment={"external_id": "stf-983"})),
        _event(generic_body("appointment_cancelled", event_id="evt_b_cancel", appointment={"external_id": "stf-982"})),
    ]
    records = [
        sqs_record(e.model_dump_json(), group=e.entity, dedupe=e.delivery_id, queue_arn=stack.queue_arn) for e in events
    ]

    # When the processor runs it
    failed = stack.process(records)

    # Then nothing fails: stf-982's events wait for their booking, the others are applied
    assert failed == []
    assert wiring.store().get(appointment_of("stf-981")).status is Status.SCHEDULED
    assert wiring.store().get(appointment_of("stf-983")).status is Status.SCHEDULED
    assert len(wiring.store().waiting("ref#generic#stf-982")) == 2

    # When stf-982's booking arrives and the whole batch is replayed twice
    booking = _event(generic_body("appointment_scheduled_unassigned"))
    assert (
        stack.process(
            [sqs_record(booking.model_dump_json(), group="generic:stf-982", dedupe="b", queue_arn=stack.queue_arn)]
        )
        == []
    )
    assert stack.process(records) == []
    assert stack.process(records) == []

    # Then every event was applied exactly once, the booking landing assigned and cancelled
    store = wiring.store()
    assert [e.action for e in store.load(appointment_of("stf-981")).history] == [Action.CREATE]
    assert [e.action for e in store.load(appointment_of("stf-983")).history] == [Action.CREATE]
    b = store.load(appointment_of("stf-982"))
    assert [e.action for e in b.history] == [Action.CREATE, Action.REASSIGN, Action.CANCEL]
    assert b.appointment.status is Status.CANCELLED
    assert [t.id for t in b.appointment.technicians] == ["t-23"]
    assert store.waiting("ref#generic#stf-982") == ()


def test_a_record_that_fails_returns_with_the_rest_of_its_group_only(stack: Stack) -> None:
    # Given a batch whose second record cannot be read, followed by another record of its group
    events = [
        _event(generic_body("appointment_scheduled")),
        _event(generic_body("appointment_scheduled", event_id="evt_c", appointment={"external_id": "stf-983"})),
    ]
    records = [
        sqs_record(events[0].model_dump_json(), group="generic:stf-981", dedupe="a", queue_arn=stack.queue_arn),
        sqs_record("{not json", group="generic:stf-983", dedupe="x", queue_arn=stack.queue_arn),
        sqs_record(events[1].model_dump_json(), group="generic:stf-983", dedupe="c", queue_arn=stack.queue_arn),
    ]
    # When the processor runs it
    failed = stack.process(records)
    # Then the failed record and the one queued behind it come back; the other group was applied
    assert failed == [records[1]["messageId"], records[2]["messageId"]]
    assert wiring.store().get(appointment_of("stf-981")).status is Status.SCHEDULED
    assert wiring.store().find_by_external_ref(ExternalRef(system="generic", id="stf-983")) is None


def test_a_calcom_reschedule_is_one_appointment_at_the_new_time(stack: Stack) -> None:
    # Given a Cal.com booking, then its reschedule (a new uid that names the old one)
    for name in ("booking_created", "booking_rescheduled"):
        assert stack.post_calcom(sample(f"calcom/{name}.json"))["statusCode"] == 202
    stack.drain()

    # Then both uids lead to one appointment, at the new time
    store = wiring.store()
    old = store.find_by_external_ref(ExternalRef(system="calcom", id="bXk3n8QvTz2LmP4rWc7yHd"))
    new = store.find_by_external_ref(ExternalRef(system="calcom", id="hV5wN9pQ2rS7tU3xY8zA1b"))
    assert old is not None and old == new
    record = store.load(old)
    assert record.appointment.start == datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
    assert [e.action for e in record.history] == [Action.CREATE, Action.RESCHEDULE]


def test_a_calcom_cancellation_of_the_rescheduled_booking_cancels_the_one_appointment(stack: Stack) -> None:
    for name in ("booking_created", "booking_rescheduled", "booking_cancelled"):
        assert stack.post_calcom(sample(f"calcom/{name}.json"))["statusCode"] == 202
    stack.drain()
    appointment_id = wiring.store().find_by_external_ref(ExternalRef(system="calcom", id="bXk3n8QvTz2LmP4rWc7yHd"))
    assert appointment_id is not None
    assert wiring.store().get(appointment_id).status is Status.CANCELLED


def test_an_event_waiting_for_its_booking_is_listed_for_ops_until_the_booking_arrives(stack: Stack) -> None:
    # Given a cancellation whose booking has not arrived
    assert stack.post_generic(generic_body("appointment_cancelled"))["statusCode"] == 202
    stack.drain()
    # Then ops see it as unmatched, with what it waits for and why
    listed = stack.ops("GET", "/unmatched")
    assert listed.status == 200
    [waiting] = listed.body["items"]
    assert (waiting["waits_for"], waiting["event"], waiting["source"]) == (
        "generic:stf-981",
        "appointment.cancelled",
        "generic",
    )
    assert waiting["reason"] == "no appointment holds this booking yet"
    assert datetime.fromisoformat(waiting["expires_at"]) > stack.clock.now()
    # When the booking arrives, the event is applied and no longer listed
    assert stack.post_generic(generic_body("appointment_scheduled"))["statusCode"] == 202
    stack.drain()
    assert stack.ops("GET", "/unmatched").body["items"] == []
    assert wiring.store().get(appointment_of("stf-981")).status is Status.CANCELLED
