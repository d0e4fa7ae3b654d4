"""HaloPSA tickets through its REST API, as the write-back changes them.

- **Auth**: OAuth2 client credentials. ``POST <base>/auth/token`` (form: ``grant_type=client_credentials``,
  ``client_id``, ``client_secret``, ``scope=all``; a hosted tenant adds ``?tenant=<name>`` to the URL) answers
  ``{"access_token", "expires_in", ...}``. The token is kept until a minute before it expires (on the
  injected clock); a 401 on a kept token (revoked, or the secret rotated) fetches a new one, once.
- **Status**: ``POST <base>/api/Tickets`` ``[{"id": <ticket>, "status_id": <status id>}]`` (Halo updates
  with a POST of the record; setting the same status twice changes nothing, so it is retried).
- **Note**: ``POST <base>/api/Actions`` ``[{"ticket_id", "note", "outcome": "Note", "hiddenfromuser"}]``:
  an action whose ``hiddenfromuser`` keeps it from the end user.
- **Looking for a note**: ``GET <base>/api/Actions?ticket_id=<id>&count=100`` and the reference in an
  action's ``note`` (Halo's action list has no text search).

Each method costs one call, plus a token fetch per hour (``expires_in`` is 3600 s by default): a status and
a note are 2 calls, 3 when a retry looks for its note first. Halo's limit, as a vendor cites it, is 450
requests per 5 minutes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from appointments.errors import ConfigError, VendorRefused, VendorUnavailable

if TYPE_CHECKING:
    from datetime import datetime

    from appointments.adapters.vendor_http import VendorHttp, VendorResponse
    from appointments.ports import Clock, PsaNote

TOKEN_MARGIN = timedelta(seconds=60)  # a token this close to expiry could expire on its way to Halo
_ACTIONS_PAGE = 100


@dataclass(frozen=True)
class HaloCredentials:
    base_url: str  # https://<tenant>.halopsa.com
    client_id: str
    client_secret: str = field(repr=False)
    tenant: str | None = None  # hosted Halo: the tenant's name


class HaloTickets:
    system = "halopsa"

    def __init__(self, http: VendorHttp, credentials: HaloCredentials, clock: Clock) -> None:
        self._http = http
        self._credentials = credentials
        self._clock = clock
        self._base = credentials.base_url.rstrip("/")
        self._token: str | None = None
        self._token_until: datetime | None = None

    def set_status(self, ticket_id: str, status: str) -> None:
        body = [{"id": _number("ticket id", ticket_id), "status_id": _number("halo status id", status)}]
        self._authorized("POST", "/api/Tickets", body=body, idempotent=True)

    def add_note(self, ticket_id: str, note: PsaNote) -> None:
        action = {
            "ticket_id": _number("ticket id", ticket_id),
            "note": note.text,
            "outcome": "Note",
            "hiddenfromuser": note.internal,
        }
        self._authorized("POST", "/api/Actions", body=[action])

    def has_note(self, ticket_id: str, reference: str) -> bool:
        fields = {"ticket_id": str(_number("ticket id", ticket_id)), "count": str(_ACTIONS_PAGE)}
        answer = self._authorized("GET", "/api/Actions", fields=fields)
        try:
            document = answer.json()
        except ValueError:
            raise VendorUnavailable(self._http.vendor, "the answer is not JSON") from None
        actions = document.get("actions") if isinstance(document, dict) else None
        if not isinstance(actions, list):
            raise VendorUnavailable(self._http.vendor, "the answer is not a list of actions")
        return any(isinstance(item, dict) and reference in str(item.get("note") or "") for item in actions)

    def _authorized(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        fields: dict[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> VendorResponse:
        fresh = self._token is None or self._expired()
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self._access_token()}"}
            try:
                return self._http.request(
                    method, self._base + path, headers=headers, fields=fields, body=body, idempotent=idempotent
                )
            except VendorRefused as refused:
                # A kept token can be revoked before it expires: one new token, one more try. A token just
                # fetched that is refused is a real refusal (wrong permissions), not a stale token.
                if refused.status != 401 or fresh or attempt == 2:
                    raise
                self._token, fresh = None, True
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _access_token(self) -> str:
        if self._token is not None and not self._expired():
            return self._token
        url = self._base + "/auth/token"
        if self._credentials.tenant:
            url += "?" + urlencode({"tenant": self._credentials.tenant})
        form = {
            "grant_type": "client_credentials",
            "client_id": self._credentials.client_id,
            "client_secret": self._credentials.client_secret,
            "scope": "all",
        }
        # Asking for a token twice is harmless: a lost answer is retried.
        answer = self._http.request("POST", url, form=form, idempotent=True)
        try:
            document = answer.json()
        except ValueError:
            raise VendorUnavailable(self._http.vendor, "the token answer is not JSON") from None
        token = document.get("access_token") if isinstance(document, dict) else None
        lifetime = document.get("expires_in", 3600) if isinstance(document, dict) else None
        if (
            not isinstance(token, str)
            or not token
            or not isinstance(lifetime, int | float)
            or isinstance(lifetime, bool)
        ):
            raise VendorUnavailable(self._http.vendor, "the token answer has no token")
        self._token = token
        self._token_until = self._clock.now() + timedelta(seconds=float(lifetime)) - TOKEN_MARGIN
        return token

    def _expired(self) -> bool:
        return self._token_until is None or self._clock.now() >= self._token_until


def _number(what: str, value: str) -> int:
    if not value.strip().isdigit():
        raise ConfigError(f"{what} must be a number for HaloPSA, not {value!r}")
    return int(value)
