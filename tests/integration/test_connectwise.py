"""ConnectWise callbacks through the real ingress and processor handlers under moto, with the signing key served
by a key server the test runs on 127.0.0.1 (which counts every request it gets)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from appointments import wiring
from appointments.adapters.connectwise_keys import ConnectWiseCallbackKeys
from appointments.domain.model import ExternalRef, Status
from appointments.errors import InvalidSignature, VendorRefused, VendorUnavailable
from appointments.sources.base import WebhookRequest
from appointments.sources.connectwise import ConnectWiseSource, key_hosts
from localdev.signing import connectwise_signature
from tests.integration.stack import Stack, stack_under_moto
from tests.signing import sample

NOW = datetime(2026, 11, 23, 14, 5, 30, tzinfo=UTC)
SIGNING_KEY = "cw-integration-signing-key"


class KeyServer:
    """ConnectWise's callbackkey endpoint on 127.0.0.1: ``{"signing_key": ...}``, or ``status`` when set."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.status = 200
        self.key = SIGNING_KEY
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                body = json.dumps({"signing_key": server.key}).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self._http.server_address[1]}"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def __enter__(self) -> KeyServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture
def key_server() -> Iterator[KeyServer]:
    with KeyServer() as server:
        yield server


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch, key_server: KeyServer) -> Iterator[Stack]:
    with stack_under_moto(monkeypatch, NOW, ConnectWiseKeyHosts=key_server.origin) as built:
        yield built


def callback(name: str, key_url: str) -> bytes:
    document = json.loads(sample(f"connectwise/{name}.json"))
    document["Metadata"]["key_url"] = key_url
    return json.dumps(document).encode()


def post(stack: Stack, body: bytes, signing_key: str = SIGNING_KEY) -> dict[str, Any]:
    return stack.post("connectwise", body, {"x-content-signature": connectwise_signature(signing_key, body)})


# --- the adapter against a real server


def test_the_adapter_fetches_the_signing_key_from_an_allowed_url(key_server: KeyServer) -> None:
    keys = ConnectWiseCallbackKeys(key_hosts([key_server.origin]))
    assert keys.signing_key(f"{key_server.origin}/callbackkey?id=7f3a") == SIGNING_KEY
    assert key_server.requests == ["/callbackkey?id=7f3a"]


def test_a_foreign_key_url_sends_no_request_at_all(key_server: KeyServer) -> None:
    # Given the real adapter, allowed only ConnectWise's cloud hosts
    source = ConnectWiseSource(ConnectWiseCallbackKeys(key_hosts(["api-na.myconnectwise.net"])))
    # When a callback names our (foreign) key server as its key_url, signed with the key it would serve
    body = callback("ticket_assigned", f"{key_server.origin}/callbackkey")
    request = WebhookRequest(headers={"x-content-signature": connectwise_signature(SIGNING_KEY, body)}, body=body)
    # Then it is refused, and the server never heard from us; the adapter alone refuses it too
    with pytest.raises(InvalidSignature):
        source.verify(request, "acmemsp", NOW)
    with pytest.raises(InvalidSignature):
        ConnectWiseCallbackKeys(key_hosts(["api-na.myconnectwise.net"])).signing_key(f"{key_server.origin}/k")
    assert key_server.requests == []


@pytest.mark.parametrize(("status", "error"), [(503, VendorUnavailable), (404, VendorRefused), (302, VendorRefused)])
def test_the_adapter_reports_what_the_key_server_answered(key_server: KeyServer, status: int, error: type) -> None:
    key_server.status = status
    with pytest.raises(error):
        ConnectWiseCallbackKeys(key_hosts([key_server.origin])).signing_key(f"{key_server.origin}/k")
    assert len(key_server.requests) == 1  # no retry: the ingress has no time for one, ConnectWise retries


# --- through the handler


def test_a_signed_ticket_callback_is_accepted_and_queued(stack: Stack, key_server: KeyServer) -> None:
    body = callback("ticket_assigned", f"{key_server.origin}/callbackkey?id=7f3a")
    response = post(stack, body)
    assert response["statusCode"] == 202, response["body"]
    assert len(stack.queued()) == 1
    # A redelivery is answered the same, with the key from the cache
    assert post(stack, body)["statusCode"] == 202
    assert len(key_server.requests) == 1


def test_a_badly_signed_callback_is_refused_and_nothing_is_queued(stack: Stack, key_server: KeyServer) -> None:
    body = callback("ticket_assigned", f"{key_server.origin}/callbackkey?id=7f3a")
    response = post(stack, body, signing_key="forged")
    assert response["statusCode"] == 401
    assert stack.queued() == []


def test_a_foreign_key_url_is_refused_through_the_handler_without_a_request(
    stack: Stack, key_server: KeyServer
) -> None:
    body = callback("ticket_assigned", "https://attacker.example/callbackkey")
    assert post(stack, body)["statusCode"] == 401
    assert stack.queued() == [] and key_server.requests == []


def test_a_key_server_that_fails_is_a_503_and_nothing_is_queued(stack: Stack, key_server: KeyServer) -> None:
    key_server.status = 503
    response = post(stack, callback("ticket_assigned", f"{key_server.origin}/callbackkey"))
    assert response["statusCode"] == 503, response["body"]
    assert json.loads(response["body"])["error"]["code"] == "signing_key_unavailable"
    assert stack.queued() == []


def test_a_completed_connectwise_ticket_cancels_its_appointment_ahead(stack: Stack, key_server: KeyServer) -> None:
    # Given an appointment next week against ConnectWise ticket 48213, booked through the generic source
    document = json.loads(sample("generic/appointment_scheduled.json"))
    document["occurred_at"] = "2026-11-22T08:00:00Z"
    document["appointment"].update(
        external_id="cw-1",
        start="2026-11-30T15:00:00Z",
        end="2026-11-30T15:30:00Z",
        ticket={"system": "connectwise", "id": "48213"},
    )
    assert stack.post_generic(json.dumps(document).encode())["statusCode"] == 202
    stack.drain()
    appointment = wiring.store().find_by_external_ref(ExternalRef(system="generic", id="cw-1"))
    assert appointment is not None
    # When ConnectWise reports the ticket >Closed
    assert post(stack, callback("ticket_completed", f"{key_server.origin}/callbackkey"))["statusCode"] == 202
    stack.drain()
    # Then the appointment ahead is cancelled
    assert wiring.store().get(appointment).status is Status.CANCELLED
