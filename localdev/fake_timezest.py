"""A fake TimeZest API: what the local runner serves under ``/_local/timezest/v1`` and what tests start alone.

It answers as TimeZest does (bearer key, ``{"data": [...], "next_page": n | null}``, a TQL ``filter`` with
``~`` for spaces, Unix seconds) over requests a developer or a test puts in. It counts every request on the
clock it is given, so a test can check a poller's rate against TimeZest's limit (180 per 60 s), and it can
be told to answer the next requests with a fault: a 429 with ``Retry-After``, a 500, or a slow answer.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime


class FakeApi(Protocol):
    """A fake vendor API as ``Serving`` serves it: one answer per request, whatever path it is mounted at."""

    def answer(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Answer: ...


LIMIT_PER_MINUTE = 180
DEFAULT_TYPES = (
    {"id": "apty_remote30", "object": "appointment_type", "internal_name": "Remote support", "duration_mins": 30},
    {"id": "apty_onsite60", "object": "appointment_type", "internal_name": "On-site visit", "duration_mins": 60},
)
_PREDICATE = re.compile(r"^scheduling_request\.([a-z_]+)~(EQ|NOT_EQ|GT|GTE|LT|LTE)~(-?[0-9]+|[A-Za-z_]+)$")
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "EQ": lambda a, b: a == b,
    "NOT_EQ": lambda a, b: a != b,
    "GT": lambda a, b: a is not None and a > b,
    "GTE": lambda a, b: a is not None and a >= b,
    "LT": lambda a, b: a is not None and a < b,
    "LTE": lambda a, b: a is not None and a <= b,
}


@dataclass(frozen=True)
class Fault:
    status: int = 500
    retry_after: str | None = None
    delay_seconds: float = 0.0  # a slow answer (then the status: 200 when status is 200)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeTimeZest:
    clock: Callable[[], datetime]
    api_key: str
    page_size: int = 25
    types: tuple[dict[str, Any], ...] = DEFAULT_TYPES
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen_at: list[datetime] = field(default_factory=list)  # when each API request came, on ``clock``
    faults: list[Fault | None] = field(default_factory=list)  # the next answers, in order; None: a normal one
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- what a developer or a test does -------------------------------------------------------------

    def put(self, request: dict[str, Any]) -> dict[str, Any]:
        """Add or change a scheduling request; ``updated_at`` is now on the fake's clock unless given."""
        if not isinstance(request.get("id"), str) or not request["id"]:
            raise ValueError("id: a scheduling request needs an id (sreq_...)")
        now = int(self.clock().timestamp())
        with self._lock:
            previous = self.requests.get(request["id"], {})
            stored = {"object": "scheduling_request", "created_at": now, **previous, **request}
            if "updated_at" not in request:
                stored["updated_at"] = now
            self.requests[stored["id"]] = stored
            return dict(stored)

    def fail_next(self, *faults: Fault | None) -> None:
        """The next requests get these faults in turn (``None`` answers normally: ``fail_next(None, f)`` hits the
        second request)."""
        with self._lock:
            self.faults.extend(faults)

    def most_in_any_minute(self) -> int:
        """The most requests that came within any 60 seconds: TimeZest's limit is on this."""
        times = sorted(self.seen_at)
        most, start = 0, 0
        for end, at in enumerate(times):
            while (at - times[start]).total_seconds() >= 60:
                start += 1
            most = max(most, end - start + 1)
        return most

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.seen_at.clear()
            self.faults.clear()

    # -- the API -------------------------------------------------------------------------------------

    def answer(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes = b"") -> Answer:
        """``path`` is below ``/v1`` (``/scheduling_requests``); header names lower-cased; ``body`` unread (GETs)."""
        with self._lock:
            self.seen_at.append(self.clock())
            fault = self.faults.pop(0) if self.faults else None
        if fault is not None:
            if fault.delay_seconds:
                time.sleep(fault.delay_seconds)  # a slow vendor, as a client's read timeout meets it
            if fault.status != HTTPStatus.OK:
                extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                return _json(fault.status, {"error": "fault injected"}, extra)
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return _json(401, {"error": "invalid API key"})
        if method != "GET":
            return _json(405, {"error": "method not allowed"})
        arguments = {key: values[-1] for key, values in parse_qs(query).items()}
        try:
            page = int(arguments.get("page", "1"))
        except ValueError:
            return _json(400, {"error": "page must be a number"})
        if page < 1:
            return _json(400, {"error": "page must be at least 1"})
        if path == "/appointment_types":
            return self._page(list(self.types), page)
        if path == "/scheduling_requests":
            try:
                matches = self._matching(arguments.get("filter"))
            except ValueError as error:
                return _json(400, {"error": str(error)})
            return self._page(matches, page)
        return _json(404, {"error": "not found"})

    def _matching(self, tql: str | None) -> list[dict[str, Any]]:
        predicates = []
        for part in tql.split("~AND~") if tql else []:
            found = _PREDICATE.match(part)
            if found is None:
                raise ValueError(f"a TQL predicate the fake does not read: {part!r}")
            attribute, operator, value = found.groups()
            predicates.append((attribute, _COMPARE[operator], int(value) if value.lstrip("-").isdigit() else value))
        with self._lock:
            items = sorted(self.requests.values(), key=lambda r: (r.get("created_at", 0), r["id"]))
        return [r for r in items if all(test(r.get(attribute), value) for attribute, test, value in predicates)]

    def _page(self, items: list[dict[str, Any]], page: int) -> Answer:
        start = (page - 1) * self.page_size
        more = len(items) > start + self.page_size
        return _json(200, {"data": items[start : start + self.page_size], "next_page": page + 1 if more else None})


def _json(status: int, document: object, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(document).encode())


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        path = url.path.removeprefix(self.server.prefix)
        headers = {name.lower(): value for name, value in self.headers.items()}
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        answer = self.server.fake.answer(method, path, url.query, headers, body)
        try:
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a slow answer it timed out on): nobody to answer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read the fake's counts, not its log."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeApi, prefix: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake
        self.prefix = prefix


class Serving:
    """Serve ``fake`` on 127.0.0.1 on a free port: ``with Serving(fake) as base_url: ...`` (``.../v1``).

    Any fake with ``answer`` (``FakeApi``) is served the same way; ``prefix`` is the path it answers under
    (``/v1`` for TimeZest, nothing for the fake PSA, whose dialects are its own prefixes)."""

    def __init__(self, fake: FakeApi, *, prefix: str = "/v1", name: str = "fake-timezest") -> None:
        self._server = _Server(fake, prefix)
        self._prefix = prefix
        # A short poll interval: leaving the ``with`` waits one interval for the server loop to see the shutdown.
        serve = functools.partial(self._server.serve_forever, poll_interval=0.05)
        self._thread = threading.Thread(target=serve, name=name, daemon=True)

    def __enter__(self) -> str:
        self._thread.start()
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{self._prefix}"

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
