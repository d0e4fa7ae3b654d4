"""The calendar file: RFC 5545 text a calendar client accepts, checked line by line."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from appointments.domain.appointment_types import AppointmentMode, AppointmentType, AppointmentTypeCatalog
from appointments.domain.model import CancelledBy, Customer
from appointments.domain.outbox import MailKind
from appointments.mail.ics import CRLF, escape_text, fold, param_value
from appointments.mail.render import render
from tests.factories import CATALOG
from tests.unit.mail.builders import BRAND, COUPON, SECRETS, a_mail, an_appointment_to_mail, cancelled, rendered

Property = tuple[str, dict[str, str], str]


def physical_lines(calendar: str) -> list[str]:
    """The lines as sent, after checking every one ends in CRLF and none is over 75 octets."""
    assert calendar.endswith(CRLF)
    assert "\n" not in calendar.replace(CRLF, "") and "\r" not in calendar.replace(CRLF, "")
    lines = calendar.split(CRLF)[:-1]
    too_long = [line for line in lines if len(line.encode()) > 75]
    assert not too_long
    return lines


def parse(calendar: str) -> list[Property]:
    """Unfolded content lines as (name, parameters, value)."""
    unfolded: list[str] = []
    for line in physical_lines(calendar):
        if line.startswith(" "):
            unfolded[-1] += line[1:]
        else:
            unfolded.append(line)
    properties = []
    for line in unfolded:
        head, value = _split_value(line)
        name, *params = head.split(";")
        properties.append((name, dict(p.split("=", 1) for p in params), value))
    return properties


def _split_value(line: str) -> tuple[str, str]:
    """The first colon outside a quoted parameter value ends the name and parameters."""
    quoted = False
    for index, character in enumerate(line):
        if character == '"':
            quoted = not quoted
        elif character == ":" and not quoted:
            return line[:index], line[index + 1 :]
    raise AssertionError(f"no value in {line!r}")


def unescape(value: str) -> str:
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def value_of(properties: list[Property], name: str) -> str:
    [value] = [v for n, _, v in properties if n == name]
    return value


def test_the_confirmation_invites_with_a_request() -> None:
    # Given an appointment on Monday 23 November 2026 at 15:00 UTC, version 1
    appointment = an_appointment_to_mail()

    # When its confirmation is rendered
    mail = rendered(MailKind.CONFIRMATION, appointment)

    # Then the calendar is one VEVENT with a stable UID, UTC times and the type's instructions
    assert mail.ics is not None
    properties = parse(mail.ics)
    names = [n for n, _, _ in properties]
    assert names[:5] == ["BEGIN", "PRODID", "VERSION", "CALSCALE", "METHOD"]
    assert names[-2:] == ["END", "END"]
    assert [v for n, _, v in properties if n in ("BEGIN", "END")] == ["VCALENDAR", "VEVENT", "VEVENT", "VCALENDAR"]
    assert value_of(properties, "VERSION") == "2.0"
    assert value_of(properties, "METHOD") == "REQUEST"
    assert value_of(properties, "UID") == f"{appointment.id}@northwind.example"
    assert value_of(properties, "DTSTART") == "20261123T150000Z"
    assert value_of(properties, "DTEND") == "20261123T153000Z"
    assert value_of(properties, "DTSTAMP") == "20261123T090000Z"
    assert value_of(properties, "SEQUENCE") == str(appointment.version)
    assert value_of(properties, "STATUS") == "CONFIRMED"
    assert unescape(value_of(properties, "SUMMARY")) == "Remote support: you call us (Northwind IT)"
    description = unescape(value_of(properties, "DESCRIPTION"))
    assert CATALOG.get("remote_call_in").instructions in description
    assert "Ticket: T20261123.0004" in description
    assert "Reschedule: https://cal.example/reschedule/bk-1" in description
    [(_, organizer, address)] = [p for p in properties if p[0] == "ORGANIZER"]
    assert (organizer["CN"], address) == ('"Northwind IT"', "mailto:support@northwind.example")
    [(_, attendee, address)] = [p for p in properties if p[0] == "ATTENDEE"]
    assert (attendee["CN"], address) == ('"Dana Reyes"', "mailto:dana@example.com")


def test_a_reschedule_updates_the_same_event_with_a_higher_sequence() -> None:
    first = an_appointment_to_mail()
    start = first.start + timedelta(days=1)
    moved = first.model_copy(update={"start": start, "end": start + timedelta(minutes=30), "version": 2})
    before, after = rendered(MailKind.CONFIRMATION, first), rendered(MailKind.RESCHEDULED, moved)
    assert before.ics is not None and after.ics is not None
    old, new = parse(before.ics), parse(after.ics)
    assert value_of(old, "UID") == value_of(new, "UID")
    assert int(value_of(new, "SEQUENCE")) > int(value_of(old, "SEQUENCE"))
    assert (value_of(new, "METHOD"), value_of(new, "DTSTART")) == ("REQUEST", "20261124T150000Z")


@pytest.mark.parametrize("by", list(CancelledBy))
def test_a_cancellation_cancels_the_same_event(by: CancelledBy) -> None:
    appointment = cancelled(an_appointment_to_mail(), by, COUPON)
    mail = rendered(MailKind.CANCELLED, appointment)
    assert mail.ics is not None and mail.ics_method == "CANCEL"
    properties = parse(mail.ics)
    assert value_of(properties, "METHOD") == "CANCEL"
    assert value_of(properties, "STATUS") == "CANCELLED"
    assert value_of(properties, "UID") == f"{appointment.id}@northwind.example"
    description = unescape(value_of(properties, "DESCRIPTION"))
    assert "Reschedule:" not in description and not [s for s in SECRETS if s in mail.ics]


def test_text_is_escaped_and_long_lines_are_folded_without_splitting_a_character() -> None:
    # Given a type whose instructions hold every character TEXT escapes, newlines, and multi-byte letters
    instructions = "Call 555-0100; ask for Zoë, or Jürgen.\nPath: C:\\Temp\\logs\r\nThen wait… ☕ " + "ü" * 60
    catalog = AppointmentTypeCatalog.with_overrides(
        (
            AppointmentType(
                key="remote_call_in",
                name="Support, remote; quick",
                duration_minutes=30,
                mode=AppointmentMode.CUSTOMER_CALLS_IN,
                instructions=instructions,
            ),
        )
    )
    appointment = an_appointment_to_mail(customer=Customer(name='Dana "DR" Reyes, DDS', email="dana@example.com"))

    # When the confirmation is rendered
    mail = render(a_mail(MailKind.CONFIRMATION, appointment), appointment, catalog=catalog, branding=BRAND)

    # Then every line is at most 75 octets, ends in CRLF, and unfolds and unescapes to the original text
    assert mail.ics is not None
    lines = physical_lines(mail.ics)
    assert any(line.startswith(" ") for line in lines)
    for line in lines:
        line.encode().decode()  # each physical line is whole UTF-8 on its own
    properties = parse(mail.ics)
    raw = value_of(properties, "DESCRIPTION")
    assert "Call 555-0100\\; ask for Zoë\\, or Jürgen.\\nPath: C:\\\\Temp\\\\logs\\nThen" in raw
    assert instructions.replace("\r\n", "\n") in unescape(raw)
    assert value_of(properties, "SUMMARY") == "Support\\, remote\\; quick (Northwind IT)"
    [(_, attendee, _address)] = [p for p in properties if p[0] == "ATTENDEE"]
    assert attendee["CN"] == "\"Dana 'DR' Reyes, DDS\""


def test_fold_cuts_at_75_octets_and_continues_with_a_space() -> None:
    line = "DESCRIPTION:" + "x" * 200
    folded = fold(line).split(CRLF)
    assert [len(part.encode()) for part in folded] == [75, 75, 64]  # 212 octets: 75, then 74 + the space, then the rest
    assert all(part.startswith(" ") for part in folded[1:])
    assert "".join([folded[0], *(p[1:] for p in folded[1:])]) == line
    assert fold("SHORT:x") == "SHORT:x"


def test_fold_never_splits_a_multi_byte_character() -> None:
    line = "SUMMARY:" + "€" * 60  # 3 octets each
    parts = fold(line).split(CRLF)
    assert all(len(part.encode()) <= 75 for part in parts)
    assert "".join([parts[0], *(p[1:] for p in parts[1:])]) == line


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("a,b;c\\d", "a\\,b\\;c\\\\d"),
        ("one\ntwo\r\nthree\rfour", "one\\ntwo\\nthree\\nfour"),
        ("bell\x07 and tab\t", "bell and tab\t"),
    ],
)
def test_text_escaping(text: str, escaped: str) -> None:
    assert escape_text(text) == escaped


def test_a_parameter_value_is_quoted_without_quotes_or_line_breaks_inside() -> None:
    assert param_value('Dana "D"\r\nX-Evil:1') == "\"Dana 'D'  X-Evil:1\""


def test_the_times_are_utc_whatever_the_customers_zone() -> None:
    start = datetime(2026, 7, 6, 8, 0, tzinfo=UTC)
    appointment = an_appointment_to_mail(timezone="Europe/Berlin", start=start, end=start + timedelta(hours=1))
    mail = rendered(MailKind.CONFIRMATION, appointment)
    assert mail.ics is not None
    assert "DTSTART:20260706T080000Z\r\nDTEND:20260706T090000Z\r\n" in mail.ics
