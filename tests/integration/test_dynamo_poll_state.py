"""The poller's cursor in the appointments table (moto, the table built from template.yaml): one item per
poller, saved only over the version it was read at, so two overlapping runs never both move it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from botocore.stub import Stubber

from appointments.adapters.dynamo_poll_state import DynamoPollState
from appointments.domain.polling import PollState
from appointments.errors import StoreError, StoreUnavailable
from tests.integration.conftest import TABLE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

AT = datetime(2026, 12, 1, 8, 0, 30, tzinfo=UTC)


def state(version: int, *, since: int = 1_764_576_000, seen: dict[str, int] | None = None) -> PollState:
    return PollState(since=since, seen=seen or {}, tokens=3.25, tokens_at=AT, version=version)


@pytest.fixture
def cursors(dynamodb: DynamoDBClient) -> DynamoPollState:
    return DynamoPollState(dynamodb, TABLE)


def test_there_is_no_cursor_before_the_first_save(cursors: DynamoPollState) -> None:
    # Given a table nobody polled into
    # Then the poller has no saved state
    assert cursors.poll_state("timezest") is None


def test_the_first_save_reads_back_equal(cursors: DynamoPollState, dynamodb: DynamoDBClient) -> None:
    # Given a first cursor, with changes seen and a bucket level
    first = state(1, seen={"sreq_0001": 1_764_576_100, "sreq_0002": 1_764_576_200})
    # When saved
    assert cursors.save_poll_state("timezest", first) is True
    # Then it reads back equal, in one item under POLL#timezest / STATE
    assert cursors.poll_state("timezest") == first
    items = dynamodb.scan(TableName=TABLE)["Items"]
    assert [(i["PK"]["S"], i["SK"]["S"], i["version"]["N"]) for i in items] == [("POLL#timezest", "STATE", "1")]
    # And another poller's cursor is another item
    assert cursors.poll_state("other") is None


def test_each_save_moves_the_version_on_by_one(cursors: DynamoPollState) -> None:
    # Given a saved cursor at version 1
    assert cursors.save_poll_state("timezest", state(1))
    # When the next run saves version 2, then 3
    assert cursors.save_poll_state("timezest", state(2, since=1_764_576_060))
    assert cursors.save_poll_state("timezest", state(3, since=1_764_576_120))
    # Then the latest is stored
    stored = cursors.poll_state("timezest")
    assert stored is not None
    assert (stored.version, stored.since) == (3, 1_764_576_120)


def test_a_save_over_a_stale_version_is_refused_and_the_stored_one_kept(cursors: DynamoPollState) -> None:
    # Given a cursor at version 2 (two runs saved)
    assert cursors.save_poll_state("timezest", state(1))
    current = state(2, since=1_764_576_060)
    assert cursors.save_poll_state("timezest", current)
    # When a run that read version 1 (it overlapped) saves its version 2, and one skips ahead to 4
    overlapping = cursors.save_poll_state("timezest", state(2, since=1_764_579_999))
    skipping = cursors.save_poll_state("timezest", state(4, since=1_764_579_999))
    # Then both are refused and the stored cursor is the one that won
    assert (overlapping, skipping) == (False, False)
    assert cursors.poll_state("timezest") == current


def test_two_first_saves_only_the_first_wins(cursors: DynamoPollState) -> None:
    # Given two runs that both found no cursor
    winner = state(1, since=1_764_576_000)
    # When both save version 1
    assert cursors.save_poll_state("timezest", winner) is True
    assert cursors.save_poll_state("timezest", state(1, since=1_764_577_777)) is False
    # Then the first is kept
    assert cursors.poll_state("timezest") == winner


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ThrottlingException"])
def test_a_throttled_read_or_save_is_store_unavailable(dynamodb: DynamoDBClient, code: str) -> None:
    # Given DynamoDB throttling every call
    cursors = DynamoPollState(dynamodb, TABLE)
    with Stubber(dynamodb) as stub:
        stub.add_client_error("get_item", service_error_code=code, http_status_code=400)
        stub.add_client_error("put_item", service_error_code=code, http_status_code=400)
        # When the poller reads, then saves, its cursor
        # Then each is StoreUnavailable: the next run may succeed
        with pytest.raises(StoreUnavailable):
            cursors.poll_state("timezest")
        with pytest.raises(StoreUnavailable):
            cursors.save_poll_state("timezest", state(2))
        stub.assert_no_pending_responses()


def test_a_refused_request_is_a_store_error_not_a_retry(dynamodb: DynamoDBClient) -> None:
    # Given DynamoDB refusing a request for a reason retrying will not fix
    cursors = DynamoPollState(dynamodb, TABLE)
    with Stubber(dynamodb) as stub:
        stub.add_client_error("put_item", service_error_code="ValidationException", http_status_code=400)
        # When the cursor is saved
        # Then it is a StoreError, not StoreUnavailable
        with pytest.raises(StoreError) as raised:
            cursors.save_poll_state("timezest", state(1))
        assert not isinstance(raised.value, StoreUnavailable)


def test_a_missing_table_is_a_store_error(dynamodb: DynamoDBClient) -> None:
    # Given a poller configured with a table that does not exist
    cursors = DynamoPollState(dynamodb, "NoSuchTable")
    # When it reads its cursor
    # Then the adapter's error, not botocore's
    with pytest.raises(StoreError):
        cursors.poll_state("timezest")
