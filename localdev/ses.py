"""SES beyond what moto does: what each send asked for, and the events SES publishes about a mail after.

moto's SES v2 takes ``ConfigurationSetName`` and ``EmailTags`` on every send and keeps neither, and it
never bounces. So the runner listens on boto3's default session (which every function's client is made
from) to each ``sesv2.SendEmail``: its configuration set and tags, by the message id SES answered
(``SesTap``). ``feedback_record`` then writes the event publishing record SES would publish for one of
those mails (``Bounce`` or ``Complaint``, the shape of SES's examples: ``eventType``, ``mail`` with its
headers and tags, ``bounce``/``complaint``), which the runner publishes to the SNS topic of each event
destination of the mail's configuration set that takes that event type.

Departures from AWS: tags are recorded for SES v2 ``SendEmail`` only (what the product uses); SES's own
``ses:*`` tags are stand-ins (``ses:source-ip`` is 127.0.0.1); nothing bounces unless asked.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from datetime import UTC
from email.utils import getaddresses
from typing import TYPE_CHECKING, Any

import boto3

from localdev.resources import ACCOUNT_ID, REGION

if TYPE_CHECKING:
    from datetime import datetime

    from localdev.runner import SentMail

_UNIQUE = "localdev-ses-tap"
_SEND = "sesv2.SendEmail"
# bounceType → (default bounceSubType, DSN status, diagnostic code)
BOUNCES: dict[str, tuple[str, str | None, str | None]] = {
    "Permanent": ("General", "5.1.1", "smtp; 550 5.1.1 user unknown (localdev)"),
    "Transient": ("MailboxFull", "4.2.2", "smtp; 452 4.2.2 mailbox full (localdev)"),
    "Undetermined": ("Undetermined", None, None),
}


class FeedbackRefused(Exception):
    """The runner cannot publish the feedback asked for: the status, the field and why."""

    def __init__(self, status: int, field: str | None, message: str) -> None:
        super().__init__(message)
        self.status, self.field, self.message = status, field, message


@dataclass(frozen=True)
class SendRequest:
    """What one ``SendEmail`` asked SES for, beyond the message itself."""

    message_id: str
    configuration_set: str | None
    tags: dict[str, str]  # EmailTags, name → value as sent


class SesTap:
    """Records the configuration set and tags of every ``sesv2.SendEmail`` made from boto3's default session.

    Clients copy the session's handlers when they are made: install before the functions make theirs.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[str, SendRequest] = {}
        self._session: Any = None

    def install(self) -> None:
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        self._session = boto3.DEFAULT_SESSION
        events = self._session.events
        events.register(f"provide-client-params.{_SEND}", self._asked, unique_id=f"{_UNIQUE}-asked")
        events.register(f"after-call.{_SEND}", self._answered, unique_id=f"{_UNIQUE}-answered")

    def uninstall(self) -> None:
        if self._session is not None:
            events = self._session.events
            events.unregister(f"provide-client-params.{_SEND}", unique_id=f"{_UNIQUE}-asked")
            events.unregister(f"after-call.{_SEND}", unique_id=f"{_UNIQUE}-answered")
            self._session = None

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def request(self, message_id: str) -> SendRequest | None:
        with self._lock:
            return self._requests.get(message_id)

    def _asked(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context[_UNIQUE] = (
            params.get("ConfigurationSetName") or None,
            {str(tag["Name"]): str(tag["Value"]) for tag in params.get("EmailTags", ())},
        )

    def _answered(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        asked = context.get(_UNIQUE)
        message_id = parsed.get("MessageId")
        if asked is None or not message_id:
            return  # refused: SES sent nothing
        configuration_set, tags = asked
        with self._lock:
            self._requests[message_id] = SendRequest(message_id, configuration_set, tags)


def feedback_record(
    event_type: str,
    mail: SentMail,
    request: SendRequest | None,
    *,
    at: datetime,
    recipients: tuple[str, ...],
    bounce_type: str = "Permanent",
    bounce_subtype: str | None = None,
    complaint_type: str = "abuse",
) -> dict[str, Any]:
    """The record SES publishes when ``mail`` bounced (``Bounce``) or was reported (``Complaint``) at ``at``."""
    record: dict[str, Any] = {"eventType": event_type}
    feedback_id = f"{uuid.uuid4().hex}-localdev-000000"
    if event_type == "Bounce":
        subtype, status, diagnostic = BOUNCES[bounce_type]
        bounced = []
        for address in recipients:
            recipient: dict[str, Any] = {"emailAddress": address}
            if status is not None:
                recipient |= {"action": "failed", "status": status, "diagnosticCode": diagnostic}
            bounced.append(recipient)
        record["bounce"] = {
            "bounceType": bounce_type,
            "bounceSubType": bounce_subtype or subtype,
            "bouncedRecipients": bounced,
            "timestamp": _instant(at),
            "feedbackId": feedback_id,
            "reportingMTA": "dsn; localdev.invalid",
        }
    elif event_type == "Complaint":
        record["complaint"] = {
            "complainedRecipients": [{"emailAddress": address} for address in recipients],
            "timestamp": _instant(at),
            "feedbackId": feedback_id,
            "userAgent": "localdev",
            "complaintFeedbackType": complaint_type,
            "arrivalDate": _instant(at),
        }
    else:
        raise ValueError(f"no record for {event_type!r}")
    record["mail"] = _mail_object(mail, request)
    return record


def _mail_object(mail: SentMail, request: SendRequest | None) -> dict[str, Any]:
    sender = next((address for _, address in getaddresses([mail.sender]) if address), mail.sender)
    tags: dict[str, list[str]] = {}
    if request is not None and request.configuration_set:
        tags["ses:configuration-set"] = [request.configuration_set]
    tags |= {
        "ses:source-ip": ["127.0.0.1"],
        "ses:from-domain": [sender.rpartition("@")[2]],
        "ses:caller-identity": ["local-dev"],
    }
    if request is not None:
        tags |= {name: [value] for name, value in request.tags.items()}
    return {
        "timestamp": _instant(mail.sent_at),
        "source": mail.sender,
        "sourceArn": f"arn:aws:ses:{REGION}:{ACCOUNT_ID}:identity/{sender}",
        "sendingAccountId": ACCOUNT_ID,
        "messageId": mail.message_id,
        "destination": list(mail.to),
        "headersTruncated": False,
        "headers": [{"name": name, "value": value} for name, value in mail.headers],
        "commonHeaders": {
            "from": [mail.sender],
            "to": list(mail.to),
            "messageId": mail.message_id,
            "subject": mail.subject,
        },
        "tags": tags,
    }


def _instant(at: datetime) -> str:
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
