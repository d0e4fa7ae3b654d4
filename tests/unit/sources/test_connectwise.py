"""The ConnectWise source: the key_url allow-list, the fetched key's signature and cache, and ticket callbacks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from appointments.domain.events import EventKind
from appointments.domain.model import Technician, TicketRef
from appointments.errors import (
    ConfigError,
    InvalidSignature,
    SigningKeyUnavailable,
    UnsupportedPayload,
    VendorRefused,
    VendorUnavailable,
)
from appointments.sources.base import WebhookRequest
from appointments.sources.connectwise import ConnectWiseSource, allowed_key_url, key_hosts
from tests.signing import one_byte_changed, sample

NOW = datetime(2026, 11, 23, 14, 5, 30, tzinfo=UTC)
COMPANIES = "acmemsp"
KEY_URL = "https://api-na.myconnectwise.net/v4_6_release/apis/3.0/system/callbackkey/index.rails?id=7f3a"
SIGNING_KEY = "cw-signing-key-for-tests"


class RecordingKeys:
    """The key server: answers from ``keys`` (in turn, the last one repeating) and records every URL asked."""

    def __init__(self, *keys: str, error: Exception | None = None) -> None:
        self.keys = list(keys) or [SIGNING_KEY]
        self.error = error
        self.calls: list[str] = []

    def signing_key(self, url: str) -> str:
        self.calls.append(url)
        if self.error is not None:
            raise self.error
        return self.keys.pop(0) if len(self.keys) > 1 else self.keys[0]


def signature(body: bytes, signing_key: str = SIGNING_KEY) -> str:
    # Written out here, not taken from the module, so a wrong scheme cannot agree with itself.
    key = hashlib.sha256(signing_key.encode()).digest()
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


def signed(body: bytes, signing_key: str = SIGNING_KEY) -> WebhookRequest:
    return WebhookRequest(headers={"x-content-signature": signature(body, signing_key)}, body=body)


def with_key_url(name: str, url: str) -> bytes:
    document = json.loads(sample(f"connectwise/{name}.json"))
    document["Metadata"]["key_url"] = url
    return json.dumps(document).encode()


def callback(entity: dict[str, Any] | str | None, **envelope: Any) -> bytes:
    document = json.loads(sample("connectwise/ticket_assigned.json"))
    document["Entity"] = entity if not isinstance(entity, dict) else json.dumps(entity)
    document.update(envelope)
    return json.dumps(document).encode()


# --- the signature


def test_a_callback_signed_with_the_key_at_its_key_url_is_verified() -> None:
    # Given a callback signed with the key its key_url serves
    keys = RecordingKeys()
    source = ConnectWiseSource(keys)
    # When it is verified, Then it passes, having asked for that key once
    source.verify(signed(sample("connectwise/ticket_assigned.json")), COMPANIES, NOW)
    assert keys.calls == [KEY_URL]


def test_a_tampered_body_is_refused() -> None:
    body = sample("connectwise/ticket_assigned.json")
    request = WebhookRequest(headers={"x-content-signature": signature(body)}, body=one_byte_changed(body))
    with pytest.raises(InvalidSignature):
        ConnectWiseSource(RecordingKeys()).verify(request, COMPANIES, NOW)


@pytest.mark.parametrize("header", [None, "", "not base64!", base64.b64encode(b"short").decode()])
def test_an_unsigned_or_malformed_signature_is_refused_before_any_fetch(header: str | None) -> None:
    keys = RecordingKeys()
    headers = {} if header is None else {"x-content-signature": header}
    with pytest.raises(InvalidSignature):
        ConnectWiseSource(keys).verify(
            WebhookRequest(headers=headers, body=sample("connectwise/ticket_assigned.json")), COMPANIES, NOW
        )
    assert keys.calls == []


@pytest.mark.parametrize(
    "url",
    [
        "https://attacker.example/key",  # a foreign host
        "http://api-na.myconnectwise.net/v4_6_release/key",  # plain http
        "https://api-na.myconnectwise.net:8443/key",  # an odd port
        "https://user:pw@api-na.myconnectwise.net/key",  # user info
        "https://api-na.myconnectwise.net@attacker.example/key",  # user info hiding the real host
        "https://api-na.myconnectwise.net.attacker.example/key",  # the allowed host as a prefix
        "https://api-na.myconnectwise.net./key",  # a trailing dot
        "https://127.0.0.1/key",
        "https://169.254.169.254/latest/meta-data",
        "file:///etc/passwd",
        "https://api-na.myconnectwise.net\\@attacker.example/",
        " https://api-na.myconnectwise.net/key",
        "",
    ],
)
def test_a_key_url_off_the_allow_list_is_refused_with_no_request_at_all(url: str) -> None:
    # Given a callback whose key_url is not on the allow-list, signed with the right key even
    keys = RecordingKeys()
    body = with_key_url("ticket_assigned", url)
    # When it is verified, Then it is refused and nothing was fetched
    with pytest.raises(InvalidSignature):
        ConnectWiseSource(keys).verify(signed(body), COMPANIES, NOW)
    assert keys.calls == []


def test_a_body_without_a_key_url_is_refused_without_a_fetch() -> None:
    keys = RecordingKeys()
    body = b'{"CompanyId": "acmemsp", "Action": "updated"}'
    with pytest.raises(InvalidSignature):
        ConnectWiseSource(keys).verify(signed(body), COMPANIES, NOW)
    assert keys.calls == []


def test_a_wildcard_entry_admits_its_subdomains_only() -> None:
    hosts = key_hosts(["*.myconnectwise.net"])
    assert allowed_key_url("https://api-eu.myconnectwise.net/k", hosts)
    assert not allowed_key_url("https://myconnectwise.net/k", hosts)
    assert not allowed_key_url("https://evilmyconnectwise.net/k", hosts)


@pytest.mark.parametrize(
    "entry", ["http://cw.example.com", "*.net", "ftp://x.example", "https://a.example/path", "a b"]
)
def test_an_unsafe_allow_list_entry_is_a_config_error(entry: str) -> None:
    with pytest.raises(ConfigError):
        ConnectWiseSource(RecordingKeys(), key_hosts_allowed=[entry])


def test_a_loopback_http_origin_is_allowed_for_local_use_only() -> None:
    hosts = key_hosts(["http://127.0.0.1:8123"])
    assert allowed_key_url("http://127.0.0.1:8123/key", hosts)
    assert not allowed_key_url("http://127.0.0.1:8124/key", hosts)
    assert not allowed_key_url("https://127.0.0.1:8123/key", hosts)


def test_a_callback_from_another_company_is_refused() -> None:
    # Any ConnectWise tenant can sign with its own key: the signed CompanyId must be ours
    with pytest.raises(InvalidSignature):
        ConnectWiseSource(RecordingKeys()).verify(signed(sample("connectwise/ticket_assigned.json")), "othermsp", NOW)


def test_the_key_is_cached_per_url() -> None:
    keys = RecordingKeys()
    source = ConnectWiseSource(keys)
    for minutes in (0, 10, 59):
        source.verify(signed(sample("connectwise/ticket_assigned.json")), COMPANIES, NOW + timedelta(minutes=minutes))
    assert keys.calls == [KEY_URL]
    # After an hour the key is fetched again
    source.verify(signed(sample("connectwise/ticket_assigned.json")), COMPANIES, NOW + timedelta(minutes=61))
    assert keys.calls == [KEY_URL, KEY_URL]


def test_a_rotated_key_is_refetched_once() -> None:
    # Given a cached key, then ConnectWise rotates it
    keys = RecordingKeys(SIGNING_KEY, "rotated-key")
    source = ConnectWiseSource(keys)
    body = sample("connectwise/ticket_assigned.json")
    source.verify(signed(body), COMPANIES, NOW)
    # When a callback signed with the new key arrives, Then the key is fetched again once and it passes
    source.verify(signed(body, "rotated-key"), COMPANIES, NOW + timedelta(minutes=5))
    assert keys.calls == [KEY_URL, KEY_URL]
    # And a forged signature right after is refused without another fetch
    with pytest.raises(InvalidSignature):
        source.verify(signed(body, "forged"), COMPANIES, NOW + timedelta(minutes=5, seconds=10))
    assert len(keys.calls) == 2


def test_a_wrong_signature_with_a_fresh_fetch_is_refused_after_one_fetch() -> None:
    keys = RecordingKeys()
    with pytest.raises(InvalidSignature):
        ConnectWiseSource(keys).verify(signed(sample("connectwise/ticket_assigned.json"), "forged"), COMPANIES, NOW)
    assert keys.calls == [KEY_URL]


def test_a_key_server_that_does_not_answer_is_a_retryable_503() -> None:
    keys = RecordingKeys(error=VendorUnavailable("connectwise", "ConnectTimeoutError"))
    with pytest.raises(SigningKeyUnavailable) as raised:
        ConnectWiseSource(keys).verify(signed(sample("connectwise/ticket_assigned.json")), COMPANIES, NOW)
    assert raised.value.http_status == 503 and raised.value.retryable


def test_a_key_server_that_refuses_is_an_invalid_signature() -> None:
    keys = RecordingKeys(error=VendorRefused("connectwise", 404))
    with pytest.raises(InvalidSignature):
        ConnectWiseSource(keys).verify(signed(sample("connectwise/ticket_assigned.json")), COMPANIES, NOW)


# --- parsing


def test_a_ticket_callback_assigns_the_owner_first_and_the_other_resources() -> None:
    events = ConnectWiseSource(RecordingKeys()).parse(signed(sample("connectwise/ticket_assigned.json")))
    assert [event.kind for event in events] == [EventKind.TICKET_ASSIGNED]
    event = events[0]
    assert event.ticket == TicketRef(system="connectwise", id="48213")
    assert event.technicians == (
        Technician(id="sokafor", name="Sam Okafor", primary=True),
        Technician(id="jlee", name="jlee"),
    )
    assert event.delivery_id == "3f1c9a2e-5b7d-4e60-9a41-0c2d8e6f7b13"
    assert event.occurred_at == datetime(2026, 11, 23, 14, 5, tzinfo=UTC)
    assert event.entity == "connectwise:ticket:48213"


def test_a_ticket_moved_to_a_complete_status_by_name_completes_it() -> None:
    events = ConnectWiseSource(RecordingKeys()).parse(signed(sample("connectwise/ticket_completed.json")))
    assert [event.kind for event in events] == [EventKind.TICKET_ASSIGNED, EventKind.TICKET_COMPLETED]
    assert len({event.delivery_id for event in events}) == 2


def test_a_no_show_status_is_matched_by_name_or_id() -> None:
    ticket = json.loads(json.loads(sample("connectwise/ticket_assigned.json"))["Entity"])
    by_name = ConnectWiseSource(RecordingKeys(), no_show_statuses=["customer no-show"])
    by_id = ConnectWiseSource(RecordingKeys(), no_show_statuses=["77"])
    for source, status in ((by_name, {"id": 5, "name": "Customer No-Show"}), (by_id, {"id": 77, "name": "x"})):
        events = source.parse(signed(callback({**ticket, "status": status})))
        assert EventKind.TICKET_NO_SHOW in [event.kind for event in events]


def test_a_ticket_without_owner_or_resources_says_nothing_about_technicians() -> None:
    entity = {"id": 1, "status": {"id": 1, "name": "New"}, "_info": {"lastUpdated": "2026-11-23T10:00:00Z"}}
    assert ConnectWiseSource(RecordingKeys()).parse(signed(callback(entity))) == ()


def test_a_redelivery_has_the_same_delivery_id_and_one_without_message_id_has_a_stable_one() -> None:
    source = ConnectWiseSource(RecordingKeys())
    body = sample("connectwise/ticket_assigned.json")
    assert source.parse(signed(body)) == source.parse(signed(body))
    document = json.loads(body)
    del document["MessageId"]
    event = source.parse(signed(json.dumps(document).encode()))[0]
    assert event.delivery_id == "ticket:48213:updated:2026-11-23T14:05:00+00:00"


@pytest.mark.parametrize("entity", ["{not json", "[1, 2]", None, 17])
def test_an_entity_that_is_not_a_json_object_is_a_422_naming_entity(entity: Any) -> None:
    with pytest.raises(UnsupportedPayload) as raised:
        ConnectWiseSource(RecordingKeys()).parse(signed(callback(entity)))
    assert raised.value.field == "Entity"


def test_a_ticket_without_its_update_time_is_a_422_naming_the_field() -> None:
    with pytest.raises(UnsupportedPayload) as raised:
        ConnectWiseSource(RecordingKeys()).parse(signed(callback({"id": 1, "owner": None})))
    assert raised.value.field == "Entity._info"


@pytest.mark.parametrize(
    ("action", "kind"), [("deleted", "ticket"), ("updated", "company"), ("merged", "ticket"), ("added", "schedule")]
)
def test_other_callbacks_are_acknowledged_and_ignored(action: str, kind: str) -> None:
    body = json.loads(
        sample("connectwise/schedule_entry_added.json" if kind == "schedule" else "connectwise/ticket_assigned.json")
    )
    body.update(Action=action, Type=kind)
    assert ConnectWiseSource(RecordingKeys()).parse(signed(json.dumps(body).encode())) == ()


def test_a_schedule_entry_of_the_wrong_shape_is_a_422() -> None:
    body = json.loads(sample("connectwise/schedule_entry_added.json"))
    body["Entity"] = json.dumps({"id": "not a number"})
    with pytest.raises(UnsupportedPayload) as raised:
        ConnectWiseSource(RecordingKeys()).parse(signed(json.dumps(body).encode()))
    assert raised.value.field == "Entity.id"


def test_a_complete_status_also_named_no_show_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        ConnectWiseSource(RecordingKeys(), complete_statuses=["Completed"], no_show_statuses=["completed"])
