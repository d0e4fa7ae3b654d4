"""The TimeZest poller: TimeZest sends no webhooks, so every minute it reads what changed and queues it.

One run reads the scheduling requests updated between the saved cursor and now, every page, turns each into
canonical events (``sources.timezest``) and puts them on the **same queue** as the webhooks, so ordering,
dedupe and convergence are shared. Then, and only then, it saves the cursor: a run that stops early (a crash,
time running out, TimeZest down) saved nothing and the next run reads the same changes again, which the
queue and the processor deduplicate by delivery id. Nothing is skipped; nothing is applied twice.

The cursor keeps an overlap (``overlap_seconds`` before the run's start) and the changes already queued in
it, because a change TimeZest records at second *t* may become readable a moment after a read at *t*.

Requests go out under a token bucket sized under TimeZest's account-wide limit (180 per 60 s), its level
saved with the cursor so back-to-back runs share one budget. A 429 empties the bucket and waits for its
``Retry-After`` when the run has time for it; otherwise the run ends and the next one resumes.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from pydantic import ValidationError

from appointments.domain.events import EventKind
from appointments.domain.polling import PollState, RateBudget
from appointments.errors import VendorRateLimited, VendorUnavailable
from appointments.sources import timezest

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from appointments.domain.events import CanonicalEvent
    from appointments.ports import Clock, EventQueue, PollStateStore, SchedulingRequestPage, SchedulingRequests

logger = logging.getLogger(__name__)

POLLER = "timezest"
_T = TypeVar("_T")


@dataclass(frozen=True)
class PollPolicy:
    requests_per_minute: int = 150
    burst: int = 10  # burst + requests_per_minute stays under TimeZest's 180 per 60 s
    overlap_seconds: int = 120
    first_lookback_hours: int = 24  # the first run reads this far back (upcoming appointments only)
    reserve_seconds: float = 5.0  # stop taking new work with less time than this left
    max_pages: int = 200  # a run reads at most this many pages; the rest waits for the next run


@dataclass
class PollReport:
    requests: int = 0
    pages: int = 0
    changes: int = 0  # scheduling requests read that were new to us
    events: int = 0  # canonical events queued
    unreadable: int = 0  # requests whose shape we could not read (logged by id, skipped)
    rate_limited: int = 0  # 429 answers
    waited_seconds: float = 0.0
    completed: bool = False  # every page read and the cursor saved
    stopped: str | None = None  # why a run ended before that

    def summary(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "pages": self.pages,
            "changes": self.changes,
            "events": self.events,
            "unreadable": self.unreadable,
            "rate_limited": self.rate_limited,
            "waited_seconds": round(self.waited_seconds, 3),
            "completed": self.completed,
            "stopped": self.stopped,
        }


@dataclass
class _Run:
    budget: RateBudget
    seconds_left: Callable[[], float]
    report: PollReport = field(default_factory=PollReport)


class _OutOfTime(Exception):
    """Not enough time left in this run for the next request (or the wait before it)."""


def _unlimited() -> float:
    return float("inf")


class TimeZestPoller:
    def __init__(
        self,
        api: SchedulingRequests,
        queue: EventQueue,
        state: PollStateStore,
        clock: Clock,
        sleep: Callable[[float], None],
        policy: PollPolicy | None = None,
    ) -> None:
        self._api = api
        self._queue = queue
        self._state = state
        self._clock = clock
        self._sleep = sleep
        self._policy = policy or PollPolicy()

    def poll(self, *, seconds_left: Callable[[], float] = _unlimited) -> PollReport:
        now = self._clock.now()
        saved = self._state.poll_state(POLLER)
        first = saved is None
        until = int(now.timestamp())
        state = saved or PollState(since=until - self._policy.first_lookback_hours * 3600)
        budget = RateBudget(
            self._policy.requests_per_minute,
            60,
            burst=self._policy.burst,
            tokens=state.tokens,
            at=state.tokens_at or now,
        )
        run = _Run(budget=budget, seconds_left=seconds_left)
        seen_now: dict[str, int] = {}
        try:
            self._read_all(run, state, until, first, seen_now)
        except _OutOfTime:
            run.report.stopped = "out of time"
        except VendorUnavailable as error:
            # TimeZest down or refusing: nothing was skipped, the next run reads the same changes again.
            logger.warning("TimeZest could not be read; the next run tries again", extra={"error": error.code})
            run.report.stopped = error.code
        if run.report.stopped is None:
            state = self._advanced(state, until, seen_now)
            run.report.completed = True
        self._save(state, budget)
        return run.report

    # -- reading ---------------------------------------------------------------------------------

    def _read_all(self, run: _Run, state: PollState, until: int, first: bool, seen_now: dict[str, int]) -> None:
        durations: dict[str, int] | None = None
        # The first run imports what is still ahead, not a day of history to cancel.
        starting_from = until if first else None
        page: int | None = 1
        while page is not None:
            if run.report.pages >= self._policy.max_pages:
                raise _OutOfTime
            result = self._request(
                run,
                functools.partial(
                    self._api.changed, since=state.since, until=until, page=page, starting_from=starting_from
                ),
            )
            run.report.pages += 1
            requests = self._readable(result, run.report)
            fresh = [r for r in requests if state.seen.get(r.id) != r.updated_at]
            if durations is None and any(r.status.casefold() == "scheduled" for r in fresh):
                durations = self._request(run, self._api.durations)
            events: list[CanonicalEvent] = []
            for request in fresh:
                seen_now[request.id] = max(seen_now.get(request.id, 0), request.updated_at)
                try:
                    found = timezest.events_of(request, durations or {})
                except (ValidationError, ValueError, OverflowError):
                    # Read, but not a booking the desk can hold: skipped and counted, never blocking the others.
                    run.report.unreadable += 1
                    logger.error("a TimeZest scheduling request could not be mapped", extra={"request_id": request.id})
                    continue
                events += [e for e in found if not (first and e.kind is EventKind.CANCELLED)]
            run.report.changes += len(fresh)
            if events:
                # Queued before the cursor moves: a crash after this re-reads, and the queue drops the repeat.
                self._queue.enqueue(events)
                run.report.events += len(events)
            page = result.next_page

    def _request(self, run: _Run, call: Callable[[], _T]) -> _T:
        """One request under the rate budget; a 429 waits for its Retry-After (when the run has time) and retries."""
        while True:
            self._wait(run, run.budget.wait_for_one(self._clock.now()))
            run.budget.take(self._clock.now())
            run.report.requests += 1
            try:
                return call()
            except VendorRateLimited as limited:
                run.report.rate_limited += 1
                run.budget.empty(self._clock.now())
                self._wait(run, limited.retry_after)

    def _wait(self, run: _Run, seconds: float) -> None:
        if run.seconds_left() - seconds < self._policy.reserve_seconds:
            raise _OutOfTime
        if seconds > 0:
            self._sleep(seconds)
            run.report.waited_seconds += seconds

    @staticmethod
    def _readable(page: SchedulingRequestPage, report: PollReport) -> Sequence[timezest.SchedulingRequest]:
        readable = []
        for item in page.items:
            try:
                readable.append(timezest.SchedulingRequest.model_validate(item))
            except ValidationError:
                # One request TimeZest sends in a shape we cannot read must not stop every other one.
                report.unreadable += 1
                logger.error("a TimeZest scheduling request could not be read", extra={"request_id": item.get("id")})
        return readable

    # -- the cursor ------------------------------------------------------------------------------

    def _advanced(self, state: PollState, until: int, seen_now: dict[str, int]) -> PollState:
        since = max(state.since, until - self._policy.overlap_seconds)
        seen = {key: at for key, at in {**state.seen, **seen_now}.items() if at >= since}
        return state.model_copy(update={"since": since, "seen": seen})

    def _save(self, state: PollState, budget: RateBudget) -> None:
        saved = state.model_copy(update={"tokens": budget.tokens, "tokens_at": budget.at, "version": state.version + 1})
        if not self._state.save_poll_state(POLLER, saved):
            logger.warning("another TimeZest poll saved its cursor first; this run's cursor is dropped")
