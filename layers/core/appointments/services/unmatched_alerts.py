"""Ops alerts about booking changes left unmatched: a cancellation (or reschedule, assignment, no-show)
of a booking the desk never received, still waiting for it some minutes after it arrived.

Why not the outbox: an outbox mail lives in its appointment's partition, is rendered from the
appointment and is recorded in its history; here there is no appointment, and there may never be one.
So the alert is its own item next to the waiting event (``WAIT#<key>``, ``ALERT#...``), written once
when the event first waits (a redelivery leaves it), due in a partition of the due index of its own.
The sweeper hands what is due to ``send_due``, which per alert:

- drops it when its event no longer waits (its booking arrived and took it): no mail;
- else claims it (a conditional write with a lease, as the outbox relay claims a mail), renders it from
  the waiting event (``mail.render.render_unmatched_alert``), sends it through the ``Mailer`` port and
  marks it sent. A sent alert stays until its event would be dropped, so a redelivery never re-arms it.

Two sweeps never both send (the claim decides). As with the outbox, a crash after the mail service took
the mail and before it is marked sent sends it again when the lease runs out; a refused mail is logged
and marked done, never retried (the ops address itself is what is wrong). Ticket events that wait
(``ticket#...``) are never alerted: a PSA ticket without an appointment is the normal case.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

from appointments.errors import MailRejected, MailThrottled
from appointments.ports import OutgoingMail

if TYPE_CHECKING:
    from datetime import datetime

    from appointments.domain.events import CanonicalEvent
    from appointments.mail.render import RenderedMail
    from appointments.ports import AppointmentStore, Clock, Mailer, UnmatchedAlert

logger = logging.getLogger(__name__)

PAGE_SIZE = 100


class AlertRenderer(Protocol):
    """Renders one alert: ``functools.partial(render_unmatched_alert, branding=...)`` in production."""

    def __call__(self, event: CanonicalEvent, *, arrived_at: datetime, dropped_at: datetime) -> RenderedMail: ...


@dataclass(frozen=True)
class AlertPolicy:
    sender: str  # MAIL_FROM
    ops_alert_email: str
    lease: timedelta = timedelta(minutes=2)  # a sweep that crashed mid-send leaves the alert due this much later
    max_per_run: int = 500  # a flood of unmatched events waits for the next runs rather than eat this one


class UnmatchedAlerts:
    def __init__(
        self,
        store: AppointmentStore,
        mailer: Mailer,
        clock: Clock,
        render: AlertRenderer,
        policy: AlertPolicy,
    ) -> None:
        self._store = store
        self._mailer = mailer
        self._clock = clock
        self._render = render
        self._policy = policy

    def send_due(self, now: datetime) -> int:
        """Send every alert due at ``now`` whose event still waits; how many were sent."""
        sent = 0
        seen = 0
        cursor: str | None = None
        while seen < self._policy.max_per_run:
            page = self._store.unmatched_alerts_due(now, limit=PAGE_SIZE, cursor=cursor)
            for alert in page.items:
                sent += self._send(alert)
            seen += len(page.items)
            cursor = page.cursor
            if cursor is None:
                break
        return sent

    def _send(self, alert: UnmatchedAlert) -> int:
        now = self._clock.now()
        token = secrets.token_hex(16)
        claimed = self._store.claim_unmatched_alert(alert, token=token, now=now, lease_until=now + self._policy.lease)
        if claimed is None:
            return 0
        waiting = claimed.waiting
        try:
            rendered = self._render(waiting.event, arrived_at=claimed.arrived_at, dropped_at=waiting.until)
            message_id = self._mailer.send(
                OutgoingMail(
                    sender=self._policy.sender,
                    to=(self._policy.ops_alert_email,),
                    subject=rendered.subject,
                    text=rendered.text,
                    html=rendered.html,
                )
            )
        except MailThrottled:
            return 0  # still claimed: due again when the lease runs out
        except MailRejected:
            logger.exception("the unmatched-event alert was refused; it is not retried")
            message_id = ""
        except Exception:
            logger.exception("an unmatched-event alert could not be sent; it is retried when its lease runs out")
            return 0
        done = self._store.finish_unmatched_alert(alert, token=token, at=self._clock.now(), message_id=message_id)
        return int(done and bool(message_id))
