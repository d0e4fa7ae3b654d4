"""Mail feedback: what the mail service reports about a mail after it took it, kept with the appointment.

SES publishes the bounces, complaints and rejects of every mail sent through the product's configuration
set to an SNS topic. Each notice names its mail by the tags the sender put on it (the appointment id and
the mail key), so it lands in its own appointment's history as ``mail_bounced``: the mail's key and
kind, what happened (``feedback``, SES's ``event_type`` and words), whose address it was (``customer``,
``ops`` or ``other``) and the mail service's message id. The addresses themselves go only to ops, in the
alert: a history entry becomes a domain event, and no customer contact details travel on the bus (an
address in SES's diagnostic is blanked too). Logs never name an address either.

What each notice does:

- a permanent (or undetermined) bounce, a complaint, a reject: history, and an ops alert in the same
  transaction (keyed ``...#bounce``): a dispatcher must know the customer never got (or refused) the
  mail, a no-show mail above all. Never for a notice about an ops alert itself: the alert about it would
  go to the same mailbox and bounce again (a loop); its history entry says ``alerted: false``.
- a transient bounce: history only. SES publishes one only once it stopped retrying, so the mail did not
  arrive and the appointment says so; but the address works (a full mailbox, a message too large) and the
  next mail will likely arrive, so nobody is paged.
- anything else (delivery delays and deliveries, which the event destination does not even send), a
  notice without our tags, or about an appointment that is gone (merged into another): logged, ignored.

SNS may deliver a notice twice, and two copies may run at once: each is recorded once. A notice whose
message id and feedback are already in a ``mail_bounced`` entry is a duplicate. Both copies read the
appointment and commit conditioned on its version, so the second to commit conflicts, reads again, and
finds the first one's entry.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from appointments.domain import lifecycle
from appointments.domain.history import Record
from appointments.domain.model import Actor
from appointments.domain.outbox import MailKind, OutboxMail
from appointments.errors import AppointmentNotFound, VersionConflict
from appointments.ports import Feedback

if TYPE_CHECKING:
    from appointments.ports import AppointmentRecord, AppointmentStore, Clock, MailNotice, NoticeReader

logger = logging.getLogger(__name__)

ATTEMPTS = 3
ALERT_CODE = "bounce"
ALERTING = frozenset({Feedback.BOUNCE, Feedback.COMPLAINT, Feedback.REJECT})
_ADDRESS = re.compile(r"[^\s<>@,;:\"'()\[\]]+@[^\s<>@,;:\"'()\[\]]+")


class Noted(StrEnum):
    ALERTED = "alerted"  # recorded in history, ops alerted in the same transaction
    RECORDED = "recorded"  # recorded in history only (a transient bounce, or feedback on an ops alert)
    DUPLICATE = "duplicate"  # already recorded: a redelivery
    IGNORED = "ignored"  # not ours, of no concern, unreadable, or its appointment is gone


@dataclass(frozen=True)
class FeedbackPolicy:
    ops_alert_email: str


class MailFeedback:
    def __init__(self, store: AppointmentStore, clock: Clock, policy: FeedbackPolicy, read: NoticeReader) -> None:
        self._store = store
        self._clock = clock
        self._policy = policy
        self._read = read

    def record(self, text: str) -> Noted:
        """Keep one notice (as the mail service published it) with its appointment; what became of it."""
        notice = self._read(text)
        if notice is None:
            return Noted.IGNORED
        return self.record_notice(notice)

    def record_notice(self, notice: MailNotice) -> Noted:
        where = {"feedback": notice.feedback.value, "message_id": notice.message_id}
        for remaining in reversed(range(ATTEMPTS)):
            try:
                record = self._store.load(notice.appointment_id)
            except AppointmentNotFound:
                logger.warning("mail feedback about an appointment that is gone; ignored", extra=where)
                return Noted.IGNORED
            if _already_recorded(record, notice):
                logger.info("mail feedback already recorded", extra=where)
                return Noted.DUPLICATE
            change, alerted = self._change(record, notice)
            try:
                self._store.commit(change)
            except VersionConflict:
                if remaining == 0:
                    raise
                continue
            told = {"appointment_id": notice.appointment_id, "mail_key": notice.mail_key, "alerted": alerted}
            logger.info("mail feedback recorded", extra={**where, **told})
            return Noted.ALERTED if alerted else Noted.RECORDED
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _change(self, record: AppointmentRecord, notice: MailNotice) -> tuple[lifecycle.Change, bool]:
        kind = _kind_of(record, notice.mail_key)
        alerted = notice.feedback in ALERTING and kind is not MailKind.OPS_ALERT
        facts = dict(notice.facts)
        if "diagnostic" in facts:
            facts["diagnostic"] = _ADDRESS.sub("<address>", facts["diagnostic"])
        detail: dict[str, Any] = {
            "mail": notice.mail_key,
            "kind": None if kind is None else kind.value,
            "reason": _reason(notice),
            "feedback": notice.feedback.value,
            "event_type": notice.event_type,
            "message_id": notice.message_id,
            "recipient_roles": self._roles(record, notice),
            **facts,
            "alerted": alerted,
        }
        at = self._clock.now()
        change = lifecycle.record(record.appointment, Record.MAIL_BOUNCED, at=at, actor=Actor.system(), detail=detail)
        if alerted:
            told = {key: value for key, value in detail.items() if value is not None and key != "alerted"}
            told["recipients"] = list(notice.recipients)  # ops may read them: the alert already names the customer
            alert = OutboxMail.ops_alert(
                change.after,
                code=ALERT_CODE,
                subject=_alert_subject(notice, kind),
                to=(self._policy.ops_alert_email,),
                at=at,
                context=told,
            )
            change = change.with_mails(alert)
        return change, alerted

    def _roles(self, record: AppointmentRecord, notice: MailNotice) -> list[str]:
        """Whose each address concerned is: the customer's on file, ops', or another (an older address)."""
        customer = (record.appointment.customer.email or "").lower()
        ops = self._policy.ops_alert_email.lower()
        roles = {customer: "customer", ops: "ops"}
        return [roles.get(address.lower(), "other") for address in notice.recipients]


def _already_recorded(record: AppointmentRecord, notice: MailNotice) -> bool:
    return any(
        entry.action == Record.MAIL_BOUNCED
        and entry.detail.get("message_id") == notice.message_id
        and entry.detail.get("feedback") == notice.feedback.value
        for entry in record.history
    )


def _kind_of(record: AppointmentRecord, mail_key: str) -> MailKind | None:
    """The mail's kind from its outbox record; else from its key, which starts with it (``ops_alert#...``)."""
    for mail in record.mails:
        if mail.key == mail_key:
            return mail.kind
    prefix = mail_key.split("#", 1)[0]
    return next((kind for kind in MailKind if kind.value == prefix), None)


def _reason(notice: MailNotice) -> str:
    match notice.feedback:
        case Feedback.BOUNCE:
            return f"not delivered: the address does not take mail ({notice.cause})"
        case Feedback.SOFT_BOUNCE:
            return f"not delivered: a temporary failure the mail service stopped retrying ({notice.cause})"
        case Feedback.COMPLAINT:
            return f"the recipient reported the mail ({notice.cause})"
        case Feedback.REJECT:
            return f"not delivered: the mail service refused it ({notice.cause})"


def _alert_subject(notice: MailNotice, kind: MailKind | None) -> str:
    what = f"the {kind.value.replace('_', '-')} mail" if kind is not None else "a mail"
    if notice.feedback is Feedback.COMPLAINT:
        return f"the customer reported {what} as spam"
    return f"{what} never reached the customer ({notice.feedback.value})"
