"""POST /webhooks/{source}: verify, parse, queue, answer 202. The signature is the auth."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from appointments import wiring
from appointments.http import register_error_handlers
from appointments.observability import logger, metrics, record_subscription_ended, record_webhook, tracer
from appointments.sources.base import WebhookRequest

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

app = APIGatewayRestResolver()
register_error_handlers(app)


@app.post("/webhooks/<source>")
def receive(source: str) -> Response[str]:
    event = app.current_event
    raw = event.body or ""
    # The signature covers the bytes the vendor sent: never re-serialise, decode base64 as-is.
    body = base64.b64decode(raw) if event.is_base64_encoded else raw.encode()
    headers = {name.lower(): value for name, value in (event.headers or {}).items()}
    accepted = wiring.webhook_ingress().accept(source, WebhookRequest(headers=headers, body=body))
    if accepted.subscription_ended:
        record_subscription_ended(accepted.source)
    else:
        record_webhook(accepted.source, len(accepted.delivery_ids))
    return Response(
        status_code=202,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"accepted": True, "source": accepted.source, "events": len(accepted.delivery_ids)}),
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    metrics.add_metric(name="WebhookRequests", unit=MetricUnit.Count, value=1)
    return app.resolve(event, context)
