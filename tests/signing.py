"""Sample webhook bodies, and helpers for signing them (the senders live in ``localdev.signing``)."""

from __future__ import annotations

from pathlib import Path

from localdev.signing import timestamped_signature

EVENTS = Path(__file__).resolve().parent.parent / "events"

__all__ = ["EVENTS", "one_byte_changed", "sample", "timestamped_signature"]


def sample(relative: str) -> bytes:
    return (EVENTS / relative).read_bytes()


def one_byte_changed(body: bytes) -> bytes:
    """The body with one bit flipped in its middle byte: what a signature must catch."""
    middle = len(body) // 2
    return body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1 :]
