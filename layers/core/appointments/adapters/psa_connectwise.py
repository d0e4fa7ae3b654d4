"""ConnectWise PSA (Manage) service tickets through its REST API, as the write-back changes them.

- **Auth**: Basic ``base64("<company>+<public key>:<private key>")`` of an API member, and the ``clientId``
  header of the integration (registered on ConnectWise's developer site).
- **Base**: ``<site>/v4_6_release/apis/3.0`` (``site`` is the cloud region, ``https://api-na.myconnectwise.net``,
  or an on-premises server).
- **Status**: ``PATCH /service/tickets/<id>`` with a JSON Patch ``[{"op": "replace", "path": "status",
  "value": {"name": "<status>"}}]``; a status given as digits is a status id (``{"id": n}``), which is
  unambiguous when boards share a status name.
- **Note**: ``POST /service/tickets/<id>/notes`` ``{"text", "internalAnalysisFlag", "detailDescriptionFlag"}``:
  an internal note is *Internal Analysis* (members only), a public one *Discussion* (the contact sees it).
- **Looking for a note**: ``GET /service/tickets/<id>/notes?conditions=text like "%<reference>%"``.

Each method costs one call (no lookup, no token): a status and a note are 2 calls, 3 when a retry looks for
its note first.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from appointments.errors import ConfigError, VendorUnavailable

if TYPE_CHECKING:
    from appointments.adapters.vendor_http import VendorHttp
    from appointments.ports import PsaNote

API_PATH = "/v4_6_release/apis/3.0"
_NOTES_PAGE = 100  # the notes carrying one reference: one, or a few after a crash; never a page's worth


@dataclass(frozen=True)
class ConnectWiseCredentials:
    site: str  # https://api-na.myconnectwise.net
    company: str
    public_key: str
    private_key: str = field(repr=False)
    client_id: str = ""

    def headers(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.company}+{self.public_key}:{self.private_key}".encode()).decode()
        return {"Authorization": f"Basic {token}", "clientId": self.client_id}


def condition_string(value: str) -> str:
    """``value`` as a ConnectWise conditions string literal: double quotes, with ``\\`` and ``"`` escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ConnectWiseTickets:
    system = "connectwise"

    def __init__(self, http: VendorHttp, credentials: ConnectWiseCredentials) -> None:
        self._http = http
        self._headers = credentials.headers()
        self._base = credentials.site.rstrip("/") + API_PATH

    def set_status(self, ticket_id: str, status: str) -> None:
        value: dict[str, int | str] = {"id": int(status)} if status.strip().isdigit() else {"name": status}
        patch = [{"op": "replace", "path": "status", "value": value}]
        # Replacing a value is idempotent: a PATCH lost on its way back is retried.
        self._http.request("PATCH", self._ticket(ticket_id), headers=self._headers, body=patch, idempotent=True)

    def add_note(self, ticket_id: str, note: PsaNote) -> None:
        body = {"text": note.text, "internalAnalysisFlag": note.internal, "detailDescriptionFlag": not note.internal}
        self._http.request("POST", self._ticket(ticket_id) + "/notes", headers=self._headers, body=body)

    def has_note(self, ticket_id: str, reference: str) -> bool:
        document = self._http.get_json(
            self._ticket(ticket_id) + "/notes",
            headers=self._headers,
            fields={"conditions": f"text like {condition_string('%' + reference + '%')}", "pageSize": str(_NOTES_PAGE)},
        )
        if not isinstance(document, list):
            raise VendorUnavailable(self._http.vendor, "the answer is not a list of notes")
        # ``like`` treats % and _ in the reference as wildcards: the search narrows, the text decides.
        return any(isinstance(item, dict) and reference in str(item.get("text") or "") for item in document)

    def _ticket(self, ticket_id: str) -> str:
        if not ticket_id.strip().isdigit():
            raise ConfigError(f"a ConnectWise ticket id is a number, not {ticket_id!r}")
        return f"{self._base}/service/tickets/{int(ticket_id)}"
