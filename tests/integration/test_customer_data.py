"""tools.customer_data: one customer's data exported and erased, everyone else's left, under moto."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from appointments.adapters.dynamo_store import DynamoAppointmentStore
from appointments.domain import lifecycle
from appointments.domain.ids import new_ulid
from appointments.domain.model import CancelledBy, Coupon, Customer, ExternalRef, TicketRef
from appointments.domain.outbox import MailKind, OutboxMail
from tests.factories import CATALOG, NOW, OPS, a_draft
from tests.integration.conftest import TABLE
from tools import customer_data

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

EVE = Customer(name="Eve Other", email="eve@example.com")


def _book(store: DynamoAppointmentStore, n: int, **draft: Any) -> str:
    at = NOW + timedelta(seconds=n)
    change = lifecycle.create(a_draft(**draft), appointment_id=new_ulid(at), catalog=CATALOG, at=at, actor=OPS)
    to = change.after.customer.email or "x@example.com"
    store.commit(
        change.with_mails(OutboxMail.for_change(MailKind.CONFIRMATION, change.after, to=(to,), at=at, context={}))
    )
    return change.after.id


@pytest.fixture
def booked(dynamo_store: DynamoAppointmentStore) -> dict[str, str]:
    dana_1 = _book(dynamo_store, 1)  # the factory's customer: Dana, dana@example.com
    dana_2 = _book(
        dynamo_store,
        2,
        customer=Customer(name="Dana Reyes", email="Dana@Example.com"),
        external_refs=(ExternalRef(system="calcom", id="b-2"),),
        ticket=TicketRef(system="autotask", id="777"),
    )
    record = dynamo_store.load(dana_2)
    coupon = Coupon(code="SORRY15", percent=15, expires_at=NOW + timedelta(days=180))
    cancelled = lifecycle.cancel(record.appointment, by=CancelledBy.OPS, reason="asked", at=NOW, actor=OPS)
    after = cancelled.after.model_copy(
        update={"cancellation": cancelled.after.cancellation.model_copy(update={"coupon": coupon})}  # type: ignore[union-attr]
    )
    dynamo_store.commit(type(cancelled)(before=cancelled.before, after=after, history=cancelled.history))
    eve = _book(
        dynamo_store,
        3,
        customer=EVE,
        external_refs=(ExternalRef(system="calcom", id="b-3"),),
        ticket=TicketRef(system="autotask", id="888"),
    )
    return {"dana_1": dana_1, "dana_2": dana_2, "eve": eve}


def _keys(dynamodb: DynamoDBClient) -> set[tuple[str, str]]:
    return {(i["PK"]["S"], i["SK"]["S"]) for i in dynamodb.scan(TableName=TABLE)["Items"]}


def test_export_holds_each_appointment_with_its_history_mails_and_links(
    booked: dict[str, str], dynamodb: DynamoDBClient
) -> None:
    document = customer_data.export(dynamodb, TABLE, "DANA@example.com")
    ids = sorted(entry["appointment"]["id"] for entry in document["appointments"])
    assert ids == sorted([booked["dana_1"], booked["dana_2"]])
    cancelled = next(e for e in document["appointments"] if e["appointment"]["id"] == booked["dana_2"])
    assert [h["action"] for h in cancelled["history"]] == ["create", "cancel"]
    assert len(cancelled["mails"]) == 1
    links = {(link["PK"], link["SK"]) for link in document["links"]}
    assert links == {
        ("REF#generic#stf-981", "REF"),
        ("TICKET#autotask#48213", f"APPT#{booked['dana_1']}"),
        ("REF#calcom#b-2", "REF"),
        ("TICKET#autotask#777", f"APPT#{booked['dana_2']}"),
        ("COUPON#SORRY15", "COUPON"),
    }
    assert "eve@example.com" not in json.dumps(document)


def test_erase_deletes_the_customers_items_and_nobody_elses(booked: dict[str, str], dynamodb: DynamoDBClient) -> None:
    before = _keys(dynamodb)
    counted = customer_data.erase(dynamodb, TABLE, "dana@example.com", dry_run=True)
    assert _keys(dynamodb) == before
    assert counted == {"appointment": 2, "coupon": 1, "history": 3, "mail": 2, "ref": 2, "ticket": 2}

    assert customer_data.erase(dynamodb, TABLE, "dana@example.com") == counted
    left = _keys(dynamodb)
    assert len(before) - len(left) == sum(counted.values())
    assert not any(booked["dana_1"] in pk + sk or booked["dana_2"] in pk + sk for pk, sk in left)
    assert {pk for pk, _ in left} == {f"APPT#{booked['eve']}", "REF#calcom#b-3", "TICKET#autotask#888"}
    assert customer_data.export(dynamodb, TABLE, "dana@example.com")["appointments"] == []


def test_the_scan_pages(booked: dict[str, str], dynamodb: DynamoDBClient, monkeypatch: pytest.MonkeyPatch) -> None:
    pages = []
    scan = dynamodb.scan

    def one_item_pages(**request: Any) -> Any:
        pages.append(request.get("ExclusiveStartKey"))
        return scan(**request, Limit=1)

    monkeypatch.setattr(dynamodb, "scan", one_item_pages)
    assert len(customer_data.export(dynamodb, TABLE, "dana@example.com")["appointments"]) == 2
    assert len(pages) > 10  # every item of the table read, one a page


def test_the_command_line(booked: dict[str, str], dynamodb: DynamoDBClient, capsys: pytest.CaptureFixture[str]) -> None:
    assert customer_data.main(["erase", "--email", "eve@example.com", "--table", TABLE, "--region", "us-east-1"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["deleted"]["appointment"] == 1
    with pytest.raises(SystemExit):
        customer_data.main(["export", "--email", "not-an-address", "--table", TABLE])
