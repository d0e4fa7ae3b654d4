"""ConnectWise callback signing keys: ``GET <Metadata.key_url>`` answers ``{"signing_key": "..."}``.

The key URL needs no API credentials (it names the callback's key), so none are sent: the request carries
nothing a foreign server could keep. ``ConnectWiseSource`` calls this only for an allow-listed URL, and the
allow-list is checked here again, so no code path fetches a URL from a body that is not on it. Redirects are
not followed (``VendorHttp``): a 3xx is a refusal, never a hop to another host.

Short timeouts and no retry: the ingress has 8 s in all, and a key server that does not answer at once is a
503 that ConnectWise retries, not a wait.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from appointments.adapters.vendor_http import HttpPolicy, VendorHttp
from appointments.errors import InvalidSignature
from appointments.sources.connectwise import allowed_key_url

if TYPE_CHECKING:
    from appointments.sources.connectwise import KeyHost

KEY_POLICY = HttpPolicy(connect_timeout=2.0, read_timeout=3.0, retries=0, max_body_bytes=16 * 1024)


class ConnectWiseCallbackKeys:
    def __init__(self, hosts: tuple[KeyHost, ...], http: VendorHttp | None = None) -> None:
        self._hosts = hosts
        self._http = http or VendorHttp("connectwise", KEY_POLICY)

    def signing_key(self, url: str) -> str:
        if not allowed_key_url(url, self._hosts):
            raise InvalidSignature
        answer = self._http.get_json(url)
        key = answer.get("signing_key") if isinstance(answer, dict) else None
        if not isinstance(key, str) or not key:
            raise InvalidSignature  # ConnectWise has no key at that URL: the callback cannot be verified
        return key
