"""Integration fixtures: moto in-process, with the resources built from template.yaml itself."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from appointments.adapters.dynamo_store import DynamoAppointmentStore
from localdev.resources import create_tables
from localdev.template import load_template
from tests.fakes import InMemoryAppointmentStore

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_dynamodb import DynamoDBClient

    from appointments.ports import AppointmentStore

TABLE = "AppointmentsTable"


class CallCounter:
    """Counts the AWS operations a client makes: the bill, per appointment."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, model: Any, **kwargs: Any) -> None:
        self.calls[model.name] += 1

    def reset(self) -> None:
        self.calls.clear()


@pytest.fixture
def dynamodb() -> Iterator[DynamoDBClient]:
    with mock_aws():
        create_tables(load_template())
        yield boto3.client("dynamodb", region_name="us-east-1")


@pytest.fixture
def aws_calls(dynamodb: DynamoDBClient) -> CallCounter:
    counter = CallCounter()
    dynamodb.meta.events.register("before-call.dynamodb.*", counter)
    return counter


@pytest.fixture
def dynamo_store(dynamodb: DynamoDBClient) -> DynamoAppointmentStore:
    return DynamoAppointmentStore(dynamodb, TABLE, due_shards=4)


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest) -> AppointmentStore:
    """The store contract holds for the in-memory fake and the DynamoDB adapter alike."""
    if request.param == "memory":
        return InMemoryAppointmentStore(due_shards=4)
    return request.getfixturevalue("dynamo_store")  # type: ignore[no-any-return]
