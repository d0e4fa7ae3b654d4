"""The back office on in-memory fakes: what an action writes, and how it survives a race."""

from __future__ import annotations

import pytest

from appointments.adapters.clock import ManualClock
from appointments.domain.coupons import CouponPolicy
from appointments.domain.model import ContactOutcome, Status
from appointments.domain.outbox import MailKind
from appointments.errors import InvalidTransition, PreconditionFailed
from appointments.services.back_office import (
    AddNote,
    BackOffice,
    BackOfficePolicy,
    Cancel,
    LogContactAttempt,
)
from tests.factories import CATALOG, DANA, NOW, OPS, a_draft
from tests.fakes import ConflictingStore, InMemoryAppointmentStore


def back_office(store: InMemoryAppointmentStore, codes: list[str] | None = None) -> BackOffice:
    drawn = iter(codes or [])
    coupons = CouponPolicy(new_code=lambda: next(drawn)) if codes else CouponPolicy()
    return BackOffice(store, ManualClock(NOW), CATALOG, BackOfficePolicy(coupons=coupons))


def test_a_code_already_in_use_is_redrawn() -> None:
    # Given a code already claimed by another appointment's cancellation
    store = InMemoryAppointmentStore()
    office = back_office(store, ["TAKE-NTAK-ENTA-KEN0", "TAKE-NTAK-ENTA-KEN0", "FRES-HFRE-SHFR-ESH0"])
    first = office.create(a_draft(external_refs=()), actor=OPS)
    second = office.create(a_draft(external_refs=()), actor=OPS)
    office.act(first.id, Cancel(reason="x"), actor=OPS)

    # When the second draws the same code first
    cancelled = office.act(second.id, Cancel(reason="y"), actor=OPS)

    # Then it was cancelled with the next, unused code
    assert cancelled.cancellation is not None and cancelled.cancellation.coupon is not None
    assert cancelled.cancellation.coupon.code == "FRES-HFRE-SHFR-ESH0"


def test_declining_the_discount_offers_no_coupon() -> None:
    store = InMemoryAppointmentStore()
    office = back_office(store)
    appointment = office.create(a_draft(), actor=OPS)
    cancelled = office.act(appointment.id, Cancel(reason="x", offer_discount=False), actor=OPS)
    assert cancelled.cancellation is not None and cancelled.cancellation.coupon is None


def test_a_refused_cancel_draws_no_code() -> None:
    store = InMemoryAppointmentStore()
    office = back_office(store, ["ONLY-ONEC-ODE0-0000"])
    appointment = office.create(a_draft(), actor=OPS)
    office.act(appointment.id, Cancel(reason="x"), actor=OPS)
    with pytest.raises(InvalidTransition):
        office.act(appointment.id, Cancel(reason="again"), actor=OPS)  # a second draw would raise StopIteration


def test_a_concurrent_writer_is_reread_unless_if_match_pins_the_version() -> None:
    store = ConflictingStore()
    office = back_office(store)
    appointment = office.create(a_draft(), actor=OPS)

    store.conflicts = 1
    noted = office.act(appointment.id, AddNote(text="first"), actor=OPS)
    assert [n.text for n in noted.notes] == ["first"]

    store.conflicts = 1
    with pytest.raises(PreconditionFailed):
        office.act(appointment.id, AddNote(text="second"), actor=OPS, if_match=noted.version)
    assert store.get(appointment.id).version == noted.version


def test_a_contact_attempt_keeps_the_status_and_mails_the_link_unless_reached() -> None:
    store = InMemoryAppointmentStore()
    office = back_office(store)
    appointment = office.create(a_draft(), actor=OPS)
    for outcome in (ContactOutcome.BUSY, ContactOutcome.REACHED):
        after = office.act(appointment.id, LogContactAttempt(outcome=outcome), actor=OPS)
        assert after.status is Status.SCHEDULED
    kinds = [mail.kind for mail in store.load(appointment.id).mails]
    assert sorted(kinds) == sorted([MailKind.CONFIRMATION, MailKind.CONTACT_ATTEMPT])


def test_a_customer_without_an_email_gets_no_mail_recorded() -> None:
    store = InMemoryAppointmentStore()
    office = back_office(store)
    appointment = office.create(a_draft(customer=DANA.model_copy(update={"email": None})), actor=OPS)
    office.act(appointment.id, Cancel(reason="x"), actor=OPS)
    assert store.load(appointment.id).mails == ()
    assert store.get(appointment.id).next_due_at is None
