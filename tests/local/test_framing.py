"""Requests whose body cannot be delimited, sent over raw sockets: a prompt 400 (or 411, 413), never a 500 or a hang."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from localdev.runner import MAX_BODY_BYTES

if TYPE_CHECKING:
    from tests.local.conftest import LocalRunner

BOUND_SECONDS = 10  # a socket read that waits longer fails the test instead of hanging it


@dataclass(frozen=True)
class RawReply:
    status: int
    head: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def exchange(local: LocalRunner, head: str, body: bytes = b"", *, hang_up: bool = True) -> RawReply:
    """Send ``head`` (header lines, no blank line) and ``body``; ``hang_up`` closes our sending side after it."""
    request = f"POST /_local/settle HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}\r\n\r\n".encode() + body
    with socket.create_connection(("127.0.0.1", local.server.port), timeout=BOUND_SECONDS) as connection:
        connection.sendall(request)
        if hang_up:
            connection.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := connection.recv(65536):  # the runner closes the connection after a framing error
            received += chunk
    head_bytes, _, content = received.partition(b"\r\n\r\n")
    status_line = head_bytes.split(b"\r\n", 1)[0].decode()
    return RawReply(status=int(status_line.split(" ")[1]), head=head_bytes.decode(), body=content)


def assert_malformed_content_length(reply: RawReply) -> None:
    assert reply.status == 400
    assert "Connection: close" in reply.head
    document = reply.json()
    assert document["error"]["code"] == "malformed_request"
    assert document["error"]["details"][0]["field"] == "Content-Length"
    assert document["request_id"]


@pytest.mark.parametrize(
    "head",
    [
        "Content-Length: abc",
        "Content-Length: -5",
        "Content-Length: 1e3",
        "Content-Length: +5",
        "Content-Length: 0x10",
        "Content-Length: ",
        "Content-Length: 5\r\nContent-Length: 6",
        "Content-Length: 5, 6",
    ],
    ids=["letters", "negative", "exponent", "plus-sign", "hex", "empty", "two-different-headers", "two-in-one"],
)
def test_a_malformed_content_length_is_400_and_the_runner_carries_on(fixture_stack: LocalRunner, head: str) -> None:
    # When a request arrives with a Content-Length nobody can delimit a body with
    reply = exchange(fixture_stack, head)

    # Then it is answered 400 in the API's error shape, and the runner still answers others
    assert_malformed_content_length(reply)
    assert fixture_stack.get("/_local/health").status == 200


def test_a_body_shorter_than_its_content_length_then_a_closed_connection_is_400(fixture_stack: LocalRunner) -> None:
    # When the client announces 100 bytes, sends 2 and closes its side
    reply = exchange(fixture_stack, "Content-Length: 100", b"{}", hang_up=True)

    # Then the runner answers 400 at once rather than waiting for bytes that cannot come
    assert_malformed_content_length(reply)
    assert "2 of the 100 bytes" in reply.json()["error"]["message"]


def test_a_body_that_stops_arriving_is_400_after_the_read_timeout(
    fixture_stack: LocalRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a runner that waits at most a fraction of a second for a body to arrive
    monkeypatch.setattr(fixture_stack.server, "read_timeout_seconds", 0.3)

    # When the client announces 100 bytes, sends 2 and keeps the connection open
    reply = exchange(fixture_stack, "Content-Length: 100", b"{}", hang_up=False)

    # Then the read times out into a 400, well before the client's own bound
    assert_malformed_content_length(reply)
    assert "stopped arriving" in reply.json()["error"]["message"]


@pytest.mark.parametrize(
    "length", ["10737418240", str(MAX_BODY_BYTES + 1), "9" * 5000], ids=["10-GB", "limit-plus-one", "5000-digits"]
)
def test_a_body_claimed_over_the_limit_is_413_before_anything_is_read(fixture_stack: LocalRunner, length: str) -> None:
    # When a request claims more than API Gateway's 10 MB payload limit (and sends nothing of it)
    reply = exchange(fixture_stack, f"Content-Length: {length}", hang_up=False)

    # Then it is refused with API Gateway's 413 at once: nothing of that size was waited for or allocated
    assert reply.status == 413
    assert reply.json() == {"message": "Request Too Long"}


def test_a_chunked_body_is_refused_with_411_rather_than_misread(fixture_stack: LocalRunner) -> None:
    reply = exchange(fixture_stack, "Transfer-Encoding: chunked", b"2\r\n{}\r\n0\r\n\r\n")

    assert reply.status == 411
    assert reply.json()["error"]["details"][0]["field"] == "Transfer-Encoding"


@pytest.mark.parametrize(
    "head", ["Content-Length: 2\r\nContent-Length: 2", "Content-Length: 2, 2", "Content-Length: 002"]
)
def test_a_repeated_but_agreeing_content_length_is_accepted(fixture_stack: LocalRunner, head: str) -> None:
    reply = exchange(fixture_stack, f"{head}\r\nConnection: close", b"{}")

    assert reply.status == 200
    assert reply.json()["handled"] == 0
