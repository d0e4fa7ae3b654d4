"""Convergence, on the in-memory store: any delivery order of any source's events ends in the oracle's state."""

from __future__ import annotations

import itertools
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.convergence_check import deliver_and_check
from tests.event_streams import deliveries, streams
from tests.fakes import InMemoryAppointmentStore

EXAMPLES = int(os.environ.get("CONVERGENCE_EXAMPLES", "400"))
_keys = itertools.count()


@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_delivery_order_with_duplicates_converges_on_the_newest_news_per_fact(data: st.DataObject) -> None:
    # Given one appointment's events from some source
    events = data.draw(streams(f"u{next(_keys)}"))
    # When they arrive in any order, some twice
    delivered = data.draw(deliveries(events))
    # Then the appointment is what the set of events says, and nothing is lost or doubled
    deliver_and_check(InMemoryAppointmentStore(), delivered)
