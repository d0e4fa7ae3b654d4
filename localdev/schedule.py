"""EventBridge schedule expressions, evaluated on the runner's clock rather than wall time.

Emulated: ``rate(N minute|minutes|hour|hours|day|days)`` (the unit singular exactly when N is 1, as
AWS requires) and six-field ``cron(minutes hours day-of-month month day-of-week year)`` with ``*``,
``?``, values, lists, ranges, steps, month names JAN-DEC and weekday names SUN-SAT (1 = SUN), in a
time zone (``ScheduleV2``'s ``ScheduleExpressionTimezone``). Refused at start, never guessed: ``L``,
``W``, ``#`` and anything else; ``at(...)`` one-time schedules too.

A rate counts from an anchor: EventBridge counts from when the rule was created, the runner from the
epoch (so ``rate(5 minutes)`` fires on the five-minute marks) unless given one. In a time zone, a
local time that does not exist (the spring-forward gap) is skipped; one that happens twice (the fall
back) fires once, at its first occurrence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.*)\)$")
_UNIT = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, 1)}
_WEEKDAYS = {name: number for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), 1)}
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minutes", 0, 59, {}),
    ("hours", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 1, 7, _WEEKDAYS),
    ("year", 1970, 2199, {}),
)
_SUPPORTED = "rate(N minute|minutes|hour|hours|day|days) or cron(minutes hours day-of-month month day-of-week year)"


class ScheduleError(ValueError):
    """An expression the runner cannot emulate; the message says what and why."""


class _Evaluator(Protocol):
    def next_after(self, instant: datetime) -> datetime | None: ...

    def at_or_before(self, instant: datetime, *, not_before: datetime) -> datetime | None: ...


@dataclass(frozen=True)
class ScheduleExpression:
    text: str
    evaluator: _Evaluator

    def next_after(self, instant: datetime) -> datetime:
        """The first fire time strictly after ``instant`` (aware, UTC)."""
        _require_aware(instant)
        found = self.evaluator.next_after(instant)
        if found is None:
            raise ScheduleError(f"{self.text}: never fires after {instant.isoformat()}")
        return found

    def latest_due(self, after: datetime, until: datetime) -> datetime | None:
        """The last fire time t with after < t <= until, or None."""
        _require_aware(after)
        _require_aware(until)
        if until <= after:
            return None
        latest = self.evaluator.at_or_before(until, not_before=after)
        return latest if latest is not None and latest > after else None


@dataclass(frozen=True)
class _Rate:
    period: timedelta
    anchor: datetime

    def next_after(self, instant: datetime) -> datetime:
        return self.anchor + max(1, (instant - self.anchor) // self.period + 1) * self.period

    def at_or_before(self, instant: datetime, *, not_before: datetime) -> datetime | None:
        steps = (instant - self.anchor) // self.period
        return self.anchor + steps * self.period if steps >= 1 else None


def parse_schedule(text: str, *, timezone: str = "UTC", anchor: datetime | None = None) -> ScheduleExpression:
    expression = text.strip()
    if rate := _RATE.match(expression):
        count, unit = int(rate.group(1)), rate.group(2)
        if count < 1:
            raise ScheduleError(f"{text}: the rate must be a positive number")
        if (count == 1) != (not unit.endswith("s")):
            raise ScheduleError(f"{text}: AWS wants the unit singular for 1 and plural otherwise")
        if anchor is not None:
            _require_aware(anchor)
        return ScheduleExpression(text=text, evaluator=_Rate(count * _UNIT[unit.rstrip("s")], anchor or EPOCH))
    if cron := _CRON.match(expression):
        return ScheduleExpression(text=text, evaluator=_Cron.parse(text, cron.group(1), _zone(text, timezone)))
    raise ScheduleError(f"{text!r}: the local runner supports {_SUPPORTED}")


def _zone(text: str, name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"{text}: unknown time zone {name!r}") from None


def _require_aware(instant: datetime) -> None:
    if instant.tzinfo is None:
        raise ValueError("schedule times must be timezone-aware")


@dataclass(frozen=True)
class _Cron:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int] | None  # day of month; None for "?"
    months: frozenset[int]
    weekdays: frozenset[int] | None  # 1 = Sunday; None for "?"
    years: tuple[int, ...]
    zone: ZoneInfo

    @classmethod
    def parse(cls, text: str, body: str, zone: ZoneInfo) -> _Cron:
        parts = body.split()
        if len(parts) != len(_FIELDS):
            raise ScheduleError(f"{text}: cron needs 6 fields (minutes hours day-of-month month day-of-week year)")
        values = [_field(text, part, *spec) for part, spec in zip(parts, _FIELDS, strict=True)]
        minutes, hours, days, months, weekdays, years = values
        if (days is None) == (weekdays is None):
            raise ScheduleError(f"{text}: exactly one of day-of-month and day-of-week must be '?'")
        if minutes is None or hours is None or months is None or years is None:
            raise ScheduleError(f"{text}: '?' is only allowed in day-of-month or day-of-week")
        return cls(
            minutes=tuple(sorted(minutes)),
            hours=tuple(sorted(hours)),
            days=days,
            months=months,
            weekdays=weekdays,
            years=tuple(sorted(years)),
            zone=zone,
        )

    def _day_matches(self, day: date) -> bool:
        if day.year not in self.years or day.month not in self.months:
            return False
        if self.days is not None:
            return day.day in self.days
        return self.weekdays is not None and (day.weekday() + 1) % 7 + 1 in self.weekdays

    def _fires_on(self, day: date) -> list[datetime]:
        """The instants (UTC) this expression fires on a local calendar day, in order."""
        fires = []
        for hour in self.hours:
            for minute in self.minutes:
                local = datetime.combine(day, time(hour, minute), tzinfo=self.zone)
                utc = local.astimezone(UTC)
                if utc.astimezone(self.zone).replace(tzinfo=None) != local.replace(tzinfo=None):
                    continue  # in the spring-forward gap: this local time does not exist
                fires.append(utc)
        return fires

    def next_after(self, instant: datetime) -> datetime | None:
        day = instant.astimezone(self.zone).date() - timedelta(days=1)  # a fall-back day may start earlier in UTC
        last = date(self.years[-1], 12, 31)
        while day <= last:
            if day.year not in self.years:
                later = [year for year in self.years if year > day.year]
                if not later:
                    return None
                day = date(later[0], 1, 1)
                continue
            if self._day_matches(day):
                for fire in self._fires_on(day):
                    if fire > instant:
                        return fire
            day += timedelta(days=1)
        return None

    def at_or_before(self, instant: datetime, *, not_before: datetime) -> datetime | None:
        day = instant.astimezone(self.zone).date() + timedelta(days=1)
        first = max(date(self.years[0], 1, 1), not_before.astimezone(self.zone).date() - timedelta(days=1))
        while day >= first:
            if day.year not in self.years:
                earlier = [year for year in self.years if year < day.year]
                if not earlier:
                    return None
                day = date(earlier[-1], 12, 31)
                continue
            if self._day_matches(day):
                for fire in reversed(self._fires_on(day)):
                    if fire <= instant:
                        return fire
            day -= timedelta(days=1)
        return None


def _field(text: str, part: str, name: str, low: int, high: int, names: dict[str, int]) -> frozenset[int] | None:
    if part == "?":
        return None
    for token in re.split(r"[,/-]", part.upper()):
        if token not in names and any(special in token for special in "LW#"):
            raise ScheduleError(f"{text}: {name} {part!r} is not supported by the local runner (L, W and # are not)")
    values: set[int] = set()
    for item in part.split(","):
        values |= _item(text, item, name, low, high, names)
    return frozenset(values)


def _item(text: str, item: str, name: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    span, _, step_text = item.partition("/")
    step = _number(text, step_text, name, 1, high - low + 1, {}) if step_text else 1
    if span == "*":
        start, end = low, high
    elif "-" in span:
        first, _, last = span.partition("-")
        start, end = _number(text, first, name, low, high, names), _number(text, last, name, low, high, names)
        if end < start:
            raise ScheduleError(f"{text}: {name} range {span!r} runs backwards")
    else:
        start = _number(text, span, name, low, high, names)
        end = high if step_text else start
    return set(range(start, end + 1, step))


def _number(text: str, token: str, name: str, low: int, high: int, names: dict[str, int]) -> int:
    upper = token.upper()
    if upper in names:
        return names[upper]
    if not token.isdigit() or not low <= int(token) <= high:
        raise ScheduleError(f"{text}: {name} {token!r} is not a value from {low} to {high}")
    return int(token)
