"""The write-back's PSA clients, built from the ``PsaCredentials`` secret: one JSON object, one entry per PSA.

```json
{"autotask": {"integration_code": "...", "username": "api-user@msp.example", "secret": "...",
              "zone_lookup_url": "https://webservices.autotask.net", "note_type": 1},
 "connectwise": {"site": "https://api-na.myconnectwise.net", "company": "msp", "public_key": "...",
                 "private_key": "...", "client_id": "..."},
 "halopsa": {"base_url": "https://msp.halopsa.com", "client_id": "...", "client_secret": "...", "tenant": "msp"}}
```

A PSA without an entry is not written to. An entry with a field missing stops the function with a
``config_error`` naming the field (never its value).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError

from appointments.adapters.psa_autotask import DEFAULT_ZONE_LOOKUP, AutotaskCredentials, AutotaskNotes, AutotaskTickets
from appointments.adapters.psa_connectwise import ConnectWiseCredentials, ConnectWiseTickets
from appointments.adapters.psa_halopsa import HaloCredentials, HaloTickets
from appointments.adapters.vendor_http import VendorHttp
from appointments.errors import ConfigError, SecretsUnavailable

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mypy_boto3_secretsmanager import SecretsManagerClient

    from appointments.ports import Clock, PsaTickets


def read_psa_credentials(client: SecretsManagerClient, secret_id: str) -> dict[str, Any]:
    if not secret_id:
        return {}
    try:
        document = SecretsProvider(boto3_client=client).get(secret_id, transform="json", max_age=300)
    except (GetParameterError, TransformParameterError) as error:
        raise SecretsUnavailable("the PSA credentials could not be read") from error
    if not isinstance(document, dict):
        raise ConfigError("the PSA credentials are not a JSON object")
    return document


def psa_clients(credentials: Mapping[str, Any], clock: Clock) -> dict[str, PsaTickets]:
    clients: dict[str, PsaTickets] = {}
    if entry := _entry(credentials, "autotask"):
        clients["autotask"] = AutotaskTickets(
            VendorHttp("autotask"),
            AutotaskCredentials(
                integration_code=_text(entry, "autotask", "integration_code"),
                username=_text(entry, "autotask", "username"),
                secret=_text(entry, "autotask", "secret"),
            ),
            zone_lookup=str(entry.get("zone_lookup_url") or DEFAULT_ZONE_LOOKUP),
            notes=AutotaskNotes(note_type=int(entry.get("note_type", 1))),
        )
    if entry := _entry(credentials, "connectwise"):
        clients["connectwise"] = ConnectWiseTickets(
            VendorHttp("connectwise"),
            ConnectWiseCredentials(
                site=_text(entry, "connectwise", "site"),
                company=_text(entry, "connectwise", "company"),
                public_key=_text(entry, "connectwise", "public_key"),
                private_key=_text(entry, "connectwise", "private_key"),
                client_id=_text(entry, "connectwise", "client_id"),
            ),
        )
    if entry := _entry(credentials, "halopsa"):
        clients["halopsa"] = HaloTickets(
            VendorHttp("halopsa"),
            HaloCredentials(
                base_url=_text(entry, "halopsa", "base_url"),
                client_id=_text(entry, "halopsa", "client_id"),
                client_secret=_text(entry, "halopsa", "client_secret"),
                tenant=str(entry["tenant"]) if entry.get("tenant") else None,
            ),
            clock,
        )
    return clients


def _entry(credentials: Mapping[str, Any], system: str) -> Mapping[str, Any] | None:
    entry = credentials.get(system)
    if entry is None:
        return None
    if not isinstance(entry, dict):
        raise ConfigError(f"PsaCredentials.{system}: must be a JSON object")
    return entry


def _text(entry: Mapping[str, Any], system: str, name: str) -> str:
    value = entry.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"PsaCredentials.{system}.{name}: is required")
    return value.strip()
