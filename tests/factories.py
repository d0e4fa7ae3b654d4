"""Builders of valid domain objects; each test states only what matters to it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from appointments.domain import lifecycle
from appointments.domain.appointment_types import AppointmentTypeCatalog
from appointments.domain.ids import new_ulid
from appointments.domain.lifecycle import AppointmentDraft
from appointments.domain.model import Actor, Appointment, Customer, ExternalRef, Status, Technician, TicketRef

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
START = NOW + timedelta(hours=6)
OPS = Actor.ops("arn:aws:iam::123456789012:user/dispatcher")
CATALOG = AppointmentTypeCatalog.with_overrides()

DANA = Customer(name="Dana Reyes", email="dana@example.com", phone="+1 212 555 0100", company="Reyes Dental")
SAM = Technician(id="t-17", name="Sam Okafor", email="sam@msp.example")
ALEX = Technician(id="t-23", name="Alex Kim", email="alex@msp.example")


def a_draft(**overrides: Any) -> AppointmentDraft:
    fields: dict[str, Any] = {
        "status": Status.SCHEDULED,
        "start": START,
        "end": START + timedelta(minutes=30),
        "timezone": "America/New_York",
        "type": "remote_call_in",
        "customer": DANA,
        "technicians": (SAM,),
        "ticket": TicketRef(system="autotask", id="48213", number="T20261123.0004"),
        "external_refs": (ExternalRef(system="generic", id="stf-981"),),
    }
    fields.update(overrides)
    return AppointmentDraft(**fields)


def an_appointment(status: Status = Status.SCHEDULED, *, at: datetime = NOW, **overrides: Any) -> Appointment:
    """A stored-looking appointment in ``status``; fields in ``overrides`` replace the draft's or the model's."""
    draft_fields = {k: v for k, v in overrides.items() if k in AppointmentDraft.model_fields}
    model_fields = {k: v for k, v in overrides.items() if k not in AppointmentDraft.model_fields}
    created = lifecycle.create(
        a_draft(**draft_fields), appointment_id=new_ulid(at), catalog=CATALOG, at=at, actor=OPS
    ).after
    return created.model_copy(update={"status": status, **model_fields})
