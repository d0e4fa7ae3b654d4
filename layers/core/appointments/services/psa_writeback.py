"""The PSA write-back: each domain event of an appointment linked to a ticket, written to that ticket.

``domain.psa_writeback`` decides what (a status, a note, both, or nothing); this service writes it through
the ticket's PSA (``PsaTickets``) and records the outcome in the appointment's history, once per event:

- **Exactly once per event.** An event already recorded as ``psa_written`` is skipped without a call to the
  PSA. Otherwise the status is set (idempotent), and the note is posted only if the ticket does not carry
  it already: each note holds the event's id, so a retry after a crash between the PSA taking the note and
  the history entry looks for it first and never posts a second note.
- **Retries.** A ``429`` waits for its ``Retry-After``, a vendor that fails or times out is retried with
  back-off (1, 2, 4 s), while the invocation has time. Then the event fails: Lambda retries it twice more,
  and after that it lands in the dead-letter queue (with its alarm).
- **Failures are told.** A write that fails for good (the PSA refused it, or every retry failed) is
  recorded once as ``psa_writeback_failed`` with an ops alert in the same transaction. A ticket that no longer
  exists (``404``) is recorded and alerted the same way and not retried: retrying cannot bring it back.
- **The echo.** A status we set comes back as the PSA's ticket webhook; ``psa_statuses`` on the
  appointment lets the processor recognise it as our own change (``psa_echo``).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from appointments.domain import lifecycle
from appointments.domain.history import Record
from appointments.domain.model import Actor, ActorKind
from appointments.domain.outbox import OutboxMail
from appointments.domain.psa_writeback import AppointmentEvent, TicketWrite, WritebackPolicy, ticket_write
from appointments.errors import (
    AppError,
    AppointmentNotFound,
    ConfigError,
    VendorRateLimited,
    VendorRefused,
    VendorUnavailable,
    VersionConflict,
)
from appointments.ports import PsaNote

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from appointments.ports import AppointmentRecord, AppointmentStore, Clock, PsaTickets

logger = logging.getLogger(__name__)

ATTEMPTS = 4  # tries per invocation: 0, 1, 2 and 4 s apart (Retry-After for a 429)
COMMIT_ATTEMPTS = 3


class Written(StrEnum):
    WRITTEN = "written"
    ALREADY = "already_written"  # a redelivered event: recorded before, nothing sent again
    SKIPPED = "skipped"  # nothing to write (no ticket, no PSA configured, a change the PSA made)
    FAILED = "failed"  # recorded and alerted; the event is failed for Lambda to retry, then dead-lettered
    TICKET_GONE = "ticket_gone"  # recorded and alerted; not retried


class PsaWritebackFailed(AppError):
    """The ticket could not be written now: the event is retried, then dead-lettered (already recorded)."""

    code = "psa_writeback_failed"
    retryable = True


@dataclass(frozen=True)
class WritebackSettings:
    rules: WritebackPolicy
    ops_alert_email: str
    reserve_seconds: float = 3.0  # never start a wait that would end with less time than this left


def _unlimited() -> float:
    return float("inf")


class PsaWriteback:
    def __init__(
        self,
        store: AppointmentStore,
        psas: Mapping[str, PsaTickets],
        clock: Clock,
        sleep: Callable[[float], None],
        settings: WritebackSettings,
    ) -> None:
        self._store = store
        self._psas = dict(psas)
        self._clock = clock
        self._sleep = sleep
        self._settings = settings

    def handle(self, detail: Mapping[str, Any], *, seconds_left: Callable[[], float] = _unlimited) -> Written:
        """One domain event's ``detail`` (docs/events.md)."""
        try:
            event = AppointmentEvent.model_validate(detail)
        except ValidationError:
            logger.error(
                "a domain event the write-back cannot read; skipped", extra={"event_id": detail.get("event_id")}
            )
            return Written.SKIPPED
        plan = ticket_write(event, self._settings.rules)
        where = {"event_id": event.event_id, "action": event.action}
        if isinstance(plan, str):
            logger.debug("nothing to write back", extra={**where, "why": plan})
            return Written.SKIPPED
        psa = self._psas.get(plan.system)
        if psa is None:
            logger.info(
                "no PSA credentials for the ticket's system; not written", extra={**where, "system": plan.system}
            )
            return Written.SKIPPED
        try:
            record = self._store.load(event.appointment.id)
        except AppointmentNotFound:
            return Written.SKIPPED  # merged into another appointment: its own events carry on
        if _recorded(record.history, Record.PSA_WRITTEN, event.event_id):
            return Written.ALREADY
        try:
            attempts = self._write(psa, plan, seconds_left)
        except VendorRefused as refused:
            gone = refused.status == 404
            reason = f"the ticket no longer exists in {plan.system}" if gone else f"{plan.system} refused the write"
            self._record_failure(event, plan, f"{reason} ({refused.status})", 1, record)
            if gone:
                return Written.TICKET_GONE
            raise PsaWritebackFailed(reason) from None
        except ConfigError as wrong:
            # A ticket id or status the PSA cannot hold (text where it takes numbers): retrying cannot help.
            self._record_failure(event, plan, wrong.message, 1, record)
            raise PsaWritebackFailed(wrong.message) from None
        except _GaveUp as gave_up:
            self._record_failure(event, plan, gave_up.reason, gave_up.attempts, record)
            raise PsaWritebackFailed(gave_up.reason) from None
        self._record_written(event, plan, attempts, record)
        logger.info("written back", extra={**where, "system": plan.system, "attempts": attempts})
        return Written.WRITTEN

    # -- writing ---------------------------------------------------------------------------------

    def _write(self, psa: PsaTickets, plan: TicketWrite, seconds_left: Callable[[], float]) -> int:
        """Status, then note (unless already on the ticket); retried as the module says. The attempts used."""
        wait, reason = 0.0, ""
        for attempt in range(1, ATTEMPTS + 1):
            if wait:
                if seconds_left() - wait < self._settings.reserve_seconds:
                    raise _GaveUp(f"{reason}; no time left to wait {wait:g} s", attempt - 1)
                self._sleep(wait)
            try:
                if plan.status is not None:
                    psa.set_status(plan.ticket_id, plan.status)
                if plan.text is not None and not psa.has_note(plan.ticket_id, plan.reference):
                    note = PsaNote(
                        title=plan.title or "", text=plan.text, reference=plan.reference, internal=plan.internal
                    )
                    psa.add_note(plan.ticket_id, note)
            except VendorRateLimited as limited:
                wait, reason = limited.retry_after, f"{plan.system} is rate limiting"
            except VendorUnavailable as unavailable:
                wait, reason = float(2 ** (attempt - 1)), unavailable.message
            else:
                return attempt
        raise _GaveUp(f"{reason}, after {ATTEMPTS} attempts", ATTEMPTS)

    # -- recording -------------------------------------------------------------------------------

    def _record_written(
        self, event: AppointmentEvent, plan: TicketWrite, attempts: int, loaded: AppointmentRecord
    ) -> None:
        detail = {
            "system": plan.system,
            "ticket": plan.ticket_id,
            "status": plan.status,
            "note": plan.has_note,
            "event_id": event.event_id,
            "attempts": attempts,
        }

        def change(record: Any) -> lifecycle.Change | None:
            if _recorded(record.history, Record.PSA_WRITTEN, event.event_id):
                return None
            appointment = record.appointment
            done = lifecycle.record(appointment, Record.PSA_WRITTEN, at=self._clock.now(), actor=_ACTOR, detail=detail)
            if plan.status is None:
                return done
            statuses = {**appointment.psa_statuses, plan.system: plan.status}
            return lifecycle.Change(done.before, done.after.model_copy(update={"psa_statuses": statuses}), done.history)

        self._commit(event.appointment.id, change, loaded)

    def _record_failure(
        self, event: AppointmentEvent, plan: TicketWrite, reason: str, attempts: int, loaded: AppointmentRecord
    ) -> None:
        detail = {
            "system": plan.system,
            "ticket": plan.ticket_id,
            "event_id": event.event_id,
            "action": event.action,
            "reason": reason,
            "attempts": attempts,
        }

        def change(record: Any) -> lifecycle.Change | None:
            # Lambda retries a failed event twice: the failure is told once.
            if _recorded(record.history, Record.PSA_WRITEBACK_FAILED, event.event_id):
                return None
            at = self._clock.now()
            failed = lifecycle.record(
                record.appointment, Record.PSA_WRITEBACK_FAILED, at=at, actor=_ACTOR, detail=detail
            )
            alert = OutboxMail.ops_alert(
                failed.after,
                code=f"psa#{hashlib.sha256(event.event_id.encode()).hexdigest()[:16]}",
                subject=f"the ticket in {plan.system} could not be updated: {reason}",
                to=(self._settings.ops_alert_email,),
                at=at,
                context={**detail, "write": _what(plan)},
            )
            return failed.with_mails(alert)

        self._commit(event.appointment.id, change, loaded)
        logger.warning("write-back failed", extra={"event_id": event.event_id, "system": plan.system, "why": reason})

    def _commit(
        self, appointment_id: str, build: Callable[[Any], lifecycle.Change | None], loaded: AppointmentRecord
    ) -> None:
        """``build``'s change committed on the record ``handle`` loaded; reloaded only when someone else
        committed meanwhile (the write to the PSA took seconds): one read per event, not two."""
        record: AppointmentRecord | None = loaded
        for remaining in reversed(range(COMMIT_ATTEMPTS)):
            if record is None:
                try:
                    record = self._store.load(appointment_id)
                except AppointmentNotFound:
                    return
            change = build(record)
            if change is None:
                return
            try:
                self._store.commit(change)
                return
            except VersionConflict:
                if remaining == 0:
                    raise
                record = None


_ACTOR = Actor(kind=ActorKind.SYSTEM, id="psa_writeback")


class _GaveUp(Exception):
    def __init__(self, reason: str, attempts: int) -> None:
        super().__init__(reason)
        self.reason, self.attempts = reason, attempts


def _recorded(history: Any, record: Record, event_id: str) -> bool:
    return any(entry.action is record and entry.detail.get("event_id") == event_id for entry in history)


def _what(plan: TicketWrite) -> str:
    parts = ([f"status {plan.status}"] if plan.status else []) + (["a note"] if plan.has_note else [])
    return " and ".join(parts)
