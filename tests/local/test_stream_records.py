"""The stream pump's and the event tap's pure parts: records, filters, partial answers, events. Nothing starts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from localdev.eventbridge import target_event
from localdev.streams import Attempt, FilterError, changes_nothing, compile_filters, first_failure, lambda_record

READ_AT = datetime(2026, 11, 23, 10, 0, 30, 900000, tzinfo=UTC)
STREAM = "arn:aws:dynamodb:us-east-1:123456789012:table/T/stream/2026-11-23T10:00:00.000"


def raw(sequence: str, event_name: str = "INSERT", **images: Any) -> dict[str, Any]:
    """A record as boto3's GetRecords returns it from moto."""
    return {
        "eventID": f"id-{sequence}",
        "eventName": event_name,
        "eventVersion": "1.0",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": datetime(2031, 1, 1, tzinfo=UTC),
            "Keys": {"PK": {"S": "a"}},
            "SequenceNumber": sequence,
            "SizeBytes": 42,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
            **images,
        },
    }


def records(*sequences: str) -> list[dict[str, Any]]:
    return [lambda_record(raw(sequence), STREAM, read_at=READ_AT) for sequence in sequences]


def test_a_record_is_shaped_as_lambda_sends_it_with_binary_as_base64_and_the_time_in_whole_seconds() -> None:
    image = {"PK": {"S": "a"}, "blob": {"B": b"\x00\x01"}, "set": {"BS": [b"\xff"]}, "list": {"L": [{"B": b"A"}]}}

    record = lambda_record(raw("7", NewImage=image), STREAM, read_at=READ_AT)

    assert record["eventVersion"] == "1.1"
    assert record["eventSourceARN"] == STREAM
    assert record["dynamodb"]["NewImage"] == {
        "PK": {"S": "a"},
        "blob": {"B": "AAE="},
        "set": {"BS": ["/w=="]},
        "list": {"L": [{"B": "QQ=="}]},
    }
    assert record["dynamodb"]["ApproximateCreationDateTime"] == int(READ_AT.timestamp())


def test_a_modify_with_equal_images_changes_nothing() -> None:
    same = {"PK": {"S": "a"}, "n": {"N": "1"}}
    assert changes_nothing(raw("1", "MODIFY", NewImage=same, OldImage=dict(same)))
    assert not changes_nothing(raw("1", "MODIFY", NewImage=same, OldImage={"PK": {"S": "a"}}))
    assert not changes_nothing(raw("1", "MODIFY", NewImage=same))  # NEW_IMAGE only: cannot tell


def test_filters_pass_a_record_any_pattern_matches_and_none_means_all() -> None:
    mail = lambda_record(raw("1", NewImage={"kind": {"S": "mail"}}), STREAM, read_at=READ_AT)
    text = lambda_record(raw("2", NewImage={"kind": {"S": "sms"}}), STREAM, read_at=READ_AT)
    removal = lambda_record(raw("3", "REMOVE", OldImage={"kind": {"S": "mail"}}), STREAM, read_at=READ_AT)

    inserted_mail = compile_filters(['{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"kind": {"S": ["mail"]}}}}'])
    removals_or_text = compile_filters(
        ['{"eventName": ["REMOVE"]}', '{"dynamodb": {"NewImage": {"kind": {"S": [{"prefix": "sm"}]}}}}']
    )

    assert [inserted_mail(r) for r in (mail, text, removal)] == [True, False, False]
    assert [removals_or_text(r) for r in (mail, text, removal)] == [False, True, True]
    assert all(compile_filters([])(r) for r in (mail, text, removal))


@pytest.mark.parametrize("pattern", ['{"eventName": "INSERT"}', "not json", '{"eventName": []}'])
def test_a_pattern_moto_refuses_is_a_filter_error_naming_it(pattern: str) -> None:
    with pytest.raises(FilterError, match=r"Filters\[1\]\.Pattern"):
        compile_filters(['{"eventName": ["INSERT"]}', pattern])


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (None, Attempt(None)),
        ({}, Attempt(None)),
        ({"batchItemFailures": []}, Attempt(None)),
        ({"batchItemFailures": None}, Attempt(None)),
        ({"batchItemFailures": [{"itemIdentifier": "3"}, {"itemIdentifier": "2"}]}, Attempt(1)),
        ({"batchItemFailures": [{"itemIdentifier": "9"}]}, Attempt(0, function_error=True)),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, Attempt(0, function_error=True)),
        ({"batchItemFailures": [{"id": "2"}]}, Attempt(0, function_error=True)),
        ("ok", Attempt(0, function_error=True)),
    ],
)
def test_a_partial_answer_is_read_as_lambda_reads_it_for_a_stream(answer: Any, expected: Attempt) -> None:
    assert first_failure(answer, records("1", "2", "3")) == expected


def test_a_tapped_event_is_what_eventbridge_hands_a_target() -> None:
    tapped = {
        "version": "0",
        "id": "e-1",
        "detail-type": "mail",
        "source": "desk.outbox",
        "account": "123456789012",
        "time": 1795428030.25,
        "region": "us-east-1",
        "resources": [],
        "detail": {"id": "m1"},
        "ingestion-time": 1795428030.3,
    }

    assert target_event(tapped) == {
        "version": "0",
        "id": "e-1",
        "detail-type": "mail",
        "source": "desk.outbox",
        "account": "123456789012",
        "time": "2026-11-23T10:00:30Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"id": "m1"},
    }
