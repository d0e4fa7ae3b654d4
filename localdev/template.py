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
