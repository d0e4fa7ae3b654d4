"""The runner's HTTP face on 127.0.0.1: the API Gateway routes, and the ``/_local`` dev endpoints.

Stopping (``LocalServer.stop``, which Ctrl-C and SIGTERM call) refuses every new request with 503 at
once, lets the requests in flight finish, pumps what they queued into the functions, and only then
lets go of the runner and the port: a webhook acknowledged with 202 has been processed.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import traceback
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from localdev import console, console_site
from localdev.apigw import HttpRequest, HttpResponse, gateway_error
from localdev.gate import Gate
from localdev.runner import (
    FAKE_PSA_PATH,
    FAKE_TIMEZEST_PATH,
    MAX_BODY_BYTES,
    STOP_DRAIN_SECONDS,
    api_error,
    stopping_error,
)
from localdev.ses import BOUNCES, FeedbackRefused
from localdev.signing import CONNECTWISE_KEY_PATH, DEV_CONNECTWISE_SIGNING_KEY

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager

    from localdev.runner import Runner

BACKGROUND_PERIOD_SECONDS = 0.25
READ_TIMEOUT_SECONDS = 10.0  # a client that stops sending mid-request is answered 400, not waited for
READ_CHUNK_BYTES = 64 * 1024  # a body is read as it arrives, never allocated from what Content-Length claims
_DECIMAL = re.compile(r"[0-9]+")


class FramingError(Exception):
    """The request's body cannot be delimited: the connection cannot be trusted for another request."""


class LocalRequestError(Exception):
    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(message)
        self.status, self.field, self.message = status, field, message


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True
    # Restart at once on the same port: SO_REUSEADDR lets it bind over the last run's TIME_WAIT
    # connections. A port another process listens on still stops the runner (Linux and macOS refuse
    # a second listener on the same address without SO_REUSEPORT, which stays off).
    allow_reuse_address = True
    allow_reuse_port = False

    def __init__(self, runner: Runner, port: int) -> None:
        self.runner = runner
        self.read_timeout_seconds = READ_TIMEOUT_SECONDS
        super().__init__(("127.0.0.1", port), _Handler)
        runner.listening_at(f"http://127.0.0.1:{self.port}")
        self._requests = Gate()
        self._state = threading.Lock()
        # Time only moves forward, except by the first move after a reset (or start): nothing is left
        # that happened "later" than where the clock goes.
        self.clock_lock = threading.Lock()
        self.clock_free = True
        self._looping = False
        self._stop_started = False
        self._stopped = threading.Event()
        self._background_stop = threading.Event()
        self._background: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def stopping(self) -> bool:
        return self._requests.closed

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        with self._state:
            if self._stop_started:
                return  # stopped before it began serving
            self._looping = True
        try:
            super().serve_forever(poll_interval)
        finally:
            with self._state:
                self._looping = False

    def admit(self) -> AbstractContextManager[bool]:
        """``with server.admit() as admitted``: ``False`` once stopping began (refuse); else counted until done."""
        return self._requests.admit()

    def begin_stop(self) -> None:
        """Refuse every request from now on (503, connection closed); those in flight carry on."""
        self._requests.close()
        self.runner.begin_stop()

    def stop(self, *, drain_seconds: float = STOP_DRAIN_SECONDS) -> None:
        """Stop everything, in the order that loses nothing acknowledged; a second call waits for the first.

        Refuse new requests; wait (at most ``drain_seconds``) for those in flight; stop the background
        pump; stop the runner, whose last settle hands every queued message to its function; stop
        serving and free the port. New requests are answered 503 until the port is closed.
        """
        with self._state:
            first = not self._stop_started
            self._stop_started = True
        if not first:
            self._stopped.wait()
            return
        try:
            self.begin_stop()
            if not self._requests.wait_empty(drain_seconds):
                print(f"localdev: requests in flight after {drain_seconds:.0f} s; stopping anyway", file=sys.stderr)
            self.stop_background(timeout=drain_seconds)
            self.runner.stop(drain_seconds=drain_seconds)
            with self._state:
                looping = self._looping
            if looping:
                self.shutdown()
            self.server_close()
        finally:
            self._stopped.set()

    def start_background(self) -> None:
        """Lambda's side of the house: pump the queues, streams and buses and fire due schedules, as time passes."""
        self._background = threading.Thread(target=self._run_background, name="localdev-background", daemon=True)
        self._background.start()

    def _run_background(self) -> None:
        while not self._background_stop.wait(BACKGROUND_PERIOD_SECONDS):
            try:
                self.runner.run_due()
                self.runner.settle()
            except Exception:
                traceback.print_exc()

    def stop_background(self, *, timeout: float = STOP_DRAIN_SECONDS) -> None:
        """Stop the background pass after the one under way, if any, has finished."""
        self._background_stop.set()
        if self._background is not None:
            self._background.join(timeout=timeout)


class _Handler(BaseHTTPRequestHandler):
    server: LocalServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.read_timeout_seconds)  # bounds every read and write on it

    def log_message(self, format: str, *args: Any) -> None:
        pass  # http.server's own lines are replaced by _access_log's one line per request

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
        self._started_at = time.monotonic()
        self._handled_by = "gateway"
        if self.headers.get_all("Transfer-Encoding"):
            # Chunked bodies are not read: refusing keeps the connection's framing (and the next request) intact.
            self._send(_framing_error(411, "Transfer-Encoding", "send the body with a Content-Length"), close=True)
            return
        try:
            length = content_length(self.headers.get_all("Content-Length") or [])
        except FramingError as error:
            self._send(_framing_error(400, "Content-Length", str(error)), close=True)
            return
        if length > MAX_BODY_BYTES:
            self._send(gateway_error(413, "Request Too Long"), close=True)
            return
        try:
            body = self._read_body(length)
        except TimeoutError:
            message = f"the body stopped arriving before its Content-Length ({length} bytes)"
            self._send(_framing_error(400, "Content-Length", message), close=True)
            return
        except OSError:
            self.close_connection = True  # the client went away: nobody to answer
            return
        if len(body) < length:
            message = f"the connection ended after {len(body)} of the {length} bytes Content-Length announced"
            self._send(_framing_error(400, "Content-Length", message), close=True)
            return
        with self.server.admit() as admitted:
            if not admitted:
                self._send(stopping_error(), close=True)
                return
            self._dispatch(body)

    def _read_body(self, length: int) -> bytes:
        """Up to ``length`` bytes, in chunks as they arrive: fewer if the client closed its side first."""
        body = bytearray()
        while len(body) < length:
            chunk = self.rfile.read(min(READ_CHUNK_BYTES, length - len(body)))
            if not chunk:
                break
            body += chunk
        return bytes(body)

    def _dispatch(self, body: bytes) -> None:
        url = urlsplit(self.path)
        if url.path == "/_local" or url.path.startswith("/_local/"):
            self._handled_by = "_local"
            self._send(self._local(url.path, body))
            return
        if console_site.is_console_path(url.path):
            self._handled_by = "console"
            self._send(console_site.serve(self.command, url.path, self.server.runner.console_root))
            return
        request = HttpRequest(
            method=self.command,
            path=url.path,
            query=url.query,
            headers=tuple(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
        )
        response = self.server.runner.handle_http(request)
        self._handled_by = self.server.runner.handled_by()
        self._send(response)

    def _send(self, response: HttpResponse, *, close: bool = False) -> None:
        self._access_log(response.status)  # before the answer: a client that has it finds the line written
        try:
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
        except OSError:
            self.close_connection = True  # the client went away (or stopped reading) before the answer

    def _access_log(self, status: int) -> None:
        """One line per request: method, path (never the query: it may hold personal data), status, time, handler."""
        milliseconds = (time.monotonic() - getattr(self, "_started_at", time.monotonic())) * 1000
        path = urlsplit(self.path).path
        handler = getattr(self, "_handled_by", "gateway")
        console.log(f"{self.command} {path} {status} {milliseconds:.0f} ms {handler}")

    # -- /_local -----------------------------------------------------------------------------------

    def _local(self, path: str, body: bytes) -> HttpResponse:
        runner = self.server.runner
        if path.startswith(FAKE_PSA_PATH + "/"):
            headers = {name.lower(): value for name, value in self.headers.items()}
            query = urlsplit(self.path).query
            answer = runner.psa.answer(self.command, path.removeprefix(FAKE_PSA_PATH), query, headers, body)
            return HttpResponse(status=answer.status, headers=list(answer.headers.items()), body=answer.body)
        if path.startswith(FAKE_TIMEZEST_PATH + "/"):
            headers = {name.lower(): value for name, value in self.headers.items()}
            query = urlsplit(self.path).query
            answer = runner.timezest.answer(self.command, path.removeprefix(FAKE_TIMEZEST_PATH), query, headers)
            return HttpResponse(status=answer.status, headers=list(answer.headers.items()), body=answer.body)
        routes: dict[tuple[str, str], Callable[[], dict[str, Any]]] = {
            ("GET", "/_local/health"): self._health,
            ("GET", "/_local/clock"): lambda: {"now": runner.clock.now().isoformat(), "mode": runner.clock.mode},
            ("POST", "/_local/clock"): lambda: self._move_clock(body),
            ("POST", "/_local/tick"): lambda: {"now": runner.clock.now().isoformat(), "ran": runner.tick()},
            ("POST", "/_local/settle"): lambda: runner.settle().as_json(),
            ("POST", "/_local/reset"): self._reset,
            ("GET", "/_local/outbox"): lambda: {"items": [mail.as_json() for mail in runner.outbox]},
            ("GET", "/_local/schedules"): lambda: {"items": runner.schedules},
            ("GET", "/_local/events"): lambda: {"items": [event.as_json() for event in runner.bus_events]},
            ("GET", "/_local/dlq"): lambda: {"items": runner.dead_letters()},
            ("POST", "/_local/dlq/redrive"): lambda: {"redriven": runner.redrive()},
            ("POST", "/_local/ses/bounce"): lambda: self._ses_feedback("Bounce", body),
            ("POST", "/_local/ses/complaint"): lambda: self._ses_feedback("Complaint", body),
            ("GET", FAKE_PSA_PATH): runner.psa.listing,
            ("GET", CONNECTWISE_KEY_PATH): lambda: {"signing_key": DEV_CONNECTWISE_SIGNING_KEY},
            ("GET", "/_local/timezest/requests"): lambda: {"items": list(runner.timezest.requests.values())},
            ("POST", "/_local/timezest/requests"): lambda: self._timezest_request(body),
            ("POST", console_site.SIGN_IN_PATH): lambda: self._console_sign_in(body),
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

    def _timezest_request(self, body: bytes) -> dict[str, Any]:
        """Add or change a scheduling request in the fake TimeZest, as a customer booking there would."""
        try:
            document = json.loads(body or b"{}")
        except ValueError:
            raise LocalRequestError(400, "body", "must be a JSON scheduling request") from None
        if not isinstance(document, dict):
            raise LocalRequestError(422, "body", "must be a JSON object (a scheduling request)")
        try:
            return self.server.runner.timezest.put(document)
        except ValueError as error:
            raise LocalRequestError(422, "id", str(error)) from None

    def _console_sign_in(self, body: bytes) -> dict[str, Any]:
        """The console's dev sign-in: ``{"email"}`` → a token the ops routes take as that person (Cognito's
        stand-in: the email becomes the actor in history)."""
        try:
            document = json.loads(body or b"{}")
        except ValueError:
            raise LocalRequestError(400, "body", 'must be JSON: {"email": "..."}') from None
        email = console_site.valid_email(document.get("email") if isinstance(document, dict) else None)
        if email is None:
            raise LocalRequestError(422, "email", "must be an email address")
        return {"token": self.server.runner.sign_ins.sign_in(email), "email": email}

    def _reset(self) -> dict[str, Any]:
        with self.server.clock_lock:
            self.server.runner.reset()
            self.server.clock_free = True
        return {"reset": True}

    def _health(self) -> dict[str, Any]:
        runner = self.server.runner
        return {
            "status": "ok",
            "now": runner.clock.now().isoformat(),
            "functions": runner.function_names,
            "routes": [f"{route.method} {route.path}" for route in runner.routes],
            "schedules": runner.schedules,
            "streams": runner.stream_subscriptions,
            "rules": runner.bus_rules,
            "topics": runner.topic_subscriptions,
        }

    def _ses_feedback(self, event_type: str, body: bytes) -> dict[str, Any]:
        """Publish the bounce or complaint SES would about one mail it took: ``{"message_id"}`` or ``{"to"}``."""
        try:
            document = json.loads(body or b"{}")
        except ValueError:
            raise LocalRequestError(400, "body", 'must be JSON: {"message_id": ...} or {"to": ...}') from None
        if not isinstance(document, dict) or ("message_id" in document) == ("to" in document):
            raise LocalRequestError(422, "body", "give exactly one of message_id or to")
        for name in ("message_id", "to", "subtype", "type", "feedback_type"):
            if name in document and (not isinstance(document[name], str) or not document[name].strip()):
                raise LocalRequestError(422, name, "must be a non-empty string")
        options: dict[str, Any] = {"message_id": document.get("message_id"), "to": document.get("to")}
        if event_type == "Bounce":
            bounce_type = document.get("type", "Permanent")
            if bounce_type not in BOUNCES:
                raise LocalRequestError(422, "type", f"must be one of {', '.join(BOUNCES)}")
            options |= {"bounce_type": bounce_type, "bounce_subtype": document.get("subtype")}
        else:
            options["complaint_type"] = document.get("feedback_type", "abuse")
        try:
            return self.server.runner.ses_feedback(event_type, **options)
        except FeedbackRefused as refused:
            raise LocalRequestError(refused.status, refused.field or "body", refused.message) from None

    def _move_clock(self, body: bytes) -> dict[str, Any]:
        runner = self.server.runner
        try:
            document = json.loads(body or b"{}")
        except ValueError:
            raise LocalRequestError(400, "body", 'must be JSON: {"now": ISO-8601} or {"advance_seconds": N}') from None
        if not isinstance(document, dict) or ("now" in document) == ("advance_seconds" in document):
            raise LocalRequestError(422, "body", "give exactly one of now or advance_seconds")
        with self.server.clock_lock:
            if "now" in document:
                now = _instant(document["now"])
                current = runner.clock.now()
                if now < current and not self.server.clock_free:
                    message = (
                        f"the clock only moves forward: {now.isoformat()} is before its {current.isoformat()}; "
                        "POST /_local/reset first (it forgets every item, message and mail), then set it anywhere"
                    )
                    raise LocalRequestError(409, "now", message)
                runner.clock.set(now)
            else:
                seconds = document["advance_seconds"]
                if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
                    raise LocalRequestError(422, "advance_seconds", "must be a number of seconds, 0 or more")
                runner.clock.advance(timedelta(seconds=seconds))
            self.server.clock_free = False
        ran = runner.clock_moved()
        return {"now": runner.clock.now().isoformat(), "ran": ran}


def content_length(values: list[str]) -> int:
    """The body's length from every ``Content-Length`` header given (0 without one); ``FramingError`` if unusable.

    Only ASCII digits count (not ``-5``, ``+5``, ``1e3``, ``0x10``); repeats, as headers or as a list
    in one header, must agree (RFC 9112 §6.3). A number too long to be a size stays a number: 413.
    """
    numbers = set()
    for value in values:
        for part in value.split(","):
            text = part.strip(" \t")
            if not _DECIMAL.fullmatch(text):
                raise FramingError(f"must be a number of bytes, not {part.strip()!r}")
            digits = text.lstrip("0") or "0"
            numbers.add(int(digits) if len(digits) <= 18 else MAX_BODY_BYTES + 1)
    if len(numbers) > 1:
        raise FramingError(f"given more than once with different values: {', '.join(values)}")
    return numbers.pop() if numbers else 0


def _framing_error(status: int, header: str, message: str) -> HttpResponse:
    return api_error(
        status, "malformed_request", f"{header} {message}", details=[{"field": header, "message": message}]
    )


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
