"""The outbox relay: sends the mails and publishes the domain events that committed changes recorded.

It follows the table's stream (a new mail is sent right after its change commits) and is the sweeper's
mail sender (a mail to retry is due again in the index). Every mail is claimed before it is sent, so two
senders never send one mail; a claim holds a lease, so a sender that crashes leaves the mail due again
when the lease runs out.

Where a mail can still be duplicated or lost:
- a crash after the mail service took the mail and before it is marked sent (one DynamoDB write, a few
  milliseconds): the lease runs out and the mail is sent again. The mail service has no idempotency
  key to close this window; it is the only duplicate.
- nothing is lost: until it is marked sent or failed a mail stays in the due index.

Each history entry becomes one event on the bus, marked published first (a conditional write, so a
replayed stream record publishes nothing twice); an event the bus does not take is unmarked and the
stream record retried. Only a crash between the mark and the bus taking the event (one PutEvents call)
loses an event.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from appointments.domain import lifecycle
from appointments.domain.history import HistoryEntry, Record
from appointments.domain.model import Actor
from appointments.domain.outbox import MailKind, MailStatus, OutboxMail, overtaken
from appointments.errors import (
    AppointmentNotFound,
    MailRejected,
    MailThrottled,
    VersionConflict,
)
from appointments.observability import record_mail
from appointments.ports import DomainEvent, OutgoingMail

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from appointments.domain.model import Appointment
    from appointments.mail.render import RenderedMail
    from appointments.ports import AppointmentStore, Clock, DueItem, EventPublisher, Mailer

logger = logging.getLogger(__name__)

EVENT_SOURCE = "appointment-desk"
ATTEMPTS = 3


class Sent(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # throttled or failing: pending again, due after a back-off
    FAILED = "failed"  # refused for good: recorded and alerted
    TAKEN = "taken"  # not this sender's: sent, failed, or claimed by another
    SKIPPED = "skipped"  # overtaken by a later change (a reminder for a cancelled appointment): never sent


@dataclass(frozen=True)
class RelayPolicy:
    sender: str  # MAIL_FROM
    ops_alert_email: str
    lease: timedelta = timedelta(minutes=2)
    first_retry: timedelta = timedelta(minutes=1)  # doubled on each attempt
    last_retry: timedelta = timedelta(hours=1)
    max_attempts: int = 10  # then the mail is failed for good

    def retry_after(self, attempts: int) -> timedelta:
        doubled: timedelta = self.first_retry * (2 ** max(0, min(attempts - 1, 20)))
        return min(self.last_retry, doubled)


@dataclass(frozen=True)
class HistoryRecord:
    """A history entry as the stream delivered it: its key, the entry and the appointment it left."""

    appointment_id: str
    key: str  # H#<version>#<n>
    entry: HistoryEntry
    appointment: dict[str, Any]

    @property
    def event(self) -> DomainEvent:
        entry = self.entry
        event_id = f"{self.appointment_id}/{self.key}"
        detail = {
            "event_id": event_id,
            "action": str(entry.action),
            "at": entry.at.isoformat(),
            "actor": entry.actor.model_dump(mode="json"),
            "from_status": None if entry.from_status is None else entry.from_status.value,
            "to_status": entry.to_status.value,
            "detail": entry.detail,
            "appointment": self.appointment,
        }
        return DomainEvent(event_id=event_id, detail_type=f"appointment.{entry.action}", detail=detail, time=entry.at)


class OutboxRelay:
    def __init__(
        self,
        store: AppointmentStore,
        mailer: Mailer,
        publisher: EventPublisher,
        render: Callable[[OutboxMail, Appointment], RenderedMail],
        clock: Clock,
        policy: RelayPolicy,
    ) -> None:
        self._store = store
        self._mailer = mailer
        self._publisher = publisher
        self._render = render
        self._clock = clock
        self._policy = policy

    # -- mail ------------------------------------------------------------------------------------

    def send_due(self, items: tuple[DueItem, ...]) -> int:
        """The sweeper's seam: send what the due index holds; how many went out."""
        sent = 0
        for item in items:
            if item.mail_key:
                outcome = self.send(item.appointment_id, item.mail_key)
                record_mail(outcome)
                sent += outcome is Sent.SENT
        return sent

    def send(self, appointment_id: str, mail_key: str) -> Sent:
        now = self._clock.now()
        token = secrets.token_hex(16)
        mail = self._store.claim_mail(
            appointment_id, mail_key, token=token, now=now, lease_until=now + self._policy.lease
        )
        if mail is None:
            return Sent.TAKEN
        try:
            appointment = self._store.get(appointment_id)
            if (reason := overtaken(mail, appointment)) is not None:
                return self._skip(mail, token, now, reason)
            rendered = self._render(mail, appointment)
            message_id = self._mailer.send(
                OutgoingMail(
                    sender=self._policy.sender,
                    to=mail.to,
                    subject=rendered.subject,
                    text=rendered.text,
                    html=rendered.html,
                    ics=rendered.ics,
                    ics_method=rendered.ics_method,
                    appointment_id=appointment_id,
                    mail_key=mail_key,
                )
            )
        except MailThrottled:
            if mail.attempts < self._policy.max_attempts:
                retry_at = self._clock.now() + self._policy.retry_after(mail.attempts)
                self._store.release_mail(appointment_id, mail_key, token=token, retry_at=retry_at)
                return Sent.RETRY
            self._fail(appointment_id, mail, token, f"still failing after {mail.attempts} attempts")
            return Sent.FAILED
        except MailRejected as rejected:
            self._fail(appointment_id, mail, token, rejected.message)
            return Sent.FAILED
        except AppointmentNotFound:
            return self._skip(mail, token, now, "its appointment was merged into another (a reschedule chain)")
        except Exception:
            # A fault of ours (a template that cannot render): never lost, retried, and failed loudly at the end.
            logger.exception("a mail could not be sent; it is retried")
            if mail.attempts >= self._policy.max_attempts:
                self._fail(appointment_id, mail, token, "it could not be prepared")
                return Sent.FAILED
            retry_at = self._clock.now() + self._policy.retry_after(mail.attempts)
            self._store.release_mail(appointment_id, mail_key, token=token, retry_at=retry_at)
            return Sent.RETRY
        self._store.finish_mail(appointment_id, mail_key, token=token, at=self._clock.now(), message_id=message_id)
        return Sent.SENT

    def _skip(self, mail: OutboxMail, token: str, now: datetime, reason: str) -> Sent:
        """Never sent, and marked so: a later change overtook it, or its appointment is gone."""
        logger.info("a mail is skipped", extra={"mail_kind": mail.kind.value, "why": reason})
        self._store.finish_mail(
            mail.appointment_id, mail.key, token=token, at=now, message_id="", status=MailStatus.SKIPPED
        )
        return Sent.SKIPPED

    def _fail(self, appointment_id: str, mail: OutboxMail, token: str, reason: str) -> None:
        """Failed for good: recorded in the appointment's history, and ops told (unless it was their alert)."""
        for remaining in reversed(range(ATTEMPTS)):
            appointment = self._store.get(appointment_id)
            at = self._clock.now()
            detail = {"mail": mail.key, "kind": mail.kind.value, "reason": reason, "attempts": mail.attempts}
            change = lifecycle.record(appointment, Record.MAIL_FAILED, at=at, actor=Actor.system(), detail=detail)
            if mail.kind is not MailKind.OPS_ALERT:
                subject = f"a {mail.kind.value} mail could not be sent"
                to = (self._policy.ops_alert_email,)
                alert = OutboxMail.ops_alert(
                    change.after, code="mail_failed", subject=subject, to=to, at=at, context=detail
                )
                change = change.with_mails(alert)
            try:
                self._store.commit(_failing(change, mail.key, token))
                return
            except VersionConflict:
                if remaining == 0:
                    raise

    # -- events ----------------------------------------------------------------------------------

    def publish(self, records: Sequence[HistoryRecord]) -> int:
        """One event per history entry, each once; how many were published now."""
        now = self._clock.now()
        fresh = [r for r in records if self._store.claim_publish(r.appointment_id, r.key, now)]
        if not fresh:
            return 0
        # Marked published only once the bus took them: a failure anywhere before leaves them unpublished, and
        # the retried record publishes again (a consumer deduplicates on event_id if the bus took it after all).
        self._publisher.publish([r.event for r in fresh])
        for record in fresh:
            self._store.mark_published(record.appointment_id, record.key, now)
        return len(fresh)


def _failing(change: lifecycle.Change, mail_key: str, token: str) -> lifecycle.Change:
    return replace(change, failed_mail=(mail_key, token))


def history_record(new_image: dict[str, Any]) -> HistoryRecord | None:
    """A history item of the stream (DynamoDB JSON), or None for any other item."""
    if new_image.get("kind", {}).get("S") != "history":
        return None
    return HistoryRecord(
        appointment_id=new_image["PK"]["S"].removeprefix("APPT#"),
        key=new_image["SK"]["S"],
        entry=HistoryEntry.model_validate_json(new_image["doc"]["S"]),
        appointment=json.loads(new_image["appointment"]["S"]) if "appointment" in new_image else {},
    )


def mail_item(new_image: dict[str, Any]) -> tuple[str, str] | None:
    """(appointment id, mail key) of a mail item of the stream, or None for any other item."""
    if new_image.get("kind", {}).get("S") != "mail":
        return None
    return new_image["PK"]["S"].removeprefix("APPT#"), new_image["SK"]["S"].removeprefix("MAIL#")
