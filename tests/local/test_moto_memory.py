"""``localdev.moto_memory``: moto keeps no copies, and its transactions mean what they meant.

Each transaction case runs on moto as it is and on moto patched, and must leave the same items and
give a stream reader the same records, but where moto's swap of the table misleads the reader. Then
what only the patch does: no model kept, no table swapped under a stream reader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from localdev.moto_memory import moto_patched

if TYPE_CHECKING:
    from collections.abc import Iterator

REGION = "us-east-1"
TABLE = "Things"


@pytest.fixture(params=["moto", "patched"])
def dynamodb(request: pytest.FixtureRequest) -> Iterator[Any]:
    with mock_aws():
        client: Any = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "PK", "AttributeType": "S"},
                {"AttributeName": "SK", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        )
        client.put_item(TableName=TABLE, Item=_item("a", "1", "old"))
        if request.param == "patched":
            with moto_patched():
                yield client
        else:
            yield client


def _patched() -> bool:
    from moto.dynamodbstreams.models import ShardIterator

    return getattr(ShardIterator.get, "__name__", "") == "read_stream"


def _tracked(model: type) -> int:
    """How many of its objects moto keeps for its dashboard."""
    return len(vars(model)["instances_tracked"])


def _item(pk: str, sk: str, value: str) -> dict[str, Any]:
    return {"PK": {"S": pk}, "SK": {"S": sk}, "value": {"S": value}}


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"PK": {"S": pk}, "SK": {"S": sk}}


def _everything(client: Any) -> list[tuple[str, str, str]]:
    items = client.scan(TableName=TABLE)["Items"]
    return sorted((i["PK"]["S"], i["SK"]["S"], i.get("value", {}).get("S", "")) for i in items)


def _stream(client: Any) -> Any:
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    arn = client.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    return streams, iterator["ShardIterator"]


def _read(streams: Any, iterator: str) -> tuple[list[tuple[str, str]], str]:
    page = streams.get_records(ShardIterator=iterator)
    records = [(r["eventName"], r["dynamodb"]["Keys"]["SK"]["S"]) for r in page["Records"]]
    return records, page["NextShardIterator"]


def _put(pk: str, sk: str, value: str, *, new: bool = False) -> dict[str, Any]:
    put: dict[str, Any] = {"TableName": TABLE, "Item": _item(pk, sk, value)}
    if new:
        put["ConditionExpression"] = "attribute_not_exists(PK)"
    return {"Put": put}


def _update(pk: str, sk: str, value: str) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": TABLE,
            "Key": _key(pk, sk),
            "UpdateExpression": "SET #v = :v",
            "ExpressionAttributeNames": {"#v": "value"},
            "ExpressionAttributeValues": {":v": {"S": value}},
        }
    }


def test_a_committed_transaction_writes_every_item_and_its_records(dynamodb: Any) -> None:
    streams, iterator = _stream(dynamodb)
    _, iterator = _read(streams, iterator)

    dynamodb.transact_write_items(
        TransactItems=[_put("b", "1", "new", new=True), _update("a", "1", "changed"), _put("c", "9", "x")]
    )

    assert _everything(dynamodb) == [("a", "1", "changed"), ("b", "1", "new"), ("c", "9", "x")]
    assert _read(streams, iterator)[0] == [("INSERT", "1"), ("MODIFY", "1"), ("INSERT", "9")]


def test_a_cancelled_transaction_leaves_no_item_and_no_record(dynamodb: Any) -> None:
    streams, iterator = _stream(dynamodb)
    _, iterator = _read(streams, iterator)

    # The third item's condition fails after the first two were written (moto writes as it goes).
    missing = {"TableName": TABLE, "Key": _key("z", "0"), "ConditionExpression": "attribute_exists(PK)"}
    items = [_put("b", "1", "new"), _update("a", "1", "changed"), {"ConditionCheck": missing}]
    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(TransactItems=items)

    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert _everything(dynamodb) == [("a", "1", "old")]
    if _patched():
        assert _read(streams, iterator)[0] == []
    else:  # moto swapped a copy in: the reader holds the old table's stream, which kept the cancelled writes
        assert _read(streams, iterator)[0] == [("INSERT", "1"), ("MODIFY", "1")]


def test_an_item_named_twice_is_refused_and_nothing_stays(dynamodb: Any) -> None:
    with pytest.raises(ClientError) as refused:
        dynamodb.transact_write_items(TransactItems=[_put("b", "1", "new"), _update("b", "1", "changed")])

    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert _everything(dynamodb) == [("a", "1", "old")]


def test_a_stream_reader_sees_the_writes_after_a_cancelled_transaction() -> None:
    with mock_aws(), moto_patched():
        client: Any = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "PK", "AttributeType": "S"},
                {"AttributeName": "SK", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        )
        client.put_item(TableName=TABLE, Item=_item("a", "1", "old"))
        streams, iterator = _stream(client)
        assert _read(streams, iterator)[0] == [("INSERT", "1")]
        _, iterator = _read(streams, iterator)
        with pytest.raises(ClientError):
            client.transact_write_items(TransactItems=[_put("a", "1", "again", new=True)])

        client.put_item(TableName=TABLE, Item=_item("a", "2", "later"))

        # moto alone swaps in a copy of the table: this iterator would read the old table's stream, empty.
        assert _read(streams, iterator)[0] == [("INSERT", "2")]


def test_no_model_is_kept_while_patched_and_tracking_comes_back_after() -> None:
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import StreamRecord, Table

    with mock_aws():
        client: Any = boto3.client("dynamodb", region_name=REGION)
        with moto_patched():
            client.create_table(
                TableName=TABLE,
                KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
                AttributeDefinitions=[
                    {"AttributeName": "PK", "AttributeType": "S"},
                    {"AttributeName": "SK", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
                StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
            )
            kept = [_tracked(model) for model in (Item, StreamRecord, Table)]
            for n in range(20):
                client.transact_write_items(
                    TransactItems=[_put("a", str(n), "x"), _put("b", str(n), "y"), _update("c", "0", str(n))]
                )
            assert [_tracked(model) for model in (Item, StreamRecord, Table)] == kept
            assert len(_everything(client)) == 41

        client.put_item(TableName=TABLE, Item=_item("c", "1", "tracked again"))
        assert _tracked(Item) > kept[0]
