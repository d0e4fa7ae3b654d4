"""The poller's rate budget: a token bucket of ``rate`` per ``per_seconds`` holding at most ``burst``.

Time is a ``ManualClock``: waiting is moving it. In any 60 seconds at most ``burst + rate`` requests go out,
within one run and across two runs that hand the bucket's level on through the saved ``PollState``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appointments.adapters.clock import ManualClock
from appointments.domain.polling import PollState, RateBudget

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def budget(*, rate: int = 150, burst: int = 10, tokens: float | None = None, at: datetime = T0) -> RateBudget:
    return RateBudget(rate, 60, burst=burst, tokens=tokens, at=at)


def later(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def most_in_any_window(times: list[datetime], seconds: float = 60) -> int:
    """The most instants within any ``seconds`` (a half-open window, as TimeZest counts)."""
    ordered = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(ordered):
        while (at - ordered[first]).total_seconds() >= seconds:
            first += 1
        most = max(most, last - first + 1)
    return most


def send(bucket: RateBudget, clock: ManualClock, sent: list[datetime]) -> None:
    """One request as the poller makes it: wait what the bucket says, then take."""
    clock.advance(timedelta(seconds=bucket.wait_for_one(clock.now())))
    bucket.take(clock.now())
    sent.append(clock.now())


def test_a_new_budget_starts_full_and_lets_a_burst_go_at_once() -> None:
    # Given a fresh budget of 150 a minute with a burst of 10
    fresh = budget()
    # Then it holds 10, and 10 requests go without waiting
    assert fresh.tokens == 10
    for _ in range(10):
        assert fresh.wait_for_one(T0) == 0
        fresh.take(T0)
    # And the 11th waits for one token at 2.5 a second
    assert fresh.wait_for_one(T0) == pytest.approx(0.4)


def test_it_refills_at_rate_per_period() -> None:
    # Given an empty budget
    empty = budget(tokens=0)
    # When 2 seconds pass
    # Then 2 seconds at 150 a minute have refilled 5
    assert empty.wait_for_one(later(2)) == 0
    assert empty.tokens == pytest.approx(5)
    assert empty.at == later(2)


def test_it_never_holds_more_than_the_burst() -> None:
    # Given a budget half used, and a saved level above its burst
    used = budget()
    for _ in range(5):
        used.take(T0)
    over = budget(tokens=500)
    # When an hour passes
    used.wait_for_one(later(3600))
    # Then each holds the burst, no more
    assert used.tokens == 10
    assert over.tokens == 10


def test_wait_for_one_is_the_exact_seconds_to_the_next_token() -> None:
    # Given a budget of 6 a minute (one every 10 s), emptied and one over
    slow = RateBudget(6, 60, burst=2, tokens=None, at=T0)
    for _ in range(3):
        slow.take(T0)
    # Then the next request waits 20 s (to climb from -1 to 1), then 15 s five seconds later
    assert slow.wait_for_one(T0) == pytest.approx(20)
    assert slow.wait_for_one(later(5)) == pytest.approx(15)
    # And once that time has passed, none
    assert slow.wait_for_one(later(20)) == 0


def test_the_clock_going_back_refills_nothing() -> None:
    # Given an empty budget last seen at T0
    empty = budget(tokens=0)
    # When asked at an earlier time
    # Then it waits as at T0, and keeps T0
    assert empty.wait_for_one(later(-30)) == pytest.approx(0.4)
    assert empty.at == T0


def test_a_429_empties_whatever_was_left() -> None:
    # Given a full budget, and one already in debt
    full = budget()
    owing = budget(tokens=-3)
    # When TimeZest answers 429
    full.empty(T0)
    owing.empty(T0)
    # Then the full one has nothing and waits for a token; the debt stays
    assert full.tokens == 0
    assert full.wait_for_one(T0) == pytest.approx(0.4)
    assert owing.tokens == -3


@pytest.mark.parametrize(("rate", "per", "burst"), [(0, 60, 10), (150, 0, 10), (150, 60, 0), (150, -1, 10)])
def test_a_budget_needs_a_positive_rate_period_and_burst(rate: int, per: float, burst: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        RateBudget(rate, per, burst=burst, tokens=None, at=T0)


@settings(max_examples=200, deadline=None)
@given(
    rate=st.integers(1, 30),
    burst=st.integers(1, 10),
    steps=st.lists(
        st.tuples(st.floats(0, 90, allow_nan=False), st.integers(1, 40), st.booleans()), min_size=1, max_size=12
    ),
)
def test_no_sequence_of_requests_exceeds_burst_plus_rate_in_any_minute(
    rate: int, burst: int, steps: list[tuple[float, int, bool]]
) -> None:
    # Given a budget driven by a manual clock
    clock = ManualClock(T0)
    bucket = RateBudget(rate, 60, burst=burst, tokens=None, at=clock.now())
    sent: list[datetime] = []
    # When, after idle gaps, bursts of requests go (each waiting what it is told), some met by a 429
    for idle, requests, limited in steps:
        clock.advance(timedelta(seconds=idle))
        for _ in range(requests):
            send(bucket, clock, sent)
        if limited:
            bucket.empty(clock.now())
    # Then no 60 seconds saw more than burst + rate
    assert most_in_any_window(sent) <= burst + rate


def run(bucket: RateBudget, clock: ManualClock, requests: int, sent: list[datetime]) -> PollState:
    for _ in range(requests):
        send(bucket, clock, sent)
    return PollState(since=0, tokens=bucket.tokens, tokens_at=bucket.at, version=1)


def test_the_saved_level_carries_the_limit_across_two_runs() -> None:
    # Given a run that used its whole budget and saved where the bucket stood
    clock = ManualClock(T0)
    sent: list[datetime] = []
    saved = run(budget(at=clock.now()), clock, 100, sent)
    restored_state = PollState.model_validate_json(saved.model_dump_json())
    # When the next run starts at once from that saved level
    assert restored_state.tokens is not None and restored_state.tokens_at is not None
    second = budget(tokens=restored_state.tokens, at=restored_state.tokens_at)
    assert second.wait_for_one(clock.now()) > 0  # it inherits an empty bucket, not a fresh burst
    run(second, clock, 100, sent)
    # Then the two runs together kept the limit
    assert len(sent) == 200
    assert most_in_any_window(sent) <= 10 + 150


def test_a_run_that_forgot_the_level_would_break_the_limit() -> None:
    # Given the same two runs, the second starting from a fresh (full) bucket instead of the saved level
    clock = ManualClock(T0)
    sent: list[datetime] = []
    run(budget(at=clock.now()), clock, 155, sent)
    run(budget(at=clock.now()), clock, 10, sent)
    # Then the minute holds more than TimeZest allows: the saved level is what keeps it
    assert most_in_any_window(sent) > 10 + 150
