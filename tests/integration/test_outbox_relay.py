"""The outbox relay's real handler (``OutboxRelayFunction``, loaded from template.yaml) under moto.

Every mail a customer or ops can receive is produced the way production produces it: an ops API call or
a ``scheduled_checks`` run commits a change, the table's stream hands the new items to the relay, and the
relay sends the mail through SES v2 (raw MIME) and publishes the history entries on the event bus. What
SES recorded is then read back and parsed as a mail client would.

The stream: moto 5.2.5's DynamoDB Streams API answers 404 under ``mock_aws``, so ``TableStream`` does
what Lambda's event source mapping does from the table itself: each mail or history item written since
the last delivery becomes an ``INSERT`` record with the item as its ``NewImage``, shaped by the local
runner's own ``lambda_record`` and filtered by the template's ``FilterCriteria``.

Time passes only by moving the stack's ManualClock; nothing sleeps.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import boto3
import pytest
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from appointments import wiring
from appointments.adapters import aws
from localdev.resources import REGION
from localdev.streams import compile_filters, lambda_record
from tests.integration.conftest import TABLE, CallCounter
from tests.integration.stack import Stack, stack_under_moto

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)  # Friday 10:00 AM in New York
START = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)  # Monday 1:00 PM EST (New York is on UTC-5 in November)
WHEN = "Monday 23 November 2026, 1:00 PM EST"
SLOT = "1:00 PM - 1:30 PM EST (America/New York time)"

CUSTOMER = "dana@example.com"
OPS_MAIL = "ops@msp.example"
SENDER = "desk@msp.example"
HOSTILE_NAME = "<script>alert(1)</script>"
ESCAPED_NAME = "&lt;script&gt;alert(1)&lt;/script&gt;"
INSTRUCTIONS = (
    "Please call our support line at the start of your appointment. Have your computer switched on and logged in."
)
RESCHEDULE_LINK = "https://book.example.com/reschedule/ab12"
CANCEL_LINK = "https://book.example.com/cancel/ab12"
BOOKING_BASE = "https://northwind.example/book"
BRANDING = {
    "CompanyName": "Northwind IT",
    "SupportEmail": "help@northwind.example",
    "SupportPhone": "+1 212 555 0199",
    "MailSignature": "Dana and the Northwind desk",
    "BookingBaseUrl": BOOKING_BASE,
}
# Text only the desk may read: an internal note, a contact attempt's note, a cancellation's reason.
INTERNAL = "INTERNAL-7f3c9a"


# -- the stack's stream, mailbox and bus, as the relay sees them --------------------------------------


class TableStream:
    """Lambda's event source mapping from the table's stream to the relay, read off the table itself.

    Each mail or history item is written once (its key is never reused), so "an item not delivered
    before" is exactly an ``INSERT`` record of the stream.
    """

    def __init__(self, stack: Stack) -> None:
        [subscription] = stack.specs["OutboxRelayFunction"].streams
        self._matches = compile_filters(subscription.filters)
        self._client = boto3.client("dynamodb", region_name=REGION)
        self._arn = self._client.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
        self._clock = stack.clock
        self._seen: set[tuple[str, str]] = set()
        self._sequence = 0

    def new_records(self) -> list[dict[str, Any]]:
        """The records written since the last call, as Lambda delivers them, filtered as the template says."""
        items: list[dict[str, Any]] = []
        for page in self._client.get_paginator("scan").paginate(TableName=TABLE):
            items += page["Items"]
        fresh = sorted(
            (item for item in items if (item["PK"]["S"], item["SK"]["S"]) not in self._seen),
            key=lambda item: (item["PK"]["S"], item["SK"]["S"]),  # history (H#...) before mails (MAIL#...)
        )
        records = []
        for item in fresh:
            self._seen.add((item["PK"]["S"], item["SK"]["S"]))
            self._sequence += 1
            raw = {
                "eventID": uuid.uuid4().hex,
                "eventName": "INSERT",
                "awsRegion": REGION,
                "dynamodb": {
                    "Keys": {"PK": item["PK"], "SK": item["SK"]},
                    "NewImage": item,
                    "SequenceNumber": f"{self._sequence:021d}",
                    "SizeBytes": len(json.dumps(item)),
                    "StreamViewType": "NEW_IMAGE",
                },
            }
            records.append(lambda_record(raw, self._arn, read_at=self._clock.now()))
        return [record for record in records if self._matches(record)]


@dataclass(frozen=True)
class Mail:
    """One message SES took, parsed from its raw MIME as a mail client reads it."""

    to: tuple[str, ...]  # every address SES was asked to deliver to (moto adds the headers' recipients)
    sender: str
    subject: str
    header_names: tuple[str, ...]
    text: str
    html: str
    ics: str | None  # unfolded
    ics_method: str | None  # the text/calendar part's method parameter

    @property
    def everything(self) -> str:
        return "\n".join((self.subject, self.text, self.html, self.ics or ""))


def parse(raw: str, destinations: list[str]) -> Mail:
    message = message_from_bytes(raw.encode(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    assert text_part is not None and html_part is not None, "every mail has a text and an HTML alternative"
    calendars = [part for part in message.iter_attachments() if part.get_content_type() == "text/calendar"]
    ics = calendars[0] if calendars else None
    return Mail(
        to=tuple(dict.fromkeys(destinations)),
        sender=str(message["From"]),
        # A subject too long for one 78-character line is folded right after "Subject:"; Python's parser
        # keeps the folding space that mail clients drop.
        subject=str(message["Subject"]).lstrip(" "),
        header_names=tuple(message.keys()),
        text=text_part.get_content(),
        html=html_part.get_content(),
        ics=ics.get_content().replace("\r\n ", "") if ics is not None else None,
        ics_method=str(ics.get_param("method")) if ics is not None else None,
    )


class Mailbox:
    """What SES took, oldest first; ``new()`` is what it took since the last look."""

    def __init__(self) -> None:
        self._seen = 0

    @staticmethod
    def all() -> list[Mail]:
        sent = ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages
        return [parse(message.raw_data, list(message.destinations)) for message in sent]

    def new(self) -> list[Mail]:
        mails = self.all()
        fresh, self._seen = mails[self._seen :], len(mails)
        return fresh


class Bus:
    """Every event put on the stack's bus, through a rule with an SQS target (as a subscriber would see them)."""

    def __init__(self) -> None:
        self._sqs = boto3.client("sqs", region_name=REGION)
        events = boto3.client("events", region_name=REGION)
        bus = os.environ["EVENT_BUS_NAME"]
        self._url = self._sqs.create_queue(QueueName="every-appointment-event")["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=self._url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(
            Name="every-appointment-event", EventBusName=bus, EventPattern='{"source": ["appointment-desk"]}'
        )
        events.put_targets(Rule="every-appointment-event", EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])

    def received(self) -> list[dict[str, Any]]:
        """The events delivered since the last call."""
        events: list[dict[str, Any]] = []
        while messages := self._sqs.receive_message(QueueUrl=self._url, MaxNumberOfMessages=10).get("Messages", []):
            events += [json.loads(message["Body"]) for message in messages]
            self._sqs.delete_message_batch(
                QueueUrl=self._url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
            )
        return events


@dataclass
class Desk:
    stack: Stack
    stream: TableStream
    mailbox: Mailbox
    bus: Bus

    def relay(self, records: list[dict[str, Any]]) -> None:
        """One invocation of the relay, as the event source mapping makes it; no record may fail."""
        response = self.stack.invoke("OutboxRelayFunction", {"Records": records})
        assert response == {"batchItemFailures": []}

    def deliver(self) -> list[Mail]:
        """The stream hands what was just committed to the relay; the mails SES took since the last look."""
        records = self.stream.new_records()
        if records:
            self.relay(records)
        return self.mailbox.new()

    def ops(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        reply = self.stack.ops(method, path, body)
        assert reply.status in (200, 201), reply.body
        answer: dict[str, Any] = reply.body
        return answer

    def act(self, path: str, body: Any = None) -> list[Mail]:
        """An ops action, then its stream records; the mails it sent."""
        self.ops("POST", path, body)
        return self.deliver()

    def sweep_at(self, at: datetime) -> list[Mail]:
        """The clock moves to ``at``, ``scheduled_checks`` runs, then the stream; the mails that went out."""
        self.stack.clock.set(at)
        summary = self.stack.run_schedule()
        assert summary["failed"] == 0, summary
        return self.deliver()

    def book(self, *, technicians: list[dict[str, str]] | None = None, **changes: Any) -> str:
        """An ops booking, then an internal note on it; the stream is not read yet (``deliver`` does)."""
        body: dict[str, Any] = {
            "start": START.isoformat(),
            "end": (START + timedelta(minutes=30)).isoformat(),
            "timezone": "America/New_York",
            "type": "remote_call_in",
            "customer": {"name": HOSTILE_NAME, "email": CUSTOMER},
            "technicians": [{"id": "t-17", "name": "Sam Okafor"}] if technicians is None else technicians,
            "links": {"reschedule": RESCHEDULE_LINK, "cancel": CANCEL_LINK},
        }
        appointment_id: str = self.ops("POST", "/appointments", body | changes)["id"]
        # The note lands before the stream is read: the confirmation is rendered with it on the appointment.
        self.ops("POST", f"/appointments/{appointment_id}/notes", {"text": f"{INTERNAL}: gate code 4471, rude"})
        return appointment_id


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with stack_under_moto(monkeypatch, NOW, **BRANDING) as built:
        yield built


@pytest.fixture
def desk(stack: Stack) -> Desk:
    return Desk(stack=stack, stream=TableStream(stack), mailbox=Mailbox(), bus=Bus())


@pytest.fixture
def booked(desk: Desk) -> str:
    """An assigned call-in appointment for Monday 1:00 PM EST, its confirmation already sent."""
    appointment_id = desk.book()
    [confirmation] = desk.deliver()
    assert confirmation.subject == f"Appointment confirmed: {WHEN}"
    return appointment_id


def assert_customer_mail(
    mail: Mail,
    subject: str,
    *,
    slot: str = SLOT,
    says: tuple[str, ...] = (),
    links: tuple[str, ...] = (),
    instructions: bool = True,
) -> None:
    """To the customer alone, from the desk: the subject; the time in the customer's zone with its
    abbreviation; what it ``says``; the links (text and HTML); the type's instructions where the kind shows
    them; the branding; never the desk's internal text; the customer's name escaped in the HTML."""
    assert mail.to == (CUSTOMER,)
    assert mail.sender == SENDER
    assert mail.subject == subject
    assert_one_line_headers(mail)
    for expected in (slot, *says, *links):
        assert expected in mail.text, f"{expected!r} is not in the text part:\n{mail.text}"
    for link in links:
        assert f'href="{link}"' in mail.html
    assert (INSTRUCTIONS in mail.text, INSTRUCTIONS in mail.html) == (instructions, instructions)
    assert f"Hello {HOSTILE_NAME}," in mail.text  # plain text stays as typed
    assert f"Hello {ESCAPED_NAME}," in mail.html
    assert "<script>" not in mail.html
    assert INTERNAL not in mail.everything
    assert "Dana and the Northwind desk\nNorthwind IT\nhelp@northwind.example / +1 212 555 0199" in mail.text


def assert_one_line_headers(mail: Mail) -> None:
    """One line of subject and no header but the message's own: customer text never makes a header."""
    assert "\n" not in mail.subject and "\r" not in mail.subject
    assert {name.lower() for name in mail.header_names} == {
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
    }


def assert_invitation(mail: Mail, method: str, *, start: datetime = START) -> list[str]:
    assert mail.ics is not None and mail.ics_method == method
    lines = mail.ics.split("\r\n")
    assert f"METHOD:{method}" in lines
    assert f"DTSTART:{start.strftime('%Y%m%dT%H%M%SZ')}" in lines
    assert f"STATUS:{'CANCELLED' if method == 'CANCEL' else 'CONFIRMED'}" in lines
    assert 'ORGANIZER;CN="Northwind IT":mailto:help@northwind.example' in lines
    return lines


def coupon_code(desk: Desk, appointment_id: str) -> str:
    code: str = desk.ops("GET", f"/appointments/{appointment_id}")["cancellation"]["coupon"]["code"]
    return code


# -- each mail an ops action sends ------------------------------------------------------------------


def test_an_ops_booking_is_confirmed_in_the_customers_zone_with_instructions_links_and_an_invitation(
    desk: Desk,
) -> None:
    # Given a dispatcher's booking for Monday 18:00 UTC, with an internal note added before the relay ran
    desk.book()
    # When the table's stream hands its new items to the relay
    [confirmation] = desk.deliver()
    # Then the customer has one confirmation in New York time (EST in November), with the type's
    # instructions, the appointment's own links and a calendar invitation; the note is in no part of it
    assert_customer_mail(
        confirmation,
        f"Appointment confirmed: {WHEN}",
        says=(f"Your appointment on {WHEN} is confirmed.", "Sam Okafor will be your technician."),
        links=(RESCHEDULE_LINK, CANCEL_LINK),
    )
    assert_invitation(confirmation, "REQUEST")


def test_a_reschedule_mails_the_new_time_the_dispatchers_message_escaped_and_an_updated_invitation(
    desk: Desk, booked: str
) -> None:
    # Given a confirmed appointment; When a dispatcher moves it to Tuesday 15:00 UTC with a message
    moved = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    message = "Bring your <b>laptop</b>"
    [mail] = desk.act(f"/appointments/{booked}/reschedule", {"start": moved.isoformat(), "message": message})
    # Then the customer reads the new time (10:00 AM EST), the message (escaped in HTML), and the same
    # calendar event moved (same UID, higher SEQUENCE)
    new_when = "Tuesday 24 November 2026, 10:00 AM EST"
    assert_customer_mail(
        mail,
        f"Your appointment has moved to {new_when}",
        slot="10:00 AM - 10:30 AM EST (America/New York time)",
        says=(f"Your appointment has moved to {new_when}.", message),
        links=(RESCHEDULE_LINK, CANCEL_LINK),
    )
    assert "Bring your &lt;b&gt;laptop&lt;/b&gt;" in mail.html
    lines = assert_invitation(mail, "REQUEST", start=moved)
    assert f"UID:{booked}@northwind.example" in lines
    assert "SEQUENCE:3" in lines  # booked (1), the note (2), moved (3)


def test_a_reschedule_request_asks_the_customer_to_choose_a_time(desk: Desk, booked: str) -> None:
    [mail] = desk.act(f"/appointments/{booked}/request-reschedule", {})
    assert_customer_mail(
        mail,
        "Please choose a new time for your appointment",
        says=(f"We need to move your appointment on {WHEN}.", f"Choose a new time: {RESCHEDULE_LINK}"),
        links=(RESCHEDULE_LINK, CANCEL_LINK),
        instructions=False,
    )
    assert mail.ics is None


def test_a_reassignment_names_the_new_technician(desk: Desk, booked: str) -> None:
    [mail] = desk.act(f"/appointments/{booked}/reassign", {"technicians": [{"id": "t-23", "name": "Alex Kim"}]})
    assert_customer_mail(
        mail,
        f"New technician for your appointment on {WHEN}: Alex Kim",
        says=(f"Alex Kim will now take care of your appointment on {WHEN}.", "Technician:  Alex Kim"),
        links=(RESCHEDULE_LINK, CANCEL_LINK),
    )
    assert mail.ics is None


def test_a_cancellation_offers_the_coupon_never_the_reason_and_removes_the_calendar_event(
    desk: Desk, booked: str
) -> None:
    # Given a confirmed appointment; When a dispatcher cancels it, giving an internal reason
    [mail] = desk.act(f"/appointments/{booked}/cancel", {"reason": f"{INTERNAL}: customer fixed it"})
    # Then the customer gets the coupon the cancellation recorded, the booking link, and a CANCEL
    code = coupon_code(desk, booked)
    assert_customer_mail(
        mail,
        f"Appointment cancelled: {WHEN}",
        says=(
            f"We are sorry: we have had to cancel your appointment on {WHEN}.",
            "As an apology, here is 15% off your next appointment.",
            f"    {code}\n",
            "Valid until Wednesday 19 May 2027.",  # 180 days, as a date in the customer's zone
            f"Book a new appointment: {BOOKING_BASE}",
        ),
        instructions=False,
    )
    assert code in mail.html
    assert_invitation(mail, "CANCEL")


def test_a_voicemail_sends_the_contact_attempt_with_the_link_but_not_the_callers_note(desk: Desk, booked: str) -> None:
    [mail] = desk.act(
        f"/appointments/{booked}/contact-attempts", {"outcome": "voicemail", "note": f"{INTERNAL}: spoke to reception"}
    )
    assert_customer_mail(
        mail,
        "We tried to reach you about your appointment",
        says=(
            f"We tried to call you about your appointment on {WHEN}, but could not reach you (we left a voicemail).",
        ),
        links=(RESCHEDULE_LINK, CANCEL_LINK),
        instructions=False,
    )
    assert mail.ics is None


def test_a_deferral_mails_the_time_four_weeks_later_with_an_invitation(desk: Desk, booked: str) -> None:
    [mail] = desk.act(f"/appointments/{booked}/defer", {})
    later = START + timedelta(weeks=4)
    assert_customer_mail(
        mail,
        "Your appointment has moved to Monday 21 December 2026, 1:00 PM EST",
        says=("Your appointment has moved to Monday 21 December 2026, 1:00 PM EST.",),
        links=(RESCHEDULE_LINK, CANCEL_LINK),
    )
    assert_invitation(mail, "REQUEST", start=later)


# -- each mail the timed rules send ---------------------------------------------------------------


def test_an_assigned_call_in_gets_its_reminder_the_day_before_and_the_no_show_mail_ten_minutes_after(
    desk: Desk, booked: str
) -> None:
    # When the clock reaches S - 24 h and scheduled_checks runs (the sweep sends the due mail itself; the
    # stream then hands the relay the same mail, which it finds sent)
    [reminder] = desk.sweep_at(START - timedelta(hours=24))
    # Then the reminder
    assert_customer_mail(
        reminder,
        f"Reminder: your appointment on {WHEN}",
        says=(f"This is a reminder of your appointment on {WHEN}.", "Technician:  Sam Okafor"),
        links=(RESCHEDULE_LINK, CANCEL_LINK),
    )
    assert reminder.ics is None
    # When nobody called in by S + 10 min
    [no_show] = desk.sweep_at(START + timedelta(minutes=10))
    # Then the "we missed you" mail, offering a new time and no cancel link
    assert_customer_mail(
        no_show,
        f"We missed you: your appointment on {WHEN}",
        says=(f"You missed your appointment on {WHEN}", f"Choose a new time: {RESCHEDULE_LINK}"),
        instructions=False,
    )
    assert CANCEL_LINK not in no_show.text
    assert desk.ops("GET", f"/appointments/{booked}")["status"] == "no_show"


def test_an_unassigned_booking_gets_its_pre_notice_then_is_cancelled_by_the_system_with_a_coupon(
    desk: Desk,
) -> None:
    # Given a booking nobody is assigned to
    appointment_id = desk.book(technicians=[])
    [confirmation] = desk.deliver()
    assert "We will let you know who your technician is before the appointment." in confirmation.text
    [reminder] = desk.sweep_at(START - timedelta(hours=24))
    assert reminder.subject == f"Reminder: your appointment on {WHEN}"
    # When the clock reaches S - 3 h
    [pre_notice] = desk.sweep_at(START - timedelta(hours=3))
    # Then the customer is told we are still assigning a technician
    assert_customer_mail(
        pre_notice,
        f"We are still assigning a technician for {WHEN}",
        says=(f"Your appointment is on {WHEN}. We are still assigning a technician to it",),
        links=(RESCHEDULE_LINK, CANCEL_LINK),
    )
    # When the clock reaches S - 1 h with nobody assigned
    mails = desk.sweep_at(START - timedelta(hours=1))
    # Then the system cancels it: the customer's mail carries the apology, the coupon and a CANCEL;
    # ops are alerted, the customer's name escaped in their HTML too
    [cancelled] = [mail for mail in mails if mail.to == (CUSTOMER,)]
    [alert] = [mail for mail in mails if mail.to == (OPS_MAIL,)]
    code = coupon_code(desk, appointment_id)
    assert_customer_mail(
        cancelled,
        f"Appointment cancelled: {WHEN}",
        says=(
            f"we could not assign a technician to your appointment on {WHEN} in time",
            "As an apology, here is 15% off your next appointment.",
            f"    {code}\n",
        ),
        instructions=False,
    )
    assert_invitation(cancelled, "CANCEL")
    assert alert.subject == f"[Northwind IT] auto-cancelled: no technician: {HOSTILE_NAME}, {WHEN}"
    assert ESCAPED_NAME in alert.html and "<script>" not in alert.html
    assert_one_line_headers(alert)


# -- what customer text can never do --------------------------------------------------------------


def test_line_breaks_in_customer_text_never_reach_a_header_nor_add_a_recipient(desk: Desk) -> None:
    # Given a booking whose customer name, ticket number and (later) technician name carry a header
    # injection, and whose reschedule link is a script
    injection = "\r\nBcc: evil@x.example"
    appointment_id = desk.book(
        technicians=[],
        customer={"name": f"Dana Reyes{injection}", "email": CUSTOMER},
        ticket={"system": "autotask", "id": "48213", "number": f"T-1042{injection}"},
        links={"reschedule": "javascript:alert(1)"},
    )
    # When it is confirmed, assigned, unassigned and auto-cancelled (ops alerted, the name in the subject)
    mails = desk.deliver()
    mails += desk.act(
        f"/appointments/{appointment_id}/reassign", {"technicians": [{"id": "t-9", "name": f"Alex Kim{injection}"}]}
    )
    mails += desk.act(f"/appointments/{appointment_id}/reassign", {"technicians": []})
    mails += desk.sweep_at(START - timedelta(hours=1))
    # Then every subject is one line with the text flattened, no mail has a header of the text's making,
    # SES was asked to deliver each to its one recipient, and the script link became the booking page
    flat = " Bcc: evil@x.example"
    assert [mail.subject for mail in mails] == [
        f"Appointment confirmed: {WHEN} (ticket T-1042{flat})",
        f"New technician for your appointment on {WHEN}: Alex Kim{flat} (ticket T-1042{flat})",
        f"Technician update for your appointment on {WHEN} (ticket T-1042{flat})",
        f"Appointment cancelled: {WHEN} (ticket T-1042{flat})",
        f"[Northwind IT] auto-cancelled: no technician: Dana Reyes{flat}, {WHEN}",
    ]
    for mail in mails:
        assert_one_line_headers(mail)
        assert mail.to in ((CUSTOMER,), (OPS_MAIL,))
        assert "javascript:" not in mail.everything
    assert f"Reschedule: {BOOKING_BASE}" in mails[0].text


# -- once, whatever the stream replays; and what each costs ---------------------------------------


def test_a_record_the_stream_delivers_twice_sends_one_mail_and_publishes_one_event(desk: Desk) -> None:
    # Given a booking (with an internal note): two history entries and one mail, as the stream carries them
    appointment_id = desk.book()
    records = desk.stream.new_records()
    assert sorted(r["dynamodb"]["NewImage"]["kind"]["S"] for r in records) == ["history", "history", "mail"]
    # When the relay gets every record twice in one batch, and the whole batch again (a retried batch)
    desk.relay(records + records)
    desk.relay(records)
    # Then one mail went out and one event per history entry reached the bus's subscriber
    assert [mail.subject for mail in desk.mailbox.new()] == [f"Appointment confirmed: {WHEN}"]
    events = desk.bus.received()
    assert [event["detail-type"] for event in events] == ["appointment.create", "appointment.note"]
    ids = [event["detail"]["event_id"] for event in events]
    assert ids == [f"{appointment_id}/H#0000000001#000", f"{appointment_id}/H#0000000002#000"]
    assert {event["source"] for event in events} == {"appointment-desk"}
    assert [event["time"] for event in events] == ["2026-11-20T15:00:00Z", "2026-11-20T15:00:00Z"]
    # And no event carries the customer's contact details or the note's text
    for event in events:
        assert event["detail"]["appointment"]["id"] == appointment_id
        text = json.dumps(event)
        assert CUSTOMER not in text and "alert(1)" not in text and INTERNAL not in text


def counted(factory: Callable[[], Any], counter: CallCounter) -> Callable[[], Any]:
    def make() -> Any:
        client = factory()
        client.meta.events.register("before-call.*.*", counter)
        return client

    return make


@pytest.fixture
def relay_calls(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> CallCounter:
    """Every AWS call the handlers make from now on, through the client factories the wiring uses."""
    counter = CallCounter()
    for name in ("dynamodb_client", "sesv2_client", "events_client"):
        monkeypatch.setattr(aws, name, counted(getattr(aws, name), counter))
    wiring.use_clock(desk.stack.clock)  # forget the built clients: the next ones are counted
    return counter


def test_each_mail_and_each_event_costs_a_fixed_number_of_aws_calls(desk: Desk, relay_calls: CallCounter) -> None:
    # Given a booking's stream records: its confirmation and its create entry
    desk.book(customer={"name": "Dana Reyes", "email": CUSTOMER})
    records = desk.stream.new_records()
    [mail] = [r for r in records if r["dynamodb"]["NewImage"]["kind"]["S"] == "mail"]
    create, _note = [r for r in records if r["dynamodb"]["NewImage"]["kind"]["S"] == "history"]

    def cost(record: dict[str, Any]) -> dict[str, int]:
        relay_calls.reset()
        desk.relay([record])
        return dict(relay_calls.calls)

    # Then a mail costs its claim, one read of the appointment, the send and the sent mark
    assert cost(mail) == {"UpdateItem": 2, "GetItem": 1, "SendEmail": 1}
    # And an event its claim, one PutEvents and the published mark once the bus took it
    assert cost(create) == {"UpdateItem": 2, "PutEvents": 1}
    # And a redelivered record only the conditional write that finds it done
    assert cost(mail) == {"UpdateItem": 1}
    assert cost(create) == {"UpdateItem": 1}
    assert len(desk.mailbox.new()) == 1


def test_a_timed_mail_is_left_to_the_relay_which_sends_it_from_its_stream_record(
    desk: Desk, relay_calls: CallCounter
) -> None:
    # Given a confirmed booking; When scheduled_checks runs at its reminder time
    desk.book(customer={"name": "Dana Reyes", "email": CUSTOMER})
    desk.deliver()
    desk.stack.clock.set(START - timedelta(hours=24))
    relay_calls.reset()
    desk.stack.run_schedule()
    # Then the sweep read each shard of the due index (4 for appointments, 4 for mails, and the unmatched
    # alerts' one) and applied the reminder in one transaction; it sends no mail younger than a minute
    assert dict(relay_calls.calls) == {"Query": 9, "GetItem": 1, "TransactWriteItems": 1}
    assert desk.mailbox.new() == []
    # And when the stream hands the relay the reminder's items, the mail is claimed, read, sent and marked,
    # and the history entry published
    records = {r["dynamodb"]["NewImage"]["kind"]["S"]: r for r in desk.stream.new_records()}
    assert sorted(records) == ["history", "mail"]
    relay_calls.reset()
    desk.relay([records["mail"]])
    assert dict(relay_calls.calls) == {"UpdateItem": 2, "GetItem": 1, "SendEmail": 1}
    relay_calls.reset()
    desk.relay([records["history"]])
    assert dict(relay_calls.calls) == {"UpdateItem": 2, "PutEvents": 1}
    assert [mail.subject for mail in desk.mailbox.new()] == [f"Reminder: your appointment on {WHEN}"]
