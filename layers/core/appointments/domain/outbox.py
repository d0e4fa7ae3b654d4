"""Mail outbox records: written in the same transaction as the change that causes them, sent after."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import Field

from appointments.domain.model import Appointment, Email, Frozen, NonEmpty, Status, UtcDatetime

if TYPE_CHECKING:
    from datetime import datetime


class MailKind(StrEnum):
    CONFIRMATION = "confirmation"
    RESCHEDULED = "rescheduled"
    RESCHEDULE_REQUEST = "reschedule_request"
    REASSIGNED = "reassigned"
    CANCELLED = "cancelled"
    REMINDER = "reminder"
    PRE_NOTICE = "pre_notice"
    NO_SHOW = "no_show"
    CONTACT_ATTEMPT = "contact_attempt"
    OPS_ALERT = "ops_alert"


class NoShowMailBy(StrEnum):
    """Who tells the customer they missed the appointment (``NO_SHOW_MAIL_BY``)."""

    DESK = "desk"  # the desk's no-show mail
    PSA = "psa"  # the PSA's own workflow, fired when the write-back sets the ticket to NO-SHOW


def no_show_mail(appointment: Appointment, by: NoShowMailBy) -> str:
    """Who tells the customer about this no-show: ``psa`` (a ticket the write-back sets to NO-SHOW, when the PSA
    is to mail), ``desk`` (our mail), or ``none`` (no ticket to leave it to, and no address to mail)."""
    if by is NoShowMailBy.PSA and appointment.ticket is not None:
        return NoShowMailBy.PSA.value
    return NoShowMailBy.DESK.value if appointment.customer.email is not None else "none"


class MailStatus(StrEnum):
    PENDING = "pending"  # waiting to be sent, or to be retried at its due time
    SENDING = "sending"  # claimed by a sender until its lease ends
    SENT = "sent"
    FAILED = "failed"  # refused for good (an address that does not exist): recorded in history, ops alerted
    SKIPPED = "skipped"  # overtaken before it went out (a reminder for a cancelled or moved appointment)


class OutboxMail(Frozen):
    """One mail to send. ``key`` is its dedupe key within the appointment: a mail is recorded once."""

    key: NonEmpty
    appointment_id: NonEmpty
    kind: MailKind
    to: tuple[Email, ...] = Field(min_length=1)
    context: dict[str, Any] = Field(default_factory=dict)
    created_at: UtcDatetime
    status: MailStatus = MailStatus.PENDING
    sent_at: UtcDatetime | None = None
    attempts: int = 0
    message_id: str | None = None  # the mail service's id, once sent

    @classmethod
    def notice(
        cls,
        kind: MailKind,
        appointment: Appointment,
        *,
        notice_key: str,
        to: tuple[str, ...],
        at: datetime,
        context: dict[str, Any],
    ) -> OutboxMail:
        """A timed notice, keyed by its rule's key (rule, offset, start time): a reschedule re-arms it, a retry
        never repeats it, and two reminders (24 h and 2 h before) are two mails."""
        return cls(key=notice_key, appointment_id=appointment.id, kind=kind, to=to, context=context, created_at=at)

    @classmethod
    def for_change(
        cls, kind: MailKind, appointment: Appointment, *, to: tuple[str, ...], at: datetime, context: dict[str, Any]
    ) -> OutboxMail:
        """A mail caused by one change (``appointment`` is the state after it): once per version."""
        key = f"{kind}#{appointment.start.isoformat()}#v{appointment.version}"
        return cls(key=key, appointment_id=appointment.id, kind=kind, to=to, context=context, created_at=at)

    @classmethod
    def ops_alert(
        cls,
        appointment: Appointment,
        *,
        code: str,
        subject: str,
        to: tuple[str, ...],
        at: datetime,
        context: dict[str, Any] | None = None,
    ) -> OutboxMail:
        """An alert to ops about one change; ``code`` keeps two alerts of one change apart."""
        mail = cls.for_change(
            MailKind.OPS_ALERT, appointment, to=to, at=at, context={"subject": subject, **(context or {})}
        )
        return mail.model_copy(update={"key": f"{mail.key}#{code}"})


def overtaken(mail: OutboxMail, appointment: Appointment) -> str | None:
    """Why a customer mail written earlier must not go out now, or None. A mail is rendered from the
    appointment as it is when sent, so one that waited (a throttled service, a retry) must still be true."""
    if mail.kind is MailKind.OPS_ALERT:
        return None
    if appointment.status is Status.CANCELLED and mail.kind is not MailKind.CANCELLED:
        return "the appointment was cancelled since"
    if mail.kind in (MailKind.REMINDER, MailKind.PRE_NOTICE):
        if appointment.status is not Status.SCHEDULED:
            return f"the appointment is {appointment.status.value} now"
        if not mail.key.endswith(appointment.start.isoformat()):
            return "the appointment was moved since"
    return None
