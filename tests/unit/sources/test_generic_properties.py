"""Property: whatever the generic source accepts, the queue, the processor and the store can take.

Bodies are drawn around every bound: text short, at its limit or one over, in characters of one to four
bytes; ends before, at and after the start; a few technicians, or 20 or 21. parse() either refuses with a
4xx or returns events that survive the queue's JSON and make an appointment the store can key on.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import hypothesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appointments.domain import lifecycle
from appointments.domain.events import MAX_TECHNICIANS, CanonicalEvent
from appointments.domain.lifecycle import AppointmentDraft
from appointments.domain.model import Actor
from appointments.errors import MalformedPayload, UnsupportedPayload
from appointments.sources.base import WebhookRequest
from appointments.sources.generic import GenericSource
from tests.factories import CATALOG

SOURCE = GenericSource()
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
MAX_STORE_KEY_BYTES = 1024  # a DynamoDB sort key; a partition key may have 2048
KINDS = ["requested", "scheduled", "rescheduled", "assigned", "checked_in", "completed", "no_show", "cancelled"]


def sized(limit: int) -> st.SearchStrategy[str]:
    """Mostly text within ``limit`` characters (short, or exactly at it), now and then one character over.

    Long text repeats a character of one to four bytes in UTF-8, so that byte bounds are met as well.
    """
    lengths = st.sampled_from([1, 1, 1, 1, limit, limit, limit, limit + 1])
    repeated = st.builds(lambda char, n: char * n, st.sampled_from(["a", "é", "€", "😀"]), lengths)
    return st.one_of(repeated, st.text(min_size=1, max_size=12))


def instants() -> st.SearchStrategy[datetime]:
    # hypothesis takes naive bounds and applies the time zone strategy itself
    return st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC))  # noqa: DTZ001


TECHNICIAN = st.fixed_dictionaries({"id": sized(500), "name": sized(500)}, optional={"primary": st.booleans()})
ZONES = ["America/New_York", "Europe/Berlin", "UTC", "Asia/Kolkata", "Australia/Sydney", "Pacific/Chatham", "Mars/Base"]
BOOKING_FIELDS = ("start", "end", "timezone", "type", "customer")


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    start = draw(instants())
    end = start + timedelta(minutes=draw(st.sampled_from([-30, 0, 1, 30, 30, 30, 60, 24 * 60])))
    appointment: dict[str, Any] = {
        "external_id": draw(sized(120)),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "timezone": draw(st.sampled_from(ZONES)),
        "type": draw(st.one_of(st.sampled_from([t.key for t in CATALOG]), sized(64))),
        "customer": draw(
            st.fixed_dictionaries(
                {"name": sized(500)}, optional={"email": st.sampled_from(["dana@example.com", "no email"])}
            )
        ),
    }
    if draw(st.integers(0, 9)) == 0:  # now and then, a booking without one of the fields a booking needs
        del appointment[draw(st.sampled_from(BOOKING_FIELDS))]
    technicians = st.one_of(
        st.lists(TECHNICIAN, max_size=3),
        st.builds(lambda t, n: [t] * n, TECHNICIAN, st.sampled_from([MAX_TECHNICIANS, MAX_TECHNICIANS + 1])),
    )
    optional = {
        "technicians": technicians,
        "ticket": st.fixed_dictionaries(
            {"system": st.sampled_from(["autotask", "😀" * 500]), "id": sized(500)},
            optional={"number": sized(100)},
        ),
        "links": st.fixed_dictionaries({}, optional={"reschedule": sized(2000), "cancel": sized(2000)}),
    }
    appointment |= draw(st.fixed_dictionaries({}, optional=optional))
    document: dict[str, Any] = {
        "event_id": draw(sized(200)),
        "type": f"appointment.{draw(st.sampled_from(KINDS))}",
        "occurred_at": draw(instants()).isoformat(),
        "appointment": appointment,
    }
    if draw(st.booleans()):
        document["reason"] = draw(st.one_of(st.none(), sized(2000)))
    return json.dumps(document, ensure_ascii=False).encode()


def keyed_bytes(prefix: str, system: str, id_: str) -> int:
    return len(f"{prefix}#{system}#{id_}".encode())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies())
def test_whatever_the_generic_source_accepts_the_processor_and_the_store_can_take(body: bytes) -> None:
    # Given any body (parse runs once the signature is verified)
    # When the source parses it
    try:
        events = SOURCE.parse(WebhookRequest(headers={}, body=body))
    except (UnsupportedPayload, MalformedPayload) as refused:
        # Then either it is refused at the door with a 4xx naming the field
        assert 400 <= refused.http_status < 500
        hypothesis.event(f"refused: {refused.details[0]['field'] if refused.details else 'body'}")
        return
    hypothesis.event("accepted with a booking" if any(e.booking for e in events) else "accepted")
    # Or every event survives the queue's JSON, keeps the store's keys within bounds, and makes an appointment
    for event in events:
        assert CanonicalEvent.model_validate_json(event.model_dump_json()) == event
        for ref in (event.external_ref, event.previous_ref):
            assert ref is None or keyed_bytes("REF", ref.system, ref.id) <= MAX_STORE_KEY_BYTES
        if event.ticket is not None:
            assert keyed_bytes("TICKET", event.ticket.system, event.ticket.id) <= MAX_STORE_KEY_BYTES
        assert len(event.technicians or ()) <= MAX_TECHNICIANS
        booking = event.booking
        if booking is None:
            continue
        draft = AppointmentDraft(
            start=booking.start,
            end=booking.end,
            timezone=booking.timezone,
            type=booking.type if booking.type is not None and booking.type in CATALOG else "remote_call_in",
            customer=booking.customer,
            technicians=booking.technicians or (),
            ticket=booking.ticket or event.ticket,
            external_refs=(event.external_ref,) if event.external_ref else (),
            links=booking.links,
            answers=booking.answers,
            metadata=booking.metadata,
        )
        created = lifecycle.create(
            draft, appointment_id="01JDQ3F8ZB6W2Y1N7T5K4M9H2C", catalog=CATALOG, at=NOW, actor=Actor.source(SOURCE.name)
        ).after
        assert created.end > created.start
        assert len(created.technicians) <= MAX_TECHNICIANS
