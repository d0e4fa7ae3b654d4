"""The Autotask source: its signature (with Autotask's escaping quirk), and ticket changes turned into events."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from appointments.domain.events import EventKind
from appointments.domain.model import Technician, TicketRef
from appointments.errors import ConfigError, InvalidSignature, MalformedPayload, UnsupportedPayload
from appointments.sources.autotask import AutotaskSource, autotask_escaped
from appointments.sources.base import SubscriptionEnded, WebhookRequest
from tests.signing import one_byte_changed, sample

if TYPE_CHECKING:
    from collections.abc import Callable

    from appointments.domain.events import CanonicalEvent

SECRET = "autotask-webhook-secret-for-tests"
NOW = datetime(2026, 11, 23, 16, 42, 8, tzinfo=UTC)
SOURCE = AutotaskSource()
NO_SHOW_STATUS = "23"  # the custom status the no-show sample moves its ticket to
WITH_NO_SHOW = AutotaskSource(no_show_status_id=NO_SHOW_STATUS)
WEBHOOK_GUID = "a1da62a4-2c49-40a8-8183-69994ce5b3eb"
SAMPLES = [
    "ticket_completed",
    "ticket_no_show",
    "ticket_assigned",
    "ticket_unassigned",
    "ticket_deactivated",
    "ticket_assigned_escaped",
]
# The title in ticket_assigned_escaped.json as sent, and as Autotask escapes it before signing.
RAW_TITLE = '"Zoë\'s \\"Café Müller\\" laptop: VPN <down> & Outlook + `mstsc` 🔧"'
ESCAPED_TITLE = (
    r'"Zo\u00EB\u0027s \u0022Caf\u00E9 M\u00FCller\u0022 laptop: VPN \u003Cdown\u003E \u0026 Outlook '
    r'\u002B \u0060mstsc\u0060 \uD83D\uDD27"'
)


def signature(body: bytes, secret: str = SECRET) -> str:
    # Computed here rather than with the module's helper, so a wrong scheme cannot agree with itself.
    return "sha1=" + base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha1).digest()).decode()


def signed(body: bytes, *, secret: str = SECRET) -> WebhookRequest:
    return WebhookRequest(headers={"x-hook-signature": signature(body, secret)}, body=body)


def parse_sample(name: str, source: AutotaskSource = SOURCE) -> tuple[CanonicalEvent, ...]:
    request = signed(sample(f"autotask/{name}.json"))
    source.verify(request, SECRET, NOW)
    return source.parse(request)


def changed(name: str, *, drop: str | None = None, fields: dict[str, Any] | None = None, **envelope: Any) -> bytes:
    """A sample with envelope keys replaced (or one dropped) and, with ``fields``, its Fields replaced."""
    document = json.loads(sample(f"autotask/{name}.json"))
    if drop:
        del document[drop]
    document.update(envelope)
    if fields is not None:
        document["Fields"] = fields
    return json.dumps(document).encode()


def parse_body(body: bytes, source: AutotaskSource = SOURCE) -> tuple[CanonicalEvent, ...]:
    return source.parse(signed(body))


# --- signature


@pytest.mark.parametrize("name", SAMPLES)
def test_every_sample_signed_over_its_raw_bytes_verifies(name: str) -> None:
    SOURCE.verify(signed(sample(f"autotask/{name}.json")), SECRET, NOW)


@pytest.mark.parametrize(
    "request_of",
    [
        pytest.param(lambda body: signed(body, secret="another secret"), id="wrong-secret"),
        pytest.param(lambda body: WebhookRequest(headers={}, body=body), id="missing-header"),
        pytest.param(
            lambda body: WebhookRequest(headers={"x-hook-signature": signature(body).removeprefix("sha1=")}, body=body),
            id="missing-sha1-prefix",
        ),
        pytest.param(
            lambda body: WebhookRequest(headers={"x-hook-signature": "sha1="}, body=body), id="empty-signature"
        ),
        pytest.param(
            lambda body: WebhookRequest(headers=signed(body).headers, body=one_byte_changed(body)), id="tampered"
        ),
        pytest.param(
            lambda body: WebhookRequest(
                headers={"x-hook-signature": "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()},
                body=body,
            ),
            id="hex-instead-of-base64",
        ),
    ],
)
def test_a_bad_signature_is_refused(request_of: Callable[[bytes], WebhookRequest]) -> None:
    body = sample("autotask/ticket_completed.json")
    with pytest.raises(InvalidSignature) as raised:
        SOURCE.verify(request_of(body), SECRET, NOW)
    assert raised.value.http_status == 401


def test_an_empty_secret_never_verifies() -> None:
    # Given a body signed with an empty key: a secret left unset must not make every request valid
    body = sample("autotask/ticket_completed.json")
    with pytest.raises(InvalidSignature):
        SOURCE.verify(signed(body, secret=""), "", NOW)


def test_a_body_signed_in_autotasks_escaped_form_verifies_through_the_fallback() -> None:
    # Given the body as sent, but signed the way Autotask hashes it: specials and non-ASCII text as \uXXXX
    raw = sample("autotask/ticket_assigned_escaped.json").decode()
    assert RAW_TITLE in raw
    escaped_form = raw.replace(RAW_TITLE, ESCAPED_TITLE).encode()
    request = WebhookRequest(headers={"x-hook-signature": signature(escaped_form)}, body=raw.encode())

    # When / Then: it verifies, and parses as the body sent
    SOURCE.verify(request, SECRET, NOW)
    [event] = SOURCE.parse(request)
    assert event.technicians == (Technician(id="29682899", name="Autotask resource 29682899"),)


def test_the_escaped_form_of_a_tampered_body_does_not_verify() -> None:
    raw = sample("autotask/ticket_assigned_escaped.json").decode()
    signed_escaped = signature(raw.replace(RAW_TITLE, ESCAPED_TITLE).encode())
    tampered = raw.replace("29682899", "29682898").encode()
    with pytest.raises(InvalidSignature):
        SOURCE.verify(WebhookRequest(headers={"x-hook-signature": signed_escaped}, body=tampered), SECRET, NOW)


@pytest.mark.parametrize(
    ("sent", "hashed"),
    [
        pytest.param('{"a":"x & y"}', r'{"a":"x \u0026 y"}', id="ampersand"),
        pytest.param('{"a":"<\'>`+"}', r'{"a":"\u003C\u0027\u003E\u0060\u002B"}', id="specials"),
        pytest.param(r'{"a":"say \"hi\""}', r'{"a":"say \u0022hi\u0022"}', id="escaped-quote"),
        pytest.param(r'{"a":"C:\\temp\n"}', r'{"a":"C:\\temp\n"}', id="other-escapes-kept"),
        pytest.param(r'{"a":"\u00e9"}', r'{"a":"\u00e9"}', id="existing-escape-kept"),
        pytest.param('{"é":"ü€"}', r'{"\u00E9":"\u00FC\u20AC"}', id="non-ascii-in-keys-and-values"),
        pytest.param('{"a":"😀"}', r'{"a":"\uD83D\uDE00"}', id="beyond-the-bmp-as-a-surrogate-pair"),
        pytest.param(
            '{"a+b": 1.5e+3, "c": [true, null]}',
            r'{"a\u002Bb": 1.5e+3, "c": [true, null]}',
            id="plus-outside-strings-kept",
        ),
        pytest.param('{"a":"x & y', r'{"a":"x \u0026 y', id="unterminated"),
    ],
)
def test_autotasks_escaping_touches_only_the_text_inside_strings(sent: str, hashed: str) -> None:
    assert autotask_escaped(sent) == hashed


def test_an_unsigned_deactivated_notice_is_refused() -> None:
    # Given the notice Autotask sends when it turns a webhook off, with no signature: never trusted
    request = WebhookRequest(headers={}, body=sample("autotask/ticket_deactivated.json"))
    with pytest.raises(InvalidSignature):
        SOURCE.verify(request, SECRET, NOW)


def test_a_signed_deactivated_notice_is_the_subscription_ended_signal() -> None:
    # Given the notice, signed; When it is parsed; Then no event, but the signal that Autotask gave up
    with pytest.raises(SubscriptionEnded):
        parse_sample("ticket_deactivated")


# --- ticket status


def test_a_ticket_completed_with_the_default_status_5() -> None:
    [event] = parse_sample("ticket_completed")

    assert event.kind is EventKind.TICKET_COMPLETED
    assert event.source == "autotask"
    assert event.ticket == TicketRef(system="autotask", id="48213", number="T20261123.0004")
    assert event.entity == "autotask:ticket:48213"
    assert event.occurred_at == datetime(2026, 11, 23, 16, 42, 7, 513000, tzinfo=UTC)
    assert event.delivery_id == f"{WEBHOOK_GUID}:48213:14:2026-11-23T16:42:07.513000+00:00"
    assert (event.external_ref, event.previous_ref, event.booking, event.technicians) == (None, None, None, None)
    assert (event.reason, event.cancelled_by) == (None, None)


def test_a_status_sent_as_text_is_compared_as_text() -> None:
    [event] = parse_body(changed("ticket_completed", fields={"Status": "5"}))
    assert event.kind is EventKind.TICKET_COMPLETED


def test_the_complete_status_id_is_configurable() -> None:
    source = AutotaskSource(complete_status_id="31")
    assert parse_body(changed("ticket_completed"), source) == ()
    [event] = parse_body(changed("ticket_completed", fields={"Status": 31}), source)
    assert event.kind is EventKind.TICKET_COMPLETED


def test_the_no_show_status_is_ignored_until_its_id_is_configured() -> None:
    assert parse_sample("ticket_no_show") == ()


def test_the_configured_no_show_status_marks_the_ticket_a_no_show() -> None:
    [event] = parse_sample("ticket_no_show", WITH_NO_SHOW)

    assert event.kind is EventKind.TICKET_NO_SHOW
    assert event.ticket == TicketRef(system="autotask", id="48219", number="T20261123.0009")
    assert event.entity == "autotask:ticket:48219"
    assert event.occurred_at == datetime(2026, 11, 23, 15, 31, 44, 207000, tzinfo=UTC)
    assert event.delivery_id == f"{WEBHOOK_GUID}:48219:12:2026-11-23T15:31:44.207000+00:00"
    assert event.technicians is None


@pytest.mark.parametrize("status", [1, 8, None])
def test_other_statuses_change_nothing(status: int | None) -> None:
    assert parse_body(changed("ticket_completed", fields={"Status": status}), WITH_NO_SHOW) == ()


def test_the_same_status_id_cannot_mean_both_complete_and_no_show() -> None:
    with pytest.raises(ConfigError):
        AutotaskSource(no_show_status_id="5")


# --- assigned resource


def test_an_assigned_resource_becomes_the_technician() -> None:
    [event] = parse_sample("ticket_assigned")

    assert event.kind is EventKind.TICKET_ASSIGNED
    assert event.technicians == (Technician(id="29682885", name="Autotask resource 29682885"),)
    assert event.ticket == TicketRef(system="autotask", id="48213", number="T20261123.0004")
    assert event.entity == "autotask:ticket:48213"
    assert event.occurred_at == datetime(2026, 11, 23, 9, 12, 30, 41000, tzinfo=UTC)
    assert event.delivery_id == f"{WEBHOOK_GUID}:48213:9:2026-11-23T09:12:30.041000+00:00"
    assert event.external_ref is None


def test_a_resource_taken_off_the_ticket_leaves_no_technician() -> None:
    [event] = parse_sample("ticket_unassigned")

    assert event.kind is EventKind.TICKET_ASSIGNED
    assert event.technicians == ()
    assert event.delivery_id == f"{WEBHOOK_GUID}:48213:11:2026-11-23T11:05:58.926000+00:00"


def test_a_body_with_escapable_text_parses_as_sent() -> None:
    [event] = parse_sample("ticket_assigned_escaped")

    assert event.kind is EventKind.TICKET_ASSIGNED
    assert event.technicians == (Technician(id="29682899", name="Autotask resource 29682899"),)
    assert event.ticket == TicketRef(system="autotask", id="48225", number="T20261124.0002")


def test_a_status_and_an_assignment_in_one_delivery_are_two_events() -> None:
    # Given one update that both completes the ticket and changes its resource
    body = changed("ticket_completed", fields={"Status": 5, "AssignedResourceID": 29682885})

    assigned, completed = parse_body(body)

    assert (assigned.kind, completed.kind) == (EventKind.TICKET_ASSIGNED, EventKind.TICKET_COMPLETED)
    base_id = f"{WEBHOOK_GUID}:48213:14:2026-11-23T16:42:07.513000+00:00"
    assert assigned.delivery_id == f"{base_id}#ticket.assigned"
    assert completed.delivery_id == f"{base_id}#ticket.completed"
    assert assigned.technicians == (Technician(id="29682885", name="Autotask resource 29682885"),)
    assert completed.technicians is None
    assert assigned.ticket == completed.ticket == TicketRef(system="autotask", id="48213", number=None)


# --- payload shape


def test_key_case_does_not_matter() -> None:
    # Given the assignment sample with every key spelt differently, as integrations disagree on case
    document = json.loads(sample("autotask/ticket_assigned.json"))
    lowered = {key.lower(): value for key, value in document.items() if key != "PersonID"}
    lowered["PersonId"] = document["PersonID"]
    lowered["fields"] = {key[0].lower() + key[1:]: value for key, value in document["Fields"].items()}
    assert "assignedResourceID" in lowered["fields"]

    assert parse_body(json.dumps(lowered).encode()) == parse_sample("ticket_assigned")


def test_a_key_given_twice_in_different_cases_is_refused() -> None:
    with pytest.raises(UnsupportedPayload) as raised:
        parse_body(changed("ticket_completed", id=48214))
    assert raised.value.field == "Id"


@pytest.mark.parametrize(
    ("event_time", "occurred_at"),
    [
        pytest.param("2026-11-23T16:42:07", datetime(2026, 11, 23, 16, 42, 7, tzinfo=UTC), id="no-offset-is-utc"),
        pytest.param("2026-11-23T17:42:07+01:00", datetime(2026, 11, 23, 16, 42, 7, tzinfo=UTC), id="offset"),
        pytest.param(
            "2026-11-23T16:42:07.5133333Z", datetime(2026, 11, 23, 16, 42, 7, 513333, tzinfo=UTC), id="7-digit-fraction"
        ),
    ],
)
def test_the_event_time_is_read_as_utc(event_time: str, occurred_at: datetime) -> None:
    [event] = parse_body(changed("ticket_completed", EventTime=event_time))
    assert event.occurred_at == occurred_at


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(changed("ticket_completed", EntityType="TicketNote"), id="ticket-note"),
        pytest.param(changed("ticket_completed", EntityType="Company", drop="Id"), id="company-without-id"),
        pytest.param(changed("ticket_completed", Action="Delete"), id="deleted-ticket"),
        pytest.param(changed("ticket_completed", Action="Merge"), id="unknown-action"),
    ],
)
def test_what_is_not_a_ticket_created_or_updated_changes_nothing(body: bytes) -> None:
    assert parse_body(body) == ()


@pytest.mark.parametrize("body", [b"Status=5", b"", b'[{"Action": "Update"}]', b"\xff\xfe"])
def test_a_body_that_is_not_a_json_object_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedPayload) as raised:
        parse_body(body)
    assert raised.value.http_status == 400


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param(changed("ticket_completed", drop="Id"), "Id", id="missing-id"),
        pytest.param(changed("ticket_completed", drop="EventTime"), "EventTime", id="missing-event-time"),
        pytest.param(changed("ticket_completed", drop="Action"), "Action", id="missing-action"),
        pytest.param(changed("ticket_completed", drop="EntityType"), "EntityType", id="missing-entity-type"),
        pytest.param(changed("ticket_completed", EventTime="yesterday"), "EventTime", id="bad-event-time"),
        pytest.param(changed("ticket_completed", Id="T20261123.0004"), "Id", id="ticket-number-as-id"),
        pytest.param(
            changed("ticket_assigned", fields={"AssignedResourceID": "Sam"}),
            "Fields.AssignedResourceID",
            id="resource-not-an-id",
        ),
        pytest.param(changed("ticket_completed", fields={"Status": 5, "status": 8}), "Fields.Status", id="twice"),
        pytest.param(changed("ticket_completed", fields={"Status": [5]}), "Fields.Status", id="status-not-an-id"),
    ],
)
def test_json_of_the_wrong_shape_names_the_field(body: bytes, field: str) -> None:
    with pytest.raises(UnsupportedPayload) as raised:
        parse_body(body)
    assert raised.value.field == field
    assert raised.value.http_status == 422
