"""A fake PSA speaking three dialects: Autotask, ConnectWise and HaloPSA, each under its own path prefix.

What the write-back adapters (``appointments.adapters.psa_*``) send is what it takes, with each PSA's auth:

- ``/autotask/atservicesrest/v1.0/zoneInformation?user=`` → the zone ``<base>/autotask/ws5/atservicesrest/``
  (another path than the lookup's, so a client that skips the zone fails); below it ``PATCH V1.0/Tickets``,
  ``POST V1.0/Tickets/<id>/Notes``, ``GET V1.0/TicketNotes/query?search=<JSON>`` (``eq`` and ``contains``);
  headers ``ApiIntegrationCode``, ``UserName``, ``Secret``.
- ``/connectwise/v4_6_release/apis/3.0/service/tickets/<id>`` (``PATCH``, JSON Patch of ``status``) and
  ``.../<id>/notes`` (``POST``; ``GET`` with ``conditions=text like "%...%"``); Basic ``company+public:private``
  and ``clientId``.
- ``/halopsa/auth/token`` (client credentials, form-encoded), ``/halopsa/api/Tickets`` (``POST``),
  ``/halopsa/api/Actions`` (``POST``; ``GET ?ticket_id=&count=``); a bearer token it issued, until it expires
  on the fake's clock.

Paths are relative (``answer`` takes the path below wherever it is mounted), so the local runner can serve
it under ``/_local/psa``; ``mount`` is that prefix, for the absolute zone URL Autotask's lookup answers.

Tickets are made on first use (or put in by a test; ``create_on_use=False`` answers 404 for any other).
Every write is listed as ``GET /_local/psa`` shows it (DESIGN §10): ``{"system", "ticket_id", "kind":
"status"|"note", "status"?, "text"?, "event_id", "at"}``, ``event_id`` being the desk's reference found in
a note's text (None for a status: nothing in a status write names the event). Requests are counted per
dialect, and the next answers can be faults (a 429 with ``Retry-After``, a 500, a slow answer), as in
``localdev.fake_timezest``.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from localdev.fake_timezest import Answer, Fault, Serving

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

SYSTEMS = ("autotask", "connectwise", "halopsa")
ZONE_PATH = "/autotask/ws5/atservicesrest/"
CONNECTWISE_API = "/connectwise/v4_6_release/apis/3.0"
# The reference the write-back writes into a note (domain/psa_writeback.py): "appointment desk event <id>".
DEFAULT_REFERENCE = re.compile(r"appointment desk event ([^\s()]+)")
_CW_LIKE = re.compile(r'^\s*text\s+like\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)
_ANY = "*"


@dataclass(frozen=True)
class DevCredentials:
    """What the fake accepts; the local runner gives the same to its adapters."""

    autotask_integration_code: str = "dev-integration-code"
    autotask_username: str = "api-user@msp.example"
    autotask_secret: str = "dev-autotask-secret"  # noqa: S105 - a local fake's dev value
    connectwise_company: str = "msp"
    connectwise_public_key: str = "dev-public"
    connectwise_private_key: str = "dev-private"
    connectwise_client_id: str = "dev-client-id"
    halo_client_id: str = "dev-halo-client"
    halo_client_secret: str = "dev-halo-secret"  # noqa: S105 - a local fake's dev value
    halo_tenant: str | None = None  # when set, the token request must name it


@dataclass
class FakeNote:
    id: int
    text: str
    title: str | None
    internal: bool
    at: datetime


@dataclass
class FakeTicket:
    system: str
    id: str
    status: str | None = None
    notes: list[FakeNote] = field(default_factory=list)


@dataclass
class Seen:
    system: str
    method: str
    path: str
    at: datetime


@dataclass
class FakePsa:
    clock: Callable[[], datetime]
    credentials: DevCredentials = field(default_factory=DevCredentials)
    create_on_use: bool = True  # False: a ticket not put in answers 404, as a deleted ticket does
    token_lifetime_seconds: int = 3600
    mount: str = ""  # the path the fake is served under (``/_local/psa`` in the runner)
    reference: re.Pattern[str] = DEFAULT_REFERENCE
    tickets: dict[tuple[str, str], FakeTicket] = field(default_factory=dict)
    writes: list[dict[str, Any]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)  # per dialect
    faults: dict[str, list[Fault | None]] = field(default_factory=dict)
    _tokens: dict[str, datetime] = field(default_factory=dict)
    _next_note: int = 1
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # -- what a developer or a test does -------------------------------------------------------------

    def put_ticket(self, system: str, ticket_id: str, status: str | None = None) -> FakeTicket:
        if system not in SYSTEMS:
            raise ValueError(f"system: one of {', '.join(SYSTEMS)}")
        with self._lock:
            ticket = self.tickets.setdefault((system, ticket_id), FakeTicket(system, ticket_id))
            if status is not None:
                ticket.status = status
            return ticket

    def forget_ticket(self, system: str, ticket_id: str) -> None:
        """The ticket is deleted in the PSA: with ``create_on_use`` off, writes to it answer 404."""
        with self._lock:
            self.tickets.pop((system, ticket_id), None)

    def ticket(self, system: str, ticket_id: str) -> FakeTicket | None:
        with self._lock:
            return self.tickets.get((system, ticket_id))

    def fail_next(self, *faults: Fault | None, system: str | None = None) -> None:
        """The next requests (to ``system``'s dialect, or to any) get these faults in turn; ``None`` answers
        normally (``fail_next(None, fault)`` hits the second request)."""
        with self._lock:
            self.faults.setdefault(system or _ANY, []).extend(faults)

    def expire_tokens(self) -> None:
        """Halo forgets every token it issued (a revoked secret): the next call with one answers 401."""
        with self._lock:
            self._tokens.clear()

    def count(self, system: str, *, method: str | None = None, path_contains: str = "") -> int:
        """How many requests came to ``system``'s dialect (of ``method``, to a path containing ``path_contains``)."""
        with self._lock:
            return sum(
                1
                for s in self.seen
                if s.system == system and (method is None or s.method == method) and path_contains in s.path
            )

    def listing(self) -> dict[str, Any]:
        """``GET /_local/psa``: every write received, oldest first."""
        with self._lock:
            return {"items": [dict(write) for write in self.writes]}

    def reset(self) -> None:
        with self._lock:
            self.tickets.clear()
            self.writes.clear()
            self.seen.clear()
            self.requests.clear()
            self.faults.clear()
            self._tokens.clear()

    # -- the API -------------------------------------------------------------------------------------

    def answer(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Answer:
        """One request; ``path`` below the mount (``/autotask/...``), header names lower-cased."""
        system = path.strip("/").split("/", 1)[0]
        if system not in SYSTEMS:
            return _json(404, {"message": "not a PSA this fake speaks"})
        with self._lock:
            self.seen.append(Seen(system, method, path, self.clock()))
            self.requests[system] += 1
            fault = self._next_fault(system)
        if fault is not None:
            if fault.delay_seconds:
                time.sleep(fault.delay_seconds)  # a slow PSA, as a client's read timeout meets it
            if fault.status != HTTPStatus.OK:
                extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                return _json(fault.status, {"errors": ["fault injected"]}, extra)
        arguments = {key: values[-1] for key, values in parse_qs(query).items()}
        is_form = headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
        try:
            document = json.loads(body) if body and not is_form else None
        except ValueError:
            return _json(400, {"errors": ["the body is not JSON"]})
        if system == "autotask":
            return self._autotask(method, path.removeprefix("/autotask"), arguments, headers, document)
        if system == "connectwise":
            return self._connectwise(method, path.removeprefix(CONNECTWISE_API), arguments, headers, document)
        form = {key: values[-1] for key, values in parse_qs(body.decode(errors="replace")).items()}
        return self._halo(method, path.removeprefix("/halopsa"), arguments, headers, document, form)

    def _next_fault(self, system: str) -> Fault | None:
        for key in (system, _ANY):
            queue = self.faults.get(key)
            if queue:
                return queue.pop(0)
        return None

    # -- Autotask --------------------------------------------------------------------------------------

    def _autotask(
        self, method: str, path: str, arguments: dict[str, str], headers: dict[str, str], document: Any
    ) -> Answer:
        creds = self.credentials
        if method == "GET" and path.lower() == "/atservicesrest/v1.0/zoneinformation":
            if arguments.get("user") != creds.autotask_username:
                return _json(404, {"errors": ["no zone for that user"]})
            base = f"http://{headers.get('host', '127.0.0.1')}{self.mount}"
            return _json(200, {"zoneName": "Fake zone 5", "url": base + ZONE_PATH, "webUrl": base, "ci": 5})
        expected = (creds.autotask_integration_code, creds.autotask_username, creds.autotask_secret)
        if (headers.get("apiintegrationcode"), headers.get("username"), headers.get("secret")) != expected:
            return _json(401, {"errors": ["the API user is not authorized"]})
        rest = path.removeprefix(ZONE_PATH.removeprefix("/autotask"))
        if rest == path:
            return _json(404, {"errors": ["not in this zone"]})
        parts = rest.split("/")
        if parts[0].lower() != "v1.0":
            return _json(404, {"errors": ["unknown version"]})
        parts = parts[1:]
        if method == "PATCH" and parts == ["Tickets"]:
            return self._autotask_status(document)
        if method == "POST" and len(parts) == 3 and parts[0] == "Tickets" and parts[2] == "Notes":
            return self._autotask_note(parts[1], document)
        if method == "GET" and parts == ["TicketNotes", "query"]:
            return self._autotask_query(arguments.get("search"))
        return _json(404, {"errors": ["no such resource"]})

    def _autotask_status(self, document: Any) -> Answer:
        if not isinstance(document, dict) or not _is_int(document.get("id")) or not _is_int(document.get("status")):
            return _json(400, {"errors": ["id and status (picklist integers) are required"]})
        ticket = self._known("autotask", str(document["id"]))
        if ticket is None:
            return _json(404, {"errors": [f"ticket {document['id']} not found"]})
        self._set_status(ticket, str(document["status"]))
        return _json(200, {"itemId": document["id"]})

    def _autotask_note(self, ticket_id: str, document: Any) -> Answer:
        if (
            not isinstance(document, dict)
            or not isinstance(document.get("description"), str)
            or not document["description"]
        ):
            return _json(400, {"errors": ["description is required"]})
        if not _is_int(document.get("noteType")) or document.get("publish") not in (1, 2, 4):
            return _json(400, {"errors": ["noteType and publish (1, 2 or 4) are required"]})
        ticket = self._known("autotask", ticket_id)
        if ticket is None:
            return _json(404, {"errors": [f"ticket {ticket_id} not found"]})
        note = self._add_note(ticket, document["description"], document.get("title"), internal=document["publish"] != 1)
        return _json(200, {"itemId": note.id})

    def _autotask_query(self, search: str | None) -> Answer:
        try:
            filters = json.loads(search or "")["filter"]
            tests = [_autotask_test(item) for item in filters]
        except (ValueError, KeyError, TypeError) as error:
            return _json(400, {"errors": [f"a search the fake does not read: {error}"]})
        with self._lock:
            rows = [
                {
                    "id": note.id,
                    "ticketID": int(ticket.id) if ticket.id.isdigit() else ticket.id,
                    "title": note.title,
                    "description": note.text,
                    "publish": 2 if note.internal else 1,
                }
                for ticket in self.tickets.values()
                if ticket.system == "autotask"
                for note in ticket.notes
            ]
        items = [row for row in rows if all(test(row) for test in tests)]
        return _json(
            200,
            {
                "items": items,
                "pageDetails": {"count": len(items), "requestCount": 500, "prevPageUrl": None, "nextPageUrl": None},
            },
        )

    # -- ConnectWise -----------------------------------------------------------------------------------

    def _connectwise(
        self, method: str, path: str, arguments: dict[str, str], headers: dict[str, str], document: Any
    ) -> Answer:
        creds = self.credentials
        token = base64.b64encode(
            f"{creds.connectwise_company}+{creds.connectwise_public_key}:{creds.connectwise_private_key}".encode()
        ).decode()
        if headers.get("authorization") != f"Basic {token}" or headers.get("clientid") != creds.connectwise_client_id:
            return _json(401, {"code": "Unauthorized", "message": "the API member or clientId is not valid"})
        found = re.fullmatch(r"/service/tickets/([0-9]+)(/notes)?", path)
        if found is None:
            return _json(404, {"code": "NotFound", "message": "no such resource"})
        ticket_id, notes = found.group(1), found.group(2) is not None
        if not notes and method == "PATCH":
            return self._connectwise_status(ticket_id, document)
        if notes and method == "POST":
            return self._connectwise_note(ticket_id, document)
        if notes and method == "GET":
            return self._connectwise_notes(ticket_id, arguments.get("conditions"))
        return _json(405, {"code": "MethodNotAllowed", "message": "not here"})

    def _connectwise_status(self, ticket_id: str, document: Any) -> Answer:
        if not (isinstance(document, list) and len(document) == 1 and isinstance(document[0], dict)):
            return _json(400, {"code": "InvalidObject", "message": "a JSON Patch of one operation"})
        operation = document[0]
        value = operation.get("value")
        if (
            operation.get("op") != "replace"
            or operation.get("path") not in ("status", "/status")
            or not isinstance(value, dict)
        ):
            return _json(400, {"code": "InvalidObject", "message": "replace status with a reference"})
        if isinstance(value.get("name"), str) and value["name"]:
            status = value["name"]
        elif _is_int(value.get("id")):
            status = str(value["id"])
        else:
            return _json(400, {"code": "InvalidObject", "message": "a status needs a name or an id"})
        ticket = self._known("connectwise", ticket_id)
        if ticket is None:
            return _json(404, {"code": "NotFound", "message": f"Ticket with id {ticket_id} not found"})
        self._set_status(ticket, status)
        return _json(200, {"id": int(ticket_id), "status": value})

    def _connectwise_note(self, ticket_id: str, document: Any) -> Answer:
        if not isinstance(document, dict) or not isinstance(document.get("text"), str) or not document["text"]:
            return _json(400, {"code": "InvalidObject", "message": "text is required"})
        internal, discussion = document.get("internalAnalysisFlag"), document.get("detailDescriptionFlag")
        if not isinstance(internal, bool) or not isinstance(discussion, bool) or internal == discussion:
            return _json(
                400, {"code": "InvalidObject", "message": "one of internalAnalysisFlag, detailDescriptionFlag"}
            )
        ticket = self._known("connectwise", ticket_id)
        if ticket is None:
            return _json(404, {"code": "NotFound", "message": f"Ticket with id {ticket_id} not found"})
        note = self._add_note(ticket, document["text"], None, internal=internal)
        return _json(201, _cw_note(ticket_id, note))

    def _connectwise_notes(self, ticket_id: str, conditions: str | None) -> Answer:
        ticket = self._known("connectwise", ticket_id)
        if ticket is None:
            return _json(404, {"code": "NotFound", "message": f"Ticket with id {ticket_id} not found"})
        test: Callable[[str], bool] = lambda text: True  # noqa: E731 - no conditions: every note
        if conditions:
            found = _CW_LIKE.match(conditions)
            if found is None:
                return _json(400, {"code": "InvalidObject", "message": "conditions the fake does not read"})
            pattern = re.sub(r"\\(.)", r"\1", found.group(1))
            regex = re.compile(
                "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern), re.DOTALL
            )
            test = lambda text: regex.fullmatch(text) is not None  # noqa: E731
        with self._lock:
            return _json(200, [_cw_note(ticket_id, note) for note in ticket.notes if test(note.text)])

    # -- HaloPSA ---------------------------------------------------------------------------------------

    def _halo(
        self,
        method: str,
        path: str,
        arguments: dict[str, str],
        headers: dict[str, str],
        document: Any,
        form: dict[str, str],
    ) -> Answer:
        if path == "/auth/token" and method == "POST":
            return self._halo_token(arguments, form)
        authorization = headers.get("authorization", "")
        with self._lock:
            until = self._tokens.get(authorization.removeprefix("Bearer "))
            valid = authorization.startswith("Bearer ") and until is not None and self.clock() < until
        if not valid:
            return _json(401, {"error": "invalid_token"})
        if path == "/api/Tickets" and method == "POST":
            return self._halo_tickets(document)
        if path == "/api/Actions" and method == "POST":
            return self._halo_actions(document)
        if path == "/api/Actions" and method == "GET":
            return self._halo_list(arguments)
        return _json(404, {"error": "no such resource"})

    def _halo_token(self, arguments: dict[str, str], form: dict[str, str]) -> Answer:
        creds = self.credentials
        tenant = arguments.get("tenant") or form.get("tenant")
        if (
            form.get("grant_type") != "client_credentials"
            or form.get("client_id") != creds.halo_client_id
            or form.get("client_secret") != creds.halo_client_secret
            or (creds.halo_tenant is not None and tenant != creds.halo_tenant)
        ):
            return _json(401, {"error": "invalid_client"})
        token = secrets.token_urlsafe(16)
        with self._lock:
            self._tokens[token] = self.clock() + timedelta(seconds=self.token_lifetime_seconds)
        return _json(
            200,
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": self.token_lifetime_seconds,
                "scope": form.get("scope", "all"),
            },
        )

    def _halo_tickets(self, document: Any) -> Answer:
        if not isinstance(document, list) or not document:
            return _json(400, {"error": "a list of tickets"})
        for item in document:
            if not isinstance(item, dict) or not _is_int(item.get("id")) or not _is_int(item.get("status_id")):
                return _json(400, {"error": "each ticket needs its id and a status_id"})
            if self._known("halopsa", str(item["id"])) is None:
                return _json(404, {"error": f"ticket {item['id']} not found"})
        for item in document:
            ticket = self._known("halopsa", str(item["id"]))
            assert ticket is not None  # noqa: S101 - checked above, under the same conditions
            self._set_status(ticket, str(item["status_id"]))
        return _json(201, [{"id": item["id"], "status_id": item["status_id"]} for item in document])

    def _halo_actions(self, document: Any) -> Answer:
        if not isinstance(document, list) or not document:
            return _json(400, {"error": "a list of actions"})
        for item in document:
            if (
                not isinstance(item, dict)
                or not _is_int(item.get("ticket_id"))
                or not isinstance(item.get("note"), str)
            ):
                return _json(400, {"error": "each action needs a ticket_id and a note"})
            if not isinstance(item.get("hiddenfromuser", False), bool):
                return _json(400, {"error": "hiddenfromuser is a boolean"})
            if self._known("halopsa", str(item["ticket_id"])) is None:
                return _json(404, {"error": f"ticket {item['ticket_id']} not found"})
        created = []
        for item in document:
            ticket = self._known("halopsa", str(item["ticket_id"]))
            assert ticket is not None  # noqa: S101 - checked above
            note = self._add_note(ticket, item["note"], item.get("outcome"), internal=item.get("hiddenfromuser", False))
            created.append(_halo_action(ticket.id, note))
        return _json(201, created)

    def _halo_list(self, arguments: dict[str, str]) -> Answer:
        ticket_id = arguments.get("ticket_id", "")
        ticket = self._known("halopsa", ticket_id) if ticket_id.isdigit() else None
        if ticket is None:
            return _json(404, {"error": f"ticket {ticket_id} not found"})
        count = int(arguments["count"]) if arguments.get("count", "").isdigit() else 50
        with self._lock:
            actions = [_halo_action(ticket.id, note) for note in reversed(ticket.notes)][:count]
        return _json(200, {"record_count": len(ticket.notes), "actions": actions})

    # -- the tickets -----------------------------------------------------------------------------------

    def _known(self, system: str, ticket_id: str) -> FakeTicket | None:
        with self._lock:
            ticket = self.tickets.get((system, ticket_id))
            if ticket is None and self.create_on_use:
                ticket = self.tickets[(system, ticket_id)] = FakeTicket(system, ticket_id)
            return ticket

    def _set_status(self, ticket: FakeTicket, status: str) -> None:
        with self._lock:
            ticket.status = status
            self.writes.append(
                {
                    "system": ticket.system,
                    "ticket_id": ticket.id,
                    "kind": "status",
                    "status": status,
                    "event_id": None,
                    "at": self.clock().isoformat(),
                }
            )

    def _add_note(self, ticket: FakeTicket, text: str, title: str | None, *, internal: bool) -> FakeNote:
        with self._lock:
            note = FakeNote(self._next_note, text, title, internal, self.clock())
            self._next_note += 1
            ticket.notes.append(note)
            found = self.reference.search(text)
            self.writes.append(
                {
                    "system": ticket.system,
                    "ticket_id": ticket.id,
                    "kind": "note",
                    "text": text,
                    "event_id": found.group(1) if found else None,
                    "at": note.at.isoformat(),
                }
            )
            return note


def serve(fake: FakePsa) -> Serving:
    """``with serve(fake) as base_url:`` the fake on 127.0.0.1 on a free port; dialects below ``base_url``."""
    return Serving(fake, prefix="", name="fake-psa")


def _autotask_test(item: Any) -> Callable[[dict[str, Any]], bool]:
    field_name, op, value = item["field"], item["op"], item["value"]
    if op == "eq":
        return lambda row: str(row.get(field_name)) == str(value)
    if op == "contains":
        return lambda row: str(value).lower() in str(row.get(field_name) or "").lower()
    raise ValueError(f"op {op!r}")


def _cw_note(ticket_id: str, note: FakeNote) -> dict[str, Any]:
    return {
        "id": note.id,
        "ticketId": int(ticket_id),
        "text": note.text,
        "internalAnalysisFlag": note.internal,
        "detailDescriptionFlag": not note.internal,
        "resolutionFlag": False,
        "dateCreated": note.at.isoformat(),
    }


def _halo_action(ticket_id: str, note: FakeNote) -> dict[str, Any]:
    return {
        "id": note.id,
        "ticket_id": int(ticket_id),
        "outcome": note.title or "Note",
        "note": note.text,
        "hiddenfromuser": note.internal,
        "datetime": note.at.isoformat(),
    }


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _json(status: int, document: object, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(document).encode())


__all__ = ["DevCredentials", "FakeNote", "FakePsa", "FakeTicket", "Fault", "Seen", "fake_psa_credentials", "serve"]


def fake_psa_credentials(base_url: str, dev: DevCredentials) -> dict[str, Any]:
    """The ``PsaCredentials`` secret that points the write-back at a fake served at ``base_url``."""
    return {
        "autotask": {
            "integration_code": dev.autotask_integration_code,
            "username": dev.autotask_username,
            "secret": dev.autotask_secret,
            "zone_lookup_url": f"{base_url}/autotask",
        },
        "connectwise": {
            "site": f"{base_url}/connectwise",
            "company": dev.connectwise_company,
            "public_key": dev.connectwise_public_key,
            "private_key": dev.connectwise_private_key,
            "client_id": dev.connectwise_client_id,
        },
        "halopsa": {
            "base_url": f"{base_url}/halopsa",
            "client_id": dev.halo_client_id,
            "client_secret": dev.halo_client_secret,
            **({"tenant": dev.halo_tenant} if dev.halo_tenant else {}),
        },
    }
