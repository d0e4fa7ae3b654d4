"""EventBridge schedule expressions as the local runner evaluates them, on any clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from localdev.schedule import ScheduleError, parse_schedule

T0 = datetime(2026, 11, 23, 10, 0, 30, tzinfo=UTC)
# hypothesis takes naive bounds and attaches the time zone itself
EARLIEST, LATEST = datetime(2020, 1, 1), datetime(2035, 1, 1)  # noqa: DTZ001


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# --- rate


def test_a_rate_of_five_minutes_fires_on_the_five_minute_marks() -> None:
    every_five = parse_schedule("rate(5 minutes)")
    assert every_five.next_after(T0) == utc("2026-11-23T10:05:00Z")
    assert every_five.next_after(utc("2026-11-23T10:05:00Z")) == utc("2026-11-23T10:10:00Z")
    assert every_five.latest_due(T0, utc("2026-11-23T13:07:00Z")) == utc("2026-11-23T13:05:00Z")
    assert every_five.latest_due(T0, utc("2026-11-23T10:04:59Z")) is None


def test_a_rate_counts_from_its_anchor_when_given_one() -> None:
    hourly = parse_schedule("rate(1 hour)", anchor=utc("2026-11-23T09:20:00Z"))
    assert hourly.next_after(T0) == utc("2026-11-23T10:20:00Z")


@pytest.mark.parametrize("text", ["rate(1 day)", "rate(2 days)", "rate(1 minute)", "rate(10 hours)"])
def test_rates_with_the_unit_agreeing_with_the_number_are_accepted(text: str) -> None:
    assert parse_schedule(text).next_after(T0) > T0


# --- cron


@pytest.mark.parametrize(
    ("text", "after", "expected"),
    [
        ("cron(0 2 * * ? *)", "2026-11-23T10:00:30Z", "2026-11-24T02:00:00Z"),
        ("cron(*/15 * * * ? *)", "2026-11-23T10:00:30Z", "2026-11-23T10:15:00Z"),
        ("cron(0 9 ? * MON-FRI *)", "2026-11-27T10:00:00Z", "2026-11-30T09:00:00Z"),  # Friday → Monday
        ("cron(0 9 ? * 2 *)", "2026-11-23T10:00:00Z", "2026-11-30T09:00:00Z"),  # 2 = Monday
        ("cron(30 8 1 JAN,JUL ? *)", "2026-11-23T10:00:00Z", "2027-01-01T08:30:00Z"),
        ("cron(0 0 29 2 ? *)", "2026-11-23T10:00:00Z", "2028-02-29T00:00:00Z"),
        ("cron(0 12 * * ? 2030)", "2026-11-23T10:00:00Z", "2030-01-01T12:00:00Z"),
        ("cron(5-10/5 14 ? * SUN *)", "2026-11-23T10:00:00Z", "2026-11-29T14:05:00Z"),
    ],
)
def test_cron_fires_at_the_next_time_its_fields_allow(text: str, after: str, expected: str) -> None:
    assert parse_schedule(text).next_after(utc(after)) == utc(expected)


def test_cron_in_a_time_zone_fires_at_its_local_time() -> None:
    nightly = parse_schedule("cron(0 2 * * ? *)", timezone="America/New_York")
    assert nightly.next_after(T0) == utc("2026-11-24T07:00:00Z")  # EST, UTC-5
    assert nightly.next_after(utc("2026-07-01T00:00:00Z")) == utc("2026-07-01T06:00:00Z")  # EDT, UTC-4


def test_a_local_time_in_the_spring_forward_gap_is_skipped() -> None:
    # 2026-03-08: New York's clocks jump from 02:00 to 03:00, so 02:30 does not exist that day
    half_past_two = parse_schedule("cron(30 2 * * ? *)", timezone="America/New_York")
    assert half_past_two.next_after(utc("2026-03-08T05:00:00Z")) == utc("2026-03-09T06:30:00Z")


def test_a_local_time_that_happens_twice_fires_once() -> None:
    # 2026-11-01: New York's 01:30 happens at 05:30Z (EDT) and again at 06:30Z (EST)
    half_past_one = parse_schedule("cron(30 1 * * ? *)", timezone="America/New_York")
    first = half_past_one.next_after(utc("2026-11-01T04:00:00Z"))
    assert first == utc("2026-11-01T05:30:00Z")
    assert half_past_one.next_after(first) == utc("2026-11-02T06:30:00Z")


def test_the_latest_due_time_of_a_cron_in_a_window() -> None:
    every_minute = parse_schedule("cron(* * * * ? *)")
    assert every_minute.latest_due(T0, T0 + timedelta(days=400)) == T0 + timedelta(days=400, seconds=-30)
    yearly = parse_schedule("cron(0 0 1 1 ? *)")
    assert yearly.latest_due(T0, utc("2029-06-01T00:00:00Z")) == utc("2029-01-01T00:00:00Z")
    assert yearly.latest_due(T0, utc("2026-12-31T23:59:59Z")) is None


@settings(max_examples=150, deadline=None)
@given(
    instant=st.datetimes(min_value=EARLIEST, max_value=LATEST, timezones=st.just(UTC)),
    text=st.sampled_from(
        ["cron(*/7 * * * ? *)", "cron(0 9 ? * MON-FRI *)", "cron(15 3 1,15 * ? *)", "rate(45 minutes)"]
    ),
    zone=st.sampled_from(["UTC", "America/New_York", "Europe/Berlin", "Australia/Sydney"]),
)
def test_next_and_latest_agree(instant: datetime, text: str, zone: str) -> None:
    expression = parse_schedule(text, timezone=zone)
    following = expression.next_after(instant)
    assert following > instant
    # Nothing fires between the instant and the next fire time; the next fire time is due at itself.
    assert expression.latest_due(instant, following - timedelta(seconds=1)) is None
    assert expression.latest_due(instant, following) == following


# --- refused


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("cron(0 12 L * ? *)", "day-of-month"),
        ("cron(0 12 15W * ? *)", "day-of-month"),
        ("cron(0 12 ? * 6#3 *)", "day-of-week"),
        ("cron(0 12 ? * 6L *)", "day-of-week"),
        ("cron(0 12 * * * *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 12 ? * ? *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 12 * * ?)", "6 fields"),
        ("cron(60 12 * * ? *)", "minutes"),
        ("cron(0 24 * * ? *)", "hours"),
        ("cron(0 12 * FOO ? *)", "month"),
        ("cron(0 12 20-10 * ? *)", "backwards"),
        ("rate(1 minutes)", "singular"),
        ("rate(5 minute)", "singular"),
        ("rate(0 minutes)", "positive"),
        ("rate(5 weeks)", "supports"),
        ("at(2026-11-23T10:00:00)", "supports"),
        ("", "supports"),
    ],
)
def test_an_expression_the_runner_cannot_emulate_is_refused_saying_why(text: str, named: str) -> None:
    with pytest.raises(ScheduleError, match=named):
        parse_schedule(text)


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ScheduleError, match="Mars/Olympus"):
        parse_schedule("cron(0 2 * * ? *)", timezone="Mars/Olympus")


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_schedule("rate(1 hour)").next_after(datetime(2026, 11, 23, 10, 0))  # noqa: DTZ001
