"""The gateway's proxy events and the integration tests' are one shape, and it is API Gateway's.

``fixtures/sam_aws_proxy_event.json`` was produced by SAM CLI 1.170.0:

    sam local generate-event apigateway aws-proxy --method POST --resource '/webhooks/{source}' \\
        --path webhooks/generic --stage v1 --body '{"event_id":"evt_01"}' --querystringparameters '{"trace":"1"}'
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from localdev.apigw import HttpRequest, RouteTable, http_response, is_binary, proxy_event
from localdev.template import ApiRoute, TemplateError

SAM_EVENT = json.loads((Path(__file__).parent / "fixtures" / "sam_aws_proxy_event.json").read_text())
AT = datetime(2015, 4, 9, 12, 34, 56, tzinfo=UTC)
# Objects whose keys are the request's own (header names, parameters): their type is compared, not their keys.
DATA_MAPS = {
    f"event.{key}"
    for key in (
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
        "stageVariables",
    )
}


def gateway_event(*, binary: bool) -> dict[str, Any]:
    request = HttpRequest(
        method="POST",
        path="/webhooks/generic",
        query="trace=1",
        headers=(("Content-Type", "application/json"), ("User-Agent", "Custom User Agent String")),
        body=b'{"event_id":"evt_01"}',
    )
    return proxy_event(
        request, resource="/webhooks/{source}", path_parameters={"source": "generic"}, stage="v1", at=AT, binary=binary
    )


def shape_differences(ours: Any, theirs: Any, where: str = "event") -> list[str]:
    """Keys SAM's event has that ours lacks, and values of another JSON type (null stands for anything)."""
    if theirs is None or ours is None:
        return []
    if isinstance(theirs, dict):
        if not isinstance(ours, dict):
            return [f"{where}: an object in SAM's event"]
        problems = []
        for key, value in theirs.items():
            if key not in ours:
                problems.append(f"{where}.{key}: missing")
            elif f"{where}.{key}" not in DATA_MAPS:
                problems += shape_differences(ours[key], value, f"{where}.{key}")
        return problems
    if type(ours) is not type(theirs):
        return [f"{where}: {type(ours).__name__}, SAM's is {type(theirs).__name__}"]
    return []


@pytest.mark.parametrize("binary", [True, False])
def test_the_gateways_event_has_every_field_of_sam_clis_with_the_same_types(binary: bool) -> None:
    assert shape_differences(gateway_event(binary=binary), SAM_EVENT) == []


def test_the_fields_the_handlers_read_agree_with_sam_clis() -> None:
    ours = gateway_event(binary=True)
    for key in ("resource", "path", "httpMethod", "isBase64Encoded", "queryStringParameters"):
        assert ours[key] == SAM_EVENT[key], key
    for key in ("stage", "path", "resourcePath", "httpMethod", "accountId", "requestTimeEpoch", "requestTime"):
        assert ours["requestContext"][key] == SAM_EVENT["requestContext"][key], key
    assert base64.b64decode(ours["body"]) == base64.b64decode(SAM_EVENT["body"])
    assert ours["headers"]["User-Agent"] == SAM_EVENT["headers"]["User-Agent"]


def test_the_integration_tests_post_through_the_same_builder() -> None:
    # The integration stack builds its events with proxy_event: one shape for the runner and the tests.
    from tests.integration import stack

    assert stack.__dict__["proxy_event"] is proxy_event


# --- matching and mapping


def _route(path: str, method: str = "GET", function: str = "F", event: str = "E") -> ApiRoute:
    return ApiRoute(
        function=function,
        event=event,
        api="Api",
        stage="v1",
        path=path,
        method=method,
        iam_auth=False,
        binary_media_types=(),
    )


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/appointments", ("/appointments", {})),
        ("GET", "/appointments/", ("/appointments", {})),
        ("GET", "/appointments/01J", ("/appointments/{id}", {"id": "01J"})),
        ("POST", "/appointments/01J/cancel", ("/appointments/{id}/cancel", {"id": "01J"})),
        ("GET", "/appointments/search", ("/appointments/search", {})),
        ("DELETE", "/files/a/b/c", ("/files/{proxy+}", {"proxy": "a/b/c"})),
        ("POST", "/appointments/01J", None),
        ("GET", "/files", None),
        ("GET", "/appointments/01J/cancel/extra", None),
    ],
)
def test_routes_match_as_api_gateway_matches_resources(
    method: str, path: str, expected: tuple[str, dict[str, str]] | None
) -> None:
    table = RouteTable(
        [
            _route("/appointments/{id}"),
            _route("/appointments"),
            _route("/appointments/search"),
            _route("/appointments/{id}/cancel", "POST"),
            _route("/files/{proxy+}", "ANY"),
        ]
    )
    matched = table.match(method, path)
    assert (None if matched is None else (matched[0].path, matched[1])) == expected


def test_two_functions_on_one_route_stop_the_runner() -> None:
    with pytest.raises(TemplateError, match=r"already served by A\.One"):
        RouteTable([_route("/x", function="A", event="One"), _route("/x/", function="B", event="Two")])


def test_a_response_maps_back_to_http_with_every_header_and_a_base64_body() -> None:
    response = http_response(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "image/png", "X-One": "1"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "body": base64.b64encode(b"\x89PNG").decode(),
            "isBase64Encoded": True,
        }
    )
    assert response.status == 201
    assert response.body == b"\x89PNG"
    assert sorted(response.headers) == [
        ("Content-Type", "image/png"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("X-One", "1"),
    ]


@pytest.mark.parametrize(
    "result", [None, {"body": "x"}, {"statusCode": "200"}, {"statusCode": 200, "body": "%%", "isBase64Encoded": True}]
)
def test_a_result_api_gateway_cannot_read_is_a_502(result: Any) -> None:
    response = http_response(result)
    assert response.status == 502
    assert json.loads(response.body) == {"message": "Internal server error"}


@pytest.mark.parametrize(
    ("content_type", "types", "body", "expected"),
    [
        ("application/json", (), b"{}", False),
        ("image/png", ("image/*",), b"x", True),
        ("application/pdf; charset=binary", ("application/pdf",), b"x", True),
        ("application/json", ("*/*",), b"{}", True),
        ("application/json", (), b"\xff", True),
    ],
)
def test_binary_bodies_are_base64_encoded(
    content_type: str, types: tuple[str, ...], body: bytes, expected: bool
) -> None:
    assert is_binary(content_type, types, body) is expected
