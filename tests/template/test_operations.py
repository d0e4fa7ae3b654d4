"""Issue 18, operations: alarms to one topic, the dashboard, and the table's retention settings."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from localdev.template import load_template, resources_of_type

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template()
ALARMS = resources_of_type(TEMPLATE, "AWS::CloudWatch::Alarm")
OBSERVABILITY = (ROOT / "layers/core/appointments/observability.py").read_text()


def _to_topic(alarm: dict[str, Any]) -> bool:
    return {"Ref": "OpsAlarmTopic"} in alarm["Properties"].get("AlarmActions", [])


def test_every_alarm_notifies_the_ops_topic() -> None:
    assert ALARMS
    assert [name for name, alarm in ALARMS.items() if not _to_topic(alarm)] == []


def test_the_email_subscription_exists_only_with_an_address() -> None:
    [subscription] = resources_of_type(TEMPLATE, "AWS::SNS::Subscription").values()
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["TopicArn"] == {"Ref": "OpsAlarmTopic"}


def test_every_dead_letter_queue_has_an_alarm() -> None:
    queues = {q for q in resources_of_type(TEMPLATE, "AWS::SQS::Queue") if "DeadLetter" in q}
    watched = set()
    for alarm in ALARMS.values():
        for dimension in alarm["Properties"].get("Dimensions", []):
            if dimension["Name"] == "QueueName":
                watched.add(dimension["Value"]["Fn::GetAtt"][0])
    assert (
        queues
        == watched
        == {
            "EventDeadLetterQueue",
            "OutboxRelayDeadLetterQueue",
            "MailFeedbackDeadLetterQueue",
            "PsaWritebackDeadLetterQueue",
        }
    )


def test_every_function_has_an_errors_alarm_over_five_minutes() -> None:
    functions = set(resources_of_type(TEMPLATE, "AWS::Serverless::Function"))
    errors = {
        alarm["Properties"]["Dimensions"][0]["Value"]["Ref"]: alarm["Properties"]
        for alarm in ALARMS.values()
        if alarm["Properties"].get("MetricName") == "Errors"
    }
    assert set(errors) == functions
    assert all((p["Period"], p["Threshold"], p["Statistic"]) == (300, 0, "Sum") for p in errors.values())


def test_silent_source_alarms_one_per_source_each_conditional() -> None:
    silent = {n: a for n, a in ALARMS.items() if a["Properties"].get("MetricName") == "Webhooks"}
    sources = {a["Properties"]["Dimensions"][0]["Value"] for a in silent.values()}
    assert sources == {"generic", "calcom", "calendly", "autotask", "connectwise", "halopsa"}
    for alarm in silent.values():
        assert alarm["Condition"] in TEMPLATE["Conditions"]
        assert alarm["Properties"]["TreatMissingData"] == "breaching"
        assert alarm["Properties"]["EvaluationPeriods"] == {"Ref": "SilentSourceHours"}


def test_alarmed_metrics_are_the_ones_the_code_emits() -> None:
    names = set()
    for alarm in ALARMS.values():
        properties = alarm["Properties"]
        if properties.get("Namespace") == "AppointmentDesk":
            names.add(properties["MetricName"])
        for query in properties.get("Metrics", []):
            if "MetricStat" in query:
                names.add(query["MetricStat"]["Metric"]["MetricName"])
    assert names >= {
        "MailsFailed",
        "ReminderLatenessSeconds",
        "TimeZestPollIncomplete",
        "Webhooks",
        "WebhookSubscriptionsEnded",
    }
    rules = {"Reminder", "PreNotice", "AutoCancel", "AtRisk", "UnassignedAtStart", "NoShow"}
    for name in names:
        rule = name.removesuffix("LatenessSeconds")
        assert rule in rules or f'"{name}"' in OBSERVABILITY, name


def test_lateness_alarm_is_two_minutes_and_poll_alarm_several_runs() -> None:
    assert ALARMS["RuleLatenessAlarm"]["Properties"]["Threshold"] == 120
    poll = ALARMS["TimeZestPollIncompleteAlarm"]["Properties"]
    assert poll["EvaluationPeriods"] == poll["DatapointsToAlarm"] >= 3


def test_the_dashboard_shows_the_key_metrics() -> None:
    [dashboard] = resources_of_type(TEMPLATE, "AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]
    shown = {m[1] for w in widgets for m in w["properties"]["metrics"]}
    assert shown >= {"Webhooks", "EventsApplied", "EventsParked", "MailsSent", "MailsFailed", "MailsBounced"}
    assert shown >= {"PsaWritebackWritten", "TimeZestPollIncomplete", "Errors", "ApproximateNumberOfMessagesVisible"}


def test_the_table_has_point_in_time_recovery_and_ttl_on_expires_at() -> None:
    table = TEMPLATE["Resources"]["AppointmentsTable"]["Properties"]
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert TEMPLATE["Parameters"]["AppointmentRetentionDays"]["Default"] == 0
