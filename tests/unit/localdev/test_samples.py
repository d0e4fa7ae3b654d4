"""localdev.samples: a sample's times moved by whole days to the runner's clock, offsets kept."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from localdev.samples import SOURCES, shift, shift_days, shifted

EVENTS = Path(__file__).resolve().parents[3] / "events"
NOW = datetime(2027, 3, 10, 22, 45, tzinfo=UTC)  # a Wednesday: tomorrow is 2027-03-11


def load(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def test_generic_start_lands_tomorrow_at_the_same_time_and_everything_moves_with_it() -> None:
    moved = shifted("generic", load("generic/appointment_scheduled_unassigned.json"), NOW)
    assert moved["appointment"]["start"] == "2027-03-11T18:00:00Z"
    assert moved["appointment"]["end"] == "2027-03-11T18:30:00Z"
    assert moved["occurred_at"] == "2027-03-11T10:05:00Z"  # 7 h 55 min before the start, as in the sample


def test_the_rest_of_the_document_is_untouched_and_the_input_is_not_changed() -> None:
    original = load("generic/appointment_scheduled.json")
    before = json.dumps(original)
    moved = shifted("generic", original, NOW)
    assert json.dumps(original) == before
    for key in ("event_id", "type", "reason"):
        assert moved[key] == original[key]
    assert moved["appointment"]["customer"] == original["appointment"]["customer"]


def test_calcom_keeps_format_and_moves_created_at_and_the_old_times_of_a_reschedule() -> None:
    document = load("calcom/booking_rescheduled.json")
    moved = shifted("calcom", document, NOW)
    # The earliest start is the old one (rescheduleStartTime, 2026-11-23): it lands tomorrow.
    assert moved["payload"]["rescheduleStartTime"] == "2027-03-11T15:00:00.000Z"
    assert moved["payload"]["startTime"] == "2027-03-12T16:00:00.000Z"
    assert moved["payload"]["endTime"] == "2027-03-12T16:30:00.000Z"
    assert moved["createdAt"] == "2027-03-09T09:15:42.108Z"  # 2026-11-21: two days before the old start


def test_calcom_offset_times_keep_their_offset() -> None:
    moved = shifted("calcom", load("calcom/booking_cancelled.json"), NOW)
    assert moved["payload"]["startTime"] == "2027-03-11T16:00:00+00:00"


def test_calendly_moves_event_times_inside_the_payload_too() -> None:
    moved = shifted("calendly", load("calendly/invitee_created.json"), NOW)
    event = moved["payload"]["scheduled_event"]
    assert (event["start_time"], event["end_time"]) == ("2027-03-11T15:00:00.000000Z", "2027-03-11T15:30:00.000000Z")
    assert moved["created_at"] == "2027-03-07T13:58:42.000000Z"
    assert moved["payload"]["created_at"] == "2027-03-07T13:58:41.000000Z"
    assert event["created_at"] == "2027-03-07T13:58:40.123456Z"


def test_a_sample_without_a_start_is_anchored_on_its_event_time() -> None:
    moved = shifted("autotask", load("autotask/ticket_assigned.json"), NOW)
    assert moved["EventTime"] == "2027-03-11T09:12:30.041Z"
    assert moved["Fields"] == load("autotask/ticket_assigned.json")["Fields"]


def test_one_shift_for_a_story_keeps_the_samples_together() -> None:
    story = [
        ("generic", load("generic/appointment_scheduled.json")),
        ("calendly", load("calendly/invitee_created.json")),
        ("autotask", load("autotask/ticket_assigned.json")),
    ]
    days = shift_days(story, NOW)
    assert days == (date(2027, 3, 11) - date(2026, 11, 23)).days
    generic, calendly, autotask = (shift(source, document, days) for source, document in story)
    assert generic["appointment"]["start"] == "2027-03-11T15:00:00Z"
    assert calendly["payload"]["scheduled_event"]["start_time"].startswith("2027-03-12T15:00")
    assert autotask["EventTime"] == "2027-03-11T09:12:30.041Z"


def test_the_runner_date_is_read_in_utc() -> None:
    late_in_new_york = datetime.fromisoformat("2027-03-10T22:30:00-05:00")  # already 2027-03-11 in UTC
    moved = shifted("generic", load("generic/appointment_scheduled.json"), late_in_new_york)
    assert moved["appointment"]["start"] == "2027-03-12T15:00:00Z"


def test_nothing_to_shift_gives_zero_and_the_same_document() -> None:
    document = {"event": "ping", "created_at": None}
    assert shift_days([("calendly", document)], NOW) == 0
    assert shifted("calendly", document, NOW) == document


def test_a_value_that_is_not_a_time_is_left_alone() -> None:
    document = {"occurred_at": "yesterday", "appointment": {"start": 42, "end": "2026-11-23T10:00:00Z"}}
    assert shifted("generic", document, NOW) == document


@pytest.mark.parametrize("path", sorted(EVENTS.glob("*/*.json")), ids=lambda path: f"{path.parent.name}/{path.name}")
def test_every_sample_lands_tomorrow(path: Path) -> None:
    source = path.parent.name
    assert source in SOURCES
    moved = shifted(source, json.loads(path.read_text()), NOW)
    assert shift_days([(source, moved)], NOW) == 0  # shifted again: nothing left to move


def test_an_unknown_source_is_refused() -> None:
    with pytest.raises(KeyError):
        shifted("timezest", {}, NOW)
