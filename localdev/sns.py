"""SNS topics: every message published to one reaches each function subscribed to it, as SNS invokes Lambda.

moto delivers a topic's messages to its subscribers, but it cannot invoke a function of the runner. So
each ``SNS`` event gets a queue of the runner's own (``localdev-sns-<function>-<event>``) subscribed to
its topic, with the event's ``FilterPolicy`` and ``FilterPolicyScope`` (moto's own matcher decides, as
SNS would); the runner drains it and invokes the function once per message with Lambda's SNS event:
``{"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn", "Sns": {...}}]}``.

Departures from AWS: a function that fails is retried at once (Lambda backs off for minutes), up to its
``EventInvokeConfig.MaximumRetryAttempts`` (default 2); then the event goes to the function's
``DeadLetterQueue`` as Lambda puts it there (the event as the body, ``RequestID``, ``ErrorCode`` and
``ErrorMessage`` attributes), or is dropped with a message. ``Timestamp`` is moto's (the wall clock), and
``EventSubscriptionArn`` names the runner's queue subscription.
"""

from __future__ import annotations

import copy
import json
import re
import sys
import uuid
from typing import TYPE_CHECKING, Any

import boto3

from localdev import console
from localdev.resources import REGION

if TYPE_CHECKING:
    from collections.abc import Callable

    from localdev.template import TopicSubscription

QUEUE_PREFIX = "localdev-sns-"


def lambda_record(envelope: dict[str, Any], subscription_arn: str) -> dict[str, Any]:
    """One SNS message (the JSON SNS writes to a queue subscriber) as the record Lambda receives."""
    return {
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": subscription_arn,
        "Sns": {
            "Type": envelope.get("Type", "Notification"),
            "MessageId": envelope["MessageId"],
            "TopicArn": envelope["TopicArn"],
            "Subject": envelope.get("Subject"),
            "Message": envelope["Message"],
            "Timestamp": envelope["Timestamp"],
            "SignatureVersion": envelope.get("SignatureVersion"),
            "Signature": envelope.get("Signature"),
            # Lambda spells these two differently from what SNS writes to queues and HTTP endpoints.
            "SigningCertUrl": envelope.get("SigningCertURL"),
            "UnsubscribeUrl": envelope.get("UnsubscribeURL"),
            "MessageAttributes": envelope.get("MessageAttributes", {}),
        },
    }


class TopicMapping:
    """One ``SNS`` event of one function: its subscription, through the runner's queue."""

    def __init__(
        self,
        subscription: TopicSubscription,
        *,
        retries: int,
        dead_letter: Callable[[dict[str, Any], str], None] | None = None,
    ) -> None:
        self.subscription = subscription
        self.retries = retries
        self._dead_letter = dead_letter
        self.queue_url = ""
        self.subscription_arn = ""

    @property
    def queue_name(self) -> str:
        name = re.sub(r"[^A-Za-z0-9_-]", "-", f"{self.subscription.function}-{self.subscription.event}")
        return f"{QUEUE_PREFIX}{name}"[:80]

    def install(self, topic_arn: str) -> None:
        """Subscribe the runner's queue to the topic with the event's filter (after every provisioning)."""
        sqs = boto3.client("sqs", region_name=REGION)
        sns = boto3.client("sns", region_name=REGION)
        self.queue_url = sqs.create_queue(QueueName=self.queue_name)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        attributes = {}
        if self.subscription.filter_policy is not None:
            attributes = {
                "FilterPolicy": self.subscription.filter_policy,
                "FilterPolicyScope": self.subscription.filter_policy_scope,
            }
        self.subscription_arn = sns.subscribe(
            TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes=attributes, ReturnSubscriptionArn=True
        )["SubscriptionArn"]

    def pump(self, invoke: Callable[[str, dict[str, Any]], Any]) -> tuple[int, int]:
        """Deliver every message the topic sent since the last pass: (messages read, invocations)."""
        sqs = boto3.client("sqs", region_name=REGION)
        read = invocations = 0
        while True:
            messages = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                "Messages", []
            )
            if not messages:
                return read, invocations
            for message in messages:
                read += 1
                event = {"Records": [lambda_record(json.loads(message["Body"]), self.subscription_arn)]}
                invocations += self.deliver(event, invoke)
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def deliver(self, event: dict[str, Any], invoke: Callable[[str, dict[str, Any]], Any]) -> int:
        """Invoke the function, retrying at once, then give the event up; how many invocations it took."""
        function = self.subscription.function
        error = ""
        for attempt in range(1, self.retries + 2):
            try:
                invoke(function, copy.deepcopy(event))
            except Exception as failure:
                error = console.reason(failure)
                message_id = event["Records"][0]["Sns"]["MessageId"]
                console.failure(f"{function}: SNS message {message_id} failed (attempt {attempt}): {error}", failure)
                continue
            return attempt
        message_id = event["Records"][0]["Sns"]["MessageId"]
        if self._dead_letter is not None:
            self._dead_letter(event, error)
            where = "its dead-letter queue"
        else:
            where = "nowhere (no DeadLetterQueue)"
        print(
            f"localdev: {function}.{self.subscription.event}: gave up on SNS message {message_id} after "
            f"{self.retries + 1} attempt(s); it went to {where}",
            file=sys.stderr,
        )
        return self.retries + 1

    def pending(self) -> bool:
        """Whether the runner's queue still holds a message (visible or in flight)."""
        sqs = boto3.client("sqs", region_name=REGION)
        attributes = sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return any(int(count) for count in attributes.values())

    def describe(self) -> str:
        policy = f" filtered by {self.subscription.filter_policy}" if self.subscription.filter_policy else ""
        return f"{self.subscription.topic}{policy} → {self.subscription.function}"


def dead_letter_message(queue_url: str, event: dict[str, Any], error: str) -> None:
    """What Lambda puts in a function's dead-letter queue for an asynchronous invocation it gave up on."""
    sqs = boto3.client("sqs", region_name=REGION)
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps(event),
        MessageAttributes={
            "RequestID": {"DataType": "String", "StringValue": str(uuid.uuid4())},
            "ErrorCode": {"DataType": "Number", "StringValue": "200"},
            "ErrorMessage": {"DataType": "String", "StringValue": (error or "Unhandled")[:1000]},
        },
    )
