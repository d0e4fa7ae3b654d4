"""Settings: every configurable value, read from the environment by ``wiring`` and nowhere else.

Names are the environment variables the template sets (Globals), so a template parameter, the
function's environment and this model say the same thing.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from appointments.domain.appointment_types import AppointmentType, AppointmentTypeCatalog
from appointments.domain.model import Email
from appointments.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

Hours = Annotated[float, Field(gt=0, le=24 * 14)]


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    table_name: str = Field(alias="TABLE_NAME", min_length=3)
    due_shards: int = Field(4, alias="DUE_SHARDS", ge=1, le=64)
    event_queue_url: str = Field(alias="EVENT_QUEUE_URL", min_length=1)
    webhook_secrets_id: str = Field(alias="WEBHOOK_SECRETS_ID", min_length=1)
    reminder_offsets_hours: tuple[Hours, ...] = Field((24.0,), alias="REMINDER_OFFSETS_HOURS")
    pre_notice_hours: Hours = Field(3.0, alias="PRE_NOTICE_HOURS")
    auto_cancel_hours: Hours = Field(1.0, alias="AUTO_CANCEL_HOURS")
    no_show_limit_hours: Hours = Field(24.0, alias="NO_SHOW_LIMIT_HOURS")
    mail_from: Email = Field(alias="MAIL_FROM")
    ops_alert_email: Email = Field(alias="OPS_ALERT_EMAIL")
    coupon_percent: int = Field(15, alias="COUPON_PERCENT", ge=1, le=100)
    coupon_valid_days: int = Field(180, alias="COUPON_VALID_DAYS", ge=1, le=3650)
    appointment_types: tuple[AppointmentType, ...] = Field((), alias="APPOINTMENT_TYPES")

    @field_validator("reminder_offsets_hours", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("appointment_types", mode="before")
    @classmethod
    def _json_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else ()
        return value

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        try:
            return cls.model_validate(dict(environ))
        except (ValidationError, json.JSONDecodeError) as exc:
            raise ConfigError(f"invalid settings: {_describe(exc)}") from None

    def catalog(self) -> AppointmentTypeCatalog:
        return AppointmentTypeCatalog.with_overrides(self.appointment_types)


def _describe(exc: Exception) -> str:
    """Which settings are wrong, without echoing their values (they may be secrets)."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_input=False))
    return "APPOINTMENT_TYPES is not valid JSON"
