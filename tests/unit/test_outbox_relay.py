"""The outbox relay on fakes: each mail claimed, sent once, retried with back-off, failed loudly; each
history entry published once, whatever the stream replays."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from appointments.adapters.clock import ManualClock
from appointments.domain import lifecycle
from appointments.domain.history import Record
from appointments.domain.model import CancelledBy
from appointments.domain.outbox import MailKind, MailStatus, OutboxMail
from appointments.errors import EventsUnavailable, MailRejected, MailThrottled
from appointments.mail.render import RenderedMail
from appointments.ports import OutgoingMail
from appointments.services.outbox_relay import HistoryRecord, OutboxRelay, RelayPolicy, Sent
from tests.factories import CATALOG, NOW, OPS, a_draft
from tests.fakes import InMemoryAppointmentStore

if TYPE_CHECKING:
    from collections.abc import Sequence

    from appointments.domain.model import Appointment
    from appointments.ports import DomainEvent

OPS_MAIL = "ops@msp.example"


class ScriptedMailer:
    """Fails as scripted (one exception per call, None = accept), then accepts everything."""

    def __init__(self, *script: Exception | None) -> None:
        self.script = list(script)
        self.sent: list[OutgoingMail] = []
        self.calls = 0

    def send(self, mail: OutgoingMail) -> str:
        self.calls += 1
        failure = self.script.pop(0) if self.script else None
        if failure is not None:
            raise failure
        self.sent.append(mail)
        return f"ses-{len(self.sent)}"


class RecordingBus:
    def __init__(self, fail: bool = False) -> None:
        self.events: list[DomainEvent] = []
        self.fail = fail

    def publish(self, events: Sequence[DomainEvent]) -> None:
        if self.fail:
            raise EventsUnavailable("down")
        self.events.extend(events)


def rendered(mail: OutboxMail, appointment: Appointment) -> RenderedMail:
    return RenderedMail(subject=f"{mail.kind} for {appointment.customer.name}", text="text", html="<p>html</p>")


def a_relay(
    store: InMemoryAppointmentStore,
    mailer: ScriptedMailer,
    bus: RecordingBus | None = None,
    clock: ManualClock | None = None,
) -> OutboxRelay:
    policy = RelayPolicy(sender="desk@msp.example", ops_alert_email=OPS_MAIL)
    return OutboxRelay(store, mailer, bus or RecordingBus(), rendered, clock or ManualClock(NOW), policy)


def booked_with_confirmation(store: InMemoryAppointmentStore) -> tuple[str, str]:
    change = lifecycle.create(a_draft(), appointment_id="01APPT", catalog=CATALOG, at=NOW, actor=OPS)
    mail = OutboxMail.for_change(MailKind.CONFIRMATION, change.after, to=("dana@example.com",), at=NOW, context={})
    store.commit(change.with_mails(mail))
    return change.after.id, mail.key


def test_a_new_mail_is_sent_once_and_marked_with_the_services_id() -> None:
    # Given a committed change with its confirmation
    store, mailer = InMemoryAppointmentStore(), ScriptedMailer()
    appointment_id, key = booked_with_confirmation(store)
    relay = a_relay(store, mailer)
    # When the stream hands it over, and then hands it over again (a replayed record)
    assert relay.send(appointment_id, key) is Sent.SENT
    assert relay.send(appointment_id, key) is Sent.TAKEN
    # Then one mail went out, to the customer, and it is marked sent with the id
    [sent] = mailer.sent
    assert (sent.to, sent.sender, sent.subject) == (
        ("dana@example.com",),
        "desk@msp.example",
        "confirmation for Dana Reyes",
    )
    [mail] = store.load(appointment_id).mails
    assert (mail.status, mail.message_id, mail.attempts) == (MailStatus.SENT, "ses-1", 1)


def test_a_throttled_mail_goes_back_to_pending_with_back_off_and_is_sent_on_the_third_try() -> None:
    # Given a mail service that throttles the first two tries
    store, mailer = InMemoryAppointmentStore(), ScriptedMailer(MailThrottled("slow"), MailThrottled("slow"))
    appointment_id, key = booked_with_confirmation(store)
    clock = ManualClock(NOW)
    relay = a_relay(store, mailer, clock=clock)
    # When the relay tries, and the sweeper retries at each due time
    assert relay.send(appointment_id, key) is Sent.RETRY
    assert relay.send(appointment_id, key) is Sent.TAKEN  # not due yet: backing off
    clock.advance(timedelta(minutes=1))
    assert relay.send(appointment_id, key) is Sent.RETRY
    clock.advance(timedelta(minutes=1))
    assert relay.send(appointment_id, key) is Sent.TAKEN  # the second back-off is two minutes
    clock.advance(timedelta(minutes=1))
    assert relay.send(appointment_id, key) is Sent.SENT
    # Then it was sent once, on the third attempt
    assert (mailer.calls, len(mailer.sent)) == (3, 1)
    [mail] = [m for m in store.load(appointment_id).mails if m.key == key]
    assert (mail.status, mail.attempts) == (MailStatus.SENT, 3)


def test_a_permanent_rejection_is_failed_recorded_in_history_and_alerts_ops_once() -> None:
    store, mailer = InMemoryAppointmentStore(), ScriptedMailer(MailRejected("address does not exist"))
    appointment_id, key = booked_with_confirmation(store)
    relay = a_relay(store, mailer)
    assert relay.send(appointment_id, key) is Sent.FAILED
    record = store.load(appointment_id)
    [failed] = [m for m in record.mails if m.key == key]
    assert failed.status is MailStatus.FAILED
    assert record.history[-1].action is Record.MAIL_FAILED
    assert record.history[-1].detail["reason"] == "address does not exist"
    [alert] = [m for m in record.mails if m.kind is MailKind.OPS_ALERT]
    assert alert.to == (OPS_MAIL,)
    # And a failed mail is never tried again
    assert relay.send(appointment_id, key) is Sent.TAKEN


def test_a_crash_between_claim_and_send_is_retried_when_the_lease_runs_out() -> None:
    # Given a sender that claimed the mail and died before sending it
    store, mailer = InMemoryAppointmentStore(), ScriptedMailer()
    appointment_id, key = booked_with_confirmation(store)
    assert store.claim_mail(appointment_id, key, token="dead", now=NOW, lease_until=NOW + timedelta(minutes=2))
    clock = ManualClock(NOW)
    relay = a_relay(store, mailer, clock=clock)
    # Then nobody else sends it while the lease holds, and the next sweep after it sends it once
    assert relay.send(appointment_id, key) is Sent.TAKEN
    clock.advance(timedelta(minutes=2))
    [due] = store.due(
        __import__("appointments.ports").ports.DueKind.MAIL, store._shard(appointment_id), clock.now(), limit=5
    ).items
    assert relay.send_due((due,)) == 1
    assert len(mailer.sent) == 1


def test_a_crash_between_send_and_mark_sent_sends_it_again_after_the_lease_the_one_known_duplicate() -> None:
    # Given a sender whose mail the service took, and which died before marking it sent
    store, mailer = InMemoryAppointmentStore(), ScriptedMailer()
    appointment_id, key = booked_with_confirmation(store)
    claimed = store.claim_mail(appointment_id, key, token="dead", now=NOW, lease_until=NOW + timedelta(minutes=2))
    assert claimed is not None
    mailer.send(_as_outgoing(claimed))
    clock = ManualClock(NOW)
    relay = a_relay(store, mailer, clock=clock)
    # When its lease runs out, the mail is sent again: the duplicate the relay's docstring names
    clock.advance(timedelta(minutes=2))
    assert relay.send(appointment_id, key) is Sent.SENT
    assert len(mailer.sent) == 2
    # And the dead sender, coming back, cannot mark it: its claim is gone
    assert not store.finish_mail(appointment_id, key, token="dead", at=NOW, message_id="late")


def _as_outgoing(mail: OutboxMail) -> OutgoingMail:
    return OutgoingMail(sender="desk@msp.example", to=mail.to, subject="s", text="t", html="h")


def _history(store: InMemoryAppointmentStore, appointment_id: str) -> list[HistoryRecord]:
    appointment = store.get(appointment_id)
    return [
        HistoryRecord(appointment_id, f"H#{appointment.version:010d}#{n:03d}", entry, {"id": appointment_id})
        for n, entry in enumerate(store.history[appointment_id])
    ]


def test_each_history_entry_is_published_once_with_its_stable_id_whatever_is_replayed() -> None:
    store, bus = InMemoryAppointmentStore(), RecordingBus()
    appointment_id, _ = booked_with_confirmation(store)
    relay = a_relay(store, ScriptedMailer(), bus)
    records = _history(store, appointment_id)
    assert relay.publish(records) == 1
    assert relay.publish(records) == 0  # the stream delivered the record twice
    [event] = bus.events
    assert event.detail_type == "appointment.create"
    assert event.event_id == f"{appointment_id}/H#0000000001#000"
    assert event.detail["to_status"] == "scheduled"


def test_an_event_the_bus_refuses_is_unmarked_so_the_retried_record_publishes_it() -> None:
    store, bus = InMemoryAppointmentStore(), RecordingBus(fail=True)
    appointment_id, _ = booked_with_confirmation(store)
    relay = a_relay(store, ScriptedMailer(), bus)
    records = _history(store, appointment_id)
    with pytest.raises(EventsUnavailable):
        relay.publish(records)
    bus.fail = False
    assert relay.publish(records) == 1
    assert len(bus.events) == 1


def test_a_confirmation_that_waited_past_a_cancellation_is_skipped_not_sent() -> None:
    # Given a confirmation throttled once, then the appointment cancelled before the retry
    store, mailer = InMemoryAppointmentStore(), ScriptedMailer(MailThrottled("slow"))
    appointment_id, key = booked_with_confirmation(store)
    clock = ManualClock(NOW)
    relay = a_relay(store, mailer, clock=clock)
    assert relay.send(appointment_id, key) is Sent.RETRY
    cancelled = lifecycle.cancel(store.get(appointment_id), by=CancelledBy.CUSTOMER, reason="x", at=NOW, actor=OPS)
    store.commit(cancelled)
    # When the retry comes due
    clock.advance(timedelta(minutes=1))
    # Then "confirmed" never follows "cancelled": the mail is skipped, and says so
    assert relay.send(appointment_id, key) is Sent.SKIPPED
    assert mailer.sent == []
    [mail] = [m for m in store.load(appointment_id).mails if m.key == key]
    assert mail.status is MailStatus.SKIPPED
