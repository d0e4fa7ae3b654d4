"""EventBridge schedule expressions as the local runner evaluates them: on any clock, never the wall's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from localdev.schedule import ScheduleError, ScheduleExpression, parse_schedule

T0 = datetime(2026, 11, 23, 10, 0, 30, tzinfo=UTC)  # a Monday
MINUTE = timedelta(minutes=1)
# hypothesis takes naive bounds and attaches the time zone itself
EARLIEST, LATEST = datetime(2020, 1, 1), datetime(2035, 12, 31)  # noqa: DTZ001


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# --- rate


def test_a_rate_of_five_minutes_fires_on_the_five_minute_marks() -> None:
    every_five = parse_schedule("rate(5 minutes)")

    assert every_five.next_after(T0) == utc("2026-11-23T10:05:00Z")
    assert every_five.next_after(utc("2026-11-23T10:05:00Z")) == utc("2026-11-23T10:10:00Z")
    assert every_five.latest_due(T0, utc("2026-11-23T13:07:00Z")) == utc("2026-11-23T13:05:00Z")
    assert every_five.latest_due(T0, utc("2026-11-23T10:04:59Z")) is None


def test_a_daily_rate_without_an_anchor_fires_at_midnight_utc() -> None:
    daily = parse_schedule("rate(1 day)")

    assert daily.next_after(T0) == utc("2026-11-24T00:00:00Z")


def test_a_rate_counts_whole_periods_from_a_given_anchor() -> None:
    anchor = utc("2026-11-23T09:20:00Z")
    hourly = parse_schedule("rate(1 hour)", anchor=anchor)

    assert hourly.next_after(T0) == utc("2026-11-23T10:20:00Z")
    # The anchor itself is when the rule was created, not a fire time; the first fire is one period later.
    assert hourly.next_after(anchor - timedelta(days=3)) == anchor + timedelta(hours=1)
    assert hourly.latest_due(anchor - timedelta(days=3), anchor + timedelta(minutes=59)) is None


def test_a_rate_anchored_in_another_zone_returns_utc() -> None:
    anchor = datetime(2026, 11, 23, 4, 20, tzinfo=ZoneInfo("America/New_York"))  # 09:20Z

    following = parse_schedule("rate(2 hours)", anchor=anchor).next_after(T0)

    assert following == utc("2026-11-23T11:20:00Z")
    assert following.tzinfo is UTC


def test_a_rate_is_the_same_in_any_time_zone() -> None:
    in_new_york = parse_schedule("rate(1 day)", timezone="America/New_York")

    assert in_new_york.next_after(T0) == parse_schedule("rate(1 day)").next_after(T0)


def test_the_latest_due_rate_fire_of_a_century_is_found_at_once() -> None:
    every_minute = parse_schedule("rate(1 minute)")
    until = utc("2126-01-01T00:00:30Z")

    assert every_minute.latest_due(utc("2026-01-01T00:00:00Z"), until) == utc("2126-01-01T00:00:00Z")


@pytest.mark.parametrize(
    ("text", "period"),
    [
        ("rate(1 minute)", timedelta(minutes=1)),
        ("rate(15 minutes)", timedelta(minutes=15)),
        ("rate(1 hour)", timedelta(hours=1)),
        ("rate(10 hours)", timedelta(hours=10)),
        ("rate(1 day)", timedelta(days=1)),
        ("rate(2 days)", timedelta(days=2)),
        ("  rate(3 days) ", timedelta(days=3)),
    ],
)
def test_a_rate_whose_unit_agrees_with_its_number_fires_once_a_period(text: str, period: timedelta) -> None:
    expression = parse_schedule(text)

    first = expression.next_after(T0)

    assert expression.next_after(first) - first == period
    assert expression.text == text


# --- cron


@pytest.mark.parametrize(
    ("text", "after", "expected"),
    [
        ("cron(0 2 * * ? *)", "2026-11-23T10:00:30Z", "2026-11-24T02:00:00Z"),
        ("cron(*/15 * * * ? *)", "2026-11-23T10:00:30Z", "2026-11-23T10:15:00Z"),
        ("cron(*/15 * * * ? *)", "2026-11-23T10:15:00Z", "2026-11-23T10:30:00Z"),  # strictly after
        ("cron(0 */6 * * ? *)", "2026-11-23T10:00:00Z", "2026-11-23T12:00:00Z"),
        ("cron(0 9 ? * MON-FRI *)", "2026-11-27T10:00:00Z", "2026-11-30T09:00:00Z"),  # Friday → Monday
        ("cron(0 9 ? * mon-fri *)", "2026-11-27T10:00:00Z", "2026-11-30T09:00:00Z"),  # names in any case
        ("cron(0 9 ? * 2 *)", "2026-11-23T10:00:00Z", "2026-11-30T09:00:00Z"),  # 2 = Monday
        ("cron(0 9 ? * 1 *)", "2026-11-23T10:00:00Z", "2026-11-29T09:00:00Z"),  # 1 = Sunday
        ("cron(0 9 ? * 7 *)", "2026-11-23T10:00:00Z", "2026-11-28T09:00:00Z"),  # 7 = Saturday
        ("cron(0 9 ? * SUN,WED *)", "2026-11-23T10:00:00Z", "2026-11-25T09:00:00Z"),
        ("cron(30 8 1 JAN,JUL ? *)", "2026-11-23T10:00:00Z", "2027-01-01T08:30:00Z"),
        ("cron(0 0 1 1-12/3 ? *)", "2026-11-23T10:00:00Z", "2027-01-01T00:00:00Z"),
        ("cron(0 0 1 FEB-NOV/3 ? *)", "2026-06-01T00:00:00Z", "2026-08-01T00:00:00Z"),
        ("cron(0 0 31 * ? *)", "2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z"),  # skips 30-day April
        ("cron(0 0 29 2 ? *)", "2026-11-23T10:00:00Z", "2028-02-29T00:00:00Z"),
        ("cron(0 0 29 2 ? *)", "2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"),
        ("cron(0 12 * * ? 2030)", "2026-11-23T10:00:00Z", "2030-01-01T12:00:00Z"),
        ("cron(0 0 1 1 ? 2199)", "2026-11-23T10:00:00Z", "2199-01-01T00:00:00Z"),
        ("cron(0 12 * * ? 2027-2030/3)", "2027-12-31T12:00:00Z", "2030-01-01T12:00:00Z"),
        ("cron(5-10/5 14 ? * SUN *)", "2026-11-23T10:00:00Z", "2026-11-29T14:05:00Z"),
        ("cron(5-10/5 14 ? * SUN *)", "2026-11-29T14:05:00Z", "2026-11-29T14:10:00Z"),
        ("cron(50/5 23 31 12 ? *)", "2026-12-31T23:55:00Z", "2027-12-31T23:50:00Z"),  # a/n runs to the end
        ("cron(0,30 9-10 15 * ? *)", "2026-11-15T09:30:00Z", "2026-11-15T10:00:00Z"),
    ],
)
def test_cron_fires_at_the_next_time_its_fields_allow(text: str, after: str, expected: str) -> None:
    following = parse_schedule(text).next_after(utc(after))

    assert following == utc(expected)
    assert following.tzinfo is UTC


def test_the_next_february_29_is_found_across_years() -> None:
    leap_day = parse_schedule("cron(0 0 29 2 ? *)")

    assert leap_day.next_after(utc("2026-03-08T12:00:00Z")) == utc("2028-02-29T00:00:00Z")
    assert leap_day.latest_due(utc("2028-03-01T00:00:00Z"), utc("2031-12-31T00:00:00Z")) is None
    assert leap_day.latest_due(utc("2020-01-01T00:00:00Z"), utc("2031-12-31T00:00:00Z")) == utc("2028-02-29T00:00:00Z")


def test_the_latest_due_time_of_a_cron_in_a_long_window_is_its_last_fire() -> None:
    every_minute = parse_schedule("cron(* * * * ? *)")
    yearly = parse_schedule("cron(0 0 1 1 ? *)")

    assert every_minute.latest_due(T0, T0 + timedelta(days=400)) == T0 + timedelta(days=400, seconds=-30)
    assert yearly.latest_due(T0, utc("2029-06-01T00:00:00Z")) == utc("2029-01-01T00:00:00Z")
    assert yearly.latest_due(T0, utc("2026-12-31T23:59:59Z")) is None


def test_a_window_includes_its_end_and_excludes_its_start() -> None:
    hourly = parse_schedule("cron(0 * * * ? *)")
    ten, eleven = utc("2026-11-23T10:00:00Z"), utc("2026-11-23T11:00:00Z")

    assert hourly.latest_due(ten, eleven) == eleven
    assert hourly.latest_due(ten, eleven - MINUTE) is None
    assert hourly.latest_due(eleven, ten) is None  # an empty window


def test_a_cron_whose_years_have_passed_never_fires_again() -> None:
    in_2027 = parse_schedule("cron(0 12 * * ? 2027)")

    assert in_2027.latest_due(T0, utc("2040-01-01T00:00:00Z")) == utc("2027-12-31T12:00:00Z")
    assert in_2027.latest_due(utc("2020-01-01T00:00:00Z"), utc("2026-12-31T00:00:00Z")) is None
    with pytest.raises(ScheduleError, match=r"cron\(0 12 \* \* \? 2027\): never fires after 2028"):
        in_2027.next_after(utc("2028-01-01T00:00:00Z"))


# --- time zones and daylight saving time (America/New_York: 2026-03-08 spring forward, 2026-11-01 fall back)


def test_cron_in_a_time_zone_fires_at_its_local_time() -> None:
    nightly = parse_schedule("cron(0 2 * * ? *)", timezone="America/New_York")

    assert nightly.next_after(T0) == utc("2026-11-24T07:00:00Z")  # EST, UTC-5
    assert nightly.next_after(utc("2026-07-01T00:00:00Z")) == utc("2026-07-01T06:00:00Z")  # EDT, UTC-4


def test_a_weekday_is_the_local_weekday() -> None:
    # 2026-11-23 01:00Z is still Sunday evening in New York
    monday_mornings = parse_schedule("cron(0 9 ? * MON *)", timezone="America/New_York")

    assert monday_mornings.next_after(utc("2026-11-23T01:00:00Z")) == utc("2026-11-23T14:00:00Z")


def test_a_local_time_in_the_spring_forward_gap_is_skipped() -> None:
    # 2026-03-08: New York's clocks jump from 02:00 to 03:00, so 02:30 does not exist that day
    half_past_two = parse_schedule("cron(30 2 * * ? *)", timezone="America/New_York")

    assert half_past_two.next_after(utc("2026-03-08T05:00:00Z")) == utc("2026-03-09T06:30:00Z")
    assert half_past_two.latest_due(utc("2026-03-07T08:00:00Z"), utc("2026-03-09T06:00:00Z")) is None


def test_a_frequent_cron_carries_on_after_the_spring_forward_gap() -> None:
    half_hourly = parse_schedule("cron(0/30 * * * ? *)", timezone="America/New_York")
    half_past_one_est = utc("2026-03-08T06:30:00Z")

    assert half_hourly.next_after(half_past_one_est) == utc("2026-03-08T07:00:00Z")  # 03:00 EDT
    assert half_hourly.latest_due(half_past_one_est, utc("2026-03-08T07:29:00Z")) == utc("2026-03-08T07:00:00Z")


def test_a_local_time_that_happens_twice_fires_once_on_its_first_occurrence() -> None:
    # 2026-11-01: New York's 01:30 happens at 05:30Z (EDT) and again at 06:30Z (EST)
    half_past_one = parse_schedule("cron(30 1 * * ? *)", timezone="America/New_York")

    first = half_past_one.next_after(utc("2026-11-01T04:00:00Z"))

    assert first == utc("2026-11-01T05:30:00Z")
    assert half_past_one.next_after(first) == utc("2026-11-02T06:30:00Z")
    assert half_past_one.latest_due(first, utc("2026-11-01T07:00:00Z")) is None
    assert half_past_one.latest_due(utc("2026-11-01T05:00:00Z"), utc("2026-11-01T06:45:00Z")) == first


def test_a_frequent_cron_is_quiet_while_the_clock_repeats_an_hour() -> None:
    every_quarter = parse_schedule("cron(*/15 * * * ? *)", timezone="America/New_York")
    quarter_to_two_edt = utc("2026-11-01T05:45:00Z")
    twenty_to_two_est = utc("2026-11-01T06:40:00Z")  # the second pass through 01:40

    assert every_quarter.next_after(quarter_to_two_edt) == utc("2026-11-01T07:00:00Z")  # 02:00 EST
    assert every_quarter.next_after(twenty_to_two_est) == utc("2026-11-01T07:00:00Z")
    # From inside the second pass, the last fire is the end of the first one, later on the local clock.
    assert every_quarter.latest_due(utc("2026-11-01T05:00:00Z"), twenty_to_two_est) == quarter_to_two_edt


def test_an_unknown_time_zone_is_refused_naming_it() -> None:
    with pytest.raises(ScheduleError, match="Mars/Olympus"):
        parse_schedule("cron(0 2 * * ? *)", timezone="Mars/Olympus")


@pytest.mark.parametrize("zone", ["America", "", "../etc/passwd", "Europe/Berlin "])
def test_a_time_zone_that_is_not_an_iana_name_is_refused(zone: str) -> None:
    with pytest.raises(ScheduleError, match="unknown time zone"):
        parse_schedule("rate(1 hour)", timezone=zone)


# --- refused


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("cron(0 12 L * ? *)", "day-of-month 'L' is not supported by the local runner"),
        ("cron(0 12 LW * ? *)", "day-of-month 'LW' is not supported"),
        ("cron(0 12 15W * ? *)", "day-of-month '15W' is not supported"),
        ("cron(0 12 1,L * ? *)", "day-of-month '1,L' is not supported"),
        ("cron(0 12 L-3 * ? *)", "day-of-month 'L-3' is not supported"),
        ("cron(0 12 ? * 6#3 *)", "day-of-week '6#3' is not supported"),
        ("cron(0 12 ? * FRI#3 *)", "day-of-week 'FRI#3' is not supported"),
        ("cron(0 12 ? * 6L *)", "day-of-week '6L' is not supported"),
        ("cron(0 12 ? * L *)", "day-of-week 'L' is not supported"),
        ("cron(0 12 * * * *)", "exactly one of day-of-month and day-of-week must be '\\?' \\(neither is\\)"),
        ("cron(0 12 1 * MON *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 12 ? * ? *)", "exactly one of day-of-month and day-of-week must be '\\?' \\(both are\\)"),
        ("cron(? 12 1 * ? *)", "minutes '\\?' is only allowed in day-of-month or day-of-week"),
        ("cron(0 12 1 ? ? *)", "month '\\?'"),
        ("cron(0 12 * * ?)", "6 fields"),
        ("cron(0 12 * * ? * *)", "6 fields"),
        ("cron()", "6 fields"),
        ("cron(60 12 * * ? *)", "minutes '60' is not a value from 0 to 59"),
        ("cron(0 24 * * ? *)", "hours '24'"),
        ("cron(0 12 0 * ? *)", "day-of-month '0'"),
        ("cron(0 12 32 * ? *)", "day-of-month '32'"),
        ("cron(0 12 JUL * ? *)", "day-of-month 'JUL'"),
        ("cron(0 12 * 13 ? *)", "month '13'"),
        ("cron(0 12 * FOO ? *)", "month 'FOO' is not a value from 1 to 12 or JAN-DEC"),
        ("cron(0 12 ? * 8 *)", "day-of-week '8'"),
        ("cron(0 12 ? * 0 *)", "day-of-week '0'"),
        ("cron(0 12 * * ? 1969)", "year '1969'"),
        ("cron(0 12 * * ? 2200)", "year '2200'"),
        ("cron(0 12 20-10 * ? *)", "day-of-month range '20-10' runs backwards"),
        ("cron(0 12 ? * FRI-MON *)", "day-of-week range 'FRI-MON' runs backwards"),
        ("cron(*/0 12 * * ? *)", "minutes step '0'"),
        ("cron(*/x 12 * * ? *)", "minutes step 'x'"),
        ("cron(1,,2 12 * * ? *)", "minutes ''"),
        ("cron(-5 12 * * ? *)", "minutes ''"),
        ("cron(0 12 * * ? *-*)", "year '\\*'"),
        ("cron(0 ½ * * ? *)", "hours '½'"),
        ("cron(0 0 30 2 ? *)", "never fires"),
        ("CRON(0 12 * * ? *)", "supports"),
        ("rate(1 minutes)", "singular"),
        ("rate(5 minute)", "singular"),
        ("rate(0 minutes)", "'0' must be a positive whole number"),
        ("rate(-5 minutes)", "'-5' must be a positive whole number"),
        ("rate(1.5 hours)", "'1.5' must be a positive whole number"),
        ("rate(5 weeks)", "rate unit 'weeks' is unknown"),
        ("rate(5 Minutes)", "rate unit 'Minutes' is unknown"),
        ("rate(5)", "supports"),
        ("at(2026-11-23T10:00:00)", "one-time at\\(...\\) schedules are not emulated"),
        ("every 5 minutes", "supports"),
        ("", "supports"),
    ],
)
def test_an_expression_the_runner_cannot_emulate_is_refused_saying_where_and_why(text: str, named: str) -> None:
    with pytest.raises(ScheduleError, match=named) as refused:
        parse_schedule(text)

    assert text.strip() in str(refused.value)


def test_a_refusal_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="L"):
        parse_schedule("cron(0 12 L * ? *)")


@pytest.mark.parametrize(
    "call",
    [
        lambda schedule: schedule.next_after(datetime(2026, 11, 23, 10, 0)),  # noqa: DTZ001
        lambda schedule: schedule.latest_due(datetime(2026, 11, 23, 10, 0), T0),  # noqa: DTZ001
        lambda schedule: schedule.latest_due(T0, datetime(2026, 11, 24, 10, 0)),  # noqa: DTZ001
    ],
    ids=["next_after", "latest_due after", "latest_due until"],
)
@pytest.mark.parametrize("text", ["rate(1 hour)", "cron(0 * * * ? *)"])
def test_naive_times_are_refused(text: str, call: Callable[[ScheduleExpression], object]) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        call(parse_schedule(text))


def test_a_naive_anchor_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_schedule("rate(1 hour)", anchor=datetime(2026, 11, 23, 10, 0))  # noqa: DTZ001


# --- properties, against a brute-force oracle that reads each UTC minute on the local clock


def _weekday(local: datetime) -> int:
    return local.isoweekday() % 7 + 1  # AWS: 1 = Sunday


# Each cron expression with what it means as a plain predicate on a local wall time.
CRONS: dict[str, Callable[[datetime], bool]] = {
    "cron(*/7 * * * ? *)": lambda at: at.minute % 7 == 0,
    "cron(* 2 * * ? *)": lambda at: at.hour == 2,  # inside New York's and Berlin's spring-forward gap
    "cron(*/5 1 * * ? *)": lambda at: at.hour == 1 and at.minute % 5 == 0,  # inside New York's repeated hour
    "cron(10,40 0-3 * * ? *)": lambda at: at.hour <= 3 and at.minute in (10, 40),
    "cron(0/20 8-17 ? * SUN,SAT *)": lambda at: 8 <= at.hour <= 17 and at.minute % 20 == 0 and _weekday(at) in (1, 7),
    "cron(0 9 ? * MON-FRI *)": lambda at: (at.hour, at.minute) == (9, 0) and 2 <= _weekday(at) <= 6,
    "cron(15 3 1,15 * ? *)": lambda at: (at.hour, at.minute) == (3, 15) and at.day in (1, 15),
    "cron(45 23 31 1-12/2 ? *)": lambda at: (at.day, at.hour, at.minute) == (31, 23, 45) and at.month % 2 == 1,
    "cron(0 0 29 FEB ? *)": lambda at: (at.month, at.day, at.hour, at.minute) == (2, 29, 0, 0),
    "cron(30 12 ? * 1 2025,2031-2040)": lambda at: (
        (at.hour, at.minute) == (12, 30) and _weekday(at) == 1 and (at.year == 2025 or 2031 <= at.year <= 2040)
    ),
}
ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Australia/Sydney", "Australia/Lord_Howe", "Asia/Kolkata"]
# 2026's clock changes (spring forward, fall back): where random instants are most likely to find a bug.
TRANSITIONS = [
    utc(text)
    for text in (
        # New York
        "2026-03-08T07:00:00Z",
        "2026-11-01T06:00:00Z",
        # Berlin
        "2026-03-29T01:00:00Z",
        "2026-10-25T01:00:00Z",
        # Sydney (southern hemisphere: fall back in April)
        "2026-04-04T16:00:00Z",
        "2026-10-03T16:00:00Z",
        # Lord Howe, whose clocks move by half an hour
        "2026-04-04T15:00:00Z",
        "2026-10-03T15:30:00Z",
    )
]

anywhere = st.datetimes(min_value=EARLIEST, max_value=LATEST, timezones=st.just(UTC))
near_a_clock_change = st.builds(
    lambda transition, offset: transition + offset,
    st.sampled_from(TRANSITIONS),
    st.timedeltas(min_value=timedelta(hours=-30), max_value=timedelta(hours=30)),
)
instants = st.one_of(anywhere, near_a_clock_change)


def fires_at(meaning: Callable[[datetime], bool], zone: ZoneInfo, instant: datetime) -> bool:
    """The oracle: a cron fires at a whole UTC minute whose local reading matches, the first time it reads so."""
    local = instant.astimezone(zone)
    return instant.second == instant.microsecond == 0 and local.fold == 0 and meaning(local)


def fires_in(meaning: Callable[[datetime], bool], zone: ZoneInfo, after: datetime, until: datetime) -> list[datetime]:
    minute = after.replace(second=0, microsecond=0) + MINUTE
    found = []
    while minute <= until:
        if fires_at(meaning, zone, minute):
            found.append(minute)
        minute += MINUTE
    return found


@settings(max_examples=300, deadline=None)
@given(instant=instants, text=st.sampled_from(sorted(CRONS)), zone=st.sampled_from(ZONES))
def test_next_after_is_a_later_time_the_fields_allow(instant: datetime, text: str, zone: str) -> None:
    following = parse_schedule(text, timezone=zone).next_after(instant)

    assert following > instant
    assert following.tzinfo is UTC
    assert fires_at(CRONS[text], ZoneInfo(zone), following)


@settings(max_examples=200, deadline=None)
@given(
    instant=instants,
    text=st.sampled_from(sorted(CRONS)),
    zone=st.sampled_from(ZONES),
    window=st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=8)),
)
def test_no_fire_is_skipped_in_a_window(instant: datetime, text: str, zone: str, window: timedelta) -> None:
    expression = parse_schedule(text, timezone=zone)
    until = instant + window

    fires = fires_in(CRONS[text], ZoneInfo(zone), instant, until)

    assert expression.latest_due(instant, until) == (fires[-1] if fires else None)
    if fires:
        assert expression.next_after(instant) == fires[0]
    else:
        assert expression.next_after(instant) > until


@settings(max_examples=300, deadline=None)
@given(
    after=instants,
    span=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=800)),
    text=st.sampled_from([*sorted(CRONS), "rate(45 minutes)", "rate(1 day)", "rate(7 hours)"]),
    zone=st.sampled_from(ZONES),
)
def test_latest_due_is_none_exactly_when_the_next_fire_is_after_the_window(
    after: datetime, span: timedelta, text: str, zone: str
) -> None:
    expression = parse_schedule(text, timezone=zone)
    until = after + span

    latest = expression.latest_due(after, until)
    following = expression.next_after(after)

    assert (latest is None) == (following > until)
    if latest is not None:
        assert after < following <= latest <= until
        assert expression.next_after(latest) > until
    # The next fire is due at itself and not a minute before.
    assert expression.latest_due(after, following) == following
    assert expression.latest_due(after, following - timedelta(microseconds=1)) is None


@settings(max_examples=200, deadline=None)
@given(
    instant=anywhere,
    anchor=anywhere,
    minutes=st.integers(min_value=1, max_value=60 * 24 * 9),
)
def test_a_rate_fires_on_its_anchor_plus_whole_periods(instant: datetime, anchor: datetime, minutes: int) -> None:
    period = timedelta(minutes=minutes)
    unit = "minute" if minutes == 1 else "minutes"
    expression = parse_schedule(f"rate({minutes} {unit})", anchor=anchor)

    following = expression.next_after(instant)

    assert following > instant
    assert following > anchor
    assert (following - anchor) % period == timedelta(0)
    assert following - period <= max(instant, anchor)
