"""``python -m localdev mail-preview`` and the branding settings the functions render with."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from appointments.config import DEFAULT_COMPANY_NAME, DEFAULT_SIGNATURE, Settings
from appointments.domain.model import CancelledBy
from appointments.domain.outbox import MailKind
from appointments.errors import ConfigError
from localdev.__main__ import main
from localdev.mail_preview import INTERNAL_NOTE, preview_branding, samples

if TYPE_CHECKING:
    from pathlib import Path

BASE = {
    "TABLE_NAME": "appointments",
    "MAIL_FROM": "desk@msp.example",
    "OPS_ALERT_EMAIL": "ops@msp.example",
    "EVENT_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/events.fifo",
    "WEBHOOK_SECRETS_ID": "appointment-desk/webhook-secrets",
}


def test_the_preview_writes_every_kind_and_variant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given an empty folder
    out = tmp_path / "preview"

    # When the preview runs
    code = main(["mail-preview", "--out", str(out)])

    # Then it wrote .html and .txt for every sample (and .ics for calendar mails) and printed each path
    assert code == 0
    printed = capsys.readouterr().out.split()
    names = {sample.name for sample in samples()}
    for name in names:
        assert (out / f"{name}.html").is_file() and (out / f"{name}.txt").is_file()
    assert {"confirmation", "rescheduled", "reschedule_request", "reassigned", "reminder", "pre_notice"} <= names
    assert {"no_show", "contact_attempt", "ops_alert-at_risk", "ops_alert-mail_failed"} <= names
    for by in CancelledBy:
        assert {f"cancelled-by_{by.value}", f"cancelled-by_{by.value}-coupon"} <= names
    ics = sorted(path.name for path in out.glob("*.ics"))
    assert ics == sorted(f"{s.name}.ics" for s in samples() if s.mail.kind in _CALENDAR)
    assert (out / "confirmation.ics").read_bytes().count(b"\r\n") > 10  # CRLF kept on disk
    assert sorted(printed) == sorted(str(path) for path in out.iterdir())
    assert {sample.mail.kind for sample in samples()} == set(MailKind)


_CALENDAR = {MailKind.CONFIRMATION, MailKind.RESCHEDULED, MailKind.CANCELLED}


def test_the_preview_shows_no_internal_note_to_customers(tmp_path: Path) -> None:
    main(["mail-preview", "--out", str(tmp_path)])
    leaked = [p.name for p in tmp_path.iterdir() if INTERNAL_NOTE in p.read_text(encoding="utf-8")]
    assert leaked == []


def test_the_preview_takes_the_branding_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COMPANY_NAME", "Contoso Support")
    monkeypatch.setenv("SUPPORT_PHONE", "+44 20 7946 0000")
    main(["mail-preview", "--out", str(tmp_path)])
    html = (tmp_path / "reminder.html").read_text(encoding="utf-8")
    assert "Contoso Support" in html and "+44 20 7946 0000" in html
    assert "support@northwind.example" in html  # unset: the sample's


def test_a_bad_branding_variable_stops_the_preview(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BOOKING_BASE_URL", "javascript:alert(1)")
    assert main(["mail-preview", "--out", str(tmp_path)]) == 2
    assert "BOOKING_BASE_URL" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_the_branding_defaults_when_nothing_is_set() -> None:
    branding = Settings.from_environ(BASE).branding()
    assert branding.company_name == DEFAULT_COMPANY_NAME
    assert branding.signature == DEFAULT_SIGNATURE
    assert branding.support_email == "desk@msp.example"  # MAIL_FROM
    assert (branding.support_phone, branding.booking_base_url) == (None, None)
    assert branding.calendar_domain == "msp.example"


def test_the_branding_variables_are_read() -> None:
    settings = Settings.from_environ(
        {
            **BASE,
            "COMPANY_NAME": "Northwind IT",
            "SUPPORT_EMAIL": "help@northwind.example",
            "SUPPORT_PHONE": "+1 212 555 0199",
            "MAIL_SIGNATURE": "Kind regards,\\nThe service desk",
            "BOOKING_BASE_URL": "https://book.northwind.example",
        }
    )
    branding = settings.branding()
    assert branding.company_name == "Northwind IT"
    assert branding.support_email == "help@northwind.example"
    assert branding.support_phone == "+1 212 555 0199"
    assert branding.signature == "Kind regards,\nThe service desk"
    assert branding.booking_base_url == "https://book.northwind.example"


def test_blank_branding_variables_take_the_defaults() -> None:
    blank = dict.fromkeys(("COMPANY_NAME", "SUPPORT_EMAIL", "SUPPORT_PHONE", "MAIL_SIGNATURE", "BOOKING_BASE_URL"), " ")
    branding = Settings.from_environ({**BASE, **blank}).branding()
    assert (branding.company_name, branding.signature) == (DEFAULT_COMPANY_NAME, DEFAULT_SIGNATURE)
    assert (branding.support_email, branding.support_phone, branding.booking_base_url) == (
        "desk@msp.example",
        None,
        None,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [("BOOKING_BASE_URL", "ftp://book.example"), ("BOOKING_BASE_URL", "not a url"), ("SUPPORT_EMAIL", "nope")],
)
def test_bad_branding_variables_are_refused(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_environ({**BASE, name: value})


def test_the_preview_branding_is_the_settings_branding() -> None:
    assert preview_branding({}).company_name == "Northwind IT"
    assert preview_branding({"COMPANY_NAME": "X"}).company_name == "X"
