"""In-memory fakes of the ports, faithful to the adapters' contracts (the store contract tests run on both)."""

from __future__ import annotations

import bisect
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any

from appointments.adapters.dynamo_store import shard_of
from appointments.domain.outbox import MailStatus, OutboxMail
from appointments.errors import (
    AlreadyExists,
    AppointmentNotFound,
    CouponCodeTaken,
    ExternalRefTaken,
    InvalidInput,
    VersionConflict,
)
from appointments.ports import (
    AppointmentPage,
    AppointmentRecord,
    ClaimedAlert,
    DueItem,
    DueKind,
    DuePage,
    UnmatchedAlert,
    UnmatchedAlertPage,
    Waiting,
    WaitingPage,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from datetime import datetime

    from appointments.domain.events import CanonicalEvent
    from appointments.domain.history import HistoryEntry
    from appointments.domain.lifecycle import Change
    from appointments.domain.model import Appointment, ExternalRef, TicketRef
    from appointments.domain.polling import PollState


class DueIndexedAppointments(dict[str, "Appointment"]):
    """The appointments by id, with the sparse ``due`` index beside them, as the table has its ``due`` GSI:
    per shard, the next checks in hourly buckets, the buckets' hours in order. A sweep then reads what is
    due (and one hour's bucket), never the whole store, and a write moves one entry between buckets, so the
    sweep's time does not grow with the appointments stored (the benchmark of the sweep relies on it). Every
    way a dict is changed keeps the index, so a test that writes ``store.appointments`` directly still holds."""

    def __init__(self, shard: Callable[[str], int]) -> None:
        super().__init__()
        self._shard = shard
        self._buckets: dict[int, dict[datetime, dict[str, datetime]]] = defaultdict(dict)  # hour -> id -> due
        self._hours: dict[int, list[datetime]] = defaultdict(list)  # each shard's bucket hours, in order
        self._entry: dict[str, tuple[int, datetime]] = {}  # id -> (shard, hour)

    def due_ids(self, shard: int, until: datetime) -> list[str]:
        """The ids in ``shard`` whose next check is at or before ``until``."""
        hours, buckets = self._hours[shard], self._buckets[shard]
        return [
            appointment_id
            for hour in hours[: bisect.bisect_right(hours, until)]
            for appointment_id, due in buckets[hour].items()
            if due <= until
        ]

    def __setitem__(self, appointment_id: str, appointment: Appointment) -> None:
        self._unindex(appointment_id)
        super().__setitem__(appointment_id, appointment)
        due = appointment.next_due_at
        if due is not None:
            shard, hour = self._shard(appointment_id), due.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
            buckets = self._buckets[shard]
            if hour not in buckets:
                buckets[hour] = {}
                bisect.insort(self._hours[shard], hour)
            buckets[hour][appointment_id] = due
            self._entry[appointment_id] = (shard, hour)

    def __delitem__(self, appointment_id: str) -> None:
        super().__delitem__(appointment_id)
        self._unindex(appointment_id)

    _MISSING: Any = object()

    def pop(self, appointment_id: str, default: Any = _MISSING) -> Any:
        if appointment_id not in self:
            if default is self._MISSING:
                raise KeyError(appointment_id)
            return default
        appointment = self[appointment_id]
        del self[appointment_id]
        return appointment

    def popitem(self) -> tuple[str, Appointment]:
        appointment_id = next(reversed(self))
        return appointment_id, self.pop(appointment_id)

    def setdefault(self, appointment_id: str, default: Any = None) -> Any:
        if appointment_id not in self:
            self[appointment_id] = default
        return self[appointment_id]

    def update(self, *others: Any, **more: Appointment) -> None:
        for appointment_id, appointment in dict(*others, **more).items():
            self[appointment_id] = appointment

    def __ior__(self, other: Any) -> DueIndexedAppointments:  # type: ignore[override, misc]
        self.update(other)
        return self

    def clear(self) -> None:
        super().clear()
        self._buckets.clear()
        self._hours.clear()
        self._entry.clear()

    def _unindex(self, appointment_id: str) -> None:
        held = self._entry.pop(appointment_id, None)
        if held is None:
            return
        shard, hour = held
        bucket = self._buckets[shard][hour]
        del bucket[appointment_id]
        if not bucket:  # an hour already swept leaves no bucket behind for the next sweep to walk
            del self._buckets[shard][hour]
            hours = self._hours[shard]
            del hours[bisect.bisect_left(hours, hour)]


class Mailbox(dict[str, OutboxMail]):
    """One appointment's mails; the keys of those still to send (pending or claimed) are kept in ``open``,
    the mail part of the ``due`` index, so finding due mails does not read every appointment's."""

    def __init__(self, appointment_id: str, open_mails: set[tuple[str, str]]) -> None:
        super().__init__()
        self._appointment_id = appointment_id
        self._open = open_mails

    def __setitem__(self, key: str, mail: OutboxMail) -> None:
        super().__setitem__(key, mail)
        if mail.status in (MailStatus.PENDING, MailStatus.SENDING):
            self._open.add((self._appointment_id, key))
        else:
            self._open.discard((self._appointment_id, key))

    def update(self, *others: Any, **more: OutboxMail) -> None:
        for key, mail in dict(*others, **more).items():
            self[key] = mail


class Mailboxes(defaultdict[str, Mailbox]):
    def __init__(self) -> None:
        super().__init__()
        self.open: set[tuple[str, str]] = set()

    def __missing__(self, appointment_id: str) -> Mailbox:
        box = self[appointment_id] = Mailbox(appointment_id, self.open)
        return box

    def open_mails(self) -> Iterator[OutboxMail]:
        for appointment_id, key in self.open:
            yield self[appointment_id][key]


class InMemoryAppointmentStore:
    """Checks every condition first, then applies all or nothing, as a DynamoDB transaction does."""

    def __init__(self, due_shards: int = 4) -> None:
        self.due_shards = due_shards
        self.appointments = DueIndexedAppointments(self._shard)
        self.history: dict[str, list[HistoryEntry]] = defaultdict(list)
        self.mails = Mailboxes()
        self.refs: dict[ExternalRef, str] = {}
        self.coupons: dict[str, str] = {}  # code -> appointment id
        self.tickets: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.waits: dict[str, dict[str, CanonicalEvent]] = defaultdict(dict)  # key -> delivery id -> event
        self.mail_claims: dict[tuple[str, str], tuple[str, datetime]] = {}  # (id, key) -> (token, lease or retry at)
        self.published: dict[tuple[str, str], datetime] = {}  # (id, history key) -> when
        self.wait_until: dict[tuple[str, str], datetime] = {}  # (wait key, delivery id) -> dropped then
        self.alerts: dict[tuple[str, str], FakeAlert] = {}  # (wait key, delivery id) -> its unmatched alert
        self.commits = 0

    def get(self, appointment_id: str) -> Appointment:
        try:
            return self.appointments[appointment_id]
        except KeyError:
            raise AppointmentNotFound(appointment_id) from None

    def load(self, appointment_id: str) -> AppointmentRecord:
        appointment = self.get(appointment_id)
        mails = tuple(mail for _, mail in sorted(self.mails[appointment_id].items()))
        return AppointmentRecord(appointment, tuple(self.history[appointment_id]), mails)

    def commit(self, change: Change) -> None:
        self._check(change)
        self._write(change)

    def _check(self, change: Change) -> None:
        appointment_id = change.after.id
        stored = self.appointments.get(appointment_id)
        if change.expected_version is None:
            if stored is not None:
                raise AlreadyExists(f"appointment {appointment_id!r} already exists")
        elif stored is None:
            raise AppointmentNotFound(appointment_id)
        elif stored.version != change.expected_version:
            raise VersionConflict(appointment_id, change.expected_version)
        if any(mail.key in self.mails[appointment_id] for mail in change.mails):
            raise AlreadyExists(f"a record of appointment {appointment_id!r} was already written")
        for ref in change.new_external_refs:
            if ref in self.refs:
                raise ExternalRefTaken(ref.system, ref.id, self.refs[ref])
        absorbed = change.absorbed
        if absorbed is not None and self.appointments.get(absorbed.id) != absorbed:
            raise VersionConflict(change.after.id, change.expected_version or 0)
        if change.new_coupon is not None and change.new_coupon.code in self.coupons:
            raise CouponCodeTaken

    def _write(self, change: Change) -> None:
        appointment_id = change.after.id
        self.appointments[appointment_id] = change.after
        self.history[appointment_id].extend(change.history)
        self.mails[appointment_id].update({mail.key: mail for mail in change.mails})
        self.refs.update(dict.fromkeys(change.new_external_refs, appointment_id))
        if change.new_coupon is not None:
            self.coupons[change.new_coupon.code] = appointment_id
        if change.dropped_ticket is not None:
            self.tickets[(change.dropped_ticket.system, change.dropped_ticket.id)].remove(appointment_id)
        if change.new_ticket is not None:
            self.tickets[(change.new_ticket.system, change.new_ticket.id)].append(appointment_id)
        for key, delivery_id in change.released:
            self.waits[key].pop(delivery_id, None)
        if change.failed_mail is not None:
            key, _token = change.failed_mail
            failed = self.mails[appointment_id][key].model_copy(update={"status": MailStatus.FAILED})
            self.mails[appointment_id][key] = failed
            self.mail_claims.pop((appointment_id, key), None)
        if change.absorbed is not None:
            gone = self.appointments.pop(change.absorbed.id)
            self.refs.update(dict.fromkeys(gone.external_refs, appointment_id))
            if gone.ticket is not None:
                self.tickets[(gone.ticket.system, gone.ticket.id)].remove(gone.id)
        self.commits += 1

    def find_by_external_ref(self, ref: ExternalRef) -> str | None:
        return self.refs.get(ref)

    def find_by_ticket(self, ticket: TicketRef) -> tuple[str, ...]:
        return tuple(self.tickets.get((ticket.system, ticket.id), ()))

    def due(self, kind: DueKind, shard: int, until: datetime, *, limit: int, cursor: str | None = None) -> DuePage:
        items: Iterable[DueItem]
        if kind is DueKind.APPOINTMENT:
            items = [
                DueItem(DueKind.APPOINTMENT, a.id, a.next_due_at)
                for a in map(self.appointments.__getitem__, self.appointments.due_ids(shard, until))
                if a.next_due_at is not None
            ]
        else:
            items = [
                DueItem(DueKind.MAIL, mail.appointment_id, self._due_at(mail), mail.key)
                for mail in self.mails.open_mails()
                if mail.status in (MailStatus.PENDING, MailStatus.SENDING)
                and self._due_at(mail) <= until
                and self._shard(mail.appointment_id) == shard
            ]

        # As DynamoDB pages: from the last key returned, so what a caller settles meanwhile skips nothing.
        def key(item: DueItem) -> tuple[str, str, str]:
            return (item.due_at.isoformat(), item.appointment_id, item.mail_key or "")

        after = tuple(json.loads(cursor)) if cursor else None
        ordered = sorted((item for item in items if after is None or key(item) > after), key=key)
        page = tuple(ordered[:limit])
        return DuePage(items=page, cursor=json.dumps(key(page[-1])) if len(ordered) > limit else None)

    def list_between(self, start_from: datetime, start_to: datetime, limit: int, cursor: str | None) -> AppointmentPage:
        if start_to <= start_from:
            raise InvalidInput("to", "must be after from")
        matching = sorted(
            (a for a in self.appointments.values() if start_from <= a.start < start_to), key=lambda a: (a.start, a.id)
        )
        offset = 0
        if cursor is not None:
            if not cursor.isdigit():
                raise InvalidInput("cursor", "is not a cursor from this listing")
            offset = int(cursor)
        page = tuple(matching[offset : offset + limit])
        more = offset + limit < len(matching)
        return AppointmentPage(items=page, next_cursor=str(offset + limit) if more else None)

    def keep_waiting(
        self,
        key: str,
        event: CanonicalEvent,
        until: datetime,
        *,
        alert_at: datetime | None = None,
        arrived_at: datetime | None = None,
    ) -> None:
        self.waits[key][event.delivery_id] = event
        self.wait_until[(key, event.delivery_id)] = until
        if alert_at is not None:
            self.alerts.setdefault(
                (key, event.delivery_id), FakeAlert(due_at=alert_at, arrived_at=arrived_at or alert_at)
            )

    def unmatched_alerts_due(self, until: datetime, *, limit: int, cursor: str | None = None) -> UnmatchedAlertPage:
        due = sorted(
            (
                UnmatchedAlert(key, item, alert.due_at)
                for (key, item), alert in self.alerts.items()
                if alert.sent_at is None
            ),
            key=lambda a: (a.due_at, a.key, a.item),
        )
        due = [a for a in due if a.due_at <= until]
        offset = int(cursor) if cursor else 0
        page = tuple(due[offset : offset + limit])
        return UnmatchedAlertPage(items=page, cursor=str(offset + limit) if offset + limit < len(due) else None)

    def claim_unmatched_alert(
        self, alert: UnmatchedAlert, *, token: str, now: datetime, lease_until: datetime
    ) -> ClaimedAlert | None:
        event = self.waits[alert.key].get(alert.item)
        if event is None:
            self.alerts.pop((alert.key, alert.item), None)
            return None
        held = self.alerts.get((alert.key, alert.item))
        if held is None or held.sent_at is not None or held.due_at > now:
            return None
        held.due_at, held.claim = lease_until, token
        until = self.wait_until[(alert.key, alert.item)]
        return ClaimedAlert(Waiting(alert.key, event, until), held.arrived_at)

    def finish_unmatched_alert(self, alert: UnmatchedAlert, *, token: str, at: datetime, message_id: str) -> bool:
        held = self.alerts.get((alert.key, alert.item))
        if held is None or held.claim != token:
            return False
        held.sent_at, held.claim, held.message_id = at, None, message_id
        return True

    def unmatched(self, *, limit: int, cursor: str | None = None) -> WaitingPage:
        everything = sorted(
            (
                Waiting(key, event, self.wait_until[(key, delivery)])
                for key, events in self.waits.items()
                for delivery, event in events.items()
            ),
            key=lambda w: (w.until, w.key, w.event.delivery_id),
        )
        offset = int(cursor) if cursor else 0
        page = tuple(everything[offset : offset + limit])
        return WaitingPage(items=page, cursor=str(offset + limit) if offset + limit < len(everything) else None)

    def waiting(self, key: str) -> tuple[CanonicalEvent, ...]:
        return tuple(sorted(self.waits[key].values(), key=lambda e: e.stamp.order))

    def claim_mail(
        self, appointment_id: str, mail_key: str, *, token: str, now: datetime, lease_until: datetime
    ) -> OutboxMail | None:
        mail = self.mails[appointment_id].get(mail_key)
        if mail is None or mail.status not in (MailStatus.PENDING, MailStatus.SENDING) or self._due_at(mail) > now:
            return None
        claimed = mail.model_copy(update={"status": MailStatus.SENDING, "attempts": mail.attempts + 1})
        self.mails[appointment_id][mail_key] = claimed
        self.mail_claims[(appointment_id, mail_key)] = (token, lease_until)
        return claimed

    def finish_mail(
        self,
        appointment_id: str,
        mail_key: str,
        *,
        token: str,
        at: datetime,
        message_id: str,
        status: MailStatus = MailStatus.SENT,
    ) -> bool:
        if not self._holds(appointment_id, mail_key, token):
            return False
        mail = self.mails[appointment_id][mail_key]
        self.mails[appointment_id][mail_key] = mail.model_copy(
            update={"status": status, "sent_at": at, "message_id": message_id}
        )
        del self.mail_claims[(appointment_id, mail_key)]
        return True

    def release_mail(self, appointment_id: str, mail_key: str, *, token: str, retry_at: datetime) -> None:
        if self._holds(appointment_id, mail_key, token):
            mail = self.mails[appointment_id][mail_key]
            self.mails[appointment_id][mail_key] = mail.model_copy(update={"status": MailStatus.PENDING})
            self.mail_claims[(appointment_id, mail_key)] = ("", retry_at)

    def claim_publish(self, appointment_id: str, history_key: str, at: datetime) -> bool:
        return (appointment_id, history_key) not in self.published

    def mark_published(self, appointment_id: str, history_key: str, at: datetime) -> None:
        self.published[(appointment_id, history_key)] = at

    def _holds(self, appointment_id: str, mail_key: str, token: str) -> bool:
        mail = self.mails[appointment_id].get(mail_key)
        claim = self.mail_claims.get((appointment_id, mail_key))
        return mail is not None and mail.status is MailStatus.SENDING and claim is not None and claim[0] == token

    def _due_at(self, mail: OutboxMail) -> datetime:
        """A pending mail is due at its creation or retry time; a claimed one when its lease runs out."""
        claim = self.mail_claims.get((mail.appointment_id, mail.key))
        return claim[1] if claim is not None else mail.created_at

    def _shard(self, appointment_id: str) -> int:
        return shard_of(appointment_id, self.due_shards)


@dataclass
class FakeAlert:
    due_at: datetime
    arrived_at: datetime
    claim: str | None = None
    sent_at: datetime | None = None
    message_id: str | None = None


class DictSecrets:
    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets

    def webhook_secret(self, source: str) -> str | None:
        return self.secrets.get(source)


class RecordingQueue:
    """Keeps what was queued; ``fail_with`` makes the next enqueue raise instead."""

    def __init__(self) -> None:
        self.events: list[CanonicalEvent] = []
        self.fail_with: Exception | None = None

    def enqueue(self, events: Sequence[CanonicalEvent]) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.events.extend(events)


class ConflictingStore(InMemoryAppointmentStore):
    """Another writer gets in first ``conflicts`` times: the caller must re-read and decide again."""

    def __init__(self, conflicts: int = 0) -> None:
        super().__init__()
        self.conflicts = conflicts

    def commit(self, change: Change) -> None:
        if change.before is not None and self.conflicts:
            self.conflicts -= 1
            raise VersionConflict(change.after.id, change.before.version)
        super().commit(change)


class InMemoryPollState:
    """A poller's saved state, with the store's version check (the adapter's contract)."""

    def __init__(self) -> None:
        self.states: dict[str, PollState] = {}
        self.saves = 0

    def poll_state(self, poller: str) -> PollState | None:
        return self.states.get(poller)

    def save_poll_state(self, poller: str, state: PollState) -> bool:
        current = self.states.get(poller)
        if (current.version if current else 0) != state.version - 1:
            return False
        self.states[poller] = state
        self.saves += 1
        return True
