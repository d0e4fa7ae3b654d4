"""The PSA write-back: what each event writes to the ticket, exactly once, retried, and failures told."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from appointments.adapters.clock import ManualClock
from appointments.adapters.dynamo_store import appointment_summary, history_key
from appointments.domain import lifecycle
from appointments.domain.history import Action, Record
from appointments.domain.model import Actor, CancelledBy, TicketRef
from appointments.domain.outbox import MailKind
from appointments.domain.psa_writeback import WritebackPolicy, local_time
from appointments.errors import ConfigError, VendorRateLimited, VendorRefused, VendorUnavailable
from appointments.ports import PsaNote
from appointments.services.outbox_relay import HistoryRecord
from appointments.services.psa_writeback import PsaWriteback, PsaWritebackFailed, WritebackSettings, Written
from tests.factories import CATALOG, NOW, START, a_draft
from tests.fakes import InMemoryAppointmentStore

OPS_MAIL = "ops@msp.example"
NO_SHOW_STATUS = "17"


@dataclass
class FakeTickets:
    """A PSA's tickets: what was written, and the failures to answer with first."""

    system: str = "autotask"
    statuses: dict[str, str] = field(default_factory=dict)
    notes: dict[str, list[PsaNote]] = field(default_factory=dict)
    failures: list[Exception] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.failures:
            raise self.failures.pop(0)

    def set_status(self, ticket_id: str, status: str) -> None:
        self._call("set_status")
        self.statuses[ticket_id] = status

    def add_note(self, ticket_id: str, note: PsaNote) -> None:
        self._call("add_note")
        self.notes.setdefault(ticket_id, []).append(note)

    def has_note(self, ticket_id: str, reference: str) -> bool:
        self._call("has_note")
        return any(reference in note.text for note in self.notes.get(ticket_id, []))


@dataclass
class Desk:
    store: InMemoryAppointmentStore
    clock: ManualClock
    tickets: FakeTickets
    writeback: PsaWriteback
    slept: list[float]

    def no_show(self, *, by_rules: bool = True) -> dict[str, Any]:
        """Mark the appointment a no-show (the rules, ten minutes after the start) and give its event's detail."""
        [appointment_id] = self.store.appointments
        appointment = self.store.get(appointment_id)
        self.clock.set(START + timedelta(minutes=10))
        actor = Actor.system() if by_rules else Actor.source("autotask")
        change = lifecycle.mark_no_show(appointment, at=self.clock.now(), actor=actor)
        if by_rules:
            change = change.with_history_detail({"due_at": self.clock.now().isoformat(), "mail": "desk"})
        self.store.commit(change)
        return self.last_event()

    def last_event(self) -> dict[str, Any]:
        [appointment_id] = self.store.appointments
        record = self.store.load(appointment_id)
        entry = record.history[-1]
        key = history_key(record.appointment.version, len(record.history) - 1)
        return HistoryRecord(appointment_id, key, entry, appointment_summary(record.appointment)).event.detail

    def history(self) -> list[Any]:
        [appointment_id] = self.store.appointments
        return list(self.store.load(appointment_id).history)


AUTOTASK_TICKET = TicketRef(system="autotask", id="48213")


def make_desk(*, ticket: TicketRef | None = AUTOTASK_TICKET, **rules: Any) -> Desk:
    store = InMemoryAppointmentStore()
    clock = ManualClock(NOW)
    created = lifecycle.create(
        a_draft(ticket=ticket), appointment_id="01KAPPT", catalog=CATALOG, at=NOW, actor=Actor.system()
    )
    store.commit(created)
    tickets = FakeTickets()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(timedelta(seconds=seconds))

    policy = WritebackPolicy(statuses={"no_show": {"autotask": NO_SHOW_STATUS}}, **rules)
    settings = WritebackSettings(rules=policy, ops_alert_email=OPS_MAIL)
    writeback = PsaWriteback(store, {"autotask": tickets}, clock, sleep, settings)
    return Desk(store, clock, tickets, writeback, slept)


def test_a_no_show_by_the_rules_sets_the_status_and_notes_why_once() -> None:
    # Given an appointment the rules just marked no-show
    desk = make_desk()
    event = desk.no_show()
    # When the write-back takes its event
    assert desk.writeback.handle(event) is Written.WRITTEN
    # Then the ticket is in NO-SHOW with one internal note saying what happened, in the customer's time
    assert desk.tickets.statuses == {"48213": NO_SHOW_STATUS}
    [note] = desk.tickets.notes["48213"]
    assert note.internal
    assert f"did not call in within 10 minutes of {local_time(START, 'America/New_York')}" in note.text
    assert "missed-appointment mail sent" in note.text
    assert event["event_id"] in note.text
    # And the appointment records it, remembering the status it set (for the echo)
    written = desk.history()[-1]
    assert written.action is Record.PSA_WRITTEN
    assert written.detail["status"] == NO_SHOW_STATUS and written.detail["note"] is True
    assert desk.store.get("01KAPPT").psa_statuses == {"autotask": NO_SHOW_STATUS}
    assert desk.tickets.calls == ["set_status", "has_note", "add_note"]


def test_a_redelivered_event_writes_nothing_again() -> None:
    desk = make_desk()
    event = desk.no_show()
    desk.writeback.handle(event)
    calls = len(desk.tickets.calls)
    # When the same event comes again
    assert desk.writeback.handle(event) is Written.ALREADY
    # Then no call reached the PSA and one note stays
    assert len(desk.tickets.calls) == calls
    assert len(desk.tickets.notes["48213"]) == 1


def test_a_change_committed_while_the_psa_was_written_is_kept_and_the_write_recorded_on_top() -> None:
    # Given an appointment the rules just marked no-show, and a dispatcher who adds a note to it while the
    # write-back is talking to the PSA (the record it loaded first is stale by the time it commits)
    desk = make_desk()
    event = desk.no_show()
    dispatcher_note: list[int] = []

    def note_meanwhile(ticket_id: str, status: str) -> None:
        appointment = desk.store.get("01KAPPT")
        desk.store.commit(
            lifecycle.add_note(appointment, text="called the customer", at=desk.clock.now(), actor=Actor.ops("dana"))
        )
        dispatcher_note.append(1)
        desk.tickets.statuses[ticket_id] = status

    desk.tickets.set_status = note_meanwhile  # type: ignore[method-assign]
    # When the write-back takes its event
    assert desk.writeback.handle(event) is Written.WRITTEN
    # Then both changes are in the history, the dispatcher's first: the conflict reloaded, nothing was lost
    assert dispatcher_note == [1]
    actions = [entry.action for entry in desk.history()[-2:]]
    assert actions == [Action.NOTE, Record.PSA_WRITTEN]
    assert desk.store.get("01KAPPT").psa_statuses == {"autotask": NO_SHOW_STATUS}


def test_a_crash_after_the_note_was_posted_never_posts_a_second() -> None:
    # Given a note already on the ticket for this event (posted before a crash, history not written)
    desk = make_desk()
    event = desk.no_show()
    reference = f"appointment desk event {event['event_id']}"
    desk.tickets.notes["48213"] = [PsaNote(title="t", text=f"...({reference})", reference=reference)]
    # When the event is retried
    desk.writeback.handle(event)
    # Then the note was found, not posted again
    assert len(desk.tickets.notes["48213"]) == 1
    assert "add_note" not in desk.tickets.calls


def test_a_429_and_a_500_are_retried_with_back_off_then_written_once() -> None:
    desk = make_desk()
    event = desk.no_show()
    desk.tickets.failures = [VendorRateLimited("autotask", 7), VendorUnavailable("autotask", "the API answered 500")]
    # When written
    assert desk.writeback.handle(event) is Written.WRITTEN
    # Then it waited Retry-After, then backed off, and wrote one status and one note
    assert desk.slept == [7, 2]
    assert len(desk.tickets.notes["48213"]) == 1
    assert desk.history()[-1].detail["attempts"] == 3


def test_failing_every_retry_is_recorded_and_alerted_once_and_fails_the_event() -> None:
    desk = make_desk()
    event = desk.no_show()
    desk.tickets.failures = [VendorUnavailable("autotask", "the API answered 503")] * 20
    # When every attempt fails, on the first delivery and on Lambda's retry
    with pytest.raises(PsaWritebackFailed):
        desk.writeback.handle(event)
    with pytest.raises(PsaWritebackFailed):
        desk.writeback.handle(event)
    # Then the failure is in history once, with one ops alert
    failures = [e for e in desk.history() if e.action is Record.PSA_WRITEBACK_FAILED]
    assert len(failures) == 1
    assert failures[0].detail["attempts"] == 4
    alerts = [m for m in desk.store.mails["01KAPPT"].values() if m.kind is MailKind.OPS_ALERT]
    assert len(alerts) == 1 and alerts[0].to == (OPS_MAIL,)


def test_a_ticket_that_no_longer_exists_is_recorded_not_retried() -> None:
    desk = make_desk()
    event = desk.no_show()
    desk.tickets.failures = [VendorRefused("autotask", 404)]
    assert desk.writeback.handle(event) is Written.TICKET_GONE
    assert desk.history()[-1].action is Record.PSA_WRITEBACK_FAILED
    assert "no longer exists" in desk.history()[-1].detail["reason"]
    assert desk.tickets.calls == ["set_status"]


def test_a_refusal_fails_the_event_for_the_dead_letter_queue() -> None:
    desk = make_desk()
    event = desk.no_show()
    desk.tickets.failures = [VendorRefused("autotask", 403)]
    with pytest.raises(PsaWritebackFailed):
        desk.writeback.handle(event)
    assert desk.history()[-1].action is Record.PSA_WRITEBACK_FAILED


def test_no_time_left_to_wait_gives_up_without_sleeping_past_the_timeout() -> None:
    desk = make_desk()
    event = desk.no_show()
    desk.tickets.failures = [VendorRateLimited("autotask", 30)]
    with pytest.raises(PsaWritebackFailed):
        desk.writeback.handle(event, seconds_left=lambda: 20.0)
    assert desk.slept == []


def test_a_change_the_psa_itself_made_is_not_written_back() -> None:
    # Given a no-show that came from Autotask's own ticket status
    desk = make_desk()
    event = desk.no_show(by_rules=False)
    # Then nothing is written to Autotask: it knows, and writing would echo
    assert desk.writeback.handle(event) is Written.SKIPPED
    assert desk.tickets.calls == []


def test_an_appointment_without_a_ticket_or_psa_is_skipped() -> None:
    desk = make_desk(ticket=None)
    assert desk.writeback.handle(desk.no_show()) is Written.SKIPPED
    other = make_desk(ticket=TicketRef(system="connectwise", id="9"))
    assert other.writeback.handle(other.no_show()) is Written.SKIPPED
    assert desk.tickets.calls == [] and other.tickets.calls == []


def test_a_cancellation_writes_an_internal_note_and_no_status() -> None:
    desk = make_desk()
    appointment = desk.store.get("01KAPPT")
    desk.store.commit(
        lifecycle.cancel(appointment, by=CancelledBy.CUSTOMER, reason="fixed it myself", at=NOW, actor=Actor.system())
    )
    assert desk.writeback.handle(desk.last_event()) is Written.WRITTEN
    assert desk.tickets.statuses == {}
    [note] = desk.tickets.notes["48213"]
    assert "cancelled by the customer: fixed it myself" in note.text


def test_public_notes_when_configured_and_actions_left_out() -> None:
    desk = make_desk(public_notes=True, note_actions=frozenset({"no_show"}))
    desk.writeback.handle(desk.no_show())
    assert not desk.tickets.notes["48213"][0].internal
    # The write-back's own entries are never written back
    assert desk.writeback.handle(desk.last_event()) is Written.SKIPPED


def test_a_ticket_id_the_psa_cannot_hold_is_recorded_as_a_failure() -> None:
    desk = make_desk()
    event = desk.no_show()
    desk.tickets.failures = [ConfigError("autotask ticket id: must be a number")]
    with pytest.raises(PsaWritebackFailed):
        desk.writeback.handle(event)
    assert desk.history()[-1].detail["reason"] == "autotask ticket id: must be a number"
