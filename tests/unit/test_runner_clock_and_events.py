"""The runner's clock, and the events its scheduler delivers, without starting anything."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from localdev.clock import RunnerClock
from localdev.runner import scheduled_event
from localdev.template import ScheduledInvocation

WALL = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
AT = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)


class Wall:
    def __init__(self) -> None:
        self.now = WALL

    def __call__(self) -> datetime:
        return self.now


def test_a_manual_clock_stands_still_until_moved() -> None:
    wall = Wall()
    clock = RunnerClock(manual=True, wall=wall)
    wall.now += timedelta(hours=1)
    assert clock.now() == WALL
    assert clock.advance(timedelta(minutes=5)) == WALL + timedelta(minutes=5)
    assert clock.set(AT) == AT
    assert clock.now() == AT


def test_a_system_clock_follows_the_wall_from_where_it_was_set() -> None:
    wall = Wall()
    clock = RunnerClock(wall=wall)
    clock.set(AT)
    wall.now += timedelta(seconds=30)
    assert clock.now() == AT + timedelta(seconds=30)
    clock.advance(timedelta(hours=1))
    assert clock.now() == AT + timedelta(hours=1, seconds=30)


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        RunnerClock().set(datetime(2026, 11, 23, 10, 0))  # noqa: DTZ001


def _invocation(kind: str, text_input: str | None = None) -> ScheduledInvocation:
    return ScheduledInvocation(
        function="ChecksFunction",
        event="EveryMinute",
        kind=kind,
        expression="rate(1 minute)",
        timezone="UTC",
        input=text_input,
    )


def test_an_eventbridge_rule_delivers_the_scheduled_event_envelope() -> None:
    event = scheduled_event(_invocation("Schedule"), AT)
    assert (event["detail-type"], event["source"], event["time"], event["detail"]) == (
        "Scheduled Event",
        "aws.events",
        "2026-11-24T07:00:00Z",
        {},
    )
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/ChecksFunction-EveryMinute"]


def test_a_rule_with_input_delivers_the_input_as_it_is() -> None:
    assert scheduled_event(_invocation("Schedule", '{"sweep": true}'), AT) == {"sweep": True}


def test_eventbridge_scheduler_fills_in_its_context_placeholders() -> None:
    text = json.dumps({"at": "<aws.scheduler.scheduled-time>", "attempt": "<aws.scheduler.attempt-number>"})
    assert scheduled_event(_invocation("ScheduleV2", text), AT) == {"at": "2026-11-24T07:00:00Z", "attempt": "1"}
    assert scheduled_event(_invocation("ScheduleV2"), AT) == {}
