"""The runner's clock: every function's clock, signature freshness included.

``system`` follows the wall clock, shifted by however far it was set or advanced; ``manual`` stands
still until it is set or advanced, so a developer (or a test) decides when time passes.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable


def _wall() -> datetime:
    return datetime.now(UTC)


class RunnerClock:
    def __init__(self, *, manual: bool = False, wall: Callable[[], datetime] = _wall) -> None:
        self._wall = wall
        self._manual = manual
        self._lock = threading.Lock()
        self._frozen = wall()
        self._offset = timedelta(0)

    @property
    def mode(self) -> str:
        return "manual" if self._manual else "system"

    def now(self) -> datetime:
        with self._lock:
            return self._frozen if self._manual else self._wall() + self._offset

    def set(self, now: datetime) -> datetime:
        if now.tzinfo is None:
            raise ValueError("the clock needs a timezone-aware instant")
        with self._lock:
            self._frozen = now.astimezone(UTC)
            self._offset = self._frozen - self._wall()
            return self._frozen

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._frozen += delta
            self._offset += delta
            return self._frozen if self._manual else self._wall() + self._offset
