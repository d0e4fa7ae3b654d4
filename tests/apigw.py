"""API Gateway REST (v1) proxy events, shaped as API Gateway sends them to Lambda."""

from __future__ import annotations

import base64
import uuid
from typing import Any


def rest_event(
    method: str,
    path: str,
    *,
    resource: str,
    path_parameters: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    base64_body: bool = False,
) -> dict[str, Any]:
    headers = headers or {}
    text: str | None = None
    if body is not None:
        text = base64.b64encode(body).decode() if base64_body else body.decode()
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/v1{path}",
            "stage": "v1",
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "203.0.113.10", "userAgent": "test"},
            "accountId": "123456789012",
            "apiId": "testapi",
        },
        "body": text,
        "isBase64Encoded": base64_body,
    }
