"""HaloPSA deliveries through the real ingress and processor handlers, under moto."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from appointments import wiring
from appointments.domain.history import Action
from appointments.domain.model import CancelledBy, ExternalRef, Status, TicketRef
from tests.integration.stack import HALOPSA_SECRET, Stack, stack_under_moto
from tests.signing import sample

NOW = datetime(2026, 11, 20, 14, 5, 45, tzinfo=UTC)
APPOINTMENT = ExternalRef(system="halopsa", id="30417")


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with stack_under_moto(
        monkeypatch,
        NOW,
        VendorTypeMap=json.dumps({"halopsa": {"3": "remote_session"}}),
        HaloPsaNoShowStatusId="23",
        HaloPsaTimeZone="America/New_York",
    ) as built:
        yield built


def halo(stack: Stack, *names: str) -> None:
    for name in names:
        response = stack.post_halopsa(sample(f"halopsa/{name}.json"))
        assert response["statusCode"] == 202, response["body"]
    stack.drain()


def halo_appointment() -> str:
    found = wiring.store().find_by_external_ref(APPOINTMENT)
    assert found is not None, "no appointment holds halopsa:30417"
    return found


def basic(credentials: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


# --- credentials


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param(basic("halo-webhook:not-the-password"), id="wrong-password"),
        pytest.param(basic("intruder:halopsa-integration-password"), id="wrong-user"),
        pytest.param({"Authorization": "Bearer " + HALOPSA_SECRET}, id="other-scheme"),
    ],
)
def test_wrong_or_missing_credentials_are_401_and_nothing_is_stored(stack: Stack, headers: dict[str, str]) -> None:
    response = stack.post("halopsa", sample("halopsa/appointment_created.json"), headers)
    assert response["statusCode"] == 401
    assert stack.queued() == []
    assert stack.table_items() == []


# --- appointments and tickets


def test_a_halo_appointment_is_an_appointment_of_its_ticket(stack: Stack) -> None:
    halo(stack, "appointment_created")
    appointment = wiring.store().get(halo_appointment())
    assert appointment.status is Status.SCHEDULED
    assert appointment.type == "remote_session"
    assert appointment.start == datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    assert appointment.timezone == "America/New_York"
    assert appointment.ticket == TicketRef(system="halopsa", id="4242")
    assert [(t.id, t.primary) for t in appointment.technicians] == [("12", True), ("17", False)]


def test_a_redelivered_appointment_is_one_appointment_with_one_history_entry(stack: Stack) -> None:
    body = sample("halopsa/appointment_created.json")
    answers = [stack.post_halopsa(body) for _ in range(3)]
    assert [answer["statusCode"] for answer in answers] == [202, 202, 202]
    assert len({answer["body"] for answer in answers}) == 1
    stack.drain()
    record = wiring.store().load(halo_appointment())
    assert [entry.action for entry in record.history] == [Action.CREATE]


def test_a_ticket_reassigned_in_halo_reassigns_its_appointment(stack: Stack) -> None:
    halo(stack, "appointment_created")
    stack.clock.set(datetime(2026, 11, 24, 9, 12, 31, tzinfo=UTC))
    halo(stack, "ticket_reassigned")
    record = wiring.store().load(halo_appointment())
    assert [(t.id, t.primary) for t in record.appointment.technicians] == [("17", True)]
    assert record.history[-1].action is Action.REASSIGN


def test_a_closed_ticket_cancels_its_appointment_ahead(stack: Stack) -> None:
    halo(stack, "appointment_created")
    closed = json.loads(sample("halopsa/ticket_closed.json"))
    closed["timestamp"] = "2026-11-21T10:00:00Z"  # closed before the session: it is not needed any more
    stack.clock.set(datetime(2026, 11, 21, 10, 0, 1, tzinfo=UTC))
    assert stack.post_halopsa(json.dumps(closed).encode())["statusCode"] == 202
    stack.drain()
    appointment = wiring.store().get(halo_appointment())
    assert appointment.status is Status.CANCELLED
    assert appointment.cancellation is not None and appointment.cancellation.by is CancelledBy.OPS


def test_the_configured_no_show_status_marks_the_no_show(stack: Stack) -> None:
    halo(stack, "appointment_created")
    stack.clock.set(datetime(2026, 11, 24, 15, 14, 56, tzinfo=UTC))
    halo(stack, "ticket_no_show")
    assert wiring.store().get(halo_appointment()).status is Status.NO_SHOW


def test_a_deleted_halo_appointment_is_cancelled(stack: Stack) -> None:
    halo(stack, "appointment_created")
    stack.clock.set(datetime(2026, 11, 22, 8, 30, 13, tzinfo=UTC))
    halo(stack, "appointment_deleted")
    appointment = wiring.store().get(halo_appointment())
    assert appointment.status is Status.CANCELLED


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            {"event": "New Client Added", "timestamp": "2026-11-20T14:05:40Z", "client": {"id": 88}}, id="client"
        ),
        pytest.param(
            {"id": "g-1", "event": "Ticket Updated", "object_id": 4242, "timestamp": "2026-11-20T14:05:40Z"},
            id="event-information-only",
        ),
    ],
)
def test_an_event_we_do_not_use_is_acknowledged_and_queues_nothing(stack: Stack, body: dict[str, object]) -> None:
    response = stack.post_halopsa(json.dumps(body).encode())
    assert response["statusCode"] == 202
    assert json.loads(response["body"])["events"] == 0
    assert stack.queued() == []


def test_halo_json_of_the_wrong_shape_is_422_naming_the_field(stack: Stack) -> None:
    document = json.loads(sample("halopsa/appointment_created.json"))
    del document["appointment"]["start_date"]
    response = stack.post_halopsa(json.dumps(document).encode())
    assert response["statusCode"] == 422
    assert "appointment.start_date" in response["body"]
    assert stack.queued() == []
