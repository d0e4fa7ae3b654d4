"""When the rules next look at an appointment, and the coupons a cancellation offers."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from appointments.domain.coupons import CouponPolicy, random_code
from appointments.domain.model import Cancellation, CancelledBy, Coupon, Discount, Hold, Status
from appointments.domain.rules import (
    RuleTimings,
    decide,
    next_check,
    pre_notice_key,
    reminder_key,
    unassigned_at_start_key,
)
from tests.factories import CATALOG, NOW, OPS, START, an_appointment

TIMINGS = RuleTimings()


def test_an_assigned_call_in_appointment_is_next_looked_at_for_its_reminder() -> None:
    appointment = an_appointment(start=NOW + timedelta(days=2), end=NOW + timedelta(days=2, minutes=30))
    assert next_check(appointment, CATALOG, TIMINGS) == appointment.start - timedelta(hours=24)


def test_after_the_reminder_the_no_show_check_is_next() -> None:
    appointment = an_appointment(notices_sent={reminder_key(timedelta(hours=24), START): NOW})
    assert next_check(appointment, CATALOG, TIMINGS) == START + timedelta(minutes=10)


def test_a_checked_in_appointment_needs_no_no_show_check() -> None:
    appointment = an_appointment(notices_sent={reminder_key(timedelta(hours=24), START): NOW}, checked_in_at=NOW)
    assert next_check(appointment, CATALOG, TIMINGS) is None


def test_a_type_without_the_no_show_rule_needs_no_no_show_check() -> None:
    appointment = an_appointment(type="remote_we_call", notices_sent={reminder_key(timedelta(hours=24), START): NOW})
    assert next_check(appointment, CATALOG, TIMINGS) is None


def test_an_unassigned_appointment_is_checked_for_pre_notice_then_auto_cancel_then_at_start() -> None:
    sent = {reminder_key(timedelta(hours=24), START): NOW}
    unassigned = an_appointment(technicians=(), notices_sent=sent)
    assert next_check(unassigned, CATALOG, TIMINGS) == START - timedelta(hours=3)
    noticed = unassigned.model_copy(update={"notices_sent": {**sent, pre_notice_key(START): NOW}})
    assert next_check(noticed, CATALOG, TIMINGS) == START - timedelta(hours=1)
    held = noticed.model_copy(update={"hold": Hold(at=NOW, by=OPS.id)})
    assert next_check(held, CATALOG, TIMINGS) == START
    alerted = held.model_copy(update={"notices_sent": {**noticed.notices_sent, unassigned_at_start_key(START): NOW}})
    assert next_check(alerted, CATALOG, TIMINGS) is None


def test_the_no_show_check_lapses_after_its_limit() -> None:
    appointment = an_appointment(notices_sent={reminder_key(timedelta(hours=24), START): NOW})
    verdict = decide(appointment, CATALOG.get(appointment.type), TIMINGS, now=START + timedelta(hours=25))
    assert verdict.apply == ()
    assert [(s.due.rule, s.reason) for s in verdict.skip] == [("no_show", "more than 24 h after the start")]


@pytest.mark.parametrize("status", [Status.REQUESTED, Status.CANCELLED, Status.COMPLETED, Status.NO_SHOW])
def test_nothing_is_due_unless_scheduled(status: Status) -> None:
    assert next_check(an_appointment(status), CATALOG, TIMINGS) is None


def test_a_reschedule_re_arms_the_reminder_of_the_new_start() -> None:
    moved = START + timedelta(days=3)
    appointment = an_appointment(
        start=moved, end=moved + timedelta(minutes=30), notices_sent={reminder_key(timedelta(hours=24), START): NOW}
    )
    assert next_check(appointment, CATALOG, TIMINGS) == moved - timedelta(hours=24)


# --- coupons


def test_a_code_is_sixteen_unambiguous_characters_from_eighty_random_bits() -> None:
    assert random_code(lambda bits: 0) == "0000-0000-0000-0000"
    assert random_code(lambda bits: (1 << bits) - 1) == "ZZZZ-ZZZZ-ZZZZ-ZZZZ"
    code = random_code()
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}", code)
    assert len({random_code() for _ in range(1000)}) == 1000


def test_a_cancellation_is_offered_the_configured_coupon() -> None:
    coupon = CouponPolicy(percent=20, valid_days=90, new_code=lambda: "ABCD-EFGH-JKMN-PQRS").offer(
        an_appointment(), at=NOW
    )
    assert coupon == Coupon(code="ABCD-EFGH-JKMN-PQRS", percent=20, expires_at=NOW + timedelta(days=90))


def test_no_coupon_for_a_customer_who_has_a_discount_or_was_offered_one() -> None:
    policy = CouponPolicy()
    assert policy.offer(an_appointment(discount=Discount(percent=10)), at=NOW) is None
    earlier = Coupon(code="X", percent=15, expires_at=NOW)
    offered = an_appointment(cancellation=Cancellation(at=NOW, by=CancelledBy.OPS, reason="x", coupon=earlier))
    assert policy.offer(offered, at=NOW) is None
