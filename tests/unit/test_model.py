"""The appointment model's own invariants, ids, appointment types and outbox keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from appointments.domain.appointment_types import (
    DEFAULT_APPOINTMENT_TYPES,
    AppointmentMode,
    AppointmentType,
    AppointmentTypeCatalog,
)
from appointments.domain.ids import is_ulid, new_ulid
from appointments.domain.model import Appointment, Customer, Status
from appointments.domain.outbox import MailKind, OutboxMail
from appointments.errors import UnknownAppointmentType
from tests.factories import NOW, START, an_appointment


def test_times_are_stored_in_utc_whatever_zone_they_came_in() -> None:
    local = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("America/New_York"))
    appointment = an_appointment(start=local, end=local + timedelta(minutes=30))
    assert appointment.start == datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    assert appointment.start.tzinfo is UTC


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValidationError, match="start"):
        an_appointment(start=datetime(2026, 11, 23, 15, 0), end=datetime(2026, 11, 23, 16, 0))  # noqa: DTZ001


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown IANA time zone"):
        an_appointment(timezone="America/Gotham")


def test_end_must_be_after_start() -> None:
    with pytest.raises(ValidationError, match="end must be after start"):
        Appointment.model_validate({**an_appointment().model_dump(), "end": START})


def test_appointments_are_immutable() -> None:
    appointment = an_appointment()
    with pytest.raises(ValidationError):
        appointment.status = Status.CANCELLED  # type: ignore[misc]


def test_a_customer_email_must_look_like_one() -> None:
    with pytest.raises(ValidationError, match="email"):
        Customer(name="Dana", email="not-an-email")


def test_ulids_are_26_crockford_characters() -> None:
    ulid = new_ulid(NOW)
    assert is_ulid(ulid)
    assert not is_ulid(ulid.lower().replace("0", "O"))


@given(
    # hypothesis takes naive bounds and applies the time zone strategy itself
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),  # noqa: DTZ001
    st.timedeltas(min_value=timedelta(milliseconds=1), max_value=timedelta(days=3650)),
)
def test_ulids_made_later_sort_after_ulids_made_earlier(earlier: datetime, gap: timedelta) -> None:
    assert new_ulid(earlier, b"\xff" * 10) < new_ulid(earlier + gap, b"\x00" * 10)


def test_ulid_randomness_must_be_ten_bytes() -> None:
    with pytest.raises(ValueError, match="10 bytes"):
        new_ulid(NOW, b"short")


def test_the_shipped_types_cover_every_mode() -> None:
    catalog = AppointmentTypeCatalog.with_overrides()
    assert {t.key for t in catalog} == {"remote_call_in", "remote_we_call", "remote_session", "onsite"}
    assert {t.mode for t in DEFAULT_APPOINTMENT_TYPES} == set(AppointmentMode)
    assert catalog.get("remote_call_in").no_show_rule_applies
    assert not catalog.get("remote_we_call").no_show_rule_applies


def test_configuration_overrides_and_extends_the_shipped_types() -> None:
    longer = AppointmentType(
        key="remote_call_in",
        name="Remote support (long)",
        duration_minutes=60,
        mode=AppointmentMode.CUSTOMER_CALLS_IN,
        instructions="Call us.",
        no_show_after_minutes=15,
    )
    server = AppointmentType(
        key="server_window",
        name="Server maintenance",
        duration_minutes=120,
        mode=AppointmentMode.REMOTE_SESSION,
        instructions="x",
    )
    catalog = AppointmentTypeCatalog.with_overrides((longer, server))
    assert catalog.get("remote_call_in").no_show_after_minutes == 15
    assert "server_window" in catalog
    assert "onsite" in catalog


def test_an_unknown_type_key_is_an_error_naming_the_known_keys() -> None:
    with pytest.raises(UnknownAppointmentType) as raised:
        AppointmentTypeCatalog.with_overrides().get("remote")
    assert raised.value.key == "remote"
    assert "onsite, remote_call_in, remote_session, remote_we_call" in raised.value.message


def test_a_notice_is_keyed_by_its_rule_so_a_reschedule_rearms_it() -> None:
    from appointments.domain.rules import pre_notice_key

    appointment = an_appointment()
    moved = appointment.model_copy(update={"start": START + timedelta(hours=1), "end": START + timedelta(hours=2)})

    def notice(of: Appointment) -> OutboxMail:
        key = pre_notice_key(of.start)
        return OutboxMail.notice(MailKind.PRE_NOTICE, of, notice_key=key, to=("dana@example.com",), at=NOW, context={})

    assert notice(appointment).key == notice(appointment).key
    assert notice(moved).key != notice(appointment).key


def test_a_change_mail_is_keyed_by_version_so_each_change_mails_once() -> None:
    appointment = an_appointment()
    next_version = appointment.model_copy(update={"version": appointment.version + 1})
    one = OutboxMail.for_change(MailKind.RESCHEDULED, appointment, to=("dana@example.com",), at=NOW, context={})
    two = OutboxMail.for_change(MailKind.RESCHEDULED, next_version, to=("dana@example.com",), at=NOW, context={})
    assert one.key != two.key


def test_a_mail_needs_a_recipient() -> None:
    with pytest.raises(ValidationError, match="to"):
        OutboxMail.for_change(MailKind.RESCHEDULED, an_appointment(), to=(), at=NOW, context={})


@pytest.mark.parametrize("instant", ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00", "2300-01-01T00:00:00Z"])
def test_an_instant_outside_the_supported_years_is_refused_not_overflowed(instant: str) -> None:
    from pydantic import TypeAdapter, ValidationError

    from appointments.domain.model import UtcDatetime

    with pytest.raises(ValidationError, match=r"out of range|between the years"):
        TypeAdapter(UtcDatetime).validate_python(instant)
