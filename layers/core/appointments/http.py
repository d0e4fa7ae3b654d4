"""HTTP mapping of errors, in one place: every API answers errors in one shape.

``{"error": {"code", "message", "details"}, "request_id"}``; a typed ``AppError`` gives its own
status; anything else is a 500 that says nothing about the internals (the log has the traceback).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import Response, content_types

from appointments.errors import AppError
from appointments.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver


def error_body(code: str, message: str, details: list[dict[str, Any]], request_id: str | None) -> str:
    return json.dumps({"error": {"code": code, "message": message, "details": details}, "request_id": request_id})


def register_error_handlers(app: APIGatewayRestResolver) -> None:
    def request_id() -> str | None:
        context: dict[str, Any] = app.current_event.raw_event.get("requestContext") or {}
        value = context.get("requestId")
        return value if isinstance(value, str) else None

    def _app_error(error: AppError) -> Response[str]:
        if error.http_status >= 500:
            logger.warning("request failed", extra={"error_code": error.code, "retryable": error.retryable})
        return Response(
            status_code=int(error.http_status),
            content_type=content_types.APPLICATION_JSON,
            body=error_body(error.code, error.message, list(error.details), request_id()),
        )

    def _unexpected(error: Exception) -> Response[str]:
        logger.exception("unexpected error")
        return Response(
            status_code=500,
            content_type=content_types.APPLICATION_JSON,
            body=error_body("internal_error", "something went wrong; the error was logged", [], request_id()),
        )

    app.exception_handler(AppError)(_app_error)
    app.exception_handler(Exception)(_unexpected)
