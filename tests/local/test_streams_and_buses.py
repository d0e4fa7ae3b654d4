"""The runner's DynamoDB stream and event-bus emulation, on a small fixture template.

RelayFunction reads the outbox table's stream through a filter (inserted mail rows only) and reports
partial failures; AuditFunction reads every change in batches it halves on error; NoticeFunction has
rules on the desk's bus and on the default bus. Each records what it got, and how often, in SeenTable,
which the tests read straight from the embedded moto server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from localdev.clock import RunnerClock
from localdev.resources import ACCOUNT_ID, REGION
from localdev.runner import Runner, RunnerConfig, StartupError
from localdev.template import TemplateError
from tests.local.conftest import FIXTURES, START, LocalRunner, running

if TYPE_CHECKING:
    from collections.abc import Iterator

TEMPLATE = FIXTURES / "streams" / "template.yaml"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalRunner]:
    with running(TEMPLATE) as local:
        yield local


@pytest.fixture(autouse=True)
def _fresh(stack: LocalRunner) -> None:
    assert stack.post("/_local/reset").status == 200


def put_row(key: str, **attributes: Any) -> None:
    """A row of the outbox, written as the product would: straight to DynamoDB."""
    item: dict[str, Any] = {"PK": {"S": key}}
    for name, value in attributes.items():
        if isinstance(value, bool):
            item[name] = {"BOOL": value}
        elif isinstance(value, int):
            item[name] = {"N": str(value)}
        elif isinstance(value, bytes):
            item[name] = {"B": value}
        else:
            item[name] = {"S": value}
    boto3.client("dynamodb", region_name=REGION).put_item(TableName="OutboxTable", Item=item)


def seen(key: str) -> dict[str, Any] | None:
    item = boto3.client("dynamodb", region_name=REGION).get_item(TableName="SeenTable", Key={"PK": {"S": key}})
    found: dict[str, Any] | None = item.get("Item")
    return found


def deliveries(key: str) -> int:
    item = seen(key)
    return int(item["deliveries"]["N"]) if item else 0


def put_event(bus: str, source: str, detail_type: str, detail: dict[str, Any]) -> str:
    entry = {"EventBusName": bus, "Source": source, "DetailType": detail_type, "Detail": json.dumps(detail)}
    reply = boto3.client("events", region_name=REGION).put_events(Entries=[entry])  # type: ignore[list-item]
    assert reply["FailedEntryCount"] == 0
    return reply["Entries"][0]["EventId"]


def settle(local: LocalRunner) -> dict[str, int]:
    reply = local.post("/_local/settle")
    assert reply.status == 200
    handled: dict[str, int] = reply.json()
    return handled


# --- the stream


def test_only_inserted_mail_rows_reach_the_filtered_function_and_each_once(stack: LocalRunner) -> None:
    # Given two mail rows and a text row inserted, one mail row changed and the other deleted
    put_row("m1", kind="mail")
    put_row("m2", kind="mail")
    put_row("s1", kind="sms")
    boto3.client("dynamodb", region_name=REGION).update_item(
        TableName="OutboxTable",
        Key={"PK": {"S": "m1"}},
        UpdateExpression="SET sent = :yes",
        ExpressionAttributeValues={":yes": {"BOOL": True}},
    )
    boto3.client("dynamodb", region_name=REGION).delete_item(TableName="OutboxTable", Key={"PK": {"S": "m2"}})

    # When the runner settles, twice
    settle(stack)
    settle(stack)

    # Then each inserted mail row reached the relay once; the text row, the change and the removal never did
    assert (deliveries("relay#m1"), deliveries("relay#m2"), deliveries("relay#s1")) == (1, 1, 0)
    # while the unfiltered mapping on the same stream saw every change, in order
    assert audit_log() == ["INSERT m1", "INSERT m2", "INSERT s1", "MODIFY m1", "REMOVE m2"]


def test_the_function_gets_the_record_lambda_sends(stack: LocalRunner) -> None:
    # Given a mail row with a binary attribute
    put_row("m1", kind="mail", blob=b"\x00\x01")

    # When the runner settles
    settle(stack)

    # Then the relay got a DynamoDB stream record as Lambda shapes it
    item = seen("relay#m1")
    assert item is not None
    record = json.loads(item["record"]["S"])
    stream_arn = boto3.client("dynamodb", region_name=REGION).describe_table(TableName="OutboxTable")["Table"][
        "LatestStreamArn"
    ]
    envelope = ("eventName", "eventVersion", "eventSource", "awsRegion", "eventSourceARN")
    assert {key: record[key] for key in envelope} == {
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": REGION,
        "eventSourceARN": stream_arn,
    }
    assert record["eventID"]
    change = record["dynamodb"]
    assert change["Keys"] == {"PK": {"S": "m1"}}
    assert change["NewImage"] == {"PK": {"S": "m1"}, "kind": {"S": "mail"}, "blob": {"B": "AAE="}}
    assert "OldImage" not in change
    assert change["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert change["SequenceNumber"].isdigit()
    assert change["SizeBytes"] > 0
    assert change["ApproximateCreationDateTime"] == int(START.timestamp())  # the runner's (manual) clock


def test_settle_waits_for_the_stream_and_for_what_it_leads_to(stack: LocalRunner) -> None:
    # Given a mail row the relay announces on the desk's bus, and nothing pumped yet
    put_row("m1", kind="mail", announce=True)
    assert deliveries("relay#m1") == 0

    # When the runner settles
    handled = settle(stack)

    # Then the row went through the stream to the relay (and the audit), and its event through the bus
    assert (deliveries("relay#m1"), deliveries("notice#m1")) == (1, 1)
    assert audit_log() == ["INSERT m1"]
    assert handled == {"handled": 0, "stream_records": 2, "events": 1, "notifications": 0}


def test_a_failed_record_is_retried_from_it_and_the_records_before_it_are_not(stack: LocalRunner) -> None:
    # Given three mail rows in one batch, the second failing its first delivery
    put_row("a", kind="mail")
    put_row("b", kind="mail", fail_times=1)
    put_row("c", kind="mail")

    # When the runner settles
    settle(stack)

    # Then the batch was retried from the failed record: the one before it was not delivered again
    assert (deliveries("relay#a"), deliveries("relay#b"), deliveries("relay#c")) == (1, 2, 2)
    assert failures_reported(stack) == []


def test_a_record_that_keeps_failing_is_given_up_after_its_retries_and_reported(
    stack: LocalRunner, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a mail row that always fails
    put_row("d", kind="mail", fail_times=99)

    # When the runner settles
    settle(stack)

    # Then it was delivered once and retried MaximumRetryAttempts (2) times, then given up on
    assert deliveries("relay#d") == 3
    assert "RelayFunction.Outbox: dropped 1 stream record(s)" in capsys.readouterr().err
    # and the OnFailure queue was told where the batch was, as Lambda tells it
    [report] = failures_reported(stack)
    sequence = json.loads(seen("relay#d")["record"]["S"])["dynamodb"]["SequenceNumber"]  # type: ignore[index]
    assert report["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert report["requestContext"]["approximateInvokeCount"] == 3
    assert report["requestContext"]["functionArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:RelayFunction"
    batch = report["DDBStreamBatchInfo"]
    assert (batch["startSequenceNumber"], batch["endSequenceNumber"], batch["batchSize"]) == (sequence, sequence, 1)
    assert batch["streamArn"].startswith(f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/OutboxTable/stream/")

    # When a later row is written
    put_row("e", kind="mail")
    settle(stack)

    # Then the stream moved on past the dropped one
    assert (deliveries("relay#d"), deliveries("relay#e")) == (3, 1)


def test_a_batch_that_raises_is_halved_until_the_poisoned_row_is_isolated_and_dropped(stack: LocalRunner) -> None:
    # Given four rows in one batch of the audit (BatchSize 4), the third poisoned
    put_row("a")
    put_row("b")
    put_row("c", poison="yes")
    put_row("d")

    # When the runner settles
    settle(stack)

    # Then the halves went through, and the poisoned row alone was retried once, then dropped:
    # [a b c d] fails, [a b] passes, [c d] fails, [c] fails twice, [d] passes
    assert audit_log() == ["INSERT a", "INSERT b", "INSERT d"]
    assert int(seen("audit#calls")["calls"]["N"]) == 6  # type: ignore[index]


def test_a_write_that_changes_nothing_gives_no_record(stack: LocalRunner) -> None:
    # Given a row written, then written again unchanged, then changed
    put_row("a", note="x")
    put_row("a", note="x")
    put_row("a", note="y")

    # When the runner settles
    settle(stack)

    # Then the stream held the insert and the one real change
    assert audit_log() == ["INSERT a", "MODIFY a"]


# --- event buses


def test_every_event_put_on_a_bus_is_listed_oldest_first_until_a_reset(stack: LocalRunner) -> None:
    # Given events put on the desk's bus and on the default bus
    first = put_event("desk-events", "billing.test", "invoice", {"n": 1})
    second = put_event("default", "ops.test", "ping", {"id": "o1"})
    third = put_event("desk-events", "billing.test", "invoice", {"n": 2})

    # When they are listed
    items = stack.get("/_local/events").json()["items"]

    # Then every one is there, oldest first, as put
    assert [(item["id"], item["bus"], item["source"], item["detail_type"], item["detail"]) for item in items] == [
        (first, "desk-events", "billing.test", "invoice", {"n": 1}),
        (second, "default", "ops.test", "ping", {"id": "o1"}),
        (third, "desk-events", "billing.test", "invoice", {"n": 2}),
    ]
    assert all(datetime.fromisoformat(item["time"]).tzinfo is not None for item in items)

    # When the runner is reset
    stack.post("/_local/reset")

    # Then the list is empty
    assert stack.get("/_local/events").json() == {"items": []}


def test_a_rule_delivers_only_the_matching_events_of_its_own_bus(stack: LocalRunner) -> None:
    # Given events for each rule, on its bus and on the other one, and one no rule matches
    mail = put_event("desk-events", "desk.outbox", "mail", {"id": "m1"})
    put_event("desk-events", "desk.outbox", "sms", {"id": "s1"})
    put_event("default", "desk.outbox", "mail", {"id": "d1"})
    put_event("default", "ops.alarm", "alarm", {"id": "o1"})
    put_event("desk-events", "ops.alarm", "alarm", {"id": "o2"})

    # When they are listed (which takes them off the tap), then the runner settles
    assert len(stack.get("/_local/events").json()["items"]) == 5
    settle(stack)

    # Then each rule's function got the matching events of its own bus, once
    assert {key: deliveries(f"notice#{key}") for key in ("m1", "s1", "d1", "o1", "o2")} == {
        "m1": 1,
        "s1": 0,
        "d1": 0,
        "o1": 1,
        "o2": 0,
    }
    # as EventBridge hands an event to its target
    event = json.loads(seen("notice#m1")["event"]["S"])  # type: ignore[index]
    assert {key: event[key] for key in ("version", "id", "detail-type", "source", "account", "region", "detail")} == {
        "version": "0",
        "id": mail,
        "detail-type": "mail",
        "source": "desk.outbox",
        "account": ACCOUNT_ID,
        "region": REGION,
        "detail": {"id": "m1"},
    }
    assert event["resources"] == []
    assert datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%S%z")


def test_a_failing_rule_target_is_retried_at_once_then_dropped(
    stack: LocalRunner, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an event whose function fails once, and one whose function always fails
    put_event("desk-events", "desk.outbox", "mail", {"id": "f1", "fail_notice": 1})
    put_event("desk-events", "desk.outbox", "mail", {"id": "f2", "fail_notice": 99})

    # When the runner settles
    settle(stack)

    # Then the first succeeded on its retry; the second was tried three times (Lambda's 2 retries), then dropped
    assert (deliveries("notice#f1"), deliveries("notice#f2")) == (2, 3)
    assert "NoticeFunction.OnMail: dropped event" in capsys.readouterr().err


def test_health_lists_the_streams_and_rules(stack: LocalRunner) -> None:
    health = stack.get("/_local/health").json()
    assert health["streams"] == [
        "OutboxTable stream → RelayFunction (batches of 10, 1 filter(s), partial failures, 2 retries, "
        "on failure → RelayFailuresQueue)",
        "OutboxTable stream → AuditFunction (batches of 4, 1 retries)",
    ]
    assert [rule.split(":")[0] for rule in health["rules"]] == ["desk-events", "default"]


# --- what the runner cannot emulate stops it at start


def _variant(tmp_path: Path, old: str, new: str) -> Path:
    template = TEMPLATE.read_text()
    assert old in template
    target = tmp_path / "template.yaml"
    target.write_text(template.replace(old, new))
    (tmp_path / "functions").symlink_to(TEMPLATE.parent / "functions")
    return target


AUDIT = "            BisectBatchOnFunctionError: true\n"
MAIL_RULE = "              detail-type: [mail]\n"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            AUDIT,
            AUDIT + "            TumblingWindowInSeconds: 60\n",
            r"Resources\.AuditFunction\.Properties\.Events\.Everything: TumblingWindowInSeconds not emulated",
        ),
        (
            "StartingPosition: LATEST",
            "StartingPosition: AT_TIMESTAMP",
            r"Events\.Everything\.StartingPosition: must be TRIM_HORIZON or LATEST",
        ),
        (
            "            MaximumRetryAttempts: 1\n",
            "            MaximumRetryAttempts: 1\n            FunctionResponseTypes: [Everything]\n",
            r"Events\.Everything\.FunctionResponseTypes",
        ),
        (
            "Stream: !GetAtt OutboxTable.StreamArn\n            StartingPosition: LATEST",
            "Stream: !GetAtt SeenTable.StreamArn\n            StartingPosition: LATEST",
            r"Events\.Everything\.Stream: SeenTable has no StreamSpecification",
        ),
        (
            """'{"eventName": ["INSERT"],""",
            """'{"eventName": "INSERT",""",
            r"Events\.Outbox\.FilterCriteria\.Filters\[0\]\.Pattern: .*'eventName' must be an object or an array",
        ),
        (
            "                Type: SQS\n",
            "                Type: SNS\n",
            r"Events\.Outbox\.DestinationConfig\.OnFailure: only an SQS queue",
        ),
        (
            MAIL_RULE,
            MAIL_RULE + "            InputTransformer: {InputTemplate: '\"<source>\"'}\n",
            r"Events\.OnMail: InputTransformer not emulated",
        ),
        (
            "EventBusName: !Ref DeskBus",
            "EventBusName: partner-bus",
            r"Events\.OnMail\.EventBusName: 'partner-bus' is neither default nor",
        ),
        (
            "source: [{prefix: ops.}]",
            "source: ops.",
            r"Events\.OnOps\.Pattern: .*'source' must be an object or an array",
        ),
    ],
)
def test_a_stream_or_rule_the_runner_cannot_emulate_stops_it_naming_where(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    with pytest.raises((TemplateError, StartupError), match=message):
        Runner(RunnerConfig(template_path=_variant(tmp_path, old, new)), RunnerClock())


def test_serve_refuses_such_a_template_with_the_message_and_exit_code_2(tmp_path: Path) -> None:
    # Given a template whose stream asks for tumbling windows
    template = _variant(tmp_path, AUDIT, AUDIT + "            TumblingWindowInSeconds: 60\n")
    environment = {key: value for key, value in os.environ.items() if not key.startswith("AWS_ENDPOINT_URL")}

    # When `python -m localdev serve` is started on it
    finished = subprocess.run(  # noqa: S603 - this interpreter running the runner's own module
        [sys.executable, "-m", "localdev", "serve", "--port", "0", "--template", str(template)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # Then it stops at once, saying what and where
    assert finished.returncode == 2
    assert "localdev: Resources.AuditFunction.Properties.Events.Everything: TumblingWindowInSeconds" in finished.stderr


# --- helpers reading what the functions recorded


def audit_log() -> list[str]:
    item = seen("audit#log")
    return [entry["S"] for entry in item["entries"]["L"]] if item else []


def failures_reported(local: LocalRunner) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name=REGION)
    url = local.runner.provisioned.physical["RelayFailuresQueue"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]
