"""The runner's SNS emulation, on a small fixture template.

UrgentFunction takes the desk topic's messages whose ``priority`` attribute is ``urgent``, is retried once
and has a dead-letter queue; MailFunction takes those whose body's ``kind`` is ``mail``. Each records what
it got, and how often, in SeenTable, which the tests read straight from the embedded moto server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parser.models import SnsModel

from localdev.clock import RunnerClock
from localdev.resources import ACCOUNT_ID, REGION
from localdev.runner import Runner, RunnerConfig
from localdev.template import TemplateError
from tests.local.conftest import FIXTURES, LocalRunner, running

if TYPE_CHECKING:
    from collections.abc import Iterator

TEMPLATE = FIXTURES / "topics" / "template.yaml"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:local-desk"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalRunner]:
    with running(TEMPLATE) as local:
        yield local


@pytest.fixture(autouse=True)
def _fresh(stack: LocalRunner) -> None:
    assert stack.post("/_local/reset").status == 200


def publish(body: dict[str, Any], *, subject: str | None = None, **attributes: str) -> str:
    request: dict[str, Any] = {"TopicArn": TOPIC_ARN, "Message": json.dumps(body)}
    if subject is not None:
        request["Subject"] = subject
    if attributes:
        request["MessageAttributes"] = {
            name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()
        }
    message_id: str = boto3.client("sns", region_name=REGION).publish(**request)["MessageId"]
    return message_id


def seen(key: str) -> dict[str, Any] | None:
    item = boto3.client("dynamodb", region_name=REGION).get_item(TableName="SeenTable", Key={"PK": {"S": key}})
    found: dict[str, Any] | None = item.get("Item")
    return found


def deliveries(key: str) -> int:
    item = seen(key)
    return int(item["deliveries"]["N"]) if item else 0


def settle(local: LocalRunner) -> dict[str, int]:
    reply = local.post("/_local/settle")
    assert reply.status == 200
    handled: dict[str, int] = reply.json()
    return handled


def test_a_message_reaches_its_subscriber_once_as_lambdas_sns_event(stack: LocalRunner) -> None:
    # Given an urgent message published to the topic
    message_id = publish({"id": "u1"}, subject="Disk full", priority="urgent")

    # When the runner settles
    assert settle(stack)["notifications"] == 1

    # Then UrgentFunction got it once, shaped as SNS invokes Lambda
    assert deliveries("UrgentFunction#u1") == 1
    item = seen("UrgentFunction#u1")
    assert item is not None
    event = json.loads(item["event"]["S"])
    [record] = event["Records"]
    assert (record["EventSource"], record["EventVersion"]) == ("aws:sns", "1.0")
    assert record["EventSubscriptionArn"].startswith(f"{TOPIC_ARN}:")
    sns = record["Sns"]
    assert (sns["Type"], sns["MessageId"], sns["TopicArn"], sns["Subject"]) == (
        "Notification",
        message_id,
        TOPIC_ARN,
        "Disk full",
    )
    assert json.loads(sns["Message"]) == {"id": "u1"}
    assert sns["MessageAttributes"] == {"priority": {"Type": "String", "Value": "urgent"}}
    assert sns["SigningCertUrl"].startswith("https://") and sns["UnsubscribeUrl"].startswith("https://")
    SnsModel.model_validate(event)  # Powertools' strict model of Lambda's SNS event takes it as it is


def test_each_subscription_filters_as_sns_does_on_attributes_or_on_the_body(stack: LocalRunner) -> None:
    publish({"id": "m1", "kind": "mail"})
    publish({"id": "n1", "kind": "sms"}, priority="low")

    settle(stack)

    assert (deliveries("MailFunction#m1"), deliveries("UrgentFunction#m1")) == (1, 0)
    assert (deliveries("MailFunction#n1"), deliveries("UrgentFunction#n1")) == (0, 0)


def test_a_failing_message_is_retried_then_kept_in_the_functions_dead_letter_queue(stack: LocalRunner) -> None:
    # Given an urgent message UrgentFunction fails on every time
    publish({"id": "f1", "fail": 99}, priority="urgent")

    # When the runner settles
    assert settle(stack)["notifications"] == 2  # the first attempt and MaximumRetryAttempts: 1

    # Then it was tried twice, and Lambda's dead-letter message holds the event and the error
    assert deliveries("UrgentFunction#f1") == 2
    sqs = boto3.client("sqs", region_name=REGION)
    url = stack.runner.provisioned.physical["UrgentFailuresQueue"]
    [dead] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])["Messages"]
    assert json.loads(json.loads(dead["Body"])["Records"][0]["Sns"]["Message"]) == {"id": "f1", "fail": 99}
    assert "failing delivery 2 on purpose" in dead["MessageAttributes"]["ErrorMessage"]["StringValue"]
    assert set(dead["MessageAttributes"]) == {"RequestID", "ErrorCode", "ErrorMessage"}


def test_a_message_that_fails_once_is_delivered_on_the_retry(stack: LocalRunner) -> None:
    publish({"id": "f2", "kind": "mail", "fail": 1})

    assert settle(stack)["notifications"] == 2

    assert deliveries("MailFunction#f2") == 2


def test_health_lists_each_subscription(stack: LocalRunner) -> None:
    assert stack.get("/_local/health").json()["topics"] == [
        'DeskTopic filtered by {"priority": ["urgent"]} → UrgentFunction',
        'DeskTopic filtered by {"kind": ["mail"]} → MailFunction',
    ]


def _variant(tmp_path: Path, old: str, new: str) -> Path:
    template = TEMPLATE.read_text()
    assert old in template
    target = tmp_path / "template.yaml"
    target.write_text(template.replace(old, new))
    (tmp_path / "functions").symlink_to(TEMPLATE.parent / "functions")
    return target


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "            Topic: !Ref DeskTopic\n            FilterPolicyScope",
            "            Topic: !Ref DeskTopic\n            SqsSubscription: true\n            FilterPolicyScope",
            r"Resources\.MailFunction\.Properties\.Events\.Mail: SqsSubscription not emulated",
        ),
        (
            "            Topic: !Ref DeskTopic\n            FilterPolicyScope",
            "            Topic: !Ref SeenTable\n            FilterPolicyScope",
            r"Events\.Mail\.Topic: SeenTable is not an AWS::SNS::Topic",
        ),
        (
            "FilterPolicyScope: MessageBody",
            "FilterPolicyScope: Body",
            r"Events\.Mail\.FilterPolicyScope: must be MessageAttributes or MessageBody",
        ),
        (
            'TopicName: !Sub "${AWS::StackName}-desk"',
            "TopicName: desk.fifo\n      FifoTopic: true",
            r"Resources\.DeskTopic\.Properties\.FifoTopic: FIFO topics are not emulated",
        ),
        (
            "        Type: SQS\n        TargetArn",
            "        Type: SNS\n        TargetArn",
            r"Resources\.UrgentFunction\.Properties\.DeadLetterQueue: only an SQS dead-letter queue",
        ),
    ],
)
def test_a_topic_subscription_the_runner_cannot_emulate_stops_it_naming_where(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    with pytest.raises(TemplateError, match=message):
        Runner(RunnerConfig(template_path=_variant(tmp_path, old, new)), RunnerClock())
