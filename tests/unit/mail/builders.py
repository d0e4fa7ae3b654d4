"""What the mail tests render: a branded desk, an appointment with links and internal notes, one mail."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from appointments.domain.model import (
    Appointment,
    Cancellation,
    CancelledBy,
    ContactAttempt,
    ContactOutcome,
    Coupon,
    Hold,
    Links,
    Note,
    Status,
)
from appointments.domain.outbox import MailKind, OutboxMail
from appointments.mail.branding import Branding
from appointments.mail.render import RenderedMail, render
from tests.factories import CATALOG, NOW, an_appointment

BRAND = Branding(
    company_name="Northwind IT",
    support_email="support@northwind.example",
    support_phone="+1 212 555 0199",
    signature="Kind regards,\nThe Northwind service desk",
    booking_base_url="https://book.northwind.example",
)
LINKS = Links(reschedule="https://cal.example/reschedule/bk-1", cancel="https://cal.example/cancel/bk-1")
CUSTOMER_KINDS = tuple(kind for kind in MailKind if kind is not MailKind.OPS_ALERT)
CALENDAR_KINDS = frozenset({MailKind.CONFIRMATION, MailKind.RESCHEDULED, MailKind.CANCELLED})
# Kinds whose mail tells the customer what to do at the appointment (the type's instructions).
INSTRUCTED_KINDS = frozenset(
    {MailKind.CONFIRMATION, MailKind.RESCHEDULED, MailKind.REASSIGNED, MailKind.REMINDER, MailKind.PRE_NOTICE}
)
WHEN = "Monday 23 November 2026, 10:00 AM EST"  # tests.factories.START in America/New_York
TICKET = "T20261123.0004"
# Internal text: it may reach ops, never a customer.
SECRETS = (
    "INTERNAL-NOTE-7731",
    "ATTEMPT-NOTE-5512",
    "HOLD-REASON-9043",
    "DISPATCH-REASON-3318",
)
COUPON = Coupon(code="7KQ2-M9XD-4RTW-H3CP", percent=15, expires_at=NOW + timedelta(days=180))


def an_appointment_to_mail(**overrides: Any) -> Appointment:
    """Scheduled, assigned to Sam, with a ticket, vendor links, and internal notes a customer must never see."""
    fields: dict[str, Any] = {
        "links": LINKS,
        "notes": (Note(at=NOW, author="dispatcher", text=f"{SECRETS[0]} customer disputes the last invoice"),),
        "contact_attempts": (
            ContactAttempt(at=NOW, by="dispatcher", outcome=ContactOutcome.BUSY, note=f"{SECRETS[1]} call back"),
        ),
        "hold": Hold(at=NOW, by="dispatcher", reason=f"{SECRETS[2]} VIP"),
        **overrides,
    }
    return an_appointment(**fields)


def cancelled(appointment: Appointment, by: CancelledBy = CancelledBy.OPS, coupon: Coupon | None = None) -> Appointment:
    cancellation = Cancellation(at=NOW, by=by, reason=f"{SECRETS[3]} tech sick", coupon=coupon)
    return appointment.model_copy(update={"status": Status.CANCELLED, "cancellation": cancellation})


def as_kind(kind: MailKind, appointment: Appointment) -> Appointment:
    """The appointment as it is when a mail of ``kind`` is recorded."""
    if kind is MailKind.CANCELLED and appointment.cancellation is None:
        return cancelled(appointment)
    if kind is MailKind.RESCHEDULE_REQUEST:
        return appointment.model_copy(update={"status": Status.REQUESTED})
    if kind is MailKind.NO_SHOW:
        return appointment.model_copy(update={"status": Status.NO_SHOW})
    return appointment


def a_mail(kind: MailKind, appointment: Appointment, **context: Any) -> OutboxMail:
    to = "ops@northwind.example" if kind is MailKind.OPS_ALERT else (appointment.customer.email or "x@y.example")
    return OutboxMail.for_change(kind, appointment, to=(to,), at=NOW, context=context)


def rendered(
    kind: MailKind, appointment: Appointment | None = None, *, branding: Branding = BRAND, **context: Any
) -> RenderedMail:
    subject = as_kind(kind, appointment or an_appointment_to_mail())
    if kind is MailKind.OPS_ALERT:
        context.setdefault("subject", "at risk: unassigned inside the auto-cancel window")
    return render(a_mail(kind, subject, **context), subject, catalog=CATALOG, branding=branding)


def everything(mail: RenderedMail) -> str:
    return "\n".join((mail.subject, mail.text, mail.html, mail.ics or ""))
