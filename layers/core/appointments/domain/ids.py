"""Sortable, unguessable ids: ULIDs (48-bit millisecond time + 80 random bits, Crockford base32)."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ULID = 26


def new_ulid(at: datetime, randomness: bytes | None = None) -> str:
    """A ULID for instant ``at``; ids made later sort after ids made earlier (to the millisecond)."""
    entropy = secrets.token_bytes(10) if randomness is None else randomness
    if len(entropy) != 10:
        raise ValueError("a ULID takes exactly 10 bytes of randomness")
    millis = int(at.timestamp() * 1000)
    if not 0 <= millis < 1 << 48:
        raise ValueError("instant out of the ULID range")
    value = (millis << 80) | int.from_bytes(entropy, "big")
    chars = []
    for _ in range(_ULID):
        value, index = divmod(value, 32)
        chars.append(_ALPHABET[index])
    return "".join(reversed(chars))


def is_ulid(text: str) -> bool:
    return len(text) == _ULID and all(c in _ALPHABET for c in text) and text[0] in "01234567"
