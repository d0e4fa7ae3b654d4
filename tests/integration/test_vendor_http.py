"""The vendor HTTP client against a scripted server on 127.0.0.1: what is retried, what is typed, what is refused."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from appointments.adapters.vendor_http import DEFAULT_RETRY_AFTER, HttpPolicy, VendorHttp, retry_after_seconds
from appointments.errors import VendorRateLimited, VendorRefused, VendorUnavailable


@dataclass
class Script:
    """The answers to give, in turn (the last one repeats), and the requests seen."""

    answers: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    seen: list[tuple[str, str]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._answer()

    def _answer(self) -> None:
        script = self.server.script
        script.seen.append((self.command, self.path))
        status, headers, body = script.answers.pop(0) if len(script.answers) > 1 else script.answers[0]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script: Script) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = script


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def url(script: Script) -> Iterator[str]:
    server = _Server(script)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/things"
    finally:
        server.shutdown()
        server.server_close()


def client(**policy: Any) -> VendorHttp:
    return VendorHttp("acme", HttpPolicy(backoff=0, **policy))


JSON = {"Content-Type": "application/json"}


def test_a_json_answer_comes_back_with_the_query_sent(script: Script, url: str) -> None:
    # Given a vendor that answers JSON
    script.answers = [(200, JSON, b'{"data": [1, 2]}')]
    # When asked with query fields
    document = client().get_json(url, fields={"page": "2", "filter": "a~EQ~b"})
    # Then the document, and the fields in the query
    assert document == {"data": [1, 2]}
    assert script.seen == [("GET", "/v1/things?page=2&filter=a~EQ~b")]


def test_a_500_then_a_200_is_retried_at_once(script: Script, url: str) -> None:
    script.answers = [(500, JSON, b"{}"), (200, JSON, b"{}")]
    assert client().get_json(url) == {}
    assert len(script.seen) == 2


def test_5xx_after_every_retry_is_vendor_unavailable(script: Script, url: str) -> None:
    script.answers = [(503, JSON, b"{}")]
    with pytest.raises(VendorUnavailable) as raised:
        client(retries=2).get_json(url)
    assert raised.value.retryable
    assert len(script.seen) == 3  # the try and two retries


def test_a_post_is_sent_once_even_when_it_fails(script: Script, url: str) -> None:
    # Given a vendor failing with a 503
    script.answers = [(503, JSON, b"{}")]
    # When a write is posted
    with pytest.raises(VendorUnavailable):
        client(retries=2).request("POST", url, body={"note": "hello"})
    # Then it went once: a retried POST could create the note twice
    assert script.seen == [("POST", "/v1/things")]


def test_a_429_is_handed_back_with_its_retry_after_and_not_retried(script: Script, url: str) -> None:
    script.answers = [(429, {"Retry-After": "12"}, b"slow down")]
    with pytest.raises(VendorRateLimited) as raised:
        client().get_json(url)
    assert raised.value.retry_after == 12
    assert len(script.seen) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_a_4xx_is_refused_for_good(script: Script, url: str, status: int) -> None:
    script.answers = [(status, JSON, b"{}")]
    with pytest.raises(VendorRefused) as raised:
        client().get_json(url)
    assert (raised.value.status, raised.value.retryable) == (status, False)
    assert len(script.seen) == 1


def test_a_redirect_is_not_followed(script: Script, url: str) -> None:
    # A redirect could take the bearer key to another host: it is refused, not followed.
    script.answers = [(302, {"Location": "http://127.0.0.1:9/elsewhere"}, b"")]
    with pytest.raises(VendorRefused):
        client().get_json(url)
    assert len(script.seen) == 1


def test_an_answer_that_is_not_json_or_too_large_is_unavailable(script: Script, url: str) -> None:
    script.answers = [(200, {"Content-Type": "text/html"}, b"<html>maintenance</html>")]
    with pytest.raises(VendorUnavailable, match="not JSON"):
        client().get_json(url)
    script.answers = [(200, JSON, b"[" + b"1," * 600 + b"1]")]
    with pytest.raises(VendorUnavailable, match="larger"):
        client(max_body_bytes=1000).get_json(url)


def test_nobody_listening_is_unavailable_and_names_no_url() -> None:
    with pytest.raises(VendorUnavailable) as raised:
        client(retries=0, connect_timeout=0.5).get_json("http://127.0.0.1:9/v1/secret-path?key=abc")
    assert "secret-path" not in str(raised.value) and "abc" not in str(raised.value)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("7", 7.0), ("0", 1.0), ("99999", 3600.0), (None, DEFAULT_RETRY_AFTER), ("soon", DEFAULT_RETRY_AFTER)],
)
def test_retry_after_is_read_and_bounded(header: str | None, seconds: float) -> None:
    assert retry_after_seconds(header) == seconds


def test_retry_after_as_an_http_date_in_the_past_waits_a_second() -> None:
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 1.0
