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
from tests.integration.conftest import CallCounter

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


def test_aws_calls_per_event(dynamo_store: DynamoAppointmentStore, aws_calls: CallCounter) -> None:
    # Given a processor on DynamoDB, and one generic appointment's events
    from appointments.adapters.clock import ManualClock
    from appointments.services.processor import EventProcessor, SourcePolicy
    from tests.convergence_check import PROCESSED_AT
    from tests.factories import CATALOG
    from tests.unit.test_processor import generic_event

    processor = EventProcessor(dynamo_store, ManualClock(PROCESSED_AT), CATALOG, SourcePolicy(ops_alert_email="o@x.io"))
    # When a booking naming a ticket arrives: the ref looked up, the waits for its id and ticket read before and
    # after the one transaction (so an event that began to wait meanwhile is not missed)
    aws_calls.reset()
    processor.apply(generic_event("appointment_scheduled"))
    assert aws_calls.calls == {"GetItem": 1, "Query": 4, "TransactWriteItems": 1}
    # When a later event for it arrives: the ref, the appointment, one transaction
    aws_calls.reset()
    processor.apply(generic_event("appointment_cancelled"))
    assert aws_calls.calls == {"GetItem": 2, "TransactWriteItems": 1}
    # When an event overtakes its booking: the ref looked up, the event kept, the ref looked up again
    aws_calls.reset()
    processor.apply(generic_event("appointment_cancelled", appointment={"external_id": "stf-new"}))
    assert aws_calls.calls == {"GetItem": 2, "PutItem": 1}
