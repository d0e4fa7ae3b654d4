"""Render one outbox mail: subject, plain text, HTML and (for invitations and cancellations) an .ics.

``render`` is pure: it reads the mail, the appointment it is about, the type catalog and the branding,
and nothing else (no clock, no I/O besides the package's own templates). What a customer mail may show
is decided here, in the view; the templates only lay it out. Internal notes, contact-attempt notes,
hold reasons and the dispatcher's cancellation reason never reach a customer's view; only the ops
``message`` does, which the ops API documents as "included in the customer's mail".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from appointments.domain.model import ContactOutcome
from appointments.domain.outbox import MailKind
from appointments.errors import UnknownAppointmentType
from appointments.mail import ics
from appointments.mail.formatting import (
    clock_time,
    date_in_words,
    one_line,
    paragraph_text,
    safe_url,
    when,
    zone_abbreviation,
    zone_label,
)

if TYPE_CHECKING:
    from appointments.domain.appointment_types import AppointmentTypeCatalog
    from appointments.domain.events import CanonicalEvent
    from appointments.domain.model import Appointment
    from appointments.domain.outbox import OutboxMail
    from appointments.mail.branding import Branding

TEMPLATES = Path(__file__).parent / "templates"
_BLANK_RUNS = re.compile(r"\n{3,}")

CUSTOMER_KINDS = frozenset(MailKind) - {MailKind.OPS_ALERT}
_INVITES = {MailKind.CONFIRMATION: ics.Method.REQUEST, MailKind.RESCHEDULED: ics.Method.REQUEST}
_OUTCOMES = {
    ContactOutcome.VOICEMAIL.value: "we left a voicemail",
    ContactOutcome.BUSY.value: "the line was busy",
    ContactOutcome.NO_ANSWER.value: "nobody answered",
}


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str
    ics: str | None = None

    @property
    def ics_method(self) -> str | None:
        """``REQUEST`` or ``CANCEL``: the ``method`` parameter of the attachment's ``text/calendar`` type."""
        if self.ics is None:
            return None
        line = next(line for line in self.ics.split(ics.CRLF) if line.startswith("METHOD:"))
        return line.removeprefix("METHOD:")


@dataclass(frozen=True)
class CouponView:
    code: str
    percent: int
    expires: str | None  # the date in words, in the customer's zone


@dataclass(frozen=True)
class CustomerView:
    kind: str
    subject: str
    preheader: str
    customer_name: str
    when: str
    date: str
    start_time: str
    end_time: str
    zone: str
    zone_label: str
    type_name: str
    instructions: str
    ticket_number: str | None
    technician: str | None
    message: str | None
    reschedule_url: str | None
    cancel_url: str | None
    book_url: str | None
    cancelled_by: str | None
    coupon: CouponView | None
    outcome: str | None
    has_ics: bool


@dataclass(frozen=True)
class OpsView:
    kind: str
    subject: str
    preheader: str
    alert: str
    details: tuple[tuple[str, str], ...]
    facts: tuple[tuple[str, str], ...]
    facts_title: str = "Appointment"


def render(
    mail: OutboxMail, appointment: Appointment, *, catalog: AppointmentTypeCatalog, branding: Branding
) -> RenderedMail:
    """The mail as it is sent. A customer mail about an appointment whose type the catalog does not know
    raises ``UnknownAppointmentType``: wrong instructions are worse than a late mail."""
    if mail.kind is MailKind.OPS_ALERT:
        view: CustomerView | OpsView = _ops_view(mail, appointment, catalog, branding)
        calendar = None
    else:
        view = _customer_view(mail, appointment, catalog, branding)
        calendar = _calendar(mail, appointment, view, branding)
    kind = "ops_alert" if isinstance(view, OpsView) else mail.kind.value
    values = {"m": view, "brand": _brand(branding)}
    html = _environment().get_template(f"{kind}.html.j2").render(values)
    text = _BLANK_RUNS.sub("\n\n", _environment().get_template(f"{kind}.txt.j2").render(values)).lstrip("\n")
    return RenderedMail(subject=view.subject, text=text, html=html, ics=calendar)


# -- customer mails --------------------------------------------------------------------------------


def _customer_view(
    mail: OutboxMail, appointment: Appointment, catalog: AppointmentTypeCatalog, branding: Branding
) -> CustomerView:
    kind, zone, start = mail.kind, appointment.timezone, appointment.start
    kind_of = catalog.get(appointment.type)
    base = safe_url(branding.booking_base_url)
    reschedule = safe_url(appointment.links.reschedule) or base
    cancel = safe_url(appointment.links.cancel) or base
    technician = appointment.primary_technician
    ticket = appointment.ticket
    ticket_number = one_line(ticket.number or ticket.id, 100) if ticket is not None else None
    cancellation = appointment.cancellation if kind is MailKind.CANCELLED else None
    coupon = _coupon(mail, appointment) if kind is MailKind.CANCELLED else None
    outcome = mail.context.get("outcome")
    subject = _customer_subject(kind, when(start, zone), technician.name if technician else None)
    if ticket_number:
        subject = f"{subject} (ticket {ticket_number})"
    return CustomerView(
        kind=kind.value,
        subject=one_line(subject),
        preheader=one_line(f"{kind_of.name}: {when(start, zone)}", 200),
        customer_name=one_line(appointment.customer.name, 500),
        when=when(start, zone),
        date=date_in_words(start, zone),
        start_time=_start(appointment),
        end_time=_end(appointment),
        zone=zone_abbreviation(appointment.end, zone),
        zone_label=zone_label(zone),
        type_name=one_line(kind_of.name, 500),
        instructions=paragraph_text(kind_of.instructions),
        ticket_number=ticket_number or None,
        technician=one_line(technician.name, 500) if technician else None,
        message=_message(mail.context),
        reschedule_url=reschedule,
        cancel_url=cancel,
        book_url=base or reschedule,
        cancelled_by=cancellation.by.value if cancellation else None,
        coupon=coupon,
        outcome=_OUTCOMES.get(outcome) if isinstance(outcome, str) else None,
        has_ics=kind in _INVITES or kind is MailKind.CANCELLED,
    )


def _customer_subject(kind: MailKind, at: str, technician: str | None) -> str:
    match kind:
        case MailKind.CONFIRMATION:
            return f"Appointment confirmed: {at}"
        case MailKind.RESCHEDULED:
            return f"Your appointment has moved to {at}"
        case MailKind.RESCHEDULE_REQUEST:
            return "Please choose a new time for your appointment"
        case MailKind.REASSIGNED:
            if technician:
                return f"New technician for your appointment on {at}: {one_line(technician, 60)}"
            return f"Technician update for your appointment on {at}"
        case MailKind.CANCELLED:
            return f"Appointment cancelled: {at}"
        case MailKind.REMINDER:
            return f"Reminder: your appointment on {at}"
        case MailKind.PRE_NOTICE:
            return f"We are still assigning a technician for {at}"
        case MailKind.NO_SHOW:
            return f"We missed you: your appointment on {at}"
        case MailKind.CONTACT_ATTEMPT:
            return "We tried to reach you about your appointment"
    raise ValueError(f"not a customer mail: {kind}")  # pragma: no cover


def _start(appointment: Appointment) -> str:
    """The start's clock time; with its zone too when the end's differs (a change to or from summer time)."""
    zone, start = appointment.timezone, appointment.start
    abbreviation = zone_abbreviation(start, zone)
    shifted = abbreviation != zone_abbreviation(appointment.end, zone)
    return f"{clock_time(start, zone)} {abbreviation}" if shifted else clock_time(start, zone)


def _end(appointment: Appointment) -> str:
    """The end's clock time, with its date when it ends on another day (the end's zone follows it)."""
    zone, end = appointment.timezone, appointment.end
    same_day = date_in_words(appointment.start, zone) == date_in_words(end, zone)
    return clock_time(end, zone) if same_day else f"{date_in_words(end, zone)}, {clock_time(end, zone)}"


def _message(context: dict[str, Any]) -> str | None:
    message = context.get("message")
    return (paragraph_text(message) or None) if isinstance(message, str) else None


def _coupon(mail: OutboxMail, appointment: Appointment) -> CouponView | None:
    """The coupon the cancellation carries; else the one the mail's context names (without an expiry)."""
    zone = appointment.timezone
    cancellation = appointment.cancellation
    if cancellation is not None and cancellation.coupon is not None:
        coupon = cancellation.coupon
        return CouponView(coupon.code, coupon.percent, date_in_words(coupon.expires_at, zone))
    told = mail.context.get("coupon")
    if not isinstance(told, dict):
        return None
    code, percent, expires_at = told.get("code"), told.get("percent"), told.get("expires_at")
    if not isinstance(code, str) or not code.strip() or not isinstance(percent, int) or isinstance(percent, bool):
        return None
    expires = _instant(expires_at)
    return CouponView(one_line(code, 100), percent, date_in_words(expires, zone) if expires else None)


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _calendar(mail: OutboxMail, appointment: Appointment, view: CustomerView, branding: Branding) -> str | None:
    method = ics.Method.CANCEL if mail.kind is MailKind.CANCELLED else _INVITES.get(mail.kind)
    if method is None:
        return None
    lines = [view.type_name, "", view.instructions]
    if view.ticket_number:
        lines += ["", f"Ticket: {view.ticket_number}"]
    if method is ics.Method.REQUEST:
        lines += [f"Reschedule: {view.reschedule_url}"] if view.reschedule_url else []
        lines += [f"Cancel: {view.cancel_url}"] if view.cancel_url else []
    contact = " / ".join(x for x in (branding.support_email, branding.support_phone) if x)
    lines += ["", f"{branding.company_name}: {contact}"]
    customer = appointment.customer
    attendees = tuple(
        ics.Person(customer.name if address == customer.email else address, address) for address in mail.to
    )
    event = ics.CalendarEvent(
        uid=f"{appointment.id}@{branding.calendar_domain}",
        sequence=appointment.version,
        stamp=mail.created_at,
        start=appointment.start,
        end=appointment.end,
        summary=f"{view.type_name} ({branding.company_name})",
        description="\n".join(lines),
        organizer=ics.Person(branding.company_name, branding.support_email),
        attendees=attendees,
    )
    return ics.calendar(event, method)


# -- ops alerts ------------------------------------------------------------------------------------


def _ops_view(
    mail: OutboxMail, appointment: Appointment, catalog: AppointmentTypeCatalog, branding: Branding
) -> OpsView:
    context = mail.context
    told = context.get("subject")
    alert = one_line(told, 200) if isinstance(told, str) and told.strip() else "alert"
    zone, start = appointment.timezone, appointment.start
    customer = one_line(appointment.customer.name, 80)
    subject = one_line(f"[{branding.company_name}] {alert}: {customer}, {when(start, zone)}")
    details = tuple((str(key), _value(value, zone)) for key, value in context.items() if key != "subject")
    return OpsView(
        kind=mail.kind.value,
        subject=subject,
        preheader=one_line(f"{alert}: {customer}", 200),
        alert=alert,
        details=details,
        facts=_facts(appointment, catalog),
    )


def render_unmatched_alert(
    event: CanonicalEvent, *, arrived_at: datetime, dropped_at: datetime, branding: Branding
) -> RenderedMail:
    """The ops alert about a booking change still waiting for its booking: there is no appointment to
    show, so the facts are the event's, and the mail says where ops see it (``GET /unmatched``)."""
    booking = str(event.external_ref) if event.external_ref is not None else "(none)"
    alert = "a booking change is waiting for a booking the desk does not hold"
    subject = one_line(f"[{branding.company_name}] unmatched {event.kind.value} from {event.source}: {booking}")
    details = (
        ("source", one_line(event.source, 100)),
        ("event", event.kind.value),
        ("booking", one_line(booking, 300)),
        ("arrived", arrived_at.isoformat()),
        ("dropped", f"{dropped_at.isoformat()}, unless its booking arrives first"),
        ("where", "GET /unmatched lists it, with what it waits for"),
    )
    facts: list[tuple[str, str]] = [
        ("delivery", one_line(event.delivery_id, 500)),
        ("occurred", event.occurred_at.isoformat()),
    ]
    if event.previous_ref is not None:
        facts.append(("replaces booking", one_line(str(event.previous_ref), 300)))
    if event.reason:
        facts.append(("reason", paragraph_text(event.reason)))
    view = OpsView(
        kind=MailKind.OPS_ALERT.value,
        subject=subject,
        preheader=one_line(f"{alert}: {booking}", 200),
        alert=alert,
        details=details,
        facts=tuple(facts),
        facts_title="Event",
    )
    values = {"m": view, "brand": _brand(branding)}
    html = _environment().get_template("ops_alert.html.j2").render(values)
    text = _BLANK_RUNS.sub("\n\n", _environment().get_template("ops_alert.txt.j2").render(values)).lstrip("\n")
    return RenderedMail(subject=view.subject, text=text, html=html)


def _facts(appointment: Appointment, catalog: AppointmentTypeCatalog) -> tuple[tuple[str, str], ...]:
    zone = appointment.timezone
    try:
        type_name = f"{catalog.get(appointment.type).name} ({appointment.type})"
    except UnknownAppointmentType:
        type_name = f"{appointment.type} (not in the catalog)"
    customer = appointment.customer
    who = ", ".join(x for x in (customer.name, customer.email, customer.phone, customer.company) if x)
    ticket = appointment.ticket
    facts: list[tuple[str, str]] = [
        ("appointment", appointment.id),
        ("status", appointment.status.value),
        ("start", f"{when(appointment.start, zone)} ({appointment.start.isoformat()}, {zone})"),
        ("end", f"{when(appointment.end, zone)} ({appointment.end.isoformat()})"),
        ("type", type_name),
        ("customer", who),
        ("technicians", ", ".join(f"{t.name} ({t.id})" for t in appointment.technicians) or "none assigned"),
    ]
    if ticket is not None:
        facts.append(("ticket", f"{ticket.system} {ticket.id}" + (f" ({ticket.number})" if ticket.number else "")))
    if appointment.external_refs:
        facts.append(("references", ", ".join(str(ref) for ref in appointment.external_refs)))
    if appointment.cancellation is not None:
        facts.append(("cancelled", f"by {appointment.cancellation.by.value}: {appointment.cancellation.reason}"))
    if appointment.hold is not None:
        facts.append(("on hold", f"since {appointment.hold.at.isoformat()} by {appointment.hold.by}"))
    facts.append(("version", str(appointment.version)))
    return tuple((label, paragraph_text(value)) for label, value in facts)


def _value(value: object, zone: str) -> str:
    """Any context value, readable: text as is (an instant also in the customer's zone), lists joined, the rest JSON."""
    if isinstance(value, str):
        instant = _instant(value)
        return f"{value} ({when(instant, zone)})" if instant else paragraph_text(value)
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return paragraph_text(", ".join(value))
    return paragraph_text(json.dumps(value, ensure_ascii=False, sort_keys=True, default=str))


# -- templates -------------------------------------------------------------------------------------


def _brand(branding: Branding) -> dict[str, str | None]:
    return {
        "company": paragraph_text(branding.company_name),
        "support_email": branding.support_email,
        "support_phone": branding.support_phone,
        "signature": paragraph_text(branding.signature),
    }


def _lines(text: str) -> Markup:
    """HTML: the text escaped, its newlines as ``<br>``."""
    return Markup("<br>\n").join(escape(line) for line in text.split("\n"))


@cache
def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=True, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["lines"] = _lines
    return environment
