"""What only the DynamoDB adapter can show: item layout, calls per operation, error translation."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import Stubber

from appointments.adapters.dynamo_store import DynamoAppointmentStore, key_time, shard_of
from appointments.domain import lifecycle
from appointments.domain.events import CanonicalEvent, EventKind
from appointments.domain.ids import new_ulid
from appointments.domain.model import CancelledBy, ExternalRef
from appointments.domain.outbox import MailKind, OutboxMail
from appointments.errors import AppointmentNotFound, StoreError, StoreUnavailable, VersionConflict
from tests.factories import CATALOG, NOW, OPS, START, a_draft
from tests.integration.conftest import TABLE, CallCounter

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from appointments.domain.lifecycle import Change


def _created() -> Change:
    change = lifecycle.create(a_draft(), appointment_id=new_ulid(NOW), catalog=CATALOG, at=NOW, actor=OPS)
    mail = OutboxMail.for_change(MailKind.CONFIRMATION, change.after, to=("dana@example.com",), at=NOW, context={})
    armed = change.after.model_copy(update={"next_due_at": START - timedelta(hours=3)})
    return type(change)(before=None, after=armed, history=change.history, mails=(mail,))


def _raw_items(dynamodb: DynamoDBClient) -> dict[tuple[str, str], dict[str, Any]]:
    items = dynamodb.scan(TableName=TABLE)["Items"]
    return {(i["PK"]["S"], i["SK"]["S"]): i for i in items}


def test_the_table_is_the_one_the_template_declares(dynamodb: DynamoDBClient) -> None:
    table = dynamodb.describe_table(TableName=TABLE)["Table"]
    indexes = {i["IndexName"]: i for i in table["GlobalSecondaryIndexes"]}
    assert [k["AttributeName"] for k in indexes["due"]["KeySchema"]] == ["due_shard", "due_at"]
    assert indexes["due"]["Projection"]["ProjectionType"] == "KEYS_ONLY"
    assert [k["AttributeName"] for k in indexes["by_day"]["KeySchema"]] == ["day", "start_key"]
    ttl = dynamodb.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")


def test_one_change_is_one_transaction_with_state_history_mail_and_mappings(
    dynamo_store: DynamoAppointmentStore, dynamodb: DynamoDBClient, aws_calls: CallCounter
) -> None:
    change = _created()
    dynamo_store.commit(change)
    assert aws_calls.calls == {"TransactWriteItems": 1}

    appointment_id = change.after.id
    items = _raw_items(dynamodb)
    assert set(items) == {
        (f"APPT#{appointment_id}", "A"),
        (f"APPT#{appointment_id}", "H#0000000001#000"),
        (f"APPT#{appointment_id}", f"MAIL#{change.mails[0].key}"),
        ("REF#generic#stf-981", "REF"),
        ("TICKET#autotask#48213", f"APPT#{appointment_id}"),
    }
    appointment = items[(f"APPT#{appointment_id}", "A")]
    assert appointment["version"] == {"N": "1"}
    assert appointment["day"] == {"S": "DAY#2026-11-23"}
    assert appointment["start_key"] == {"S": f"2026-11-23T15:00:00.000000Z#{appointment_id}"}
    assert appointment["due_shard"] == {"S": f"DUE#{shard_of(appointment_id, 4)}"}
    assert appointment["due_at"] == {"S": key_time(START - timedelta(hours=3))}
    assert items[("REF#generic#stf-981", "REF")]["appointment_id"] == {"S": appointment_id}


def test_reads_cost_one_call_each(dynamo_store: DynamoAppointmentStore, aws_calls: CallCounter) -> None:
    change = _created()
    dynamo_store.commit(change)
    aws_calls.reset()
    dynamo_store.get(change.after.id)
    dynamo_store.load(change.after.id)
    assert aws_calls.calls == {"GetItem": 1, "Query": 1}


def test_an_appointment_with_nothing_due_leaves_the_sparse_index(
    dynamo_store: DynamoAppointmentStore, dynamodb: DynamoDBClient
) -> None:
    change = _created()
    dynamo_store.commit(change)
    dynamo_store.commit(lifecycle.cancel(change.after, by=CancelledBy.OPS, reason="x", at=NOW, actor=OPS))
    item = _raw_items(dynamodb)[(f"APPT#{change.after.id}", "A")]
    assert "due_shard" not in item
    assert "due_at" not in item


def test_a_conflict_leaves_the_table_as_the_winner_wrote_it(
    dynamo_store: DynamoAppointmentStore, dynamodb: DynamoDBClient
) -> None:
    base = _created()
    dynamo_store.commit(base)
    winner = lifecycle.add_note(base.after, text="first", at=NOW, actor=OPS)
    loser = lifecycle.cancel(base.after, by=CancelledBy.OPS, reason="x", at=NOW, actor=OPS).with_mails(
        OutboxMail.for_change(MailKind.CANCELLED, base.after, to=("dana@example.com",), at=NOW, context={})
    )
    dynamo_store.commit(winner)
    before = _raw_items(dynamodb)
    with pytest.raises(VersionConflict):
        dynamo_store.commit(loser)
    assert _raw_items(dynamodb) == before


def _stubbed_store() -> tuple[DynamoAppointmentStore, Stubber]:
    client = boto3.client("dynamodb", region_name="us-east-1")
    return DynamoAppointmentStore(client, TABLE, due_shards=4), Stubber(client)


@pytest.mark.parametrize(
    "code", ["ProvisionedThroughputExceededException", "ThrottlingException", "InternalServerError"]
)
def test_throttling_and_service_faults_are_retryable(code: str) -> None:
    store, stubber = _stubbed_store()
    stubber.add_client_error("get_item", service_error_code=code, http_status_code=400)
    with stubber, pytest.raises(StoreUnavailable) as raised:
        store.get("01JD")
    assert raised.value.retryable


def test_a_refused_request_is_a_store_error_naming_the_code_only() -> None:
    store, stubber = _stubbed_store()
    stubber.add_client_error("get_item", service_error_code="ValidationException", service_message="secret detail")
    with stubber, pytest.raises(StoreError) as raised:
        store.get("01JD")
    assert "ValidationException" in raised.value.message
    assert "secret detail" not in raised.value.message
    assert not raised.value.retryable


def test_a_transaction_throttled_on_one_item_is_retryable() -> None:
    store, stubber = _stubbed_store()
    stubber.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        modeled_fields={"CancellationReasons": [{"Code": "None"}, {"Code": "ThrottlingError"}]},
    )
    with stubber, pytest.raises(StoreUnavailable):
        store.commit(_created())


def test_a_transaction_conflict_is_a_version_conflict() -> None:
    store, stubber = _stubbed_store()
    base = _created()
    update = lifecycle.add_note(base.after, text="x", at=NOW, actor=OPS)
    stubber.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        modeled_fields={"CancellationReasons": [{"Code": "TransactionConflict"}, {"Code": "None"}]},
    )
    with stubber, pytest.raises(VersionConflict):
        store.commit(update)


def test_a_missing_appointment_on_update_is_not_found() -> None:
    store, stubber = _stubbed_store()
    base = _created()
    stubber.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        modeled_fields={"CancellationReasons": [{"Code": "ConditionalCheckFailed"}, {"Code": "None"}]},
    )
    with stubber, pytest.raises(AppointmentNotFound):
        store.commit(lifecycle.add_note(base.after, text="x", at=NOW, actor=OPS))


def _a_cancel(delivery_id: str = "calcom-cancel-1") -> CanonicalEvent:
    ref = ExternalRef(system="calcom", id="bk-missing")
    return CanonicalEvent(
        source="calcom",
        delivery_id=delivery_id,
        kind=EventKind.CANCELLED,
        occurred_at=NOW,
        entity="calcom#bk-missing",
        external_ref=ref,
    )


WAIT_KEY = "ref#calcom#bk-missing"
UNTIL = NOW + timedelta(hours=72)
ALERT_AT = NOW + timedelta(minutes=30)


def test_a_booking_change_waits_with_its_alert_armed_once_in_a_partition_of_its_own(
    dynamo_store: DynamoAppointmentStore, dynamodb: DynamoDBClient, aws_calls: CallCounter
) -> None:
    # Given a cancellation kept waiting with an alert, then redelivered later
    event = _a_cancel()
    dynamo_store.keep_waiting(WAIT_KEY, event, UNTIL, alert_at=ALERT_AT, arrived_at=NOW)
    assert aws_calls.calls == {"PutItem": 2}
    dynamo_store.keep_waiting(
        WAIT_KEY, event, UNTIL + timedelta(hours=1), alert_at=ALERT_AT + timedelta(hours=1), arrived_at=NOW
    )
    # Then the alert keeps the first arming: due then, in its own partition, dropped with the event
    alerts = [item for key, item in _raw_items(dynamodb).items() if key[1].startswith("ALERT#")]
    [alert] = alerts
    assert alert["due_shard"] == {"S": "UNMATCHED_ALERT"}
    assert alert["due_at"] == {"S": key_time(ALERT_AT)}
    assert alert["expires_at"] == {"N": str(int(UNTIL.timestamp()))}
    # And the event's readers see only the event
    assert dynamo_store.waiting(WAIT_KEY) == (event,)
    assert [w.event for w in dynamo_store.unmatched(limit=10).items] == [event]


def test_sending_an_unmatched_alert_costs_a_query_a_read_a_claim_and_a_mark(
    dynamo_store: DynamoAppointmentStore, aws_calls: CallCounter
) -> None:
    dynamo_store.keep_waiting(WAIT_KEY, _a_cancel(), UNTIL, alert_at=ALERT_AT, arrived_at=NOW)
    assert dynamo_store.unmatched_alerts_due(ALERT_AT - timedelta(seconds=1), limit=10).items == ()
    aws_calls.reset()
    # When a sweep finds it due, claims it and marks it sent
    [alert] = dynamo_store.unmatched_alerts_due(ALERT_AT, limit=10).items
    claimed = dynamo_store.claim_unmatched_alert(
        alert, token="t1", now=ALERT_AT, lease_until=ALERT_AT + timedelta(minutes=2)
    )
    assert claimed is not None
    assert (claimed.arrived_at, claimed.waiting.until, claimed.waiting.key) == (NOW, UNTIL, WAIT_KEY)
    # Then a second sweep racing it gets nothing
    assert dynamo_store.claim_unmatched_alert(alert, token="t2", now=ALERT_AT, lease_until=ALERT_AT) is None
    assert dynamo_store.finish_unmatched_alert(alert, token="t1", at=ALERT_AT, message_id="ses-1")
    assert aws_calls.calls == {"Query": 1, "GetItem": 2, "UpdateItem": 3}
    # And a sent alert is due no more, and a redelivery does not arm it again
    dynamo_store.keep_waiting(WAIT_KEY, _a_cancel(), UNTIL, alert_at=ALERT_AT, arrived_at=NOW)
    assert dynamo_store.unmatched_alerts_due(ALERT_AT + timedelta(days=1), limit=10).items == ()


def test_an_alert_whose_event_was_applied_is_dropped_for_a_read_and_a_delete(
    dynamo_store: DynamoAppointmentStore, dynamodb: DynamoDBClient, aws_calls: CallCounter
) -> None:
    # Given an alert armed, and its event released (its booking arrived and took it)
    dynamo_store.keep_waiting(WAIT_KEY, _a_cancel(), UNTIL, alert_at=ALERT_AT, arrived_at=NOW)
    [event_key] = [key for key in _raw_items(dynamodb) if key[1].startswith("EVT#")]
    dynamodb.delete_item(TableName=TABLE, Key={"PK": {"S": event_key[0]}, "SK": {"S": event_key[1]}})
    [alert] = dynamo_store.unmatched_alerts_due(ALERT_AT, limit=10).items
    aws_calls.reset()
    # When a sweep takes it
    claimed = dynamo_store.claim_unmatched_alert(alert, token="t1", now=ALERT_AT, lease_until=ALERT_AT)
    # Then nothing is sent and the alert is gone
    assert claimed is None
    assert aws_calls.calls == {"GetItem": 1, "DeleteItem": 1}
    assert _raw_items(dynamodb) == {}
