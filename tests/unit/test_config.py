"""Settings come from the environment the template sets; bad values stop the function clearly."""

from __future__ import annotations

import json

import pytest

from appointments.config import Settings
from appointments.domain.outbox import NoShowMailBy
from appointments.errors import ConfigError

BASE = {
    "TABLE_NAME": "appointments",
    "MAIL_FROM": "desk@msp.example",
    "OPS_ALERT_EMAIL": "ops@msp.example",
    "EVENT_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/events.fifo",
    "WEBHOOK_SECRETS_ID": "appointment-desk/webhook-secrets",
}


def test_defaults_are_the_designed_rule_timings() -> None:
    settings = Settings.from_environ(BASE)
    assert settings.reminder_offsets_hours == (24.0,)
    assert (settings.pre_notice_hours, settings.auto_cancel_hours, settings.no_show_limit_hours) == (3.0, 1.0, 24.0)
    assert settings.coupon_percent == 15
    assert settings.due_shards == 4


def test_the_template_forms_are_parsed() -> None:
    types = [
        {
            "key": "server_window",
            "name": "Server",
            "duration_minutes": 90,
            "mode": "remote_session",
            "instructions": "x",
        }
    ]
    settings = Settings.from_environ(
        {**BASE, "REMINDER_OFFSETS_HOURS": "48, 24,2", "DUE_SHARDS": "8", "APPOINTMENT_TYPES": json.dumps(types)}
    )
    assert settings.reminder_offsets_hours == (48.0, 24.0, 2.0)
    assert settings.due_shards == 8
    assert "server_window" in settings.catalog()
    assert "remote_call_in" in settings.catalog()


@pytest.mark.parametrize(
    ("name", "value"),
    [("DUE_SHARDS", "0"), ("MAIL_FROM", "desk"), ("PRE_NOTICE_HOURS", "-3"), ("APPOINTMENT_TYPES", "[{")],
)
def test_a_bad_value_is_a_config_error_naming_the_setting_but_not_its_value(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_environ({**BASE, name: value})
    assert name in raised.value.message or "APPOINTMENT_TYPES" in raised.value.message
    assert value not in raised.value.message.replace(name, "")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, NoShowMailBy.DESK), ("desk", NoShowMailBy.DESK), ("psa", NoShowMailBy.PSA), (" PSA ", NoShowMailBy.PSA)],
)
def test_who_mails_a_no_show_is_the_desk_unless_set_to_the_psa(value: str | None, expected: NoShowMailBy) -> None:
    environ = BASE if value is None else {**BASE, "NO_SHOW_MAIL_BY": value}
    assert Settings.from_environ(environ).no_show_mail_by is expected


def test_an_unknown_no_show_mailer_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="NO_SHOW_MAIL_BY") as raised:
        Settings.from_environ({**BASE, "NO_SHOW_MAIL_BY": "customer"})
    assert "customer" not in raised.value.message


def test_a_missing_required_setting_is_named() -> None:
    with pytest.raises(ConfigError, match="TABLE_NAME"):
        Settings.from_environ({k: v for k, v in BASE.items() if k != "TABLE_NAME"})


def test_vendor_type_mappings_and_customer_mail_sources_are_parsed() -> None:
    settings = Settings.from_environ(
        {
            **BASE,
            "VENDOR_TYPE_MAP": json.dumps({"calcom": {"remote-30": "remote_session"}}),
            "SOURCE_DEFAULT_TYPES": json.dumps({"calendly": "remote_we_call"}),
            "CUSTOMER_MAIL_SOURCES": "generic, calcom",
        }
    )
    assert settings.vendor_type_map == {"calcom": {"remote-30": "remote_session"}}
    assert settings.source_default_types == {"calendly": "remote_we_call"}
    assert settings.customer_mail_sources == frozenset({"generic", "calcom"})


def test_empty_mappings_are_empty() -> None:
    settings = Settings.from_environ(
        {**BASE, "VENDOR_TYPE_MAP": "", "SOURCE_DEFAULT_TYPES": "", "CUSTOMER_MAIL_SOURCES": ""}
    )
    assert (settings.vendor_type_map, settings.source_default_types, settings.customer_mail_sources) == (
        {},
        {},
        frozenset(),
    )


def test_a_mapping_to_an_unknown_type_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="remote_sesion"):
        Settings.from_environ({**BASE, "SOURCE_DEFAULT_TYPES": json.dumps({"calcom": "remote_sesion"})})


def test_autotask_statuses_default_to_complete_5_and_no_no_show_mapping() -> None:
    settings = Settings.from_environ({**BASE, "AUTOTASK_NO_SHOW_STATUS_ID": ""})
    assert (settings.autotask_complete_status_id, settings.autotask_no_show_status_id) == ("5", None)


def test_autotask_statuses_are_read() -> None:
    settings = Settings.from_environ(
        {**BASE, "AUTOTASK_COMPLETE_STATUS_ID": "13", "AUTOTASK_NO_SHOW_STATUS_ID": " 29 "}
    )
    assert (settings.autotask_complete_status_id, settings.autotask_no_show_status_id) == ("13", "29")


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"AUTOTASK_COMPLETE_STATUS_ID": "done"}, "AUTOTASK_COMPLETE_STATUS_ID"),
        ({"AUTOTASK_NO_SHOW_STATUS_ID": "5"}, "AUTOTASK_NO_SHOW_STATUS_ID"),
    ],
)
def test_a_bad_autotask_status_is_a_config_error(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Settings.from_environ({**BASE, **environ})


@pytest.mark.parametrize(("value", "expected"), [(None, None), ("", None), ("  ", None), ("desk-mail", "desk-mail")])
def test_the_mail_configuration_set_is_optional(value: str | None, expected: str | None) -> None:
    # Unset or blank: mail goes out without one (SES then publishes no bounce or complaint events)
    environ = BASE if value is None else {**BASE, "MAIL_CONFIGURATION_SET": value}
    assert Settings.from_environ(environ).mail_configuration_set == expected
