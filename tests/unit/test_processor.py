"""The event processor: once each, in order per entity, never failing on a refused transition."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from appointments.adapters.clock import ManualClock
from appointments.domain import lifecycle
from appointments.domain.events import BookingDetails, CanonicalEvent, EventKind
from appointments.domain.history import Action, Record
from appointments.domain.model import Actor, CancelledBy, Customer, ExternalRef, Status, TicketRef
from appointments.domain.outbox import MailKind
from appointments.services.processor import EventProcessor, SourcePolicy
from appointments.sources.base import WebhookRequest
from appointments.sources.generic import GenericSource
from tests.factories import CATALOG
from tests.fakes import ConflictingStore, InMemoryAppointmentStore
from tests.signing import sample

NOW = datetime(2026, 11, 23, 10, 1, tzinfo=UTC)
OPS_MAIL = "ops@msp.example"


def generic_event(name: str, **changes: Any) -> CanonicalEvent:
    document = json.loads(sample(f"generic/{name}.json"))
    appointment_changes = changes.pop("appointment", {})
    document.update(changes)
    document["appointment"].update(appointment_changes)
    [event] = GenericSource().parse(WebhookRequest(headers={}, body=json.dumps(document).encode()))
    return event


@pytest.fixture
def store() -> InMemoryAppointmentStore:
    return InMemoryAppointmentStore()


def processor(store: InMemoryAppointmentStore, **policy: Any) -> EventProcessor:
    return EventProcessor(store, ManualClock(NOW), CATALOG, SourcePolicy(ops_alert_email=OPS_MAIL, **policy))


def only(store: InMemoryAppointmentStore) -> str:
    [appointment_id] = store.appointments
    return appointment_id


def test_a_booking_creates_an_appointment_linked_to_its_ref_and_ticket(store: InMemoryAppointmentStore) -> None:
    processor(store).apply(generic_event("appointment_scheduled"))
    appointment_id = only(store)
    record = store.load(appointment_id)
    assert record.appointment.status is Status.SCHEDULED
    assert store.find_by_external_ref(ExternalRef(system="generic", id="stf-981")) == appointment_id
    assert store.find_by_ticket(TicketRef(system="autotask", id="48213")) == (appointment_id,)
    [entry] = record.history
    assert (entry.action, entry.actor.id, entry.detail["delivery_id"]) == (
        Action.CREATE,
        "generic",
        "evt_01JDQ3F8ZB6W2Y1N7T5K4M9H2C",
    )
    assert record.mails == ()  # the booking page sends its own confirmation unless configured otherwise


def test_three_deliveries_make_one_appointment_and_one_mail(store: InMemoryAppointmentStore) -> None:
    apply = processor(store, customer_mail_sources=frozenset({"generic"})).apply
    for _ in range(3):
        apply(generic_event("appointment_scheduled"))
    record = store.load(only(store))
    assert [m.kind for m in record.mails] == [MailKind.CONFIRMATION]
    assert [e.action for e in record.history] == [Action.CREATE]
    assert store.commits == 1


def test_a_reschedule_moves_the_same_appointment(store: InMemoryAppointmentStore) -> None:
    apply = processor(store).apply
    apply(generic_event("appointment_scheduled"))
    apply(generic_event("appointment_rescheduled"))
    appointment = store.get(only(store))
    assert appointment.start == datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    assert [e.action for e in store.load(appointment.id).history] == [Action.CREATE, Action.RESCHEDULE]


def test_an_older_event_still_sets_the_facts_it_is_newest_for_and_cancelled_stays_terminal(
    store: InMemoryAppointmentStore,
) -> None:
    # Given a booking, then its cancellation at 12:00
    apply = processor(store, customer_mail_sources=frozenset({"generic"})).apply
    apply(generic_event("appointment_scheduled"))
    apply(generic_event("appointment_cancelled"))
    mails = len(store.load(only(store)).mails)
    # When a reschedule from 11:00 arrives late
    apply(generic_event("appointment_rescheduled"))
    # Then the time it set at 11:00 is kept, the status stays cancelled, and history says it was superseded
    record = store.load(only(store))
    assert record.appointment.status is Status.CANCELLED
    assert record.appointment.start == datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    assert [e.action for e in record.history] == [Action.CREATE, Action.CANCEL, Record.EVENT_SUPERSEDED]
    late = record.history[-1]
    assert late.detail["delivery_id"] == "evt_01JDQ3H5Q7T9V1X3Z5B7D9F1H3"
    assert "time" in late.detail["set"] and late.detail["superseded"] == ["status"]
    assert len(record.mails) == mails  # nobody is told about a cancelled appointment's late news


def test_a_redelivered_superseded_event_is_not_recorded_twice(store: InMemoryAppointmentStore) -> None:
    apply = processor(store).apply
    apply(generic_event("appointment_scheduled"))
    apply(generic_event("appointment_cancelled"))
    apply(generic_event("appointment_rescheduled"))
    apply(generic_event("appointment_rescheduled"))
    assert len(store.load(only(store)).history) == 3


def test_a_second_cancellation_is_recorded_as_superseded(store: InMemoryAppointmentStore) -> None:
    apply = processor(store).apply
    apply(generic_event("appointment_scheduled"))
    apply(generic_event("appointment_cancelled"))
    apply(generic_event("appointment_cancelled", event_id="evt_again", occurred_at="2026-11-23T12:30:00Z"))
    record = store.load(only(store))
    assert record.history[-1].action is Record.EVENT_SUPERSEDED
    assert record.history[-1].detail["reason"] == "the appointment is cancelled"


def test_a_cancel_that_overtakes_its_booking_waits_and_the_booking_lands_cancelled(
    store: InMemoryAppointmentStore,
) -> None:
    # Given a cancellation for a booking we have not seen
    apply = processor(store, customer_mail_sources=frozenset({"generic"})).apply
    apply(generic_event("appointment_cancelled"))
    assert store.appointments == {}
    assert [e.delivery_id for e in store.waiting("ref#generic#stf-981")] == ["evt_01JDQ3KD2W4Y6A8C0E2G4J6M8P"]
    # When the booking arrives
    apply(generic_event("appointment_scheduled"))
    # Then it lands cancelled, in one commit, with one entry per event and the cancellation mail only
    record = store.load(only(store))
    assert record.appointment.status is Status.CANCELLED
    assert [e.action for e in record.history] == [Action.CREATE, Action.CANCEL]
    assert [m.kind for m in record.mails] == [MailKind.CANCELLED]
    assert store.waiting("ref#generic#stf-981") == ()
    assert store.commits == 1


def test_an_assignment_replaces_the_technicians(store: InMemoryAppointmentStore) -> None:
    apply = processor(store).apply
    apply(generic_event("appointment_scheduled_unassigned"))
    apply(generic_event("appointment_assigned"))
    assert [t.id for t in store.get(only(store)).technicians] == ["t-23"]


def test_a_cancellation_says_who_cancelled(store: InMemoryAppointmentStore) -> None:
    apply = processor(store, customer_mail_sources=frozenset({"generic"})).apply
    apply(generic_event("appointment_scheduled"))
    apply(generic_event("appointment_cancelled"))
    record = store.load(only(store))
    cancellation = record.appointment.cancellation
    assert cancellation is not None
    assert (cancellation.by, cancellation.reason) == (CancelledBy.CUSTOMER, "no longer needed")
    assert {m.kind for m in record.mails} == {MailKind.CONFIRMATION, MailKind.CANCELLED}


def _vendor_booking(vendor_type: str | None, *, source: str = "calcom", uid: str = "uid-1") -> CanonicalEvent:
    return CanonicalEvent(
        source=source,
        delivery_id=f"BOOKING_CREATED:{uid}",
        kind=EventKind.SCHEDULED,
        occurred_at=NOW,
        entity=f"{source}:{uid}",
        external_ref=ExternalRef(system=source, id=uid),
        booking=BookingDetails(
            start=NOW + timedelta(hours=5),
            end=NOW + timedelta(hours=5, minutes=30),
            timezone="Europe/London",
            vendor_type=vendor_type,
            customer=Customer(name="Ana Silva", email="ana@example.com"),
        ),
    )


def test_a_mapped_vendor_type_becomes_our_type(store: InMemoryAppointmentStore) -> None:
    processor(store, type_map={"calcom": {"remote-30": "remote_session"}}).apply(_vendor_booking("remote-30"))
    assert store.get(only(store)).type == "remote_session"


def test_an_unmapped_vendor_type_is_kept_under_the_default_flagged_and_alerted(store: InMemoryAppointmentStore) -> None:
    processor(store, default_types={"calcom": "remote_we_call"}).apply(_vendor_booking("mystery-15"))
    record = store.load(only(store))
    assert record.appointment.type == "remote_we_call"
    assert [e.action for e in record.history] == [Action.CREATE, Record.TYPE_UNMAPPED]
    assert record.history[1].detail == {"vendor_type": "mystery-15", "kept_as": "remote_we_call"}
    [alert] = record.mails
    assert (alert.kind, alert.to) == (MailKind.OPS_ALERT, (OPS_MAIL,))


def _ticket_event(kind: EventKind, **fields: Any) -> CanonicalEvent:
    return CanonicalEvent(
        source="autotask",
        delivery_id=f"guid:48213:7:{kind}",
        kind=kind,
        occurred_at=NOW,
        entity="autotask:ticket:48213",
        ticket=TicketRef(system="autotask", id="48213"),
        **fields,
    )


def test_a_completed_ticket_cancels_what_is_ahead_and_completes_what_has_started(
    store: InMemoryAppointmentStore,
) -> None:
    apply = processor(store).apply
    apply(generic_event("appointment_scheduled"))  # 15:00, ahead of the clock
    apply(
        generic_event(
            "appointment_scheduled",
            event_id="evt_past",
            appointment={"external_id": "stf-900", "start": "2026-11-23T09:00:00Z", "end": "2026-11-23T09:45:00Z"},
        )
    )
    apply(_ticket_event(EventKind.TICKET_COMPLETED))
    by_ref = {a.external_refs[0].id: a for a in store.appointments.values()}
    assert by_ref["stf-981"].status is Status.CANCELLED
    assert by_ref["stf-900"].status is Status.COMPLETED
    assert by_ref["stf-900"].completion is not None and by_ref["stf-900"].completion.duration_minutes == 45


def test_a_ticket_assignment_assigns_its_open_appointments(store: InMemoryAppointmentStore) -> None:
    from tests.factories import ALEX

    apply = processor(store).apply
    apply(generic_event("appointment_scheduled"))
    apply(_ticket_event(EventKind.TICKET_ASSIGNED, technicians=(ALEX,)))
    assert [t.id for t in store.get(only(store)).technicians] == [ALEX.id]


def test_the_first_half_of_a_reschedule_is_never_a_cancellation(store: InMemoryAppointmentStore) -> None:
    apply = processor(store).apply
    apply(generic_event("appointment_scheduled"))
    superseded = generic_event("appointment_cancelled", event_id="evt_half").model_copy(
        update={"kind": EventKind.SUPERSEDED, "cancelled_by": None}
    )
    apply(superseded)
    record = store.load(only(store))
    assert record.appointment.status is Status.SCHEDULED
    assert record.history[-1].action is Record.EVENT_IGNORED


def test_half_of_a_reschedule_of_a_booking_never_seen_changes_nothing_and_waits_for_the_history(
    store: InMemoryAppointmentStore,
) -> None:
    superseded = generic_event("appointment_cancelled", event_id="evt_half").model_copy(
        update={"kind": EventKind.SUPERSEDED, "cancelled_by": None}
    )
    processor(store).apply(superseded)
    assert store.appointments == {}
    assert len(store.waiting("ref#generic#stf-981")) == 1


def test_an_assignment_repeating_the_technicians_is_ignored_without_a_mail(store: InMemoryAppointmentStore) -> None:
    # Given an appointment assigned to Alex, whose customer is mailed about changes
    from tests.factories import ALEX

    apply = processor(store, customer_mail_sources=frozenset({"generic", "autotask"})).apply
    apply(generic_event("appointment_scheduled"))
    apply(_ticket_event(EventKind.TICKET_ASSIGNED, technicians=(ALEX,)))
    assert [m.kind for m in store.load(only(store)).mails][-1] is MailKind.REASSIGNED
    mails_after_the_first = len(store.load(only(store)).mails)

    # When the PSA repeats the assignment, with the technician known by another name
    repeat = _ticket_event(EventKind.TICKET_ASSIGNED, technicians=(ALEX.model_copy(update={"name": "A. Kim"}),))
    apply(repeat.model_copy(update={"delivery_id": "repeat", "occurred_at": repeat.occurred_at + timedelta(minutes=5)}))

    # Then nothing changes and nobody is mailed again
    record = store.load(only(store))
    assert [t.name for t in record.appointment.technicians] == [ALEX.name]
    assert record.history[-1].action is Record.EVENT_IGNORED
    assert record.history[-1].detail["reason"] == "the appointment is already as the event says"
    assert len(record.mails) == mails_after_the_first


def test_a_version_conflict_is_reread_and_applied_once() -> None:
    store = ConflictingStore(conflicts=1)
    apply = processor(store).apply
    apply(generic_event("appointment_scheduled"))
    apply(generic_event("appointment_assigned", appointment={"external_id": "stf-981"}))
    assert store.conflicts == 0
    assert [e.action for e in store.load(only(store)).history] == [Action.CREATE, Action.REASSIGN]


def test_a_booking_arms_the_timed_rules_and_a_cancellation_disarms_them(store: InMemoryAppointmentStore) -> None:
    apply = processor(store).apply
    apply(generic_event("appointment_scheduled"))
    booked = store.get(only(store))
    # Booked at 10:01 for 15:00 the same day: the 24 h reminder time has passed, so the rules look at once.
    assert booked.next_due_at == booked.start - timedelta(hours=24)
    apply(generic_event("appointment_cancelled"))
    assert store.get(only(store)).next_due_at is None


def test_a_vendor_retry_never_undoes_a_dispatchers_reassign(store: InMemoryAppointmentStore) -> None:
    # Given a booking assigned by the vendor at 10:00, then reassigned by a dispatcher at 10:01
    from appointments.domain.coupons import CouponPolicy
    from appointments.services.back_office import BackOffice, BackOfficePolicy, Reassign
    from tests.factories import ALEX, OPS

    apply = processor(store).apply
    apply(generic_event("appointment_scheduled"))
    office = BackOffice(store, ManualClock(NOW), CATALOG, BackOfficePolicy(coupons=CouponPolicy()))
    office.act(only(store), Reassign(technicians=(ALEX,)), actor=OPS)
    # When the vendor's assignment from 10:00:30 arrives late (a retry)
    apply(
        generic_event(
            "appointment_assigned", occurred_at="2026-11-23T10:00:30Z", appointment={"external_id": "stf-981"}
        )
    )
    # Then the dispatcher's choice stands and the retry is recorded as superseded
    record = store.load(only(store))
    assert [t.id for t in record.appointment.technicians] == [ALEX.id]
    assert record.history[-1].action is Record.EVENT_SUPERSEDED
    assert record.history[-1].detail["superseded"] == ["technicians"]


def test_an_assignment_made_before_an_auto_cancel_but_delivered_after_it_alerts_ops(
    store: InMemoryAppointmentStore,
) -> None:
    # Given an unassigned booking that the rules cancelled at 10:01
    from appointments.domain import lifecycle
    from appointments.domain.model import Actor

    apply = processor(store).apply
    apply(generic_event("appointment_scheduled_unassigned"))
    appointment = store.get(only(store))
    store.commit(
        lifecycle.cancel(appointment, by=CancelledBy.SYSTEM, reason="unassigned", at=NOW, actor=Actor.system())
    )
    # When an assignment made at 10:00:40 is delivered after the cancel
    apply(generic_event("appointment_assigned", occurred_at="2026-11-23T10:00:40Z"))
    # Then the appointment stays cancelled, history says superseded, and ops are told
    record = store.load(only(store))
    assert record.appointment.status is Status.CANCELLED
    assert record.appointment.technicians == ()  # never cancelled with a technician
    assert record.history[-1].action is Record.EVENT_SUPERSEDED
    assert record.history[-1].detail["superseded"] == ["technicians"]
    [alert] = [m for m in record.mails if m.kind is MailKind.OPS_ALERT]
    assert alert.context["technicians"] == ["t-23"]
    assert "auto-cancel" in alert.context["subject"]


def test_a_ticket_event_that_overtakes_the_booking_naming_its_ticket_waits_for_it(
    store: InMemoryAppointmentStore,
) -> None:
    # Given the PSA's assignment of ticket 48213 before any booking names the ticket
    from tests.factories import ALEX

    apply = processor(store).apply
    apply(_ticket_event(EventKind.TICKET_ASSIGNED, technicians=(ALEX,)))
    assert store.appointments == {}
    # When the booking naming ticket 48213 arrives (booked at 10:00, assigned in the PSA at 10:01)
    apply(generic_event("appointment_scheduled"))
    # Then it lands assigned as the PSA says, in the booking's own commit
    record = store.load(only(store))
    assert [t.id for t in record.appointment.technicians] == [ALEX.id]
    assert [e.action for e in record.history] == [Action.CREATE, Action.REASSIGN]
    assert store.commits == 1


def test_two_bookings_found_to_be_one_reschedule_chain_become_one_appointment(
    store: InMemoryAppointmentStore,
) -> None:
    # Given Cal.com's second reschedule (uid-3 replacing uid-2) and the original booking (uid-1), each alone
    def calcom(kind: EventKind, uid: str, previous: str | None, hour: int) -> CanonicalEvent:
        booking = _vendor_booking(None, uid=uid).booking
        assert booking is not None
        start = NOW + timedelta(days=1, hours=hour)
        return CanonicalEvent(
            source="calcom",
            delivery_id=f"{kind}:{uid}",
            kind=kind,
            occurred_at=NOW + timedelta(minutes=hour),
            entity=f"calcom:{previous or uid}",
            external_ref=ExternalRef(system="calcom", id=uid),
            previous_ref=ExternalRef(system="calcom", id=previous) if previous else None,
            booking=booking.model_copy(update={"start": start, "end": start + timedelta(minutes=30)}),
        )

    apply = processor(store).apply
    apply(calcom(EventKind.RESCHEDULED, "uid-3", "uid-2", hour=3))
    apply(calcom(EventKind.SCHEDULED, "uid-1", None, hour=1))
    assert len(store.appointments) == 2
    # When the first reschedule (uid-2 replacing uid-1) links them
    apply(calcom(EventKind.RESCHEDULED, "uid-2", "uid-1", hour=2))
    # Then one appointment holds all three ids, at the newest time, with a merge in its history
    [appointment] = store.appointments.values()
    assert {r.id for r in appointment.external_refs} == {"uid-1", "uid-2", "uid-3"}
    assert appointment.start == NOW + timedelta(days=1, hours=3)
    assert {store.find_by_external_ref(r) for r in appointment.external_refs} == {appointment.id}
    assert Record.MERGED in [e.action for e in store.load(appointment.id).history]


def test_a_vendor_reschedule_replaces_the_links_with_the_new_bookings(store: InMemoryAppointmentStore) -> None:
    # Given a Calendly booking whose links point at its invitee, then its reschedule (a new invitee)
    from appointments.domain.model import Links

    booked = _vendor_booking(None, source="calendly", uid="inv-1")
    assert booked.booking is not None
    details = booked.booking.model_copy(
        update={"links": Links(reschedule="https://x/r/inv-1", cancel="https://x/c/inv-1")}
    )
    first = booked.model_copy(update={"booking": details})
    moved = first.model_copy(
        update={
            "delivery_id": "created:inv-2",
            "kind": EventKind.RESCHEDULED,
            "occurred_at": NOW + timedelta(minutes=5),
            "external_ref": ExternalRef(system="calendly", id="inv-2"),
            "previous_ref": ExternalRef(system="calendly", id="inv-1"),
            "booking": details.model_copy(
                update={"links": Links(reschedule="https://x/r/inv-2", cancel="https://x/c/inv-2")}
            ),
        }
    )
    apply = processor(store).apply
    apply(first)
    apply(moved)
    # Then the appointment's links are the new booking's: the old ones no longer work
    assert store.get(only(store)).links == Links(reschedule="https://x/r/inv-2", cancel="https://x/c/inv-2")


# --- the PSA write-back's own status change coming back as the PSA's ticket webhook

NO_SHOW_AT = datetime(2026, 11, 23, 15, 10, tzinfo=UTC)  # the sample booking starts at 15:00


def _marked_no_show_and_written_back(store: InMemoryAppointmentStore, *, written: str | None = "autotask") -> str:
    """The sample booking, marked a no-show by the rules at 15:10 and (unless ``written`` is None) its ticket
    set to NO-SHOW by the write-back in ``written`` a few seconds later, as the write-back records it."""
    processor(store, customer_mail_sources=frozenset({"generic", "autotask"})).apply(
        generic_event("appointment_scheduled")
    )
    appointment_id = only(store)
    store.commit(lifecycle.mark_no_show(store.get(appointment_id), at=NO_SHOW_AT, actor=Actor.system()))
    if written is not None:
        at = NO_SHOW_AT + timedelta(seconds=5)
        change = lifecycle.record(
            store.get(appointment_id),
            Record.PSA_WRITTEN,
            at=at,
            actor=Actor.system(),
            detail={"system": written, "ticket": "48213", "status": "NO-SHOW", "note": True},
        )
        after = change.after.model_copy(update={"psa_statuses": {written: "NO-SHOW"}})
        store.commit(dataclasses.replace(change, after=after))
    return appointment_id


def _later_processor(store: InMemoryAppointmentStore) -> EventProcessor:
    policy = SourcePolicy(ops_alert_email=OPS_MAIL, customer_mail_sources=frozenset({"generic", "autotask"}))
    return EventProcessor(store, ManualClock(NO_SHOW_AT + timedelta(minutes=1)), CATALOG, policy)


def _psa_says(kind: EventKind, after: timedelta, **fields: Any) -> CanonicalEvent:
    """Autotask's ticket webhook, ``after`` the rules' no-show."""
    return _ticket_event(kind, **fields).model_copy(update={"occurred_at": NO_SHOW_AT + after})


# A PSA may report the ticket's update as its (unchanged) resource: nothing new either.
@pytest.mark.parametrize("kind", [EventKind.TICKET_NO_SHOW, EventKind.TICKET_ASSIGNED])
def test_our_own_ticket_status_coming_back_is_recorded_as_an_echo_once(
    store: InMemoryAppointmentStore, kind: EventKind
) -> None:
    # Given a no-show the rules marked and the write-back set in Autotask
    appointment_id = _marked_no_show_and_written_back(store)
    before = store.load(appointment_id)
    technicians = before.appointment.technicians if kind is EventKind.TICKET_ASSIGNED else ()
    echo = _psa_says(kind, timedelta(seconds=6), technicians=technicians)

    # When Autotask's webhook about that status arrives, twice
    apply = _later_processor(store).apply
    apply(echo)
    apply(echo)

    # Then it is recorded once as our own change: no transition, no mail, no alert
    record = store.load(appointment_id)
    assert record.appointment.status is Status.NO_SHOW
    assert record.appointment.no_show_at is not None
    assert [e.action for e in record.history] == [*(e.action for e in before.history), Record.PSA_ECHO]
    entry = record.history[-1]
    assert (entry.from_status, entry.to_status, entry.actor.id) == (Status.NO_SHOW, Status.NO_SHOW, "autotask")
    assert entry.detail == {
        "event": echo.kind.value,
        "delivery_id": echo.delivery_id,
        "occurred_at": echo.occurred_at.isoformat(),
        "status": "NO-SHOW",
        "reason": "the ticket is as the write-back set it: our own change, already applied",
    }
    assert record.mails == before.mails
    assert [e.action for e in record.history].count(Action.NO_SHOW) == 1
    assert echo.delivery_id in record.appointment.recent_deliveries
    assert record.appointment.version == before.appointment.version + 1  # the redelivery wrote nothing


def test_a_ticket_event_that_changes_something_is_applied_after_a_write_back(store: InMemoryAppointmentStore) -> None:
    # Given a no-show written back to Autotask
    appointment_id = _marked_no_show_and_written_back(store)

    # When the technician then completes the ticket (the customer called after all)
    _later_processor(store).apply(_psa_says(EventKind.TICKET_COMPLETED, timedelta(minutes=30)))

    # Then that is news, applied as any ticket event is
    record = store.load(appointment_id)
    assert record.appointment.status is Status.COMPLETED
    assert record.history[-1].action is Action.COMPLETE


@pytest.mark.parametrize("written", [None, "connectwise"], ids=["no_write_back", "another_psa"])
def test_a_ticket_no_show_after_the_rules_no_show_is_ignored_without_a_second_transition_or_mail(
    store: InMemoryAppointmentStore, written: str | None
) -> None:
    # Given a no-show the rules marked, and no status written back to Autotask
    appointment_id = _marked_no_show_and_written_back(store, written=written)
    before = store.load(appointment_id)

    # When Autotask reports the ticket's NO-SHOW (a person set it there too)
    _later_processor(store).apply(_psa_says(EventKind.TICKET_NO_SHOW, timedelta(seconds=30)))

    # Then it is not our echo, but it changes nothing either: one no-show, no mail
    record = store.load(appointment_id)
    assert record.history[-1].action is Record.EVENT_IGNORED
    assert [e.action for e in record.history].count(Action.NO_SHOW) == 1
    assert record.appointment.status is Status.NO_SHOW
    assert record.mails == before.mails
