"""What needs a human now: the dispatcher's "Needs attention" list (``GET /attention``, docs/ops-api.md).

Read cost is bounded: one listing of the appointments starting in ``[now - 2 days, now + 7 days)`` (the
``by_day`` index, every page), one ``load`` (state, history, mails) per appointment that may qualify (one
whose ``attention_at`` says it got a record needing a human in the last 2 days: a dispatcher's console
polls this every 10 s, so a busy day's ordinary changes must not each cost a read), and one page of the
waiting (unmatched) events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from appointments.domain.history import Action, Record
from appointments.domain.model import Status
from appointments.domain.rules import RuleTimings

if TYPE_CHECKING:
    from appointments.domain.history import HistoryEntry
    from appointments.domain.model import Appointment
    from appointments.ports import AppointmentStore, Clock, Waiting

LOOK_BACK = timedelta(days=2)  # records older than this, and appointments that started before it, are not news
LOOK_AHEAD = timedelta(days=7)
SOON = timedelta(hours=24)  # an unassigned appointment starting within this is listed
PAGE = 200
UNMATCHED_LIMIT = 100  # one page of the waiting events, soonest dropped first


class Kind(StrEnum):
    UNASSIGNED_AT_START = "unassigned_at_start"
    AT_RISK = "at_risk"
    UNASSIGNED_SOON = "unassigned_soon"
    MAIL_FAILED = "mail_failed"
    MAIL_BOUNCED = "mail_bounced"
    PSA_WRITEBACK_FAILED = "psa_writeback_failed"
    UNMATCHED = "unmatched"


# The suggested action per kind: an ops API action (reassign, reschedule, contact_attempt) or, for what the
# API cannot do, open_ticket (fix the ticket in the PSA by hand) and review (look at the scheduler).
ACTIONS: dict[Kind, str] = {
    Kind.UNASSIGNED_AT_START: "reschedule",
    Kind.AT_RISK: "reassign",
    Kind.UNASSIGNED_SOON: "reassign",
    Kind.MAIL_FAILED: "contact_attempt",
    Kind.MAIL_BOUNCED: "contact_attempt",
    Kind.PSA_WRITEBACK_FAILED: "open_ticket",
    Kind.UNMATCHED: "review",
}
# Most urgent first: the unassigned ones (a customer waits), then mail and PSA trouble, then unmatched events.
_TIER: dict[Kind, int] = {
    Kind.UNASSIGNED_AT_START: 0,
    Kind.AT_RISK: 0,
    Kind.UNASSIGNED_SOON: 0,
    Kind.MAIL_FAILED: 1,
    Kind.MAIL_BOUNCED: 1,
    Kind.PSA_WRITEBACK_FAILED: 1,
    Kind.UNMATCHED: 2,
}
_RECORDS: dict[Record, Kind] = {
    Record.AT_RISK: Kind.AT_RISK,
    Record.UNASSIGNED_AT_START: Kind.UNASSIGNED_AT_START,
    Record.MAIL_FAILED: Kind.MAIL_FAILED,
    Record.MAIL_BOUNCED: Kind.MAIL_BOUNCED,
    Record.PSA_WRITEBACK_FAILED: Kind.PSA_WRITEBACK_FAILED,
}
_OPEN = (Status.SCHEDULED, Status.REQUESTED)
_MOVED = (Action.RESCHEDULE, Action.DEFER, Action.REQUEST_RESCHEDULE)
_REACHED = (Action.CONTACT_ATTEMPT, Record.DETAILS_UPDATED)


@dataclass(frozen=True)
class AttentionItem:
    kind: Kind
    appointment_id: str | None
    customer: str | None
    start: datetime | None
    timezone: str | None
    technicians: tuple[str, ...]
    pre_notice_at: datetime | None
    auto_cancel_at: datetime | None
    detail: str
    at: datetime
    action: str

    def order(self) -> tuple[Any, ...]:
        far = datetime.max.replace(tzinfo=self.at.tzinfo)
        return (_TIER[self.kind], self.start or far, self.at, self.kind.value, self.appointment_id or "")


@dataclass(frozen=True)
class AttentionReport:
    now: datetime
    items: tuple[AttentionItem, ...]
    loads: int  # appointments loaded with their history (the read cost, besides the listing)


class Attention:
    def __init__(self, store: AppointmentStore, clock: Clock, timings: RuleTimings | None = None) -> None:
        self._store = store
        self._clock = clock
        self._timings = timings or RuleTimings()

    def report(self) -> AttentionReport:
        now = self._clock.now()
        since = now - LOOK_BACK
        items: list[AttentionItem] = []
        loads = 0
        cursor: str | None = None
        while True:
            page = self._store.list_between(since, now + LOOK_AHEAD, PAGE, cursor)
            for appointment in page.items:
                recorded: list[AttentionItem] = []
                if appointment.attention_at is not None and appointment.attention_at >= since:
                    loads += 1
                    record = self._store.load(appointment.id)
                    recorded = self._from_history(record.appointment, record.history, since)
                    appointment = record.appointment
                items.extend(recorded)
                soon = self._unassigned_soon(appointment, now)
                if soon is not None and not any(i.kind in (Kind.AT_RISK, Kind.UNASSIGNED_AT_START) for i in recorded):
                    items.append(soon)
            cursor = page.next_cursor
            if cursor is None:
                break
        items.extend(_unmatched(w) for w in self._store.unmatched(limit=UNMATCHED_LIMIT).items if _booking(w))
        return AttentionReport(now=now, items=tuple(sorted(items, key=AttentionItem.order)), loads=loads)

    # -- kinds -------------------------------------------------------------------------------------

    def _unassigned_soon(self, appointment: Appointment, now: datetime) -> AttentionItem | None:
        if appointment.status is not Status.SCHEDULED or appointment.is_assigned:
            return None
        if not now <= appointment.start < now + SOON:
            return None
        hours = (appointment.start - now).total_seconds() / 3600
        return self._item(
            Kind.UNASSIGNED_SOON,
            appointment,
            f"no technician assigned; starts in {hours:.1f} h",
            appointment.exposed_since or appointment.updated_at,
        )

    def _from_history(
        self, appointment: Appointment, history: tuple[HistoryEntry, ...], since: datetime
    ) -> list[AttentionItem]:
        found: list[AttentionItem] = []
        for index, entry in enumerate(history):
            kind = _RECORDS.get(entry.action) if isinstance(entry.action, Record) else None
            if kind is None or entry.at < since:
                continue
            if _resolved(kind, entry, appointment, history[index + 1 :]):
                continue
            found.append(self._item(kind, appointment, _words(kind, entry), entry.at))
        return found

    def _item(self, kind: Kind, appointment: Appointment, detail: str, at: datetime) -> AttentionItem:
        unassigned = not appointment.is_assigned and appointment.status in _OPEN
        return AttentionItem(
            kind=kind,
            appointment_id=appointment.id,
            customer=appointment.customer.name,
            start=appointment.start,
            timezone=appointment.timezone,
            technicians=tuple(t.name for t in appointment.technicians),
            pre_notice_at=appointment.start - self._timings.pre_notice if unassigned else None,
            auto_cancel_at=appointment.start - self._timings.auto_cancel if unassigned else None,
            detail=detail,
            at=at,
            action=ACTIONS[kind],
        )


def _resolved(kind: Kind, entry: HistoryEntry, appointment: Appointment, later: tuple[HistoryEntry, ...]) -> bool:
    """Whether what ``entry`` recorded has been dealt with since."""
    match kind:
        case Kind.AT_RISK | Kind.UNASSIGNED_AT_START:
            # Someone was assigned, it was cancelled (or done with), or it moved to another time.
            return appointment.is_assigned or appointment.status not in _OPEN or any(e.action in _MOVED for e in later)
        case Kind.MAIL_FAILED | Kind.MAIL_BOUNCED:
            # A bounced ops alert is not the customer's; a call, new details or the work done settle it.
            if entry.detail.get("kind") == "ops_alert":
                return True
            return appointment.status is Status.COMPLETED or any(e.action in _REACHED for e in later)
        case Kind.PSA_WRITEBACK_FAILED:
            system = entry.detail.get("system")
            return any(e.action == Record.PSA_WRITTEN and e.detail.get("system", system) == system for e in later)
    return False  # pragma: no cover - every recorded kind is matched above


def _words(kind: Kind, entry: HistoryEntry) -> str:
    detail = entry.detail
    match kind:
        case Kind.AT_RISK:
            return "unassigned inside the auto-cancel window: too late to cancel, nobody assigned"
        case Kind.UNASSIGNED_AT_START:
            return "the start came and no technician is assigned"
        case Kind.MAIL_FAILED:
            return f"the {detail.get('kind') or 'customer'} mail could not be sent: {detail.get('reason', 'refused')}"
        case Kind.MAIL_BOUNCED:
            what = str(detail.get("feedback") or "bounce").replace("_", " ")
            return f"the {detail.get('kind') or 'customer'} mail came back ({what}): {detail.get('reason', '')}".rstrip(
                ": "
            )
        case Kind.PSA_WRITEBACK_FAILED:
            return (
                f"the ticket {detail.get('ticket', '')} in {detail.get('system', 'the PSA')} could not be updated: "
                f"{detail.get('reason', 'failed')}"
            )
    return kind.value  # pragma: no cover


def _booking(waiting: Waiting) -> bool:
    """A booking change (``ref#...``); PSA ticket events for a ticket nobody booked are not a human's job."""
    return waiting.key.startswith("ref#")


def _unmatched(waiting: Waiting) -> AttentionItem:
    _, _, rest = waiting.key.partition("#")
    system, _, identifier = rest.partition("#")
    event = waiting.event
    return AttentionItem(
        kind=Kind.UNMATCHED,
        appointment_id=None,
        customer=None,
        start=None,
        timezone=None,
        technicians=(),
        pre_notice_at=None,
        auto_cancel_at=None,
        detail=f"{event.kind.value} from {event.source} for booking {system}:{identifier}, which the desk does not "
        f"hold; dropped at {waiting.until.isoformat()}",
        at=event.occurred_at,
        action=ACTIONS[Kind.UNMATCHED],
    )
