"""The runner's HTTP face on 127.0.0.1: the API Gateway routes, and the ``/_local`` dev endpoints."""

from __future__ import annotations

import json
import threading
import traceback
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from localdev.apigw import HttpRequest, HttpResponse, gateway_error
from localdev.runner import MAX_BODY_BYTES

if TYPE_CHECKING:
    from collections.abc import Callable

    from localdev.runner import Runner

BACKGROUND_PERIOD_SECONDS = 0.25


class LocalRequestError(Exception):
    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(message)
        self.status, self.field, self.message = status, field, message


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False  # a port in use must stop the runner, not be shared

    def __init__(self, runner: Runner, port: int) -> None:
        self.runner = runner
        super().__init__(("127.0.0.1", port), _Handler)
        self._stopping = threading.Event()
        self._background: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start_background(self) -> None:
        """Lambda's side of the house: pump the queues and fire due schedules, as time passes."""
        self._background = threading.Thread(target=self._run_background, name="localdev-background", daemon=True)
        self._background.start()

    def _run_background(self) -> None:
        while not self._stopping.wait(BACKGROUND_PERIOD_SECONDS):
            try:
                self.runner.run_due()
                self.runner.settle()
            except Exception:
                traceback.print_exc()

    def stop_background(self) -> None:
        self._stopping.set()
        if self._background is not None:
            self._background.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    server: LocalServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the functions log each request themselves; the console stays readable

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_OPTIONS(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._send(gateway_error(413, "Request Too Long"), close=True)
            return
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        if url.path == "/_local" or url.path.startswith("/_local/"):
            self._send(self._local(url.path, body))
            return
        request = HttpRequest(
            method=self.command,
            path=url.path,
            query=url.query,
            headers=tuple(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
        )
        self._send(self.server.runner.handle_http(request))

    def _send(self, response: HttpResponse, *, close: bool = False) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    # -- /_local -----------------------------------------------------------------------------------

    def _local(self, path: str, body: bytes) -> HttpResponse:
        runner = self.server.runner
        routes: dict[tuple[str, str], Callable[[], dict[str, Any]]] = {
            ("GET", "/_local/health"): self._health,
            ("GET", "/_local/clock"): lambda: {"now": runner.clock.now().isoformat(), "mode": runner.clock.mode},
            ("POST", "/_local/clock"): lambda: self._move_clock(body),
            ("POST", "/_local/tick"): lambda: {"now": runner.clock.now().isoformat(), "ran": runner.tick()},
            ("POST", "/_local/settle"): lambda: {"handled": runner.settle()},
            ("POST", "/_local/reset"): self._reset,
            ("GET", "/_local/outbox"): lambda: {"items": [mail.as_json() for mail in runner.outbox]},
            ("GET", "/_local/schedules"): lambda: {"items": runner.schedules},
        }
        action = routes.get((self.command, path))
        if action is None:
            known = any(route_path == path for _, route_path in routes)
            status = 405 if known else 404
            return _json(status, {"message": "Method Not Allowed" if known else "Not Found"})
        try:
            return _json(200, action())
        except LocalRequestError as error:
            return _json(error.status, {"error": {"field": error.field, "message": error.message}})
        except Exception as error:  # the developer sees what went wrong; the trace goes to the console
            traceback.print_exc()
            return _json(500, {"error": {"field": None, "message": f"{type(error).__name__}: {error}"}})

    def _reset(self) -> dict[str, Any]:
        self.server.runner.reset()
        return {"reset": True}

    def _health(self) -> dict[str, Any]:
        runner = self.server.runner
        return {
            "status": "ok",
            "now": runner.clock.now().isoformat(),
            "functions": runner.function_names,
            "routes": [f"{route.method} {route.path}" for route in runner.routes],
            "schedules": runner.schedules,
        }

    def _move_clock(self, body: bytes) -> dict[str, Any]:
        runner = self.server.runner
        try:
            document = json.loads(body or b"{}")
        except ValueError:
            raise LocalRequestError(400, "body", 'must be JSON: {"now": ISO-8601} or {"advance_seconds": N}') from None
        if not isinstance(document, dict) or ("now" in document) == ("advance_seconds" in document):
            raise LocalRequestError(422, "body", "give exactly one of now or advance_seconds")
        if "now" in document:
            runner.clock.set(_instant(document["now"]))
        else:
            seconds = document["advance_seconds"]
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
                raise LocalRequestError(422, "advance_seconds", "must be a number of seconds, 0 or more")
            runner.clock.advance(timedelta(seconds=seconds))
        ran = runner.clock_moved()
        return {"now": runner.clock.now().isoformat(), "ran": ran}


def _instant(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    raise LocalRequestError(422, "now", "must be an ISO-8601 instant with a UTC offset, e.g. 2026-11-23T10:00:00Z")


def _json(status: int, document: Any) -> HttpResponse:
    return HttpResponse(
        status=status, headers=[("Content-Type", "application/json")], body=json.dumps(document).encode()
    )
