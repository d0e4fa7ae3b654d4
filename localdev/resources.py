"""Create in moto every resource ``template.yaml`` declares, and resolve each function's environment.

One routine for the integration tests (``mock_aws``) and the local runner (an embedded moto server):
whichever endpoint boto3 is pointed at receives the same tables, queues, secrets, buses, topics, SES
identities and configuration sets, so both run the handlers against what the template says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3

from localdev.template import (
    TemplateError,
    dynamodb_tables,
    event_buses,
    resolve,
    secrets,
    ses_configuration_sets,
    ses_identities,
    sns_topics,
    sqs_queues,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from localdev.template import FunctionSpec

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account: every ARN the local tools build uses it


@dataclass(frozen=True)
class Provisioned:
    physical: dict[str, str]  # logical id → what !Ref gives: table name, queue URL, secret ARN, bus name,
    # topic ARN, configuration set name
    queue_arns: dict[str, str]  # logical id → queue ARN
    dead_letter_queues: frozenset[str]  # logical ids of the queues others redrive to
    parameters: dict[str, str] = field(default_factory=dict)
    stream_arns: dict[str, str] = field(default_factory=dict)  # logical id of a table with a stream → its ARN

    def environment(self, spec: FunctionSpec) -> dict[str, str]:
        """The function's environment variables with every ``!Ref`` and ``!Join`` resolved."""
        return {
            name: resolve(
                value, physical=self.physical, parameters=self.parameters, where=f"{spec.logical_id}.Environment.{name}"
            )
            for name, value in spec.environment.items()
        }


def provision(
    template: dict[str, Any],
    *,
    parameters: Mapping[str, str],
    secret_values: Mapping[str, str],
    senders: Iterable[str] = (),
) -> Provisioned:
    """Create everything; ``secret_values`` maps a secret's logical id to its SecretString."""
    physical: dict[str, str] = {}
    physical.update(create_tables(template))
    stream_arns = _stream_arns(template)
    queue_arns, dead_letter_queues = _create_queues(template, physical)
    _create_secrets(template, physical, secret_values)
    _create_buses(template, physical)
    _create_topics(template, physical)
    _verify_identities(template, parameters, physical, senders)
    _create_configuration_sets(template, physical)
    return Provisioned(
        physical=physical,
        queue_arns=queue_arns,
        dead_letter_queues=dead_letter_queues,
        parameters=dict(parameters),
        stream_arns=stream_arns,
    )


def create_tables(template: dict[str, Any]) -> dict[str, str]:
    """Every table, with its indexes and TTL; logical id → table name."""
    physical: dict[str, str] = {}
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    for table in dynamodb_tables(template):
        dynamodb.create_table(**table.create_request)
        if table.ttl_attribute:
            dynamodb.update_time_to_live(
                TableName=table.logical_id,
                TimeToLiveSpecification={"AttributeName": table.ttl_attribute, "Enabled": True},
            )
        physical[table.logical_id] = table.logical_id
    return physical


def _stream_arns(template: dict[str, Any]) -> dict[str, str]:
    """What ``!GetAtt <Table>.StreamArn`` gives for every table created with a StreamSpecification."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    arns = {}
    for table in dynamodb_tables(template):
        if "StreamSpecification" in table.create_request:
            arns[table.logical_id] = dynamodb.describe_table(TableName=table.logical_id)["Table"]["LatestStreamArn"]
    return arns


def _create_queues(template: dict[str, Any], physical: dict[str, str]) -> tuple[dict[str, str], frozenset[str]]:
    sqs = boto3.client("sqs", region_name=REGION)
    arns: dict[str, str] = {}
    dead_letter_queues = set()
    for queue in sqs_queues(template):  # dead-letter queues first
        attributes: dict[Any, str] = dict(queue.attributes)
        if queue.dead_letter_queue is not None:
            redrive = {"deadLetterTargetArn": arns[queue.dead_letter_queue], "maxReceiveCount": queue.max_receive_count}
            attributes["RedrivePolicy"] = json.dumps(redrive)
            dead_letter_queues.add(queue.dead_letter_queue)
        url = sqs.create_queue(QueueName=queue.name, Attributes=attributes)["QueueUrl"]
        physical[queue.logical_id] = url
        arns[queue.logical_id] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
    return arns, frozenset(dead_letter_queues)


def _create_secrets(template: dict[str, Any], physical: dict[str, str], values: Mapping[str, str]) -> None:
    secretsmanager = boto3.client("secretsmanager", region_name=REGION)
    for logical_id in secrets(template):
        created = secretsmanager.create_secret(Name=logical_id, SecretString=values.get(logical_id, "{}"))
        physical[logical_id] = created["ARN"]


def _create_buses(template: dict[str, Any], physical: dict[str, str]) -> None:
    events = boto3.client("events", region_name=REGION)
    for logical_id, name in event_buses(template).items():
        events.create_event_bus(Name=name)
        physical[logical_id] = name


def _create_topics(template: dict[str, Any], physical: dict[str, str]) -> None:
    sns = boto3.client("sns", region_name=REGION)
    for logical_id, name in sns_topics(template).items():
        physical[logical_id] = sns.create_topic(Name=name)["TopicArn"]  # what !Ref gives: the ARN


def _create_configuration_sets(template: dict[str, Any], physical: dict[str, str]) -> None:
    """Each configuration set, by name (what !Ref gives). moto's SES takes a set's name on every send and
    keeps neither it nor the tags: the runner's SES tap (``localdev.ses``) records both for the mail it sent."""
    sesv2 = boto3.client("sesv2", region_name=REGION)
    for logical_id, name in ses_configuration_sets(template).items():
        sesv2.create_configuration_set(ConfigurationSetName=name)
        physical[logical_id] = name


def _verify_identities(
    template: dict[str, Any], parameters: Mapping[str, str], physical: dict[str, str], senders: Iterable[str]
) -> None:
    sesv2 = boto3.client("sesv2", region_name=REGION)
    identities = list(senders)
    for logical_id, identity in ses_identities(template).items():
        where = f"Resources.{logical_id}.Properties.EmailIdentity"
        if identity is None:
            raise TemplateError(f"{where}: is required")
        identities.append(resolve(identity, physical=physical, parameters=dict(parameters), where=where))
        physical[logical_id] = identities[-1]
    for identity in dict.fromkeys(identities):
        sesv2.create_email_identity(EmailIdentity=identity)
