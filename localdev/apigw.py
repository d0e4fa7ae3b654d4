"""API Gateway REST (v1) proxy integration, as the runner's gateway and the tests need it.

``proxy_event`` builds the event API Gateway hands to Lambda (the same shape SAM CLI's
``sam local generate-event apigateway aws-proxy`` produces, which a test holds it to);
``RouteTable`` matches a request to an ``Api`` event the way API Gateway matches resources;
``http_response`` maps what the function returned back to HTTP.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

from localdev.resources import ACCOUNT_ID
from localdev.template import TemplateError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence

    from localdev.template import ApiRoute

API_ID = "localapi01"


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str  # without the query string, still percent-encoded
    query: str = ""
    headers: Sequence[tuple[str, str]] = ()  # as sent: names keep their case, repeats are kept
    body: bytes = b""
    source_ip: str = "127.0.0.1"


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Sequence[tuple[str, str]]
    body: bytes


def anonymous_identity(source_ip: str, user_agent: str | None) -> dict[str, str | None]:
    """``requestContext.identity`` of an unauthenticated caller: every key present, most null."""
    return {
        "cognitoIdentityPoolId": None,
        "accountId": None,
        "cognitoIdentityId": None,
        "caller": None,
        "accessKey": None,
        "sourceIp": source_ip,
        "cognitoAuthenticationType": None,
        "cognitoAuthenticationProvider": None,
        "userArn": None,
        "userAgent": user_agent,
        "user": None,
    }


def proxy_event(
    request: HttpRequest,
    *,
    resource: str,
    path_parameters: Mapping[str, str] | None,
    stage: str,
    at: datetime,
    binary: bool = False,
    identity: Mapping[str, str | None] | None = None,
    request_id: str | None = None,
    claims: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The event API Gateway sends for ``request`` matched to ``resource``; ``binary`` base64-encodes the body.

    ``claims``: a Cognito user pool authorizer let the request in; its token's claims (``email``, ``sub``)
    are in ``requestContext.authorizer.claims``, as API Gateway passes them."""
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in request.headers:
        headers[name] = value
        multi_headers.setdefault(name, []).append(value)
    query: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    for name, value in parse_qsl(request.query, keep_blank_values=True):
        query[name] = value
        multi_query.setdefault(name, []).append(value)
    body: str | None = None
    if request.body:
        body = base64.b64encode(request.body).decode() if binary else request.body.decode()
    path = unquote(request.path)
    user_agent = next((value for name, value in request.headers if name.lower() == "user-agent"), None)
    return {
        "resource": resource,
        "path": path,
        "httpMethod": request.method,
        "headers": headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": dict(path_parameters) if path_parameters else None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "resourceId": "local",
            "stage": stage,
            "requestId": request_id or str(uuid.uuid4()),
            "extendedRequestId": str(uuid.uuid4()),
            "requestTime": at.astimezone(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(at.timestamp() * 1000),
            "identity": dict(identity) if identity else anonymous_identity(request.source_ip, user_agent),
            "path": f"/{stage}{path}",
            "resourcePath": resource,
            "httpMethod": request.method,
            "apiId": API_ID,
            "domainName": "127.0.0.1",
            "protocol": "HTTP/1.1",
            **({"authorizer": {"claims": dict(claims)}} if claims else {}),
        },
        "body": body,
        "isBase64Encoded": binary and body is not None,
    }


def is_binary(content_type: str | None, binary_media_types: Iterable[str], body: bytes) -> bool:
    """API Gateway base64-encodes a body whose type is a binary media type; text that is not UTF-8 is too."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    for pattern in binary_media_types:
        wanted = pattern.lower()
        if wanted == "*/*" or wanted == media_type or (wanted.endswith("/*") and media_type.startswith(wanted[:-1])):
            return True
    try:
        body.decode()
    except UnicodeDecodeError:
        return True
    return False


def http_response(result: Any) -> HttpResponse:
    """A proxy integration's result as HTTP; a result API Gateway could not read is its 502."""
    if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
        return gateway_error(502, "Internal server error")
    headers: list[tuple[str, str]] = []
    single = result.get("headers") or {}
    multi = result.get("multiValueHeaders") or {}
    for name, value in single.items():
        if name not in multi:
            headers.append((str(name), str(value)))
    for name, values in multi.items():
        headers.extend((str(name), str(value)) for value in values)
    body = result.get("body") or ""
    try:
        raw = base64.b64decode(body, validate=True) if result.get("isBase64Encoded") else str(body).encode()
    except (binascii.Error, ValueError):
        return gateway_error(502, "Internal server error")
    return HttpResponse(status=result["statusCode"], headers=headers, body=raw)


_ERROR_TYPES = {
    403: "MissingAuthenticationTokenException",
    413: "RequestEntityTooLargeException",
    502: "InternalServerErrorException",
}


def gateway_error(status: int, message: str) -> HttpResponse:
    """An error API Gateway itself answers with (the function never runs): ``{"message": ...}``."""
    headers = [("Content-Type", "application/json")]
    if status in _ERROR_TYPES:
        headers.append(("x-amzn-ErrorType", _ERROR_TYPES[status]))
    return HttpResponse(status=status, headers=headers, body=json.dumps({"message": message}).encode())


class RouteTable:
    """API Gateway's resource matching: literal segments before ``{param}``, ``{proxy+}`` last; ANY matches all."""

    def __init__(self, routes: Iterable[ApiRoute]) -> None:
        self._routes: list[tuple[tuple[str, ...], ApiRoute]] = []
        seen: dict[tuple[str, str], ApiRoute] = {}
        for route in routes:
            key = (_normalised(route.path), route.method)
            if key in seen:
                first = seen[key]
                raise TemplateError(
                    f"Resources.{route.function}.Properties.Events.{route.event}: {route.method} {route.path} is "
                    f"already served by {first.function}.{first.event}; the local gateway serves every API on one port"
                )
            seen[key] = route
            self._routes.append((_segments(route.path), route))
        self._routes.sort(key=lambda item: _specificity(item[0]), reverse=True)

    def __iter__(self) -> Iterator[ApiRoute]:
        return (route for _, route in self._routes)

    def match(self, method: str, path: str) -> tuple[ApiRoute, dict[str, str]] | None:
        segments = _segments(path)
        for template, route in self._routes:
            if route.method not in ("ANY", method.upper()):
                continue
            parameters = _bind(template, segments)
            if parameters is not None:
                return route, parameters
        return None


def _normalised(path: str) -> str:
    return "/" + "/".join(_segments(path))


def _segments(path: str) -> tuple[str, ...]:
    return tuple(segment for segment in path.split("/") if segment)


def _specificity(template: tuple[str, ...]) -> tuple[int, int, int]:
    literal = sum(1 for segment in template if not segment.startswith("{"))
    greedy = any(segment.endswith("+}") for segment in template)
    return (not greedy, literal, len(template))


def _bind(template: tuple[str, ...], segments: tuple[str, ...]) -> dict[str, str] | None:
    parameters: dict[str, str] = {}
    for index, part in enumerate(template):
        if part.startswith("{") and part.endswith("+}"):
            rest = segments[index:]
            if not rest:
                return None
            parameters[part[1:-2]] = unquote("/".join(rest))
            return parameters
        if index >= len(segments):
            return None
        if part.startswith("{") and part.endswith("}"):
            parameters[part[1:-1]] = unquote(segments[index])
        elif part != segments[index]:
            return None
    return parameters if len(template) == len(segments) else None
