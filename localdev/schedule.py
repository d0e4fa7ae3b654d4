"""EventBridge schedule expressions, evaluated on the runner's clock rather than wall time.

Emulated:

* ``rate(N unit)`` with unit ``minute|minutes|hour|hours|day|days``, the unit singular exactly when N is 1
  (AWS refuses ``rate(1 minutes)`` and ``rate(5 minute)``, so the runner does too).
* six-field ``cron(minutes hours day-of-month month day-of-week year)`` with ``*``, ``?``, single values,
  lists ``a,b``, ranges ``a-b``, steps ``*/n``, ``a/n`` and ``a-b/n``, month names JAN-DEC, weekday names
  SUN-SAT (AWS numbers weekdays 1-7 from Sunday) and years 1970-2199. Exactly one of day-of-month and
  day-of-week must be ``?``, as AWS requires.
* ``ScheduleV2``'s ``ScheduleExpressionTimezone``: cron fields are read on that zone's local clock, and
  every instant handed back is UTC.

Refused with a :class:`ScheduleError` when the template is loaded, never guessed at: ``L``, ``W``, ``LW``
and ``#`` (last day, nearest weekday, nth weekday), ``at(...)`` one-time schedules, unknown time zones and
anything else that does not parse.

Choices where the runner cannot copy AWS exactly:

* A rate counts from an anchor. EventBridge counts from when the rule was created; the runner counts from
  the epoch (1970-01-01T00:00Z) unless given an anchor, so ``rate(5 minutes)`` fires on the five-minute
  marks and ``rate(1 day)`` at midnight UTC, the same on every start of the runner.
* Daylight saving time: a local time that does not exist (skipped by the spring-forward jump) does not fire
  that day; a local time that happens twice (the fall-back hour) fires once, on its first occurrence, so a
  cron firing every few minutes is quiet while the clock repeats that hour. EventBridge Scheduler documents
  the same two rules.
"""

from __future__ import annotations

import calendar
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["ScheduleError", "ScheduleExpression", "parse_schedule"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE = timedelta(minutes=1)
_SUPPORTED_FORMS = (
    "rate(N minute|minutes|hour|hours|day|days) or cron(minutes hours day-of-month month day-of-week year)"
)

_RATE = re.compile(r"rate\(\s*(\S*)\s+(\S*)\s*\)")
_CRON = re.compile(r"cron\((.*)\)", re.DOTALL)
_DIGITS = re.compile(r"[0-9]+")
_SPECIAL_DAY = re.compile(r"[0-9]*L|LW|[0-9]+W|.*#.*")  # last (weekday) of month, nearest weekday, nth weekday
_RATE_UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKDAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


class ScheduleError(ValueError):
    """An expression the runner cannot emulate; the message says what and why."""


@dataclass(frozen=True)
class _Rate:
    period: timedelta
    anchor: datetime

    def next_after(self, instant: datetime) -> datetime | None:
        periods = max(1, (instant - self.anchor) // self.period + 1)
        return self.anchor + periods * self.period

    def at_or_before(self, instant: datetime) -> datetime | None:
        periods = (instant - self.anchor) // self.period
        return self.anchor + periods * self.period if periods >= 1 else None


@dataclass(frozen=True)
class _DaysOfMonth:
    days: tuple[int, ...]

    def at_or_after(self, day: date) -> date | None:
        """The first allowed day from ``day`` to the end of its month."""
        found = _first_at_or_after(self.days, day.day)
        if found is None or found > calendar.monthrange(day.year, day.month)[1]:
            return None
        return day.replace(day=found)

    def at_or_before(self, day: date) -> date | None:
        """The last allowed day from the start of ``day``'s month to ``day``."""
        found = _last_at_or_before(self.days, day.day)
        return day.replace(day=found) if found is not None else None


@dataclass(frozen=True)
class _DaysOfWeek:
    weekdays: tuple[int, ...]  # AWS numbering: 1 = Sunday

    def at_or_after(self, day: date) -> date | None:
        """The first allowed day from ``day`` to the end of its month."""
        found = day + timedelta(days=min((weekday - _aws_weekday(day)) % 7 for weekday in self.weekdays))
        return found if found.month == day.month else None

    def at_or_before(self, day: date) -> date | None:
        """The last allowed day from the start of ``day``'s month to ``day``."""
        found = day - timedelta(days=min((_aws_weekday(day) - weekday) % 7 for weekday in self.weekdays))
        return found if found.month == day.month else None


@dataclass(frozen=True)
class _Cron:
    """Six parsed cron fields on a zone's local clock.

    Local clock times are carried as datetimes in ``zone``: Python adds and compares datetimes that share a
    tzinfo as wall-clock readings, which is what stepping a cron field means. They become instants only in
    :meth:`_instant_of`, where the daylight-saving rules live.
    """

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: _DaysOfMonth | _DaysOfWeek
    months: tuple[int, ...]
    years: tuple[int, ...]
    zone: ZoneInfo

    def next_after(self, instant: datetime) -> datetime | None:
        wall = _start_of_minute(instant.astimezone(self.zone)) + _MINUTE
        while (candidate := self._wall_at_or_after(wall)) is not None:
            fire = self._instant_of(candidate)
            # Inside a repeated (fall-back) hour, a wall time after the instant's may have fired already.
            if fire is not None and fire > instant:
                return fire
            wall = candidate + _MINUTE
        return None

    def at_or_before(self, instant: datetime) -> datetime | None:
        local = instant.astimezone(self.zone)
        # During the second pass of a repeated hour, later wall times of the first pass have already fired.
        wall = _start_of_minute(local + _repeated_time_behind(local))
        while (candidate := self._wall_at_or_before(wall)) is not None:
            fire = self._instant_of(candidate)
            if fire is not None and fire <= instant:
                return fire
            wall = candidate - _MINUTE
        return None

    def _instant_of(self, wall: datetime) -> datetime | None:
        """When the local clock first reads ``wall``, in UTC, or None if it never does (the spring-forward gap)."""
        first = wall.replace(fold=0).astimezone(UTC)
        return first if _wall_reading(first.astimezone(self.zone)) == _wall_reading(wall) else None

    def _wall_at_or_after(self, wall: datetime) -> datetime | None:
        """The first wall time at or after ``wall`` that the fields allow, stepping field by field."""
        moment = wall
        while moment.year <= self.years[-1]:
            advanced = self._advance_date(moment) or self._advance_clock(moment)
            if advanced is None:
                return moment
            moment = advanced
        return None

    def _wall_at_or_before(self, wall: datetime) -> datetime | None:
        """The last wall time at or before ``wall`` that the fields allow, stepping field by field."""
        moment = wall
        while moment.year >= self.years[0]:
            retreated = self._retreat_date(moment) or self._retreat_clock(moment)
            if retreated is None:
                return moment
            moment = retreated
        return None

    # Each step below looks at the fields from the largest down: None when they all match, else the next
    # (or previous) wall time worth trying, which skips everything the first mismatching field rules out.
    # Past the last (or before the first) allowed year it returns a wall time outside the years, ending the walk.

    def _advance_date(self, wall: datetime) -> datetime | None:
        year = _first_at_or_after(self.years, wall.year)
        if year is None:
            return datetime(wall.year + 1, 1, 1, tzinfo=self.zone)
        if year != wall.year:
            return datetime(year, 1, 1, tzinfo=self.zone)
        month = _first_at_or_after(self.months, wall.month)
        if month is None:
            return datetime(wall.year + 1, 1, 1, tzinfo=self.zone)
        if month != wall.month:
            return datetime(wall.year, month, 1, tzinfo=self.zone)
        day = self.days.at_or_after(wall.date())
        if day is None:
            return _start_of_day(_first_of_next_month(wall.date()), self.zone)
        return _start_of_day(day, self.zone) if day != wall.date() else None

    def _advance_clock(self, wall: datetime) -> datetime | None:
        hour = _first_at_or_after(self.hours, wall.hour)
        if hour is None:
            return _start_of_day(wall.date() + timedelta(days=1), self.zone)
        if hour != wall.hour:
            return wall.replace(hour=hour, minute=0)
        minute = _first_at_or_after(self.minutes, wall.minute)
        if minute is None:
            return wall.replace(minute=0) + timedelta(hours=1)
        return wall.replace(minute=minute) if minute != wall.minute else None

    def _retreat_date(self, wall: datetime) -> datetime | None:
        year = _last_at_or_before(self.years, wall.year)
        if year is None:
            return _end_of_day(date(wall.year - 1, 12, 31), self.zone)
        if year != wall.year:
            return _end_of_day(date(year, 12, 31), self.zone)
        month = _last_at_or_before(self.months, wall.month)
        if month is None:
            return _end_of_day(date(wall.year - 1, 12, 31), self.zone)
        if month != wall.month:
            return _end_of_day(_last_of_month(wall.year, month), self.zone)
        day = self.days.at_or_before(wall.date())
        if day is None:
            return _end_of_day(wall.date().replace(day=1) - timedelta(days=1), self.zone)
        return _end_of_day(day, self.zone) if day != wall.date() else None

    def _retreat_clock(self, wall: datetime) -> datetime | None:
        hour = _last_at_or_before(self.hours, wall.hour)
        if hour is None:
            return _start_of_day(wall.date(), self.zone) - _MINUTE
        if hour != wall.hour:
            return wall.replace(hour=hour, minute=59)
        minute = _last_at_or_before(self.minutes, wall.minute)
        if minute is None:
            return wall.replace(minute=0) - _MINUTE
        return wall.replace(minute=minute) if minute != wall.minute else None


@dataclass(frozen=True)
class ScheduleExpression:
    """A parsed schedule: when a ``Schedule`` or ``ScheduleV2`` event fires, as aware UTC instants."""

    text: str
    _rule: _Rate | _Cron = field(repr=False)

    def next_after(self, instant: datetime) -> datetime:
        """The first fire time strictly after ``instant`` (aware), in UTC.

        Raises ScheduleError when there is none (a cron whose year field has run out).
        """
        _require_aware(instant)
        found = self._rule.next_after(instant)
        if found is None:
            raise ScheduleError(f"{self.text}: never fires after {instant.astimezone(UTC).isoformat()}")
        return found

    def latest_due(self, after: datetime, until: datetime) -> datetime | None:
        """The last fire time t with ``after < t <= until``, in UTC, or None when nothing fires in between."""
        _require_aware(after)
        _require_aware(until)
        if until <= after:
            return None
        latest = self._rule.at_or_before(until)
        return latest if latest is not None and latest > after else None


def parse_schedule(text: str, *, timezone: str = "UTC", anchor: datetime | None = None) -> ScheduleExpression:
    """Parse an EventBridge schedule expression, refusing what the runner cannot emulate.

    ``timezone`` is an IANA zone name (``ScheduleV2``'s ``ScheduleExpressionTimezone``) for cron fields;
    ``anchor`` (aware) is where a rate starts counting, the epoch if not given.
    """
    expression = text.strip()
    zone = _zone(text, timezone)
    if rate := _RATE.fullmatch(expression):
        return ScheduleExpression(text=text, _rule=_parse_rate(text, rate.group(1), rate.group(2), anchor))
    if cron := _CRON.fullmatch(expression):
        return ScheduleExpression(text=text, _rule=_parse_cron(text, cron.group(1), zone))
    if expression.startswith("at("):
        raise ScheduleError(
            f"{text}: one-time at(...) schedules are not emulated; the runner supports {_SUPPORTED_FORMS}"
        )
    raise ScheduleError(f"{text!r} is not a schedule expression the local runner supports: {_SUPPORTED_FORMS}")


def _parse_rate(text: str, count_text: str, unit: str, anchor: datetime | None) -> _Rate:
    singular = unit.removesuffix("s")
    if singular not in _RATE_UNITS:
        raise ScheduleError(f"{text}: rate unit {unit!r} is unknown; the local runner supports {_SUPPORTED_FORMS}")
    if not _DIGITS.fullmatch(count_text) or int(count_text) < 1:
        raise ScheduleError(f"{text}: the rate {count_text!r} must be a positive whole number")
    count = int(count_text)
    if (count == 1) != (unit == singular):
        wanted = f"{count} {singular}" if count == 1 else f"{count} {singular}s"
        raise ScheduleError(f"{text}: AWS wants the unit singular when N is 1 and plural otherwise ({wanted!r})")
    if anchor is not None:
        _require_aware(anchor)
    return _Rate(period=count * _RATE_UNITS[singular], anchor=(anchor or _EPOCH).astimezone(UTC))


# --- cron fields


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # spelled-out values, numbered from ``low``
    is_day: bool = False  # day-of-month and day-of-week, where AWS also has L, W and #

    def value_of(self, token: str) -> int | None:
        upper = token.upper()
        if upper in self.names:
            return self.low + self.names.index(upper)
        if _DIGITS.fullmatch(token) and self.low <= int(token) <= self.high:
            return int(token)
        return None


_MINUTES = _Field("minutes", 0, 59)
_HOURS = _Field("hours", 0, 23)
_DAY_OF_MONTH = _Field("day-of-month", 1, 31, is_day=True)
_MONTH = _Field("month", 1, 12, _MONTH_NAMES)
_DAY_OF_WEEK = _Field("day-of-week", 1, 7, _WEEKDAY_NAMES, is_day=True)
_YEAR = _Field("year", 1970, 2199)
_FIELDS = (_MINUTES, _HOURS, _DAY_OF_MONTH, _MONTH, _DAY_OF_WEEK, _YEAR)


def _parse_cron(text: str, body: str, zone: ZoneInfo) -> _Cron:
    parts = body.split()
    if len(parts) != len(_FIELDS):
        names = " ".join(spec.name for spec in _FIELDS)
        raise ScheduleError(f"{text}: cron needs 6 fields ({names}), got {len(parts)}")
    minutes, hours, day_of_month, month, day_of_week, year = parts
    cron = _Cron(
        minutes=_parse_values(text, minutes, _MINUTES),
        hours=_parse_values(text, hours, _HOURS),
        days=_parse_days(text, day_of_month, day_of_week),
        months=_parse_values(text, month, _MONTH),
        years=_parse_values(text, year, _YEAR),
        zone=zone,
    )
    if cron._wall_at_or_after(datetime(cron.years[0], 1, 1, tzinfo=zone)) is None:
        raise ScheduleError(f"{text}: never fires (no date matches its day-of-month, month and year)")
    return cron


def _parse_days(text: str, day_of_month: str, day_of_week: str) -> _DaysOfMonth | _DaysOfWeek:
    if day_of_week == "?" and day_of_month != "?":
        return _DaysOfMonth(_parse_values(text, day_of_month, _DAY_OF_MONTH))
    if day_of_month == "?" and day_of_week != "?":
        return _DaysOfWeek(_parse_values(text, day_of_week, _DAY_OF_WEEK))
    both = "both are" if day_of_month == "?" else "neither is"
    raise ScheduleError(f"{text}: exactly one of day-of-month and day-of-week must be '?' ({both})")


def _parse_values(text: str, part: str, spec: _Field) -> tuple[int, ...]:
    if part == "?":
        raise ScheduleError(f"{text}: {spec.name} '?' is only allowed in day-of-month or day-of-week")
    if spec.is_day:
        _refuse_special_days(text, part, spec)
    values: set[int] = set()
    for item in part.split(","):
        values |= _parse_item(text, item, spec)
    return tuple(sorted(values))


def _refuse_special_days(text: str, part: str, spec: _Field) -> None:
    # Refused by name rather than as garbage: AWS accepts these, so a developer deserves to hear why we do not.
    for token in re.split(r"[,/-]", part.upper()):
        if _SPECIAL_DAY.fullmatch(token):
            raise ScheduleError(
                f"{text}: {spec.name} {part!r} is not supported by the local runner (it emulates no L, W, LW or #)"
            )


def _parse_item(text: str, item: str, spec: _Field) -> set[int]:
    span, slash, step_text = item.partition("/")
    step = _parse_step(text, step_text, spec) if slash else 1
    if span == "*":
        start, end = spec.low, spec.high
    elif "-" in span:
        first, _, last = span.partition("-")
        start, end = _parse_value(text, first, spec), _parse_value(text, last, spec)
        if end < start:
            raise ScheduleError(f"{text}: {spec.name} range {span!r} runs backwards")
    else:
        start = _parse_value(text, span, spec)
        end = spec.high if slash else start  # "a/n" means from a to the field's end
    return set(range(start, end + 1, step))


def _parse_value(text: str, token: str, spec: _Field) -> int:
    value = spec.value_of(token)
    if value is None:
        spelled = f" or {spec.names[0]}-{spec.names[-1]}" if spec.names else ""
        raise ScheduleError(f"{text}: {spec.name} {token!r} is not a value from {spec.low} to {spec.high}{spelled}")
    return value


def _parse_step(text: str, token: str, spec: _Field) -> int:
    if not _DIGITS.fullmatch(token) or int(token) < 1:
        raise ScheduleError(f"{text}: {spec.name} step {token!r} must be a positive whole number")
    return int(token)


# --- calendar helpers


def _zone(text: str, name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # a directory such as 'America' is an OSError
        raise ScheduleError(
            f"{text}: unknown time zone {name!r} (expected an IANA name like 'Europe/Berlin')"
        ) from None


def _require_aware(instant: datetime) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"schedule times must be timezone-aware, got {instant.isoformat()}")


def _first_at_or_after(values: tuple[int, ...], wanted: int) -> int | None:
    index = bisect_left(values, wanted)
    return values[index] if index < len(values) else None


def _last_at_or_before(values: tuple[int, ...], wanted: int) -> int | None:
    index = bisect_right(values, wanted)
    return values[index - 1] if index > 0 else None


def _aws_weekday(day: date) -> int:
    return day.isoweekday() % 7 + 1  # ISO counts Monday=1..Sunday=7; AWS counts Sunday=1..Saturday=7


def _start_of_minute(wall: datetime) -> datetime:
    return wall.replace(second=0, microsecond=0)


def _start_of_day(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=zone)


def _end_of_day(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(23, 59), tzinfo=zone)


def _first_of_next_month(day: date) -> date:
    return date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)


def _last_of_month(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _wall_reading(local: datetime) -> tuple[int, int, int, int, int]:
    return local.year, local.month, local.day, local.hour, local.minute


def _repeated_time_behind(local: datetime) -> timedelta:
    """How far the clock was set back, if ``local`` is in the second pass of a repeated (fall-back) hour."""
    if not local.fold:
        return timedelta(0)
    first_pass, second_pass = local.replace(fold=0).utcoffset(), local.utcoffset()
    if first_pass is None or second_pass is None:
        return timedelta(0)
    return max(first_pass - second_pass, timedelta(0))
