"""SQS FIFO → canonical events → appointments. Partial batch failures: a failing appointment's later
events wait (its message group is skipped), other appointments go on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response

from appointments import wiring
from appointments.domain.events import events_of_message
from appointments.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

processor = SqsFifoPartialProcessor(skip_group_on_error=True)


@tracer.capture_method(capture_response=False)
def apply_record(record: SQSRecord) -> None:
    # One message holds a delivery's events about one entity, in order (applied again on a retry: idempotent).
    for event in events_of_message(record.body):
        # Only this event's lines carry its keys: the next one (or function, locally) must not inherit them.
        with logger.append_context_keys(
            source=event.source, event_kind=event.kind.value, delivery_id=event.delivery_id
        ):
            wiring.event_processor().apply(event)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    metrics.add_metric(name="EventRecordsReceived", unit=MetricUnit.Count, value=len(event.get("Records", [])))
    response = process_partial_response(event=event, record_handler=apply_record, processor=processor, context=context)
    metrics.add_metric(name="EventRecordsFailed", unit=MetricUnit.Count, value=len(response["batchItemFailures"]))
    return response
