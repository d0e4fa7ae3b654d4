"""``MailFeedbackFunction`` (loaded from template.yaml) under moto: a mail the relay sent through SES, then
SES's bounce of it as SNS hands it to Lambda, recorded in the appointment's history with an ops alert.

The SNS event is ``fixtures/sns_notification.json``, made by ``sam local generate-event sns notification
--topic MailFeedbackTopic --subject "" --message ...``; each test puts an SES event record in its
``Message``, as SES event publishing does.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from appointments import wiring
from appointments.domain.outbox import MailKind, MailStatus
from localdev.resources import REGION
from localdev.ses import SesTap
from localdev.streams import lambda_record
from tests.integration.conftest import TABLE
from tests.integration.stack import Stack, stack_under_moto
from tests.ses_events import ses_record

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
START = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
SNS_EVENT = json.loads((Path(__file__).parent / "fixtures" / "sns_notification.json").read_text())
CUSTOMER = "dana@example.com"
OPS_MAIL = "ops@msp.example"


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with stack_under_moto(monkeypatch, NOW) as built:
        yield built


@pytest.fixture
def ses_tap(stack: Stack) -> Iterator[SesTap]:
    """What each SendEmail asked SES for (moto keeps neither the configuration set nor the tags). Installed
    inside moto (which gives boto3 a default session of its own) and before the relay makes its client."""
    tap = SesTap()
    tap.install()
    try:
        yield tap
    finally:
        tap.uninstall()


def booked(stack: Stack) -> str:
    body = {
        "start": START.isoformat(),
        "end": (START + timedelta(minutes=30)).isoformat(),
        "timezone": "America/New_York",
        "type": "remote_call_in",
        "customer": {"name": "Dana Reyes", "email": CUSTOMER},
        "technicians": [{"id": "t-17", "name": "Sam Okafor"}],
    }
    reply = stack.ops("POST", "/appointments", body)
    assert reply.status == 201, reply.body
    return str(reply.body["id"])


def relay_new_mails(stack: Stack) -> None:
    """What the table's stream does: each pending mail item handed to the outbox relay, which sends it."""
    client = boto3.client("dynamodb", region_name=REGION)
    items = client.scan(TableName=TABLE)["Items"]
    records = [
        lambda_record(
            {
                "eventID": f"{item['PK']['S']}/{item['SK']['S']}",
                "eventName": "INSERT",
                "dynamodb": {"Keys": {"PK": item["PK"], "SK": item["SK"]}, "NewImage": item},
            },
            "arn:aws:dynamodb:us-east-1:123456789012:table/AppointmentsTable/stream/local",
            read_at=stack.clock.now(),
        )
        for item in items
        if item["SK"]["S"].startswith("MAIL#") and item.get("status", {}).get("S") == "pending"
    ]
    response = stack.invoke("OutboxRelayFunction", {"Records": records})
    assert response["batchItemFailures"] == []


def sns_event(record: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = copy.deepcopy(SNS_EVENT)
    event["Records"][0]["Sns"]["Message"] = json.dumps(record)
    return event


def sent_confirmation(stack: Stack) -> tuple[str, str, str]:
    """A booking whose confirmation SES took: (appointment id, mail key, SES message id)."""
    appointment_id = booked(stack)
    relay_new_mails(stack)
    [mail] = wiring.store().load(appointment_id).mails
    assert (mail.kind, mail.status) == (MailKind.CONFIRMATION, MailStatus.SENT)
    assert mail.message_id is not None
    return appointment_id, mail.key, mail.message_id


def test_every_mail_goes_through_the_configuration_set_tagged_with_its_appointment_and_key(
    stack: Stack, ses_tap: SesTap
) -> None:
    # Given a confirmation the relay sent
    appointment_id, key, message_id = sent_confirmation(stack)
    # Then SES was asked to send it through the stack's configuration set, tagged as SES's bounce will be
    request = ses_tap.request(message_id)
    assert request is not None
    assert request.configuration_set == "local-mail"
    expected = ses_record("Bounce", appointment_id=appointment_id, mail_key=key)["mail"]["tags"]
    assert {name: [value] for name, value in request.tags.items()} == {
        name: values for name, values in expected.items() if not name.startswith("ses:")
    }


def test_a_bounce_delivered_by_sns_is_in_the_history_with_an_ops_alert_once_however_often_it_comes(
    stack: Stack,
) -> None:
    # Given a confirmation SES took, and its permanent bounce as SNS hands it to Lambda
    appointment_id, key, message_id = sent_confirmation(stack)
    event = sns_event(ses_record("Bounce", appointment_id=appointment_id, mail_key=key, message_id=message_id))

    # When the function gets it, and SNS delivers it again
    assert stack.invoke("MailFeedbackFunction", event) == {"noted": ["alerted"]}
    assert stack.invoke("MailFeedbackFunction", event) == {"noted": ["duplicate"]}

    # Then the appointment's history shows the bounce once, as the dispatcher reads it
    detail = stack.ops("GET", f"/appointments/{appointment_id}").body
    [bounced] = [entry for entry in detail["history"] if entry["action"] == "mail_bounced"]
    assert bounced["actor"]["kind"] == "system"
    assert bounced["detail"]["mail"] == key
    assert (bounced["detail"]["kind"], bounced["detail"]["feedback"]) == ("confirmation", "bounce")
    assert (bounced["detail"]["message_id"], bounced["detail"]["recipient_roles"]) == (message_id, ["customer"])
    # And one ops alert waits to be sent, to ops
    [alert] = [m for m in wiring.store().load(appointment_id).mails if m.kind is MailKind.OPS_ALERT]
    assert (alert.to, alert.status) == ((OPS_MAIL,), MailStatus.PENDING)
    assert alert.key.endswith("#bounce")


def test_a_bounced_ops_alert_is_recorded_and_alerts_nobody(stack: Stack) -> None:
    # Given the bounce alert itself sent, and the ops mailbox bouncing it
    appointment_id, key, message_id = sent_confirmation(stack)
    stack.invoke(
        "MailFeedbackFunction",
        sns_event(ses_record("Bounce", appointment_id=appointment_id, mail_key=key, message_id=message_id)),
    )
    relay_new_mails(stack)
    [alert] = [m for m in wiring.store().load(appointment_id).mails if m.kind is MailKind.OPS_ALERT]
    assert alert.status is MailStatus.SENT
    assert alert.message_id is not None
    bounce = ses_record("Bounce", appointment_id=appointment_id, mail_key=alert.key, message_id=alert.message_id)

    # When SES reports it
    assert stack.invoke("MailFeedbackFunction", sns_event(bounce)) == {"noted": ["recorded"]}

    # Then it is recorded, and no alert about the alert is written
    record = wiring.store().load(appointment_id)
    assert [m.kind for m in record.mails].count(MailKind.OPS_ALERT) == 1
    assert [e.detail["kind"] for e in record.history if e.action == "mail_bounced"] == ["confirmation", "ops_alert"]


def test_feedback_about_an_appointment_that_is_gone_is_acknowledged_and_ignored(stack: Stack) -> None:
    event = sns_event(ses_record("Complaint", appointment_id="01KDELETEDBYMERGE0000000000", mail_key="no_show#x#v3"))

    assert stack.invoke("MailFeedbackFunction", event) == {"noted": ["ignored"]}
