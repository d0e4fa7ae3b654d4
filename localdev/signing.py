"""Signing a webhook the way each vendor does: for ``localdev send`` and the tests' senders.

The schemes are written out here independently of ``appointments.sources`` on purpose: a sender that
reused the verifier's code would agree with it even when both were wrong.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

# The sources the runner signs for, and the development secrets it uses unless WEBHOOK_SECRET_<SOURCE> is set.
DEV_SECRETS = {
    "generic": "dev-generic-secret",
    "calcom": "dev-calcom-secret",
    "calendly": "dev-calendly-signing-key",
    "autotask": "dev-autotask-secret",
    "halopsa": "halo:dev-halopsa-password",  # Basic auth: user:password
    "timezest": "dev-timezest-api-key",  # not a signature: the API key the poller sends to (the fake) TimeZest
    "connectwise": "acmemsp",  # not a signature either: the company id whose callbacks are taken
}
# ConnectWise signs with a key served at a URL its body names: the runner serves this one at this path.
DEV_CONNECTWISE_SIGNING_KEY = "dev-connectwise-signing-key"
CONNECTWISE_KEY_PATH = "/_local/connectwise/callbackkey"


def timestamped_signature(secret: str, body: bytes, at: datetime) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`` (generic, Calendly)."""
    t = str(int(at.timestamp()))
    digest = hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def connectwise_signature(signing_key: str, body: bytes) -> str:
    """Base64 of HMAC-SHA256 over the body, keyed with the SHA-256 digest of ConnectWise's signing key."""
    key = hashlib.sha256(signing_key.encode()).digest()
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


def signature_headers(source: str, secret: str, body: bytes, at: datetime) -> dict[str, str]:
    """The headers a vendor sends to sign ``body`` at ``at``; ``KeyError`` for a source we cannot sign for."""
    match source:
        case "generic":
            return {"X-Signature": timestamped_signature(secret, body, at)}
        case "calendly":
            return {"Calendly-Webhook-Signature": timestamped_signature(secret, body, at)}
        case "calcom":
            return {"X-Cal-Signature-256": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}
        case "autotask":
            digest = hmac.new(secret.encode(), body, hashlib.sha1).digest()
            return {"X-Hook-Signature": "sha1=" + base64.b64encode(digest).decode()}
        case "connectwise":
            # ``secret`` is the signing key the body's Metadata.key_url answers, not the webhook secrets' entry.
            return {"x-content-signature": connectwise_signature(secret, body)}
        case "halopsa":
            # HaloPSA signs nothing: its webhooks send the configured user and password as Basic auth.
            return {"Authorization": "Basic " + base64.b64encode(secret.encode()).decode()}
    raise KeyError(source)


def runner_webhook(
    source: str, body: bytes, runner_url: str, at: datetime, secret: str | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers ``localdev send`` posts to the runner for a sample of ``source``, signed at ``at``.

    A ConnectWise sample names ConnectWise's key URL: it is pointed at the key the runner serves instead, and
    signed with that key (the ``connectwise`` secret is a company id, not a key).
    """
    if source == "connectwise":
        body, secret = _with_key_url(body, runner_url.rstrip("/") + CONNECTWISE_KEY_PATH), DEV_CONNECTWISE_SIGNING_KEY
    signing = secret if secret is not None else DEV_SECRETS[source]
    return body, {"Content-Type": "application/json", **signature_headers(source, signing, body, at)}


def _with_key_url(body: bytes, key_url: str) -> bytes:
    try:
        document = json.loads(body)
    except ValueError:
        return body  # not JSON: sent as it is, and the runner's answer says so
    if not isinstance(document, dict) or not isinstance(document.get("Metadata"), dict):
        return body
    document["Metadata"]["key_url"] = key_url
    return json.dumps(document, indent=2).encode()
