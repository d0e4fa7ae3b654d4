"""The event queue on SQS FIFO: one message group per entity, deduplicated by delivery."""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from appointments.errors import QueueUnavailable

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

    from appointments.domain.events import CanonicalEvent

_BATCH = 10  # the SendMessageBatch limit
_GROUP_ID = re.compile(r"^[A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]{1,128}$")


def message_group(entity: str) -> str:
    """The entity itself when SQS accepts it as a group id (readable in the console), else its hash."""
    return entity if _GROUP_ID.match(entity) else hashlib.sha256(entity.encode()).hexdigest()


def deduplication_id(event: CanonicalEvent) -> str:
    return hashlib.sha256(f"{event.source}:{event.delivery_id}".encode()).hexdigest()


class SqsEventQueue:
    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def enqueue(self, events: Sequence[CanonicalEvent]) -> None:
        entries: list[SendMessageBatchRequestEntryTypeDef] = [
            {
                "Id": str(index),
                "MessageBody": event.model_dump_json(),
                "MessageGroupId": message_group(event.entity),
                "MessageDeduplicationId": deduplication_id(event),
            }
            for index, event in enumerate(events)
        ]
        for start in range(0, len(entries), _BATCH):
            try:
                response = self._client.send_message_batch(
                    QueueUrl=self._queue_url, Entries=entries[start : start + _BATCH]
                )
            except (ClientError, BotoCoreError) as error:
                raise QueueUnavailable("the event queue is unavailable; retry the delivery") from error
            if response.get("Failed"):
                # Entries that did go through are deduplicated when the sender retries the whole delivery.
                raise QueueUnavailable("the event queue refused part of the delivery; retry it")
