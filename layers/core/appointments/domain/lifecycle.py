"""The appointment lifecycle: which action is allowed in which status, and what each one changes.

Every operation takes the current appointment and returns a ``Change``: the state after, the history
entries that explain it, and (added by services) the mails it causes. The store commits a change in
one transaction, conditioned on the version it was computed from.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from appointments.domain.history import NEEDS_A_HUMAN, Action, HistoryEntry, Record
from appointments.domain.model import (
    Actor,
    Answer,
    Appointment,
    Cancellation,
    CancelledBy,
    Completion,
    ContactAttempt,
    ContactOutcome,
    Coupon,
    Customer,
    Discount,
    ExternalRef,
    Fact,
    Frozen,
    Hold,
    Links,
    Note,
    Stamp,
    Status,
    Technician,
    TicketRef,
    TimeZoneName,
    UtcDatetime,
    with_primary,
)
from appointments.errors import InvalidInput, InvalidTransition

if TYPE_CHECKING:
    from collections.abc import Mapping

    from appointments.domain.appointment_types import AppointmentTypeCatalog
    from appointments.domain.outbox import OutboxMail

S = Status
A = Action

TRANSITIONS: Mapping[Status, Mapping[Action, Status]] = {
    S.REQUESTED: {
        A.CONFIRM: S.SCHEDULED,
        A.RESCHEDULE: S.SCHEDULED,
        A.DEFER: S.SCHEDULED,
        A.REQUEST_RESCHEDULE: S.REQUESTED,
        A.REASSIGN: S.REQUESTED,
        A.CANCEL: S.CANCELLED,
        A.NOTE: S.REQUESTED,
        A.CONTACT_ATTEMPT: S.REQUESTED,
    },
    S.SCHEDULED: {
        A.RESCHEDULE: S.SCHEDULED,
        A.DEFER: S.SCHEDULED,
        A.REQUEST_RESCHEDULE: S.REQUESTED,
        A.REASSIGN: S.SCHEDULED,
        A.CHECK_IN: S.SCHEDULED,
        A.HOLD: S.SCHEDULED,
        A.NOTE: S.SCHEDULED,
        A.CONTACT_ATTEMPT: S.SCHEDULED,
        A.COMPLETE: S.COMPLETED,
        A.NO_SHOW: S.NO_SHOW,
        A.CANCEL: S.CANCELLED,
        A.REMINDER: S.SCHEDULED,
        A.PRE_NOTICE: S.SCHEDULED,
        A.AUTO_CANCEL: S.CANCELLED,
    },
    S.COMPLETED: {A.REOPEN: S.SCHEDULED, A.NOTE: S.COMPLETED},
    S.NO_SHOW: {A.REOPEN: S.SCHEDULED, A.NOTE: S.NO_SHOW, A.CONTACT_ATTEMPT: S.NO_SHOW},
    S.CANCELLED: {},
}

# The facts each action sets: they are stamped with the change's time, so an older vendor event
# (a retry, a late delivery) never undoes what a dispatcher or the rules decided.
FACTS_SET: Mapping[Action, tuple[Fact, ...]] = {
    A.RESCHEDULE: (Fact.TIME,),
    A.DEFER: (Fact.TIME,),
    A.REASSIGN: (Fact.TECHNICIANS,),
    A.CHECK_IN: (Fact.CHECK_IN,),
    **dict.fromkeys(
        (A.CONFIRM, A.REQUEST_RESCHEDULE, A.CANCEL, A.AUTO_CANCEL, A.COMPLETE, A.NO_SHOW, A.REOPEN), (Fact.STATUS,)
    ),
}

# Actions only the timed rules take; an ops caller is never told they are available.
SYSTEM_ACTIONS = frozenset({A.REMINDER, A.PRE_NOTICE, A.AUTO_CANCEL})


def allowed_actions(status: Status) -> tuple[Action, ...]:
    """The actions a caller may take in ``status``, in table order (empty for cancelled)."""
    return tuple(action for action in TRANSITIONS[status] if action not in SYSTEM_ACTIONS)


def target_status(status: Status, action: Action) -> Status:
    try:
        return TRANSITIONS[status][action]
    except KeyError:
        raise InvalidTransition(status=status, action=action, allowed=allowed_actions(status)) from None


@dataclass(frozen=True)
class Change:
    """One atomic change of an appointment: state, history and the mails it causes."""

    before: Appointment | None
    after: Appointment
    history: tuple[HistoryEntry, ...]
    mails: tuple[OutboxMail, ...] = ()
    # Waiting events (wait key, delivery id) this change applied: removed in the same transaction.
    released: tuple[tuple[str, str], ...] = ()
    # Another appointment found to be the same booking (a reschedule chain delivered out of order): it is
    # removed in the same transaction and its external ids move to this one.
    absorbed: Appointment | None = None
    # A claimed mail (key, claim token) this change records as failed for good, in the same transaction.
    failed_mail: tuple[str, str] | None = None

    @property
    def expected_version(self) -> int | None:
        return None if self.before is None else self.before.version

    @property
    def new_external_refs(self) -> tuple[ExternalRef, ...]:
        known = (() if self.before is None else self.before.external_refs) + self.moved_external_refs
        return tuple(ref for ref in self.after.external_refs if ref not in known)

    @property
    def moved_external_refs(self) -> tuple[ExternalRef, ...]:
        """External ids the absorbed appointment held, now this one's."""
        return () if self.absorbed is None else self.absorbed.external_refs

    @property
    def new_coupon(self) -> Coupon | None:
        """The coupon this change issues, to be claimed so no two appointments ever share a code."""
        coupon = self.after.cancellation.coupon if self.after.cancellation is not None else None
        before = self.before.cancellation.coupon if self.before and self.before.cancellation else None
        return coupon if coupon is not None and coupon != before else None

    @property
    def new_ticket(self) -> TicketRef | None:
        """The ticket to link, when the change links the appointment to a ticket it was not on."""
        ticket = self.after.ticket
        before = None if self.before is None else self.before.ticket
        return None if ticket is None or _same_ticket(before, ticket) else ticket

    @property
    def dropped_ticket(self) -> TicketRef | None:
        """The ticket to unlink, when the change moves the appointment off it."""
        before = None if self.before is None else self.before.ticket
        return None if before is None or _same_ticket(before, self.after.ticket) else before

    def with_mails(self, *mails: OutboxMail) -> Change:
        return replace(self, mails=self.mails + mails)

    def with_history(self, *entries: HistoryEntry) -> Change:
        return replace(self, history=self.history + entries)

    def with_history_detail(self, detail: Mapping[str, Any]) -> Change:
        """The same change, its history entries telling more (when a rule was due, who asked for the run)."""
        entries = tuple(entry.model_copy(update={"detail": {**entry.detail, **detail}}) for entry in self.history)
        return replace(self, history=entries)


def _same_ticket(a: TicketRef | None, b: TicketRef | None) -> bool:
    """One ticket whatever its display number: tickets are identified by system and id."""
    return a is not None and b is not None and (a.system, a.id) == (b.system, b.id)


class AppointmentDraft(Frozen):
    """What it takes to create an appointment, from the ops API or a vendor's booking."""

    status: Status = Status.SCHEDULED
    start: UtcDatetime
    end: UtcDatetime
    timezone: TimeZoneName
    type: str
    customer: Customer
    technicians: tuple[Technician, ...] = ()
    ticket: TicketRef | None = None
    external_refs: tuple[ExternalRef, ...] = ()
    links: Links = Links()
    discount: Discount | None = None
    answers: tuple[Answer, ...] = ()
    metadata: dict[str, Any] = {}


def create(
    draft: AppointmentDraft,
    *,
    appointment_id: str,
    catalog: AppointmentTypeCatalog,
    at: datetime,
    actor: Actor,
    detail: Mapping[str, Any] | None = None,
) -> Change:
    catalog.get(draft.type)
    if draft.status not in (Status.REQUESTED, Status.SCHEDULED):
        raise InvalidInput("status", f"a new appointment is requested or scheduled, not {draft.status}")
    if draft.end <= draft.start:
        raise InvalidInput("end", "must be after start")
    stamp = Stamp.of_change(at, actor)
    after = Appointment(
        id=appointment_id,
        **draft.model_dump(exclude={"technicians"}),
        technicians=with_primary(draft.technicians),
        exposed_since=None if draft.technicians else at,
        start_set_at=at,
        fact_stamps=dict.fromkeys((fact for fact in Fact if fact is not Fact.CHECK_IN), stamp),
        created_at=at,
        updated_at=at,
        version=1,
    )
    entry = HistoryEntry(
        at=at, actor=actor, action=A.CREATE, from_status=None, to_status=after.status, detail=dict(detail or {})
    )
    return Change(before=None, after=after, history=(entry,))


def _apply(
    appointment: Appointment,
    action: Action,
    *,
    at: datetime,
    actor: Actor,
    detail: Mapping[str, Any] | None = None,
    **updates: Any,
) -> Change:
    to_status = target_status(appointment.status, action)
    if facts := FACTS_SET.get(action):
        updates["fact_stamps"] = {**appointment.fact_stamps, **dict.fromkeys(facts, Stamp.of_change(at, actor))}
    after = evolve(appointment, at=at, status=to_status, **updates)
    entry = HistoryEntry(
        at=at,
        actor=actor,
        action=action,
        from_status=appointment.status,
        to_status=to_status,
        detail=dict(detail or {}),
    )
    return Change(before=appointment, after=after, history=(entry,))


def evolve(appointment: Appointment, *, at: datetime, **updates: Any) -> Appointment:
    """The next version, validated as a whole so no change can break an invariant."""
    fields = dict(appointment)
    fields.update(updates, updated_at=at, version=appointment.version + 1)
    fields.update(watched(appointment, fields, at=at))
    return Appointment.model_validate(fields)


def watched(before: Appointment, fields: Mapping[str, Any], *, at: datetime) -> dict[str, Any]:
    """``start_set_at`` and ``exposed_since`` for the next version (``fields``) of ``before``, changed at ``at``."""
    moved = fields["start"] != before.start
    released = before.hold is not None and fields["hold"] is None
    if fields["technicians"]:
        exposed = None
    elif moved or released or before.technicians or before.exposed_since is None:
        exposed = at
    else:
        exposed = before.exposed_since
    return {"start_set_at": at if moved else before.start_set_at, "exposed_since": exposed}


def confirm(appointment: Appointment, *, at: datetime, actor: Actor, message: str | None = None) -> Change:
    return _apply(appointment, A.CONFIRM, at=at, actor=actor, detail=_message(message))


def reschedule(
    appointment: Appointment,
    *,
    start: datetime,
    end: datetime | None = None,
    at: datetime,
    actor: Actor,
    message: str | None = None,
) -> Change:
    """A new time. Without ``end`` the appointment keeps its length. Check-in and no-show are reset."""
    new_end = end if end is not None else start + (appointment.end - appointment.start)
    if new_end <= start:
        raise InvalidInput("end", "must be after start")
    return _apply(
        appointment,
        A.RESCHEDULE,
        at=at,
        actor=actor,
        detail={
            **_times("from", appointment.start, appointment.end),
            **_times("to", start, new_end),
            **_message(message),
        },
        start=start,
        end=new_end,
        checked_in_at=None,
    )


def defer(
    appointment: Appointment, *, weeks: int = 4, at: datetime, actor: Actor, message: str | None = None
) -> Change:
    """The customer is unsure: push the appointment ``weeks`` out, keeping its discount or coupon."""
    if not 1 <= weeks <= 52:
        raise InvalidInput("weeks", "must be between 1 and 52")
    shift = timedelta(weeks=weeks)
    start, end = appointment.start + shift, appointment.end + shift
    if start <= at:
        raise InvalidInput("weeks", f"moving the start {weeks} week(s) still leaves it in the past")
    return _apply(
        appointment,
        A.DEFER,
        at=at,
        actor=actor,
        detail={
            "weeks": weeks,
            **_times("from", appointment.start, appointment.end),
            **_times("to", start, end),
            **_message(message),
        },
        start=start,
        end=end,
        checked_in_at=None,
    )


def request_reschedule(appointment: Appointment, *, at: datetime, actor: Actor, message: str | None = None) -> Change:
    return _apply(appointment, A.REQUEST_RESCHEDULE, at=at, actor=actor, detail=_message(message), checked_in_at=None)


def reassign(
    appointment: Appointment,
    technicians: tuple[Technician, ...],
    *,
    at: datetime,
    actor: Actor,
    message: str | None = None,
) -> Change:
    """Replace the technicians; an empty tuple unassigns the appointment."""
    new = with_primary(technicians)
    detail = {"from": [t.id for t in appointment.technicians], "to": [t.id for t in new], **_message(message)}
    return _apply(appointment, A.REASSIGN, at=at, actor=actor, detail=detail, technicians=new)


def cancel(
    appointment: Appointment,
    *,
    by: CancelledBy,
    reason: str,
    at: datetime,
    actor: Actor,
    message: str | None = None,
    coupon: Coupon | None = None,
) -> Change:
    """Cancel by a customer, ops or (as ``auto_cancel``) the system's rules."""
    action = A.AUTO_CANCEL if by is CancelledBy.SYSTEM else A.CANCEL
    cancellation = Cancellation(at=at, by=by, reason=reason, message=message, coupon=coupon)
    detail = {"by": by.value, "reason": reason, **_message(message)}
    if coupon is not None:
        detail["coupon"] = coupon.code
    return _apply(appointment, action, at=at, actor=actor, detail=detail, cancellation=cancellation, next_due_at=None)


def complete(
    appointment: Appointment,
    *,
    duration_minutes: int,
    outcome: str,
    at: datetime,
    actor: Actor,
    reason: str | None = None,
) -> Change:
    completion = Completion(at=at, duration_minutes=duration_minutes, reason=reason, outcome=outcome)
    detail = {"duration_minutes": duration_minutes, "reason": reason, "outcome": outcome}
    return _apply(appointment, A.COMPLETE, at=at, actor=actor, detail=detail, completion=completion, next_due_at=None)


def reopen(appointment: Appointment, *, at: datetime, actor: Actor) -> Change:
    """Back to scheduled; rules due before now never act on it (no reminder, no no-show for the past)."""
    return _apply(appointment, A.REOPEN, at=at, actor=actor, completion=None, no_show_at=None, rules_from=at)


def mark_no_show(appointment: Appointment, *, at: datetime, actor: Actor, note: str | None = None) -> Change:
    """The customer did not attend; only once the appointment has started."""
    if appointment.status is Status.SCHEDULED and at < appointment.start:
        raise InvalidTransition(
            status=appointment.status,
            action=A.NO_SHOW,
            allowed=allowed_actions(appointment.status),
            reason="the appointment has not started yet",
        )
    detail = {"note": note} if note else {}
    return _apply(appointment, A.NO_SHOW, at=at, actor=actor, detail=detail, no_show_at=at, next_due_at=None)


def check_in(appointment: Appointment, *, at: datetime, actor: Actor) -> Change:
    """The customer called in or the session started: the no-show rule no longer applies."""
    return _apply(appointment, A.CHECK_IN, at=at, actor=actor, checked_in_at=appointment.checked_in_at or at)


def add_note(appointment: Appointment, *, text: str, at: datetime, actor: Actor) -> Change:
    note = Note(at=at, author=actor.id, text=text)
    return _apply(appointment, A.NOTE, at=at, actor=actor, notes=(*appointment.notes, note))


def record_contact_attempt(
    appointment: Appointment, *, outcome: ContactOutcome, at: datetime, actor: Actor, note: str | None = None
) -> Change:
    """A call to the customer; the status stays as it is whatever the outcome."""
    attempt = ContactAttempt(at=at, by=actor.id, outcome=outcome, note=note)
    detail: dict[str, Any] = {"outcome": outcome.value}
    if note:
        detail["note"] = note
    return _apply(
        appointment,
        A.CONTACT_ATTEMPT,
        at=at,
        actor=actor,
        detail=detail,
        contact_attempts=(*appointment.contact_attempts, attempt),
    )


def set_hold(appointment: Appointment, *, on: bool, at: datetime, actor: Actor, reason: str | None = None) -> Change:
    """Keep the appointment on schedule by hand (no auto-cancel), or release it to the rules again."""
    hold = Hold(at=at, by=actor.id, reason=reason) if on else None
    return _apply(appointment, A.HOLD, at=at, actor=actor, detail={"on": on, "reason": reason}, hold=hold)


def record_notice(
    appointment: Appointment, action: Action, *, notice_key: str, at: datetime, detail: Mapping[str, Any] | None = None
) -> Change:
    """A reminder or pre-notice went out; its key (notice and start) is kept so it never goes twice."""
    if action not in (A.REMINDER, A.PRE_NOTICE):
        raise ValueError(f"{action} is not a notice")
    sent = {**appointment.notices_sent, notice_key: at}
    told = {"notice": notice_key, **(detail or {})}
    return _apply(appointment, action, at=at, actor=Actor.system(), detail=told, notices_sent=sent)


def record(
    appointment: Appointment, fact: Record, *, at: datetime, actor: Actor, detail: Mapping[str, Any] | None = None
) -> Change:
    """A history-only fact (a skipped event, an unmapped type): allowed in every status. One a dispatcher
    must see also stamps ``attention_at``."""
    after = evolve(appointment, at=at, **({"attention_at": at} if fact in NEEDS_A_HUMAN else {}))
    entry = HistoryEntry(
        at=at,
        actor=actor,
        action=fact,
        from_status=appointment.status,
        to_status=appointment.status,
        detail=dict(detail or {}),
    )
    return Change(before=appointment, after=after, history=(entry,))


def _message(message: str | None) -> dict[str, Any]:
    return {"message": message} if message else {}


def _times(prefix: str, start: datetime, end: datetime) -> dict[str, Any]:
    return {prefix: {"start": start.isoformat(), "end": end.isoformat()}}
