"""Lambda's event source mapping for a DynamoDB stream, over moto's stream.

Each mapping keeps its own place in every shard of its table's stream (the shard iterator Lambda would
hold), so a record is read once. Records are shaped as Lambda delivers them, filtered with the
mapping's FilterCriteria by moto's own EventBridge pattern matcher (the syntax Lambda filters use),
batched, and handed to the function. A batch that fails is retried at once, as the template says:
from the first failed record with ``ReportBatchItemFailures``, halved with
``BisectBatchOnFunctionError``, until ``MaximumRetryAttempts``; then it is dropped with a message and,
given ``DestinationConfig.OnFailure``, described to that queue as Lambda describes it.

Departures from AWS, all of them because the runner is one process reading one moto shard:

- a retry happens at once, not after a back-off; ``MaximumRetryAttempts`` -1 (AWS: until the record
  expires after 24 hours) retries ``UNBOUNDED_RETRIES`` times;
- a partial failure retries the rest of the same batch; AWS may top the new batch up with later records;
- ``ApproximateCreationDateTime`` is the runner's clock when the record is read (at most one pump pass
  after the write), not moto's wall-clock stamp;
- a write that changes nothing gives no record (as in DynamoDB; moto writes one), which can only be
  seen when the stream has both images (``NEW_AND_OLD_IMAGES``).
"""

from __future__ import annotations

import base64
import copy
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from localdev import console
from localdev.resources import ACCOUNT_ID, REGION

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient

    from localdev.template import StreamSubscription

UNBOUNDED_RETRIES = 10  # what MaximumRetryAttempts -1 (until the record expires) means locally
READ_LIMIT = 1000  # GetRecords' largest page


class FilterError(Exception):
    """A FilterCriteria pattern moto's matcher refuses: the message says why."""


def compile_filters(patterns: Sequence[str]) -> Callable[[Mapping[str, Any]], bool]:
    """A record passes if any pattern matches it (none: every record passes), as Lambda's filters do."""
    from moto.events.exceptions import InvalidEventPatternException
    from moto.events.models import EventPattern

    compiled = []
    for index, text in enumerate(patterns):
        try:
            compiled.append(EventPattern.load(text))
        except InvalidEventPatternException as error:
            raise FilterError(f"Filters[{index}].Pattern: {error.message}") from None

    def matches(record: Mapping[str, Any]) -> bool:
        event: Any = dict(record)  # moto types its argument as an EventBridge event; a record is matched alike
        return not compiled or any(pattern.matches_event(event) for pattern in compiled)

    return matches


def lambda_record(raw: Mapping[str, Any], stream_arn: str, *, read_at: datetime) -> dict[str, Any]:
    """A record as boto3's GetRecords gives it, as Lambda's DynamoDB event carries it (binary as base64)."""
    dynamodb = {key: _wire(value) for key, value in raw["dynamodb"].items() if key != "ApproximateCreationDateTime"}
    dynamodb["ApproximateCreationDateTime"] = int(read_at.timestamp())  # rounded down to the second, as AWS does
    return {
        "eventID": raw["eventID"],
        "eventName": raw["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": raw.get("awsRegion", REGION),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    }


def _wire(value: Any) -> Any:
    """boto3's parsed attribute values as JSON carries them: bytes (B, BS) back to base64 text."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {key: _wire(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [_wire(item) for item in value]
    return value


def changes_nothing(raw: Mapping[str, Any]) -> bool:
    """A MODIFY whose images are equal: DynamoDB writes no record for it."""
    images = raw["dynamodb"]
    return raw["eventName"] == "MODIFY" and "OldImage" in images and images.get("NewImage") == images["OldImage"]


class StreamCursor:
    """One mapping's place in its stream: per shard, the iterator of the next record it has not read."""

    def __init__(self, client: DynamoDBStreamsClient, stream_arn: str, starting_position: str) -> None:
        self.stream_arn = stream_arn
        self._client = client
        description = client.describe_stream(StreamArn=stream_arn)["StreamDescription"]
        self._iterators: dict[str, str] = {
            shard["ShardId"]: client.get_shard_iterator(
                StreamArn=stream_arn,
                ShardId=shard["ShardId"],
                ShardIteratorType=starting_position,  # type: ignore[arg-type]
            )["ShardIterator"]
            for shard in description.get("Shards", [])
        }

    def read(self) -> list[tuple[str, list[dict[str, Any]]]]:
        """What each shard has beyond the cursor (a page at most), in order; the cursor moves past it."""
        pages = []
        for shard_id, iterator in self._iterators.items():
            page = self._client.get_records(ShardIterator=iterator, Limit=READ_LIMIT)
            _forget(iterator)
            if "NextShardIterator" in page:
                self._iterators[shard_id] = page["NextShardIterator"]
            records = [dict(record) for record in page.get("Records", [])]
            if records:
                pages.append((shard_id, records))
        return pages


def _forget(iterator: str) -> None:
    """moto keeps every iterator it hands out (AWS lets one expire after 15 minutes): drop the one just used.

    The pump reads every stream a few times a second, each read making a new iterator: kept, they
    would grow the runner by megabytes an hour.
    """
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    dynamodbstreams_backends[ACCOUNT_ID][REGION].shard_iterators.pop(iterator, None)


@dataclass(frozen=True)
class Attempt:
    """How one invocation went: from which record the batch must be retried (``None``: it succeeded)."""

    failed_from: int | None
    function_error: bool = False  # the function raised, or answered what Lambda reads as a whole-batch failure


class StreamMapping:
    """One ``DynamoDB`` event of one function: reads its stream and delivers what passes its filters."""

    def __init__(
        self,
        subscription: StreamSubscription,
        *,
        invoke: Callable[[str, dict[str, Any]], Any],
        clock: Callable[[], datetime],
        give_up: Callable[[str, dict[str, Any]], None],
    ) -> None:
        self.subscription = subscription
        self.matches = compile_filters(subscription.filters)
        self._invoke = invoke
        self._clock = clock
        self._give_up = give_up  # (queue logical id, message) for DestinationConfig.OnFailure
        self.cursor: StreamCursor | None = None

    @property
    def retries(self) -> int:
        attempts = self.subscription.maximum_retry_attempts
        return UNBOUNDED_RETRIES if attempts < 0 else attempts

    def pump(self) -> tuple[int, int]:
        """One read of the stream: (records read, records handed to the function, retries included)."""
        if self.cursor is None:
            return 0, 0
        read = delivered = 0
        for shard_id, raws in self.cursor.read():
            read += len(raws)
            now = self._clock()
            records = [
                lambda_record(raw, self.cursor.stream_arn, read_at=now) for raw in raws if not changes_nothing(raw)
            ]
            records = [record for record in records if self.matches(record)]
            size = self.subscription.batch_size
            for start in range(0, len(records), size):
                delivered += self._run(shard_id, records[start : start + size])
        return read, delivered

    def _run(self, shard_id: str, batch: list[dict[str, Any]]) -> int:
        """Deliver a batch until it succeeds, bisecting and retrying as configured; how many records went out."""
        delivered = 0
        attempts = 0
        while batch:
            attempts += 1
            delivered += len(batch)
            attempt = self._attempt(batch)
            if attempt.failed_from is None:
                return delivered
            batch = batch[attempt.failed_from :]
            if attempt.function_error and self.subscription.bisect_on_error and len(batch) > 1:
                half = len(batch) // 2  # each half is a batch of its own, with retries of its own
                return delivered + self._run(shard_id, batch[:half]) + self._run(shard_id, batch[half:])
            if attempts > self.retries:
                self._exhausted(shard_id, batch, attempts, attempt.function_error)
                return delivered
        return delivered

    def _attempt(self, batch: list[dict[str, Any]]) -> Attempt:
        function = self.subscription.function
        try:
            result = self._invoke(function, {"Records": copy.deepcopy(batch)})
        except Exception as error:
            first = batch[0]["dynamodb"]["SequenceNumber"]
            console.failure(
                f"{function}: stream batch from {first} ({len(batch)} record(s)) failed: {console.reason(error)}", error
            )
            return Attempt(failed_from=0, function_error=True)
        if not self.subscription.reports_item_failures:
            return Attempt(failed_from=None)
        return first_failure(result, batch)

    def _exhausted(self, shard_id: str, batch: list[dict[str, Any]], attempts: int, function_error: bool) -> None:
        first, last = batch[0]["dynamodb"]["SequenceNumber"], batch[-1]["dynamodb"]["SequenceNumber"]
        subscription = self.subscription
        print(
            f"localdev: {subscription.function}.{subscription.event}: dropped {len(batch)} stream record(s) "
            f"{first}..{last} after {attempts} attempt(s)",
            file=sys.stderr,
        )
        if subscription.on_failure_queue is None or self.cursor is None:
            return
        message = failure_record(
            function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{subscription.function}",
            stream_arn=self.cursor.stream_arn,
            shard_id=shard_id,
            batch=batch,
            attempts=attempts,
            function_error=function_error,
            at=self._clock(),
        )
        self._give_up(subscription.on_failure_queue, message)


def first_failure(result: Any, batch: Sequence[Mapping[str, Any]]) -> Attempt:
    """Read a ``ReportBatchItemFailures`` answer as Lambda does for a stream.

    No answer, an empty one or an empty list succeeds; otherwise the batch is retried from the lowest
    sequence number listed. An identifier that is missing, empty or not in the batch fails it all.
    """
    if result is None or result == {}:
        return Attempt(failed_from=None)
    if not isinstance(result, dict):
        return Attempt(failed_from=0, function_error=True)
    failures = result.get("batchItemFailures")
    if not failures:
        return Attempt(failed_from=None)
    positions = {str(record["dynamodb"]["SequenceNumber"]): index for index, record in enumerate(batch)}
    failed = []
    for failure in failures if isinstance(failures, list) else [None]:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in positions:
            return Attempt(failed_from=0, function_error=True)
        failed.append(positions[identifier])
    return Attempt(failed_from=min(failed))


def failure_record(
    *,
    function_arn: str,
    stream_arn: str,
    shard_id: str,
    batch: Sequence[Mapping[str, Any]],
    attempts: int,
    function_error: bool,
    at: datetime,
) -> dict[str, Any]:
    """What Lambda sends an OnFailure destination for a stream batch it gave up on: where it is, not the records."""
    arrivals = [
        datetime.fromtimestamp(record["dynamodb"]["ApproximateCreationDateTime"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for record in (batch[0], batch[-1])
    ]
    response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if function_error:
        response["functionError"] = "Unhandled"
    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": attempts,
        },
        "responseContext": response,
        "version": "1.0",
        "timestamp": at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": batch[0]["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": batch[-1]["dynamodb"]["SequenceNumber"],
            "approximateArrivalOfFirstRecord": arrivals[0],
            "approximateArrivalOfLastRecord": arrivals[1],
            "batchSize": len(batch),
            "streamArn": stream_arn,
        },
    }


def describe(subscription: StreamSubscription) -> str:
    """One line for the banner: table → function, and how it batches, filters and retries."""
    details = [f"batches of {subscription.batch_size}"]
    if subscription.filters:
        details.append(f"{len(subscription.filters)} filter(s)")
    if subscription.reports_item_failures:
        details.append("partial failures")
    retries = subscription.maximum_retry_attempts
    details.append(f"{UNBOUNDED_RETRIES if retries < 0 else retries} retries")
    if subscription.on_failure_queue:
        details.append(f"on failure → {subscription.on_failure_queue}")
    return f"{subscription.table} stream → {subscription.function} ({', '.join(details)})"
