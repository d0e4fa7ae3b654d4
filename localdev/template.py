"""Read ``template.yaml``: the resources tests and the local runner create in moto.

The template is parsed with cfn-lint's decoder (it understands ``!Ref``/``!Sub`` short forms), and
only the properties moto needs are taken. Anything this module cannot reproduce is refused loudly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"

_TABLE_PROPERTIES = frozenset(
    {
        "BillingMode",
        "AttributeDefinitions",
        "KeySchema",
        "GlobalSecondaryIndexes",
        "LocalSecondaryIndexes",
        "TimeToLiveSpecification",
        "PointInTimeRecoverySpecification",
        "SSESpecification",
        "StreamSpecification",
        "TableName",
    }
)


class TemplateError(Exception):
    """The template has something the local tooling cannot reproduce; the message says what and where."""


@dataclass(frozen=True)
class TableSpec:
    logical_id: str
    create_request: dict[str, Any]
    ttl_attribute: str | None


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    template, matches = decode(str(path))
    if template is None or matches:
        problems = "; ".join(str(m) for m in matches) or "empty template"
        raise TemplateError(f"{path}: cannot parse: {problems}")
    return dict(template)


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == resource_type
    }


def dynamodb_tables(template: dict[str, Any]) -> list[TableSpec]:
    """One ``create_table`` request per ``AWS::DynamoDB::Table``, named by its logical id."""
    specs = []
    for logical_id, resource in resources_of_type(template, "AWS::DynamoDB::Table").items():
        properties = resource.get("Properties", {})
        unknown = set(properties) - _TABLE_PROPERTIES
        if unknown:
            raise TemplateError(f"Resources.{logical_id}: unsupported properties {sorted(unknown)}")
        request: dict[str, Any] = {
            "TableName": logical_id,
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "KeySchema": properties["KeySchema"],
            "BillingMode": properties.get("BillingMode", "PROVISIONED"),
        }
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if key in properties:
                request[key] = properties[key]
        if "StreamSpecification" in properties:
            request["StreamSpecification"] = {"StreamEnabled": True, **properties["StreamSpecification"]}
        ttl = properties.get("TimeToLiveSpecification", {})
        ttl_attribute = ttl.get("AttributeName") if ttl.get("Enabled") else None
        specs.append(TableSpec(logical_id=logical_id, create_request=request, ttl_attribute=ttl_attribute))
    return specs


@dataclass(frozen=True)
class QueueSpec:
    logical_id: str
    attributes: dict[str, str]
    dead_letter_queue: str | None  # logical id of the queue it redrives to
    max_receive_count: int | None

    @property
    def name(self) -> str:
        return f"{self.logical_id}.fifo" if self.attributes.get("FifoQueue") == "true" else self.logical_id


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str
    timeout: int
    environment: dict[str, Any]


_QUEUE_ATTRIBUTES = {
    "FifoQueue": "FifoQueue",
    "ContentBasedDeduplication": "ContentBasedDeduplication",
    "DeduplicationScope": "DeduplicationScope",
    "FifoThroughputLimit": "FifoThroughputLimit",
    "VisibilityTimeout": "VisibilityTimeout",
    "MessageRetentionPeriod": "MessageRetentionPeriod",
}


def sqs_queues(template: dict[str, Any]) -> list[QueueSpec]:
    """Queues in creation order: dead-letter queues before the queues that redrive to them."""
    specs = []
    for logical_id, resource in resources_of_type(template, "AWS::SQS::Queue").items():
        properties = resource.get("Properties", {})
        attributes = {
            attribute: str(properties[key]).lower() if isinstance(properties[key], bool) else str(properties[key])
            for key, attribute in _QUEUE_ATTRIBUTES.items()
            if key in properties
        }
        redrive = properties.get("RedrivePolicy")
        target: str | None = None
        if redrive is not None:
            arn = redrive.get("deadLetterTargetArn", {})
            getatt = arn.get("Fn::GetAtt") if isinstance(arn, dict) else None
            if not getatt or getatt[1] != "Arn":
                raise TemplateError(
                    f"Resources.{logical_id}.RedrivePolicy: deadLetterTargetArn must be !GetAtt <Queue>.Arn"
                )
            target = getatt[0]
        specs.append(
            QueueSpec(
                logical_id=logical_id,
                attributes=attributes,
                dead_letter_queue=target,
                max_receive_count=int(redrive["maxReceiveCount"]) if redrive else None,
            )
        )
    return sorted(specs, key=lambda spec: spec.dead_letter_queue is not None)


def secrets(template: dict[str, Any]) -> list[str]:
    return list(resources_of_type(template, "AWS::SecretsManager::Secret"))


def functions(template: dict[str, Any]) -> list[FunctionSpec]:
    """Every function with the Globals merged in, as SAM merges them."""
    defaults = template.get("Globals", {}).get("Function", {})
    specs = []
    for logical_id, resource in resources_of_type(template, "AWS::Serverless::Function").items():
        properties = resource.get("Properties", {})
        environment = {
            **defaults.get("Environment", {}).get("Variables", {}),
            **properties.get("Environment", {}).get("Variables", {}),
        }
        specs.append(
            FunctionSpec(
                logical_id=logical_id,
                code_uri=TEMPLATE.parent / properties["CodeUri"],
                handler=properties["Handler"],
                timeout=int(properties.get("Timeout", defaults.get("Timeout", 3))),
                environment=environment,
            )
        )
    return specs


def resolve(value: Any, *, physical: dict[str, str], parameters: dict[str, str], where: str) -> str:
    """A template value as a string: literals, ``Ref`` (resources and parameters) and ``Fn::Join``."""
    if isinstance(value, str | int | float | bool):
        return str(value)
    if isinstance(value, dict) and len(value) == 1:
        [(function, argument)] = value.items()
        if function == "Ref" and isinstance(argument, str):
            if argument in physical:
                return physical[argument]
            if argument in parameters:
                return parameters[argument]
            raise TemplateError(f"{where}: !Ref {argument} names nothing the local tools created")
        if function == "Fn::Join" and isinstance(argument, list) and len(argument) == 2:
            separator, items = argument
            if isinstance(items, dict):  # a Ref to a CommaDelimitedList parameter
                return resolve(items, physical=physical, parameters=parameters, where=where)
            return str(separator).join(resolve(i, physical=physical, parameters=parameters, where=where) for i in items)
    raise TemplateError(f"{where}: {value!r} is not a value the local tools can resolve")


def parameter_defaults(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, str]:
    values = {}
    for name, parameter in template.get("Parameters", {}).items():
        if name in overrides:
            values[name] = overrides[name]
        elif "Default" in parameter:
            values[name] = str(parameter["Default"])
        else:
            raise TemplateError(f"Parameters.{name} has no default: give it a local value")
    return values
