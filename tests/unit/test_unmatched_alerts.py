"""Ops alerts about booking changes left unmatched, on in-memory fakes: once, after the delay, only while the
change still waits, never for a ticket event, never twice (redeliveries, later sweeps, racing sweeps)."""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from appointments.adapters.clock import ManualClock
from appointments.domain.coupons import CouponPolicy
from appointments.domain.events import CanonicalEvent, EventKind
from appointments.domain.model import TicketRef
from appointments.errors import MailRejected, MailThrottled
from appointments.mail.branding import Branding
from appointments.mail.render import render_unmatched_alert
from appointments.ports import OutgoingMail
from appointments.services.processor import EventProcessor, SourcePolicy
from appointments.services.sweeper import Sweeper, SweepPolicy
from appointments.services.unmatched_alerts import AlertPolicy, UnmatchedAlerts
from appointments.sources.base import WebhookRequest
from appointments.sources.generic import GenericSource
from tests.factories import CATALOG
from tests.fakes import InMemoryAppointmentStore
from tests.signing import sample

NOW = datetime(2026, 11, 23, 10, 1, tzinfo=UTC)
OPS_MAIL = "ops@msp.example"
DELAY = timedelta(minutes=30)
M = timedelta(minutes=1)


def generic_event(name: str, **changes: Any) -> CanonicalEvent:
    document = {**json.loads(sample(f"generic/{name}.json")), **changes}
    [event] = GenericSource().parse(WebhookRequest(headers={}, body=json.dumps(document).encode()))
    return event


class RecordingMailer:
    """Takes every mail, unless ``fail_with`` says how the next sends fail."""

    def __init__(self) -> None:
        self.sent: list[OutgoingMail] = []
        self.fail_with: list[Exception] = []

    def send(self, mail: OutgoingMail) -> str:
        if self.fail_with:
            raise self.fail_with.pop(0)
        self.sent.append(mail)
        return f"msg-{len(self.sent)}"


class Desk:
    def __init__(self, alert_after: timedelta | None = DELAY) -> None:
        self.store = InMemoryAppointmentStore()
        self.clock = ManualClock(NOW)
        self.mailer = RecordingMailer()
        policy = SourcePolicy(ops_alert_email=OPS_MAIL, unmatched_alert_after=alert_after)
        self.processor = EventProcessor(self.store, self.clock, CATALOG, policy)
        render = functools.partial(render_unmatched_alert, branding=Branding("Acme IT", "help@msp.example"))
        self.alerts = UnmatchedAlerts(
            self.store,
            self.mailer,
            self.clock,
            render,
            AlertPolicy(sender="desk@msp.example", ops_alert_email=OPS_MAIL),
        )
        sweep_policy = SweepPolicy(coupons=CouponPolicy(percent=15, valid_days=180), ops_alert_email=OPS_MAIL)
        self.sweeper = Sweeper(
            self.store,
            self.clock,
            CATALOG,
            sweep_policy,
            unmatched_alerts=self.alerts if alert_after is not None else None,
        )

    def at(self, when: datetime, event: CanonicalEvent) -> None:
        self.clock.set(when)
        self.processor.apply(event)

    def sweep_at(self, when: datetime) -> int:
        self.clock.set(when)
        return self.sweeper.sweep().unmatched_alerts_sent


def test_a_cancellation_of_a_booking_never_received_alerts_ops_once_after_the_delay() -> None:
    # Given a cancellation of a booking the desk never received
    desk = Desk()
    desk.at(NOW, generic_event("appointment_cancelled"))
    # When the sweeper runs before the delay, then exactly at it
    assert desk.sweep_at(NOW + DELAY - M) == 0
    assert desk.mailer.sent == []
    assert desk.sweep_at(NOW + DELAY) == 1
    # Then ops got one mail naming the source, the event, the booking, its arrival and its drop, and the listing
    [mail] = desk.mailer.sent
    assert mail.to == (OPS_MAIL,)
    assert mail.sender == "desk@msp.example"
    assert mail.subject == "[Acme IT] unmatched appointment.cancelled from generic: generic:stf-981"
    for told in (
        "source: generic",
        "event: appointment.cancelled",
        "booking: generic:stf-981",
        f"arrived: {NOW.isoformat()}",
        f"dropped: {(NOW + timedelta(hours=72)).isoformat()}",
        "GET /unmatched",
        "Event\n",
        "delivery: evt_01JDQ3KD2W4Y6A8C0E2G4J6M8P",
    ):
        assert told in mail.text, told
    assert "GET /unmatched" in mail.html
    assert mail.appointment_id is None  # no appointment: the mail is tagged with nothing of one
    # And the event still waits, listed for ops
    assert [w.event.kind for w in desk.store.unmatched(limit=10).items] == [EventKind.CANCELLED]


def test_no_alert_when_the_booking_arrives_before_the_delay() -> None:
    # Given a cancellation that overtook its booking, and the booking ten minutes later
    desk = Desk()
    desk.at(NOW, generic_event("appointment_cancelled"))
    desk.at(NOW + 10 * M, generic_event("appointment_scheduled"))
    # When the delay passes
    sent = desk.sweep_at(NOW + DELAY)
    # Then ops hear nothing, and the alert is gone with its event
    assert sent == 0
    assert desk.mailer.sent == []
    assert desk.store.alerts == {}
    assert desk.store.unmatched(limit=10).items == ()


def test_redeliveries_and_later_sweeps_never_alert_twice() -> None:
    # Given a cancellation delivered three times: before the alert, and after it
    desk = Desk()
    cancel = generic_event("appointment_cancelled")
    desk.at(NOW, cancel)
    desk.at(NOW + 20 * M, cancel)
    # When sweeps run on, and the vendor retries once more after the alert
    sent = [desk.sweep_at(NOW + DELAY), desk.sweep_at(NOW + DELAY + M)]
    desk.at(NOW + 45 * M, cancel)
    sent += [desk.sweep_at(NOW + 45 * M + DELAY), desk.sweep_at(NOW + timedelta(hours=5))]
    # Then one alert, due from the first arrival
    assert sent == [1, 0, 0, 0]
    assert f"arrived: {NOW.isoformat()}" in desk.mailer.sent[0].text


def test_two_waiting_changes_are_two_alerts() -> None:
    # Given a cancellation and an assignment, each of a booking never received
    desk = Desk()
    desk.at(NOW, generic_event("appointment_cancelled"))
    desk.at(NOW + M, generic_event("appointment_assigned"))
    # When the delay passes for both
    # Then each is named once
    assert desk.sweep_at(NOW + M + DELAY) == 2
    assert sorted(m.subject.split()[3] for m in desk.mailer.sent) == ["appointment.assigned", "appointment.cancelled"]


def test_a_ticket_event_without_its_booking_never_alerts() -> None:
    # Given a PSA ticket completed that no appointment names (the normal case for most tickets)
    desk = Desk()
    ticket = TicketRef(system="autotask", id="99001")
    event = CanonicalEvent(
        source="autotask",
        delivery_id="ticket-99001-complete",
        kind=EventKind.TICKET_COMPLETED,
        occurred_at=NOW,
        entity="ticket#autotask#99001",
        ticket=ticket,
    )
    desk.at(NOW, event)
    # When the delay passes
    # Then it waits, listed, and nobody is alerted
    assert desk.sweep_at(NOW + timedelta(hours=2)) == 0
    assert desk.store.alerts == {}
    assert len(desk.store.unmatched(limit=10).items) == 1


def test_off_when_the_delay_is_zero() -> None:
    # Given the alert turned off (UNMATCHED_ALERT_MINUTES=0: no delay, no sender)
    desk = Desk(alert_after=None)
    desk.at(NOW, generic_event("appointment_cancelled"))
    # When hours pass
    sent = desk.sweep_at(NOW + timedelta(hours=3))
    # Then no alert was armed nor sent
    assert (sent, desk.store.alerts, desk.mailer.sent) == (0, {}, [])


def test_a_sweep_racing_another_sends_nothing_and_a_crashed_claim_is_retried_after_its_lease() -> None:
    # Given an alert due, claimed by another sweep that is still sending it (or crashed meanwhile)
    desk = Desk()
    desk.at(NOW, generic_event("appointment_cancelled"))
    due_at = NOW + DELAY
    [alert] = desk.store.unmatched_alerts_due(due_at, limit=10).items
    taken = desk.store.claim_unmatched_alert(alert, token="other", now=due_at, lease_until=due_at + 2 * M)
    assert taken is not None
    # When this sweep runs inside the other's lease, then after it
    inside, after = desk.sweep_at(due_at + M), desk.sweep_at(due_at + 2 * M)
    # Then only the second sends, and the crashed sweep can no longer mark it
    assert (inside, after) == (0, 1)
    assert not desk.store.finish_unmatched_alert(alert, token="other", at=due_at + 3 * M, message_id="late")


def test_a_throttled_alert_is_sent_after_its_lease_and_a_refused_one_is_not_retried() -> None:
    # Given two alerts due; the mail service throttles the first send and refuses the second
    desk = Desk()
    desk.at(NOW, generic_event("appointment_cancelled"))
    desk.mailer.fail_with = [MailThrottled("slow down")]
    # When sweeps run every minute
    sent = [desk.sweep_at(NOW + DELAY + n * M) for n in range(4)]
    # Then the throttled one goes out once its lease has run out, and never again
    assert sent == [0, 0, 1, 0]
    desk.at(NOW + timedelta(hours=1), generic_event("appointment_assigned"))
    desk.mailer.fail_with = [MailRejected("no such mailbox")]
    refused = [desk.sweep_at(NOW + timedelta(hours=1) + DELAY + n * M) for n in range(4)]
    assert refused == [0, 0, 0, 0]
    assert len(desk.mailer.sent) == 1
    assert desk.store.unmatched_alerts_due(NOW + timedelta(days=2), limit=10).items == ()
