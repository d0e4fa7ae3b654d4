"""``python -m localdev mail-preview [--out DIR]``: every mail the desk sends, rendered from sample data.

One file set per kind and variant (``DIR/<name>.html``, ``.txt`` and, for calendar mails, ``.ics``) plus
``DIR/index.html`` linking them, so templates can be reviewed in a browser without sending anything.
Branding comes from the same environment variables as the deployed functions (COMPANY_NAME,
SUPPORT_EMAIL, SUPPORT_PHONE, MAIL_SIGNATURE, BOOKING_BASE_URL); unset ones take sample values.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appointments.config import Settings
from appointments.domain.appointment_types import AppointmentTypeCatalog
from appointments.domain.model import (
    Appointment,
    Cancellation,
    CancelledBy,
    Coupon,
    Customer,
    ExternalRef,
    Links,
    Note,
    Status,
    Technician,
    TicketRef,
)
from appointments.domain.outbox import MailKind, OutboxMail
from appointments.mail.render import RenderedMail, render

if TYPE_CHECKING:
    from collections.abc import Mapping

    from appointments.mail.branding import Branding

DEFAULT_OUT = Path("mail-preview")
BRANDING_VARIABLES = ("COMPANY_NAME", "SUPPORT_EMAIL", "SUPPORT_PHONE", "MAIL_SIGNATURE", "BOOKING_BASE_URL")
SAMPLE_BRANDING = {
    "COMPANY_NAME": "Northwind IT",
    "SUPPORT_EMAIL": "support@northwind.example",
    "SUPPORT_PHONE": "+1 212 555 0199",
    "MAIL_SIGNATURE": "Kind regards,\\nThe Northwind IT service desk",
    "BOOKING_BASE_URL": "https://book.northwind.example",
}
# A sample internal note: it must appear in no customer mail (the preview makes that easy to check).
INTERNAL_NOTE = "INTERNAL: customer disputes last invoice; do not offer free work"

_NOW = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
_START = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # Monday 23 November 2026, 10:00 AM EST
_SAM = Technician(id="t-17", name="Sam Okafor", email="sam@northwind.example", primary=True)
_ALEX = Technician(id="t-23", name="Alex Kim", email="alex@northwind.example", primary=True)
_COUPON = Coupon(code="7KQ2-M9XD-4RTW-H3CP", percent=15, expires_at=_NOW + timedelta(days=180))


@dataclass(frozen=True)
class Sample:
    name: str
    mail: OutboxMail
    appointment: Appointment


def sample_appointment(**changes: Any) -> Appointment:
    appointment = Appointment(
        id="01KAPPT0000000000000000001",
        status=Status.SCHEDULED,
        start=_START,
        end=_START + timedelta(hours=1),
        timezone="America/New_York",
        type="remote_session",
        customer=Customer(name="Dana Reyes", email="dana@reyes-dental.example", company="Reyes Dental"),
        technicians=(_SAM,),
        ticket=TicketRef(system="autotask", id="48213", number="T20261123.0004"),
        external_refs=(ExternalRef(system="calcom", id="bk-981"),),
        links=Links(
            reschedule="https://book.northwind.example/reschedule/bk-981",
            cancel="https://book.northwind.example/cancel/bk-981",
        ),
        notes=(Note(at=_NOW, author="dispatcher", text=INTERNAL_NOTE),),
        created_at=_NOW,
        updated_at=_NOW,
        version=3,
    )
    return appointment.model_copy(update=changes)


def samples() -> list[Sample]:
    """Every kind, each cancelled variant (by customer, ops, system; with and without a coupon), and one
    ops alert per alert the desk raises today or will (mail failed, dead-lettered, unmatched event)."""
    base = sample_appointment()
    unassigned = sample_appointment(technicians=())
    items = [
        _sample("confirmation", MailKind.CONFIRMATION, base),
        _sample("rescheduled", MailKind.RESCHEDULED, base, message="As you asked on the phone, we moved it to Monday."),
        _sample(
            "rescheduled-defer",
            MailKind.RESCHEDULED,
            base.model_copy(update={"start": _START + timedelta(weeks=4), "end": _START + timedelta(weeks=4, hours=1)}),
            message="We have moved your appointment four weeks out, as agreed. Your discount is kept.",
        ),
        _sample(
            "reschedule_request",
            MailKind.RESCHEDULE_REQUEST,
            base.model_copy(update={"status": Status.REQUESTED}),
            message="Our technician is ill that day. Sorry for the trouble!",
        ),
        _sample("reassigned", MailKind.REASSIGNED, base.model_copy(update={"technicians": (_ALEX,)})),
        _sample("reassigned-unassigned", MailKind.REASSIGNED, unassigned),
        _sample("reminder", MailKind.REMINDER, base),
        _sample("pre_notice", MailKind.PRE_NOTICE, unassigned),
        _sample("no_show", MailKind.NO_SHOW, base.model_copy(update={"status": Status.NO_SHOW})),
        _sample("contact_attempt", MailKind.CONTACT_ATTEMPT, base, outcome="voicemail"),
    ]
    for by in CancelledBy:
        for coupon in (None, _COUPON):
            items.append(_cancelled(by, coupon))
    items += [_alert(code, subject, detail, unassigned) for code, subject, detail in _ALERTS]
    return items


_ALERTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("at_risk", "at risk: unassigned inside the auto-cancel window", {"rule": "at_risk"}),
    ("auto_cancel", "auto-cancelled: no technician", {"rule": "auto_cancel"}),
    ("unassigned_at_start", "the start has come and no technician is assigned", {"rule": "unassigned_at_start"}),
    (
        "late_assignment",
        "a technician was assigned before the auto-cancel, but the news came after it",
        {"event": "appointment_assigned", "technicians": ["t-17"]},
    ),
    ("type_unmapped", "the booking's type is not mapped", {"source": "calcom", "vendor_type": "30min-quick-fix"}),
    (
        "check_in_before_no_show",
        "the customer checked in before the no-show was marked: it is scheduled again",
        {"event": "customer_checked_in", "checked_in_at": "2026-11-23T15:04:00+00:00"},
    ),
    (
        "mail_failed",
        "a customer mail could not be sent",
        {
            "mail": "confirmation#2026-11-23T15:00:00+00:00#v3",
            "error": "MessageRejected: Email address is not verified",
        },
    ),
    ("dead_lettered", "an event was dead-lettered", {"source": "autotask", "delivery_id": "at-77812", "attempts": 5}),
    (
        "unmatched_event",
        "an event matched no appointment before its retention ended",
        {"source": "calendly", "ref": "calendly:inv-1187", "waited_hours": 72},
    ),
)


def _sample(
    name: str, kind: MailKind, appointment: Appointment, *, message: str | None = None, outcome: str | None = None
) -> Sample:
    context: dict[str, Any] = {}
    if message:
        context["message"] = message
    if outcome:
        context["outcome"] = outcome
    return Sample(name, _mail(kind, appointment, context), appointment)


def _cancelled(by: CancelledBy, coupon: Coupon | None) -> Sample:
    reasons = {
        CancelledBy.CUSTOMER: "cancelled on the booking page",
        CancelledBy.OPS: "technician unavailable",
        CancelledBy.SYSTEM: "no technician could be assigned in time",
    }
    message = "We are very sorry: our only on-site technician is ill today." if by is CancelledBy.OPS else None
    cancellation = Cancellation(at=_NOW, by=by, reason=reasons[by], message=message, coupon=coupon)
    appointment = sample_appointment(status=Status.CANCELLED, cancellation=cancellation)
    context: dict[str, Any] = {"reason": reasons[by]}
    if message:
        context["message"] = message
    if coupon is not None:
        context["coupon"] = {
            "code": coupon.code,
            "percent": coupon.percent,
            "expires_at": coupon.expires_at.isoformat(),
        }
    name = f"cancelled-by_{by.value}" + ("-coupon" if coupon else "")
    return Sample(name, _mail(MailKind.CANCELLED, appointment, context), appointment)


def _alert(code: str, subject: str, detail: dict[str, Any], appointment: Appointment) -> Sample:
    mail = _mail(MailKind.OPS_ALERT, appointment, {"subject": subject, **detail}, to="ops@northwind.example")
    return Sample(f"ops_alert-{code}", mail, appointment)


def _mail(kind: MailKind, appointment: Appointment, context: dict[str, Any], *, to: str | None = None) -> OutboxMail:
    address = to or appointment.customer.email or "customer@example.com"
    return OutboxMail.for_change(kind, appointment, to=(address,), at=_NOW, context=context)


def preview_branding(environ: Mapping[str, str]) -> Branding:
    """The branding the functions would use with these variables; sample values for those unset."""
    branding = {name: environ.get(name) or SAMPLE_BRANDING[name] for name in BRANDING_VARIABLES}
    placeholders = {
        "TABLE_NAME": "preview",
        "EVENT_QUEUE_URL": "preview",
        "WEBHOOK_SECRETS_ID": "preview",
        "MAIL_FROM": branding["SUPPORT_EMAIL"],
        "OPS_ALERT_EMAIL": "ops@northwind.example",
    }
    return Settings.from_environ({**placeholders, **branding}).branding()


def write_previews(out: Path, branding: Branding, catalog: AppointmentTypeCatalog | None = None) -> list[Path]:
    """Render every sample into ``out``; returns the files written, index last."""
    types = catalog or AppointmentTypeCatalog.with_overrides()
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    rows: list[tuple[str, RenderedMail]] = []
    for sample in samples():
        rendered = render(sample.mail, sample.appointment, catalog=types, branding=branding)
        rows.append((sample.name, rendered))
        written.append(_write(out / f"{sample.name}.html", rendered.html))
        written.append(_write(out / f"{sample.name}.txt", rendered.text))
        if rendered.ics is not None:
            written.append(_write(out / f"{sample.name}.ics", rendered.ics))
    written.append(_write(out / "index.html", _index(rows)))
    return written


def _write(path: Path, text: str) -> Path:
    # newline="": the text is written as it is (a calendar keeps its CRLF line endings on every platform).
    with path.open("w", encoding="utf-8", newline="") as file:
        file.write(text)
    return path


def _index(rows: list[tuple[str, RenderedMail]]) -> str:
    items = []
    for name, rendered in rows:
        extra = f' &middot; <a href="{name}.ics">ics</a>' if rendered.ics else ""
        items.append(
            f'<li><a href="{name}.html">{html.escape(name)}</a> (<a href="{name}.txt">text</a>{extra}): '
            f"{html.escape(rendered.subject)}</li>"
        )
    body = "\n".join(items)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Mail preview</title></head>\n'
        f'<body style="font-family:sans-serif;"><h1>Mail preview</h1>\n<ul>\n{body}\n</ul>\n</body></html>\n'
    )
