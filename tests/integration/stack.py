"""The stack under moto, built from template.yaml: table, queues, secret, and the real handlers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from appointments import wiring
from appointments.adapters.clock import ManualClock
from localdev.template import functions, load_template, parameter_defaults, resolve, secrets, sqs_queues
from tests.apigw import rest_event
from tests.handlers import FakeLambdaContext, Handler, load_handler
from tests.integration.conftest import template_tables
from tests.signing import timestamped_signature
from tests.sqs import sqs_event, sqs_record

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

LOCAL_PARAMETERS = {"MailFrom": "desk@msp.example", "OpsAlertEmail": "ops@msp.example"}
GENERIC_SECRET = "whsec_generic_integration"
CALCOM_SECRET = "calcom-integration-secret"
CALENDLY_SECRET = "calendly-integration-signing-key"
AUTOTASK_SECRET = "autotask-integration-secret"
SECRETS = {"generic": GENERIC_SECRET, "calcom": CALCOM_SECRET, "calendly": CALENDLY_SECRET, "autotask": AUTOTASK_SECRET}


@dataclass
class Stack:
    handlers: dict[str, Handler]
    sqs: SQSClient
    queue_url: str
    queue_arn: str
    clock: ManualClock

    def post(self, source: str, body: bytes, headers: dict[str, str], *, base64_body: bool = False) -> dict[str, Any]:
        event = rest_event(
            "POST",
            f"/webhooks/{source}",
            resource="/webhooks/{source}",
            path_parameters={"source": source},
            headers={"Content-Type": "application/json", **headers},
            body=body,
            base64_body=base64_body,
        )
        return self.handlers["WebhookIngressFunction"](event, FakeLambdaContext("WebhookIngressFunction"))

    def post_generic(self, body: bytes) -> dict[str, Any]:
        return self.post(
            "generic", body, {"X-Signature": timestamped_signature(GENERIC_SECRET, body, self.clock.now())}
        )

    def post_calcom(self, body: bytes) -> dict[str, Any]:
        signature = hmac.new(CALCOM_SECRET.encode(), body, hashlib.sha256).hexdigest()
        return self.post("calcom", body, {"X-Cal-Signature-256": signature})

    def post_calendly(self, body: bytes) -> dict[str, Any]:
        signature = timestamped_signature(CALENDLY_SECRET, body, self.clock.now())
        return self.post("calendly", body, {"Calendly-Webhook-Signature": signature})

    def post_autotask(self, body: bytes) -> dict[str, Any]:
        digest = hmac.new(AUTOTASK_SECRET.encode(), body, hashlib.sha1).digest()
        return self.post("autotask", body, {"X-Hook-Signature": "sha1=" + base64.b64encode(digest).decode()})

    def table_items(self) -> list[Any]:
        return boto3.client("dynamodb", region_name="us-east-1").scan(TableName="AppointmentsTable")["Items"]

    def queued(self) -> list[Any]:
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageSystemAttributeNames=["All"]
        )
        return response.get("Messages", [])

    def process(self, records: list[dict[str, Any]]) -> list[str]:
        """Run the processor on a batch; the ids of the records it hands back as failed."""
        response = self.handlers["EventProcessorFunction"](sqs_event(records), FakeLambdaContext("EventProcessor", 30))
        return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]

    def drain(self) -> None:
        """What Lambda's event source mapping does: receive, process, delete what succeeded."""
        for _ in range(20):
            messages = self.queued()
            if not messages:
                return
            records = [self.record_of(m) for m in messages]
            failed = set(self.process(records))
            for message, record in zip(messages, records, strict=True):
                if record["messageId"] not in failed:
                    self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            assert not failed, f"records failed: {failed}"
        raise AssertionError("the queue did not drain")

    def record_of(self, message: Any) -> dict[str, Any]:
        record = sqs_record(
            message["Body"],
            group=message["Attributes"]["MessageGroupId"],
            dedupe=message["Attributes"]["MessageDeduplicationId"],
            queue_arn=self.queue_arn,
        )
        record["messageId"] = message["MessageId"]
        return record


@contextmanager
def stack_under_moto(monkeypatch: pytest.MonkeyPatch, now: datetime, **parameters: str) -> Iterator[Stack]:
    template = load_template()
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        physical: dict[str, str] = {}
        for table in template_tables():
            dynamodb.create_table(**table.create_request)
            physical[table.logical_id] = table.logical_id
        arns: dict[str, str] = {}
        for queue in sqs_queues(template):
            attributes: dict[Any, str] = dict(queue.attributes)
            if queue.dead_letter_queue is not None:
                redrive = {
                    "deadLetterTargetArn": arns[queue.dead_letter_queue],
                    "maxReceiveCount": queue.max_receive_count,
                }
                attributes["RedrivePolicy"] = json.dumps(redrive)
            url = sqs.create_queue(QueueName=queue.name, Attributes=attributes)["QueueUrl"]
            physical[queue.logical_id] = url
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            arns[queue.logical_id] = arn
        secretsmanager = boto3.client("secretsmanager", region_name="us-east-1")
        for logical_id in secrets(template):
            secretsmanager.create_secret(Name=logical_id, SecretString=json.dumps(SECRETS))
            physical[logical_id] = logical_id

        values = parameter_defaults(template, {**LOCAL_PARAMETERS, **parameters})
        specs = functions(template)
        for spec in specs:
            for name, value in spec.environment.items():
                if name != "POWERTOOLS_SERVICE_NAME":
                    monkeypatch.setenv(name, resolve(value, physical=physical, parameters=values, where=name))
        clock = ManualClock(now)
        wiring.use_clock(clock)
        try:
            yield Stack(
                handlers={spec.logical_id: load_handler(spec) for spec in specs},
                sqs=sqs,
                queue_url=physical["EventQueue"],
                queue_arn=arns["EventQueue"],
                clock=clock,
            )
        finally:
            wiring.reset()
