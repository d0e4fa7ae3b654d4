"""Feed a delivery order through the real processor and hold the outcome to the oracle."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from appointments.adapters.clock import ManualClock
from appointments.domain.events import wait_key_for_ref
from appointments.services.processor import EventProcessor, SourcePolicy
from tests.convergence_oracle import BOOKINGS, Expected, expected
from tests.factories import CATALOG

if TYPE_CHECKING:
    from appointments.domain.events import CanonicalEvent
    from appointments.ports import AppointmentStore

PROCESSED_AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def deliver_and_check(store: AppointmentStore, delivered: list[CanonicalEvent]) -> None:
    """Every event applied without an error, one appointment for all its booking ids, the oracle's state."""
    processor = EventProcessor(
        store,
        ManualClock(PROCESSED_AT),
        CATALOG,
        SourcePolicy(ops_alert_email="ops@msp.example", customer_mail_sources=frozenset({"generic"})),
    )
    for event in delivered:
        processor.apply(event)
    booked = {ref for e in delivered if e.kind in BOOKINGS for ref in (e.external_ref, e.previous_ref) if ref}
    holders = {store.find_by_external_ref(ref) for ref in booked}
    assert len(holders) == 1 and None not in holders, f"booking ids held by {holders}"
    [appointment_id] = holders
    assert appointment_id is not None
    record = store.load(appointment_id)
    assert Expected.of(record.appointment) == expected(delivered)
    assert all(store.waiting(wait_key_for_ref(ref)) == () for ref in booked), "an event still waits"
    applied = {entry.detail.get("delivery_id") for entry in record.history}
    assert {e.delivery_id for e in delivered} <= applied, "an event is missing from history"
    deliveries = [entry.detail["delivery_id"] for entry in record.history if "delivery_id" in entry.detail]
    assert len(deliveries) == len(set(deliveries)), "an event is recorded twice"
