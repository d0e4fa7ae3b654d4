"""A poller's memory between runs: where it read up to, what it already saw there, and its rate budget.

Pure: the poller service reads and saves a ``PollState`` through a port, and asks ``RateBudget`` how long
to wait before its next request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from appointments.domain.model import Frozen, UtcDatetime

if TYPE_CHECKING:
    from datetime import datetime


class PollState(Frozen):
    """``since``: read from here next time (Unix seconds). ``seen``: the changes already queued at or after
    ``since`` (request id → its update time), so the overlap a poll keeps is not queued twice. ``tokens`` and
    ``tokens_at``: the rate budget left when the last run ended, so two runs back to back share one limit."""

    since: int
    seen: dict[str, int] = Field(default_factory=dict)
    tokens: float | None = None
    tokens_at: UtcDatetime | None = None
    version: Annotated[int, Field(ge=0)] = 0


class RateBudget:
    """A token bucket: ``rate`` requests per ``per_seconds``, refilled evenly, holding at most ``burst``.

    In any window of ``per_seconds`` at most ``burst + rate`` requests go out, so a vendor's limit of L per
    period is kept with ``burst + rate <= L`` (TimeZest: 180 per 60 s, taken as 10 + 150).
    """

    def __init__(self, rate: int, per_seconds: float, *, burst: int, tokens: float | None, at: datetime) -> None:
        if rate < 1 or per_seconds <= 0 or burst < 1:
            raise ValueError("a rate budget needs a positive rate, period and burst")
        self.capacity = float(burst)
        self._rate = rate / per_seconds
        self._tokens = self.capacity if tokens is None else min(self.capacity, max(tokens, -self.capacity))
        self._at = at

    @property
    def tokens(self) -> float:
        return self._tokens

    @property
    def at(self) -> datetime:
        return self._at

    def _refill(self, now: datetime) -> None:
        elapsed = max((now - self._at).total_seconds(), 0.0)
        self._tokens = min(self.capacity, self._tokens + elapsed * self._rate)
        self._at = max(now, self._at)

    def wait_for_one(self, now: datetime) -> float:
        """Seconds to wait before the next request may go (0: now)."""
        self._refill(now)
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self._rate

    def take(self, now: datetime) -> None:
        """A request goes now (call once ``wait_for_one`` says 0)."""
        self._refill(now)
        self._tokens -= 1

    def empty(self, now: datetime) -> None:
        """The vendor said 429: whatever we thought was left, nothing is."""
        self._refill(now)
        self._tokens = min(self._tokens, 0.0)
