"""The appointment store on one DynamoDB table.

Key design (all keys are strings; times in keys use a fixed-width UTC form so they sort as text):

| item         | PK                        | SK                          | indexes                            |
|--------------|---------------------------|-----------------------------|------------------------------------|
| appointment  | ``APPT#<id>``             | ``A``                       | by_day (day, start_key); due       |
| history      | ``APPT#<id>``             | ``H#<version>#<n>``         |                                    |
| outbox mail  | ``APPT#<id>``             | ``MAIL#<key>``              | due, while pending                 |
| external ref | ``REF#<system>#<id>``     | ``REF``                     |                                    |
| ticket link  | ``TICKET#<system>#<id>``  | ``APPT#<appointment id>``   |                                    |
| waiting event| ``WAIT#<key>``            | ``EVT#<sha256(delivery id)>`` | TTL ``expires_at``               |
| its ops alert| ``WAIT#<key>``            | ``ALERT#<sha256(delivery id)>`` | due, until sent; TTL           |

With a retention (``AppointmentRetentionDays`` > 0) every item a commit writes under an appointment (the
appointment, its history, mails, external refs and ticket link) carries ``expires_at`` = its end + N days,
the table's TTL attribute (epoch seconds, as for waiting events). A commit that moves the end re-dates the
items earlier commits wrote in the same transaction, so none goes before the appointment.

An appointment's state, history and mails share one partition, so the detail view is one query.
The ``due`` index is sparse: only appointments with a next check and pending mails carry
``due_shard``/``due_at``, so a sweep reads what is due, not the table. The document itself is the
model's JSON in ``doc``; the other attributes are keys and filters derived from it on every write.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from appointments.domain.events import CanonicalEvent
from appointments.domain.history import HistoryEntry
from appointments.domain.model import Appointment, Coupon, ExternalRef, TicketRef
from appointments.domain.outbox import MailStatus, OutboxMail
from appointments.errors import (
    AlreadyExists,
    AppointmentNotFound,
    CouponCodeTaken,
    ExternalRefTaken,
    InvalidInput,
    StoreError,
    StoreUnavailable,
    VersionConflict,
)
from appointments.ports import (
    AppointmentPage,
    AppointmentRecord,
    ClaimedAlert,
    DueItem,
    DueKind,
    DuePage,
    UnmatchedAlert,
    UnmatchedAlertPage,
    Waiting,
    WaitingPage,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, TransactWriteItemTypeDef

    from appointments.domain.lifecycle import Change

Item = Mapping[str, "AttributeValueTypeDef"]

DUE_INDEX = "due"
UNMATCHED_SHARD = "WAITING"
UNMATCHED_ALERT_SHARD = "UNMATCHED_ALERT"
BY_DAY_INDEX = "by_day"
APPOINTMENT_SK = "A"
MAX_LIST_DAYS = 92
MAX_TRANSACTION_ITEMS = 100

_RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "ThrottlingError",
    }
)


def key_time(value: datetime) -> str:
    """A fixed-width UTC timestamp that sorts as text in time order."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def shard_of(appointment_id: str, shard_count: int) -> int:
    digest = hashlib.sha256(appointment_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % shard_count


def _s(value: str) -> AttributeValueTypeDef:
    return {"S": value}


def _n(value: int) -> AttributeValueTypeDef:
    return {"N": str(value)}


def _appt_pk(appointment_id: str) -> str:
    return f"APPT#{appointment_id}"


def _ref_pk(ref: ExternalRef) -> str:
    return f"REF#{ref.system}#{ref.id}"


def _ticket_pk(ticket: TicketRef) -> str:
    return f"TICKET#{ticket.system}#{ticket.id}"


def _waiting_from(item: Mapping[str, Any]) -> Waiting:
    return Waiting(
        key=item["wait_key"]["S"],
        event=CanonicalEvent.model_validate_json(item["doc"]["S"]),
        until=datetime.fromtimestamp(int(item["expires_at"]["N"]), tz=UTC),
    )


def _due_shard_key(kind: DueKind, shard: int) -> str:
    # Appointments' rules and mails never share a partition of the due index.
    return f"{'DUE' if kind is DueKind.APPOINTMENT else 'MAIL'}#{shard}"


def _encode_due_cursor(last_key: Mapping[str, Any] | None) -> str | None:
    return None if last_key is None else base64.urlsafe_b64encode(json.dumps(last_key).encode()).decode()


def _decode_due_cursor(cursor: str) -> dict[str, Any]:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error):
        raise InvalidInput("cursor", "is not a cursor of the due index") from None
    if not isinstance(key, dict):
        raise InvalidInput("cursor", "is not a cursor of the due index")
    return key


def _wait_pk(key: str) -> str:
    return f"WAIT#{key}"


def _wait_sk(delivery_id: str) -> str:
    # Delivery ids are the vendors' and may be long: a digest keeps the key small and of one shape.
    return f"EVT#{_digest(delivery_id)}"


def _digest(delivery_id: str) -> str:
    return hashlib.sha256(delivery_id.encode()).hexdigest()


def _alert_key(alert: UnmatchedAlert) -> dict[str, AttributeValueTypeDef]:
    return {"PK": _s(_wait_pk(alert.key)), "SK": _s(f"ALERT#{alert.item}")}


class DynamoAppointmentStore:
    def __init__(self, client: DynamoDBClient, table_name: str, *, due_shards: int, retention_days: int = 0) -> None:
        if due_shards < 1:
            raise ValueError("due_shards must be at least 1")
        if retention_days < 0:
            raise ValueError("retention_days must be 0 (keep forever) or more")
        self._client = client
        self._table = table_name
        self._due_shards = due_shards
        self._retention = timedelta(days=retention_days) if retention_days else None

    # -- reads ---------------------------------------------------------------------------------

    def get(self, appointment_id: str) -> Appointment:
        with _translated():
            response = self._client.get_item(
                TableName=self._table,
                Key={"PK": _s(_appt_pk(appointment_id)), "SK": _s(APPOINTMENT_SK)},
                ConsistentRead=True,
            )
        item = response.get("Item")
        if item is None:
            raise AppointmentNotFound(appointment_id)
        return _appointment_from(item)

    def load(self, appointment_id: str) -> AppointmentRecord:
        appointment: Appointment | None = None
        history: list[HistoryEntry] = []
        mails: list[OutboxMail] = []
        for item in self._query_all(
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": _s(_appt_pk(appointment_id))},
            ConsistentRead=True,
        ):
            sk = item["SK"]["S"]
            if sk == APPOINTMENT_SK:
                appointment = _appointment_from(item)
            elif sk.startswith("H#"):
                history.append(HistoryEntry.model_validate_json(item["doc"]["S"]))
            elif sk.startswith("MAIL#"):
                mails.append(_mail_from(item))
        if appointment is None:
            raise AppointmentNotFound(appointment_id)
        return AppointmentRecord(appointment=appointment, history=tuple(history), mails=tuple(mails))

    def find_by_external_ref(self, ref: ExternalRef) -> str | None:
        with _translated():
            response = self._client.get_item(
                TableName=self._table, Key={"PK": _s(_ref_pk(ref)), "SK": _s("REF")}, ConsistentRead=True
            )
        item = response.get("Item")
        return None if item is None else item["appointment_id"]["S"]

    def find_by_ticket(self, ticket: TicketRef) -> tuple[str, ...]:
        items = self._query_all(
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": _s(_ticket_pk(ticket))},
            ConsistentRead=True,
        )
        return tuple(item["appointment_id"]["S"] for item in items)

    def due(self, kind: DueKind, shard: int, until: datetime, *, limit: int, cursor: str | None = None) -> DuePage:
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": DUE_INDEX,
            "KeyConditionExpression": "due_shard = :shard AND due_at <= :until",
            "ExpressionAttributeValues": {":shard": _s(_due_shard_key(kind, shard)), ":until": _s(key_time(until))},
            "Limit": limit,
        }
        if cursor is not None:
            query["ExclusiveStartKey"] = _decode_due_cursor(cursor)
        with _translated():
            response = self._client.query(**query)
        last = response.get("LastEvaluatedKey")
        return DuePage(
            items=tuple(_due_item_from(item) for item in response.get("Items", [])),
            cursor=_encode_due_cursor(last),
        )

    def list_between(self, start_from: datetime, start_to: datetime, limit: int, cursor: str | None) -> AppointmentPage:
        if start_to <= start_from:
            raise InvalidInput("to", "must be after from")
        days = _days(start_from, start_to)
        if len(days) > MAX_LIST_DAYS:
            raise InvalidInput("to", f"a listing spans at most {MAX_LIST_DAYS} days")
        day_index, start_key = _decode_cursor(cursor, days) if cursor else (0, None)
        if (
            start_key is not None
            and not key_time(start_from) <= start_key["start_key"]["S"] <= key_time(start_to) + "~"
        ):
            # DynamoDB refuses a start key outside the query's range: a cursor from another listing.
            raise InvalidInput("cursor", "is not a cursor from this listing")
        items: list[Appointment] = []
        while day_index < len(days) and len(items) < limit:
            query: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": BY_DAY_INDEX,
                "KeyConditionExpression": "#day = :day AND start_key BETWEEN :from AND :to",
                "ExpressionAttributeNames": {"#day": "day"},
                "ExpressionAttributeValues": {
                    ":day": _s(f"DAY#{days[day_index].isoformat()}"),
                    ":from": _s(key_time(start_from)),
                    ":to": _s(key_time(start_to)),
                },
                "Limit": limit - len(items),
            }
            if start_key is not None:
                query["ExclusiveStartKey"] = start_key
            with _translated():
                response = self._client.query(**query)
            items.extend(_appointment_from(item) for item in response.get("Items", []))
            start_key = response.get("LastEvaluatedKey")
            if start_key is None:
                day_index += 1
        next_cursor = _encode_cursor(days[day_index], start_key) if day_index < len(days) else None
        return AppointmentPage(items=tuple(items), next_cursor=next_cursor)

    # -- writes --------------------------------------------------------------------------------

    def commit(self, change: Change) -> None:
        actions: list[TransactWriteItemTypeDef] = [self._appointment_put(change)]
        actions += [self._put_new(_history_item(change.after, i, e)) for i, e in enumerate(change.history)]
        actions += [self._put_new(self._mail_item(mail)) for mail in change.mails]
        first_ref = len(actions)
        actions += [self._put_new(_ref_item(ref, change.after.id), return_old=True) for ref in change.new_external_refs]
        coupon_index = len(actions) if change.new_coupon is not None else None
        if change.new_coupon is not None:
            actions.append(self._put_new(_coupon_item(change.new_coupon, change.after.id)))
        if change.new_ticket is not None:
            actions.append(self._put_new(_ticket_item(change.new_ticket, change.after)))
        if change.dropped_ticket is not None:
            key = {"PK": _s(_ticket_pk(change.dropped_ticket)), "SK": _s(f"APPT#{change.after.id}")}
            actions.append({"Delete": {"TableName": self._table, "Key": key}})
        for wait_key, delivery_id in change.released:
            key = {"PK": _s(_wait_pk(wait_key)), "SK": _s(_wait_sk(delivery_id))}
            actions.append({"Delete": {"TableName": self._table, "Key": key}})
        if change.failed_mail is not None:
            actions.append(self._mail_failed(change.after.id, *change.failed_mail))
        absorb_index = len(actions)
        if change.absorbed is not None:
            actions += self._absorb(change.absorbed, change.after.id)
        redate_index = len(actions)
        actions, later = self._with_retention(change, actions)
        try:
            self._client.transact_write_items(TransactItems=actions)
        except ClientError as error:
            if redate_index < len(actions) and _conditional_failure_at(error, redate_index):
                # An older item vanished meanwhile (TTL, an erase): read again and decide again.
                raise VersionConflict(change.after.id, change.expected_version or 0) from error
            raise self._commit_error(error, change, first_ref, coupon_index, absorb_index) from error
        for update in later:  # a very long history: the rest after the commit, each on its own
            self._update_if(**{k: v for k, v in update.items() if k != "TableName"})

    def _with_retention(
        self, change: Change, actions: list[TransactWriteItemTypeDef]
    ) -> tuple[list[TransactWriteItemTypeDef], list[dict[str, Any]]]:
        """``actions`` with ``expires_at`` on every item put under the appointment and, when the end moved, the
        updates re-dating older items (those past a transaction's 100 items come back to run after it)."""
        expiry = self._expiry(change.after)
        if expiry is None:
            return actions, []
        for action in actions:
            put: Any = action.get("Put")
            if put is not None and str(put["Item"]["PK"]["S"]).startswith(("APPT#", "REF#", "TICKET#")):
                put["Item"] = {**put["Item"], "expires_at": _n(expiry)}
        if change.before is None or self._expiry(change.before) == expiry:
            return actions, []
        redated = self._redated(change, expiry)
        room = max(0, MAX_TRANSACTION_ITEMS - len(actions))
        stamped: list[Any] = [{"Update": update} for update in redated[:room]]
        return actions + stamped, redated[room:]

    def _expiry(self, appointment: Appointment) -> int | None:
        """``expires_at`` of everything under the appointment: its end plus the retention (None: kept forever)."""
        return None if self._retention is None else int((appointment.end + self._retention).timestamp())

    def _redated(self, change: Change, expiry: int) -> list[dict[str, Any]]:
        """Updates moving ``expires_at`` of the items earlier commits wrote (history, mails, refs, ticket link)
        to ``expiry``: the end moved, and nothing may go before the appointment. The items this commit writes
        itself are left out (one operation per item in a transaction)."""
        appointment_id = change.after.id
        keys: list[dict[str, AttributeValueTypeDef]] = []
        for item in self._query_all(
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": _s(_appt_pk(appointment_id))},
            ProjectionExpression="PK, SK",
            ConsistentRead=True,
        ):
            if item["SK"]["S"] != APPOINTMENT_SK:
                keys.append({"PK": item["PK"], "SK": item["SK"]})
        written = set()
        if change.failed_mail is not None:
            written.add((_appt_pk(appointment_id), f"MAIL#{change.failed_mail[0]}"))
        fresh = set(change.new_external_refs) | set(change.moved_external_refs)
        keys += [{"PK": _s(_ref_pk(ref)), "SK": _s("REF")} for ref in change.after.external_refs if ref not in fresh]
        if change.after.ticket is not None and change.new_ticket is None:
            keys.append({"PK": _s(_ticket_pk(change.after.ticket)), "SK": _s(f"APPT#{appointment_id}")})
        return [
            {
                "TableName": self._table,
                "Key": key,
                "UpdateExpression": "SET expires_at = :expires",
                "ConditionExpression": "attribute_exists(PK)",
                "ExpressionAttributeValues": {":expires": _n(expiry)},
            }
            for key in keys
            if (key["PK"].get("S"), key["SK"].get("S")) not in written
        ]

    def keep_waiting(
        self,
        key: str,
        event: CanonicalEvent,
        until: datetime,
        *,
        alert_at: datetime | None = None,
        arrived_at: datetime | None = None,
    ) -> None:
        # A plain put: a redelivery writes the same item again, and the last write keeps the longest wait.
        with _translated():
            self._client.put_item(
                TableName=self._table,
                Item={
                    "PK": _s(_wait_pk(key)),
                    "SK": _s(_wait_sk(event.delivery_id)),
                    "kind": _s("waiting"),
                    "doc": _s(event.model_dump_json()),
                    "expires_at": _n(int(until.timestamp())),
                    "wait_key": _s(key),
                    # Listed for ops through the due index's own partition: never mixed with rules or mail.
                    "due_shard": _s(UNMATCHED_SHARD),
                    "due_at": _s(key_time(until)),
                },
            )
        if alert_at is None:
            return
        # Written once: a redelivery finds it (armed or already sent) and leaves it, so ops hear once.
        self._put_if_new(
            {
                "PK": _s(_wait_pk(key)),
                "SK": _s(f"ALERT#{_digest(event.delivery_id)}"),
                "kind": _s("unmatched_alert"),
                "wait_key": _s(key),
                "arrived_at": _s(key_time(arrived_at or alert_at)),
                "expires_at": _n(int(until.timestamp())),
                "due_shard": _s(UNMATCHED_ALERT_SHARD),
                "due_at": _s(key_time(alert_at)),
            }
        )

    def unmatched(self, *, limit: int, cursor: str | None = None) -> WaitingPage:
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": DUE_INDEX,
            "KeyConditionExpression": "due_shard = :shard",
            "ExpressionAttributeValues": {":shard": _s(UNMATCHED_SHARD)},
            "Limit": limit,
        }
        if cursor is not None:
            query["ExclusiveStartKey"] = _decode_due_cursor(cursor)
        with _translated():
            response = self._client.query(**query)
        keys = [{"PK": item["PK"], "SK": item["SK"]} for item in response.get("Items", [])]
        items: list[Waiting] = []
        if keys:
            with _translated():
                got = self._client.batch_get_item(RequestItems={self._table: {"Keys": keys, "ConsistentRead": True}})
            found = {(i["PK"]["S"], i["SK"]["S"]): i for i in got.get("Responses", {}).get(self._table, [])}
            for key in keys:
                item = found.get((key["PK"]["S"], key["SK"]["S"]))
                if item is not None:  # applied or expired meanwhile
                    items.append(_waiting_from(item))
        last = response.get("LastEvaluatedKey")
        return WaitingPage(items=tuple(items), cursor=_encode_due_cursor(last))

    def waiting(self, key: str) -> tuple[CanonicalEvent, ...]:
        items = self._query_all(
            # The events only: their ops alerts share the partition.
            KeyConditionExpression="PK = :pk AND begins_with(SK, :evt)",
            ExpressionAttributeValues={":pk": _s(_wait_pk(key)), ":evt": _s("EVT#")},
            ConsistentRead=True,
        )
        events = [CanonicalEvent.model_validate_json(item["doc"]["S"]) for item in items]
        return tuple(sorted(events, key=lambda e: e.stamp.order))

    def unmatched_alerts_due(self, until: datetime, *, limit: int, cursor: str | None = None) -> UnmatchedAlertPage:
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": DUE_INDEX,
            "KeyConditionExpression": "due_shard = :shard AND due_at <= :until",
            "ExpressionAttributeValues": {":shard": _s(UNMATCHED_ALERT_SHARD), ":until": _s(key_time(until))},
            "Limit": limit,
        }
        if cursor is not None:
            query["ExclusiveStartKey"] = _decode_due_cursor(cursor)
        with _translated():
            response = self._client.query(**query)
        items = tuple(
            UnmatchedAlert(
                key=item["PK"]["S"].removeprefix("WAIT#"),
                item=item["SK"]["S"].removeprefix("ALERT#"),
                due_at=_parse_key_time(item["due_at"]["S"]),
            )
            for item in response.get("Items", [])
        )
        return UnmatchedAlertPage(items=items, cursor=_encode_due_cursor(response.get("LastEvaluatedKey")))

    def claim_unmatched_alert(
        self, alert: UnmatchedAlert, *, token: str, now: datetime, lease_until: datetime
    ) -> ClaimedAlert | None:
        # The event first: most alerts find their booking arrived, and cost this read and one delete.
        with _translated():
            found = self._client.get_item(
                TableName=self._table,
                Key={"PK": _s(_wait_pk(alert.key)), "SK": _s(f"EVT#{alert.item}")},
                ConsistentRead=True,
            ).get("Item")
        if found is None:
            with _translated():
                self._client.delete_item(TableName=self._table, Key=_alert_key(alert))
            return None
        claimed = self._update_if(
            Key=_alert_key(alert),
            UpdateExpression="SET claim = :token, due_at = :lease",
            # Unsent (sent ones leave the index) and due: armed, or claimed by a sweep whose lease ran out.
            ConditionExpression="attribute_exists(due_shard) AND due_at <= :now",
            ExpressionAttributeValues={
                ":token": _s(token),
                ":lease": _s(key_time(lease_until)),
                ":now": _s(key_time(now)),
            },
            ReturnValues="ALL_NEW",
        )
        if claimed is None:
            return None
        arrived_at = claimed.get("arrived_at", {}).get("S")
        return ClaimedAlert(
            waiting=_waiting_from(found),
            arrived_at=_parse_key_time(arrived_at) if arrived_at else alert.due_at,
        )

    def finish_unmatched_alert(self, alert: UnmatchedAlert, *, token: str, at: datetime, message_id: str) -> bool:
        finished = self._update_if(
            Key=_alert_key(alert),
            UpdateExpression="SET sent_at = :at, message_id = :id REMOVE due_shard, due_at, claim",
            ConditionExpression="claim = :token",
            ExpressionAttributeValues={
                ":token": _s(token),
                ":at": _s(at.astimezone(UTC).isoformat()),
                ":id": _s(message_id),
            },
        )
        return finished is not None

    def claim_mail(
        self, appointment_id: str, mail_key: str, *, token: str, now: datetime, lease_until: datetime
    ) -> OutboxMail | None:
        claimed = self._update_if(
            Key=_mail_key(appointment_id, mail_key),
            UpdateExpression="SET #status = :sending, claim = :token, due_at = :lease, attempts = "
            "if_not_exists(attempts, :zero) + :one",
            # Pending and due, or sending with its lease (kept in due_at) run out: a crashed sender's mail.
            ConditionExpression="#status IN (:pending, :sending) AND due_at <= :now",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":sending": _s(MailStatus.SENDING),
                ":pending": _s(MailStatus.PENDING),
                ":token": _s(token),
                ":lease": _s(key_time(lease_until)),
                ":now": _s(key_time(now)),
                ":zero": _n(0),
                ":one": _n(1),
            },
            ReturnValues="ALL_NEW",
        )
        return None if claimed is None else _mail_from(claimed)

    def finish_mail(
        self,
        appointment_id: str,
        mail_key: str,
        *,
        token: str,
        at: datetime,
        message_id: str,
        status: MailStatus = MailStatus.SENT,
    ) -> bool:
        finished = self._update_if(
            Key=_mail_key(appointment_id, mail_key),
            UpdateExpression="SET #status = :sent, sent_at = :at, message_id = :id REMOVE due_shard, due_at, claim",
            ConditionExpression="#status = :sending AND claim = :token",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":sent": _s(status),
                ":sending": _s(MailStatus.SENDING),
                ":token": _s(token),
                ":at": _s(at.astimezone(UTC).isoformat()),
                ":id": _s(message_id),
            },
        )
        return finished is not None

    def release_mail(self, appointment_id: str, mail_key: str, *, token: str, retry_at: datetime) -> None:
        # A lost claim changes nothing: its new holder decides.
        self._update_if(
            Key=_mail_key(appointment_id, mail_key),
            UpdateExpression="SET #status = :pending, due_at = :retry REMOVE claim",
            ConditionExpression="#status = :sending AND claim = :token",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":pending": _s(MailStatus.PENDING),
                ":sending": _s(MailStatus.SENDING),
                ":token": _s(token),
                ":retry": _s(key_time(retry_at)),
            },
        )

    def claim_publish(self, appointment_id: str, history_key: str, at: datetime) -> bool:
        claimed = self._update_if(
            Key={"PK": _s(_appt_pk(appointment_id)), "SK": _s(history_key)},
            UpdateExpression="SET publish_attempted_at = :at",
            ConditionExpression="attribute_exists(PK) AND attribute_not_exists(published_at)",
            ExpressionAttributeValues={":at": _s(at.astimezone(UTC).isoformat())},
        )
        return claimed is not None

    def mark_published(self, appointment_id: str, history_key: str, at: datetime) -> None:
        with _translated():
            self._client.update_item(
                TableName=self._table,
                Key={"PK": _s(_appt_pk(appointment_id)), "SK": _s(history_key)},
                UpdateExpression="SET published_at = :at",
                ExpressionAttributeValues={":at": _s(at.astimezone(UTC).isoformat())},
            )

    def _update_if(self, **request: Any) -> Mapping[str, AttributeValueTypeDef] | None:
        """A conditional UpdateItem: the item's attributes (all of them with ``ReturnValues``), or None when
        the condition did not hold. Every other error is translated."""
        try:
            response = self._client.update_item(TableName=self._table, **request)
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                return None
            raise store_error(error) from error
        return response.get("Attributes", {})

    def _put_if_new(self, item: Mapping[str, AttributeValueTypeDef]) -> None:
        """A put that leaves an item already there alone (not an error)."""
        try:
            self._client.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(PK)")
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise store_error(error) from error

    def _mail_failed(self, appointment_id: str, mail_key: str, token: str) -> TransactWriteItemTypeDef:
        return {
            "Update": {
                "TableName": self._table,
                "Key": _mail_key(appointment_id, mail_key),
                "UpdateExpression": "SET #status = :failed REMOVE due_shard, due_at, claim",
                "ConditionExpression": "#status = :sending AND claim = :token",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {
                    ":failed": _s(MailStatus.FAILED),
                    ":sending": _s(MailStatus.SENDING),
                    ":token": _s(token),
                },
            }
        }

    def _absorb(self, absorbed: Appointment, into: str) -> list[TransactWriteItemTypeDef]:
        """Remove ``absorbed`` (as it was read) and hand its external ids and ticket link to ``into``."""
        gone = {"PK": _s(_appt_pk(absorbed.id)), "SK": _s(APPOINTMENT_SK)}
        actions: list[TransactWriteItemTypeDef] = [
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": gone,
                    "ConditionExpression": "#version = :expected",
                    "ExpressionAttributeNames": {"#version": "version"},
                    "ExpressionAttributeValues": {":expected": _n(absorbed.version)},
                }
            }
        ]
        for ref in absorbed.external_refs:
            actions.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": _ref_item(ref, into),
                        "ConditionExpression": "appointment_id = :absorbed",
                        "ExpressionAttributeValues": {":absorbed": _s(absorbed.id)},
                    }
                }
            )
        if absorbed.ticket is not None:
            key = {"PK": _s(_ticket_pk(absorbed.ticket)), "SK": _s(f"APPT#{absorbed.id}")}
            actions.append({"Delete": {"TableName": self._table, "Key": key}})
        return actions

    # -- item building -------------------------------------------------------------------------

    def _appointment_put(self, change: Change) -> TransactWriteItemTypeDef:
        appointment = change.after
        item: dict[str, AttributeValueTypeDef] = {
            "PK": _s(_appt_pk(appointment.id)),
            "SK": _s(APPOINTMENT_SK),
            "kind": _s("appointment"),
            "doc": _s(appointment.model_dump_json()),
            "version": _n(appointment.version),
            "status": _s(appointment.status),
            "day": _s(f"DAY#{appointment.start.date().isoformat()}"),
            "start_key": _s(f"{key_time(appointment.start)}#{appointment.id}"),
            "technician_ids": {"L": [_s(t.id) for t in appointment.technicians]},
        }
        if appointment.next_due_at is not None:
            item["due_shard"] = _s(self._due_shard(appointment.id))
            item["due_at"] = _s(key_time(appointment.next_due_at))
        put: dict[str, Any] = {"TableName": self._table, "Item": item, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
        if change.expected_version is None:
            put["ConditionExpression"] = "attribute_not_exists(PK)"
        else:
            put["ConditionExpression"] = "#version = :expected"
            put["ExpressionAttributeNames"] = {"#version": "version"}
            put["ExpressionAttributeValues"] = {":expected": _n(change.expected_version)}
        return {"Put": put}  # type: ignore[typeddict-item]

    def _mail_item(self, mail: OutboxMail) -> dict[str, AttributeValueTypeDef]:
        item: dict[str, AttributeValueTypeDef] = {
            "PK": _s(_appt_pk(mail.appointment_id)),
            "SK": _s(f"MAIL#{mail.key}"),
            "kind": _s("mail"),
            "doc": _s(mail.model_dump_json(exclude={"status", "sent_at", "attempts", "message_id"})),
            "status": _s(mail.status),
        }
        if mail.status is MailStatus.PENDING:
            item["due_shard"] = _s(self._due_shard(mail.appointment_id, DueKind.MAIL))
            item["due_at"] = _s(key_time(mail.created_at))
        elif mail.sent_at is not None:
            item["sent_at"] = _s(mail.sent_at.isoformat())
        return item

    def _put_new(
        self, item: Mapping[str, AttributeValueTypeDef], *, return_old: bool = False
    ) -> TransactWriteItemTypeDef:
        """A put that holds only if no item has the key yet: records are written once."""
        put: dict[str, Any] = {
            "TableName": self._table,
            "Item": item,
            "ConditionExpression": "attribute_not_exists(PK)",
        }
        if return_old:
            put["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return {"Put": put}  # type: ignore[typeddict-item]

    def _due_shard(self, appointment_id: str, kind: DueKind = DueKind.APPOINTMENT) -> str:
        return _due_shard_key(kind, shard_of(appointment_id, self._due_shards))

    def _query_all(self, **query: Any) -> Iterator[Mapping[str, AttributeValueTypeDef]]:
        start_key: Mapping[str, Any] | None = None
        while True:
            page_query = {"TableName": self._table, **query}
            if start_key is not None:
                page_query["ExclusiveStartKey"] = start_key
            with _translated():
                response = self._client.query(**page_query)
            yield from response.get("Items", [])
            start_key = response.get("LastEvaluatedKey")
            if start_key is None:
                return

    def _commit_error(
        self, error: ClientError, change: Change, first_ref: int, coupon_index: int | None, absorb_index: int
    ) -> Exception:
        if _code(error) != "TransactionCanceledException":
            return store_error(error)
        reasons: list[dict[str, Any]] = error.response.get("CancellationReasons", [])  # type: ignore[assignment]
        codes = [reason.get("Code", "None") for reason in reasons]
        if any(code in _RETRYABLE_CODES for code in codes):
            return StoreUnavailable("the appointment store is busy; try again")
        if "TransactionConflict" in codes:
            return VersionConflict(change.after.id, change.expected_version or 0)
        for index, reason in enumerate(reasons):
            if reason.get("Code") != "ConditionalCheckFailed":
                continue
            if index == 0:
                return _appointment_condition_error(change, reason.get("Item"))
            if first_ref <= index < first_ref + len(change.new_external_refs):
                ref = change.new_external_refs[index - first_ref]
                holder = reason.get("Item", {}).get("appointment_id", {}).get("S")
                return ExternalRefTaken(ref.system, ref.id, holder)
            if index == coupon_index:
                return CouponCodeTaken()
            if index >= absorb_index:  # the absorbed appointment changed meanwhile: read both again
                return VersionConflict(change.after.id, change.expected_version or 0)
            return AlreadyExists(f"a record of appointment {change.after.id!r} was already written")
        return StoreError(f"appointment store transaction cancelled: {', '.join(codes)}")


def _appointment_condition_error(change: Change, old_item: Mapping[str, Any] | None) -> Exception:
    if change.expected_version is None:
        return AlreadyExists(f"appointment {change.after.id!r} already exists")
    if not old_item:
        return AppointmentNotFound(change.after.id)
    return VersionConflict(change.after.id, change.expected_version)


def _history_item(appointment: Appointment, index: int, entry: HistoryEntry) -> dict[str, AttributeValueTypeDef]:
    return {
        "PK": _s(_appt_pk(appointment.id)),
        "SK": _s(history_key(appointment.version, index)),
        "kind": _s("history"),
        "doc": _s(entry.model_dump_json()),
        # The appointment as this entry left it: its domain event is built from this one item, so the two
        # can never disagree.
        "appointment": _s(json.dumps(appointment_summary(appointment))),
    }


def history_key(version: int, index: int) -> str:
    return f"H#{version:010d}#{index:03d}"


def appointment_summary(appointment: Appointment) -> dict[str, Any]:
    """What a consumer of the domain events needs to act without reading the table (no customer contact)."""
    ticket = appointment.ticket
    return {
        "id": appointment.id,
        "version": appointment.version,
        "status": appointment.status.value,
        "start": appointment.start.isoformat(),
        "end": appointment.end.isoformat(),
        "timezone": appointment.timezone,
        "type": appointment.type,
        "technicians": [t.id for t in appointment.technicians],
        "ticket": None if ticket is None else ticket.model_dump(),
        "external_ids": [str(ref) for ref in appointment.external_refs],
    }


def _mail_key(appointment_id: str, mail_key: str) -> dict[str, AttributeValueTypeDef]:
    return {"PK": _s(_appt_pk(appointment_id)), "SK": _s(f"MAIL#{mail_key}")}


def _ref_item(ref: ExternalRef, appointment_id: str) -> dict[str, AttributeValueTypeDef]:
    return {"PK": _s(_ref_pk(ref)), "SK": _s("REF"), "kind": _s("ref"), "appointment_id": _s(appointment_id)}


def _coupon_item(coupon: Coupon, appointment_id: str) -> dict[str, AttributeValueTypeDef]:
    return {
        "PK": _s(f"COUPON#{coupon.code}"),
        "SK": _s("COUPON"),
        "kind": _s("coupon"),
        "appointment_id": _s(appointment_id),
        "percent": _n(coupon.percent),
        "expires_at": _s(coupon.expires_at.isoformat()),
    }


def _ticket_item(ticket: TicketRef, appointment: Appointment) -> dict[str, AttributeValueTypeDef]:
    return {
        "PK": _s(_ticket_pk(ticket)),
        "SK": _s(f"APPT#{appointment.id}"),
        "kind": _s("ticket"),
        "appointment_id": _s(appointment.id),
    }


def _appointment_from(item: Mapping[str, Any]) -> Appointment:
    return Appointment.model_validate_json(item["doc"]["S"])


def _mail_from(item: Mapping[str, Any]) -> OutboxMail:
    fields = json.loads(item["doc"]["S"])
    fields["status"] = item["status"]["S"]
    if "sent_at" in item:
        fields["sent_at"] = item["sent_at"]["S"]
    if "attempts" in item:
        fields["attempts"] = int(item["attempts"]["N"])
    if "message_id" in item:
        fields["message_id"] = item["message_id"]["S"]
    return OutboxMail.model_validate(fields)


def _parse_key_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _due_item_from(item: Mapping[str, Any]) -> DueItem:
    appointment_id = item["PK"]["S"].removeprefix("APPT#")
    sk: str = item["SK"]["S"]
    due_at = _parse_key_time(item["due_at"]["S"])
    if sk.startswith("MAIL#"):
        return DueItem(
            kind=DueKind.MAIL, appointment_id=appointment_id, due_at=due_at, mail_key=sk.removeprefix("MAIL#")
        )
    return DueItem(kind=DueKind.APPOINTMENT, appointment_id=appointment_id, due_at=due_at)


def _days(start_from: datetime, start_to: datetime) -> list[date]:
    first = start_from.astimezone(UTC).date()
    last = (start_to.astimezone(UTC) - timedelta(microseconds=1)).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _encode_cursor(day: date, start_key: Mapping[str, Any] | None) -> str:
    payload = {"day": day.isoformat(), "key": start_key}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def _decode_cursor(cursor: str, days: list[date]) -> tuple[int, dict[str, Any] | None]:
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(payload, dict) or not isinstance(payload.get("day"), str):
            raise ValueError("not a cursor")
        day = date.fromisoformat(payload["day"])
        start_key = payload["key"]
        # The by_day index's LastEvaluatedKey, as _encode_cursor wrote it: the table's and the index's keys,
        # each a string. Anything else would reach DynamoDB and fail there, as a 500.
        if start_key is not None and not (
            isinstance(start_key, dict)
            and set(start_key) == {"PK", "SK", "day", "start_key"}
            and all(isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str) for v in start_key.values())
            and start_key["day"]["S"] == f"DAY#{day.isoformat()}"
        ):
            raise ValueError("bad key")
        return days.index(day), start_key
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, binascii.Error):
        raise InvalidInput("cursor", "is not a cursor from this listing") from None


def _conditional_failure_at(error: ClientError, first: int) -> bool:
    """A cancelled transaction whose only conditional failures are at ``first`` or later."""
    reasons: list[dict[str, Any]] = error.response.get("CancellationReasons", [])  # type: ignore[assignment]
    failed = [i for i, reason in enumerate(reasons) if reason.get("Code") == "ConditionalCheckFailed"]
    return bool(failed) and min(failed) >= first


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def store_error(error: ClientError) -> Exception:
    """A DynamoDB error as the typed error callers branch on: retryable (throttling) or not."""
    code = _code(error)
    if code in _RETRYABLE_CODES:
        return StoreUnavailable("the appointment store is busy; try again")
    return StoreError(f"the appointment store refused the request ({code})")


@contextmanager
def _translated() -> Iterator[None]:
    """DynamoDB errors raised inside become typed errors."""
    try:
        yield
    except ClientError as error:
        raise store_error(error) from error
