"""SES event publishing records (what SES publishes to SNS about a mail it took), built for tests.

Written from SES's documented fields ("Contents of event data that Amazon SES publishes to Amazon SNS"):
``eventType``, the ``mail`` object (message id, destination, headers, common headers, and the tags, each
a list of values, SES's own ``ses:*`` ones beside the sender's), and one object per event type. The
sender's tags are the ones ``SesMailer`` really writes: the mail is sent through it to a recording client.
"""

from __future__ import annotations

import json
from typing import Any, cast

from appointments.adapters.ses_mailer import SesMailer
from appointments.ports import OutgoingMail

MESSAGE_ID = "0100019a1b2c3d4e-5f6a7b8c-1d2e-4f3a-9b8c-7d6e5f4a3b2c-000000"
CONFIGURATION_SET = "desk-mail"


class _RecordingSes:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def send_email(self, **request: Any) -> dict[str, str]:
        self.requests.append(request)
        return {"MessageId": MESSAGE_ID}


def mailer_tags(appointment_id: str, mail_key: str) -> dict[str, list[str]]:
    """The tags ``SesMailer`` puts on a mail, as an SES event record lists them."""
    client = _RecordingSes()
    mailer = SesMailer(cast("Any", client), configuration_set=CONFIGURATION_SET)
    mailer.send(
        OutgoingMail(
            sender="desk@msp.example",
            to=("dana@example.com",),
            subject="s",
            text="t",
            html="<p>h</p>",
            appointment_id=appointment_id,
            mail_key=mail_key,
        )
    )
    [request] = client.requests
    return {tag["Name"]: [tag["Value"]] for tag in request["EmailTags"]}


def ses_record(
    event_type: str,
    *,
    appointment_id: str | None,
    mail_key: str | None,
    to: tuple[str, ...] = ("dana@example.com",),
    message_id: str = MESSAGE_ID,
    bounce_type: str = "Permanent",
    bounce_subtype: str = "General",
    complaint_type: str = "abuse",
) -> dict[str, Any]:
    """One record; ``appointment_id`` or ``mail_key`` None leaves our tags out (a mail we did not tag)."""
    tags: dict[str, list[str]] = {
        "ses:configuration-set": [CONFIGURATION_SET],
        "ses:source-ip": ["192.0.2.10"],
        "ses:from-domain": ["msp.example"],
        "ses:caller-identity": ["outbox-relay"],
    }
    if appointment_id is not None and mail_key is not None:
        tags |= mailer_tags(appointment_id, mail_key)
    record: dict[str, Any] = {
        "eventType": event_type,
        "mail": {
            "timestamp": "2026-11-23T15:10:02.012Z",
            "source": "desk@msp.example",
            "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/desk@msp.example",
            "sendingAccountId": "123456789012",
            "messageId": message_id,
            "destination": list(to),
            "headersTruncated": False,
            "headers": [
                {"name": "From", "value": "desk@msp.example"},
                {"name": "To", "value": ", ".join(to)},
                {"name": "Subject", "value": "We missed you"},
                {"name": "MIME-Version", "value": "1.0"},
                {"name": "Content-Type", "value": 'multipart/alternative; boundary="===============1=="'},
            ],
            "commonHeaders": {
                "from": ["desk@msp.example"],
                "to": list(to),
                "messageId": message_id,
                "subject": "We missed you",
            },
            "tags": tags,
        },
    }
    if event_type == "Bounce":
        status, code = ("5.1.1", "smtp; 550 5.1.1 user unknown") if bounce_type == "Permanent" else ("4.2.2", None)
        record["bounce"] = {
            "bounceType": bounce_type,
            "bounceSubType": bounce_subtype,
            "bouncedRecipients": [
                {"emailAddress": address, "action": "failed", "status": status}
                | ({"diagnosticCode": code} if code else {})
                for address in to
            ],
            "timestamp": "2026-11-23T15:11:02.669Z",
            "feedbackId": "0100019a1b2c3d4f-bounce-000000",
            "reportingMTA": "dsn; mx.example.com",
        }
    elif event_type == "Complaint":
        record["complaint"] = {
            "complainedRecipients": [{"emailAddress": address} for address in to],
            "timestamp": "2026-11-23T16:00:00.000Z",
            "feedbackId": "0100019a1b2c3d50-complaint-000000",
            "userAgent": "Mail provider feedback loop",
            "complaintFeedbackType": complaint_type,
            "arrivalDate": "2026-11-23T15:59:00.000Z",
        }
    elif event_type == "Reject":
        record["reject"] = {"reason": "Bad content"}
    elif event_type == "DeliveryDelay":
        record["deliveryDelay"] = {
            "timestamp": "2026-11-23T15:20:00.000Z",
            "delayType": "TransientCommunicationFailure",
            "expirationTime": "2026-11-24T15:10:00.000Z",
            "delayedRecipients": [{"emailAddress": address, "status": "4.4.1"} for address in to],
        }
    elif event_type == "Delivery":
        record["delivery"] = {"timestamp": "2026-11-23T15:10:05.000Z", "recipients": list(to)}
    return record


def ses_message(event_type: str, **fields: Any) -> str:
    """The record as the SNS notification's ``Message`` carries it: JSON text."""
    return json.dumps(ses_record(event_type, **fields))
