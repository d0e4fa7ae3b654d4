"""The TimeZest REST API (``https://api.timezest.com/v1``) as the poller reads it.

Bearer API key (a read-only key is enough). Lists answer ``{"data": [...], "next_page": n | null}`` and take
``page`` and a TQL ``filter`` in the query, where spaces outside quotes are written ``~``
(``scheduling_request.updated_at~GTE~1767225600``). Timestamps are Unix seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from appointments.errors import VendorUnavailable

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from appointments.adapters.vendor_http import VendorHttp

DEFAULT_BASE_URL = "https://api.timezest.com/v1"
_MAX_TYPE_PAGES = 20


@dataclass(frozen=True)
class RequestPage:
    items: Sequence[Mapping[str, Any]]
    next_page: int | None


def tql(*predicates: tuple[str, str, int | str]) -> str:
    """Predicates joined by AND, in the URL form TimeZest reads (``~`` for a space)."""
    return "~AND~".join(f"{attribute}~{operator}~{value}" for attribute, operator, value in predicates)


class TimeZestApi:
    def __init__(self, http: VendorHttp, api_key: str, base_url: str = DEFAULT_BASE_URL) -> None:
        self._http = http
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._base = base_url.rstrip("/")

    def changed(self, *, since: int, until: int, page: int, starting_from: int | None = None) -> RequestPage:
        predicates: list[tuple[str, str, int | str]] = [
            ("scheduling_request.updated_at", "GTE", since),
            ("scheduling_request.updated_at", "LTE", until),
        ]
        if starting_from is not None:
            predicates.append(("scheduling_request.selected_start_time", "GTE", starting_from))
        return self._page("/scheduling_requests", {"filter": tql(*predicates), "page": str(page)})

    def durations(self) -> dict[str, int]:
        found: dict[str, int] = {}
        page: int | None = 1
        while page is not None and page <= _MAX_TYPE_PAGES:
            result = self._page("/appointment_types", {"page": str(page)})
            for item in result.items:
                key, minutes = item.get("id"), item.get("duration_mins")
                if isinstance(key, str) and isinstance(minutes, int) and not isinstance(minutes, bool):
                    found[key] = minutes
            page = result.next_page
        return found

    def _page(self, path: str, fields: Mapping[str, str]) -> RequestPage:
        document = self._http.get_json(self._base + path, headers=self._headers, fields=fields)
        if not isinstance(document, dict) or not isinstance(document.get("data"), list):
            raise VendorUnavailable(self._http.vendor, "the answer is not a page of data")
        next_page = document.get("next_page")
        if next_page is not None and (not isinstance(next_page, int) or isinstance(next_page, bool)):
            raise VendorUnavailable(self._http.vendor, "next_page is not a page number")
        items = [item for item in document["data"] if isinstance(item, dict)]
        return RequestPage(items=items, next_page=next_page)
