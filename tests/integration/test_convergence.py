"""Convergence through the real processor and the DynamoDB store under moto: any delivery order of any
source's events, with duplicates, ends in the state docs/convergence.md defines, with nothing left over."""

from __future__ import annotations

import itertools
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appointments.adapters.dynamo_store import DynamoAppointmentStore
from tests.convergence_check import deliver_and_check
from tests.event_streams import deliveries, streams

# Each example is a few dozen DynamoDB calls under moto; CONVERGENCE_EXAMPLES explores further.
EXAMPLES = int(os.environ.get("CONVERGENCE_EXAMPLES", "60"))
_keys = itertools.count()


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_any_delivery_order_converges_in_dynamodb(dynamo_store: DynamoAppointmentStore, data: st.DataObject) -> None:
    # Given one appointment's events from some source (ids unique to this example: the table is shared)
    events = data.draw(streams(f"i{next(_keys)}"))
    # When they arrive in any order, some twice
    delivered = data.draw(deliveries(events))
    # Then the appointment is what the set of events says, nothing waits, nothing is lost or doubled
    deliver_and_check(dynamo_store, delivered)
