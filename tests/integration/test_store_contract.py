"""The AppointmentStore contract, run on the in-memory fake and on DynamoDB under moto."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from appointments.domain import lifecycle
from appointments.domain.history import Action
from appointments.domain.ids import new_ulid
from appointments.domain.model import CancelledBy, Coupon, ExternalRef, Status, TicketRef
from appointments.domain.outbox import MailKind, MailStatus, OutboxMail
from appointments.errors import (
    AlreadyExists,
    AppointmentNotFound,
    CouponCodeTaken,
    ExternalRefTaken,
    InvalidInput,
    VersionConflict,
)
from appointments.ports import DueItem, DueKind
from tests.factories import ALEX, CATALOG, NOW, OPS, START, a_draft

if TYPE_CHECKING:
    from appointments.domain.lifecycle import AppointmentDraft, Change
    from appointments.ports import AppointmentStore

DANA = ("dana@example.com",)


def created(draft: AppointmentDraft | None = None, *, at=NOW) -> Change:
    return lifecycle.create(draft or a_draft(), appointment_id=new_ulid(at), catalog=CATALOG, at=at, actor=OPS)


def with_mail(change: Change, kind: MailKind = MailKind.CONFIRMATION) -> Change:
    return change.with_mails(OutboxMail.for_change(kind, change.after, to=DANA, at=change.after.updated_at, context={}))


def test_a_created_appointment_reads_back_whole(store: AppointmentStore) -> None:
    change = with_mail(created())
    store.commit(change)
    assert store.get(change.after.id) == change.after
    record = store.load(change.after.id)
    assert record.appointment == change.after
    assert [e.action for e in record.history] == [Action.CREATE]
    assert [(m.kind, m.status) for m in record.mails] == [(MailKind.CONFIRMATION, MailStatus.PENDING)]


def test_an_unknown_id_is_not_found(store: AppointmentStore) -> None:
    with pytest.raises(AppointmentNotFound):
        store.get("01JDOESNOTEXIST0000000000")
    with pytest.raises(AppointmentNotFound):
        store.load("01JDOESNOTEXIST0000000000")


def test_updates_append_history_in_order(store: AppointmentStore) -> None:
    first = created()
    store.commit(first)
    second = lifecycle.add_note(first.after, text="gate code 4411", at=NOW, actor=OPS)
    store.commit(second)
    third = lifecycle.reassign(second.after, (ALEX,), at=NOW, actor=OPS)
    store.commit(third)
    record = store.load(first.after.id)
    assert record.appointment.version == 3
    assert [e.action for e in record.history] == [Action.CREATE, Action.NOTE, Action.REASSIGN]


def test_two_writers_on_one_appointment_exactly_one_wins(store: AppointmentStore) -> None:
    # Given an appointment both writers read at version 1
    base = created()
    store.commit(base)
    cancel = lifecycle.cancel(base.after, by=CancelledBy.OPS, reason="no technician", at=NOW, actor=OPS)
    assign = lifecycle.reassign(base.after, (ALEX,), at=NOW, actor=OPS)
    cancel = with_mail(cancel, MailKind.CANCELLED)
    assign = with_mail(assign, MailKind.REASSIGNED)

    # When both commit
    store.commit(assign)
    with pytest.raises(VersionConflict) as raised:
        store.commit(cancel)

    # Then the first wins, and nothing of the loser is left: no state, no history entry, no mail
    assert raised.value.expected_version == 1
    record = store.load(base.after.id)
    assert record.appointment == assign.after
    assert [e.action for e in record.history] == [Action.CREATE, Action.REASSIGN]
    assert [m.kind for m in record.mails] == [MailKind.REASSIGNED]


def test_the_loser_rereads_and_decides_again(store: AppointmentStore) -> None:
    base = created()
    store.commit(base)
    store.commit(lifecycle.reassign(base.after, (ALEX,), at=NOW, actor=OPS))
    with pytest.raises(VersionConflict):
        store.commit(lifecycle.add_note(base.after, text="late", at=NOW, actor=OPS))
    fresh = store.get(base.after.id)
    store.commit(lifecycle.add_note(fresh, text="late", at=NOW, actor=OPS))
    assert store.get(base.after.id).version == 3


def test_an_update_of_a_missing_appointment_is_not_found(store: AppointmentStore) -> None:
    ghost = created().after
    with pytest.raises(AppointmentNotFound):
        store.commit(lifecycle.add_note(ghost, text="x", at=NOW, actor=OPS))


def test_creating_the_same_id_twice_is_refused(store: AppointmentStore) -> None:
    change = created()
    store.commit(change)
    with pytest.raises(AlreadyExists):
        store.commit(change)


def test_an_external_ref_belongs_to_the_first_writer(store: AppointmentStore) -> None:
    # Given two deliveries of one booking racing to create an appointment each
    first, second = created(), created()
    store.commit(first)

    # When the second commits, Then it is refused naming the holder, and leaves nothing behind
    with pytest.raises(ExternalRefTaken) as raised:
        store.commit(second)
    assert raised.value.appointment_id == first.after.id
    with pytest.raises(AppointmentNotFound):
        store.get(second.after.id)
    assert store.find_by_external_ref(ExternalRef(system="generic", id="stf-981")) == first.after.id


def test_a_reschedule_adds_the_new_ref_and_keeps_the_old(store: AppointmentStore) -> None:
    base = created(a_draft(external_refs=(ExternalRef(system="calcom", id="uid-1"),)))
    store.commit(base)
    new_ref = ExternalRef(system="calcom", id="uid-2")
    moved = lifecycle.reschedule(base.after, start=START + timedelta(days=1), at=NOW, actor=OPS)
    moved_with_ref = type(moved)(
        before=moved.before,
        after=moved.after.model_copy(update={"external_refs": (*moved.after.external_refs, new_ref)}),
        history=moved.history,
    )
    store.commit(moved_with_ref)
    assert store.find_by_external_ref(ExternalRef(system="calcom", id="uid-1")) == base.after.id
    assert store.find_by_external_ref(new_ref) == base.after.id
    assert store.find_by_external_ref(ExternalRef(system="calcom", id="uid-3")) is None


def test_a_ticket_lists_its_appointments_and_forgets_one_that_moves_away(store: AppointmentStore) -> None:
    ticket = TicketRef(system="autotask", id="48213")
    one, two = created(), created(a_draft(external_refs=()))
    store.commit(one)
    store.commit(two)
    assert set(store.find_by_ticket(ticket)) == {one.after.id, two.after.id}
    other = TicketRef(system="autotask", id="50000")
    move = lifecycle.add_note(two.after, text="moved to another ticket", at=NOW, actor=OPS)
    move = type(move)(before=move.before, after=move.after.model_copy(update={"ticket": other}), history=move.history)
    store.commit(move)
    assert store.find_by_ticket(ticket) == (one.after.id,)
    assert store.find_by_ticket(other) == (two.after.id,)


def _shard(store: AppointmentStore, appointment_id: str) -> int:
    from appointments.adapters.dynamo_store import shard_of

    return shard_of(appointment_id, 4)


def rules_due(store: AppointmentStore, shard: int, until: datetime) -> tuple[DueItem, ...]:
    return store.due(DueKind.APPOINTMENT, shard, until, limit=10).items


def test_the_due_index_holds_only_what_is_due(store: AppointmentStore) -> None:
    # Given one appointment with a check due at start - 3h and one with nothing to check
    due_at = START - timedelta(hours=3)
    armed = created()
    armed = type(armed)(
        before=None, after=armed.after.model_copy(update={"next_due_at": due_at}), history=armed.history
    )
    idle = created(a_draft(external_refs=()))
    store.commit(armed)
    store.commit(idle)
    shard = _shard(store, armed.after.id)

    # Then a sweep before the due time finds nothing, and one at the due time finds it
    assert rules_due(store, shard, due_at - timedelta(seconds=1)) == ()
    [item] = [i for i in rules_due(store, shard, due_at) if i.appointment_id == armed.after.id]
    assert (item.kind, item.due_at) == (DueKind.APPOINTMENT, due_at)
    assert all(i.appointment_id != idle.after.id for s in range(4) for i in rules_due(store, s, START))

    # When the appointment is cancelled (nothing left to check), Then it leaves the index
    store.commit(lifecycle.cancel(armed.after, by=CancelledBy.OPS, reason="x", at=NOW, actor=OPS))
    assert all(i.appointment_id != armed.after.id for i in rules_due(store, shard, START))


def test_a_pending_mail_is_due_until_one_sender_claims_and_marks_it_sent(store: AppointmentStore) -> None:
    change = with_mail(created())
    store.commit(change)
    [mail] = change.mails
    shard = _shard(store, change.after.id)
    [item] = store.due(DueKind.MAIL, shard, NOW, limit=10).items
    assert (item.kind, item.mail_key) == (DueKind.MAIL, mail.key)
    assert rules_due(store, shard, NOW + timedelta(days=1)) == ()  # mails never share the rules' shards

    # Two senders race for it: one claims it, the other gets nothing; the first marks it sent once
    lease = NOW + timedelta(seconds=60)
    claimed = store.claim_mail(change.after.id, mail.key, token="a", now=NOW, lease_until=lease)
    assert claimed is not None and (claimed.status, claimed.attempts) == (MailStatus.SENDING, 1)
    assert store.claim_mail(change.after.id, mail.key, token="b", now=NOW, lease_until=lease) is None
    assert [i.due_at for i in store.due(DueKind.MAIL, shard, lease, limit=10).items] == [lease]  # a crash is retried
    assert store.finish_mail(change.after.id, mail.key, token="b", at=NOW, message_id="m-1") is False
    assert store.finish_mail(change.after.id, mail.key, token="a", at=NOW + timedelta(seconds=2), message_id="m-1")
    assert (
        store.finish_mail(change.after.id, mail.key, token="a", at=NOW + timedelta(seconds=3), message_id="m-2")
        is False
    )
    assert store.due(DueKind.MAIL, shard, NOW + timedelta(days=1), limit=10).items == ()
    [sent] = store.load(change.after.id).mails
    assert (sent.status, sent.sent_at, sent.message_id) == (MailStatus.SENT, NOW + timedelta(seconds=2), "m-1")


def test_a_mail_is_recorded_once_per_key(store: AppointmentStore) -> None:
    base = created()
    store.commit(base)
    key = f"pre_notice#{base.after.start.isoformat()}"
    notice = OutboxMail.notice(MailKind.PRE_NOTICE, base.after, notice_key=key, to=DANA, at=NOW, context={})
    first = lifecycle.record_notice(base.after, Action.PRE_NOTICE, notice_key=notice.key, at=NOW).with_mails(notice)
    store.commit(first)
    again = lifecycle.record_notice(first.after, Action.PRE_NOTICE, notice_key=notice.key, at=NOW).with_mails(notice)
    with pytest.raises(AlreadyExists):
        store.commit(again)
    record = store.load(base.after.id)
    assert record.appointment.version == 2
    assert len(record.mails) == 1


def test_listing_pages_through_days_in_start_order(store: AppointmentStore) -> None:
    # Given five appointments over three days, and one outside the range
    starts = [START + timedelta(days=d, hours=h) for d, h in [(0, 0), (0, 2), (1, 1), (2, 0), (2, 3)]]
    ids = []
    for start in [*starts, START + timedelta(days=9)]:
        change = created(a_draft(start=start, end=start + timedelta(minutes=30), external_refs=(), ticket=None))
        store.commit(change)
        ids.append(change.after.id)

    # When listed two at a time over the three days
    seen, cursor, pages = [], None, 0
    while True:
        page = store.list_between(START, START + timedelta(days=3), 2, cursor)
        seen += [a.id for a in page.items]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
        assert pages < 10

    # Then each appears once, by start time, and the one outside is left out
    assert seen == ids[:5]


def test_listing_refuses_a_cursor_it_did_not_make(store: AppointmentStore) -> None:
    with pytest.raises(InvalidInput) as raised:
        store.list_between(START, START + timedelta(days=1), 2, "not-a-cursor")
    assert raised.value.field == "cursor"


def test_listing_refuses_an_empty_range(store: AppointmentStore) -> None:
    with pytest.raises(InvalidInput) as raised:
        store.list_between(START, START, 2, None)
    assert raised.value.field == "to"


def test_state_survives_every_status(store: AppointmentStore) -> None:
    base = created()
    store.commit(base)
    done = lifecycle.complete(base.after, duration_minutes=25, outcome="fixed", at=NOW, actor=OPS)
    store.commit(done)
    assert store.get(base.after.id).status is Status.COMPLETED
    assert store.get(base.after.id).completion == done.after.completion


def test_a_coupon_code_is_claimed_once_across_appointments(store: AppointmentStore) -> None:
    # Given two appointments, the first cancelled with a coupon
    coupon = Coupon(code="ABCD-EFGH-JKMN-PQRS", percent=15, expires_at=NOW + timedelta(days=180))
    first = created(a_draft(external_refs=()))
    second = created(a_draft(external_refs=()))
    store.commit(first)
    store.commit(second)
    store.commit(lifecycle.cancel(first.after, by=CancelledBy.OPS, reason="x", coupon=coupon, at=NOW, actor=OPS))

    # When the second is cancelled with the same code, Then it is refused and stays as it was
    with pytest.raises(CouponCodeTaken):
        store.commit(lifecycle.cancel(second.after, by=CancelledBy.OPS, reason="x", coupon=coupon, at=NOW, actor=OPS))
    assert store.get(second.after.id).status is Status.SCHEDULED
