"""The one HTTP client for vendors' APIs (TimeZest, ConnectWise, HaloPSA, Autotask): urllib3, set on purpose.

- **Timeouts**: connect 3.05 s, read 10 s by default. A Lambda has minutes, but a vendor that hangs must
  cost one request, not the run.
- **Retries**: urllib3 retries a failed connection, a read timeout and a 500/502/503/504 twice, with
  exponential back-off (0 s, then ``backoff`` s, doubled, at most ``backoff_max``), only for idempotent
  methods: a ``POST`` is sent once, so a write-back never creates a note twice.
- **429** is not retried here: it raises ``VendorRateLimited`` with the vendor's ``Retry-After``, so the
  caller waits on its own clock (a poller's token bucket, the run's time left) instead of sleeping blind.
- **Errors** are typed: ``VendorUnavailable`` (try later), ``VendorRefused`` (4xx: retrying will not help).

Nothing here logs a URL's query, a header or a body: they carry keys and customers' data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import urllib3
from urllib3.exceptions import HTTPError
from urllib3.util.retry import Retry

from appointments.errors import VendorRateLimited, VendorRefused, VendorUnavailable

if TYPE_CHECKING:
    from collections.abc import Mapping

_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_RETRIED_STATUSES = frozenset({500, 502, 503, 504})
DEFAULT_RETRY_AFTER = 60.0  # a 429 without a readable Retry-After: the vendors' limits are per minute


@dataclass(frozen=True)
class HttpPolicy:
    connect_timeout: float = 3.05
    read_timeout: float = 10.0
    retries: int = 2
    backoff: float = 0.5
    backoff_max: float = 4.0
    max_body_bytes: int = 10 * 1024 * 1024  # a page larger than this is not a page
    user_agent: str = "appointment-desk/1.0"


@dataclass(frozen=True)
class VendorResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes = field(repr=False)

    def json(self) -> Any:
        """The body as JSON (a vendor's: the caller validates its shape)."""
        try:
            return json.loads(self.body)
        except ValueError as error:
            raise ValueError("the vendor's answer is not JSON") from error


class VendorHttp:
    """Requests to one vendor (``vendor`` names it in errors); one connection pool per container."""

    def __init__(self, vendor: str, policy: HttpPolicy | None = None, *, pool: urllib3.PoolManager | None = None):
        self.vendor = vendor
        self._policy = policy or HttpPolicy()
        retry = Retry(
            total=self._policy.retries,
            connect=self._policy.retries,
            read=self._policy.retries,
            status=self._policy.retries,
            redirect=False,  # a 3xx comes back as refused: following it could take the key to another host
            allowed_methods=_IDEMPOTENT,
            status_forcelist=_RETRIED_STATUSES,
            backoff_factor=self._policy.backoff,
            backoff_max=self._policy.backoff_max,
            raise_on_status=False,  # the last 5xx answer comes back to us, and becomes VendorUnavailable
            respect_retry_after_header=False,  # 429 is the caller's to wait for; 503's Retry-After is not ours
        )
        timeout = urllib3.Timeout(connect=self._policy.connect_timeout, read=self._policy.read_timeout)
        self._pool = pool or urllib3.PoolManager(retries=retry, timeout=timeout)
        self._retry, self._timeout = retry, timeout

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        fields: Mapping[str, str] | None = None,
        body: object = None,
        form: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> VendorResponse:
        """One request (retried as above); a 2xx answer, or a typed error. ``body`` is sent as JSON, ``form`` as
        ``application/x-www-form-urlencoded`` (an OAuth2 token request).

        ``idempotent`` overrides the method's default: True retries a ``PATCH`` or ``POST`` that sets a value
        (a ticket's status: sending it twice changes nothing), False never retries what has reached the vendor.
        """
        sent_headers = {"User-Agent": self._policy.user_agent, "Accept": "application/json", **(headers or {})}
        encoded = None
        if body is not None:
            encoded = json.dumps(body).encode()
            sent_headers["Content-Type"] = "application/json"
        elif form is not None:
            encoded = urlencode(form).encode()
            sent_headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            answer = self._pool.request(
                method,
                url,
                fields=fields,
                body=encoded,
                headers=sent_headers,
                retries=self._retry if idempotent is None else self._retry_for(method, idempotent=idempotent),
                timeout=self._timeout,
                preload_content=False,
                redirect=False,
            )
            try:
                data = answer.read(self._policy.max_body_bytes + 1)
            finally:
                answer.release_conn()
        except HTTPError as error:
            # Timeouts, refused connections, TLS failures, retries exhausted: never the URL (it may hold a key).
            raise VendorUnavailable(self.vendor, type(error).__name__) from None
        if len(data) > self._policy.max_body_bytes:
            raise VendorUnavailable(self.vendor, "the answer is larger than expected")
        headers_seen = {name.lower(): value for name, value in answer.headers.items()}
        status = answer.status
        if status == 429:
            raise VendorRateLimited(self.vendor, retry_after_seconds(headers_seen.get("retry-after")))
        if status >= 500:
            raise VendorUnavailable(self.vendor, f"the API answered {status}")
        if status >= 300:
            raise VendorRefused(self.vendor, status)
        return VendorResponse(status=status, headers=headers_seen, body=data)

    def _retry_for(self, method: str, *, idempotent: bool) -> Retry:
        # A failed connection is retried either way (nothing reached the vendor); a read error or a 5xx only
        # when sending it again is harmless. (An empty ``allowed_methods`` would mean every method to urllib3.)
        if idempotent:
            return self._retry.new(allowed_methods=frozenset({method.upper()}))
        return self._retry.new(read=0, status=0)

    def get_json(
        self, url: str, *, headers: Mapping[str, str] | None = None, fields: Mapping[str, str] | None = None
    ) -> Any:
        answer = self.request("GET", url, headers=headers, fields=fields)
        try:
            return answer.json()
        except ValueError:
            raise VendorUnavailable(self.vendor, "the answer is not JSON") from None


def retry_after_seconds(value: str | None) -> float:
    """``Retry-After`` as seconds (a number or an HTTP date), at least 1, at most an hour."""
    if not value:
        return DEFAULT_RETRY_AFTER
    try:
        seconds = Retry().parse_retry_after(value)
    except Exception:  # urllib3 raises InvalidHeader, or ValueError, for a header it cannot read
        return DEFAULT_RETRY_AFTER
    return float(min(max(seconds, 1.0), 3600.0))
