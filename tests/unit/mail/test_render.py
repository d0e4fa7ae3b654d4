"""Every mail the desk sends, rendered: what the customer (or ops) reads, and what they must never read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from appointments.domain.appointment_types import AppointmentTypeCatalog
from appointments.domain.model import CancelledBy, Customer, Links, Status, Technician, TicketRef
from appointments.domain.outbox import MailKind
from appointments.errors import UnknownAppointmentType
from appointments.mail.branding import Branding
from appointments.mail.formatting import MAX_SUBJECT
from appointments.mail.render import render
from tests.factories import ALEX, CATALOG, DANA, SAM
from tests.unit.mail.builders import (
    BRAND,
    CALENDAR_KINDS,
    COUPON,
    CUSTOMER_KINDS,
    INSTRUCTED_KINDS,
    LINKS,
    SECRETS,
    TICKET,
    WHEN,
    a_mail,
    an_appointment_to_mail,
    cancelled,
    everything,
    rendered,
)

EXPECTED_SUBJECTS = {
    MailKind.CONFIRMATION: f"Appointment confirmed: {WHEN} (ticket {TICKET})",
    MailKind.RESCHEDULED: f"Your appointment has moved to {WHEN} (ticket {TICKET})",
    MailKind.RESCHEDULE_REQUEST: f"Please choose a new time for your appointment (ticket {TICKET})",
    MailKind.REASSIGNED: f"New technician for your appointment on {WHEN}: Sam Okafor (ticket {TICKET})",
    MailKind.CANCELLED: f"Appointment cancelled: {WHEN} (ticket {TICKET})",
    MailKind.REMINDER: f"Reminder: your appointment on {WHEN} (ticket {TICKET})",
    MailKind.PRE_NOTICE: f"We are still assigning a technician for {WHEN} (ticket {TICKET})",
    MailKind.NO_SHOW: f"We missed you: your appointment on {WHEN} (ticket {TICKET})",
    MailKind.CONTACT_ATTEMPT: f"We tried to reach you about your appointment (ticket {TICKET})",
}


# -- what every customer mail says ------------------------------------------------------------------


@pytest.mark.parametrize("kind", CUSTOMER_KINDS)
def test_the_subject_names_what_happened_the_time_and_the_ticket(kind: MailKind) -> None:
    # Given an appointment at 10:00 in New York with a ticket
    # When its mail of this kind is rendered
    mail = rendered(kind)

    # Then the subject says what happened, when (for most kinds), and the ticket
    assert mail.subject == EXPECTED_SUBJECTS[kind]


@pytest.mark.parametrize(
    ("zone", "start", "expected"),
    [
        ("America/New_York", datetime(2026, 11, 23, 15, 0, tzinfo=UTC), "Monday 23 November 2026, 10:00 AM EST"),
        ("America/New_York", datetime(2026, 7, 6, 14, 0, tzinfo=UTC), "Monday 6 July 2026, 10:00 AM EDT"),
        ("Europe/Berlin", datetime(2026, 11, 23, 9, 0, tzinfo=UTC), "Monday 23 November 2026, 10:00 AM CET"),
        ("Europe/Berlin", datetime(2026, 7, 6, 8, 30, tzinfo=UTC), "Monday 6 July 2026, 10:30 AM CEST"),
        ("Asia/Kolkata", datetime(2026, 3, 1, 9, 0, tzinfo=UTC), "Sunday 1 March 2026, 2:30 PM IST"),
        ("Europe/Istanbul", datetime(2026, 3, 1, 21, 0, tzinfo=UTC), "Monday 2 March 2026, 12:00 AM UTC+03"),
    ],
)
@pytest.mark.parametrize("kind", CUSTOMER_KINDS)
def test_the_start_is_shown_in_the_customers_zone_with_its_abbreviation(
    kind: MailKind, zone: str, start: datetime, expected: str
) -> None:
    # Given an appointment booked in the customer's zone
    appointment = an_appointment_to_mail(timezone=zone, start=start, end=start + timedelta(minutes=30))

    # When it is mailed
    mail = rendered(kind, appointment)

    # Then both forms show the local date in words, the local time and the zone's abbreviation
    assert expected in mail.text
    assert expected in mail.html
    assert zone.replace("_", " ") in mail.text


def test_the_end_is_shown_and_a_day_change_is_spelled_out() -> None:
    start = datetime(2026, 11, 24, 4, 30, tzinfo=UTC)  # 11:30 PM EST on the 23rd
    same_day = rendered(MailKind.CONFIRMATION, an_appointment_to_mail(start=start, end=start + timedelta(minutes=20)))
    next_day = rendered(MailKind.CONFIRMATION, an_appointment_to_mail(start=start, end=start + timedelta(hours=1)))
    assert "11:30 PM - 11:50 PM EST (America/New York time)" in same_day.text
    assert "11:30 PM - Tuesday 24 November 2026, 12:30 AM EST (America/New York time)" in next_day.text


def test_a_change_to_summer_time_during_the_appointment_shows_both_abbreviations() -> None:
    start = datetime(2026, 3, 8, 6, 30, tzinfo=UTC)  # 1:30 AM EST; clocks jump to 3:00 AM EDT at 2:00
    mail = rendered(MailKind.REMINDER, an_appointment_to_mail(start=start, end=start + timedelta(hours=1)))
    assert "1:30 AM EST - 3:30 AM EDT" in mail.text


@pytest.mark.parametrize("kind", CUSTOMER_KINDS)
def test_the_type_and_the_ticket_number_are_shown(kind: MailKind) -> None:
    mail = rendered(kind)
    remote = CATALOG.get("remote_call_in")
    assert remote.name in mail.text and remote.name in mail.html
    assert f"Ticket:      {TICKET}" in mail.text
    assert TICKET in mail.html


@pytest.mark.parametrize("kind", CUSTOMER_KINDS)
def test_without_a_ticket_no_ticket_is_mentioned(kind: MailKind) -> None:
    mail = rendered(kind, an_appointment_to_mail(ticket=None))
    assert "ticket" not in mail.subject.lower()
    assert "Ticket" not in mail.text and "Ticket" not in mail.html


def test_a_ticket_without_a_number_shows_its_id() -> None:
    mail = rendered(MailKind.REMINDER, an_appointment_to_mail(ticket=TicketRef(system="halopsa", id="9917")))
    assert mail.subject.endswith("(ticket 9917)")


@pytest.mark.parametrize("kind", sorted(INSTRUCTED_KINDS))
def test_the_types_instructions_tell_the_customer_what_to_do(kind: MailKind) -> None:
    # Given a type with its own instructions
    catalog = AppointmentTypeCatalog.with_overrides()
    for key in ("remote_we_call", "onsite"):
        appointment = an_appointment_to_mail(type=key)

        # When the mail is rendered
        mail = render(a_mail(kind, appointment), appointment, catalog=catalog, branding=BRAND)

        # Then it carries that type's name and instructions
        assert catalog.get(key).instructions in mail.text
        assert catalog.get(key).instructions in mail.html
        assert catalog.get(key).name in mail.text


@pytest.mark.parametrize("kind", CUSTOMER_KINDS)
def test_the_appointments_own_links_are_offered(kind: MailKind) -> None:
    mail = rendered(kind)
    assert LINKS.reschedule is not None and LINKS.cancel is not None
    if kind is MailKind.CANCELLED:
        # Cancelled: the way back is a new booking on the booking site.
        assert f'href="{BRAND.booking_base_url}"' in mail.html
        assert f"Book a new appointment: {BRAND.booking_base_url}" in mail.text
        return
    assert f'href="{LINKS.reschedule}"' in mail.html
    assert LINKS.reschedule in mail.text
    if kind is not MailKind.NO_SHOW:
        assert f'href="{LINKS.cancel}"' in mail.html
        assert f"Cancel appointment: {LINKS.cancel}" in mail.text


@pytest.mark.parametrize("kind", CUSTOMER_KINDS)
def test_without_links_the_booking_base_url_is_offered(kind: MailKind) -> None:
    mail = rendered(kind, an_appointment_to_mail(links=Links()))
    assert f'href="{BRAND.booking_base_url}"' in mail.html
    assert f"{BRAND.booking_base_url}" in mail.text
    assert "cal.example" not in mail.html


@pytest.mark.parametrize("kind", CUSTOMER_KINDS)
def test_without_any_link_the_customer_is_told_to_reply_or_call(kind: MailKind) -> None:
    branding = Branding(company_name="Northwind IT", support_email="support@northwind.example")
    mail = rendered(kind, an_appointment_to_mail(links=Links()), branding=branding)
    assert '<a href="http' not in mail.html
    assert "reply to this email" in mail.text and "reply to this email" in mail.html


def test_a_link_that_is_not_http_is_never_offered() -> None:
    links = Links(reschedule="javascript:alert(1)", cancel="data:text/html,<script>alert(1)</script>")
    mail = rendered(MailKind.CONFIRMATION, an_appointment_to_mail(links=links))
    assert "javascript:" not in mail.html and "data:" not in mail.html
    assert f'href="{BRAND.booking_base_url}"' in mail.html


@pytest.mark.parametrize("kind", CUSTOMER_KINDS)
def test_the_ops_message_is_included(kind: MailKind) -> None:
    mail = rendered(kind, message="Our technician is ill.\nSorry & thanks!")
    assert "Our technician is ill.\nSorry & thanks!" in mail.text
    assert "Our technician is ill.<br>\nSorry &amp; thanks!" in mail.html


@pytest.mark.parametrize("kind", CUSTOMER_KINDS)
def test_without_a_message_there_is_no_note_from_the_team(kind: MailKind) -> None:
    mail = rendered(kind)
    assert "A note from our team" not in mail.text and "A note from our team" not in mail.html


@pytest.mark.parametrize("kind", CUSTOMER_KINDS)
def test_internal_text_never_reaches_a_customer(kind: MailKind) -> None:
    # Given an appointment with an internal note, a contact-attempt note, a hold reason and a dispatcher's
    # cancellation reason (also in the mail's context, as the back office records it)
    appointment = an_appointment_to_mail()

    # When any customer mail about it is rendered
    mail = rendered(kind, appointment, reason=f"{SECRETS[3]} tech sick", outcome="busy")

    # Then none of that text is anywhere in it, calendar file included
    text = everything(mail)
    assert not [secret for secret in SECRETS if secret in text]


@pytest.mark.parametrize("kind", CUSTOMER_KINDS)
def test_the_branding_signs_every_mail(kind: MailKind) -> None:
    mail = rendered(kind)
    for part in (mail.text, mail.html):
        assert "Northwind IT" in part
        assert "support@northwind.example" in part
        assert "+1 212 555 0199" in part
    assert "Kind regards,\nThe Northwind service desk" in mail.text
    assert "Kind regards,<br>\nThe Northwind service desk" in mail.html
    assert 'href="mailto:support@northwind.example"' in mail.html


@pytest.mark.parametrize("kind", CUSTOMER_KINDS)
def test_only_confirmations_reschedules_and_cancellations_carry_a_calendar_file(kind: MailKind) -> None:
    mail = rendered(kind)
    assert (mail.ics is not None) == (kind in CALENDAR_KINDS)
    expected = {MailKind.CANCELLED: "CANCEL"}.get(kind, "REQUEST") if kind in CALENDAR_KINDS else None
    assert mail.ics_method == expected


# -- escaping and header safety ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(MailKind))
def test_a_customer_name_is_escaped_in_html_and_plain_in_text(kind: MailKind) -> None:
    # Given a customer whose name is markup
    name = "<script>alert(1)</script>"
    appointment = an_appointment_to_mail(customer=DANA.model_copy(update={"name": name}))

    # When any mail about them is rendered
    mail = rendered(kind, appointment, message='<img src=x onerror="alert(2)">')

    # Then the HTML shows it as text, the plain text as typed
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in mail.html
    assert "<script" not in mail.html.lower() and "<img" not in mail.html
    assert name in mail.text
    if kind is not MailKind.OPS_ALERT:
        assert "&lt;img src=x onerror=&#34;alert(2)&#34;&gt;" in mail.html


@pytest.mark.parametrize("kind", list(MailKind))
def test_no_line_break_reaches_the_subject(kind: MailKind) -> None:
    # Given customer-supplied text made to inject a header
    injected = "Dana\r\n Bcc: x@y"
    appointment = an_appointment_to_mail(
        customer=Customer(name=injected, email="dana@example.com"),
        technicians=(Technician(id="t-1", name="Sam\r\nBcc: evil@example.com", primary=True),),
        ticket=TicketRef(system="autotask", id="1", number="T1\nBcc: x@y\x00\x1b"),
    )

    # When the mail is rendered
    mail = rendered(kind, appointment, subject="alert\r\nBcc: x@y\u2028")

    # Then the subject is one line with no control character at all
    assert not any(ord(c) < 32 or ord(c) == 127 or c in "\u2028\u2029\x85" for c in mail.subject)
    assert mail.subject == mail.subject.strip() and "  " not in mail.subject


@pytest.mark.parametrize("kind", list(MailKind))
def test_the_subject_is_bounded(kind: MailKind) -> None:
    long = "x" * 400
    appointment = an_appointment_to_mail(
        customer=DANA.model_copy(update={"name": long}),
        technicians=(SAM.model_copy(update={"name": long}),),
        ticket=TicketRef(system="autotask", id="1", number="T" * 100),
    )
    mail = rendered(kind, appointment, subject=long)
    assert len(mail.subject) <= MAX_SUBJECT


# -- each kind's own story ------------------------------------------------------------------------


def test_the_confirmation_names_the_technician_or_promises_one() -> None:
    assert "Sam Okafor will be your technician." in rendered(MailKind.CONFIRMATION).text
    unassigned = rendered(MailKind.CONFIRMATION, an_appointment_to_mail(technicians=()))
    assert "We will let you know who your technician is" in unassigned.text
    assert "Technician:" not in unassigned.text


def test_the_reassignment_names_the_new_technician() -> None:
    mail = rendered(MailKind.REASSIGNED, an_appointment_to_mail(technicians=(ALEX,)))
    assert "Alex Kim will now take care of your appointment on " + WHEN in mail.text
    assert "Alex Kim" in mail.html and "Sam Okafor" not in mail.html
    assert mail.subject.startswith(f"New technician for your appointment on {WHEN}: Alex Kim")


def test_a_reassignment_to_nobody_says_another_technician_is_being_found() -> None:
    mail = rendered(MailKind.REASSIGNED, an_appointment_to_mail(technicians=()))
    assert "is no longer available. We are assigning someone else" in mail.text
    assert mail.subject.startswith("Technician update for your appointment on")


def test_a_deferral_is_a_reschedule_with_the_new_time_and_the_message() -> None:
    # Given an appointment deferred four weeks (recorded as RESCHEDULED with the dispatcher's message)
    start = datetime(2026, 12, 21, 15, 0, tzinfo=UTC)
    deferred = an_appointment_to_mail(start=start, end=start + timedelta(minutes=30))

    # When the mail is rendered
    mail = rendered(MailKind.RESCHEDULED, deferred, message="Moved four weeks out, as agreed.")

    # Then it shows the new time, the message and an updated calendar entry
    assert "Your appointment has moved to Monday 21 December 2026, 10:00 AM EST." in mail.text
    assert "Moved four weeks out, as agreed." in mail.text
    assert mail.ics is not None and "DTSTART:20261221T150000Z" in mail.ics


def test_the_reschedule_request_asks_for_a_new_time() -> None:
    mail = rendered(MailKind.RESCHEDULE_REQUEST)
    assert "Please choose a time that suits you." in mail.text
    assert f"Choose a new time: {LINKS.reschedule}" in mail.text


def test_the_pre_notice_says_a_technician_is_still_being_assigned() -> None:
    mail = rendered(MailKind.PRE_NOTICE, an_appointment_to_mail(technicians=()))
    assert "We are still assigning a technician" in mail.text
    assert "We are still assigning a technician" in mail.html


def test_the_no_show_says_the_appointment_was_missed_and_offers_a_new_time() -> None:
    mail = rendered(MailKind.NO_SHOW)
    assert f"You missed your appointment on {WHEN}" in mail.text
    assert f"Choose a new time: {LINKS.reschedule}" in mail.text
    assert f'href="{LINKS.reschedule}"' in mail.html


@pytest.mark.parametrize(
    ("outcome", "said"),
    [("voicemail", "we left a voicemail"), ("busy", "the line was busy"), ("no_answer", "nobody answered")],
)
def test_the_contact_attempt_says_we_tried_and_how(outcome: str, said: str) -> None:
    mail = rendered(MailKind.CONTACT_ATTEMPT, outcome=outcome)
    assert f"We tried to call you about your appointment on {WHEN}, but could not reach you ({said})." in mail.text
    assert "We tried to reach you" in mail.html
    assert f"Choose a time: {LINKS.reschedule}" in mail.text


def test_a_contact_attempt_with_an_unknown_outcome_still_reads_well() -> None:
    mail = rendered(MailKind.CONTACT_ATTEMPT, outcome="weird")
    assert "but could not reach you." in mail.text and "weird" not in mail.text


@pytest.mark.parametrize(
    ("by", "opening"),
    [
        (CancelledBy.CUSTOMER, "As you asked, we have cancelled your appointment on"),
        (CancelledBy.OPS, "We are sorry: we have had to cancel your appointment on"),
        (CancelledBy.SYSTEM, "We are sorry: we could not assign a technician to your appointment on"),
    ],
)
@pytest.mark.parametrize("with_coupon", [False, True])
def test_the_cancellation_says_who_cancelled_and_offers_the_coupon(
    by: CancelledBy, opening: str, with_coupon: bool
) -> None:
    # Given an appointment cancelled by the customer, a dispatcher or the rules, with or without a coupon
    appointment = cancelled(an_appointment_to_mail(), by, COUPON if with_coupon else None)

    # When the cancellation mail is rendered
    mail = rendered(MailKind.CANCELLED, appointment)

    # Then it says who cancelled; the coupon's code, percent and expiry (in words) appear only with a coupon
    assert opening in mail.text and opening in mail.html
    for part in (mail.text, mail.html):
        assert (COUPON.code in part) is with_coupon
        assert ("15% off" in part) is with_coupon
        assert ("Valid until Saturday 22 May 2027." in part) is with_coupon
    assert ("As an apology" in mail.text) is (with_coupon and by is not CancelledBy.CUSTOMER)


def test_a_coupon_named_only_in_the_context_is_offered_without_an_expiry() -> None:
    # Given a cancelled appointment whose coupon is known only from the mail's context (code and percent)
    appointment = cancelled(an_appointment_to_mail(), CancelledBy.SYSTEM)

    # When the mail is rendered
    mail = rendered(MailKind.CANCELLED, appointment, coupon={"code": "ABCD-EFGH", "percent": 20})

    # Then the code and percent are shown, with no expiry line
    assert "ABCD-EFGH" in mail.text and "20% off" in mail.text and "Valid until" not in mail.text


def test_a_context_coupon_with_an_expiry_shows_it_in_words() -> None:
    appointment = cancelled(an_appointment_to_mail(), CancelledBy.OPS)
    coupon = {"code": "ABCD", "percent": 10, "expires_at": "2027-05-20T03:00:00+00:00"}
    mail = rendered(MailKind.CANCELLED, appointment, coupon=coupon)
    assert "Valid until Wednesday 19 May 2027." in mail.text  # 11 PM on the 19th in New York


@pytest.mark.parametrize("coupon", [{"code": "", "percent": 10}, {"code": "X", "percent": "ten"}, "X", None])
def test_a_malformed_context_coupon_is_left_out(coupon: object) -> None:
    appointment = cancelled(an_appointment_to_mail(), CancelledBy.OPS)
    mail = rendered(MailKind.CANCELLED, appointment, coupon=coupon)
    assert "% off" not in mail.text


def test_a_cancellation_without_its_record_still_reads_well() -> None:
    appointment = an_appointment_to_mail().model_copy(update={"status": Status.CANCELLED})
    mail = render(a_mail(MailKind.CANCELLED, appointment), appointment, catalog=CATALOG, branding=BRAND)
    assert f"Your appointment on {WHEN} has been cancelled." in mail.text


def test_a_customer_mail_for_a_type_the_catalog_does_not_know_is_refused() -> None:
    # The wrong instructions are worse than a late mail: the relay sees the error.
    appointment = an_appointment_to_mail(type="remote_call_in").model_copy(update={"type": "retired_type"})
    with pytest.raises(UnknownAppointmentType):
        render(a_mail(MailKind.REMINDER, appointment), appointment, catalog=CATALOG, branding=BRAND)


# -- ops alerts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "detail"),
    [
        ("at risk: unassigned inside the auto-cancel window", {"rule": "at_risk"}),
        ("auto-cancelled: no technician", {"rule": "auto_cancel"}),
        ("the start has come and no technician is assigned", {"rule": "unassigned_at_start"}),
        ("a technician was assigned before the auto-cancel", {"event": "assigned", "technicians": ["t-17", "t-23"]}),
        ("the booking's type is not mapped", {"source": "calcom", "vendor_type": "30min"}),
        ("checked in before the no-show", {"event": "checked_in", "checked_in_at": "2026-11-23T15:04:00+00:00"}),
        ("a customer mail could not be sent", {"mail": "confirmation#v3", "error": "MessageRejected", "attempts": 5}),
        ("an event was dead-lettered", {"delivery": {"id": "at-77812", "source": "autotask"}, "retried": True}),
        ("an event matched no appointment", {"ref": "calendly:inv-1187", "waited_hours": 72.5, "nothing": None}),
    ],
)
def test_an_ops_alert_lists_every_detail_and_the_appointment(subject: str, detail: dict[str, Any]) -> None:
    # Given an alert with its subject and any details
    appointment = an_appointment_to_mail()

    # When it is rendered
    mail = rendered(MailKind.OPS_ALERT, appointment, subject=subject, **detail)

    # Then the subject names the alert, the customer and the time; every detail key is listed
    assert mail.subject == f"[Northwind IT] {subject}: Dana Reyes, {WHEN}"
    for key in detail:
        assert f"{key}:" in mail.text
        assert f">{key}</dt>" in mail.html
    # and the appointment: id, time, customer, ticket
    for fact in (appointment.id, WHEN, "Dana Reyes", "dana@example.com", "autotask 48213", TICKET, "Sam Okafor"):
        assert fact in mail.text and fact in mail.html
    assert mail.ics is None


def test_an_ops_alert_shows_instants_also_in_the_customers_zone_and_structures_as_json() -> None:
    mail = rendered(
        MailKind.OPS_ALERT, checked_in_at="2026-11-23T15:04:00+00:00", delivery={"id": "d-1", "n": 2}, ids=["a", "b"]
    )
    assert "checked_in_at: 2026-11-23T15:04:00+00:00 (Monday 23 November 2026, 10:04 AM EST)" in mail.text
    assert 'delivery: {"id": "d-1", "n": 2}' in mail.text
    assert "ids: a, b" in mail.text
    assert "{&#34;id&#34;: &#34;d-1&#34;, &#34;n&#34;: 2}" in mail.html


def test_an_ops_alert_without_a_subject_or_a_known_type_still_renders() -> None:
    appointment = an_appointment_to_mail().model_copy(update={"type": "retired_type"})
    mail = render(a_mail(MailKind.OPS_ALERT, appointment), appointment, catalog=CATALOG, branding=BRAND)
    assert mail.subject.startswith("[Northwind IT] alert: Dana Reyes")
    assert "retired_type (not in the catalog)" in mail.text


def test_an_ops_alert_shows_the_cancellation_for_ops() -> None:
    appointment = cancelled(an_appointment_to_mail(), CancelledBy.SYSTEM, COUPON)
    mail = rendered(MailKind.OPS_ALERT, appointment, subject="auto-cancelled: no technician", rule="auto_cancel")
    assert "cancelled: by system" in mail.text
    assert "status: cancelled" in mail.text


# -- the services' own records render ------------------------------------------------------------------


def test_the_mails_the_desk_records_all_render() -> None:
    # Given the desk's own services recording mails: a booking by phone, the pre-notice, the auto-cancel
    from tests.unit.test_sweeper import S, a_desk

    desk = a_desk()
    booked = desk.book(technicians=(), links=LINKS)
    desk.sweep_at(S - timedelta(hours=24))
    desk.sweep_at(S - timedelta(hours=3))
    desk.sweep_at(S - timedelta(hours=1))

    # When each is rendered against the appointment as stored
    appointment = desk.get(booked.id)
    mails = list(desk.store.mails[booked.id].values())
    results = {mail.kind: render(mail, appointment, catalog=desk.catalog, branding=BRAND) for mail in mails}

    # Then every kind recorded reads as it should, the system's coupon with its expiry
    assert set(results) >= {MailKind.CONFIRMATION, MailKind.PRE_NOTICE, MailKind.CANCELLED, MailKind.OPS_ALERT}
    coupon = appointment.cancellation.coupon if appointment.cancellation else None
    assert coupon is not None
    assert coupon.code in results[MailKind.CANCELLED].text
    assert "Valid until" in results[MailKind.CANCELLED].text
    assert "could not assign a technician" in results[MailKind.CANCELLED].text
    assert results[MailKind.OPS_ALERT].subject.startswith("[Northwind IT] auto-cancelled: no technician")
