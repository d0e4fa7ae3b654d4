"""Domain events onto the EventBridge bus, ten to a call (PutEvents' limit). The stable id consumers
deduplicate on is ``detail.event_id`` (EventBridge gives each put its own id)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from appointments.errors import EventsUnavailable

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

    from appointments.ports import DomainEvent

SOURCE = "appointment-desk"
BATCH = 10


class EventBusPublisher:
    def __init__(self, client: EventBridgeClient, bus_name: str) -> None:
        self._client = client
        self._bus = bus_name

    def publish(self, events: Sequence[DomainEvent]) -> None:
        for first in range(0, len(events), BATCH):
            entries: list[PutEventsRequestEntryTypeDef] = [
                {
                    "Source": SOURCE,
                    "DetailType": event.detail_type,
                    "Detail": json.dumps(event.detail),
                    "EventBusName": self._bus,
                    "Time": event.time,
                }
                for event in events[first : first + BATCH]
            ]
            try:
                response = self._client.put_events(Entries=entries)
            except ClientError as error:
                raise EventsUnavailable("the event bus is not taking events now") from error
            if response.get("FailedEntryCount", 0):
                raise EventsUnavailable(f"the event bus refused {response['FailedEntryCount']} event(s)")
