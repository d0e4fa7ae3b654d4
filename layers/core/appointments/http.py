"""HTTP mapping of errors, in one place: every API answers errors in one shape.

``{"error": {"code", "message", "details"}, "request_id"}``; a typed ``AppError`` gives its own
status; anything else is a 500 that says nothing about the internals (the log has the traceback).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from appointments.errors import AppError, InvalidInput, MalformedPayload, Unauthenticated
from appointments.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver


def error_body(code: str, message: str, details: list[dict[str, Any]], request_id: str | None) -> str:
    return json.dumps({"error": {"code": code, "message": message, "details": details}, "request_id": request_id})


def json_body(text: str) -> dict[str, Any]:
    """A request body's JSON object, for the resolver (``json_body_deserializer``).

    400 for a body that cannot be read as JSON: Powertools turns only a ``JSONDecodeError`` into a
    validation error, so an integer of more than 4,300 digits (``ValueError``) or nesting deeper than the
    interpreter's stack (``RecursionError``) would be a 500. 422 naming ``body`` for JSON that is not an
    object (``null``, a list, a string): every body of this API is an object. No body at all never comes here.
    """
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError, over-long integers; deep nesting
        raise MalformedPayload("the body is not JSON") from None
    if not isinstance(document, dict):
        raise InvalidInput("body", "must be a JSON object")
    return document


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

    def _invalid(error: RequestValidationError) -> Response[str]:
        details = [
            {"field": _field(problem.get("loc", ())), "message": str(problem.get("msg", ""))}
            for problem in error.errors()
        ]
        message = "; ".join(f"{d['field']}: {d['message']}" for d in details) or "the request is not valid"
        return Response(
            status_code=422,
            content_type=content_types.APPLICATION_JSON,
            body=error_body("validation_error", message, details, request_id()),
        )

    def _undecodable(error: UnicodeDecodeError) -> Response[str]:
        # Powertools decodes the body as UTF-8 before validating it; bytes that are not text are the caller's error.
        return _app_error(MalformedPayload("the body is not UTF-8 JSON"))

    def _not_json(error: RequestUnsupportedContentType) -> Response[str]:
        # A Content-Type Powertools cannot read (text/plain, application/xml): every body here is JSON.
        return _app_error(MalformedPayload("the body must be JSON (Content-Type: application/json)"))

    def _no_route(error: NotFoundError) -> Response[str]:
        # No route matches: a path parameter the routes cannot hold (a slash, a control character).
        return Response(
            status_code=404,
            content_type=content_types.APPLICATION_JSON,
            body=error_body("not_found", "nothing is found at this path", [], request_id()),
        )

    app.exception_handler(AppError)(_app_error)
    app.exception_handler(NotFoundError)(_no_route)
    app.exception_handler(UnicodeDecodeError)(_undecodable)
    app.exception_handler(RequestUnsupportedContentType)(_not_json)
    app.exception_handler(RequestValidationError)(_invalid)
    app.exception_handler(Exception)(_unexpected)


def _field(location: Any) -> str:
    """``("body", "customer", "email")`` → ``customer.email``; a query or header keeps its own name."""
    parts = [str(part) for part in location]
    if len(parts) > 1 and parts[0] in ("body", "query", "header", "path"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def caller_identity(event: dict[str, Any]) -> str | None:
    """Who is calling: the IAM user or role ARN API Gateway authenticated (AWS_IAM auth, machines on
    ``OpsApi``), else the signed-in person's email from a Cognito user pool authorizer's claims (people on
    ``ConsoleApi``); None when neither is there."""
    context = event.get("requestContext") or {}
    identity = context.get("identity") or {}
    arn = identity.get("userArn") if isinstance(identity, dict) else None
    if isinstance(arn, str) and arn:
        return arn
    authorizer = context.get("authorizer") or {}
    claims = authorizer.get("claims") if isinstance(authorizer, dict) else None
    email = claims.get("email") if isinstance(claims, dict) else None
    return email.strip() if isinstance(email, str) and email.strip() else None


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def form_body(event: dict[str, Any]) -> dict[str, Any] | None:
    """The 400 for a form body (every body of the API is JSON), answered before Powertools parses it:
    its multipart reader raises a bare ``ValueError`` (a 500) for a missing boundary."""
    headers = {str(name).lower(): str(value) for name, value in (event.get("headers") or {}).items()}
    if not event.get("body") or not headers.get("content-type", "").strip().lower().startswith(_FORM_TYPES):
        return None
    return _refusal(event, MalformedPayload("the body must be JSON (Content-Type: application/json)"))


def unauthenticated(event: dict[str, Any]) -> dict[str, Any]:
    """The 401 for a request with no caller, answered before the body is read."""
    return _refusal(event, Unauthenticated())


def _refusal(event: dict[str, Any], error: AppError) -> dict[str, Any]:
    request_id = ((event.get("requestContext") or {}).get("requestId")) or None
    return {
        "statusCode": int(error.http_status),
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": error_body(error.code, error.message, list(error.details), request_id),
        "isBase64Encoded": False,
    }


def console_cors(event: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """CORS on an answer to the console (a request a Cognito authorizer let in, from a browser's ``Origin``).

    Every console request carries ``Authorization``, so the browser asks first (a preflight), and ConsoleApi's
    preflight allows the console's origin only: an answer reaches no other page. The answer then names the
    origin the browser sent and lets the console read the ``ETag``. IAM callers (machines) get nothing added."""
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    if not isinstance(authorizer, dict) or not authorizer.get("claims"):
        return response
    headers = {str(name).lower(): value for name, value in (event.get("headers") or {}).items()}
    origin = headers.get("origin")
    if not isinstance(origin, str) or not origin.startswith("https://"):
        return response
    added = {"Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": "ETag", "Vary": "Origin"}
    return {**response, "headers": {**(response.get("headers") or {}), **added}}
