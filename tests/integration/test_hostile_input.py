"""No 500 for any input, before or after authentication: hostile input through the real handlers, under moto.

Each case gets its 4xx and changes nothing: no event queued, no item written, no version moved.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from appointments import wiring
from tests.integration.stack import CALENDLY_SECRET, GENERIC_SECRET, Stack, stack_under_moto
from tests.integration.test_ops_api import created
from tests.signing import sample

NOW = datetime(2026, 11, 23, 10, 0, 5, tzinfo=UTC)
START = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
UNIX_NOW = str(int(NOW.timestamp()))
# Digits str.isdigit() passes and int() refuses or reads: superscript two, Arabic-Indic and fullwidth digits.
FULLWIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + n) for n in range(10)))


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with stack_under_moto(monkeypatch, NOW) as built:
        yield built


def error_of(response: dict[str, Any]) -> dict[str, Any]:
    error: dict[str, Any] = json.loads(response["body"])["error"]
    return error


def deep_lists(depth: int = 50_000) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_objects(depth: int = 50_000) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


# --- webhooks: the signature's timestamp (before authentication) -------------------------------------

TIMESTAMP_SCHEMES = {
    "generic": ("X-Signature", GENERIC_SECRET, "generic/appointment_scheduled.json"),
    "calendly": ("Calendly-Webhook-Signature", CALENDLY_SECRET, "calendly/invitee_created.json"),
}


@pytest.mark.parametrize("source", TIMESTAMP_SCHEMES)
@pytest.mark.parametrize(
    "timestamp",
    [
        pytest.param("\u00b2", id="superscript-two"),
        pytest.param("\u0661\u0662\u0663", id="arabic-indic-digits"),
        pytest.param(UNIX_NOW.translate(FULLWIDTH), id="fullwidth-now"),
        pytest.param("1" * 5000, id="5000-digits"),
        pytest.param(UNIX_NOW.zfill(5000), id="now-zero-padded-to-5000-digits"),
    ],
)
def test_a_signature_timestamp_that_is_not_ascii_unix_time_is_401_and_queues_nothing(
    stack: Stack, source: str, timestamp: str
) -> None:
    # Given a delivery whose v1 is the true HMAC over "<t>.<body>", t being no plain ASCII Unix time
    header, secret, event = TIMESTAMP_SCHEMES[source]
    body = sample(event)
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()

    # When it is posted
    response = stack.post(source, body, {header: f"t={timestamp},v1={digest}"})

    # Then it is refused as any bad signature is, and nothing is queued or stored
    assert response["statusCode"] == 401, response["body"]
    assert error_of(response)["code"] == "unauthorized"
    assert stack.queued() == []
    assert stack.table_items() == []


# --- webhooks: JSON the parser cannot hold (after authentication) ------------------------------------


@pytest.mark.parametrize("source", ["generic", "calendly", "calcom", "autotask", "halopsa"])
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        pytest.param(deep_lists(), 400, "malformed_payload", id="lists-50000-deep"),
        pytest.param(deep_objects(40_000), 400, "malformed_payload", id="objects-40000-deep"),
        # 300 KB: refused by its size before it is parsed
        pytest.param(deep_objects(), 413, "payload_too_large", id="objects-50000-deep"),
        pytest.param(b'{"event_id": ' + b"9" * 5000 + b"}", 400, "malformed_payload", id="5000-digit-integer"),
    ],
)
def test_a_signed_webhook_body_nested_too_deep_is_4xx_and_queues_nothing(
    stack: Stack, source: str, body: bytes, status: int, code: str
) -> None:
    # When a correctly signed body nested tens of thousands deep (or with an integer int() refuses) is posted
    response = stack.signed_post(source, body)

    # Then it is a body that is not JSON (or too large), and nothing is queued or stored
    assert response["statusCode"] == status, response["body"]
    assert error_of(response)["code"] == code
    assert stack.queued() == []
    assert stack.table_items() == []


# --- ops API: If-Match --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "if_match",
    [
        pytest.param("\u00b2", id="superscript-two"),
        pytest.param('"\u00b2"', id="quoted-superscript-two"),
        pytest.param("\u0661", id="arabic-indic-one"),
        pytest.param("\uff11", id="fullwidth-one"),
        pytest.param("1" * 5000, id="5000-digits"),
        pytest.param(f'W/"{"0" * 4999}1"', id="weak-5000-digits"),
        pytest.param('"-1"', id="negative"),
        pytest.param('W/"x"', id="weak-not-a-number"),
        pytest.param('""', id="empty-quotes"),
        pytest.param('"1", "2"', id="a-list"),
    ],
)
def test_an_if_match_that_is_not_a_version_is_422_and_changes_nothing(stack: Stack, if_match: str) -> None:
    # Given an appointment at version 1
    appointment_id = created(stack)["id"]

    # When an action names a version that is no version at all
    reply = stack.ops("POST", f"/appointments/{appointment_id}/notes", {"text": "x"}, headers={"If-Match": if_match})

    # Then it is the If-Match refusal that already exists, and the appointment is untouched
    assert reply.status == 422, reply.body
    assert reply.body["error"]["code"] == "invalid_input"
    assert reply.body["error"]["details"][0]["field"] == "If-Match"
    assert wiring.store().get(appointment_id).version == 1


# --- ops API: bodies the parser cannot hold -------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [pytest.param(deep_lists(), id="lists-50000-deep"), pytest.param(deep_objects(), id="objects-50000-deep")],
)
def test_an_ops_body_nested_too_deep_is_400_and_changes_nothing(stack: Stack, raw: bytes) -> None:
    # Given an appointment at version 1
    appointment_id = created(stack)["id"]
    items = stack.table_items()

    # When a create and an action each get a body nested 50,000 deep
    refused = [
        stack.ops_raw("POST", "/appointments", raw=raw),
        stack.ops_raw("POST", f"/appointments/{appointment_id}/notes", raw=raw),
    ]

    # Then each is a body that is not JSON, and nothing is written
    assert [(r["statusCode"], error_of(r)["code"]) for r in refused] == [(400, "malformed_payload")] * 2
    assert stack.table_items() == items
    assert wiring.store().get(appointment_id).version == 1


@pytest.mark.parametrize(
    ("action", "raw"),
    [
        pytest.param("complete", b'{"duration_minutes": ' + b"1" * 5000 + b', "outcome": "done"}', id="complete"),
        pytest.param("defer", b'{"weeks": ' + b"9" * 5000 + b"}", id="defer"),
    ],
)
def test_a_5000_digit_integer_in_an_ops_body_is_400_and_changes_nothing(stack: Stack, action: str, raw: bytes) -> None:
    # Given an appointment at version 1
    appointment_id = created(stack)["id"]

    # When an action's integer has more digits than int() reads from text
    response = stack.ops_raw("POST", f"/appointments/{appointment_id}/{action}", raw=raw)

    # Then the body cannot be read as JSON (400), and the appointment is untouched
    assert response["statusCode"] == 400, response["body"]
    assert error_of(response)["code"] == "malformed_payload"
    assert wiring.store().get(appointment_id).version == 1


def test_a_4000_digit_integer_is_read_and_refused_by_its_bounds(stack: Stack) -> None:
    # Given an appointment at version 1
    appointment_id = created(stack)["id"]

    # When a duration has 4,000 digits (under the interpreter's 4,300-digit limit)
    raw = b'{"duration_minutes": ' + b"1" * 4000 + b', "outcome": "done"}'
    reply = stack.ops("POST", f"/appointments/{appointment_id}/complete", raw=raw)

    # Then it is out of bounds, 422 naming the field
    assert reply.status == 422, reply.body
    assert reply.body["error"]["details"][0]["field"] == "duration_minutes"
    assert wiring.store().get(appointment_id).version == 1


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "multipart/form-data", "multipart/form-data; boundary=xyz", "application/x-www-form-urlencoded"],
)
def test_a_body_of_another_content_type_is_400_and_changes_nothing(stack: Stack, content_type: str) -> None:
    appointment_id = created(stack)["id"]
    reply = stack.ops(
        "POST", f"/appointments/{appointment_id}/notes", raw=b'{"text": "x"}', headers={"Content-Type": content_type}
    )
    assert reply.status == 400, reply.body
    assert reply.body["error"]["code"] == "malformed_payload"
    assert wiring.store().get(appointment_id).version == 1


# --- ops API: list cursors --------------------------------------------------------------------------------

KEY = {
    "PK": {"S": "APPT#01KNOWN"},
    "SK": {"S": "A"},
    "day": {"S": "DAY#2026-11-23"},
    "start_key": {"S": "2026-11-23T15:00:00.000000Z"},
}


def cursor_of(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param(cursor_of({"day": 5, "key": None}), id="day-a-number"),
        pytest.param(cursor_of({"day": [], "key": None}), id="day-a-list"),
        pytest.param(cursor_of({"day": None, "key": None}), id="day-null"),
        pytest.param(cursor_of({"key": None}), id="no-day"),
        pytest.param(cursor_of(["2026-11-23", None]), id="a-list"),
        pytest.param(cursor_of("2026-11-23"), id="a-string"),
        pytest.param(cursor_of(5), id="a-number"),
        pytest.param(cursor_of({"day": "2026-11-23", "key": {"PK": {"S": 5}}}), id="key-value-a-number"),
        pytest.param(cursor_of({"day": "2026-11-23", "key": {"PK": {"S": "x"}}}), id="key-missing-attributes"),
        pytest.param(cursor_of({"day": "2026-11-23", "key": {**KEY, "PK": {"N": "5"}}}), id="key-of-another-type"),
        pytest.param(cursor_of({"day": "2026-11-23", "key": {**KEY, "extra": {"S": "x"}}}), id="key-extra-attribute"),
        pytest.param(
            cursor_of({"day": "2026-11-23", "key": {**KEY, "day": {"S": "DAY#2026-11-24"}}}), id="key-of-another-day"
        ),
        pytest.param(cursor_of({"day": "2026-11-23", "key": []}), id="key-a-list"),
        pytest.param(
            cursor_of({"day": "2026-11-23", "key": {**KEY, "start_key": {"S": "2026-11-22T15:00:00.000000Z"}}}),
            id="key-before-the-range",
        ),
        pytest.param(base64.urlsafe_b64encode(b"[" * 1400).decode(), id="nested-1400-deep"),
        pytest.param(base64.urlsafe_b64encode(b"\xff\xfe").decode(), id="not-utf8"),
    ],
)
def test_a_cursor_whose_json_is_of_the_wrong_shape_is_the_cursor_refusal(stack: Stack, cursor: str) -> None:
    # When the list is asked for a page with a cursor it never wrote
    reply = stack.ops("GET", f"/appointments?from=2026-11-23T00:00:00Z&cursor={cursor}")

    # Then it is the existing cursor refusal (422 naming cursor), never a store error
    assert reply.status == 422, reply.body
    assert reply.body["error"]["code"] == "invalid_input"
    assert reply.body["error"]["details"][0]["field"] == "cursor"


# --- ops API: the actions without fields (check-in, reopen) ------------------------------------------------

NOT_AN_OBJECT = [
    pytest.param(b"{", 400, "malformed_payload", id="unparsable"),
    pytest.param(b"\xff\xfe", 400, "malformed_payload", id="not-utf8"),
    pytest.param(b'"${jndi:ldap://x}"', 422, "invalid_input", id="a-json-string"),
    pytest.param(b"null", 422, "invalid_input", id="json-null"),
    pytest.param(b"[]", 422, "invalid_input", id="a-json-list"),
    pytest.param(b"5", 422, "invalid_input", id="a-json-number"),
    pytest.param(b'{"colour": "blue"}', 422, "validation_error", id="an-unknown-field"),
]


def acted_on(stack: Stack, action: str) -> tuple[str, int]:
    """An appointment the action is allowed on, and its version: a scheduled one to check in, a no-show to reopen."""
    appointment_id = created(stack)["id"]
    if action == "check-in":
        return appointment_id, 1
    stack.clock.set(START + timedelta(minutes=12))
    reply = stack.ops("POST", f"/appointments/{appointment_id}/no-show", {})
    assert reply.status == 200, reply.body
    return appointment_id, int(reply.body["version"])


@pytest.mark.parametrize("action", ["check-in", "reopen"])
@pytest.mark.parametrize(("raw", "status", "code"), NOT_AN_OBJECT)
def test_an_action_without_fields_refuses_a_body_that_is_not_an_empty_object(
    stack: Stack, action: str, raw: bytes, status: int, code: str
) -> None:
    # Given an appointment the action is allowed on
    appointment_id, version = acted_on(stack, action)

    # When the action gets a body that is not {}
    response = stack.ops_raw("POST", f"/appointments/{appointment_id}/{action}", raw=raw)

    # Then it is refused, naming the body when it is JSON of the wrong kind, and nothing changes
    assert response["statusCode"] == status, response["body"]
    error = error_of(response)
    assert error["code"] == code
    if code == "invalid_input":
        assert error["details"] == [{"field": "body", "message": "must be a JSON object"}]
    assert wiring.store().get(appointment_id).version == version


@pytest.mark.parametrize("action", ["check-in", "reopen"])
@pytest.mark.parametrize("raw", [pytest.param(b"", id="no-body"), pytest.param(b"{}", id="empty-object")])
def test_an_action_without_fields_takes_no_body_or_an_empty_object(stack: Stack, action: str, raw: bytes) -> None:
    appointment_id, version = acted_on(stack, action)
    response = stack.ops_raw("POST", f"/appointments/{appointment_id}/{action}", raw=raw)
    assert response["statusCode"] == 200, response["body"]
    assert wiring.store().get(appointment_id).version == version + 1


def test_hostile_bodies_before_authentication_are_401_and_never_read(stack: Stack) -> None:
    # Given no caller identity, when any hostile body is posted, then it is 401 before the body is read
    for raw in (deep_lists(), deep_objects(), b"{", b"\xff\xfe", b'{"weeks": ' + b"9" * 5000 + b"}"):
        response = stack.ops_raw("POST", "/appointments", raw=raw, caller=None)
        assert response["statusCode"] == 401
    assert stack.table_items() == []
