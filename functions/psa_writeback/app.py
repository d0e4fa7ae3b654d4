"""Each appointment event on the bus (EventBridge rule): written back to the appointment's PSA ticket."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from appointments import wiring
from appointments.observability import logger, metrics, record_writeback, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # A failure raises: Lambda retries the event twice, then sends it to the dead-letter queue.
    written = wiring.psa_writeback().handle(
        event.get("detail") or {}, seconds_left=lambda: context.get_remaining_time_in_millis() / 1000
    )
    record_writeback(written)
    return {"written": written.value}
