"""What the runner writes to its console: one line per request and per failure, the functions' own output
(Powertools log lines, EMF metrics) and full tracebacks only with ``serve --verbose``.

The functions' stdout is silenced per thread while they run (``quiet_invocation``): the runner's own lines,
written from other threads meanwhile, still get through.
"""

from __future__ import annotations

import sys
import threading
import traceback
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from collections.abc import Iterator

MAX_REASON = 500
_state = threading.local()  # .quiet: this thread runs a function whose output is suppressed


class _Settings:
    verbose = False


settings = _Settings()


class QuietStdout:
    """Stands in for ``sys.stdout``: writes from a thread running a function in quiet mode are dropped."""

    def __init__(self, target: TextIO) -> None:
        self.target = target

    def write(self, text: str) -> int:
        if getattr(_state, "quiet", False):
            return len(text)
        return self.target.write(text)

    def flush(self) -> None:
        if not getattr(_state, "quiet", False):
            self.target.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)


def install(*, verbose: bool) -> None:
    """Before the functions are loaded, so a Powertools Logger made at import writes through the stand-in."""
    settings.verbose = verbose
    if not isinstance(sys.stdout, QuietStdout):
        sys.stdout = QuietStdout(sys.stdout)


def uninstall() -> None:
    settings.verbose = False
    if isinstance(sys.stdout, QuietStdout):
        sys.stdout = sys.stdout.target


@contextmanager
def quiet_invocation() -> Iterator[None]:
    """While a function runs on this thread: its stdout is dropped unless the runner is verbose."""
    previous = getattr(_state, "quiet", False)
    _state.quiet = not settings.verbose
    try:
        yield
    finally:
        _state.quiet = previous


def reason(error: BaseException) -> str:
    """An exception as one line: ``Class: message`` (at most 500 characters)."""
    text = " ".join(str(error).split())
    if len(text) > MAX_REASON:
        text = text[: MAX_REASON - 1] + "…"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def failure(line: str, error: BaseException) -> None:
    """One line on stderr; the traceback too with ``--verbose``."""
    if settings.verbose:
        traceback.print_exception(error, file=sys.stderr)
    log(f"localdev: {line}")


def log(line: str) -> None:
    """One line on stderr, in one write: lines from several threads never interleave."""
    sys.stderr.write(f"{line}\n")
    sys.stderr.flush()


def hook_batch_failures() -> None:
    """Learn why a Powertools batch processor failed a record: it answers only ``batchItemFailures`` (ids), so
    the reason it recorded is kept, per message id, for the runner's one line (``batch_failures``)."""
    try:
        from aws_lambda_powertools.utilities.batch.base import BasePartialProcessor
    except ImportError:  # the functions use no batch processor
        return
    original = BasePartialProcessor.failure_handler
    if getattr(original, "_localdev", False):
        return

    def failure_handler(self: Any, record: Any, exception: Any) -> Any:
        failures = getattr(_state, "batch_failures", None)
        if failures is not None and exception[1] is not None:
            raw = getattr(record, "raw_event", record)
            message_id = raw.get("messageId") if isinstance(raw, dict) else None
            if message_id is not None:
                failures[str(message_id)] = reason(exception[1])
        return original(self, record, exception)

    failure_handler._localdev = True  # type: ignore[attr-defined]
    BasePartialProcessor.failure_handler = failure_handler  # type: ignore[method-assign]


@contextmanager
def batch_failures() -> Iterator[dict[str, str]]:
    """The reasons a batch processor gave for the records it failed on this thread meanwhile."""
    failures: dict[str, str] = {}
    _state.batch_failures = failures
    try:
        yield failures
    finally:
        _state.batch_failures = None
