"""Bounces and complaints through the local runner over HTTP: a mail goes out through the runner's SES,
``POST /_local/ses/bounce`` publishes what SES would to the configuration set's SNS topic, and the runner
delivers it to ``MailFeedbackFunction`` as SNS invokes Lambda (``settle`` waits for it)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from tests.local.conftest import OPS_TOKEN, START

if TYPE_CHECKING:
    from tests.local.conftest import LocalRunner

AUTH = {"Authorization": f"Bearer {OPS_TOKEN}", "Content-Type": "application/json"}
CUSTOMER = "lee@parklaw.example"
OPS_MAIL = "ops@msp.example"


@pytest.fixture(autouse=True)
def _fresh(product: LocalRunner) -> None:
    assert product.post("/_local/reset").status == 200
    assert product.post("/_local/clock", {"now": START.isoformat()}).status == 200


def at(hour: int, minute: int = 0) -> datetime:
    return START.replace(hour=hour, minute=minute, second=0)


def book(local: LocalRunner, start: datetime) -> str:
    """A call-in appointment with a technician, booked by a dispatcher; settled (its confirmation sent)."""
    body = {
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=30)).isoformat(),
        "timezone": "America/New_York",
        "type": "remote_call_in",
        "customer": {"name": "Lee Park", "email": CUSTOMER},
        "technicians": [{"id": "t-17", "name": "Sam Okafor"}],
    }
    reply = local.request("POST", "/appointments", body=json.dumps(body).encode(), headers=AUTH)
    assert reply.status == 201, reply.body
    assert local.post("/_local/settle").status == 200
    appointment_id: str = reply.json()["id"]
    return appointment_id


def outbox(local: LocalRunner) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = local.get("/_local/outbox").json()["items"]
    return items


def history(local: LocalRunner, appointment_id: str) -> list[dict[str, Any]]:
    reply = local.request("GET", f"/appointments/{appointment_id}", headers=AUTH)
    assert reply.status == 200, reply.body
    entries: list[dict[str, Any]] = reply.json()["history"]
    return entries


def bounced(local: LocalRunner, appointment_id: str) -> list[dict[str, Any]]:
    return [entry["detail"] for entry in history(local, appointment_id) if entry["action"] == "mail_bounced"]


def test_a_no_show_mail_that_bounces_is_in_the_history_and_ops_get_an_alert(product: LocalRunner) -> None:
    # Given a call-in appointment at 11:00 nobody called in for: at 11:10 it is a no-show, and its mail goes out
    appointment_id = book(product, at(11))
    assert product.post("/_local/clock", {"now": at(11, 10).isoformat()}).status == 200
    [no_show] = [mail for mail in outbox(product) if mail["subject"].startswith("We missed you")]
    assert no_show["to"] == [CUSTOMER]

    # When the customer's mail server bounces it, and the runner settles
    reply = product.post("/_local/ses/bounce", {"message_id": no_show["message_id"], "type": "Permanent"})
    assert reply.status == 200, reply.body
    published = reply.json()
    assert (published["event_type"], published["message_id"], published["recipients"]) == (
        "Bounce",
        no_show["message_id"],
        [CUSTOMER],
    )
    [destination] = published["published"]
    assert destination["topic"].endswith(":MailFeedbackTopic")
    assert product.post("/_local/settle").json()["notifications"] == 1

    # Then the appointment's history says the no-show mail never arrived
    [detail] = bounced(product, appointment_id)
    assert (detail["kind"], detail["feedback"], detail["bounce_type"]) == ("no_show", "bounce", "Permanent")
    assert (detail["message_id"], detail["recipient_roles"], detail["alerted"]) == (
        no_show["message_id"],
        ["customer"],
        True,
    )
    # And its domain event tells subscribers of the bus, without the customer's address
    [event] = [
        e for e in product.get("/_local/events").json()["items"] if e["detail_type"] == "appointment.mail_bounced"
    ]
    assert event["detail"]["detail"]["kind"] == "no_show"
    assert CUSTOMER not in json.dumps(event)
    # And ops got an alert mail saying so
    [alert] = [mail for mail in outbox(product) if mail["to"] == [OPS_MAIL] and "never reached" in mail["subject"]]
    assert "the no-show mail never reached the customer" in alert["subject"]
    assert no_show["message_id"] in alert["text"]


def test_a_transient_bounce_by_address_is_recorded_without_an_alert(product: LocalRunner) -> None:
    appointment_id = book(product, at(15))
    sent = len(outbox(product))

    reply = product.post("/_local/ses/bounce", {"to": CUSTOMER, "type": "Transient"})
    assert reply.status == 200, reply.body
    product.post("/_local/settle")

    [detail] = bounced(product, appointment_id)
    assert (detail["kind"], detail["feedback"]) == ("confirmation", "soft_bounce")
    assert (detail["bounce_type"], detail["bounce_subtype"], detail["alerted"]) == ("Transient", "MailboxFull", False)
    assert len(outbox(product)) == sent  # nobody paged


def test_a_complaint_is_recorded_and_alerts_ops(product: LocalRunner) -> None:
    appointment_id = book(product, at(15))
    [confirmation] = outbox(product)

    assert product.post("/_local/ses/complaint", {"message_id": confirmation["message_id"]}).status == 200
    product.post("/_local/settle")

    [detail] = bounced(product, appointment_id)
    assert (detail["feedback"], detail["complaint_type"]) == ("complaint", "abuse")
    assert any("reported the confirmation mail as spam" in mail["subject"] for mail in outbox(product))


def test_the_same_bounce_published_twice_is_recorded_once(product: LocalRunner) -> None:
    appointment_id = book(product, at(15))
    [confirmation] = outbox(product)

    for _ in range(2):
        assert product.post("/_local/ses/bounce", {"message_id": confirmation["message_id"]}).status == 200
        product.post("/_local/settle")

    assert len(bounced(product, appointment_id)) == 1
    assert len([mail for mail in outbox(product) if mail["to"] == [OPS_MAIL]]) == 1


@pytest.mark.parametrize(
    ("document", "status", "field"),
    [
        ({}, 422, "body"),
        ({"message_id": "x", "to": CUSTOMER}, 422, "body"),
        ({"message_id": ""}, 422, "message_id"),
        ({"message_id": "0100-no-such-mail"}, 404, "message_id"),
        ({"to": "nobody@example.com"}, 404, "to"),
        ({"to": CUSTOMER, "type": "Soft"}, 422, "type"),
    ],
)
def test_a_bounce_request_the_runner_cannot_serve_names_the_field(
    product: LocalRunner, document: dict[str, Any], status: int, field: str
) -> None:
    book(product, at(15))

    reply = product.post("/_local/ses/bounce", document)

    assert reply.status == status
    assert reply.json()["error"]["field"] == field


def test_a_mail_sent_without_the_configuration_set_publishes_nothing(product: LocalRunner) -> None:
    # Given a mail someone sent past the product, without a configuration set
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "desk@msp.example", "kim@example.com", "Hello"
    mail.set_content("Hi.")
    boto3.client("sesv2", region_name="us-east-1").send_email(
        FromEmailAddress="desk@msp.example",
        Destination={"ToAddresses": ["kim@example.com"]},
        Content={"Raw": {"Data": mail.as_bytes()}},
    )

    reply = product.post("/_local/ses/bounce", {"to": "kim@example.com"})

    # Then SES would publish no event about it, and neither does the runner
    assert reply.status == 409
    assert "configuration set" in reply.json()["error"]["message"]
    assert product.post("/_local/settle").json()["notifications"] == 0


def test_health_lists_the_topic_subscriptions(product: LocalRunner) -> None:
    health = product.get("/_local/health").json()
    assert health["topics"] == ["MailFeedbackTopic → MailFeedbackFunction"]
    assert "MailFeedbackFunction" in health["functions"]
