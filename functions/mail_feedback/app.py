"""SNS (the SES configuration set's event destination) → bounces, complaints and rejects kept in the
appointment's history, ops alerted. SNS invokes it once per notice; a notice that fails is retried by
Lambda (twice), then kept in the function's dead-letter queue."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.data_classes import SNSEvent, event_source

from appointments import wiring
from appointments.observability import logger, metrics, record_mail_feedback, tracer
from appointments.services.mail_feedback import Noted

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@event_source(data_class=SNSEvent)
def lambda_handler(event: SNSEvent, context: LambdaContext) -> dict[str, Any]:
    feedback = wiring.mail_feedback()
    noted = []
    for record in event.records:
        # Only this notice's lines carry its id: the next one (or function, locally) must not inherit it.
        with logger.append_context_keys(sns_message_id=record.sns.message_id):
            outcome = feedback.record(record.sns.message)
        record_mail_feedback(outcome.value, bounce=outcome in (Noted.ALERTED, Noted.RECORDED))
        noted.append(outcome.value)
    return {"noted": noted}
