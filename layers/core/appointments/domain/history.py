"""History entries: the append-only record of everything that happened to an appointment."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field

from appointments.domain.model import Actor, Frozen, Status, UtcDatetime


class Action(StrEnum):
    """What can be done to an appointment; the verbs of the ops API and of the timed rules."""

    CREATE = "create"
    CONFIRM = "confirm"
    RESCHEDULE = "reschedule"
    REQUEST_RESCHEDULE = "request_reschedule"
    REASSIGN = "reassign"
    CANCEL = "cancel"
    COMPLETE = "complete"
    REOPEN = "reopen"
    NO_SHOW = "no_show"
    CHECK_IN = "check_in"
    NOTE = "note"
    CONTACT_ATTEMPT = "contact_attempt"
    HOLD = "hold"
    DEFER = "defer"
    REMINDER = "reminder"
    PRE_NOTICE = "pre_notice"
    AUTO_CANCEL = "auto_cancel"


class Record(StrEnum):
    """Facts recorded in history that are not actions: nothing about the appointment changes."""

    EVENT_SUPERSEDED = "event_superseded"  # newer news already set what the event says (or it came after a cancel)
    EVENT_IGNORED = "event_ignored"  # an event that changes nothing: the appointment is already as it says
    DETAILS_UPDATED = "details_updated"  # a vendor's newer customer details, links, answers or ticket
    MERGED = "merged"  # another appointment was the same booking (a reschedule chain out of order): merged in
    NOTICE_SKIPPED = "notice_skipped"  # a notice whose purpose had passed when its check ran
    TYPE_UNMAPPED = "type_unmapped"  # a vendor type with no mapping: kept under the source's default
    AT_RISK = "at_risk"  # unassigned too close to the start for the rules to act: ops alerted
    MAIL_FAILED = "mail_failed"  # a mail was refused for good (bounced address, rejected content): ops alerted
    MAIL_BOUNCED = "mail_bounced"  # the mail service reported a bounce or complaint after sending
    UNASSIGNED_AT_START = "unassigned_at_start"  # the start came with nobody assigned: ops alerted, no no-show
    PSA_WRITTEN = "psa_written"  # the change was written back to the ticket (status and/or note)
    PSA_WRITEBACK_FAILED = "psa_writeback_failed"  # the ticket could not be written: ops alerted
    PSA_ECHO = "psa_echo"  # the PSA's webhook about a ticket status the write-back set: already applied


# The records a dispatcher must see (the console's "Needs attention"): each one stamps the appointment's
# ``attention_at``, so the list loads only appointments with such a record, not every one that changed.
NEEDS_A_HUMAN = frozenset(
    {
        Record.AT_RISK,
        Record.UNASSIGNED_AT_START,
        Record.MAIL_FAILED,
        Record.MAIL_BOUNCED,
        Record.PSA_WRITEBACK_FAILED,
    }
)


class HistoryEntry(Frozen):
    at: UtcDatetime
    actor: Actor
    action: Action | Record
    from_status: Status | None
    to_status: Status
    detail: dict[str, Any] = Field(default_factory=dict)
