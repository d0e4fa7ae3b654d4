"""The event queue on SQS FIFO: one message group per entity, deduplicated by delivery.

A delivery's events about one entity go in one message (``domain.events.queue_message``): SendMessageBatch
is not atomic, and a delivery half queued would be half applied while its vendor is told 503.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from appointments.domain.events import queue_message
from appointments.errors import QueueUnavailable

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

    from appointments.domain.events import CanonicalEvent

_BATCH = 10  # the SendMessageBatch limit
MAX_MESSAGE_BYTES = 256 * 1024  # SQS's limit for one message (and for one batch: a batch of big ones fails)
_GROUP_ID = re.compile(r"^[A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]{1,128}$")


def message_group(entity: str) -> str:
    """The entity itself when SQS accepts it as a group id (readable in the console), else its hash."""
    return entity if _GROUP_ID.match(entity) else hashlib.sha256(entity.encode()).hexdigest()


def deduplication_id(events: Sequence[CanonicalEvent]) -> str:
    """The same for the same events of a delivery, whichever retry of it sends them."""
    keys = "\n".join(f"{event.source}:{event.delivery_id}" for event in events)
    return hashlib.sha256(keys.encode()).hexdigest()


def _messages(events: list[CanonicalEvent]) -> list[tuple[list[CanonicalEvent], str]]:
    """One entity's events in one message, unless that would pass SQS's size limit: then one message each (a
    delivery that large is not all-or-nothing, but it is queued rather than refused for ever)."""
    together = queue_message(events)
    if len(events) == 1 or len(together.encode()) <= MAX_MESSAGE_BYTES:
        return [(events, together)]
    return [([event], queue_message([event])) for event in events]


class SqsEventQueue:
    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def enqueue(self, events: Sequence[CanonicalEvent]) -> None:
        by_entity: dict[str, list[CanonicalEvent]] = {}
        for event in events:
            by_entity.setdefault(event.entity, []).append(event)
        entries: list[SendMessageBatchRequestEntryTypeDef] = []
        for entity, same_entity in by_entity.items():
            for carried, body in _messages(same_entity):
                entries.append(
                    {
                        "Id": str(len(entries)),
                        "MessageBody": body,
                        "MessageGroupId": message_group(entity),
                        "MessageDeduplicationId": deduplication_id(carried),
                    }
                )
        for start in range(0, len(entries), _BATCH):
            try:
                response = self._client.send_message_batch(
                    QueueUrl=self._queue_url, Entries=entries[start : start + _BATCH]
                )
            except (ClientError, BotoCoreError) as error:
                raise QueueUnavailable("the event queue is unavailable; retry the delivery") from error
            if response.get("Failed"):
                # Entries that did go through (other entities' whole events) are deduplicated when the
                # sender retries the whole delivery.
                raise QueueUnavailable("the event queue refused part of the delivery; retry it")
