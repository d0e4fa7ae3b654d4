"""Autotask (Datto/Kaseya) PSA tickets through its REST API, as the write-back changes them.

- **Auth**: three headers of an API-only user: ``ApiIntegrationCode`` (the tracking identifier), ``UserName``,
  ``Secret``.
- **Zone**: every tenant lives in one zone (``webservicesN.autotask.net``). ``GET <lookup>/atservicesrest/v1.0/
  zoneInformation?user=<username>`` answers ``{"url": "https://webservices5.autotask.net/ATServicesRest/", ...}``;
  entities are below ``<url>V1.0/``. Looked up once per object (the write-back keeps one per container).
- **Status**: ``PATCH <zone>V1.0/Tickets`` ``{"id": <ticket>, "status": <picklist id>}``. ``status`` is a
  per-instance picklist (``Tickets/entityInformation/fields``), so the configured status must be its id.
- **Note**: ``POST <zone>V1.0/Tickets/<id>/Notes`` ``{"title", "description", "noteType", "publish"}``.
  ``publish`` is who sees it: Autotask's own help says notes published to *All Autotask Users* (1) are
  visible to customers (client portal, outsourced copies); internal notes are *Internal Only* (2, labelled
  "Internal Project Team" on some instances). Both numbers are settable, as is ``noteType``.
- **Looking for a note**: ``GET <zone>V1.0/TicketNotes/query?search=<JSON>`` with the filter
  ``ticketID eq <id>`` and ``description contains <reference>`` (the documented GET form of a query: the
  JSON search in the URL).

Budget: Autotask allows 10,000 calls per rolling hour per tenant (every integration together) and 3
concurrent requests per endpoint per integration. Each method costs one call: ``set_status`` 1,
``add_note`` 1, ``has_note`` 1, plus the zone lookup once per object (not counted against the entity
endpoints). A write-back of a status and a note is 2 calls, 3 when a retry looks for its note first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from appointments.errors import ConfigError, VendorUnavailable

if TYPE_CHECKING:
    from appointments.adapters.vendor_http import VendorHttp
    from appointments.ports import PsaNote

DEFAULT_ZONE_LOOKUP = "https://webservices.autotask.net"
PUBLISH_ALL_USERS = 1  # "All Autotask Users": customers see it too
PUBLISH_INTERNAL = 2  # "Internal Only" / "Internal Project Team": never shown to customers


@dataclass(frozen=True)
class AutotaskCredentials:
    integration_code: str
    username: str
    secret: str = field(repr=False)

    def headers(self) -> dict[str, str]:
        return {"ApiIntegrationCode": self.integration_code, "UserName": self.username, "Secret": self.secret}


@dataclass(frozen=True)
class AutotaskNotes:
    """How notes are filed: the note type (a per-instance picklist; 1 is usually the first general type)
    and the ``publish`` value for internal and for customer-visible notes."""

    note_type: int = 1
    publish_internal: int = PUBLISH_INTERNAL
    publish_public: int = PUBLISH_ALL_USERS


class AutotaskTickets:
    system = "autotask"

    def __init__(
        self,
        http: VendorHttp,
        credentials: AutotaskCredentials,
        *,
        zone_lookup: str = DEFAULT_ZONE_LOOKUP,
        notes: AutotaskNotes | None = None,
    ) -> None:
        self._http = http
        self._credentials = credentials
        self._headers = credentials.headers()
        self._lookup = zone_lookup.rstrip("/")
        self._notes = notes or AutotaskNotes()
        self._zone: str | None = None

    def set_status(self, ticket_id: str, status: str) -> None:
        # PATCH sets the fields it names and nothing else: sending it twice changes nothing, so it is retried.
        body = {"id": _number("ticket id", ticket_id), "status": _number("autotask status", status)}
        self._http.request(
            "PATCH", self._zone_url() + "V1.0/Tickets", headers=self._headers, body=body, idempotent=True
        )

    def add_note(self, ticket_id: str, note: PsaNote) -> None:
        number = _number("ticket id", ticket_id)
        body = {
            "title": note.title,
            "description": note.text,
            "noteType": self._notes.note_type,
            "publish": self._notes.publish_internal if note.internal else self._notes.publish_public,
        }
        self._http.request("POST", self._zone_url() + f"V1.0/Tickets/{number}/Notes", headers=self._headers, body=body)

    def has_note(self, ticket_id: str, reference: str) -> bool:
        search = {
            "filter": [
                {"op": "eq", "field": "ticketID", "value": _number("ticket id", ticket_id)},
                {"op": "contains", "field": "description", "value": reference},
            ]
        }
        document = self._http.get_json(
            self._zone_url() + "V1.0/TicketNotes/query",
            headers=self._headers,
            fields={"search": json.dumps(search, separators=(",", ":"))},
        )
        items = document.get("items") if isinstance(document, dict) else None
        if not isinstance(items, list):
            raise VendorUnavailable(self._http.vendor, "the answer is not a list of notes")
        # The search narrows; the reference decides (a ``contains`` may be looser than we need).
        return any(isinstance(item, dict) and reference in str(item.get("description") or "") for item in items)

    def _zone_url(self) -> str:
        """The tenant's REST base (``.../ATServicesRest/``), asked once per object: it changes only when Autotask
        moves the tenant, which a new container (a new object) then picks up."""
        if self._zone is None:
            document = self._http.get_json(
                f"{self._lookup}/atservicesrest/v1.0/zoneInformation", fields={"user": self._credentials.username}
            )
            url = document.get("url") if isinstance(document, dict) else None
            if not isinstance(url, str) or not url.startswith(("https://", "http://")):
                raise VendorUnavailable(self._http.vendor, "the zone lookup gave no URL")
            self._zone = url if url.endswith("/") else url + "/"
        return self._zone


def _number(what: str, value: str) -> int:
    """Autotask ids and picklist values are integers; anything else is a configuration or data mistake."""
    if not value.strip().isdigit():
        raise ConfigError(f"{what} must be a number for Autotask, not {value!r}")
    return int(value)
