"""The appointment lifecycle: every (status, action) pair, and what each action changes."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from appointments.domain import lifecycle
from appointments.domain.history import Action, Record
from appointments.domain.lifecycle import Change, allowed_actions
from appointments.domain.model import (
    Actor,
    ActorKind,
    Appointment,
    CancelledBy,
    ContactOutcome,
    Coupon,
    ExternalRef,
    Status,
    TicketRef,
)
from appointments.errors import InvalidInput, InvalidTransition, UnknownAppointmentType
from tests.factories import ALEX, CATALOG, NOW, OPS, SAM, START, a_draft, an_appointment

if TYPE_CHECKING:
    from collections.abc import Callable

S, A = Status, Action
LATER = START + timedelta(minutes=15)  # after the start, so every action is possible in time

# The contract of DESIGN §3, written out independently of the implementation's table.
EXPECTED: dict[Status, dict[Action, Status]] = {
    S.REQUESTED: {
        A.CONFIRM: S.SCHEDULED,
        A.RESCHEDULE: S.SCHEDULED,
        A.DEFER: S.SCHEDULED,
        A.REQUEST_RESCHEDULE: S.REQUESTED,
        A.REASSIGN: S.REQUESTED,
        A.CANCEL: S.CANCELLED,
        A.NOTE: S.REQUESTED,
        A.CONTACT_ATTEMPT: S.REQUESTED,
    },
    S.SCHEDULED: {
        A.RESCHEDULE: S.SCHEDULED,
        A.DEFER: S.SCHEDULED,
        A.REQUEST_RESCHEDULE: S.REQUESTED,
        A.REASSIGN: S.SCHEDULED,
        A.CHECK_IN: S.SCHEDULED,
        A.HOLD: S.SCHEDULED,
        A.NOTE: S.SCHEDULED,
        A.CONTACT_ATTEMPT: S.SCHEDULED,
        A.COMPLETE: S.COMPLETED,
        A.NO_SHOW: S.NO_SHOW,
        A.CANCEL: S.CANCELLED,
        A.REMINDER: S.SCHEDULED,
        A.PRE_NOTICE: S.SCHEDULED,
        A.AUTO_CANCEL: S.CANCELLED,
    },
    S.COMPLETED: {A.REOPEN: S.SCHEDULED, A.NOTE: S.COMPLETED},
    S.NO_SHOW: {A.REOPEN: S.SCHEDULED, A.NOTE: S.NO_SHOW, A.CONTACT_ATTEMPT: S.NO_SHOW},
    S.CANCELLED: {},
}

PERFORM: dict[Action, Callable[[Appointment], Change]] = {
    A.CONFIRM: lambda a: lifecycle.confirm(a, at=LATER, actor=OPS),
    A.RESCHEDULE: lambda a: lifecycle.reschedule(a, start=START + timedelta(days=1), at=LATER, actor=OPS),
    A.DEFER: lambda a: lifecycle.defer(a, at=LATER, actor=OPS),
    A.REQUEST_RESCHEDULE: lambda a: lifecycle.request_reschedule(a, at=LATER, actor=OPS),
    A.REASSIGN: lambda a: lifecycle.reassign(a, (ALEX,), at=LATER, actor=OPS),
    A.CANCEL: lambda a: lifecycle.cancel(a, by=CancelledBy.OPS, reason="no technician", at=LATER, actor=OPS),
    A.AUTO_CANCEL: lambda a: lifecycle.cancel(
        a, by=CancelledBy.SYSTEM, reason="unassigned", at=LATER, actor=Actor.system()
    ),
    A.COMPLETE: lambda a: lifecycle.complete(a, duration_minutes=25, outcome="printer fixed", at=LATER, actor=OPS),
    A.REOPEN: lambda a: lifecycle.reopen(a, at=LATER, actor=OPS),
    A.NO_SHOW: lambda a: lifecycle.mark_no_show(a, at=LATER, actor=OPS),
    A.CHECK_IN: lambda a: lifecycle.check_in(a, at=LATER, actor=OPS),
    A.NOTE: lambda a: lifecycle.add_note(a, text="customer prefers mornings", at=LATER, actor=OPS),
    A.CONTACT_ATTEMPT: lambda a: lifecycle.record_contact_attempt(
        a, outcome=ContactOutcome.VOICEMAIL, at=LATER, actor=OPS
    ),
    A.HOLD: lambda a: lifecycle.set_hold(a, on=True, reason="VIP", at=LATER, actor=OPS),
    A.REMINDER: lambda a: lifecycle.record_notice(a, A.REMINDER, notice_key="reminder#24h", at=LATER),
    A.PRE_NOTICE: lambda a: lifecycle.record_notice(a, A.PRE_NOTICE, notice_key="pre_notice", at=LATER),
}

PAIRS = [(status, action) for status in Status for action in Action if action is not A.CREATE]


def test_every_action_but_create_has_a_way_to_perform_it() -> None:
    assert set(PERFORM) == set(Action) - {A.CREATE}


def test_the_table_is_the_designed_one() -> None:
    assert {s: dict(t) for s, t in lifecycle.TRANSITIONS.items()} == EXPECTED


@pytest.mark.parametrize(("status", "action"), PAIRS, ids=[f"{s}-{a}" for s, a in PAIRS])
def test_every_status_and_action_pair(status: Status, action: Action) -> None:
    # Given an appointment in the status
    appointment = an_appointment(status)

    if action in EXPECTED[status]:
        # When the allowed action is taken
        change = PERFORM[action](appointment)
        # Then it lands in the designed status, one version on, with one history entry saying so
        assert change.after.status is EXPECTED[status][action]
        assert change.after.version == appointment.version + 1
        assert change.after.updated_at == LATER
        assert change.before is appointment
        [entry] = change.history
        assert (entry.action, entry.from_status, entry.to_status) == (action, status, EXPECTED[status][action])
        assert entry.at == LATER
    else:
        # When a refused action is taken, Then the error names the status and what is allowed instead
        with pytest.raises(InvalidTransition) as raised:
            PERFORM[action](appointment)
        assert raised.value.status == status
        assert raised.value.action == action
        assert raised.value.allowed == allowed_actions(status)
        assert str(status) in raised.value.message
        assert raised.value.http_status == 409


def test_allowed_actions_hide_the_system_rules_and_are_empty_for_cancelled() -> None:
    assert A.AUTO_CANCEL not in allowed_actions(S.SCHEDULED)
    assert A.REMINDER not in allowed_actions(S.SCHEDULED)
    assert A.CANCEL in allowed_actions(S.SCHEDULED)
    assert allowed_actions(S.CANCELLED) == ()


def test_the_refusal_message_lists_the_allowed_actions() -> None:
    with pytest.raises(InvalidTransition) as raised:
        lifecycle.confirm(an_appointment(S.COMPLETED), at=LATER, actor=OPS)
    assert raised.value.message == "cannot confirm an appointment that is completed; allowed actions: reopen, note"
    assert raised.value.details[0]["allowed_actions"] == ["reopen", "note"]


def test_create_records_who_created_it_and_starts_at_version_one() -> None:
    change = lifecycle.create(a_draft(), appointment_id="01JD", catalog=CATALOG, at=NOW, actor=OPS)
    assert change.before is None
    assert change.after.version == 1
    assert change.after.created_at == change.after.updated_at == NOW
    [entry] = change.history
    assert (entry.action, entry.from_status, entry.to_status, entry.actor) == (A.CREATE, None, S.SCHEDULED, OPS)


def test_create_refuses_an_unknown_type_naming_the_known_ones() -> None:
    with pytest.raises(UnknownAppointmentType) as raised:
        lifecycle.create(a_draft(type="remote_call"), appointment_id="01JD", catalog=CATALOG, at=NOW, actor=OPS)
    assert raised.value.field == "type"
    assert "remote_call_in" in raised.value.message
    assert raised.value.http_status == 422


@pytest.mark.parametrize("status", [S.COMPLETED, S.NO_SHOW, S.CANCELLED])
def test_create_only_makes_requested_or_scheduled_appointments(status: Status) -> None:
    with pytest.raises(InvalidInput) as raised:
        lifecycle.create(a_draft(status=status), appointment_id="01JD", catalog=CATALOG, at=NOW, actor=OPS)
    assert raised.value.field == "status"


def test_create_makes_the_first_technician_primary_when_none_is() -> None:
    change = lifecycle.create(
        a_draft(technicians=(SAM, ALEX)), appointment_id="01JD", catalog=CATALOG, at=NOW, actor=OPS
    )
    assert [t.primary for t in change.after.technicians] == [True, False]
    assert change.after.primary_technician == SAM.model_copy(update={"primary": True})


def test_reschedule_keeps_the_length_moves_the_time_and_clears_the_check_in() -> None:
    appointment = an_appointment(checked_in_at=NOW)
    new_start = START + timedelta(days=2)
    change = lifecycle.reschedule(appointment, start=new_start, at=LATER, actor=OPS, message="sorry")
    assert (change.after.start, change.after.end) == (new_start, new_start + timedelta(minutes=30))
    assert change.after.checked_in_at is None
    assert change.history[0].detail["from"]["start"] == START.isoformat()
    assert change.history[0].detail["message"] == "sorry"


def test_reschedule_refuses_an_end_before_the_start() -> None:
    with pytest.raises(InvalidInput) as raised:
        lifecycle.reschedule(an_appointment(), start=START, end=START - timedelta(minutes=1), at=LATER, actor=OPS)
    assert raised.value.field == "end"


def test_defer_pushes_four_weeks_by_default_and_keeps_the_discount() -> None:
    appointment = an_appointment(discount={"percent": 15, "code": "SAVE15"})
    change = lifecycle.defer(appointment, at=LATER, actor=OPS)
    assert change.after.start == START + timedelta(weeks=4)
    assert change.after.discount == appointment.discount
    assert change.history[0].detail["weeks"] == 4


def test_defer_refuses_a_push_that_stays_in_the_past() -> None:
    with pytest.raises(InvalidInput) as raised:
        lifecycle.defer(an_appointment(), weeks=1, at=START + timedelta(weeks=2), actor=OPS)
    assert raised.value.field == "weeks"


def test_reassign_to_nobody_unassigns() -> None:
    change = lifecycle.reassign(an_appointment(), (), at=LATER, actor=OPS)
    assert not change.after.is_assigned
    assert change.history[0].detail == {"from": ["t-17"], "to": []}


def test_cancel_by_ops_records_the_cancellation_and_coupon_and_disarms_the_checks() -> None:
    coupon = Coupon(code="X7K2-9QPA", percent=15, expires_at=NOW + timedelta(days=180))
    appointment = an_appointment(next_due_at=START - timedelta(hours=1))
    change = lifecycle.cancel(
        appointment, by=CancelledBy.OPS, reason="tech sick", message="We are sorry", coupon=coupon, at=LATER, actor=OPS
    )
    assert change.after.cancellation is not None
    assert (change.after.cancellation.by, change.after.cancellation.coupon) == (CancelledBy.OPS, coupon)
    assert change.after.next_due_at is None
    assert change.history[0].action is A.CANCEL
    assert change.history[0].detail["coupon"] == "X7K2-9QPA"


def test_a_system_cancel_is_recorded_as_auto_cancel() -> None:
    change = lifecycle.cancel(
        an_appointment(), by=CancelledBy.SYSTEM, reason="unassigned", at=LATER, actor=Actor.system()
    )
    assert change.history[0].action is A.AUTO_CANCEL
    assert change.history[0].actor.kind is ActorKind.SYSTEM


def test_no_show_is_refused_before_the_start() -> None:
    with pytest.raises(InvalidTransition) as raised:
        lifecycle.mark_no_show(an_appointment(), at=START - timedelta(minutes=1), actor=OPS)
    assert "not started" in raised.value.message
    assert raised.value.allowed == allowed_actions(S.SCHEDULED)


def test_reopen_clears_the_completion_and_the_no_show() -> None:
    completed = lifecycle.complete(an_appointment(), duration_minutes=20, outcome="done", at=LATER, actor=OPS).after
    assert completed.completion is not None
    assert lifecycle.reopen(completed, at=LATER, actor=OPS).after.completion is None
    no_show = lifecycle.mark_no_show(an_appointment(), at=LATER, actor=OPS).after
    assert no_show.no_show_at == LATER
    assert lifecycle.reopen(no_show, at=LATER, actor=OPS).after.no_show_at is None


def test_check_in_keeps_the_first_time() -> None:
    once = lifecycle.check_in(an_appointment(), at=LATER, actor=OPS).after
    twice = lifecycle.check_in(once, at=LATER + timedelta(minutes=5), actor=OPS).after
    assert twice.checked_in_at == LATER


def test_notes_and_contact_attempts_append_and_name_the_author() -> None:
    noted = lifecycle.add_note(an_appointment(), text="gate code 4411", at=LATER, actor=OPS).after
    called = lifecycle.record_contact_attempt(
        noted, outcome=ContactOutcome.BUSY, note="line busy", at=LATER, actor=OPS
    ).after
    assert [n.text for n in called.notes] == ["gate code 4411"]
    assert called.notes[0].author == OPS.id
    assert [(c.outcome, c.by) for c in called.contact_attempts] == [(ContactOutcome.BUSY, OPS.id)]


def test_hold_on_and_off() -> None:
    held = lifecycle.set_hold(an_appointment(), on=True, reason="customer VIP", at=LATER, actor=OPS).after
    assert held.hold is not None and held.hold.reason == "customer VIP"
    assert lifecycle.set_hold(held, on=False, at=LATER, actor=OPS).after.hold is None


def test_a_notice_is_remembered_by_its_key() -> None:
    change = lifecycle.record_notice(an_appointment(), A.PRE_NOTICE, notice_key="pre_notice#2026-11-23T15:00", at=LATER)
    assert change.after.notices_sent == {"pre_notice#2026-11-23T15:00": LATER}
    with pytest.raises(ValueError, match="not a notice"):
        lifecycle.record_notice(an_appointment(), A.CANCEL, notice_key="x", at=LATER)


@pytest.mark.parametrize("status", list(Status))
def test_a_record_is_allowed_in_every_status_and_changes_nothing_but_the_version(status: Status) -> None:
    appointment = an_appointment(status)
    change = lifecycle.record(appointment, Record.EVENT_SUPERSEDED, at=LATER, actor=Actor.source("calcom"))
    assert change.after.model_dump(exclude={"version", "updated_at"}) == appointment.model_dump(
        exclude={"version", "updated_at"}
    )
    assert change.after.version == appointment.version + 1
    assert (change.history[0].from_status, change.history[0].to_status) == (status, status)


def test_a_change_claims_only_new_external_refs_and_a_new_ticket() -> None:
    appointment = an_appointment()
    rescheduled_ref = ExternalRef(system="calcom", id="new-uid")
    after = appointment.model_copy(update={"external_refs": (*appointment.external_refs, rescheduled_ref)})
    change = Change(before=appointment, after=after, history=())
    assert change.new_external_refs == (rescheduled_ref,)
    assert change.new_ticket is None
    assert change.dropped_ticket is None


def test_a_ticket_is_identified_by_system_and_id_not_its_number() -> None:
    appointment = an_appointment()
    renumbered = TicketRef(system="autotask", id="48213", number="T-renumbered")
    moved = TicketRef(system="autotask", id="50000")
    same = Change(before=appointment, after=appointment.model_copy(update={"ticket": renumbered}), history=())
    other = Change(before=appointment, after=appointment.model_copy(update={"ticket": moved}), history=())
    assert (same.new_ticket, same.dropped_ticket) == (None, None)
    assert (other.new_ticket, other.dropped_ticket) == (moved, appointment.ticket)
