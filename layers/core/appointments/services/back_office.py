"""The back office: every action a dispatcher takes on an appointment (docs/ops-api.md).

Each action reads the appointment, decides through the lifecycle, adds the customer mail the seeds
say the customer gets (reschedule, request-reschedule, reassign, confirm, cancel, defer, a contact
attempt that did not reach them; never an internal note), re-arms the timed rules' next check, and
commits all of it in one transaction conditioned on the version it read. ``If-Match`` pins that
version: a stale one is a 412. Without it, a concurrent writer is re-read and the action decided again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from appointments.domain import lifecycle
from appointments.domain.ids import new_ulid
from appointments.domain.model import CancelledBy, ContactOutcome, Status
from appointments.domain.outbox import MailKind, NoShowMailBy, OutboxMail, no_show_mail
from appointments.domain.rules import RuleTimings, armed
from appointments.errors import (
    AppointmentNotFound,
    CouponCodeTaken,
    InvalidInput,
    PreconditionFailed,
    VersionConflict,
)
from appointments.ports import AppointmentPage, WaitingPage

if TYPE_CHECKING:
    from appointments.domain.appointment_types import AppointmentTypeCatalog
    from appointments.domain.coupons import CouponPolicy
    from appointments.domain.lifecycle import AppointmentDraft, Change
    from appointments.domain.model import Actor, Appointment, ExternalRef, Technician, TicketRef
    from appointments.ports import AppointmentRecord, AppointmentStore, Clock

ATTEMPTS = 3
DEFAULT_LIST_DAYS = 14
# A search (``q``) without from/to looks at the week behind and the month ahead.
SEARCH_BEHIND = timedelta(days=7)
SEARCH_AHEAD = timedelta(days=30)


# -- commands: what a dispatcher asks for -------------------------------------------------------


@dataclass(frozen=True)
class Reschedule:
    start: datetime
    end: datetime | None = None
    message: str | None = None


@dataclass(frozen=True)
class RequestReschedule:
    message: str | None = None


@dataclass(frozen=True)
class Reassign:
    technicians: tuple[Technician, ...]
    message: str | None = None


@dataclass(frozen=True)
class Confirm:
    message: str | None = None


@dataclass(frozen=True)
class Cancel:
    reason: str
    message: str | None = None
    offer_discount: bool = True


@dataclass(frozen=True)
class Complete:
    duration_minutes: int
    outcome: str
    reason: str | None = None


@dataclass(frozen=True)
class Reopen:
    pass


@dataclass(frozen=True)
class NoShow:
    note: str | None = None


@dataclass(frozen=True)
class CheckIn:
    pass


@dataclass(frozen=True)
class AddNote:
    text: str


@dataclass(frozen=True)
class LogContactAttempt:
    outcome: ContactOutcome
    note: str | None = None


@dataclass(frozen=True)
class SetHold:
    on: bool
    reason: str | None = None


@dataclass(frozen=True)
class Defer:
    weeks: int = 4
    message: str | None = None


Command = (
    Reschedule
    | RequestReschedule
    | Reassign
    | Confirm
    | Cancel
    | Complete
    | Reopen
    | NoShow
    | CheckIn
    | AddNote
    | LogContactAttempt
    | SetHold
    | Defer
)


@dataclass(frozen=True)
class AppointmentQuery:
    start_from: datetime | None = None
    start_to: datetime | None = None
    status: Status | None = None
    unassigned: bool | None = None
    technician: str | None = None
    external_ref: ExternalRef | None = None
    ticket: TicketRef | None = None  # system and id: the ticket link's key (its number is not)
    text: str | None = None  # ``q``: a case-insensitive part of the customer, ticket number or an id
    limit: int = 50
    cursor: str | None = None


@dataclass(frozen=True)
class BackOfficePolicy:
    coupons: CouponPolicy
    timings: RuleTimings = field(default_factory=RuleTimings)
    no_show_mail_by: NoShowMailBy = NoShowMailBy.DESK  # as the no-show rule's (``SweepPolicy``)


class BackOffice:
    def __init__(
        self, store: AppointmentStore, clock: Clock, catalog: AppointmentTypeCatalog, policy: BackOfficePolicy
    ) -> None:
        self._store = store
        self._clock = clock
        self._catalog = catalog
        self._policy = policy

    # -- reads -------------------------------------------------------------------------------------

    def detail(self, appointment_id: str) -> AppointmentRecord:
        return self._store.load(appointment_id)

    def find(self, query: AppointmentQuery) -> AppointmentPage:
        if query.external_ref is not None:
            found = self._store.find_by_external_ref(query.external_ref)
            items = () if found is None else (self._store.get(found),)
            return AppointmentPage(items=tuple(a for a in items if _matches(a, query)), next_cursor=None)
        if query.ticket is not None:
            linked = [self._linked(appointment_id) for appointment_id in self._store.find_by_ticket(query.ticket)]
            on_ticket = sorted(
                (a for a in linked if a is not None and _matches(a, query)), key=lambda a: (a.start, a.id)
            )
            return AppointmentPage(items=tuple(on_ticket[: query.limit]), next_cursor=None)
        now = self._clock.now()
        if query.text is not None:
            start_from = query.start_from or now - SEARCH_BEHIND
            start_to = query.start_to or (
                start_from + SEARCH_BEHIND + SEARCH_AHEAD if query.start_from else now + SEARCH_AHEAD
            )
        else:
            start_from = query.start_from or now.replace(hour=0, minute=0, second=0, microsecond=0)
            start_to = query.start_to or start_from + timedelta(days=DEFAULT_LIST_DAYS)
        if start_to <= start_from:
            raise InvalidInput("to", "must be after from")
        page = self._store.list_between(start_from, start_to, query.limit, query.cursor)
        return AppointmentPage(items=tuple(a for a in page.items if _matches(a, query)), next_cursor=page.next_cursor)

    def unmatched(self, *, limit: int, cursor: str | None) -> WaitingPage:
        """Events that wait for a booking (or a ticket) the desk does not hold yet."""
        return self._store.unmatched(limit=limit, cursor=cursor)

    def _linked(self, appointment_id: str) -> Appointment | None:
        try:
            return self._store.get(appointment_id)
        except AppointmentNotFound:  # the link outlived its appointment
            return None

    # -- writes ------------------------------------------------------------------------------------

    def create(self, draft: AppointmentDraft, *, actor: Actor) -> Appointment:
        """A booking agreed by phone: ours, so the customer gets our confirmation."""
        at = self._clock.now()
        change = lifecycle.create(draft, appointment_id=new_ulid(at), catalog=self._catalog, at=at, actor=actor)
        _ahead(draft.start, at)
        change = self._customer_mail(change, MailKind.CONFIRMATION, {})
        change = armed(change, self._catalog, self._policy.timings)
        self._store.commit(change)
        return change.after

    def act(self, appointment_id: str, command: Command, *, actor: Actor, if_match: int | None = None) -> Appointment:
        for remaining in reversed(range(ATTEMPTS)):
            appointment = self._store.get(appointment_id)
            if if_match is not None and appointment.version != if_match:
                raise PreconditionFailed(appointment_id, if_match, appointment.version)
            at = self._clock.now()
            change = armed(self._decide(appointment, command, actor, at), self._catalog, self._policy.timings)
            try:
                self._store.commit(change)
            except CouponCodeTaken:
                if remaining == 0:
                    raise
                continue  # decided again: a fresh code is drawn
            except VersionConflict:
                if if_match is not None:
                    raise PreconditionFailed(appointment_id, if_match, None) from None
                if remaining == 0:
                    raise
                continue
            return change.after
        raise AssertionError("unreachable")  # pragma: no cover

    def _decide(self, appointment: Appointment, command: Command, actor: Actor, at: datetime) -> Change:  # noqa: C901 - one branch per command
        match command:
            case Reschedule(start=start, end=end, message=message):
                change = lifecycle.reschedule(appointment, start=start, end=end, at=at, actor=actor, message=message)
                _ahead(start, at)
                return self._customer_mail(change, MailKind.RESCHEDULED, _said(message))
            case RequestReschedule(message=message):
                change = lifecycle.request_reschedule(appointment, at=at, actor=actor, message=message)
                return self._customer_mail(change, MailKind.RESCHEDULE_REQUEST, _said(message))
            case Reassign(technicians=technicians, message=message):
                change = lifecycle.reassign(appointment, technicians, at=at, actor=actor, message=message)
                return self._customer_mail(change, MailKind.REASSIGNED, _said(message))
            case Confirm(message=message):
                change = lifecycle.confirm(appointment, at=at, actor=actor, message=message)
                return self._customer_mail(change, MailKind.CONFIRMATION, _said(message))
            case Cancel():
                return self._cancel(appointment, command, actor, at)
            case Complete(duration_minutes=minutes, outcome=outcome, reason=reason):
                return lifecycle.complete(
                    appointment, duration_minutes=minutes, outcome=outcome, reason=reason, at=at, actor=actor
                )
            case Reopen():
                return lifecycle.reopen(appointment, at=at, actor=actor)
            case NoShow(note=note):
                # A dispatcher's no-show is not mailed by the desk; the PSA may mail it when the ticket is set.
                told = "psa" if no_show_mail(appointment, self._policy.no_show_mail_by) == NoShowMailBy.PSA else "none"
                change = lifecycle.mark_no_show(appointment, at=at, actor=actor, note=note)
                return change.with_history_detail({"mail": told})
            case CheckIn():
                return lifecycle.check_in(appointment, at=at, actor=actor)
            case AddNote(text=text):
                return lifecycle.add_note(appointment, text=text, at=at, actor=actor)
            case LogContactAttempt(outcome=outcome, note=note):
                change = lifecycle.record_contact_attempt(appointment, outcome=outcome, at=at, actor=actor, note=note)
                if outcome is ContactOutcome.REACHED:
                    return change
                # Voicemail, busy, no answer: the customer gets the link to pick a time themselves.
                return self._customer_mail(change, MailKind.CONTACT_ATTEMPT, {"outcome": outcome.value})
            case SetHold(on=on, reason=reason):
                return lifecycle.set_hold(appointment, on=on, reason=reason, at=at, actor=actor)
            case Defer(weeks=weeks, message=message):
                change = lifecycle.defer(appointment, weeks=weeks, at=at, actor=actor, message=message)
                return self._customer_mail(change, MailKind.RESCHEDULED, _said(message))
        raise TypeError(f"not a back-office command: {command!r}")

    def _cancel(self, appointment: Appointment, command: Cancel, actor: Actor, at: datetime) -> Change:
        # Checked before a coupon is drawn: a refused cancel must not burn a code.
        lifecycle.target_status(appointment.status, lifecycle.A.CANCEL)
        coupon = self._policy.coupons.offer(appointment, at=at) if command.offer_discount else None
        change = lifecycle.cancel(
            appointment,
            by=CancelledBy.OPS,
            reason=command.reason,
            message=command.message,
            coupon=coupon,
            at=at,
            actor=actor,
        )
        context: dict[str, Any] = {**_said(command.message), "reason": command.reason}
        if coupon is not None:
            context["coupon"] = {
                "code": coupon.code,
                "percent": coupon.percent,
                "expires_at": coupon.expires_at.isoformat(),
            }
        return self._customer_mail(change, MailKind.CANCELLED, context)

    def _customer_mail(self, change: Change, kind: MailKind, context: dict[str, Any]) -> Change:
        email = change.after.customer.email
        if email is None:
            return change
        return change.with_mails(
            OutboxMail.for_change(kind, change.after, to=(email,), at=change.after.updated_at, context=context)
        )


def _ahead(start: datetime, at: datetime) -> None:
    """Ops book and move appointments ahead only: a start already past would be missed before it is mailed
    (the timed rules would mark it a no-show at once). Defer refuses the same in the lifecycle."""
    if start <= at:
        raise InvalidInput("start", f"must be in the future: it is {at.isoformat()} now")


def _said(message: str | None) -> dict[str, Any]:
    return {"message": message} if message else {}


def _matches(appointment: Appointment, query: AppointmentQuery) -> bool:
    ticket = appointment.ticket
    if query.ticket is not None and (
        ticket is None or (ticket.system, ticket.id) != (query.ticket.system, query.ticket.id)
    ):
        return False
    if query.status is not None and appointment.status is not query.status:
        return False
    if query.unassigned is not None and appointment.is_assigned == query.unassigned:
        return False
    if query.text is not None and not _says(appointment, query.text):
        return False
    return query.technician is None or any(t.id == query.technician for t in appointment.technicians)


def _says(appointment: Appointment, text: str) -> bool:
    """``text`` (case-insensitive) in the customer's name, email or company, the ticket's number or id, the
    appointment's id or one of its external ids (``calcom:<uid>`` or the bare uid)."""
    wanted = text.casefold()
    customer, ticket = appointment.customer, appointment.ticket
    fields = [customer.name, customer.email, customer.company, appointment.id]
    if ticket is not None:
        fields += [ticket.number, ticket.id]
    fields += [str(ref) for ref in appointment.external_refs]
    return any(value is not None and wanted in value.casefold() for value in fields)
