"""Appointment and the value objects it is made of.

All instants are timezone-aware and normalised to UTC; ``Appointment.timezone`` (an IANA name) is
used only for what a person reads. Models are immutable: every change produces a new object.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

EARLIEST_YEAR, LATEST_YEAR = 1970, 2200  # a wider span is a typo, and near year 9999 the arithmetic overflows


def _to_utc(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None
    if not EARLIEST_YEAR <= utc.year <= LATEST_YEAR:
        raise ValueError(f"must lie between the years {EARLIEST_YEAR} and {LATEST_YEAR}")
    return utc


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {value!r}") from exc
    return value


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
TimeZoneName = Annotated[str, AfterValidator(_known_zone)]
NonEmpty = Annotated[str, Field(min_length=1, max_length=500)]
Email = Annotated[str, Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Status(StrEnum):
    REQUESTED = "requested"
    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


class ActorKind(StrEnum):
    OPS = "ops"
    SYSTEM = "system"
    SOURCE = "source"
    CUSTOMER = "customer"


class Actor(Frozen):
    """Who caused a change: an ops identity (IAM ARN), the system's rules, or a vendor source."""

    kind: ActorKind
    id: NonEmpty

    @classmethod
    def system(cls) -> Actor:
        return cls(kind=ActorKind.SYSTEM, id="rules")

    @classmethod
    def source(cls, system: str) -> Actor:
        return cls(kind=ActorKind.SOURCE, id=system)

    @classmethod
    def ops(cls, identity: str) -> Actor:
        return cls(kind=ActorKind.OPS, id=identity)


class Fact(StrEnum):
    """What an appointment knows, each part ordered on its own (docs/convergence.md)."""

    TIME = "time"  # start and end
    TECHNICIANS = "technicians"
    STATUS = "status"  # with what comes with it: cancellation, completion, no-show time
    CHECK_IN = "check_in"
    # The booking's details, each on its own, so an event that leaves one out never erases it.
    CUSTOMER = "customer"
    TIMEZONE = "timezone"
    TYPE = "type"
    TICKET = "ticket"
    LINKS = "links"
    ANSWERS = "answers"
    METADATA = "metadata"


class Stamp(Frozen):
    """When a fact was set, ordered by time, then the vendor's sequence, then a tie-break that is the same
    in every delivery order (the delivery id, or the kind of actor for our own changes)."""

    at: UtcDatetime
    sequence: int = 0
    tiebreak: Annotated[str, Field(max_length=500)] = ""

    @property
    def order(self) -> tuple[datetime, int, str]:
        """What stamps sort by: the same in every delivery order."""
        return (self.at, self.sequence, self.tiebreak)

    def newer_than(self, other: Stamp | None) -> bool:
        return other is None or self.order > other.order

    @classmethod
    def of_change(cls, at: datetime, actor: Actor) -> Stamp:
        # "~" sorts after every character of a delivery id: at the same instant, our own change wins.
        return cls(at=at, tiebreak=f"~{actor.kind}")


class Customer(Frozen):
    name: NonEmpty
    email: Email | None = None
    phone: Annotated[str, Field(max_length=50)] | None = None
    company: Annotated[str, Field(max_length=200)] | None = None


class Technician(Frozen):
    id: NonEmpty
    name: NonEmpty
    email: Email | None = None
    primary: bool = False


class TicketRef(Frozen):
    system: NonEmpty
    id: NonEmpty
    number: Annotated[str, Field(max_length=100)] | None = None


class ExternalRef(Frozen):
    """An id the appointment has in another system (``calcom``, ``calendly``, ``timezest`` ...)."""

    system: NonEmpty
    id: NonEmpty

    def __str__(self) -> str:
        return f"{self.system}:{self.id}"


class Links(Frozen):
    reschedule: Annotated[str, Field(max_length=2000)] | None = None
    cancel: Annotated[str, Field(max_length=2000)] | None = None


class Note(Frozen):
    at: UtcDatetime
    author: NonEmpty
    text: Annotated[str, Field(min_length=1, max_length=5000)]


class ContactOutcome(StrEnum):
    VOICEMAIL = "voicemail"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    REACHED = "reached"


class ContactAttempt(Frozen):
    at: UtcDatetime
    by: NonEmpty
    outcome: ContactOutcome
    note: Annotated[str, Field(max_length=5000)] | None = None


class Hold(Frozen):
    """Kept on schedule by hand: the auto-cancel rule leaves the appointment alone."""

    at: UtcDatetime
    by: NonEmpty
    reason: Annotated[str, Field(max_length=1000)] | None = None


class Coupon(Frozen):
    code: NonEmpty
    percent: Annotated[int, Field(ge=1, le=100)]
    expires_at: UtcDatetime


class Discount(Frozen):
    """A discount the customer already has; cancelling then offers no new coupon."""

    percent: Annotated[int, Field(ge=1, le=100)]
    code: Annotated[str, Field(max_length=100)] | None = None
    description: Annotated[str, Field(max_length=500)] | None = None


class CancelledBy(StrEnum):
    CUSTOMER = "customer"
    OPS = "ops"
    SYSTEM = "system"


class Cancellation(Frozen):
    at: UtcDatetime
    by: CancelledBy
    reason: NonEmpty
    message: Annotated[str, Field(max_length=5000)] | None = None
    coupon: Coupon | None = None


class Completion(Frozen):
    at: UtcDatetime
    duration_minutes: Annotated[int, Field(ge=0, le=24 * 60)]
    reason: Annotated[str, Field(max_length=500)] | None = None
    outcome: Annotated[str, Field(min_length=1, max_length=5000)]


class Answer(Frozen):
    """One questionnaire answer given at booking."""

    question: NonEmpty
    answer: Annotated[str, Field(max_length=5000)]


class Appointment(Frozen):
    id: NonEmpty
    status: Status
    start: UtcDatetime
    end: UtcDatetime
    timezone: TimeZoneName
    type: NonEmpty
    customer: Customer
    technicians: tuple[Technician, ...] = ()
    ticket: TicketRef | None = None
    external_refs: tuple[ExternalRef, ...] = ()
    links: Links = Links()
    hold: Hold | None = None
    checked_in_at: UtcDatetime | None = None
    discount: Discount | None = None
    notes: tuple[Note, ...] = ()
    contact_attempts: tuple[ContactAttempt, ...] = ()
    answers: tuple[Answer, ...] = ()
    metadata: dict[str, Any] = Field(default_factory=dict)
    cancellation: Cancellation | None = None
    completion: Completion | None = None
    no_show_at: UtcDatetime | None = None
    # While nobody is assigned: when it last came under the auto-cancel rule (booked, moved, left without
    # a technician, released from hold). After the cancel point, it is too late to cancel: ops get an
    # at-risk alert instead; before it, a late sweep still cancels. None while assigned.
    exposed_since: UtcDatetime | None = None
    # When the start last changed (booked or moved), on our clock: a notice due before it is skipped.
    start_set_at: UtcDatetime | None = None
    # Rules due before this instant never act (set on reopen: reopening never fires rules for the past).
    rules_from: UtcDatetime | None = None
    # When the timed rules must look at this appointment next; None = nothing left to check.
    next_due_at: UtcDatetime | None = None
    # When its latest record that needs a dispatcher was made (at risk, a mail failed, the PSA write failed:
    # history.NEEDS_A_HUMAN); None = never. "Needs attention" loads only appointments with a recent one.
    attention_at: UtcDatetime | None = None
    # Notices already sent, keyed by notice and start time, so a reschedule re-arms them.
    notices_sent: dict[str, UtcDatetime] = Field(default_factory=dict)
    # Per fact (time, technicians, status, check-in, each detail), the stamp of the change that last set it:
    # an event sets only the facts it is newer for, so the state does not depend on delivery order.
    fact_stamps: dict[Fact, Stamp] = Field(default_factory=dict)
    # Delivery ids of the latest events seen (applied, skipped or ignored): a redelivery is a no-op.
    recent_deliveries: tuple[str, ...] = ()
    # The ticket statuses the PSA write-back set, per PSA system: the PSA's webhook announcing that status is
    # our own change coming back (recorded as ``psa_echo``), not news.
    psa_statuses: dict[str, str] = Field(default_factory=dict)
    created_at: UtcDatetime
    updated_at: UtcDatetime
    version: Annotated[int, Field(ge=1)]

    @model_validator(mode="after")
    def _end_after_start(self) -> Self:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    @property
    def is_assigned(self) -> bool:
        return bool(self.technicians)

    @property
    def primary_technician(self) -> Technician | None:
        return next((t for t in self.technicians if t.primary), self.technicians[0] if self.technicians else None)

    def has_ref(self, ref: ExternalRef) -> bool:
        return ref in self.external_refs


def with_primary(technicians: tuple[Technician, ...]) -> tuple[Technician, ...]:
    """Exactly one primary technician when there are any: the one flagged first, else the first."""
    if not technicians:
        return ()
    primary_index = next((i for i, t in enumerate(technicians) if t.primary), 0)
    return tuple(t.model_copy(update={"primary": i == primary_index}) for i, t in enumerate(technicians))
