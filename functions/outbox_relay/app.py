"""The table's stream → mails out through SES and domain events onto the bus. Only new mail and history
items reach it (the event source's filter); a record that fails is retried with the rest of its shard."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from appointments import wiring
from appointments.observability import logger, metrics, record_mail, tracer
from appointments.services.outbox_relay import history_record, mail_item

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


@tracer.capture_method(capture_response=False)
def relay_record(record: DynamoDBRecord) -> None:
    new_image: dict[str, Any] = record.raw_event.get("dynamodb", {}).get("NewImage", {})
    relay = wiring.outbox_relay()
    if (mail := mail_item(new_image)) is not None:
        record_mail(relay.send(*mail))
    elif (entry := history_record(new_image)) is not None:
        metrics.add_metric(name="EventsPublished", unit=MetricUnit.Count, value=relay.publish([entry]))


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # Always one metric: Powertools warns on every invocation that publishes none.
    metrics.add_metric(name="OutboxRecordsReceived", unit=MetricUnit.Count, value=len(event.get("Records", [])))
    return process_partial_response(event=event, record_handler=relay_record, processor=processor, context=context)
