"""Pure text helpers: times in the customer's zone, safe subjects, safe links, cleaned customer text."""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from datetime import datetime

MAX_SUBJECT = 150

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_SPACES = re.compile(r"\s+")
_NEWLINES = re.compile(r"\r\n?|[\u2028\u2029\x85\x0b\x0c]")


def local(instant: datetime, zone: str) -> datetime:
    return instant.astimezone(ZoneInfo(zone))


def date_in_words(instant: datetime, zone: str) -> str:
    """``Monday 23 November 2026``, as the customer's calendar shows that day (no locale involved)."""
    day = local(instant, zone)
    return f"{_DAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]} {day.year}"


def clock_time(instant: datetime, zone: str) -> str:
    """``10:00 AM``."""
    moment = local(instant, zone)
    hour = moment.hour % 12 or 12
    return f"{hour}:{moment.minute:02d} {'AM' if moment.hour < 12 else 'PM'}"


def zone_abbreviation(instant: datetime, zone: str) -> str:
    """``EST`` / ``EDT``, ``CET`` / ``CEST``; zones without a letter abbreviation read ``UTC+03``."""
    name = local(instant, zone).tzname() or zone
    return f"UTC{name}" if name[:1] in "+-" else name


def when(instant: datetime, zone: str) -> str:
    """``Monday 23 November 2026, 10:00 AM EST``."""
    return f"{date_in_words(instant, zone)}, {clock_time(instant, zone)} {zone_abbreviation(instant, zone)}"


def zone_label(zone: str) -> str:
    """``America/New_York`` reads ``America/New York``."""
    return zone.replace("_", " ")


def one_line(text: str, limit: int = MAX_SUBJECT) -> str:
    """A header-safe line: every control, format or separator character becomes a space, runs of space
    collapse, and the result is cut to ``limit`` characters (with an ellipsis)."""
    kept = "".join(" " if _unsafe(c) else c for c in text)
    line = _SPACES.sub(" ", kept).strip()
    if len(line) <= limit:
        return line
    return line[: limit - 1].rstrip() + "…"


def _unsafe(character: str) -> bool:
    category = unicodedata.category(character)
    return category[0] == "C" or category in ("Zl", "Zp")


def paragraph_text(text: str) -> str:
    """Customer or ops text for a mail body: newlines normalised to ``\\n``, other control characters dropped."""
    unified = _NEWLINES.sub("\n", text)
    cleaned = "".join(c for c in unified if c in "\n\t" or unicodedata.category(c)[0] != "C")
    return cleaned.strip()


def safe_url(url: str | None) -> str | None:
    """An http(s) link with a host, or None: a ``javascript:`` or malformed link is never offered."""
    if url is None:
        return None
    candidate = url.strip()
    if not candidate or any(_unsafe(c) or c.isspace() for c in candidate):
        return None
    try:
        parts = urlsplit(candidate)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return candidate
