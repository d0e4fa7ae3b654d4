"""SQS records shaped as Lambda's event source mapping delivers them (FIFO attributes included)."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from localdev.resources import REGION


def sqs_record(
    body: str,
    *,
    queue_arn: str,
    group: str | None = None,
    dedupe: str | None = None,
    receive_count: int = 1,
    message_id: str | None = None,
    receipt_handle: str | None = None,
    sent_at_ms: int = 1795432800000,
) -> dict[str, Any]:
    attributes = {
        "ApproximateReceiveCount": str(receive_count),
        "SentTimestamp": str(sent_at_ms),
        "SenderId": "AIDALOCALSENDER",
        "ApproximateFirstReceiveTimestamp": str(sent_at_ms + 1),
    }
    if group is not None:
        attributes |= {"MessageGroupId": group, "SequenceNumber": "18849496460467696128"}
    if dedupe is not None:
        attributes["MessageDeduplicationId"] = dedupe
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": receipt_handle or f"handle-{uuid.uuid4()}",
        "body": body,
        "attributes": attributes,
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),  # noqa: S324 - SQS's own checksum, not security
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def record_of_message(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """A received SQS message (``MessageSystemAttributeNames=["All"]``) as the record Lambda would get."""
    attributes = message.get("Attributes", {})
    return sqs_record(
        message["Body"],
        queue_arn=queue_arn,
        group=attributes.get("MessageGroupId"),
        dedupe=attributes.get("MessageDeduplicationId"),
        receive_count=int(attributes.get("ApproximateReceiveCount", "1")),
        message_id=message["MessageId"],
        receipt_handle=message["ReceiptHandle"],
        sent_at_ms=int(attributes.get("SentTimestamp", "1795432800000")),
    )
