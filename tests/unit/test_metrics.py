"""The Powertools metric names the alarms and the dashboard read (docs/runbook.md)."""

from __future__ import annotations

import json

import pytest

from appointments import observability
from appointments.domain.history import HistoryEntry
from appointments.domain.model import Actor, Status


@pytest.fixture(autouse=True)
def _no_metrics_from_other_tests() -> None:
    # One Metrics instance serves the whole process: what an earlier test recorded must not be counted here.
    observability.metrics.clear_metrics()


def _flushed(capsys: pytest.CaptureFixture[str]) -> dict[str, float]:
    observability.metrics.flush_metrics()
    values: dict[str, float] = {}
    for line in capsys.readouterr().out.splitlines():
        document = json.loads(line)
        for definition in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            value = document[definition["Name"]]
            values[definition["Name"]] = sum(value) if isinstance(value, list) else value
    return values


def _entry(action: str, *, event: bool = True) -> HistoryEntry:
    detail = {"delivery_id": "d"} if event else {}
    return HistoryEntry.model_validate(
        {
            "at": "2026-11-23T09:00:00Z",
            "actor": Actor.source("generic").model_dump(),
            "action": action,
            "from_status": None,
            "to_status": Status.SCHEDULED,
            "detail": detail,
        }
    )


def test_event_outcomes(capsys: pytest.CaptureFixture[str]) -> None:
    observability.record_events(
        [_entry("create"), _entry("event_superseded"), _entry("event_ignored"), _entry("type_unmapped", event=False)]
    )
    observability.record_parked()
    assert _flushed(capsys) == {"EventsApplied": 1, "EventsSuperseded": 1, "EventsIgnored": 1, "EventsParked": 1}


def test_mail_outcomes(capsys: pytest.CaptureFixture[str]) -> None:
    for outcome in ("sent", "retry", "failed", "skipped", "taken"):
        observability.record_mail(outcome)
    observability.record_mail_feedback("alerted", bounce=True)
    assert _flushed(capsys) == {
        "MailsSent": 1,
        "MailsRetried": 1,
        "MailsFailed": 1,
        "MailsSkipped": 1,
        "MailFeedbackAlerted": 1,
        "MailsBounced": 1,
    }


def test_webhooks_carry_their_source_as_the_only_dimension(capsys: pytest.CaptureFixture[str]) -> None:
    observability.record_webhook("calcom", 2)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    [single] = [d for d in lines if "Webhooks" in d]
    assert single["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["source"]]
    assert single["source"] == "calcom"
    observability.metrics.flush_metrics()
    assert json.loads(capsys.readouterr().out)["WebhookEventsQueued"] in (2, [2])
