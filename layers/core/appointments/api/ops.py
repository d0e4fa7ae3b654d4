"""The ops API's bodies and answers (docs/ops-api.md).

Bodies refuse unknown fields (a typo must not be silently ignored) and map onto the back office's
commands. Answers show an appointment as a dispatcher needs it, never the bookkeeping the event
processor and the rules keep (delivery ids, event times, notice keys).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from appointments.domain.history import HistoryEntry
from appointments.domain.lifecycle import AppointmentDraft, allowed_actions
from appointments.domain.model import (
    Answer,
    Appointment,
    Cancellation,
    Completion,
    ContactAttempt,
    ContactOutcome,
    Customer,
    Discount,
    ExternalRef,
    Hold,
    Links,
    Note,
    Status,
    Technician,
    TicketRef,
    TimeZoneName,
    UtcDatetime,
)
from appointments.errors import InvalidInput
from appointments.services.back_office import (
    AddNote,
    Cancel,
    CheckIn,
    Complete,
    Confirm,
    Defer,
    LogContactAttempt,
    NoShow,
    Reassign,
    Reopen,
    RequestReschedule,
    Reschedule,
    SetHold,
)

if TYPE_CHECKING:
    from appointments.ports import AppointmentRecord, Waiting
    from appointments.services.attention import AttentionItem, AttentionReport

Message = Annotated[str, Field(min_length=1, max_length=5000, description="Included in the customer's mail.")]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CreateBody(Body):
    start: UtcDatetime
    end: UtcDatetime
    timezone: TimeZoneName = Field(description="The customer's IANA time zone, e.g. America/New_York.")
    type: str = Field(min_length=1, max_length=64, description="An appointment type key, e.g. remote_call_in.")
    customer: Customer
    technicians: list[Technician] = Field(default_factory=list, max_length=20)
    ticket: TicketRef | None = None
    discount: Discount | None = None
    links: Links = Links()

    def draft(self) -> AppointmentDraft:
        return AppointmentDraft(
            start=self.start,
            end=self.end,
            timezone=self.timezone,
            type=self.type,
            customer=self.customer,
            technicians=tuple(self.technicians),
            ticket=self.ticket,
            discount=self.discount,
            links=self.links,
        )


class RescheduleBody(Body):
    start: UtcDatetime
    end: UtcDatetime | None = Field(None, description="Without it the appointment keeps its length.")
    message: Message | None = None

    def command(self) -> Reschedule:
        return Reschedule(start=self.start, end=self.end, message=self.message)


class RequestRescheduleBody(Body):
    message: Message | None = None

    def command(self) -> RequestReschedule:
        return RequestReschedule(message=self.message)


class ReassignBody(Body):
    technicians: list[Technician] = Field(max_length=20, description="Replaces the list; empty unassigns.")
    message: Message | None = None

    def command(self) -> Reassign:
        return Reassign(technicians=tuple(self.technicians), message=self.message)


class ConfirmBody(Body):
    message: Message | None = None

    def command(self) -> Confirm:
        return Confirm(message=self.message)


class CancelBody(Body):
    reason: str = Field(min_length=1, max_length=500)
    message: Message | None = None
    offer_discount: bool = Field(True, description="Offer a coupon, unless the appointment has a discount.")

    def command(self) -> Cancel:
        return Cancel(reason=self.reason, message=self.message, offer_discount=self.offer_discount)


class CompleteBody(Body):
    duration_minutes: int = Field(ge=0, le=24 * 60)
    reason: str | None = Field(None, max_length=500)
    outcome: str = Field(min_length=1, max_length=5000)

    def command(self) -> Complete:
        return Complete(duration_minutes=self.duration_minutes, outcome=self.outcome, reason=self.reason)


class EmptyBody(Body):
    pass


class NoShowBody(Body):
    note: str | None = Field(None, max_length=5000)

    def command(self) -> NoShow:
        return NoShow(note=self.note)


class NoteBody(Body):
    text: str = Field(min_length=1, max_length=5000)

    def command(self) -> AddNote:
        return AddNote(text=self.text)


class ContactAttemptBody(Body):
    outcome: ContactOutcome
    note: str | None = Field(None, max_length=5000)

    def command(self) -> LogContactAttempt:
        return LogContactAttempt(outcome=self.outcome, note=self.note)


class HoldBody(Body):
    on: bool
    reason: str | None = Field(None, max_length=1000)

    def command(self) -> SetHold:
        return SetHold(on=self.on, reason=self.reason)


class DeferBody(Body):
    weeks: int = Field(4, ge=1, le=52)
    message: Message | None = None

    def command(self) -> Defer:
        return Defer(weeks=self.weeks, message=self.message)


REOPEN = Reopen()
CHECK_IN = CheckIn()


# -- answers ------------------------------------------------------------------------------------


class AppointmentView(BaseModel):
    id: str
    version: int
    status: Status
    start: datetime
    end: datetime
    timezone: str
    type: str
    customer: Customer
    technicians: list[Technician]
    ticket: TicketRef | None
    external_ids: list[str] = Field(description="<system>:<id> of every booking this appointment came from.")
    links: Links
    hold: Hold | None
    checked_in_at: datetime | None
    discount: Discount | None
    cancellation: Cancellation | None
    completion: Completion | None
    no_show_at: datetime | None
    next_due_at: datetime | None
    allowed_actions: list[str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, appointment: Appointment) -> AppointmentView:
        return cls(
            **appointment.model_dump(
                include={
                    "id",
                    "version",
                    "status",
                    "start",
                    "end",
                    "timezone",
                    "type",
                    "customer",
                    "technicians",
                    "ticket",
                    "links",
                    "hold",
                    "checked_in_at",
                    "discount",
                    "cancellation",
                    "completion",
                    "no_show_at",
                    "next_due_at",
                    "created_at",
                    "updated_at",
                }
            ),
            external_ids=[str(ref) for ref in appointment.external_refs],
            allowed_actions=[str(action) for action in allowed_actions(appointment.status)],
        )


class AppointmentDetail(AppointmentView):
    notes: list[Note]
    contact_attempts: list[ContactAttempt]
    answers: list[Answer]
    metadata: dict[str, Any]
    history: list[HistoryEntry]

    @classmethod
    def of_record(cls, record: AppointmentRecord) -> AppointmentDetail:
        appointment = record.appointment
        return cls(
            **AppointmentView.of(appointment).model_dump(),
            notes=list(appointment.notes),
            contact_attempts=list(appointment.contact_attempts),
            answers=list(appointment.answers),
            metadata=appointment.metadata,
            history=list(record.history),
        )


class AppointmentList(BaseModel):
    items: list[AppointmentView]
    next_cursor: str | None


class UnmatchedEvent(BaseModel):
    """An event about a booking (or a PSA ticket) the desk does not hold yet: it waits, and is applied
    the moment the booking arrives; dropped when ``expires_at`` passes."""

    waits_for: str = Field(description="<system>:<id> of the booking, or ticket:<system>:<id>.")
    source: str
    event: str = Field(description="What the vendor said, e.g. appointment.cancelled.")
    delivery_id: str
    occurred_at: datetime
    expires_at: datetime
    reason: str

    @classmethod
    def of(cls, waiting: Waiting) -> UnmatchedEvent:
        kind, _, rest = waiting.key.partition("#")
        system, _, identifier = rest.partition("#")
        event = waiting.event
        return cls(
            waits_for=f"{system}:{identifier}" if kind == "ref" else f"ticket:{system}:{identifier}",
            source=event.source,
            event=event.kind.value,
            delivery_id=event.delivery_id,
            occurred_at=event.occurred_at,
            expires_at=waiting.until,
            reason="no appointment holds this booking yet" if kind == "ref" else "no appointment names this ticket yet",
        )


class UnmatchedList(BaseModel):
    items: list[UnmatchedEvent]
    next_cursor: str | None


class AttentionEntry(BaseModel):
    """One thing a human should look at now, with the action that usually resolves it."""

    kind: str = Field(
        description="unassigned_soon, at_risk, unassigned_at_start, mail_failed, mail_bounced, psa_writeback_failed "
        "or unmatched."
    )
    appointment_id: str | None = Field(description="null for an unmatched event.")
    customer: str | None = Field(description="The customer's name; null for an unmatched event.")
    start: datetime | None
    timezone: str | None = Field(description="The customer's IANA time zone.")
    technicians: list[str] = Field(description="The assigned technicians' names.")
    pre_notice_at: datetime | None = Field(
        description="For an unassigned appointment: start - PreNoticeHours (the 'still assigning' mail); else null."
    )
    auto_cancel_at: datetime | None = Field(
        description="For an unassigned appointment: start - AutoCancelHours (cancelled unless assigned); else null."
    )
    detail: str = Field(description="What happened, in words.")
    at: datetime = Field(description="When it happened.")
    action: str = Field(
        description="The suggested action: reassign, reschedule, contact_attempt (ops API actions), open_ticket (fix "
        "the ticket in the PSA) or review (look at the scheduler)."
    )

    @classmethod
    def of(cls, item: AttentionItem) -> AttentionEntry:
        return cls(
            kind=item.kind.value,
            appointment_id=item.appointment_id,
            customer=item.customer,
            start=item.start,
            timezone=item.timezone,
            technicians=list(item.technicians),
            pre_notice_at=item.pre_notice_at,
            auto_cancel_at=item.auto_cancel_at,
            detail=item.detail,
            at=item.at,
            action=item.action,
        )


class AttentionList(BaseModel):
    now: datetime
    items: list[AttentionEntry] = Field(description="Most urgent first.")

    @classmethod
    def of(cls, report: AttentionReport) -> AttentionList:
        return cls(now=report.now, items=[AttentionEntry.of(item) for item in report.items])


class ChecksRun(BaseModel):
    """What one run of the timed rules did."""

    due: int = Field(description="Due appointments read from the index.")
    applied: dict[str, int] = Field(description="Per rule (reminder, pre_notice, auto_cancel, ...), how many applied.")
    skipped: dict[str, int] = Field(description="Per rule, how many were skipped because their purpose had passed.")
    failed: int = Field(description="Left due after an error; the next run takes them.")
    stopped_early: bool = Field(description="Time ran low: what is left waits for the next run.")
    max_lateness_seconds: float = Field(description="The latest effect's lateness: applied at minus due at.")


def if_match_version(text: str | None) -> int | None:
    """``If-Match`` as a version: bare (``3``) or quoted (``"3"``, ``W/"3"``), as ETags are."""
    if text is None or not text.strip():
        return None
    value = text.strip().removeprefix("W/").strip('"')
    # ASCII digits, and few: str.isdigit() passes "²" (int() refuses it) and "١٢٣" (int() reads it),
    # and int() refuses more than 4,300 digits.
    if not re.fullmatch(r"[0-9]{1,12}", value):
        raise InvalidInput("If-Match", 'must be the appointment\'s version, e.g. 3 or "3"')
    return int(value)


def external_ref(text: str) -> ExternalRef:
    system, sep, identifier = text.partition(":")
    if not sep or not system or not identifier:
        raise InvalidInput("external_id", "must be <system>:<id>, e.g. calcom:bXk3n8QvTz2LmP4rWc7yHd")
    return ExternalRef(system=system, id=identifier)


def ticket_ref(text: str) -> TicketRef:
    system, sep, identifier = text.partition(":")
    if not sep or not system.strip() or not identifier.strip():
        raise InvalidInput("ticket", "must be <system>:<id>, e.g. autotask:48213 (the ticket's id, not its number)")
    return TicketRef(system=system, id=identifier)


# -- errors, for the OpenAPI document (the handlers answer them through appointments.http) ---------


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, for programs: e.g. invalid_transition, precondition_failed.")
    message: str = Field(description="For people; names the field when the input is wrong.")
    details: list[dict[str, Any]] = Field(
        description="Field problems ({field, message}), or the status and allowed actions of a 409."
    )


class ErrorBody(BaseModel):
    error: ErrorDetail
    request_id: str | None


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"model": ErrorBody}}}


READ_ERRORS: dict[int, Any] = {
    401: _error("No caller identity (IAM in AWS, the bearer token locally)."),
    404: _error("No appointment has this id."),
    422: _error("A parameter is not valid; the message and details name it."),
}
CREATE_ERRORS: dict[int, Any] = {
    400: _error("The body is not JSON."),
    401: READ_ERRORS[401],
    422: _error("The body is not valid; the message and details name the field."),
}
RUN_ERRORS: dict[int, Any] = {
    400: CREATE_ERRORS[400],
    401: READ_ERRORS[401],
    422: _error("The body is not `{}`."),
}
ACTION_ERRORS: dict[int, Any] = {
    **READ_ERRORS,
    400: CREATE_ERRORS[400],
    409: _error("The status does not allow the action; details name the status and the allowed actions."),
    412: _error("If-Match names a version that is no longer current."),
    422: _error("The body is not valid; the message and details name the field."),
}


def answers(model: type[BaseModel], errors: dict[int, Any], status: int = 200) -> dict[int, Any]:
    """The responses of one operation for the OpenAPI document: its success and its errors."""
    description = "Created" if status == 201 else "OK"
    return {status: {"description": description, "content": {"application/json": {"model": model}}}, **errors}
