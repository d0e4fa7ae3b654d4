"""The HaloPSA source: Basic auth, and ticket and appointment notifications turned into canonical events."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from appointments.domain.events import EventKind
from appointments.domain.model import CancelledBy, Customer, ExternalRef, Technician, TicketRef
from appointments.errors import ConfigError, InvalidSignature, MalformedPayload, UnsupportedPayload
from appointments.sources.base import WebhookRequest
from appointments.sources.halopsa import HaloPsaSource
from tests.signing import sample

if TYPE_CHECKING:
    from appointments.domain.events import CanonicalEvent

SECRET = "halo-webhook:correct horse battery staple"
NOW = datetime(2026, 11, 23, 9, 12, 31, tzinfo=UTC)
SOURCE = HaloPsaSource(no_show_status_id="23", timezone="America/New_York")
TICKET = TicketRef(system="halopsa", id="4242")


def basic(credentials: str) -> str:
    # Built here rather than with the module's code, so a wrong scheme cannot agree with itself.
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def request_with(body: bytes, authorization: str | None = None) -> WebhookRequest:
    return WebhookRequest(headers={"authorization": authorization} if authorization else {}, body=body)


def document(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(sample(f"halopsa/{name}.json"))
    return loaded


def parse(value: Any, source: HaloPsaSource = SOURCE) -> tuple[CanonicalEvent, ...]:
    return source.parse(request_with(json.dumps(value).encode()))


# --- Basic auth


def test_the_configured_user_and_password_verify() -> None:
    SOURCE.verify(request_with(b"{}", basic(SECRET)), SECRET, NOW)


def test_the_scheme_may_be_written_in_any_case() -> None:
    SOURCE.verify(request_with(b"{}", basic(SECRET).replace("Basic", "basic")), SECRET, NOW)


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="missing"),
        pytest.param(basic("halo-webhook:wrong password"), id="wrong-password"),
        pytest.param(basic("someone-else:correct horse battery staple"), id="wrong-user"),
        pytest.param(basic(SECRET + "x"), id="longer"),
        pytest.param(basic(SECRET[:-1]), id="shorter"),
        pytest.param("Bearer " + base64.b64encode(SECRET.encode()).decode(), id="other-scheme"),
        pytest.param("Basic not*base64!", id="not-base64"),
        pytest.param("Basic ", id="no-credentials"),
        pytest.param(SECRET, id="credentials-in-clear"),
    ],
)
def test_wrong_or_missing_credentials_are_refused(authorization: str | None) -> None:
    with pytest.raises(InvalidSignature):
        SOURCE.verify(request_with(b"{}", authorization), SECRET, NOW)


def test_an_empty_secret_never_verifies() -> None:
    with pytest.raises(InvalidSignature):
        SOURCE.verify(request_with(b"{}", basic("")), "", NOW)


# --- tickets


def test_a_closed_ticket_is_completed() -> None:
    [event] = parse(document("ticket_closed"))
    assert event.kind is EventKind.TICKET_COMPLETED
    assert event.ticket == TICKET
    assert event.entity == "halopsa:ticket:4242"
    assert event.occurred_at == datetime(2026, 11, 24, 16, 2, 8, 113365, tzinfo=UTC)
    assert event.technicians is None  # a status change does not re-assert the ticket's agent


def test_the_configured_no_show_status_is_a_no_show() -> None:
    [event] = parse(document("ticket_no_show"))
    assert event.kind is EventKind.TICKET_NO_SHOW


def test_without_a_no_show_status_configured_that_status_is_ignored() -> None:
    assert parse(document("ticket_no_show"), HaloPsaSource()) == ()


def test_another_status_is_ignored() -> None:
    closed = document("ticket_closed")
    closed["ticket"]["status_id"] = 2
    assert parse(closed) == ()


def test_a_configured_complete_status_replaces_closed() -> None:
    source = HaloPsaSource(complete_status_id="8")
    assert parse(document("ticket_closed"), source) == ()
    resolved = document("ticket_closed")
    resolved["ticket"]["status_id"] = 8
    assert [event.kind for event in parse(resolved, source)] == [EventKind.TICKET_COMPLETED]


def test_a_reassignment_names_the_new_agent_as_primary() -> None:
    [event] = parse(document("ticket_reassigned"))
    assert event.kind is EventKind.TICKET_ASSIGNED
    assert event.technicians == (Technician(id="17", name="Priya Natarajan", primary=True),)


def test_several_agents_are_all_assigned_the_primary_first_and_marked() -> None:
    reassigned = document("ticket_reassigned")
    reassigned["ticket"]["agents"] = [
        {"id": 12, "name": "Sam Okafor", "email": "sam@msp.example"},
        {"id": 17, "name": "Priya Natarajan", "email": "priya@msp.example"},
    ]
    [event] = parse(reassigned)
    assert event.technicians == (
        Technician(id="17", name="Priya Natarajan", primary=True),
        Technician(id="12", name="Sam Okafor", email="sam@msp.example"),
    )


@pytest.mark.parametrize(("agent_id", "agent_name"), [(None, None), (0, None), (1, "Unassigned")])
def test_a_ticket_given_to_nobody_is_unassigned(agent_id: int | None, agent_name: str | None) -> None:
    reassigned = document("ticket_reassigned")
    reassigned["ticket"] |= {"agent_id": agent_id, "agent_name": agent_name}
    [event] = parse(reassigned)
    assert event.technicians == ()


def test_a_reassignment_to_a_closed_ticket_is_two_events_with_their_own_ids() -> None:
    both = document("ticket_reassigned")
    both["ticket"]["status_id"] = 9
    events = parse(both)
    assert [event.kind for event in events] == [EventKind.TICKET_ASSIGNED, EventKind.TICKET_COMPLETED]
    assert len({event.delivery_id for event in events}) == 2


def test_a_redelivery_has_the_same_delivery_id_and_another_event_another() -> None:
    [first] = parse(document("ticket_closed"))
    [again] = parse(document("ticket_closed") | {"id": "another-attempt-guid"})
    [other] = parse(document("ticket_no_show"))
    assert first.delivery_id == again.delivery_id
    assert other.delivery_id != first.delivery_id


def test_without_an_escmsg_id_the_payload_id_tells_deliveries_apart() -> None:
    closed = document("ticket_closed")
    del closed["escmsg_id"]
    [event] = parse(closed)
    assert event.delivery_id.startswith(f"id:{closed['id']}")


def test_with_no_id_at_all_the_ticket_and_time_tell_deliveries_apart() -> None:
    closed = {key: value for key, value in document("ticket_closed").items() if key not in {"id", "escmsg_id"}}
    [event] = parse(closed)
    assert event.delivery_id == "ticket:4242:2026-11-24T16:02:08.113365+00:00"


# --- appointments


def test_an_appointment_linked_to_a_ticket_is_a_booking() -> None:
    [event] = parse(document("appointment_created"))
    assert event.kind is EventKind.SCHEDULED
    assert event.external_ref == ExternalRef(system="halopsa", id="30417")
    assert event.entity == "halopsa:30417"
    assert event.ticket == TICKET
    booking = event.booking
    assert booking is not None
    assert booking.start == datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # Halo's times are UTC
    assert booking.end == datetime(2026, 11, 24, 15, 30, tzinfo=UTC)
    assert booking.timezone == "America/New_York"
    assert booking.vendor_type == "3"
    assert booking.ticket == TICKET
    assert booking.customer == Customer(name="Dana Reyes", email="dana@reyesdental.example", company="Reyes Dental")
    assert booking.technicians == (
        Technician(id="12", name="Sam Okafor", primary=True),
        Technician(id="17", name="Priya Natarajan", email="priya@msp.example"),
    )


def test_a_deleted_appointment_is_cancelled_by_ops() -> None:
    [event] = parse(document("appointment_deleted"))
    assert event.kind is EventKind.CANCELLED
    assert event.cancelled_by is CancelledBy.OPS
    assert event.external_ref == ExternalRef(system="halopsa", id="30417")


def test_an_appointment_with_no_ticket_is_an_agents_own_and_ignored() -> None:
    created = document("appointment_created")
    created["appointment"]["ticket_id"] = None
    assert parse(created) == ()


def test_an_appointment_naming_no_agent_leaves_the_technicians_unknown() -> None:
    created = document("appointment_created")
    for key in ("agent_id", "agent_name", "agents"):
        del created["appointment"][key]
    [event] = parse(created)
    assert event.booking is not None
    assert event.booking.technicians is None


def test_an_address_that_is_not_one_is_left_out_rather_than_refused() -> None:
    created = document("appointment_created")
    created["appointment"]["user_email"] = "front desk"
    [event] = parse(created)
    assert event.booking is not None
    assert event.booking.customer.email is None


def test_a_batched_delivery_is_read_event_by_event() -> None:
    events = parse([document("appointment_created"), document("ticket_closed")])
    assert [event.kind for event in events] == [EventKind.SCHEDULED, EventKind.TICKET_COMPLETED]


# --- what is ignored, and what is refused


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({"event": "New Client", "timestamp": "2026-11-23T09:00:00Z", "client": {"id": 88}}, id="client"),
        pytest.param(
            {"id": "g", "event": "ticket status changed", "object_id": 4242, "timestamp": "2026-11-23T09:00:00Z"},
            id="event-only",
        ),
    ],
)
def test_other_objects_and_event_only_payloads_are_ignored(value: Any) -> None:
    assert parse(value) == ()


@pytest.mark.parametrize("body", [b"not json", b"42", b"[]", b"[1, 2]", b"\xff\xfe"])
def test_a_body_that_is_not_a_json_object_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        SOURCE.parse(request_with(body))


def _without(name: str, *path: str) -> dict[str, Any]:
    value = document(name)
    parent = value
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return value


@pytest.mark.parametrize(
    ("value", "field"),
    [
        pytest.param(_without("ticket_closed", "timestamp"), "timestamp", id="no-timestamp"),
        pytest.param(_without("ticket_closed", "ticket", "id"), "ticket.id", id="ticket-without-id"),
        pytest.param(document("ticket_closed") | {"ticket": {"id": -4}}, "ticket.id", id="negative-id"),
        pytest.param(
            _without("appointment_created", "appointment", "start_date"), "appointment.start_date", id="no-start"
        ),
        pytest.param([document("ticket_closed"), _without("ticket_closed", "timestamp")], "1.timestamp", id="batched"),
    ],
)
def test_json_of_the_wrong_shape_names_the_field(value: Any, field: str) -> None:
    with pytest.raises(UnsupportedPayload) as raised:
        parse(value)
    assert raised.value.field == field
    assert raised.value.http_status == 422


def test_an_appointment_ending_before_it_starts_is_refused_naming_the_end() -> None:
    created = document("appointment_created")
    created["appointment"]["end_date"] = "2026-11-24T14:00:00"
    with pytest.raises(UnsupportedPayload) as raised:
        parse(created)
    assert raised.value.field == "appointment.end_date"


def test_the_same_status_for_complete_and_no_show_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError):
        HaloPsaSource(complete_status_id="9", no_show_status_id="9")
