"""Stopping and starting again: nothing acknowledged is lost, nothing arriving late is acknowledged.

Each test starts its own runner in-process (the product's template, or the small fixture one), so
stopping it is part of the test.
"""

from __future__ import annotations

import random
import socket
import threading
from typing import TYPE_CHECKING, Any

from localdev.signing import DEV_SECRETS, signature_headers
from localdev.template import TEMPLATE
from tests.local.conftest import FIXTURES, running
from tests.signing import sample

if TYPE_CHECKING:
    import pytest

    from tests.local.conftest import LocalRunner, Reply

BOUND_SECONDS = 30  # every wait below ends by then, or the test fails
INGRESS, PROCESSOR = "WebhookIngressFunction", "EventProcessorFunction"


def signed_webhook(local: LocalRunner) -> tuple[bytes, dict[str, str]]:
    """A generic booking signed at the runner's time (taken directly: once stopping, /_local answers 503 too)."""
    body = sample("generic/appointment_scheduled.json")
    signature = signature_headers("generic", DEV_SECRETS["generic"], body, local.runner.clock.now())
    return body, {"Content-Type": "application/json", **signature}


def post_webhook(local: LocalRunner, body: bytes, headers: dict[str, str]) -> Reply | None:
    """The reply, or ``None`` when the runner closed or refused the connection."""
    try:
        return local.post("/webhooks/generic", body=body, headers=headers)
    except OSError:  # connection refused, reset or closed before an answer
        return None


def assert_refused_as_stopping(reply: Reply) -> None:
    assert reply.status == 503
    assert reply.headers.get("Connection") == "close"
    document = reply.json()
    assert document["error"]["code"] == "runner_stopping"
    assert document["error"]["message"]
    assert document["error"]["details"] == []
    assert document["request_id"]


def test_once_stopping_begins_requests_get_503_and_once_stopped_the_connection_is_refused() -> None:
    with running(TEMPLATE, background=True) as local:
        body, headers = signed_webhook(local)

        # When the runner begins to stop
        local.server.begin_stop()

        # Then a webhook is refused in the API's error shape, and so is every dev endpoint
        reply = post_webhook(local, body, headers)
        assert reply is not None
        assert_refused_as_stopping(reply)
        assert_refused_as_stopping(local.get("/_local/health"))

        # And once it has stopped, the port takes no connection at all: never a 202
        local.server.stop()
        assert post_webhook(local, body, headers) is None


def test_a_webhook_in_flight_when_stopping_begins_is_acknowledged_and_processed_before_the_runner_lets_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with running(TEMPLATE, background=True) as local:
        runner = local.runner
        events: list[tuple[str, Any]] = []
        ingress_entered, ingress_may_go = threading.Event(), threading.Event()
        invoke, reset_moto = runner.invoke, runner._reset_moto

        def held_invoke(function: str, event: dict[str, Any]) -> Any:
            if function == INGRESS:
                ingress_entered.set()
                assert ingress_may_go.wait(BOUND_SECONDS)
            result = invoke(function, event)
            events.append((function, (event, result)))
            return result

        def recorded_reset() -> None:
            events.append(("state dropped", None))
            reset_moto()

        monkeypatch.setattr(runner, "invoke", held_invoke)
        monkeypatch.setattr(runner, "_reset_moto", recorded_reset)
        body, headers = signed_webhook(local)

        # Given a webhook the gateway accepted and whose ingress function is running
        replies: list[Reply | None] = []
        sender = threading.Thread(target=lambda: replies.append(post_webhook(local, body, headers)))
        sender.start()
        assert ingress_entered.wait(BOUND_SECONDS)

        # When the runner begins to stop (as Ctrl-C does: the whole stop, on another thread)
        local.server.begin_stop()
        stopper = threading.Thread(target=local.server.stop)
        stopper.start()

        # Then a webhook arriving now is refused while the one in flight is still being finished
        late = post_webhook(local, body, headers)
        assert late is not None
        assert_refused_as_stopping(late)
        assert not {INGRESS, PROCESSOR} & {function for function, _ in events}

        # When the ingress function finishes
        ingress_may_go.set()
        sender.join(BOUND_SECONDS)
        stopper.join(BOUND_SECONDS)
        assert not sender.is_alive()
        assert not stopper.is_alive()

        # Then the webhook was acknowledged, and its event processed before the runner dropped its state
        [accepted] = replies
        assert accepted is not None
        assert (accepted.status, accepted.json()["events"]) == (202, 1)
        order = [function for function, _ in events]
        assert order.index(INGRESS) < order.index(PROCESSOR) < order.index("state dropped")
        [(event, result)] = [detail for function, detail in events if function == PROCESSOR]
        [record] = event["Records"]
        assert "stf-981" in record["body"]  # the booking the webhook carried
        assert result == {"batchItemFailures": []}


def health_closed_by_the_runner(port: int) -> bytes:
    """GET health with ``Connection: close`` and read until the runner hangs up: its side goes to TIME_WAIT."""
    with socket.create_connection(("127.0.0.1", port), timeout=BOUND_SECONDS) as connection:
        connection.sendall(b"GET /_local/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    return received


def port_the_kernel_never_hands_out() -> int:
    """A free port below the ephemeral range (Linux 32768-60999, macOS 49152-65535).

    Nothing on this shared machine can take it for an outgoing connection between the two runs.
    """
    for port in random.sample(range(20000, 32768), 100):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 32767")


def test_the_runner_starts_again_at_once_on_the_port_it_just_left() -> None:
    template = FIXTURES / "scheduled" / "template.yaml"
    # Given a runner that closed a connection on its port (the port keeps it in TIME_WAIT a while) and stopped
    with running(template, port=port_the_kernel_never_hands_out()) as first:
        port = first.server.port
        assert health_closed_by_the_runner(port).startswith(b"HTTP/1.1 200 ")

    # When a runner starts on the same port straight away
    with running(template, port=port) as second:
        # Then it answers there
        assert second.base == f"http://127.0.0.1:{port}"
        assert second.get("/_local/health").json()["status"] == "ok"
