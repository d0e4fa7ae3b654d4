"""Every minute (EventBridge Scheduler): TimeZest's changed scheduling requests onto the event queue."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from appointments import wiring
from appointments.observability import logger, metrics, record_poll, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = wiring.timezest_poller().poll(seconds_left=lambda: context.get_remaining_time_in_millis() / 1000)
    record_poll(report)
    summary = report.summary()
    logger.info("polled TimeZest", extra=summary)
    return summary
