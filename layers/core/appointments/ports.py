"""The ports services depend on. Adapters implement them on AWS; tests use in-memory fakes."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    from appointments.domain.events import CanonicalEvent
    from appointments.domain.history import HistoryEntry
    from appointments.domain.lifecycle import Change
    from appointments.domain.model import Appointment, ExternalRef, TicketRef
    from appointments.domain.outbox import MailStatus, OutboxMail
    from appointments.domain.polling import PollState


class SecretSource(Protocol):
    def webhook_secret(self, source: str) -> str | None:
        """The signing secret configured for ``source``; None when there is none."""
        ...


class EventQueue(Protocol):
    def enqueue(self, events: Sequence[CanonicalEvent]) -> None:
        """Queue events in order per entity, deduplicated by delivery id; raises ``QueueUnavailable``."""
        ...


@dataclass(frozen=True)
class OutgoingMail:
    """One mail as the mail service takes it: rendered, addressed, with an optional calendar attachment."""

    sender: str
    to: tuple[str, ...]
    subject: str
    text: str
    html: str
    ics: str | None = None
    ics_method: str | None = None  # REQUEST or CANCEL
    # Which outbox record it is: the mail service echoes these in its bounce and complaint notices.
    appointment_id: str | None = None
    mail_key: str | None = None


class Mailer(Protocol):
    def send(self, mail: OutgoingMail) -> str:
        """Send; the service's message id. Raises ``MailThrottled`` (retry later) or ``MailRejected`` (never)."""
        ...


class Feedback(StrEnum):
    """What the mail service reported about a mail after it took it."""

    BOUNCE = "bounce"  # permanent (or undetermined): the address does not take mail
    SOFT_BOUNCE = "soft_bounce"  # transient: the service stopped retrying; the address may take mail later
    COMPLAINT = "complaint"  # the recipient reported the mail (as spam, fraud, ...)
    REJECT = "reject"  # the service refused to deliver it (a virus)


@dataclass(frozen=True)
class MailNotice:
    """One report of the mail service about one mail it took, named by the mail's tags."""

    feedback: Feedback
    appointment_id: str
    mail_key: str
    message_id: str  # the id the service answered when it took the mail
    event_type: str  # the service's own name for the report (Bounce, Complaint, Reject)
    cause: str  # the service's words for why (Permanent/General, abuse, Bad content)
    recipients: tuple[str, ...] = ()  # the addresses concerned
    facts: dict[str, str] = field(default_factory=dict)  # bounce_type, bounce_subtype, complaint_type, diagnostic


class NoticeReader(Protocol):
    def __call__(self, text: str) -> MailNotice | None:
        """The notice in ``text`` (as the mail service published it), or None: not ours, of no concern, unreadable."""
        ...


@dataclass(frozen=True)
class DomainEvent:
    """One history entry as an event on the bus; ``event_id`` is stable, so consumers can deduplicate."""

    event_id: str
    detail_type: str  # appointment.<history action>
    detail: dict[str, Any]
    time: datetime


class EventPublisher(Protocol):
    def publish(self, events: Sequence[DomainEvent]) -> None:
        """Put every event on the bus, or raise ``EventsUnavailable`` (none can be taken as published)."""
        ...


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...


@dataclass(frozen=True)
class AppointmentRecord:
    """An appointment with its history, oldest entry first, and its outbox mails."""

    appointment: Appointment
    history: tuple[HistoryEntry, ...]
    mails: tuple[OutboxMail, ...]


class DueKind(StrEnum):
    APPOINTMENT = "appointment"  # a timed rule may apply
    MAIL = "mail"  # a pending mail waits to be sent or retried


@dataclass(frozen=True)
class DueItem:
    kind: DueKind
    appointment_id: str
    due_at: datetime
    mail_key: str | None = None


@dataclass(frozen=True)
class DuePage:
    items: tuple[DueItem, ...]
    cursor: str | None  # where the next page starts; None: nothing more is due


@dataclass(frozen=True)
class Waiting:
    """An event kept for a booking or ticket the desk does not hold yet."""

    key: str  # ref#<system>#<id> or ticket#<system>#<id>
    event: CanonicalEvent
    until: datetime  # dropped then


@dataclass(frozen=True)
class WaitingPage:
    items: tuple[Waiting, ...]
    cursor: str | None


@dataclass(frozen=True)
class UnmatchedAlert:
    """An ops alert falling due about one event still waiting for its booking."""

    key: str  # the wait key (ref#<system>#<id>)
    item: str  # which waiting event under ``key``; opaque to callers
    due_at: datetime


@dataclass(frozen=True)
class UnmatchedAlertPage:
    items: tuple[UnmatchedAlert, ...]
    cursor: str | None


@dataclass(frozen=True)
class ClaimedAlert:
    """An unmatched alert taken to send: the event as it waits now, and when it first arrived."""

    waiting: Waiting
    arrived_at: datetime


@dataclass(frozen=True)
class AppointmentPage:
    items: tuple[Appointment, ...]
    next_cursor: str | None


class AppointmentStore(Protocol):
    def get(self, appointment_id: str) -> Appointment:
        """The current state; raises ``AppointmentNotFound``."""
        ...

    def load(self, appointment_id: str) -> AppointmentRecord:
        """State, history and mails in one read; raises ``AppointmentNotFound``."""
        ...

    def commit(self, change: Change) -> None:
        """Write state, history, mails and new mappings atomically.

        A change with no ``before`` creates the appointment. Otherwise the write holds only if the stored
        version is still ``change.expected_version``; else ``VersionConflict`` and nothing is written.
        A claimed external ref that belongs to another appointment raises ``ExternalRefTaken``.
        """
        ...

    def find_by_external_ref(self, ref: ExternalRef) -> str | None:
        """The id of the appointment that holds ``ref``, if any."""
        ...

    def find_by_ticket(self, ticket: TicketRef) -> tuple[str, ...]:
        """Ids of the appointments linked to ``ticket``, oldest first."""
        ...

    def due(self, kind: DueKind, shard: int, until: datetime, *, limit: int, cursor: str | None = None) -> DuePage:
        """One page of ``kind``'s items in one shard due at or before ``until``, earliest first.

        Appointments and mails have shards of their own, so a mail backlog never delays a rule.
        """
        ...

    def list_between(self, start_from: datetime, start_to: datetime, limit: int, cursor: str | None) -> AppointmentPage:
        """Appointments whose start lies in ``[start_from, start_to)``, by start time, one page."""
        ...

    def keep_waiting(
        self,
        key: str,
        event: CanonicalEvent,
        until: datetime,
        *,
        alert_at: datetime | None = None,
        arrived_at: datetime | None = None,
    ) -> None:
        """Keep ``event`` under ``key`` (a booking or ticket not held yet) until ``until``; a repeat is a no-op.

        With ``alert_at``, an ops alert about the event (which arrived at ``arrived_at``) falls due then
        (``unmatched_alerts_due``), kept as long as the event: a repeat keeps the first one, sent or not, so
        a redelivery never alerts twice.
        """
        ...

    def unmatched_alerts_due(self, until: datetime, *, limit: int, cursor: str | None = None) -> UnmatchedAlertPage:
        """One page of the unmatched alerts due at or before ``until``, earliest first (unsent ones only)."""
        ...

    def claim_unmatched_alert(
        self, alert: UnmatchedAlert, *, token: str, now: datetime, lease_until: datetime
    ) -> ClaimedAlert | None:
        """Take an alert to send: due and unsent, or claimed with its lease run out (a crashed sender's).

        None: its event no longer waits (applied; the alert is dropped), or another sweep holds it, or
        it was sent. While claimed it stays due at ``lease_until``."""
        ...

    def finish_unmatched_alert(self, alert: UnmatchedAlert, *, token: str, at: datetime, message_id: str) -> bool:
        """Mark a claimed alert sent (kept until its event would be dropped); False when the claim was lost."""
        ...

    def unmatched(self, *, limit: int, cursor: str | None = None) -> WaitingPage:
        """Every waiting event, soonest dropped first, one page (what ops see as unmatched)."""
        ...

    def waiting(self, key: str) -> tuple[CanonicalEvent, ...]:
        """The events waiting under ``key`` (those released by a commit are gone), oldest stamp first."""
        ...

    def claim_mail(
        self, appointment_id: str, mail_key: str, *, token: str, now: datetime, lease_until: datetime
    ) -> OutboxMail | None:
        """Take a mail to send: pending and due, or sending with its lease run out. None: someone else has it,
        or it is sent or failed. While claimed it stays in the due index at ``lease_until`` (a crash is retried)."""
        ...

    def finish_mail(
        self,
        appointment_id: str,
        mail_key: str,
        *,
        token: str,
        at: datetime,
        message_id: str,
        status: MailStatus = ...,
    ) -> bool:
        """Mark a claimed mail sent (or ``SKIPPED``); False when the claim was lost (its lease ran out and
        another took it)."""
        ...

    def release_mail(self, appointment_id: str, mail_key: str, *, token: str, retry_at: datetime) -> None:
        """Give a claimed mail back, pending again, due at ``retry_at`` (a throttled or failed attempt)."""
        ...

    def claim_publish(self, appointment_id: str, history_key: str, at: datetime) -> bool:
        """About to publish a history entry's domain event: False when it was published already (a replayed
        record). An attempt that failed before ``mark_published`` leaves it unpublished: the retry publishes."""
        ...

    def mark_published(self, appointment_id: str, history_key: str, at: datetime) -> None:
        """The bus took the entry's domain event."""
        ...


class SchedulingRequestPage(Protocol):
    """One page of a vendor's changed scheduling requests (TimeZest)."""

    @property
    def items(self) -> Sequence[Mapping[str, Any]]: ...

    @property
    def next_page(self) -> int | None: ...


class SchedulingRequests(Protocol):
    """The TimeZest API as the poller uses it.

    Raises ``VendorRateLimited``, ``VendorUnavailable`` or ``VendorRefused``.
    """

    def changed(self, *, since: int, until: int, page: int, starting_from: int | None = None) -> SchedulingRequestPage:
        """Requests updated in ``[since, until]`` (Unix seconds), one page (1-based); with ``starting_from``,
        only those whose selected start is at or after it."""
        ...

    def durations(self) -> dict[str, int]:
        """Appointment type id → duration in minutes (every page)."""
        ...


class PollStateStore(Protocol):
    def poll_state(self, poller: str) -> PollState | None:
        """The poller's saved cursor and rate budget, or None before its first run."""
        ...

    def save_poll_state(self, poller: str, state: PollState) -> bool:
        """Save ``state`` if the stored one is still ``state.version - 1`` (or absent for 1); False if another
        run saved meanwhile (its cursor wins; this run's events are queued and deduplicated anyway)."""
        ...


@dataclass(frozen=True)
class PsaNote:
    """A note for a ticket. ``reference`` (the domain event's id) is written into the note, so a retry can
    look for it before posting again."""

    title: str
    text: str
    reference: str
    internal: bool = True  # not shown to the ticket's contact


class PsaTickets(Protocol):
    """One PSA's tickets as the write-back changes them. Raises ``VendorRateLimited``, ``VendorUnavailable``
    (try later) or ``VendorRefused`` (``status`` 404: the ticket is gone; other 4xx: refused for good)."""

    system: str  # autotask, connectwise, halopsa: the ``TicketRef.system`` it serves

    def set_status(self, ticket_id: str, status: str) -> None:
        """Set the ticket's status (idempotent: setting the status it has changes nothing)."""
        ...

    def add_note(self, ticket_id: str, note: PsaNote) -> None:
        """Add a note to the ticket (not idempotent: call ``has_note`` first when retrying)."""
        ...

    def has_note(self, ticket_id: str, reference: str) -> bool:
        """Whether a note carrying ``reference`` is already on the ticket."""
        ...
