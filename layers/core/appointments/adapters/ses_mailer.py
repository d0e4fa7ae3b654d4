"""Mail through SES v2: one raw MIME message per mail (text and HTML alternatives, and the calendar invitation
as a ``text/calendar`` part). Raw rather than Simple content because Simple cannot carry an attachment, and
because SES then records exactly what the customer receives."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from appointments.errors import MailRejected, MailThrottled

if TYPE_CHECKING:
    from mypy_boto3_sesv2 import SESV2Client

    from appointments.ports import OutgoingMail

# Worth another try later: throttling, a paused account, the service failing.
_RETRYABLE = frozenset(
    {
        "TooManyRequestsException",
        "LimitExceededException",
        "SendingPausedException",
        "Throttling",
        "ThrottlingException",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalServiceError",
    }
)


class SesMailer:
    def __init__(self, client: SESV2Client, *, configuration_set: str | None = None) -> None:
        self._client = client
        self._configuration_set = configuration_set

    def send(self, mail: OutgoingMail) -> str:
        raw = mime(mail).as_bytes()
        request: dict[str, object] = {
            "FromEmailAddress": mail.sender,
            "Destination": {"ToAddresses": list(mail.to)},
            "Content": {"Raw": {"Data": raw}},
        }
        if self._configuration_set:
            request["ConfigurationSetName"] = self._configuration_set
        tags = {"appointment_id": mail.appointment_id, "mail_key": mail.mail_key}
        request["EmailTags"] = [{"Name": name, "Value": _tag(value)} for name, value in tags.items() if value]
        try:
            response = self._client.send_email(**request)  # type: ignore[arg-type]
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in _RETRYABLE:
                raise MailThrottled(f"the mail service is not taking mail now ({code})") from error
            raise MailRejected(f"the mail service refused the mail ({code})") from error
        return response["MessageId"]


def mime(mail: OutgoingMail) -> EmailMessage:
    message = EmailMessage()
    message["From"] = mail.sender
    message["To"] = ", ".join(mail.to)
    message["Subject"] = mail.subject  # the renderer never lets a line break into it
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=mail.sender.rpartition("@")[2] or None)
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    if mail.ics is not None:
        message.add_attachment(
            mail.ics.encode(),
            maintype="text",
            subtype="calendar",
            filename="appointment.ics",
            params={"method": mail.ics_method or "PUBLISH"},
        )
    return message


def _tag(value: str) -> str:
    # SES tag values allow letters, digits, "_", "-", "." and "@" only: every other byte is written "_xx".
    safe = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.@")
    return "".join(chr(b) if b in safe else f"_{b:02x}" for b in value.encode())[:256]


def untag(value: str) -> str:
    """A tag value as it was before ``_tag``: what a bounce notice's tags name."""
    raw, i = bytearray(), 0
    while i < len(value):
        if value[i] == "_":
            raw.append(int(value[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.append(ord(value[i]))
            i += 1
    return raw.decode()
