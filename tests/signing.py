"""Signing webhooks the way each vendor does, for tests (and, later, the local runner's sender)."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

EVENTS = Path(__file__).resolve().parent.parent / "events"


def sample(relative: str) -> bytes:
    return (EVENTS / relative).read_bytes()


def timestamped_signature(secret: str, body: bytes, at: datetime) -> str:
    t = str(int(at.timestamp()))
    digest = hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def one_byte_changed(body: bytes) -> bytes:
    """The body with one bit flipped in its middle byte: what a signature must catch."""
    middle = len(body) // 2
    return body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1 :]
