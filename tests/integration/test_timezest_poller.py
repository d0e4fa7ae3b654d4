"""The TimeZest poller against a fake TimeZest on 127.0.0.1: pages, 429s, faults, crashes and the rate limit.

The real HTTP client and API adapter talk to ``localdev.fake_timezest`` over a socket; the queue applies each
event at once with the real processor on an in-memory store, so what the poller queues is what the desk holds.
Time is one ``ManualClock``: the fake counts requests on it and the poller's waits advance it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from appointments.adapters.clock import ManualClock
from appointments.adapters.timezest_api import TimeZestApi
from appointments.adapters.vendor_http import HttpPolicy, VendorHttp
from appointments.domain.events import CanonicalEvent, EventKind
from appointments.domain.history import Action
from appointments.domain.model import ExternalRef, Status, Technician, TicketRef
from appointments.errors import QueueUnavailable
from appointments.services.processor import EventProcessor, SourcePolicy
from appointments.services.timezest_poller import PollPolicy, TimeZestPoller
from localdev.fake_timezest import FakeTimeZest, Fault, Serving
from tests.factories import CATALOG
from tests.fakes import InMemoryAppointmentStore, InMemoryPollState

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
KEY = "tz-test-key"
TOMORROW_10 = int(datetime(2026, 12, 2, 15, 0, tzinfo=UTC).timestamp())  # 10:00 in New York


def a_request(number: int, **changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "id": f"sreq_{number:04d}",
        "status": "scheduled",
        "appointment_type_id": "apty_remote30",
        "end_user_name": f"Customer {number}",
        "end_user_email": f"customer{number}@client.example",
        "associated_entities": [
            {"type": "autotask/ticket", "id": 9000 + number, "number": f"#T2026{number:04d}"},
            {"type": "autotask/company", "id": 77},
        ],
        "resources": [{"type": "agent", "id": "agt_1", "name": "Dana Tech"}],
        "scheduled_agents": [{"id": "agt_1", "name": "Dana Tech", "email": "dana@msp.example"}],
        "selected_start_time": TOMORROW_10 + number * 1800,
        "selected_time_zone": "America/New_York",
        "scheduling_url": f"https://msp.timezest.com/r/{number}",
    }
    request.update(changes)
    return request


@dataclass
class ApplyingQueue:
    """The event queue, applying each event as the processor would take it from SQS."""

    processor: EventProcessor
    queued: list[CanonicalEvent] = field(default_factory=list)
    fail_on_call: int | None = None  # the n-th enqueue (1-based) raises, after the earlier ones were applied
    calls: int = 0

    def enqueue(self, events: Sequence[CanonicalEvent]) -> None:
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise QueueUnavailable("the queue is down")
        for event in events:
            self.queued.append(event)
            self.processor.apply(event)


@dataclass
class Desk:
    clock: ManualClock
    fake: FakeTimeZest
    store: InMemoryAppointmentStore
    queue: ApplyingQueue
    state: InMemoryPollState
    poller: TimeZestPoller

    def appointment(self, request_id: str) -> Any:
        appointment_id = self.store.find_by_external_ref(ExternalRef(system="timezest", id=request_id))
        assert appointment_id is not None, f"{request_id} was not taken in"
        return self.store.get(appointment_id)


def make_desk(base_url: str, clock: ManualClock, fake: FakeTimeZest, **policy: Any) -> Desk:
    store = InMemoryAppointmentStore()
    processor = EventProcessor(
        store,
        clock,
        CATALOG,
        SourcePolicy(
            ops_alert_email="ops@msp.example",
            default_types={"timezest": "remote_call_in"},
            type_map={"timezest": {"apty_remote30": "remote_call_in", "apty_onsite60": "onsite"}},
        ),
    )
    queue = ApplyingQueue(processor)
    state = InMemoryPollState()
    http = VendorHttp("timezest", HttpPolicy(read_timeout=policy.pop("read_timeout", 5.0), backoff=0))

    def sleep(seconds: float) -> None:
        clock.advance(timedelta(seconds=seconds))

    poller = TimeZestPoller(
        TimeZestApi(http, KEY, base_url),
        queue,
        state,
        clock,
        sleep,
        PollPolicy(**policy),
    )
    return Desk(clock, fake, store, queue, state, poller)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def fake(clock: ManualClock) -> FakeTimeZest:
    return FakeTimeZest(clock=clock.now, api_key=KEY, page_size=10)


@pytest.fixture
def served(fake: FakeTimeZest) -> Iterator[str]:
    with Serving(fake) as base_url:
        yield base_url


@pytest.fixture
def desk(served: str, clock: ManualClock, fake: FakeTimeZest) -> Desk:
    return make_desk(served, clock, fake)


def test_three_pages_of_changes_make_every_appointment_right(desk: Desk) -> None:
    # Given 25 booked requests, 10 to a page
    for number in range(25):
        desk.fake.put(a_request(number))
    # When the poller runs
    report = desk.poller.poll()
    # Then it read three pages (and the types once) and every appointment is as TimeZest says
    assert (report.pages, report.requests, report.events, report.completed) == (3, 4, 25, True)
    assert len(desk.store.appointments) == 25
    seven = desk.appointment("sreq_0007")
    assert seven.status is Status.SCHEDULED
    assert seven.start == datetime.fromtimestamp(TOMORROW_10 + 7 * 1800, UTC)
    assert seven.end - seven.start == timedelta(minutes=30)
    assert seven.timezone == "America/New_York"
    assert seven.ticket == TicketRef(system="autotask", id="9007", number="T20260007")
    assert [(t.id, t.name, t.primary) for t in seven.technicians] == [("agt_1", "Dana Tech", True)]
    assert seven.links.reschedule == "https://msp.timezest.com/r/7"
    assert seven.customer.email == "customer7@client.example"


def test_a_quiet_minute_costs_one_request_and_queues_nothing_again(desk: Desk) -> None:
    # Given a run that took in two bookings
    desk.fake.put(a_request(1))
    desk.fake.put(a_request(2))
    desk.poller.poll()
    queued = len(desk.queue.queued)
    # When the next run comes a minute later with nothing new (the overlap re-reads both)
    desk.clock.advance(timedelta(minutes=1))
    report = desk.poller.poll()
    # Then one request, and nothing queued twice
    assert (report.requests, report.changes, report.events) == (1, 0, 0)
    assert len(desk.queue.queued) == queued


def test_a_later_time_reschedules_and_a_cancel_cancels(desk: Desk) -> None:
    # Given two bookings taken in
    desk.fake.put(a_request(1))
    desk.fake.put(a_request(2))
    desk.poller.poll()
    # When the customer moves one and cancels the other in TimeZest
    desk.clock.advance(timedelta(minutes=5))
    desk.fake.put(a_request(1, selected_start_time=TOMORROW_10 + 86400))
    desk.fake.put(a_request(2, status="cancelled"))
    desk.poller.poll()
    # Then the same appointments follow
    assert desk.appointment("sreq_0001").start == datetime.fromtimestamp(TOMORROW_10 + 86400, UTC)
    assert desk.appointment("sreq_0002").status is Status.CANCELLED
    assert len(desk.store.appointments) == 2


def test_a_team_with_nobody_scheduled_is_unassigned_and_several_agents_keep_the_primary(desk: Desk) -> None:
    # Given one request given to a team nobody took, and one two agents took
    desk.fake.put(a_request(1, resources=[{"type": "team", "id": "team_9", "name": "Tier 1"}], scheduled_agents=[]))
    agents = [{"id": "agt_2", "name": "Lee Lead"}, {"id": "agt_3", "name": "Sam Second"}]
    desk.fake.put(a_request(2, scheduled_agents=agents))
    # When polled
    desk.poller.poll()
    # Then the first waits for a technician and the second names both, the first one primary
    assert desk.appointment("sreq_0001").technicians == ()
    assert [(t.id, t.primary) for t in desk.appointment("sreq_0002").technicians] == [("agt_2", True), ("agt_3", False)]


def test_a_shareable_url_booking_is_kept_then_linked_to_the_ticket_timezest_creates(desk: Desk) -> None:
    # Given a booking made through a shareable URL: no ticket yet
    desk.fake.put(a_request(1, associated_entities=[]))
    desk.poller.poll()
    assert desk.appointment("sreq_0001").ticket is None
    # And the PSA's later assignment of the ticket TimeZest created, arriving before the poll sees the link
    ticket = TicketRef(system="autotask", id="9001")
    assignment = CanonicalEvent(
        source="autotask",
        delivery_id="hook:9001:1",
        kind=EventKind.TICKET_ASSIGNED,
        occurred_at=NOW + timedelta(minutes=3),
        sequence=1,
        entity="autotask:ticket:9001",
        ticket=ticket,
        technicians=(Technician(id="29683", name="Autotask resource 29683"),),
    )
    desk.queue.processor.apply(assignment)
    # When the next poll sees the request name its new ticket
    desk.clock.advance(timedelta(minutes=2))
    desk.fake.put(a_request(1))
    desk.poller.poll()
    # Then the appointment is linked, and the ticket event that waited for it is applied
    appointment = desk.appointment("sreq_0001")
    assert appointment.ticket is not None and appointment.ticket.id == "9001"
    assert [t.id for t in appointment.technicians] == ["29683"]


def test_a_429_waits_for_retry_after_and_resumes(desk: Desk) -> None:
    # Given 25 requests and TimeZest answering the second page with a 429
    for number in range(25):
        desk.fake.put(a_request(number))
    started = desk.clock.now()
    desk.fake.fail_next(None, Fault(status=429, retry_after="7"))
    # When the poller runs
    report = desk.poller.poll()
    # Then it waited the 7 seconds TimeZest asked for, asked again, and read everything
    assert report.rate_limited == 1
    assert report.waited_seconds >= 7
    assert desk.clock.now() - started >= timedelta(seconds=7)
    assert (report.completed, len(desk.store.appointments)) == (True, 25)


def test_a_429_with_no_time_left_ends_the_run_and_the_next_one_resumes(desk: Desk) -> None:
    # Given TimeZest answering 429 with a long Retry-After
    for number in range(5):
        desk.fake.put(a_request(number))
    desk.fake.fail_next(Fault(status=429, retry_after="120"))
    # When a run with 50 seconds left meets it
    report = desk.poller.poll(seconds_left=lambda: 50.0)
    # Then it stops without saving a cursor past anything
    assert (report.completed, report.stopped, report.events) == (False, "out of time", 0)
    # And the next run, later, reads everything
    desk.clock.advance(timedelta(minutes=2))
    again = desk.poller.poll()
    assert (again.completed, len(desk.store.appointments)) == (True, 5)


def test_a_500_is_retried_and_a_dead_vendor_loses_nothing(desk: Desk) -> None:
    # Given one 500 (retried at once by the client) on the first page
    for number in range(12):
        desk.fake.put(a_request(number))
    desk.fake.fail_next(Fault(status=500))
    report = desk.poller.poll()
    assert (report.completed, len(desk.store.appointments)) == (True, 12)
    # When TimeZest then fails every try on a run
    desk.clock.advance(timedelta(minutes=1))
    desk.fake.put(a_request(20))
    desk.fake.fail_next(*[Fault(status=503)] * 3)
    failed = desk.poller.poll()
    # Then that run stops, saved no cursor past the change, and the next run takes it in
    assert (failed.completed, failed.stopped) == (False, "vendor_unavailable")
    desk.clock.advance(timedelta(minutes=1))
    desk.poller.poll()
    assert len(desk.store.appointments) == 13


def test_a_crash_mid_run_loses_nothing_and_duplicates_nothing(desk: Desk) -> None:
    # Given three pages, and the queue failing on the second page's events
    for number in range(25):
        desk.fake.put(a_request(number))
    desk.queue.fail_on_call = 2
    with pytest.raises(QueueUnavailable):
        desk.poller.poll()
    assert len(desk.store.appointments) == 10  # the first page was queued before the crash
    # When the next run comes
    desk.clock.advance(timedelta(minutes=1))
    report = desk.poller.poll()
    # Then every booking is there, each created once and changed by nothing else
    assert report.completed
    assert len(desk.store.appointments) == 25
    for appointment_id in desk.store.appointments:
        actions = [entry.action for entry in desk.store.load(appointment_id).history]
        assert actions == [Action.CREATE], actions


def test_the_request_rate_never_exceeds_timezests_limit_across_runs(served: str, clock: ManualClock) -> None:
    # Given 400 changed requests on pages of one (400 requests to read them)
    fake = FakeTimeZest(clock=clock.now, api_key=KEY, page_size=1)
    with Serving(fake) as base_url:
        desk = make_desk(base_url, clock, fake, max_pages=1000)
        desk.poller.poll()  # the first run, before anything was sent
        clock.advance(timedelta(minutes=1))
        for number in range(400):
            fake.put(a_request(number, status="sent", selected_start_time=None))
        fake.seen_at.clear()
        # When two runs go back to back
        first = desk.poller.poll()
        second = desk.poller.poll()
    # Then TimeZest never saw more than its 180 in any minute
    assert first.completed and second.completed
    assert len(fake.seen_at) == 800
    assert fake.most_in_any_minute() <= 180
    assert fake.most_in_any_minute() >= 150  # and the budget is used, not wasted


def test_a_slow_answer_times_out_and_the_next_run_reads_it(served: str, clock: ManualClock, fake: FakeTimeZest) -> None:
    # Given a client that waits 0.2 s for an answer, and TimeZest taking a second for one
    desk = make_desk(served, clock, fake, read_timeout=0.2)
    fake.put(a_request(1))
    fake.fail_next(*[Fault(status=200, delay_seconds=1.0)] * 3)
    # When polled
    report = desk.poller.poll()
    # Then the run gives up on it, and nothing is lost
    assert (report.completed, report.stopped) == (False, "vendor_unavailable")
    clock.advance(timedelta(minutes=1))
    desk.poller.poll()
    assert len(desk.store.appointments) == 1


def test_the_first_run_imports_upcoming_bookings_only(desk: Desk) -> None:
    # Given one booking yesterday and one tomorrow, both changed within the lookback, and one cancelled
    desk.fake.put(a_request(1, selected_start_time=int((NOW - timedelta(hours=20)).timestamp())))
    desk.fake.put(a_request(2))
    desk.fake.put(a_request(3, status="cancelled"))
    # When the poller runs for the first time
    desk.poller.poll()
    # Then only the one still ahead is taken in: nothing to cancel that the desk never held
    assert [a.external_refs[0].id for a in desk.store.appointments.values()] == ["sreq_0002"]
    assert not any(desk.store.waits.values())
