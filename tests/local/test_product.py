"""The product's template run by the local runner: webhooks in, queues pumped, dev endpoints."""

from __future__ import annotations

import json
from datetime import timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING

import boto3
import pytest

from appointments import wiring
from appointments.domain.model import ExternalRef
from localdev.__main__ import main
from localdev.signing import DEV_SECRETS, signature_headers
from tests.local.conftest import OPS_TOKEN, START
from tests.signing import EVENTS, sample

if TYPE_CHECKING:
    from tests.local.conftest import LocalRunner

GENERIC_REF = ExternalRef(system="generic", id="stf-981")


@pytest.fixture(autouse=True)
def _fresh(product: LocalRunner) -> None:
    assert product.post("/_local/reset").status == 200
    assert product.post("/_local/clock", {"now": START.isoformat()}).status == 200


def queue_counts(product: LocalRunner, logical_id: str) -> tuple[int, int]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    attributes = sqs.get_queue_attributes(
        QueueUrl=product.runner.provisioned.physical[logical_id],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_health_lists_the_templates_functions_and_routes(product: LocalRunner) -> None:
    health = product.get("/_local/health")
    assert health.status == 200
    document = health.json()
    assert document["status"] == "ok"
    assert {"WebhookIngressFunction", "EventProcessorFunction"} <= set(document["functions"])
    assert "POST /webhooks/{source}" in document["routes"]


def test_a_signed_webhook_becomes_an_appointment_once_the_queue_is_pumped(product: LocalRunner) -> None:
    # Given a signed generic booking posted to the gateway
    reply = product.send("generic/appointment_scheduled.json")
    assert (reply.status, reply.json()["events"]) == (202, 1)

    # When the runner settles its queues
    assert product.post("/_local/settle").json()["handled"] == 1

    # Then the appointment is visible through the runner's ops API
    found = product.get(
        "/appointments?external_id=generic:stf-981", headers={"Authorization": f"Bearer {OPS_TOKEN}"}
    ).json()["items"]
    assert [(item["status"], item["start"]) for item in found] == [("scheduled", "2026-11-23T15:00:00Z")]
    assert queue_counts(product, "EventQueue") == (0, 0)


def test_localdev_send_signs_a_sample_with_the_local_secret(
    product: LocalRunner, capsys: pytest.CaptureFixture[str]
) -> None:
    exit_code = main(["send", str(EVENTS / "generic" / "appointment_scheduled.json"), "--url", product.base])
    assert exit_code == 0
    assert "202" in capsys.readouterr().out
    product.post("/_local/settle")
    assert wiring.store().find_by_external_ref(GENERIC_REF) is not None


def test_signatures_are_fresh_by_the_runners_clock(product: LocalRunner) -> None:
    # Given a body signed at the runner's time, then the clock moved past the 5-minute tolerance
    body = sample("generic/appointment_scheduled.json")
    headers = {"Content-Type": "application/json", **signature_headers("generic", DEV_SECRETS["generic"], body, START)}
    product.post("/_local/clock", {"advance_seconds": 301})

    # Then the gateway's function refuses it and nothing is queued
    assert product.post("/webhooks/generic", body=body, headers=headers).status == 401
    assert queue_counts(product, "EventQueue") == (0, 0)


def test_a_body_that_is_not_utf8_reaches_the_function_base64_encoded(product: LocalRunner) -> None:
    body = b'{"event_id": "\xff"}'
    headers = signature_headers("generic", DEV_SECRETS["generic"], body, START)
    reply = product.post("/webhooks/generic", body=body, headers=headers)
    # The signature verified on the decoded bytes: the complaint is about the JSON, not the signature.
    assert reply.status == 400
    assert reply.json()["error"]["code"] == "malformed_payload"


@pytest.mark.parametrize(("method", "path"), [("GET", "/nowhere"), ("GET", "/webhooks/generic"), ("POST", "/")])
def test_a_route_the_template_does_not_declare_gets_api_gateways_403(
    product: LocalRunner, method: str, path: str
) -> None:
    reply = product.request(method, path, body=b"" if method == "POST" else None)
    assert reply.status == 403
    assert reply.json() == {"message": "Missing Authentication Token"}
    assert reply.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


def test_an_unknown_dev_endpoint_is_404(product: LocalRunner) -> None:
    assert product.get("/_local/nothing").status == 404
    assert product.get("/_local/tick").status == 405


def test_a_message_that_keeps_failing_moves_to_the_dead_letter_queue_after_max_receives(
    product: LocalRunner,
) -> None:
    # Given a message the processor cannot read, and a good one for another appointment
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = product.runner.provisioned.physical["EventQueue"]
    sqs.send_message(QueueUrl=url, MessageBody="not an event", MessageGroupId="poison", MessageDeduplicationId="p1")
    assert product.send("generic/appointment_scheduled.json").status == 202

    # When the runner settles
    handled = product.post("/_local/settle").json()["handled"]

    # Then the good one is applied, the poison one was tried maxReceiveCount (5) times, then parked
    assert wiring.store().find_by_external_ref(GENERIC_REF) is not None
    assert handled == 1 + 5
    assert queue_counts(product, "EventQueue") == (0, 0)
    assert queue_counts(product, "EventDeadLetterQueue") == (1, 0)


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"now": "yesterday"}, "now"),
        ({"now": "2026-11-23T10:00:00"}, "now"),
        ({"advance_seconds": -1}, "advance_seconds"),
        ({"advance_seconds": "60"}, "advance_seconds"),
        ({"now": "2026-11-23T10:00:00Z", "advance_seconds": 1}, "body"),
        ({}, "body"),
    ],
)
def test_a_bad_clock_request_names_the_field_and_leaves_the_clock(
    product: LocalRunner, document: dict[str, object], field: str
) -> None:
    reply = product.post("/_local/clock", document)
    assert reply.status == 422
    assert reply.json()["error"]["field"] == field
    assert product.now() == START


def test_the_clock_is_set_and_advanced(product: LocalRunner) -> None:
    assert (
        product.post("/_local/clock", {"advance_seconds": 90}).json()["now"]
        == (START + timedelta(seconds=90)).isoformat()
    )
    assert product.post("/_local/clock", {"now": "2026-12-01T09:00:00+01:00"}).status == 200
    assert product.get("/_local/clock").json() == {"now": "2026-12-01T08:00:00+00:00", "mode": "manual"}


def test_reset_forgets_the_data_and_keeps_the_clock(product: LocalRunner) -> None:
    product.send("generic/appointment_scheduled.json")
    product.post("/_local/settle")
    product.post("/_local/clock", {"advance_seconds": 60})

    assert product.post("/_local/reset").json() == {"reset": True}

    assert wiring.store().find_by_external_ref(GENERIC_REF) is None
    assert product.now() == START + timedelta(seconds=60)
    assert product.get("/_local/outbox").json() == {"items": []}


def test_the_outbox_shows_each_mail_sent_with_its_text_and_html(product: LocalRunner) -> None:
    # Given a multipart mail sent through the runner's SES, as the mail sender will send
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "desk@msp.example", "dana@example.com", "Your appointment"
    mail.set_content("See you at 10:00.")
    mail.add_alternative("<p>See you at <b>10:00</b>.</p>", subtype="html")
    boto3.client("sesv2", region_name="us-east-1").send_email(
        FromEmailAddress="desk@msp.example",
        Destination={"ToAddresses": ["dana@example.com"]},
        Content={"Raw": {"Data": mail.as_bytes()}},
    )

    [item] = product.get("/_local/outbox").json()["items"]

    assert item["to"] == ["dana@example.com"]
    assert (item["from"], item["subject"]) == ("desk@msp.example", "Your appointment")
    assert item["text"].strip() == "See you at 10:00."
    assert item["html"].strip() == "<p>See you at <b>10:00</b>.</p>"
    assert item["sent_at"] == START.isoformat()


def test_the_mail_sender_identity_is_verified(product: LocalRunner) -> None:
    identities = boto3.client("sesv2", region_name="us-east-1").list_email_identities()["EmailIdentities"]
    assert "desk@msp.example" in {identity["IdentityName"] for identity in identities}


def test_the_functions_see_the_templates_environment(product: LocalRunner) -> None:
    import os

    assert os.environ["EVENT_QUEUE_URL"] == product.runner.provisioned.physical["EventQueue"]
    assert os.environ["AUTOTASK_COMPLETE_STATUS_ID"] == "5"
    assert json.loads(os.environ["VENDOR_TYPE_MAP"]) == {}
