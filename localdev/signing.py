"""Signing a webhook the way each vendor does: for ``localdev send`` and the tests' senders.

The schemes are written out here independently of ``appointments.sources`` on purpose: a sender that
reused the verifier's code would agree with it even when both were wrong.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

# The sources the runner signs for, and the development secrets it uses unless WEBHOOK_SECRET_<SOURCE> is set.
DEV_SECRETS = {
    "generic": "dev-generic-secret",
    "calcom": "dev-calcom-secret",
    "calendly": "dev-calendly-signing-key",
    "autotask": "dev-autotask-secret",
}


def timestamped_signature(secret: str, body: bytes, at: datetime) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`` (generic, Calendly)."""
    t = str(int(at.timestamp()))
    digest = hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


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
    raise KeyError(source)
