"""Mail feedback on fakes: SES's bounces, complaints and rejects kept in the appointment's history, ops
alerted in the same change (never about their own alert), each notice once however often SNS delivers it."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from appointments.adapters.clock import ManualClock
from appointments.adapters.ses_feedback import read_ses_notice
from appointments.domain import lifecycle
from appointments.domain.history import Record
from appointments.domain.model import Actor
from appointments.domain.outbox import MailKind, OutboxMail
from appointments.errors import VersionConflict
from appointments.ports import Feedback
from appointments.services.mail_feedback import FeedbackPolicy, MailFeedback, Noted
from tests.factories import CATALOG, NOW, OPS, a_draft
from tests.fakes import ConflictingStore, InMemoryAppointmentStore
from tests.ses_events import MESSAGE_ID, ses_message, ses_record

if TYPE_CHECKING:
    from appointments.domain.history import HistoryEntry

OPS_MAIL = "ops@msp.example"
CUSTOMER = "dana@example.com"


def a_feedback(store: InMemoryAppointmentStore, clock: ManualClock | None = None) -> MailFeedback:
    return MailFeedback(store, clock or ManualClock(NOW), FeedbackPolicy(ops_alert_email=OPS_MAIL), read_ses_notice)


def with_mail(
    store: InMemoryAppointmentStore, kind: MailKind = MailKind.NO_SHOW, to: str = CUSTOMER
) -> tuple[str, str]:
    """An appointment and one mail of ``kind`` it sent; (appointment id, mail key)."""
    change = lifecycle.create(a_draft(), appointment_id="01APPTBOUNCE", catalog=CATALOG, at=NOW, actor=OPS)
    mail = OutboxMail.for_change(kind, change.after, to=(to,), at=NOW, context={"subject": "x"})
    store.commit(change.with_mails(mail))
    return change.after.id, mail.key


def bounces(store: InMemoryAppointmentStore, appointment_id: str) -> list[HistoryEntry]:
    return [entry for entry in store.load(appointment_id).history if entry.action == Record.MAIL_BOUNCED]


def alerts(store: InMemoryAppointmentStore, appointment_id: str) -> list[OutboxMail]:
    return [mail for mail in store.load(appointment_id).mails if mail.kind is MailKind.OPS_ALERT]


def test_a_permanent_bounce_of_the_no_show_mail_is_recorded_and_alerts_ops_in_one_change() -> None:
    # Given a no-show mail SES took
    store = InMemoryAppointmentStore()
    appointment_id, key = with_mail(store)
    commits = store.commits
    # When SES reports it bounced for good
    noted = a_feedback(store).record(ses_message("Bounce", appointment_id=appointment_id, mail_key=key))
    # Then the appointment's history says which mail, why, and whose address, and ops are alerted, in one commit
    assert noted is Noted.ALERTED
    assert store.commits == commits + 1
    [entry] = bounces(store, appointment_id)
    assert entry.actor == Actor.system()
    assert entry.detail == {
        "mail": key,
        "kind": "no_show",
        "reason": "not delivered: the address does not take mail (Permanent/General)",
        "feedback": "bounce",
        "event_type": "Bounce",
        "message_id": MESSAGE_ID,
        "recipient_roles": ["customer"],
        "bounce_type": "Permanent",
        "bounce_subtype": "General",
        "diagnostic": "smtp; 550 5.1.1 user unknown",
        "alerted": True,
    }
    [alert] = alerts(store, appointment_id)
    assert alert.to == (OPS_MAIL,)
    assert alert.key.endswith("#bounce")
    assert alert.context["subject"] == "the no-show mail never reached the customer (bounce)"
    assert alert.context["mail"] == key
    assert alert.context["recipients"] == [CUSTOMER]  # ops read the address; the history (and the bus) never


def test_no_address_reaches_the_history_not_even_in_ses_diagnostic() -> None:
    # Given a bounce whose diagnostic quotes the address, as mail servers often do
    store = InMemoryAppointmentStore()
    appointment_id, key = with_mail(store)
    record = ses_record("Bounce", appointment_id=appointment_id, mail_key=key, to=(CUSTOMER, "old@example.com"))
    record["bounce"]["bouncedRecipients"][0]["diagnosticCode"] = f"smtp; 550 5.1.1 <{CUSTOMER}>: Recipient unknown"
    # When it is recorded
    a_feedback(store).record(json.dumps(record))
    # Then the entry says whose addresses they were, and names none
    [entry] = bounces(store, appointment_id)
    assert entry.detail["recipient_roles"] == ["customer", "other"]
    assert entry.detail["diagnostic"] == "smtp; 550 5.1.1 <<address>>: Recipient unknown"
    assert "@" not in json.dumps(entry.detail)


def test_a_complaint_is_recorded_and_alerts_ops() -> None:
    store = InMemoryAppointmentStore()
    appointment_id, key = with_mail(store, MailKind.REMINDER)

    noted = a_feedback(store).record(ses_message("Complaint", appointment_id=appointment_id, mail_key=key))

    assert noted is Noted.ALERTED
    [entry] = bounces(store, appointment_id)
    assert (entry.detail["feedback"], entry.detail["complaint_type"]) == ("complaint", "abuse")
    assert entry.detail["reason"] == "the recipient reported the mail (abuse)"
    [alert] = alerts(store, appointment_id)
    assert alert.context["subject"] == "the customer reported the reminder mail as spam"


def test_a_rejected_mail_is_recorded_and_alerts_ops() -> None:
    store = InMemoryAppointmentStore()
    appointment_id, key = with_mail(store, MailKind.CONFIRMATION)

    noted = a_feedback(store).record(ses_message("Reject", appointment_id=appointment_id, mail_key=key))

    assert noted is Noted.ALERTED
    [entry] = bounces(store, appointment_id)
    assert (entry.detail["feedback"], entry.detail["recipient_roles"]) == ("reject", ["customer"])
    assert entry.detail["reason"] == "not delivered: the mail service refused it (Bad content)"
    assert len(alerts(store, appointment_id)) == 1


def test_an_undetermined_bounce_alerts_like_a_permanent_one() -> None:
    store = InMemoryAppointmentStore()
    appointment_id, key = with_mail(store)
    notice = ses_message(
        "Bounce", appointment_id=appointment_id, mail_key=key, bounce_type="Undetermined", bounce_subtype="Undetermined"
    )
    assert a_feedback(store).record(notice) is Noted.ALERTED
    assert bounces(store, appointment_id)[0].detail["feedback"] == "bounce"


def test_a_transient_bounce_is_history_only() -> None:
    # Given a mail SES gave up retrying (a full mailbox)
    store = InMemoryAppointmentStore()
    appointment_id, key = with_mail(store)
    notice = ses_message(
        "Bounce", appointment_id=appointment_id, mail_key=key, bounce_type="Transient", bounce_subtype="MailboxFull"
    )
    # When it is reported
    noted = a_feedback(store).record(notice)
    # Then the appointment says the mail did not arrive, and nobody is paged
    assert noted is Noted.RECORDED
    [entry] = bounces(store, appointment_id)
    assert (entry.detail["feedback"], entry.detail["bounce_subtype"], entry.detail["alerted"]) == (
        "soft_bounce",
        "MailboxFull",
        False,
    )
    assert alerts(store, appointment_id) == []


def test_a_notice_delivered_twice_is_recorded_once() -> None:
    # Given a bounce already recorded
    store = InMemoryAppointmentStore()
    appointment_id, key = with_mail(store)
    feedback = a_feedback(store)
    notice = ses_message("Bounce", appointment_id=appointment_id, mail_key=key)
    assert feedback.record(notice) is Noted.ALERTED
    commits = store.commits
    # When SNS delivers it again
    noted = feedback.record(notice)
    # Then nothing more is written: one entry, one alert
    assert noted is Noted.DUPLICATE
    assert store.commits == commits
    assert len(bounces(store, appointment_id)) == 1
    assert len(alerts(store, appointment_id)) == 1


def test_two_copies_at_once_record_once_the_second_finds_the_first_after_its_conflict() -> None:
    # Given the other copy commits between this one's read and its commit
    store = ConflictingStore()
    appointment_id, key = with_mail(store)
    notice = ses_message("Bounce", appointment_id=appointment_id, mail_key=key)
    a_feedback(store).record(notice)
    store.conflicts = 1
    # When this copy commits, conflicts, and reads again
    noted = a_feedback(store).record(notice)
    # Then it finds the entry and writes nothing
    assert noted is Noted.DUPLICATE
    assert len(bounces(store, appointment_id)) == 1


def test_a_conflict_with_another_change_is_retried_on_the_new_version() -> None:
    store = ConflictingStore(conflicts=2)
    appointment_id, key = with_mail(store)

    noted = a_feedback(store).record(ses_message("Bounce", appointment_id=appointment_id, mail_key=key))

    assert noted is Noted.ALERTED
    assert len(bounces(store, appointment_id)) == 1


def test_conflicts_that_never_end_are_raised_so_lambda_retries_the_notice() -> None:
    store = ConflictingStore(conflicts=99)
    appointment_id, key = with_mail(store)

    with pytest.raises(VersionConflict):
        a_feedback(store).record(ses_message("Bounce", appointment_id=appointment_id, mail_key=key))
    assert bounces(store, appointment_id) == []


def test_a_permanent_bounce_after_a_transient_one_of_the_same_mail_is_recorded_too() -> None:
    store = InMemoryAppointmentStore()
    appointment_id, key = with_mail(store)
    feedback = a_feedback(store)
    soft = ses_message("Bounce", appointment_id=appointment_id, mail_key=key, bounce_type="Transient")

    assert feedback.record(soft) is Noted.RECORDED
    assert feedback.record(ses_message("Bounce", appointment_id=appointment_id, mail_key=key)) is Noted.ALERTED

    assert [e.detail["feedback"] for e in bounces(store, appointment_id)] == ["soft_bounce", "bounce"]


def test_a_bounced_ops_alert_is_recorded_but_never_alerts_again() -> None:
    # Given an ops alert SES took, and the ops mailbox bouncing it
    store = InMemoryAppointmentStore()
    appointment_id, key = with_mail(store, MailKind.OPS_ALERT, to=OPS_MAIL)
    notice = ses_message("Bounce", appointment_id=appointment_id, mail_key=key, to=(OPS_MAIL,))
    # When it is reported
    noted = a_feedback(store).record(notice)
    # Then it is in history, and no alert is written (it would go to the same mailbox: a loop)
    assert noted is Noted.RECORDED
    [entry] = bounces(store, appointment_id)
    assert (entry.detail["kind"], entry.detail["recipient_roles"], entry.detail["alerted"]) == (
        "ops_alert",
        ["ops"],
        False,
    )
    assert [m.key for m in alerts(store, appointment_id)] == [key]


def test_a_complaint_about_an_ops_alert_whose_record_is_gone_is_known_by_its_key() -> None:
    store = InMemoryAppointmentStore()
    appointment_id, _ = with_mail(store)
    notice = ses_message("Complaint", appointment_id=appointment_id, mail_key="ops_alert#2026-11-23T15:00:00+00:00#v7")

    assert a_feedback(store).record(notice) is Noted.RECORDED
    assert alerts(store, appointment_id) == []


def test_a_notice_about_an_appointment_that_is_gone_is_ignored() -> None:
    store = InMemoryAppointmentStore()

    noted = a_feedback(store).record(ses_message("Bounce", appointment_id="01MERGEDAWAY", mail_key="no_show#x#v3"))

    assert noted is Noted.IGNORED
    assert store.commits == 0


@pytest.mark.parametrize(
    "notice",
    [
        pytest.param(ses_message("Bounce", appointment_id=None, mail_key=None), id="no tags: not our mail"),
        pytest.param(ses_message("DeliveryDelay", appointment_id="01APPTBOUNCE", mail_key="k"), id="a delay"),
        pytest.param(ses_message("Delivery", appointment_id="01APPTBOUNCE", mail_key="k"), id="a delivery"),
        pytest.param("not json at all", id="not JSON"),
        pytest.param(json.dumps({"notificationType": "Bounce", "bounce": {}}), id="an identity notification"),
        pytest.param(json.dumps({"eventType": "Bounce", "mail": {"tags": {}}}), id="no message id"),
    ],
)
def test_a_notice_the_product_does_not_act_on_is_ignored(notice: str) -> None:
    store = InMemoryAppointmentStore()
    with_mail(store)
    commits = store.commits

    assert a_feedback(store).record(notice) is Noted.IGNORED
    assert store.commits == commits


def test_garbled_tags_are_ignored_not_raised() -> None:
    store = InMemoryAppointmentStore()
    appointment_id, key = with_mail(store)
    record = ses_record("Bounce", appointment_id=appointment_id, mail_key=key)
    record["mail"]["tags"]["mail_key"] = ["no_show_zz"]  # "_zz" is no byte

    assert a_feedback(store).record(json.dumps(record)) is Noted.IGNORED


def test_the_logs_never_carry_the_customers_address(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = InMemoryAppointmentStore()
    appointment_id, key = with_mail(store)
    caplog.set_level(logging.DEBUG)
    # The package's lines go to the Powertools handler, not up to the root where caplog listens.
    monkeypatch.setattr(logging.getLogger("appointments"), "propagate", True)

    a_feedback(store).record(ses_message("Bounce", appointment_id=appointment_id, mail_key=key))
    a_feedback(store).record(ses_message("Bounce", appointment_id=None, mail_key=None))
    a_feedback(store).record(json.dumps({"eventType": 1, "mail": {"destination": CUSTOMER}}))

    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "mail feedback recorded" in logged
    assert CUSTOMER not in logged


def test_the_history_entry_is_stamped_with_the_clock() -> None:
    store = InMemoryAppointmentStore()
    appointment_id, key = with_mail(store)
    clock = ManualClock(NOW + timedelta(hours=7))

    a_feedback(store, clock).record(ses_message("Bounce", appointment_id=appointment_id, mail_key=key))

    assert bounces(store, appointment_id)[0].at == NOW + timedelta(hours=7)


def test_the_reader_takes_the_tags_as_the_mailer_wrote_them() -> None:
    # A mail key holds characters SES tags may not: the mailer encodes them, the reader decodes them
    key = "no_show#2026-11-23T15:00:00+00:00#v4"
    notice = read_ses_notice(ses_message("Bounce", appointment_id="01APPT", mail_key=key))

    assert notice is not None
    assert (notice.feedback, notice.appointment_id, notice.mail_key, notice.message_id) == (
        Feedback.BOUNCE,
        "01APPT",
        key,
        MESSAGE_ID,
    )
    assert (notice.event_type, notice.cause, notice.recipients) == ("Bounce", "Permanent/General", (CUSTOMER,))
