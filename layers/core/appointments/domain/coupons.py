"""Discount coupons offered when an appointment is cancelled (seed 004: 15% unless one is applied).

A coupon is offered at most once per appointment and never when the customer already has a discount.
Its code is unguessable: 80 random bits, written in Crockford's base32 without look-alike letters,
grouped for reading over the phone. The ops API's cancel and the rules' auto-cancel both use this.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from appointments.domain.model import Coupon

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from appointments.domain.model import Appointment

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
CODE_BITS = 80


def random_code(random_bits: Callable[[int], int] = secrets.randbits) -> str:
    """``XXXX-XXXX-XXXX-XXXX``: 16 base32 characters, 80 random bits."""
    value = random_bits(CODE_BITS)
    characters = [_ALPHABET[(value >> (5 * i)) & 31] for i in range(CODE_BITS // 5)]
    text = "".join(reversed(characters))
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


@dataclass(frozen=True)
class CouponPolicy:
    percent: int = 15
    valid_days: int = 180
    new_code: Callable[[], str] = random_code

    def offer(self, appointment: Appointment, *, at: datetime) -> Coupon | None:
        """A new coupon for cancelling ``appointment``, or None: it has a discount or was offered one."""
        if appointment.discount is not None:
            return None
        if appointment.cancellation is not None and appointment.cancellation.coupon is not None:
            return None
        return Coupon(code=self.new_code(), percent=self.percent, expires_at=at + timedelta(days=self.valid_days))
