"""AppointmentRetentionDays: what the table's TTL (``expires_at``) deletes, and when, under moto."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from appointments.adapters.dynamo_store import DynamoAppointmentStore
from appointments.domain import lifecycle
from appointments.domain.ids import new_ulid
from appointments.domain.outbox import MailKind, OutboxMail
from tests.factories import CATALOG, NOW, OPS, START, a_draft
from tests.integration.conftest import TABLE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from appointments.domain.lifecycle import Change

DAYS = 30


def _created() -> Change:
    change = lifecycle.create(a_draft(), appointment_id=new_ulid(NOW), catalog=CATALOG, at=NOW, actor=OPS)
    mail = OutboxMail.for_change(MailKind.CONFIRMATION, change.after, to=("dana@example.com",), at=NOW, context={})
    return change.with_mails(mail)


def _items(dynamodb: DynamoDBClient) -> dict[tuple[str, str], dict[str, Any]]:
    return {(i["PK"]["S"], i["SK"]["S"]): i for i in dynamodb.scan(TableName=TABLE)["Items"]}


def _expires(item: dict[str, Any]) -> int | None:
    return int(item["expires_at"]["N"]) if "expires_at" in item else None


@pytest.fixture
def kept_30_days(dynamodb: DynamoDBClient) -> DynamoAppointmentStore:
    return DynamoAppointmentStore(dynamodb, TABLE, due_shards=4, retention_days=DAYS)


def test_without_a_retention_nothing_under_an_appointment_expires(
    dynamo_store: DynamoAppointmentStore, dynamodb: DynamoDBClient
) -> None:
    dynamo_store.commit(_created())
    assert all("expires_at" not in item for item in _items(dynamodb).values())


def test_every_item_of_an_appointment_expires_its_end_plus_the_retention(
    kept_30_days: DynamoAppointmentStore, dynamodb: DynamoDBClient
) -> None:
    change = _created()
    kept_30_days.commit(change)
    expected = int((change.after.end + timedelta(days=DAYS)).timestamp())
    items = _items(dynamodb)
    assert len(items) == 5  # appointment, history, mail, external ref, ticket link
    assert {key: _expires(item) for key, item in items.items()} == dict.fromkeys(items, expected)
    # The TTL attribute is a number of epoch seconds, the one DynamoDB's TTL reads (waiting events use it too).
    assert all(set(item["expires_at"]) == {"N"} for item in items.values())


def test_a_later_end_re_dates_what_earlier_commits_wrote_in_the_same_transaction(
    kept_30_days: DynamoAppointmentStore, dynamodb: DynamoDBClient
) -> None:
    change = _created()
    kept_30_days.commit(change)
    moved = lifecycle.reschedule(change.after, start=START + timedelta(days=60), at=NOW, actor=OPS)
    kept_30_days.commit(moved)
    expected = int((moved.after.end + timedelta(days=DAYS)).timestamp())
    items = _items(dynamodb)
    assert len(items) == 6  # one more history entry
    assert {_expires(item) for item in items.values()} == {expected}
    assert kept_30_days.load(change.after.id).appointment.end == moved.after.end  # the records are whole


def test_a_change_that_keeps_the_end_writes_only_its_own_items(
    kept_30_days: DynamoAppointmentStore, dynamodb: DynamoDBClient
) -> None:
    change = _created()
    kept_30_days.commit(change)
    before = _items(dynamodb)
    noted = lifecycle.add_note(change.after, text="called", at=NOW, actor=OPS)
    kept_30_days.commit(noted)
    after = _items(dynamodb)
    assert set(after) - set(before) == {(f"APPT#{change.after.id}", "H#0000000002#000")}
    expected = int((change.after.end + timedelta(days=DAYS)).timestamp())
    assert {_expires(item) for item in after.values()} == {expected}
