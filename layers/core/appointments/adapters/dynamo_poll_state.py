"""A poller's cursor and rate budget: one item per poller in the appointments table (``POLL#<poller>``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from appointments.adapters.dynamo_store import store_error
from appointments.domain.polling import PollState

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_SK = "STATE"


class DynamoPollState:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def poll_state(self, poller: str) -> PollState | None:
        try:
            item = self._client.get_item(
                TableName=self._table, Key={"PK": {"S": f"POLL#{poller}"}, "SK": {"S": _SK}}, ConsistentRead=True
            ).get("Item")
        except ClientError as error:
            raise store_error(error) from error
        return PollState.model_validate_json(item["doc"]["S"]) if item else None

    def save_poll_state(self, poller: str, state: PollState) -> bool:
        condition = (
            {"ConditionExpression": "attribute_not_exists(PK)"}
            if state.version == 1
            else {
                "ConditionExpression": "version = :previous",
                "ExpressionAttributeValues": {":previous": {"N": str(state.version - 1)}},
            }
        )
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "PK": {"S": f"POLL#{poller}"},
                    "SK": {"S": _SK},
                    "kind": {"S": "poll_state"},
                    "version": {"N": str(state.version)},
                    "doc": {"S": state.model_dump_json()},
                },
                **condition,
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise store_error(error) from error
        return True
