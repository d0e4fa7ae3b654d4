"""The write-back with the real PSA clients against the fake PSA on 127.0.0.1: each PSA, retries, duplicates.

The service, the three adapters (built from a ``PsaCredentials`` document as the function builds them) and the
HTTP client are real; the store is in memory and the domain event is the one the outbox relay publishes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from appointments.adapters.clock import ManualClock
from appointments.adapters.dynamo_store import appointment_summary, history_key
from appointments.adapters.psa_clients import psa_clients
from appointments.domain import lifecycle
from appointments.domain.history import Record
from appointments.domain.model import Actor, TicketRef
from appointments.domain.psa_writeback import WritebackPolicy
from appointments.services.outbox_relay import HistoryRecord
from appointments.services.psa_writeback import PsaWriteback, PsaWritebackFailed, WritebackSettings, Written
from localdev.fake_psa import FakePsa, fake_psa_credentials, serve
from localdev.fake_timezest import Fault
from tests.factories import CATALOG, NOW, START, a_draft
from tests.fakes import InMemoryAppointmentStore

NO_SHOW = {"autotask": "23", "connectwise": "No-Show", "halopsa": "31"}
TICKETS = {"autotask": "48213", "connectwise": "5120", "halopsa": "771"}


@dataclass
class Desk:
    store: InMemoryAppointmentStore
    clock: ManualClock
    psa: FakePsa
    writeback: PsaWriteback

    def no_show_event(self, system: str) -> dict[str, Any]:
        ticket = TicketRef(system=system, id=TICKETS[system])
        created = lifecycle.create(
            a_draft(ticket=ticket), appointment_id=f"01K{system.upper()}", catalog=CATALOG, at=NOW, actor=Actor.system()
        )
        self.store.commit(created)
        self.clock.set(START + timedelta(minutes=10))
        change = lifecycle.mark_no_show(created.after, at=self.clock.now(), actor=Actor.system())
        self.store.commit(change.with_history_detail({"due_at": self.clock.now().isoformat(), "mail": "desk"}))
        record = self.store.load(created.after.id)
        key = history_key(record.appointment.version, len(record.history) - 1)
        summary = appointment_summary(record.appointment)
        return HistoryRecord(created.after.id, key, record.history[-1], summary).event.detail


@pytest.fixture
def desk() -> Iterator[Desk]:
    clock = ManualClock(NOW)
    fake = FakePsa(clock=clock.now)
    with serve(fake) as base_url:
        store = InMemoryAppointmentStore()
        policy = WritebackPolicy(statuses={"no_show": NO_SHOW})
        settings = WritebackSettings(rules=policy, ops_alert_email="ops@msp.example")

        def sleep(seconds: float) -> None:
            clock.advance(timedelta(seconds=seconds))

        clients = psa_clients(fake_psa_credentials(base_url, fake.credentials), clock)
        yield Desk(store, clock, fake, PsaWriteback(store, clients, clock, sleep, settings))


@pytest.mark.parametrize("system", ["autotask", "connectwise", "halopsa"])
def test_a_no_show_sets_each_psas_status_and_one_internal_note(desk: Desk, system: str) -> None:
    # Given a no-show of an appointment linked to a ticket of this PSA
    event = desk.no_show_event(system)
    # When written back, and the same event delivered again
    assert desk.writeback.handle(event) is Written.WRITTEN
    assert desk.writeback.handle(event) is Written.ALREADY
    # Then the ticket has the NO-SHOW status and exactly one internal note naming the event
    ticket = desk.psa.ticket(system, TICKETS[system])
    assert ticket is not None
    assert ticket.status == NO_SHOW[system]
    [note] = ticket.notes
    assert note.internal and event["event_id"] in note.text
    writes = [(w["kind"], w["event_id"]) for w in desk.psa.listing()["items"]]
    assert writes == [("status", None), ("note", event["event_id"])]


@pytest.mark.parametrize("system", ["autotask", "connectwise", "halopsa"])
def test_a_429_and_a_500_are_retried_then_written_once(desk: Desk, system: str) -> None:
    event = desk.no_show_event(system)
    # Given the PSA rate limiting the first write, then failing the note's first post
    desk.psa.fail_next(Fault(status=429, retry_after="3"), system=system)
    # When written back
    assert desk.writeback.handle(event) is Written.WRITTEN
    # Then it waited, and the ticket has one note
    ticket = desk.psa.ticket(system, TICKETS[system])
    assert ticket is not None and len(ticket.notes) == 1
    assert desk.clock.now() >= START + timedelta(minutes=10, seconds=3)


def test_a_500_on_the_note_is_retried_without_a_second_note(desk: Desk) -> None:
    event = desk.no_show_event("autotask")
    # Given Autotask answering the note's post with a 500 (after the zone lookup, the status and the search)
    desk.psa.fail_next(None, None, None, Fault(status=500), system="autotask")
    assert desk.writeback.handle(event) is Written.WRITTEN
    ticket = desk.psa.ticket("autotask", TICKETS["autotask"])
    assert ticket is not None and len(ticket.notes) == 1
    history = desk.store.load(event["appointment"]["id"]).history
    assert history[-1].action is Record.PSA_WRITTEN and history[-1].detail["attempts"] == 2


def test_calls_per_no_show_are_counted(desk: Desk) -> None:
    event = desk.no_show_event("autotask")
    desk.writeback.handle(event)
    # the zone lookup (once per container), the status, the note search and the note
    assert desk.psa.requests["autotask"] == 4


def test_a_deleted_ticket_is_recorded_not_retried(desk: Desk) -> None:
    event = desk.no_show_event("halopsa")
    desk.psa.create_on_use = False
    assert desk.writeback.handle(event) is Written.TICKET_GONE
    history = desk.store.load(event["appointment"]["id"]).history
    assert history[-1].action is Record.PSA_WRITEBACK_FAILED


def test_a_psa_down_fails_the_event_after_four_attempts(desk: Desk) -> None:
    event = desk.no_show_event("connectwise")
    desk.psa.fail_next(*[Fault(status=503)] * 40, system="connectwise")
    with pytest.raises(PsaWritebackFailed):
        desk.writeback.handle(event)
    history = desk.store.load(event["appointment"]["id"]).history
    assert history[-1].action is Record.PSA_WRITEBACK_FAILED
