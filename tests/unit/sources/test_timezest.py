"""TimeZest: a scheduling request, as a poll reads it now, mapped to the canonical events that bring an
appointment to that state.

Scheduled with a time: one ``appointment.scheduled`` with the whole booking; cancelled or closed with a time:
``appointment.cancelled``; an invitation not answered yet (or a cancel of one that never had a time): nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from appointments.adapters.clock import ManualClock
from appointments.adapters.timezest_api import RequestPage
from appointments.domain.events import CanonicalEvent, EventKind
from appointments.domain.model import CancelledBy, ExternalRef, TicketRef
from appointments.services.timezest_poller import TimeZestPoller
from appointments.sources.timezest import DEFAULT_DURATION, SchedulingRequest, events_of, technicians_of, ticket_of
from tests.fakes import InMemoryPollState

START = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
UPDATED = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
DURATIONS = {"apty_remote30": 30, "apty_onsite60": 60}


def a_request(**changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "id": "sreq_0001",
        "object": "scheduling_request",
        "status": "scheduled",
        "appointment_type_id": "apty_onsite60",
        "end_user_name": "Pat Customer",
        "end_user_email": "pat@client.example",
        "associated_entities": [
            {"type": "connectwise_psa/service_ticket", "id": 4711, "number": "#T20264711"},
            {"type": "connectwise_psa/company", "id": 12},
        ],
        "resources": [{"type": "team", "id": "team_1", "name": "Tier 1"}],
        "scheduled_agents": [
            {"id": "agt_1", "name": "Dana Tech", "email": "dana@msp.example"},
            {"id": "agt_2", "name": "Lee Second"},
        ],
        "selected_start_time": int(START.timestamp()),
        "selected_time_zone": "America/New_York",
        "scheduling_url": "https://msp.timezest.com/r/1",
        "updated_at": int(UPDATED.timestamp()),
    }
    request.update(changes)
    return request


def mapped(**changes: Any) -> tuple[CanonicalEvent, ...]:
    return events_of(SchedulingRequest.model_validate(a_request(**changes)), DURATIONS)


def the_event(**changes: Any) -> CanonicalEvent:
    [event] = mapped(**changes)
    return event


def test_a_scheduled_request_is_one_scheduled_event_with_the_whole_booking() -> None:
    # Given a request two agents took, for an on-site type of 60 minutes
    # When it is mapped
    event = the_event()
    # Then one scheduled event carries the booking: start from the Unix seconds, end after the type's duration
    assert event.kind is EventKind.SCHEDULED
    assert event.source == "timezest"
    assert event.booking is not None
    assert event.booking.start == START
    assert event.booking.end == START + timedelta(minutes=60)
    assert event.booking.timezone == "America/New_York"
    assert event.booking.vendor_type == "apty_onsite60"
    assert (event.booking.customer.name, event.booking.customer.email) == ("Pat Customer", "pat@client.example")
    assert event.booking.links.reschedule == "https://msp.timezest.com/r/1"
    # And the scheduled agents are the technicians, the first one primary
    assert event.booking.technicians is not None
    assert [(t.id, t.name, t.email, t.primary) for t in event.booking.technicians] == [
        ("agt_1", "Dana Tech", "dana@msp.example", True),
        ("agt_2", "Lee Second", None, False),
    ]
    # And the event names the request and its ticket
    assert event.entity == "timezest:sreq_0001"
    assert event.external_ref == ExternalRef(system="timezest", id="sreq_0001")
    assert event.ticket == event.booking.ticket == TicketRef(system="connectwise", id="4711", number="T20264711")
    assert event.occurred_at == UPDATED


@pytest.mark.parametrize("type_id", ["apty_unknown", None])
def test_an_unknown_or_missing_type_lasts_the_default_thirty_minutes(type_id: str | None) -> None:
    # Given a request whose type is not among the known durations (or names none)
    # When it is mapped
    event = the_event(appointment_type_id=type_id)
    # Then it lasts 30 minutes
    assert event.booking is not None
    assert timedelta(minutes=30) == DEFAULT_DURATION
    assert event.booking.end - event.booking.start == timedelta(minutes=30)


def test_with_no_scheduled_agents_the_agent_resources_are_the_technicians() -> None:
    # Given a request nobody took yet, assigned to a team and two agents
    resources = [
        {"type": "team", "id": "team_1", "name": "Tier 1"},
        {"type": "agent", "id": "agt_7", "name": "Robin Agent"},
        {"type": "agent", "id": "agt_8"},
    ]
    request = SchedulingRequest.model_validate(a_request(scheduled_agents=[], resources=resources))
    # When its technicians are read
    technicians = technicians_of(request)
    # Then the agents are, the first primary, the team is not (a nameless agent is named by its id)
    assert [(t.id, t.name, t.primary) for t in technicians] == [
        ("agt_7", "Robin Agent", True),
        ("agt_8", "agt_8", False),
    ]


def test_a_request_given_only_to_teams_is_unassigned() -> None:
    # Given a request nobody took, whose resources are teams only
    # When it is mapped
    event = the_event(scheduled_agents=[], resources=[{"type": "team", "id": "team_1"}, {"type": "team", "id": "t2"}])
    # Then it is booked with no technicians: unassigned (an empty list, not unknown)
    assert event.booking is not None
    assert event.booking.technicians == ()


def test_a_cancelled_request_is_cancelled_by_nobody_named() -> None:
    # Given a request the customer cancelled in TimeZest
    # When it is mapped
    event = the_event(status="cancelled")
    # Then one cancelled event, not blamed on the system, with no booking
    assert (event.kind, event.cancelled_by, event.booking) == (EventKind.CANCELLED, None, None)
    assert event.entity == "timezest:sreq_0001"
    assert event.external_ref == ExternalRef(system="timezest", id="sreq_0001")


def test_a_closed_request_is_cancelled_by_the_system() -> None:
    # Given a request a TimeZest workflow closed
    # When it is mapped
    event = the_event(status="closed")
    # Then the system cancelled it
    assert (event.kind, event.cancelled_by) == (EventKind.CANCELLED, CancelledBy.SYSTEM)


@pytest.mark.parametrize("status", ["new", "sent", "Sent", "something_new"])
def test_an_invitation_not_answered_yet_is_no_event(status: str) -> None:
    # Given an invitation the customer has not answered (no time yet), or a status we do not know
    # When it is mapped
    # Then nothing happens: there is no appointment until a time is picked
    assert mapped(status=status, selected_start_time=None) == ()
    assert mapped(status=status) == ()


@pytest.mark.parametrize("status", ["cancelled", "closed", "scheduled"])
def test_a_request_that_never_had_a_time_is_no_event(status: str) -> None:
    # Given a request with no selected time
    # When it is mapped
    # Then there is nothing to cancel (or book)
    assert mapped(status=status, selected_start_time=None) == ()
    assert mapped(status=status, selected_start_time=None, updated_at=int(UPDATED.timestamp()) + 60) == ()


@pytest.mark.parametrize(
    ("entity", "ticket"),
    [
        (
            {"type": "connectwise_psa/service_ticket", "id": 4711, "number": "#T20264711"},
            TicketRef(system="connectwise", id="4711", number="T20264711"),
        ),
        (
            {"type": "autotask/ticket", "id": "9001", "number": "#T2026.0001"},
            TicketRef(system="autotask", id="9001", number="T2026.0001"),
        ),
        ({"type": "halo_psa/ticket", "id": 55}, TicketRef(system="halopsa", id="55", number=None)),
        ({"type": "autotask/ticket", "id": 9002, "number": "#"}, TicketRef(system="autotask", id="9002", number=None)),
    ],
)
def test_the_ticket_is_the_psa_entity_whose_type_ends_in_ticket(entity: dict[str, Any], ticket: TicketRef) -> None:
    # Given a request that names a company and a ticket
    company = {"type": entity["type"].split("/")[0] + "/company", "id": 77}
    request = SchedulingRequest.model_validate(a_request(associated_entities=[company, entity]))
    # When its ticket is read
    # Then it is the ticket, in our system's name, its number without '#'
    assert ticket_of(request) == ticket


@pytest.mark.parametrize(
    "entities",
    [
        [],
        [{"type": "connectwise_psa/company", "id": 12}],
        [{"type": "autotask/ticket", "number": "#T1"}],  # no id: nothing to link
        [{"type": "freshdesk/ticket", "id": 3}],  # not a PSA we know
    ],
)
def test_a_request_with_no_ticket_we_can_link_is_booked_without_one(entities: list[dict[str, Any]]) -> None:
    # Given a request (booked through a shareable URL, say) with no usable ticket
    # When it is mapped
    event = the_event(associated_entities=entities)
    # Then it is booked without a ticket
    assert event.booking is not None
    assert (event.ticket, event.booking.ticket) == (None, None)


@pytest.mark.parametrize("email", ["not-an-address", "pat@", "two words@client.example", "a" * 300 + "@x.example"])
def test_a_malformed_customer_address_is_dropped_and_the_booking_kept(email: str) -> None:
    # Given a request whose customer typed a wrong address (and an agent with another)
    agents = [{"id": "agt_1", "name": "Dana", "email": "dana at msp"}]
    # When it is mapped
    event = the_event(end_user_email=email, scheduled_agents=agents)
    # Then the booking is there, with no address to write to
    assert event.kind is EventKind.SCHEDULED
    assert event.booking is not None
    assert event.booking.customer.email is None
    assert event.booking.customer.name == "Pat Customer"
    assert event.booking.technicians is not None
    assert [(t.id, t.email) for t in event.booking.technicians] == [("agt_1", None)]


def test_a_customer_with_no_name_is_named_by_the_address_or_a_placeholder() -> None:
    # Given requests with no customer name
    # When mapped
    by_address = the_event(end_user_name=None, end_user_email=" pat@client.example ")
    nameless = the_event(end_user_name="", end_user_email=None)
    # Then the (trimmed) address names the customer, or a placeholder does
    assert by_address.booking is not None and nameless.booking is not None
    assert (by_address.booking.customer.name, by_address.booking.customer.email) == ("pat@client.example",) * 2
    assert nameless.booking.customer.name == "TimeZest customer"


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", None, "../../etc/passwd"])
def test_an_unknown_time_zone_is_utc_and_the_time_stays_right(zone: str | None) -> None:
    # Given a request in a zone we do not know (or none)
    # When it is mapped
    event = the_event(selected_time_zone=zone)
    # Then the zone is UTC and the instant is unchanged
    assert event.booking is not None
    assert (event.booking.timezone, event.booking.start) == ("UTC", START)


def test_the_delivery_id_is_the_state_reported_so_a_re_read_is_the_same_delivery() -> None:
    # Given the same request read by two polls, and then changed
    first = the_event()
    again = the_event()
    changed = the_event(updated_at=int(UPDATED.timestamp()) + 1)
    cancelled = the_event(status="cancelled")
    # Then a re-read is the same delivery, a later change or another status is a new one
    assert first.delivery_id == again.delivery_id
    assert changed.delivery_id != first.delivery_id
    assert cancelled.delivery_id not in (first.delivery_id, changed.delivery_id)
    # And the event happened when TimeZest changed the request
    assert changed.occurred_at == UPDATED + timedelta(seconds=1)


def test_a_later_time_on_the_same_request_is_the_same_appointment_moved() -> None:
    # Given a request rescheduled in TimeZest
    before = the_event()
    after = the_event(selected_start_time=int(START.timestamp()) + 86400, updated_at=int(UPDATED.timestamp()) + 300)
    # Then both name the same booking, at the new time
    assert before.external_ref == after.external_ref
    assert before.entity == after.entity
    assert after.booking is not None
    assert after.booking.start == START + timedelta(days=1)


@pytest.mark.parametrize(
    "changes",
    [
        {"selected_start_time": -1},
        {"selected_start_time": 253_402_300_800},
        {"updated_at": -5},
        {"updated_at": 10**12},
        {"updated_at": None},
        {"id": ""},
        {"status": None},
        {"scheduled_agents": [{"name": "no id"}]},
        {"selected_start_time": "tomorrow"},
    ],
)
def test_an_out_of_range_or_malformed_request_is_refused_by_validation(changes: dict[str, Any]) -> None:
    # Given a request with a timestamp out of range, or a required field wrong
    # When it is validated
    # Then pydantic refuses it (the poller counts it unreadable and goes on)
    with pytest.raises(ValidationError):
        SchedulingRequest.model_validate(a_request(**changes))


def test_numbers_where_text_is_expected_are_read_as_text() -> None:
    # Given ids TimeZest sends as numbers
    request = SchedulingRequest.model_validate(a_request(scheduled_agents=[{"id": 42, "name": "Dana"}]))
    # Then they are read as text
    assert [t.id for t in technicians_of(request)] == ["42"]


# -- what a booking cannot hold is refused at validation (the poller skips it) or clipped -----------------


@pytest.mark.parametrize(
    "changes",
    [
        # A start beyond what a booking holds (2200).
        {"selected_start_time": int(datetime(2201, 1, 1, tzinfo=UTC).timestamp())},
        # Near the end of datetime's range: start + 30 min would overflow.
        {"selected_start_time": 253_402_300_799, "appointment_type_id": None},
        # An update time beyond 2200: occurred_at refuses it.
        {"updated_at": int(datetime(2300, 1, 1, tzinfo=UTC).timestamp())},
        # An id of 200 characters would make an entity over the event's 128.
        {"id": "sreq_" + "x" * 195},
        # 21 agents: a booking holds 20 technicians.
        {"scheduled_agents": [{"id": f"agt_{n}"} for n in range(21)]},
        # A ticket number of 101 characters: a ticket ref holds 100.
        {"associated_entities": [{"type": "autotask/ticket", "id": 1, "number": "T" * 101}]},
        # An empty ticket id: a ticket ref needs one.
        {"associated_entities": [{"type": "autotask/ticket", "id": ""}]},
    ],
)
def test_what_a_booking_cannot_hold_is_refused_at_validation_or_clipped(changes: dict[str, Any]) -> None:
    # Given a request with a value beyond what a booking holds
    try:
        request = SchedulingRequest.model_validate(a_request(**changes))
    except ValidationError:
        return  # refused where the poller counts it unreadable and goes on
    # When it validates, then mapping does not raise: what does not fit is clipped or dropped
    events_of(request, DURATIONS)


# -- the poller meets such a request: one bad request must not stop every other one ---------------------


class FixedRequests:
    """The TimeZest API as the poller reads it: one page of raw requests."""

    def __init__(self, items: Sequence[Mapping[str, Any]]) -> None:
        self.items = items

    def changed(self, *, since: int, until: int, page: int, starting_from: int | None = None) -> RequestPage:
        return RequestPage(items=self.items, next_page=None)

    def durations(self) -> dict[str, int]:
        return dict(DURATIONS)


def sleeper(clock: ManualClock) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        clock.advance(timedelta(seconds=seconds))

    return sleep


class ListQueue:
    def __init__(self) -> None:
        self.queued: list[CanonicalEvent] = []

    def enqueue(self, events: Sequence[CanonicalEvent]) -> None:
        self.queued.extend(events)


def test_one_request_that_cannot_be_mapped_does_not_stop_the_others() -> None:
    # Given a page with a good booking and one far beyond 2200 (valid to SchedulingRequest, not to a booking)
    clock = ManualClock(UPDATED + timedelta(minutes=5))
    good = a_request(id="sreq_good")
    bad = a_request(id="sreq_bad", selected_start_time=int(datetime(2300, 1, 1, tzinfo=UTC).timestamp()))
    queue = ListQueue()
    state = InMemoryPollState()
    poller = TimeZestPoller(FixedRequests([bad, good]), queue, state, clock, sleeper(clock))
    # When the poller runs
    report = poller.poll()
    # Then the good one is queued, the bad one counted unreadable, and the cursor moves on
    assert [e.entity for e in queue.queued] == ["timezest:sreq_good"]
    assert (report.completed, report.unreadable) == (True, 1)
    assert "timezest" in state.states


# -- property: validation is the only way a request is refused ---------------------------------------------

TEXT = st.one_of(st.none(), st.text(max_size=8), st.text(min_size=499, max_size=501), st.integers(-(2**40), 2**40))
PERSON = st.fixed_dictionaries(
    {"id": st.one_of(st.text(max_size=6), st.integers(0, 10**6), st.none())},
    optional={"name": TEXT, "email": st.one_of(TEXT, st.emails()), "type": st.sampled_from(["agent", "team", "x"])},
)
ENTITY = st.fixed_dictionaries(
    {"type": st.sampled_from(["autotask/ticket", "connectwise_psa/service_ticket", "halo_psa/ticket", "x/company"])},
    optional={"id": TEXT, "number": TEXT},
)
SECONDS = st.one_of(
    st.none(),
    st.integers(-10, 2**40),
    st.integers(1_700_000_000, 1_900_000_000),
    st.sampled_from([0, 253_402_300_799, 253_402_300_800]),
    st.text(max_size=4),
)
OPTIONAL = {
    "appointment_type_id": st.one_of(TEXT, st.sampled_from(["apty_remote30", "apty_onsite60"])),
    "end_user_name": TEXT,
    "end_user_email": st.one_of(TEXT, st.emails()),
    "associated_entities": st.lists(ENTITY, max_size=3),
    "resources": st.lists(PERSON, max_size=3),
    "scheduled_agents": st.lists(PERSON, max_size=22),
    "selected_start_time": SECONDS,
    "selected_time_zone": st.one_of(TEXT, st.sampled_from(["America/New_York", "UTC", "Europe/Berlin"])),
    "scheduling_url": st.one_of(st.none(), st.text(max_size=10), st.text(min_size=2000, max_size=2001)),
}
DOCUMENTS = st.fixed_dictionaries(
    {
        "id": st.one_of(st.text(min_size=1, max_size=12), st.text(min_size=120, max_size=201)),
        "status": st.sampled_from(["scheduled", "cancelled", "closed", "new", "sent", "Scheduled"]),
        "updated_at": SECONDS,
    },
    optional=OPTIONAL,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=DOCUMENTS)
def test_any_request_validates_and_maps_or_fails_validation(document: dict[str, Any]) -> None:
    # Given any combination of the optional fields
    # When it is validated
    try:
        request = SchedulingRequest.model_validate(document)
    except ValidationError:
        return  # refused at the door: the poller counts it unreadable
    # Then it maps without any exception, and each event it makes names the request
    for event in events_of(request, DURATIONS):
        assert event.entity == f"timezest:{request.id}"
        if event.booking is not None:
            assert event.booking.end > event.booking.start
