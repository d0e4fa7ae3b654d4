"""Autotask: every id the webhook may send fits the events and store keys built from it; anything larger is a 422."""

from __future__ import annotations

import json
from typing import Any

import pytest

from appointments.domain.events import EventKind, fits_a_key
from appointments.errors import UnsupportedPayload
from appointments.sources.autotask import AutotaskSource
from appointments.sources.base import WebhookRequest
from tests.signing import sample

SOURCE = AutotaskSource(no_show_status_id="23")
LARGEST = 2**63 - 1


def change_with(*, fields: dict[str, Any] | None = None, **envelope: Any) -> bytes:
    document = json.loads(sample("autotask/ticket_completed.json"))
    document.update(envelope)
    document["Fields"].update(fields or {})
    return json.dumps(document).encode()


def test_the_largest_ids_make_valid_events_whose_keys_fit() -> None:
    # Given a change at every limit, that both completes and assigns the ticket (two events from one delivery)
    body = change_with(
        Guid="😀" * 100,
        Id=LARGEST,
        SequenceNumber=LARGEST,
        fields={"AssignedResourceID": LARGEST, "TicketNumber": "T" * 100},
    )
    # When it is parsed
    events = SOURCE.parse(WebhookRequest(headers={}, body=body))
    # Then both events are valid canonical events, and the ticket can be keyed on
    assert {e.kind for e in events} == {EventKind.TICKET_ASSIGNED, EventKind.TICKET_COMPLETED}
    for event in events:
        assert event.ticket is not None and fits_a_key(event.ticket.system, event.ticket.id)
        assert type(event).model_validate_json(event.model_dump_json()) == event


@pytest.mark.parametrize(
    ("envelope", "field"),
    [
        ({"Guid": "g" * 101}, "Guid"),
        ({"Id": LARGEST + 1}, "Id"),
        ({"SequenceNumber": LARGEST + 1}, "SequenceNumber"),
        ({"fields": {"TicketNumber": "T" * 101}}, "Fields.TicketNumber"),
        ({"fields": {"AssignedResourceID": LARGEST + 1}}, "Fields.AssignedResourceID"),
    ],
)
def test_an_id_larger_than_its_bound_is_refused_naming_it(envelope: dict[str, Any], field: str) -> None:
    with pytest.raises(UnsupportedPayload) as raised:
        SOURCE.parse(WebhookRequest(headers={}, body=change_with(**envelope)))
    assert raised.value.field == field
