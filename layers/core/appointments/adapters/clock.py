"""Clocks: the system clock for Lambda, a settable one for tests and the local runner."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to; thread-safe, so a local runner can share it."""

    def __init__(self, now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware instant")
        self._now = now.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware instant")
        with self._lock:
            self._now = now.astimezone(UTC)

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now
