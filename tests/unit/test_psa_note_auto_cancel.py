"""The write-back's note for an auto-cancel, from the event as the relay publishes it (docs/events.md: the
``coupon`` of ``appointment.auto_cancel`` is the code). Found by tests/local/test_load_all_sources.py: every
auto-cancel on a ticket failed in ``psa_writeback`` (``'str' object has no attribute 'get'``) and was dropped."""

from __future__ import annotations

from appointments.domain.psa_writeback import AppointmentEvent, WritebackPolicy, ticket_write


def auto_cancel(coupon: object) -> AppointmentEvent:
    return AppointmentEvent.model_validate(
        {
            "event_id": "01KEVENT",
            "action": "auto_cancel",
            "at": "2026-11-23T17:00:00+00:00",
            "actor": {"kind": "system"},
            "detail": {"by": "system", "reason": "no technician", "coupon": coupon, "due_at": "2026-11-23T17:00:00Z"},
            "appointment": {
                "id": "01KAPPT",
                "status": "cancelled",
                "start": "2026-11-23T18:00:00+00:00",
                "end": "2026-11-23T18:30:00+00:00",
                "timezone": "America/New_York",
                "ticket": {"system": "autotask", "id": "48213"},
            },
        }
    )


def test_an_auto_cancel_with_its_coupon_code_is_noted_with_the_code() -> None:
    plan = ticket_write(auto_cancel("7KQ2-M9XD-4RTW-H3CP"), WritebackPolicy())
    assert not isinstance(plan, str)
    assert plan.text is not None
    assert "cancelled automatically" in plan.text
    assert "7KQ2-M9XD-4RTW-H3CP" in plan.text


def test_an_auto_cancel_without_a_coupon_is_noted_without_one() -> None:
    plan = ticket_write(auto_cancel(None), WritebackPolicy())
    assert not isinstance(plan, str)
    assert plan.text is not None
    assert "coupon" not in plan.text
