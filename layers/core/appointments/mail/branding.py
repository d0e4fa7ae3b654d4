"""Who the mail comes from, as the customer reads it: the MSP's name, support contacts and signature."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Branding:
    company_name: str
    support_email: str
    support_phone: str | None = None
    signature: str = "The support team"
    # Where a customer picks or cancels a time when the appointment has no links of its own.
    booking_base_url: str | None = None

    @property
    def calendar_domain(self) -> str:
        """The right-hand side of calendar UIDs (``<appointment id>@<domain>``): the support address's domain."""
        return self.support_email.rpartition("@")[2].lower() or "appointments.invalid"
