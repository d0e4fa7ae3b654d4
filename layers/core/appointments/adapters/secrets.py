"""Webhook signing secrets from one Secrets Manager secret: a JSON object of source name → secret.

Read through Powertools parameters, cached for ``max_age`` seconds, so a warm function does not call
Secrets Manager per request and a rotated secret is picked up within minutes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError

from appointments.errors import SecretsUnavailable

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


class SecretsManagerWebhookSecrets:
    """Its own provider (and cache) around the client wiring built, so a reset forgets both."""

    def __init__(self, client: SecretsManagerClient, secret_id: str, *, max_age: int = 300) -> None:
        self._provider = SecretsProvider(boto3_client=client)
        self._secret_id = secret_id
        self._max_age = max_age

    def webhook_secret(self, source: str) -> str | None:
        try:
            secrets = self._provider.get(self._secret_id, transform="json", max_age=self._max_age)
        except (GetParameterError, TransformParameterError) as error:
            raise SecretsUnavailable("the webhook secrets could not be read") from error
        if not isinstance(secrets, dict):
            raise SecretsUnavailable("the webhook secrets are not a JSON object")
        value = secrets.get(source)
        return value if isinstance(value, str) and value else None
