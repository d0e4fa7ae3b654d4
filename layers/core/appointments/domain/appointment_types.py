"""Appointment types: what the customer is told to do, and which timed rules apply.

The wrong type sends the customer wrong instructions (call in, or keep the machine free), so an
unknown key is an error, never a silent default.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from appointments.domain.model import Frozen, NonEmpty
from appointments.errors import UnknownAppointmentType

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping


class AppointmentMode(StrEnum):
    CUSTOMER_CALLS_IN = "customer_calls_in"  # the no-show rule applies
    WE_CALL_CUSTOMER = "we_call_customer"  # a missed call is a contact attempt, not a no-show
    REMOTE_SESSION = "remote_session"  # the technician connects; the machine is unavailable
    ONSITE = "onsite"


class AppointmentType(Frozen):
    key: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$")]
    name: NonEmpty
    duration_minutes: Annotated[int, Field(ge=5, le=24 * 60)]
    mode: AppointmentMode
    instructions: Annotated[str, Field(min_length=1, max_length=5000)]
    no_show_after_minutes: Annotated[int, Field(ge=0, le=24 * 60)] = 10

    @property
    def no_show_rule_applies(self) -> bool:
        return self.mode is AppointmentMode.CUSTOMER_CALLS_IN


DEFAULT_APPOINTMENT_TYPES: tuple[AppointmentType, ...] = (
    AppointmentType(
        key="remote_call_in",
        name="Remote support: you call us",
        duration_minutes=30,
        mode=AppointmentMode.CUSTOMER_CALLS_IN,
        instructions=(
            "Please call our support line at the start of your appointment. "
            "Have your computer switched on and logged in."
        ),
    ),
    AppointmentType(
        key="remote_we_call",
        name="Remote support: we call you",
        duration_minutes=30,
        mode=AppointmentMode.WE_CALL_CUSTOMER,
        instructions="Your technician will call you at the start of your appointment. Please keep your phone nearby.",
    ),
    AppointmentType(
        key="remote_session",
        name="Remote session on your computer",
        duration_minutes=60,
        mode=AppointmentMode.REMOTE_SESSION,
        instructions=(
            "Your technician will connect to your computer remotely. Leave it switched on and logged in; "
            "you will not be able to use it during the session."
        ),
    ),
    AppointmentType(
        key="onsite",
        name="On-site visit",
        duration_minutes=60,
        mode=AppointmentMode.ONSITE,
        instructions="Your technician will come to your office. Please make sure someone can let them in.",
    ),
)


class AppointmentTypeCatalog:
    """The types one MSP offers: the shipped defaults, overridden or extended by configuration."""

    def __init__(self, types: Mapping[str, AppointmentType]) -> None:
        self._types = dict(types)

    @classmethod
    def with_overrides(cls, overrides: tuple[AppointmentType, ...] = ()) -> AppointmentTypeCatalog:
        merged = {t.key: t for t in DEFAULT_APPOINTMENT_TYPES}
        merged.update({t.key: t for t in overrides})
        return cls(merged)

    def get(self, key: str) -> AppointmentType:
        try:
            return self._types[key]
        except KeyError:
            raise UnknownAppointmentType(key, tuple(self._types)) from None

    def __contains__(self, key: object) -> bool:
        return key in self._types

    def __iter__(self) -> Iterator[AppointmentType]:
        return iter(self._types.values())
