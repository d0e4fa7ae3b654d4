"""A gate for requests: open until the runner begins to stop, then closed for good.

What it admitted before it closed is counted, so whoever stops the runner can wait for it to finish
(a webhook acknowledged with 202 must reach its queue, and the queue its processor, before the
runner lets go of its state). What arrives after it closed is refused.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator


class Gate:
    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._open = True
        self._inside = 0

    @property
    def closed(self) -> bool:
        with self._condition:
            return not self._open

    @contextmanager
    def admit(self) -> Iterator[bool]:
        """``True`` (and counted until the block ends) while open; ``False`` once closed: refuse the request."""
        with self._condition:
            admitted = self._open
            if admitted:
                self._inside += 1
        try:
            yield admitted
        finally:
            if admitted:
                with self._condition:
                    self._inside -= 1
                    self._condition.notify_all()

    def close(self) -> None:
        """Admit nothing from now on; what is inside carries on."""
        with self._condition:
            self._open = False

    def wait_empty(self, timeout: float) -> bool:
        """Wait until everything admitted has finished; ``False`` if ``timeout`` seconds passed first."""
        with self._condition:
            return self._condition.wait_for(lambda: self._inside == 0, timeout=timeout)
