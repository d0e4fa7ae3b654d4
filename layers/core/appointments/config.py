"""Settings: every configurable value, read from the environment by ``wiring`` and nowhere else.

Names are the environment variables the template sets (Globals), so a template parameter, the
function's environment and this model say the same thing.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from appointments.domain.appointment_types import AppointmentType, AppointmentTypeCatalog
from appointments.domain.model import Email, TimeZoneName
from appointments.domain.outbox import NoShowMailBy
from appointments.domain.psa_writeback import DEFAULT_NOTE_ACTIONS, WritebackPolicy
from appointments.domain.rules import RuleTimings
from appointments.errors import ConfigError
from appointments.mail.branding import Branding
from appointments.mail.formatting import safe_url
from appointments.sources.connectwise import DEFAULT_COMPLETE_STATUSES, DEFAULT_KEY_HOSTS, key_hosts

if TYPE_CHECKING:
    from collections.abc import Mapping

Hours = Annotated[float, Field(gt=0, le=24 * 14)]
DEFAULT_COMPANY_NAME = "Your IT support team"
DEFAULT_SIGNATURE = "The support team"
StatusId = Annotated[str, Field(pattern=r"^\s*[0-9]{1,9}\s*$"), AfterValidator(str.strip)]


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    table_name: str = Field(alias="TABLE_NAME", min_length=3)
    due_shards: int = Field(4, alias="DUE_SHARDS", ge=1, le=64)
    # Days after its end an appointment and everything under it is deleted by the table's TTL (0: kept forever).
    appointment_retention_days: int = Field(0, alias="APPOINTMENT_RETENTION_DAYS", ge=0, le=36500)
    event_queue_url: str = Field(alias="EVENT_QUEUE_URL", min_length=1)
    webhook_secrets_id: str = Field(alias="WEBHOOK_SECRETS_ID", min_length=1)
    reminder_offsets_hours: tuple[Hours, ...] = Field((24.0,), alias="REMINDER_OFFSETS_HOURS")
    pre_notice_hours: Hours = Field(3.0, alias="PRE_NOTICE_HOURS")
    auto_cancel_hours: Hours = Field(1.0, alias="AUTO_CANCEL_HOURS")
    no_show_limit_hours: Hours = Field(24.0, alias="NO_SHOW_LIMIT_HOURS")
    # Who mails the customer about a no-show: the desk, or the PSA's own workflow that setting the ticket to
    # NO-SHOW fires (only for an appointment with a ticket; without one the desk still mails).
    no_show_mail_by: NoShowMailBy = Field(NoShowMailBy.DESK, alias="NO_SHOW_MAIL_BY")
    # An event that overtakes its booking (or its ticket's) waits this long; vendors retry for up to 24 h.
    unmatched_event_retention_hours: Annotated[float, Field(ge=24, le=24 * 14)] = Field(
        72.0, alias="UNMATCHED_EVENT_RETENTION_HOURS"
    )
    # A booking change still waiting for its booking this long alerts ops once (0: never). At most a day,
    # the shortest an event waits, so the alert always comes while the event is still listed.
    unmatched_alert_minutes: int = Field(30, alias="UNMATCHED_ALERT_MINUTES", ge=0, le=24 * 60)
    mail_from: Email = Field(alias="MAIL_FROM")
    # The SES configuration set every mail is sent through: its event destination reports bounces,
    # complaints and rejects (tagged with the mail's appointment and key) to the mail feedback function.
    mail_configuration_set: str | None = Field(None, alias="MAIL_CONFIGURATION_SET", max_length=64)
    # The custom bus every change is published to as a domain event.
    event_bus_name: str = Field("", alias="EVENT_BUS_NAME")
    ops_alert_email: Email = Field(alias="OPS_ALERT_EMAIL")
    coupon_percent: int = Field(15, alias="COUPON_PERCENT", ge=1, le=100)
    coupon_valid_days: int = Field(180, alias="COUPON_VALID_DAYS", ge=1, le=3650)
    appointment_types: tuple[AppointmentType, ...] = Field((), alias="APPOINTMENT_TYPES")
    # source -> vendor type (Cal.com slug, Calendly event type UUID, ...) -> our type key
    vendor_type_map: dict[str, dict[str, str]] = Field(default_factory=dict, alias="VENDOR_TYPE_MAP")
    # source -> our type key for bookings whose vendor type has no mapping
    source_default_types: dict[str, str] = Field(default_factory=dict, alias="SOURCE_DEFAULT_TYPES")
    # sources whose bookings and changes we mail the customer about (schedulers mail their own)
    customer_mail_sources: frozenset[str] = Field(frozenset(), alias="CUSTOMER_MAIL_SOURCES")
    # Cal.com sends no reschedule/cancel links: they are built from the booking site's address.
    calcom_booking_base_url: str | None = Field(None, alias="CALCOM_BOOKING_BASE_URL")
    # Autotask ticket status ids: COMPLETE is the system's 5; NO-SHOW is each instance's own (unset = off).
    autotask_complete_status_id: StatusId = Field("5", alias="AUTOTASK_COMPLETE_STATUS_ID")
    autotask_no_show_status_id: StatusId | None = Field(None, alias="AUTOTASK_NO_SHOW_STATUS_ID")
    # ConnectWise: the hosts a callback's key_url may name (host, *.suffix, or a loopback http origin for the
    # local runner), and the ticket statuses (by name on any board, or a board's status id) meaning COMPLETE
    # and NO-SHOW (none = that mapping off).
    connectwise_key_hosts: tuple[str, ...] = Field(DEFAULT_KEY_HOSTS, alias="CONNECTWISE_KEY_HOSTS", min_length=1)
    connectwise_complete_statuses: tuple[str, ...] = Field(
        DEFAULT_COMPLETE_STATUSES, alias="CONNECTWISE_COMPLETE_STATUSES", min_length=1
    )
    connectwise_no_show_statuses: tuple[str, ...] = Field((), alias="CONNECTWISE_NO_SHOW_STATUSES")
    # HaloPSA ticket status ids: COMPLETE defaults to Halo's built-in "Closed" (9); NO-SHOW is the MSP's own
    # (unset = off). Halo sends appointments in UTC with no zone: mails show them in HALOPSA_TIMEZONE.
    halopsa_complete_status_id: StatusId = Field("9", alias="HALOPSA_COMPLETE_STATUS_ID")
    halopsa_no_show_status_id: StatusId | None = Field(None, alias="HALOPSA_NO_SHOW_STATUS_ID")
    halopsa_timezone: TimeZoneName = Field("UTC", alias="HALOPSA_TIMEZONE")
    # The PSA write-back: its credentials' secret, the status to set per action and PSA (no_show defaults to
    # each PSA's NO-SHOW status above), the actions noted on the ticket, and whether notes are public.
    psa_credentials_id: str = Field("", alias="PSA_CREDENTIALS_ID")
    psa_writeback_statuses: dict[str, dict[str, str]] = Field(default_factory=dict, alias="PSA_WRITEBACK_STATUSES")
    psa_note_actions: tuple[str, ...] = Field(tuple(sorted(DEFAULT_NOTE_ACTIONS)), alias="PSA_NOTE_ACTIONS")
    psa_notes_public: bool = Field(False, alias="PSA_NOTES_PUBLIC")
    # TimeZest has no webhooks: the poller reads its API (key: the "timezest" entry of the webhook secrets).
    # 150 a minute plus a burst of 10 stays under TimeZest's account-wide 180 per 60 s.
    timezest_api_url: str = Field("https://api.timezest.com/v1", alias="TIMEZEST_API_URL", min_length=8, max_length=500)
    timezest_requests_per_minute: int = Field(150, alias="TIMEZEST_REQUESTS_PER_MINUTE", ge=1, le=170)
    # Branding of the customer's mail (appointments.mail). The support address defaults to MAIL_FROM;
    # a "\\n" in MAIL_SIGNATURE is a line break (a template parameter holds one line).
    company_name: str = Field(DEFAULT_COMPANY_NAME, alias="COMPANY_NAME", min_length=1, max_length=200)
    support_email: Email | None = Field(None, alias="SUPPORT_EMAIL")
    support_phone: str | None = Field(None, alias="SUPPORT_PHONE", max_length=50)
    mail_signature: str = Field(DEFAULT_SIGNATURE, alias="MAIL_SIGNATURE", min_length=1, max_length=1000)
    # Where customers rebook, reschedule or cancel when an appointment has no links of its own.
    booking_base_url: str | None = Field(None, alias="BOOKING_BASE_URL", max_length=2000)

    @field_validator(
        "calcom_booking_base_url",
        "autotask_no_show_status_id",
        "halopsa_no_show_status_id",
        "mail_configuration_set",
        mode="before",
    )
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("no_show_mail_by", mode="before")
    @classmethod
    def _mail_by(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip().lower() or NoShowMailBy.DESK
        return value

    @field_validator("support_email", "support_phone", "booking_base_url", mode="before")
    @classmethod
    def _blank_branding_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("company_name", "mail_signature", mode="before")
    @classmethod
    def _blank_branding_is_default(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str) and not value.strip():
            return DEFAULT_COMPANY_NAME if info.field_name == "company_name" else DEFAULT_SIGNATURE
        return value.replace("\\n", "\n").strip() if isinstance(value, str) else value

    @field_validator("booking_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and safe_url(value) is None:
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("connectwise_key_hosts")
    @classmethod
    def _key_hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        key_hosts(value)  # a ValueError naming the bad entry
        return value

    @field_validator(
        "reminder_offsets_hours",
        "customer_mail_sources",
        "connectwise_key_hosts",
        "connectwise_complete_statuses",
        "connectwise_no_show_statuses",
        "psa_note_actions",
        mode="before",
    )
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator(
        "appointment_types", "vendor_type_map", "source_default_types", "psa_writeback_statuses", mode="before"
    )
    @classmethod
    def _json(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            empty: Any = () if info.field_name == "appointment_types" else {}
            return json.loads(value) if value.strip() else empty
        return value

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        try:
            return cls.model_validate(dict(environ))
        except (ValidationError, json.JSONDecodeError) as exc:
            raise ConfigError(f"invalid settings: {_describe(exc)}") from None

    def catalog(self) -> AppointmentTypeCatalog:
        return AppointmentTypeCatalog.with_overrides(self.appointment_types)

    def branding(self) -> Branding:
        return Branding(
            company_name=self.company_name,
            support_email=self.support_email or self.mail_from,
            support_phone=self.support_phone,
            signature=self.mail_signature,
            booking_base_url=self.booking_base_url,
        )

    def writeback_policy(self) -> WritebackPolicy:
        """What the write-back writes: no_show sets each PSA's configured NO-SHOW status unless told otherwise."""
        no_show = {
            system: status
            for system, status in (
                ("autotask", self.autotask_no_show_status_id),
                ("connectwise", next(iter(self.connectwise_no_show_statuses), None)),
                ("halopsa", self.halopsa_no_show_status_id),
            )
            if status
        }
        statuses = {"no_show": no_show, **self.psa_writeback_statuses}
        return WritebackPolicy(
            statuses=statuses, note_actions=frozenset(self.psa_note_actions), public_notes=self.psa_notes_public
        )

    def rule_timings(self) -> RuleTimings:
        return RuleTimings(
            reminder_offsets=tuple(timedelta(hours=hours) for hours in self.reminder_offsets_hours),
            pre_notice=timedelta(hours=self.pre_notice_hours),
            auto_cancel=timedelta(hours=self.auto_cancel_hours),
            no_show_limit=timedelta(hours=self.no_show_limit_hours),
        )

    @model_validator(mode="after")
    def _mapped_types_are_known(self) -> Settings:
        catalog = self.catalog()
        named = [*self.source_default_types.values(), *(k for m in self.vendor_type_map.values() for k in m.values())]
        unknown = sorted({key for key in named if key not in catalog})
        if unknown:
            raise ValueError(f"VENDOR_TYPE_MAP / SOURCE_DEFAULT_TYPES name unknown appointment types: {unknown}")
        cw_complete = {status.casefold() for status in self.connectwise_complete_statuses}
        if cw_complete & {status.casefold() for status in self.connectwise_no_show_statuses}:
            raise ValueError("CONNECTWISE_NO_SHOW_STATUSES must not name a CONNECTWISE_COMPLETE_STATUSES status")
        if self.autotask_complete_status_id == self.autotask_no_show_status_id:
            raise ValueError("AUTOTASK_NO_SHOW_STATUS_ID must differ from AUTOTASK_COMPLETE_STATUS_ID")
        if self.halopsa_complete_status_id == self.halopsa_no_show_status_id:
            raise ValueError("HALOPSA_NO_SHOW_STATUS_ID must differ from HALOPSA_COMPLETE_STATUS_ID")
        return self


def _describe(exc: Exception) -> str:
    """Which settings are wrong, without echoing their values (they may be secrets)."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_input=False))
    return "APPOINTMENT_TYPES, VENDOR_TYPE_MAP or SOURCE_DEFAULT_TYPES is not valid JSON"
