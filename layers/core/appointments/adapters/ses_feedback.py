"""SES event publishing records (the ``Message`` of each SNS notification) → ``MailNotice``.

The shape is SES's "event publishing" record (``eventType``, ``mail`` with the send's ``tags``, and one
object per type: ``bounce``, ``complaint``, ``reject``, ...), not the identity notifications'
(``notificationType``), which carry no tags and so cannot name their appointment. Tags arrive as lists
(``{"appointment_id": ["01J..."], ...}``), each value as ``SesMailer`` encoded it.

Only what the product acts on is read: bounces, complaints and rejects. Everything else (deliveries,
delays, opens), a record without our tags, or one that is not an SES record at all is logged (without
the addresses it holds) and read as None.
"""

from __future__ import annotations

import logging

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from appointments.adapters.ses_mailer import untag
from appointments.ports import Feedback, MailNotice

logger = logging.getLogger(__name__)

_DIAGNOSTIC_CHARS = 300


class _SesModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class SesRecipient(_SesModel):
    email_address: str = Field(alias="emailAddress")
    status: str | None = None  # the DSN's status, e.g. 5.1.1
    diagnostic_code: str | None = Field(None, alias="diagnosticCode")


class SesBounce(_SesModel):
    bounce_type: str = Field(alias="bounceType")  # Permanent, Transient or Undetermined
    bounce_sub_type: str | None = Field(None, alias="bounceSubType")
    bounced_recipients: tuple[SesRecipient, ...] = Field((), alias="bouncedRecipients")


class SesComplaint(_SesModel):
    complained_recipients: tuple[SesRecipient, ...] = Field((), alias="complainedRecipients")
    complaint_feedback_type: str | None = Field(None, alias="complaintFeedbackType")  # abuse, fraud, ...
    complaint_sub_type: str | None = Field(None, alias="complaintSubType")


class SesReject(_SesModel):
    reason: str | None = None  # "Bad content": a virus


class SesMail(_SesModel):
    message_id: str = Field(alias="messageId", min_length=1)  # the id SendEmail answered
    destination: tuple[str, ...] = ()
    tags: dict[str, tuple[str, ...]] = {}  # ours (appointment_id, mail_key) and SES's own (ses:...)


class SesEvent(_SesModel):
    """One SES event publishing record."""

    event_type: str = Field(alias="eventType")
    mail: SesMail
    bounce: SesBounce | None = None
    complaint: SesComplaint | None = None
    reject: SesReject | None = None

    def tag(self, name: str) -> str | None:
        """Our tag ``name`` as the sender wrote it (decoded); None when it is missing or garbled."""
        values = self.mail.tags.get(name) or ()
        if not values:
            return None
        try:
            return untag(values[0]) or None
        except (ValueError, IndexError, UnicodeDecodeError):
            return None


def read_ses_notice(text: str) -> MailNotice | None:
    """The notice in one SES event publishing record; None for anything the product does not act on."""
    try:
        event = SesEvent.model_validate_json(text)
    except ValidationError as error:
        # Never echoes the input: it holds addresses.
        fields = sorted({".".join(str(p) for p in e["loc"]) for e in error.errors(include_input=False)})
        logger.warning("mail feedback that is not an SES event record; ignored", extra={"fields": fields})
        return None
    read = _feedback(event)
    if read is None:
        logger.info("mail feedback of no concern; ignored", extra={"event_type": event.event_type})
        return None
    feedback, cause, recipients, facts = read
    appointment_id, mail_key = event.tag("appointment_id"), event.tag("mail_key")
    if appointment_id is None or mail_key is None:
        logger.warning(
            "mail feedback without the appointment's tags; ignored",
            extra={"event_type": event.event_type, "message_id": event.mail.message_id},
        )
        return None
    diagnostics = [r.diagnostic_code or r.status for r in recipients if r.diagnostic_code or r.status]
    if diagnostics:
        facts["diagnostic"] = str(diagnostics[0])[:_DIAGNOSTIC_CHARS]
    return MailNotice(
        feedback=feedback,
        appointment_id=appointment_id,
        mail_key=mail_key,
        message_id=event.mail.message_id,
        event_type=event.event_type,
        cause=cause,
        recipients=tuple(r.email_address for r in recipients),
        facts=facts,
    )


def _feedback(event: SesEvent) -> tuple[Feedback, str, tuple[SesRecipient, ...], dict[str, str]] | None:
    """What the record reports: the feedback, SES's words for why, the recipients concerned, the facts."""
    everyone = tuple(SesRecipient(email_address=address) for address in event.mail.destination)
    match event.event_type:
        case "Bounce" if event.bounce is not None:
            bounce = event.bounce
            feedback = Feedback.SOFT_BOUNCE if bounce.bounce_type == "Transient" else Feedback.BOUNCE
            facts = {"bounce_type": bounce.bounce_type}
            if bounce.bounce_sub_type:
                facts["bounce_subtype"] = bounce.bounce_sub_type
            cause = "/".join(facts.values())
            return feedback, cause, bounce.bounced_recipients or everyone, facts
        case "Complaint":
            complaint = event.complaint or SesComplaint()
            told = complaint.complaint_feedback_type or complaint.complaint_sub_type or "complaint"
            return Feedback.COMPLAINT, told, complaint.complained_recipients or everyone, {"complaint_type": told}
        case "Reject":
            reason = (event.reject.reason if event.reject else None) or "rejected"
            return Feedback.REJECT, reason, everyone, {}
    return None
