"""The timed rules, decided (domain.rules): what is due when, what applies, what is skipped and why.

Pure: an appointment, its type, the timings and a clock reading go in; a verdict comes out. The
sweeper's effects (mails, history, races) are in test_sweeper.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from appointments.domain.appointment_types import AppointmentMode, AppointmentType, AppointmentTypeCatalog
from appointments.domain.model import Appointment, Hold, Status
from appointments.domain.rules import (
    Rule,
    RuleTimings,
    Verdict,
    decide,
    next_check,
    pending,
    pre_notice_key,
    reminder_key,
    rule_key,
    unassigned_at_start_key,
)
from tests.factories import CATALOG, NOW, OPS, SAM, an_appointment

TIMINGS = RuleTimings()
DAY = timedelta(hours=24)
LATER = NOW + timedelta(days=3)  # a start far enough ahead that every rule is still to come
MINUTE = timedelta(minutes=1)
TICK = timedelta(microseconds=1)


def booked(
    start: datetime = LATER,
    *,
    at: datetime = NOW,
    technicians: tuple[Any, ...] = (SAM,),
    type: str = "remote_call_in",
    **model: Any,
) -> Appointment:
    """Scheduled at ``at`` for ``start`` (30 minutes long); unassigned since ``at`` without technicians."""
    return an_appointment(
        at=at, start=start, end=start + timedelta(minutes=30), technicians=technicians, type=type, **model
    )


def unassigned(start: datetime = LATER, *, at: datetime = NOW, **model: Any) -> Appointment:
    return booked(start, at=at, technicians=(), **model)


def verdict_at(appointment: Appointment, now: datetime, timings: RuleTimings = TIMINGS) -> Verdict:
    return decide(appointment, CATALOG.get(appointment.type), timings, now=now)


def applied(verdict: Verdict) -> list[Rule]:
    return [due.rule for due in verdict.apply]


def skipped(verdict: Verdict) -> list[tuple[Rule, str]]:
    return [(skip.due.rule, skip.reason) for skip in verdict.skip]


def settled(appointment: Appointment, *keys: str) -> Appointment:
    """As if the rules with these keys had acted."""
    sent = {**appointment.notices_sent, **dict.fromkeys(keys, NOW)}
    return appointment.model_copy(update={"notices_sent": sent})


REMINDED = reminder_key(DAY, LATER)


# --- reminder


def test_the_reminder_is_due_24_hours_before_the_start_and_fires_at_that_instant_not_before() -> None:
    # Given an appointment booked three days ahead
    appointment = booked()

    # When the clock reaches its reminder time (and a moment before)
    # Then the rule fires at or past its due time, never a microsecond early
    assert next_check(appointment, CATALOG, TIMINGS) == LATER - DAY
    assert not verdict_at(appointment, LATER - DAY - TICK)
    assert applied(verdict_at(appointment, LATER - DAY)) == [Rule.REMINDER]
    assert [d.key for d in verdict_at(appointment, LATER - DAY).apply] == [REMINDED]


def test_a_reminder_whose_time_had_passed_at_booking_is_skipped() -> None:
    # Given a booking made 6 hours before its start (the reminder time had already passed)
    appointment = booked(NOW + timedelta(hours=6))

    # When the rules look at once
    verdict = verdict_at(appointment, NOW)

    # Then the reminder is skipped with the reason, not sent
    assert applied(verdict) == []
    assert skipped(verdict) == [(Rule.REMINDER, "booked after the reminder time: the booking's own mail covers it")]


def test_a_booking_made_at_the_very_reminder_time_is_not_reminded() -> None:
    # Given a booking made exactly 24 h before its start
    appointment = booked(NOW + DAY)

    # Then its reminder counts as passed at booking (booked at or after the reminder time)
    assert [rule for rule, _ in skipped(verdict_at(appointment, NOW))] == [Rule.REMINDER]


def test_a_late_sweep_still_sends_the_reminder_while_before_the_start() -> None:
    # Given a booking made days ahead whose reminder time passed during an outage
    appointment = booked()

    # When the rules look one minute before the start
    verdict = verdict_at(appointment, LATER - MINUTE)

    # Then the reminder is still sent
    assert applied(verdict) == [Rule.REMINDER]
    assert verdict.skip == ()


def test_a_reminder_after_the_start_is_skipped() -> None:
    # Given a reminder never sent before the start (an outage)
    appointment = booked(type="remote_we_call")

    # When the rules look at the start
    verdict = verdict_at(appointment, LATER)

    # Then the reminder's purpose has passed: skipped and said why
    assert skipped(verdict) == [(Rule.REMINDER, "the start has passed")]
    assert verdict.apply == ()


def test_each_reminder_offset_is_its_own_rule_with_its_own_key() -> None:
    # Given reminders 24 h and 2 h ahead
    timings = RuleTimings(reminder_offsets=(DAY, timedelta(hours=2)))
    appointment = booked()

    # When both times have passed
    verdict = verdict_at(appointment, LATER - timedelta(hours=1), timings)

    # Then both are sent, in due order, each under a key naming its offset and the start
    assert [(d.rule, d.key, d.at) for d in verdict.apply] == [
        (Rule.REMINDER, reminder_key(DAY, LATER), LATER - DAY),
        (Rule.REMINDER, reminder_key(timedelta(hours=2), LATER), LATER - timedelta(hours=2)),
    ]
    assert reminder_key(DAY, LATER) == f"reminder:1440m#{LATER.isoformat()}"


# --- pre-notice


def test_the_pre_notice_is_due_3_hours_ahead_for_an_unassigned_appointment_only() -> None:
    # Given the same appointment unassigned and assigned, its reminder sent
    lonely = settled(unassigned(), REMINDED)
    staffed = settled(booked(), REMINDED)

    # When the clock reaches S-3h
    at = LATER - timedelta(hours=3)

    # Then only the unassigned one gets the pre-notice
    assert applied(verdict_at(lonely, at)) == [Rule.PRE_NOTICE]
    assert [d.key for d in verdict_at(lonely, at).apply] == [pre_notice_key(LATER)]
    assert not verdict_at(staffed, at)
    assert not verdict_at(lonely, at - TICK)


def test_a_booking_made_unassigned_after_the_pre_notice_time_gets_it_at_once() -> None:
    # Given a booking made unassigned 2 hours before its start
    start = NOW + timedelta(hours=2)
    appointment = unassigned(start)

    # When the rules look at once
    verdict = verdict_at(appointment, NOW)

    # Then the pre-notice goes at once (the reminder's time had passed at booking)
    assert applied(verdict) == [Rule.PRE_NOTICE]
    assert [rule for rule, _ in skipped(verdict)] == [Rule.REMINDER]


def test_a_late_sweep_past_the_auto_cancel_point_skips_the_pre_notice_and_cancels() -> None:
    # Given an unassigned appointment whose pre-notice was never sent (an outage)
    appointment = settled(unassigned(), REMINDED)

    # When the rules look 30 minutes before the start
    verdict = verdict_at(appointment, LATER - timedelta(minutes=30))

    # Then the pre-notice is skipped (the auto-cancel applies instead)
    assert skipped(verdict) == [(Rule.PRE_NOTICE, "past the auto-cancel point: the appointment is cancelled instead")]
    assert applied(verdict) == [Rule.AUTO_CANCEL]


def test_a_held_appointment_still_gets_a_late_pre_notice_since_nothing_cancels_it() -> None:
    # Given an unassigned appointment on hold whose pre-notice was never sent
    appointment = settled(unassigned(hold=Hold(at=NOW, by=OPS.id)), REMINDED)

    # When the rules look 30 minutes before the start
    verdict = verdict_at(appointment, LATER - timedelta(minutes=30))

    # Then the customer still hears that a technician is being assigned
    assert applied(verdict) == [Rule.PRE_NOTICE]


# --- auto-cancel and at-risk


def test_the_auto_cancel_is_due_one_hour_ahead_when_still_unassigned() -> None:
    # Given an unassigned appointment booked days ahead, its reminder and pre-notice sent
    appointment = settled(unassigned(), REMINDED, pre_notice_key(LATER))

    # Then it is next looked at one hour before the start, and cancelled then
    assert next_check(appointment, CATALOG, TIMINGS) == LATER - timedelta(hours=1)
    assert not verdict_at(appointment, LATER - timedelta(hours=1) - TICK)
    assert applied(verdict_at(appointment, LATER - timedelta(hours=1))) == [Rule.AUTO_CANCEL]


def test_a_late_sweep_still_auto_cancels_while_the_start_is_ahead() -> None:
    appointment = settled(unassigned(), REMINDED, pre_notice_key(LATER))
    assert applied(verdict_at(appointment, LATER - TICK)) == [Rule.AUTO_CANCEL]


def test_an_auto_cancel_never_due_before_the_start_is_skipped_after_it_and_ops_alerted() -> None:
    # Given an unassigned appointment no sweep saw before its start
    appointment = settled(unassigned(), REMINDED)

    # When the rules look at the start
    verdict = verdict_at(appointment, LATER)

    # Then nothing customer-facing is sent late, and ops hear that nobody is assigned
    assert skipped(verdict) == [
        (Rule.PRE_NOTICE, "the start has passed"),
        (Rule.AUTO_CANCEL, "the start has passed"),
    ]
    assert applied(verdict) == [Rule.UNASSIGNED_AT_START]


@pytest.mark.parametrize("minutes_before", [60, 59, 30, 1])
def test_a_booking_made_unassigned_inside_the_cancel_window_is_at_risk_not_cancelled(minutes_before: int) -> None:
    # Given a booking made unassigned at or after the auto-cancel point
    start = NOW + timedelta(minutes=minutes_before)
    appointment = unassigned(start)

    # When the rules look at once, and again just before the start
    now_verdict = verdict_at(appointment, NOW)
    later_verdict = verdict_at(appointment, start - TICK)

    # Then ops get the at-risk alert and the customer the pre-notice; nothing cancels it
    assert applied(now_verdict) == [Rule.PRE_NOTICE, Rule.AT_RISK]
    assert Rule.AUTO_CANCEL not in applied(later_verdict)
    assert [d.at for d in now_verdict.apply if d.rule is Rule.AT_RISK] == [NOW]


def test_a_technician_taken_off_inside_the_cancel_window_makes_it_at_risk() -> None:
    # Given an appointment booked days ahead, unassigned 30 minutes before its start
    appointment = booked().model_copy(
        update={"technicians": (), "exposed_since": LATER - timedelta(minutes=30), "notices_sent": {REMINDED: NOW}}
    )

    # When the rules look then
    verdict = verdict_at(appointment, LATER - timedelta(minutes=30))

    # Then the pre-notice (never sent: it was assigned) goes at once, and ops are alerted, no cancel
    assert applied(verdict) == [Rule.PRE_NOTICE, Rule.AT_RISK]


def test_a_hold_suppresses_the_auto_cancel_but_not_the_alert_at_the_start() -> None:
    # Given an unassigned appointment on hold, its notices sent
    appointment = settled(unassigned(hold=Hold(at=NOW, by=OPS.id)), REMINDED, pre_notice_key(LATER))

    # Then nothing is due at the cancel point, and ops are alerted at the start
    assert next_check(appointment, CATALOG, TIMINGS) == LATER
    assert not verdict_at(appointment, LATER - TICK)
    assert applied(verdict_at(appointment, LATER)) == [Rule.UNASSIGNED_AT_START]


def test_a_verdict_stops_at_the_status_change() -> None:
    # Given an unassigned appointment with every rule unsent
    appointment = unassigned()

    # When a late sweep cancels it
    verdict = verdict_at(appointment, LATER - timedelta(minutes=5))

    # Then the cancel is last: nothing after it applies to a cancelled appointment
    assert applied(verdict)[-1] is Rule.AUTO_CANCEL


# --- unassigned at start and no-show


def test_an_unassigned_appointment_at_its_start_alerts_ops_and_is_never_a_no_show() -> None:
    # Given an unassigned call-in appointment on hold (so it reaches its start), notices sent
    appointment = settled(unassigned(hold=Hold(at=NOW, by=OPS.id)), REMINDED, pre_notice_key(LATER))

    # When the no-show time passes
    verdict = verdict_at(appointment, LATER + timedelta(minutes=30))

    # Then ops are alerted, once, and the customer is not marked missing
    assert [(d.rule, d.key) for d in verdict.apply] == [(Rule.UNASSIGNED_AT_START, unassigned_at_start_key(LATER))]
    alerted = settled(appointment, unassigned_at_start_key(LATER))
    assert not verdict_at(alerted, LATER + timedelta(hours=2))
    assert next_check(alerted, CATALOG, TIMINGS) is None


def test_the_no_show_is_due_ten_minutes_after_the_start() -> None:
    appointment = settled(booked(), REMINDED)
    assert next_check(appointment, CATALOG, TIMINGS) == LATER + timedelta(minutes=10)
    assert not verdict_at(appointment, LATER + timedelta(minutes=10) - TICK)
    verdict = verdict_at(appointment, LATER + timedelta(minutes=10))
    assert [(d.rule, d.key) for d in verdict.apply] == [(Rule.NO_SHOW, rule_key(Rule.NO_SHOW, LATER))]


def test_the_no_show_time_is_the_types_own() -> None:
    # Given a call-in type whose customers get 25 minutes
    patient = AppointmentType(
        key="patient_call_in",
        name="Call in, we wait",
        duration_minutes=30,
        mode=AppointmentMode.CUSTOMER_CALLS_IN,
        instructions="Call us.",
        no_show_after_minutes=25,
    )
    catalog = AppointmentTypeCatalog.with_overrides((patient,))
    appointment = settled(booked(), REMINDED).model_copy(update={"type": "patient_call_in"})

    # Then the no-show is due 25 minutes after the start
    assert next_check(appointment, catalog, TIMINGS) == LATER + timedelta(minutes=25)
    assert not decide(appointment, patient, TIMINGS, now=LATER + timedelta(minutes=24))
    assert [d.rule for d in decide(appointment, patient, TIMINGS, now=LATER + timedelta(minutes=25)).apply] == [
        Rule.NO_SHOW
    ]


@pytest.mark.parametrize("type_key", ["remote_we_call", "remote_session", "onsite"])
def test_no_no_show_unless_the_customer_calls_in(type_key: str) -> None:
    appointment = settled(booked(type=type_key), REMINDED)
    assert not verdict_at(appointment, LATER + timedelta(hours=1))
    assert next_check(appointment, CATALOG, TIMINGS) is None


def test_a_checked_in_customer_is_never_a_no_show() -> None:
    appointment = settled(booked(checked_in_at=LATER - MINUTE), REMINDED)
    assert not verdict_at(appointment, LATER + timedelta(hours=1))


def test_the_no_show_still_applies_at_its_limit_and_is_skipped_past_it() -> None:
    # Given an assigned call-in appointment no sweep saw after its start (an outage)
    appointment = settled(booked(), REMINDED)

    # Then a sweep exactly 24 h after the start still marks it; a moment later it is skipped
    assert applied(verdict_at(appointment, LATER + DAY)) == [Rule.NO_SHOW]
    assert skipped(verdict_at(appointment, LATER + DAY + TICK)) == [(Rule.NO_SHOW, "more than 24 h after the start")]
    assert applied(verdict_at(appointment, LATER + DAY + TICK)) == []


def test_a_catch_up_after_the_start_skips_the_reminder_and_still_marks_the_no_show() -> None:
    appointment = booked()
    verdict = verdict_at(appointment, LATER + timedelta(hours=5))
    assert skipped(verdict) == [(Rule.REMINDER, "the start has passed")]
    assert applied(verdict) == [Rule.NO_SHOW]


# --- once per start, re-armed by a reschedule, nothing for the past after a reopen


def test_every_rule_key_names_its_start_so_a_reschedule_re_arms_them() -> None:
    # Given an unassigned appointment whose reminder and pre-notice went out for its first start
    first = settled(unassigned(), REMINDED, pre_notice_key(LATER))
    moved = LATER + timedelta(days=2)

    # When it moves two days later
    rescheduled = first.model_copy(update={"start": moved, "end": moved + timedelta(minutes=30)})

    # Then every rule is pending again for the new start, at times measured from it
    assert [(d.rule, d.at) for d in pending(rescheduled, CATALOG.get("remote_call_in"), TIMINGS)] == [
        (Rule.REMINDER, moved - DAY),
        (Rule.PRE_NOTICE, moved - timedelta(hours=3)),
        (Rule.AUTO_CANCEL, moved - timedelta(hours=1)),
        (Rule.UNASSIGNED_AT_START, moved),
    ]


def test_a_settled_rule_is_never_due_again_for_the_same_start() -> None:
    appointment = settled(booked(), REMINDED, rule_key(Rule.NO_SHOW, LATER))
    assert pending(appointment, CATALOG.get(appointment.type), TIMINGS) == ()
    assert not verdict_at(appointment, LATER + timedelta(hours=1))


def test_rules_due_before_a_reopen_never_act() -> None:
    # Given an appointment reopened 30 minutes after its start (its reminder never sent)
    appointment = booked(rules_from=LATER + timedelta(minutes=30))

    # Then neither the reminder nor the no-show (both due before the reopen) ever applies
    assert pending(appointment, CATALOG.get(appointment.type), TIMINGS) == ()
    assert not verdict_at(appointment, LATER + timedelta(hours=2))
    assert next_check(appointment, CATALOG, TIMINGS) is None


def test_rules_due_after_a_reopen_still_act() -> None:
    # Given an appointment completed early and reopened 2 days before its start
    appointment = booked(rules_from=LATER - timedelta(days=2))

    # Then its reminder and no-show are still ahead
    assert [d.rule for d in pending(appointment, CATALOG.get(appointment.type), TIMINGS)] == [
        Rule.REMINDER,
        Rule.NO_SHOW,
    ]


@pytest.mark.parametrize("status", [Status.REQUESTED, Status.CANCELLED, Status.COMPLETED, Status.NO_SHOW])
def test_no_rule_acts_unless_scheduled(status: Status) -> None:
    assert not verdict_at(unassigned(status=status), LATER + timedelta(hours=1))


# --- time zones


def test_the_reminder_of_a_start_the_day_after_dst_ends_is_24_real_hours_before() -> None:
    # Given a start at 09:00 in New York on 2 Nov 2026, the day after DST ends (1 Nov, 02:00 EDT -> 01:00 EST)
    start = datetime(2026, 11, 2, 9, 0, tzinfo=ZoneInfo("America/New_York"))
    appointment = booked(start, at=datetime(2026, 10, 20, tzinfo=UTC), timezone="America/New_York")

    # Then the reminder is due exactly 24 h before in UTC: 1 Nov 14:00 UTC (09:00 EST)
    assert appointment.start == datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
    assert next_check(appointment, CATALOG, TIMINGS) == datetime(2026, 11, 1, 14, 0, tzinfo=UTC)


def test_the_reminder_of_a_start_on_the_day_dst_ends_is_24_real_hours_before_not_24_wall_hours() -> None:
    # Given a start at 09:00 EST on 1 Nov 2026, the day DST ends: 24 h before is 10:00 EDT on 31 Oct
    start = datetime(2026, 11, 1, 9, 0, tzinfo=ZoneInfo("America/New_York"))
    appointment = booked(start, at=datetime(2026, 10, 20, tzinfo=UTC), timezone="America/New_York")

    # Then the reminder is due 24 real hours before (a wall clock would say 25)
    due = next_check(appointment, CATALOG, TIMINGS)
    assert due == datetime(2026, 10, 31, 14, 0, tzinfo=UTC)
    assert due is not None and due.astimezone(ZoneInfo("America/New_York")).hour == 10
