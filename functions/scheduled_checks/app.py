"""Every minute (EventBridge Scheduler): the timed rules on what the due index says is due."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from appointments import wiring
from appointments.observability import logger, metrics, record_sweep, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = wiring.sweeper().sweep(seconds_left=lambda: context.get_remaining_time_in_millis() / 1000)
    record_sweep(report)
    summary = report.summary()
    logger.info("swept", extra=summary)
    return summary
