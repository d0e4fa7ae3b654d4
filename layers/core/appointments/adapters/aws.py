"""AWS client factories. Clients are made on first use, never at import."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sesv2 import SESV2Client
    from mypy_boto3_sqs import SQSClient

# Lambda retries the whole invocation; keep SDK retries short so a throttled call fails within the timeout.
_CLIENT_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=2, read_timeout=5)


def dynamodb_client() -> DynamoDBClient:
    return boto3.client("dynamodb", config=_CLIENT_CONFIG)


def sqs_client() -> SQSClient:
    return boto3.client("sqs", config=_CLIENT_CONFIG)


def secretsmanager_client() -> SecretsManagerClient:
    return boto3.client("secretsmanager", config=_CLIENT_CONFIG)


def sesv2_client() -> SESV2Client:
    return boto3.client("sesv2", config=_CLIENT_CONFIG)


def events_client() -> EventBridgeClient:
    return boto3.client("events", config=_CLIENT_CONFIG)
