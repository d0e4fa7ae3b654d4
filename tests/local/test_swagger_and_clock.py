"""The ops API from a browser (Swagger UI against the runner), and the runner's clock that only moves forward."""

from __future__ import annotations

import http.client
import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from tests.local.conftest import OPS_TOKEN, START

if TYPE_CHECKING:
    from tests.local.conftest import LocalRunner

BOOKING = {
    "start": (START + timedelta(hours=5)).isoformat(),
    "end": (START + timedelta(hours=5, minutes=30)).isoformat(),
    "timezone": "America/New_York",
    "type": "remote_call_in",
    "customer": {"name": "Dana Reyes", "email": "dana@example.com"},
    "ticket": {"system": "autotask", "id": "48213"},
}


@pytest.fixture(autouse=True)
def _fresh(product: LocalRunner) -> None:
    assert product.post("/_local/reset").status == 200
    assert product.post("/_local/clock", {"now": START.isoformat()}).status == 200


def raw_request(
    local: LocalRunner, method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> tuple[int, dict[str, str], Any]:
    """Exactly these headers (urllib adds a form Content-Type to every body, and follows redirects)."""
    address = urlsplit(local.base)
    connection = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read()
        return response.status, dict(response.getheaders()), json.loads(text) if text else None
    finally:
        connection.close()


# --- Swagger UI


def test_the_served_document_points_swagger_ui_at_the_runner_with_the_bearer_token(product: LocalRunner) -> None:
    reply = product.get("/docs?format=json")
    assert reply.status == 200
    spec = reply.json()
    # The runner serves the routes at the root: Swagger UI's first server.
    assert spec["servers"][0]["url"] == "/"
    assert spec["components"]["securitySchemes"]["opsToken"]["type"] == "http"
    assert spec["components"]["securitySchemes"]["opsToken"]["scheme"] == "bearer"
    assert "OPS_API_TOKEN" in spec["components"]["securitySchemes"]["opsToken"]["description"]
    assert spec["security"] == [{"opsToken": []}]
    assert "/docs" not in spec["paths"]
    assert all(op.get("security", spec["security"]) for methods in spec["paths"].values() for op in methods.values())


def test_a_request_as_swagger_ui_sends_it_is_answered(product: LocalRunner) -> None:
    # Swagger UI: the token as a bearer, no Content-Type on a GET; the URL is the server "/" plus the path.
    bearer = {"Authorization": f"Bearer {OPS_TOKEN}", "Accept": "application/json"}
    status, _, created = raw_request(product, "POST", "/appointments", json.dumps(BOOKING).encode(), bearer)
    assert status == 201, created  # a JSON body without a Content-Type is read as JSON
    status, _, listed = raw_request(product, "GET", "/appointments?ticket=autotask%3A48213", None, bearer)
    assert status == 200, listed
    assert [item["id"] for item in listed["items"]] == [created["id"]]
    status, _, refused = raw_request(product, "GET", "/appointments", None, {"Accept": "application/json"})
    assert status == 401, refused


def test_the_root_redirects_a_browser_to_the_documentation(product: LocalRunner) -> None:
    status, headers, _ = raw_request(product, "GET", "/", None, {})
    assert (status, headers["Location"]) == (302, "docs")
    followed = product.get("/")  # urllib follows it, as a browser would
    assert followed.status == 200
    assert "swagger-ui" in followed.body.decode().lower()


# --- the clock only moves forward


def test_the_clock_refuses_to_go_back_in_time(product: LocalRunner) -> None:
    assert product.post("/_local/clock", {"advance_seconds": 60}).status == 200
    reply = product.post("/_local/clock", {"now": START.isoformat()})
    assert reply.status == 409
    assert reply.json()["error"]["field"] == "now"
    assert "/_local/reset" in reply.json()["error"]["message"]
    assert product.now() == START + timedelta(seconds=60)
    # Forward, or to where it is, is fine.
    assert product.post("/_local/clock", {"now": (START + timedelta(seconds=60)).isoformat()}).status == 200
    assert product.post("/_local/clock", {"now": (START + timedelta(hours=1)).isoformat()}).status == 200


def test_the_first_move_after_a_reset_may_go_back_and_only_the_first(product: LocalRunner) -> None:
    assert product.post("/_local/clock", {"advance_seconds": 3600}).status == 200
    assert product.post("/_local/reset").status == 200
    assert product.post("/_local/clock", {"now": (START - timedelta(days=1)).isoformat()}).status == 200
    assert product.now() == START - timedelta(days=1)
    assert product.post("/_local/clock", {"now": (START - timedelta(days=2)).isoformat()}).status == 409
