"""Whatever a customer, a vendor or a dispatcher types, every mail renders and the HTML stays ours.

MAIL_EXAMPLES explores further.
"""

from __future__ import annotations

import os
import re
from html import unescape
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import escape

from appointments.domain.model import Cancellation, CancelledBy, Customer, Links, Status, Technician, TicketRef
from appointments.domain.outbox import MailKind
from appointments.mail.formatting import MAX_SUBJECT, one_line, paragraph_text
from appointments.mail.render import render
from tests.factories import CATALOG
from tests.unit.mail.builders import BRAND, COUPON, a_mail, an_appointment_to_mail

EXAMPLES = int(os.environ.get("MAIL_EXAMPLES", "200"))
TAGS = {"html", "head", "meta", "title", "body", "div", "table", "tr", "td", "h1", "h2", "p", "a", "span"}
TAGS |= {"strong", "dl", "dt", "dd", "br"}
NASTY = [
    "<script>alert(1)</script>",
    "</td></tr></table><script>",
    '"><img src=x onerror=alert(1)>',
    "' onmouseover='alert(1)",
    "\r\nBcc: x@y",
    "{{ 7*7 }}{% raw %}",
    "\x00\x1b[31m\u2028\u202e",
    "&amp;&lt;",
    "-- \r\n.\r\n",
]
words = st.text(max_size=80) | st.sampled_from(NASTY)
free_text = st.lists(words, min_size=1, max_size=4).map("".join)
non_empty = free_text.filter(lambda s: 1 <= len(s) <= 500)
context_value: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | free_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(free_text, inner, max_size=3),
    max_leaves=8,
)


def assert_html_is_ours(html: str, links: set[str]) -> None:
    """No element, attribute or link came from data: only the templates' tags, no handler, known hrefs."""
    assert "<script" not in html.lower()
    names = {name.lower() for name in re.findall(r"<\s*/?\s*([a-zA-Z][^\s/>]*)", html)}
    assert names <= TAGS
    for tag in re.findall(r"<[a-zA-Z][^>]*>", html):
        assert not re.search(r"\son[a-z]+\s*=", tag, re.IGNORECASE), tag
    hrefs = {unescape(href) for href in re.findall(r'href="([^"]*)"', html)}
    assert hrefs <= links | {f"mailto:{BRAND.support_email}"}


def assert_subject_is_one_safe_line(subject: str) -> None:
    assert subject and len(subject) <= MAX_SUBJECT
    assert not any(ord(c) < 32 or ord(c) == 127 or c in "\u2028\u2029\x85" for c in subject)


@settings(max_examples=EXAMPLES, derandomize=True, deadline=None)
@given(
    kind=st.sampled_from(list(MailKind)),
    name=non_empty,
    message=st.none() | free_text,
    number=st.none() | free_text.filter(lambda s: len(s) <= 100),
    technician=non_empty,
    link=st.none() | free_text.filter(lambda s: len(s) <= 2000) | st.just('https://cal.example/r/1?a=1&b="2"'),
    by=st.sampled_from(list(CancelledBy)),
)
def test_any_customer_text_renders_and_never_breaks_out_of_the_html(
    kind: MailKind,
    name: str,
    message: str | None,
    number: str | None,
    technician: str,
    link: str | None,
    by: CancelledBy,
) -> None:
    # Given customer, vendor and dispatcher text of any kind in every field a mail shows
    appointment = an_appointment_to_mail(
        customer=Customer(name=name, email="dana@example.com"),
        technicians=(Technician(id="t-1", name=technician, primary=True),),
        ticket=TicketRef(system="autotask", id="1", number=number),
        links=Links(reschedule=link, cancel=link),
    )
    if kind is MailKind.CANCELLED:
        cancellation = Cancellation(at=appointment.updated_at, by=by, reason="x", message=message, coupon=COUPON)
        appointment = appointment.model_copy(update={"status": Status.CANCELLED, "cancellation": cancellation})
    context: dict[str, Any] = {"message": message} if message else {}
    if kind is MailKind.OPS_ALERT:
        context = {"subject": message or "alert", "note": name}

    # When the mail is rendered
    mail = render(a_mail(kind, appointment, **context), appointment, catalog=CATALOG, branding=BRAND)

    # Then the subject is one bounded line, the HTML holds only the templates' markup and the text as typed
    assert_subject_is_one_safe_line(mail.subject)
    offered = {link.strip()} if link and link.strip() else set()
    assert_html_is_ours(mail.html, offered | {BRAND.booking_base_url or ""})
    # A name is one line; in an alert it is a detail, whose lines are kept.
    shown = paragraph_text(name).split("\n")[0] if kind is MailKind.OPS_ALERT else one_line(name, 500)
    assert str(escape(shown)) in mail.html
    assert shown in mail.text
    if mail.ics is not None:
        lines = mail.ics.split("\r\n")
        assert lines[-1] == "" and all(len(line.encode()) <= 75 and "\n" not in line for line in lines)


@settings(max_examples=EXAMPLES, derandomize=True, deadline=None)
@given(subject=st.none() | free_text, detail=st.dictionaries(free_text, context_value, max_size=5))
def test_any_ops_alert_context_renders_generically(subject: str | None, detail: dict[str, Any]) -> None:
    # Given an alert with any subject and any details (future alerts included)
    appointment = an_appointment_to_mail()
    context = {**detail, "subject": subject} if subject is not None else detail

    # When it is rendered
    mail = render(a_mail(MailKind.OPS_ALERT, appointment, **context), appointment, catalog=CATALOG, branding=BRAND)

    # Then every key is listed, in safe HTML, under a one-line subject
    assert_subject_is_one_safe_line(mail.subject)
    assert_html_is_ours(mail.html, set())
    for key in detail:
        if key != "subject":
            assert f">{escape(key)}</dt>" in mail.html
