"""iCalendar (RFC 5545) invitations and cancellations, with iTIP methods (RFC 5546).

Pure text building: CRLF line endings, lines folded at 75 octets without splitting a UTF-8 character,
TEXT values escaped (backslash, semicolon, comma, newline) and stripped of control characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC
from enum import StrEnum
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from datetime import datetime

CRLF = "\r\n"
MAX_OCTETS = 75
PRODID = "-//Appointment desk//Mail//EN"
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_NEWLINES = re.compile(r"\r\n|\r|\n")


class Method(StrEnum):
    REQUEST = "REQUEST"
    CANCEL = "CANCEL"


@dataclass(frozen=True)
class Person:
    name: str
    email: str


@dataclass(frozen=True)
class CalendarEvent:
    uid: str
    sequence: int
    stamp: datetime
    start: datetime
    end: datetime
    summary: str
    description: str
    organizer: Person
    attendees: tuple[Person, ...] = ()


def calendar(event: CalendarEvent, method: Method) -> str:
    """One VCALENDAR with one VEVENT; a CANCEL carries STATUS:CANCELLED and the same UID."""
    lines = [
        "BEGIN:VCALENDAR",
        f"PRODID:{PRODID}",
        "VERSION:2.0",
        "CALSCALE:GREGORIAN",
        f"METHOD:{method}",
        "BEGIN:VEVENT",
        f"UID:{escape_text(event.uid)}",
        f"SEQUENCE:{event.sequence}",
        f"DTSTAMP:{utc_stamp(event.stamp)}",
        f"DTSTART:{utc_stamp(event.start)}",
        f"DTEND:{utc_stamp(event.end)}",
        f"SUMMARY:{escape_text(event.summary)}",
        f"DESCRIPTION:{escape_text(event.description)}",
        f"ORGANIZER;CN={param_value(event.organizer.name)}:{mailto(event.organizer.email)}",
    ]
    lines += [
        f"ATTENDEE;CN={param_value(a.name)};ROLE=REQ-PARTICIPANT;RSVP=FALSE:{mailto(a.email)}" for a in event.attendees
    ]
    lines += [
        f"STATUS:{'CANCELLED' if method is Method.CANCEL else 'CONFIRMED'}",
        "TRANSP:OPAQUE",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(fold(line) + CRLF for line in lines)


def utc_stamp(instant: datetime) -> str:
    """``20261123T150000Z``: a DATE-TIME in UTC form."""
    return instant.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def escape_text(value: str) -> str:
    """A TEXT value (RFC 5545 §3.3.11): ``\\`` ``;`` ``,`` escaped, newlines as ``\\n``, controls dropped."""
    escaped = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return _CONTROL.sub("", _NEWLINES.sub("\\\\n", escaped))


def param_value(value: str) -> str:
    """A quoted parameter value (§3.2): no control characters and no double quote can appear inside."""
    return '"' + _CONTROL.sub("", value.replace("\r", " ").replace("\n", " ")).replace('"', "'") + '"'


def mailto(email: str) -> str:
    return "mailto:" + quote(email, safe="@.+-_!$&'*=?^`{|}~")


def fold(line: str) -> str:
    """Fold a content line so no physical line exceeds 75 octets; continuation lines start with a space."""
    if len(line.encode()) <= MAX_OCTETS:
        return line
    pieces: list[str] = []
    current: list[str] = []
    size, limit = 0, MAX_OCTETS
    for character in line:
        width = len(character.encode())
        if size + width > limit:
            pieces.append("".join(current))
            current, size, limit = [], 0, MAX_OCTETS - 1  # the leading space counts
        current.append(character)
        size += width
    pieces.append("".join(current))
    return (CRLF + " ").join(pieces)
