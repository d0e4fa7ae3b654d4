"""The vendors' own webhook delivery rules (issue 18), held against the real WebhookIngressFunction under moto.

Each vendor decides what to do with our answer, and some decide for good:

- **Autotask** waits 10 s, resends after 30 s, drops a payload after 5 attempts within 2 minutes and
  disables the callout after 25 consecutive failures.
- **Calendly** retries 3xx, 4xx and 5xx for 24 h; a ``410 Gone`` deletes the subscription at once.
- **Cal.com** makes at most 3 attempts, at least 5 minutes apart; **ConnectWise** and **HaloPSA** publish no
  retry policy (HaloPSA can auto-disable a webhook after failed attempts); the generic source is ours.

So the ingress answers 2xx only when every event of the body is queued, 503 when the queue (or the secret
it verifies with) failed, so the vendor retries; a 4xx, never a 410 and never a 3xx, for what no retry can
fix; a redelivery is answered 2xx again and applied once. The ack does no downstream work: one secret read
(cached) and one ``SendMessageBatch``. A source that stops sending (a vendor that gave up on us) is seen by
its "webhook source silent" alarm, which counts accepted deliveries only.

``tests/integration/test_webhook_ingress.py``, ``test_webhook_refusals.py`` and ``test_faults.py`` (fault 3)
hold the generic source's refusals and SQS faults; this module holds the same rules for every source, and
the vendors' retry schedules.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from appointments import wiring
from appointments.adapters import aws
from appointments.domain.history import Action
from appointments.domain.model import ExternalRef
from appointments.services.ingress import MAX_BODY_BYTES
from appointments.sources.base import WebhookRequest
from localdev.signing import connectwise_signature, signature_headers
from tests.integration.stack import SECRETS, Stack, stack_under_moto
from tests.integration.test_connectwise import SIGNING_KEY, KeyServer
from tests.integration.test_faults import Faults, Inject, aws_error, delivery_ids, items
from tests.signing import one_byte_changed, sample

NOW = datetime(2026, 11, 23, 10, 0, 5, tzinfo=UTC)  # Monday: the samples' week
SOURCES = ("generic", "calcom", "calendly", "autotask", "connectwise", "halopsa")
TIMESTAMPED = ("generic", "calendly")  # the schemes whose signature carries its time (t=...)
CALENDLY_EVENT_TYPE = "3f9b2d1c-6e4a-4b87-9c05-d8a1e7f2b640"
TICKET = "48213"  # the PSA ticket of the Autotask and ConnectWise samples


@dataclass(frozen=True)
class Delivery:
    """One vendor's sample delivery, and the PSA ticket an appointment must hold for it to apply."""

    sample: str
    ticket_system: str | None = None
    retry_after: timedelta = timedelta(minutes=1)  # when the vendor's first retry comes


DELIVERIES = {
    "generic": Delivery("generic/appointment_scheduled.json"),
    "calcom": Delivery("calcom/booking_created.json", retry_after=timedelta(minutes=5)),
    "calendly": Delivery("calendly/invitee_created.json", retry_after=timedelta(minutes=2)),
    "autotask": Delivery("autotask/ticket_assigned.json", "autotask", retry_after=timedelta(seconds=30)),
    # Two events in one body (the owner and the >Closed status): what "half-queued" is about
    "connectwise": Delivery("connectwise/ticket_completed.json", "connectwise"),
    "halopsa": Delivery("halopsa/appointment_created.json"),
}


@pytest.fixture
def key_server() -> Iterator[KeyServer]:
    with KeyServer() as server:
        yield server


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch, key_server: KeyServer) -> Iterator[Stack]:
    types = {"calendly": {CALENDLY_EVENT_TYPE: "remote_session"}, "halopsa": {"3": "remote_session"}}
    with stack_under_moto(
        monkeypatch, NOW, ConnectWiseKeyHosts=key_server.origin, VendorTypeMap=json.dumps(types)
    ) as built:
        yield built


@pytest.fixture
def faults(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Faults:
    """test_faults' injector on every client the wiring builds from now on, Secrets Manager's included."""
    injector = Faults()
    for name in ("dynamodb_client", "sqs_client", "sesv2_client", "events_client", "secretsmanager_client"):
        factory = getattr(aws, name)
        monkeypatch.setattr(aws, name, lambda factory=factory: injector.attach(factory()))
    wiring.use_clock(stack.clock)  # forget the clients built so far: the next ones carry the hooks
    return injector


# -- the vendor's side ---------------------------------------------------------------------------------------


def body_of(source: str, key_server: KeyServer) -> bytes:
    """The source's sample as the vendor sends it (a ConnectWise callback names our key server)."""
    if source != "connectwise":
        return sample(DELIVERIES[source].sample)
    document = json.loads(sample(DELIVERIES[source].sample))
    document["Metadata"]["key_url"] = f"{key_server.origin}/callbackkey?id=7f3a"
    return json.dumps(document).encode()


def signed(source: str, body: bytes, at: datetime) -> dict[str, str]:
    """The headers the vendor signs ``body`` with at ``at`` (only the t= schemes change with the time)."""
    if source == "connectwise":
        return {"x-content-signature": connectwise_signature(SIGNING_KEY, body)}
    return signature_headers(source, SECRETS[source], body, at)


def deliver(stack: Stack, source: str, body: bytes, headers: dict[str, str]) -> int:
    status: int = stack.post(source, body, headers)["statusCode"]
    return status


def expected_deliveries(source: str, body: bytes) -> set[str]:
    """The delivery ids the source reads from ``body``: what must each be in a history exactly once."""
    events = wiring.webhook_ingress().sources[source].parse(WebhookRequest(headers={}, body=body))
    assert events, f"the {source} sample makes no event"
    return {event.delivery_id for event in events}


def book_the_ticket(stack: Stack, system: str) -> None:
    """An appointment next week against the sample's PSA ticket, booked through the generic source."""
    document = json.loads(sample("generic/appointment_scheduled.json"))
    document.update(event_id="evt-ticket-booking", occurred_at="2026-11-22T08:00:00Z")
    document["appointment"].update(
        external_id="stf-ticket",
        start="2026-11-30T15:00:00Z",
        end="2026-11-30T15:30:00Z",
        ticket={"system": system, "id": TICKET, "number": "T-1"},
    )
    assert stack.post_generic(json.dumps(document).encode())["statusCode"] == 202
    stack.drain()


def given_what_the_delivery_applies_to(stack: Stack, source: str) -> None:
    if (system := DELIVERIES[source].ticket_system) is not None:
        book_the_ticket(stack, system)


def applied(deliveries: set[str]) -> Counter[str]:
    """How many history entries, over every appointment, name each of ``deliveries``."""
    seen: Counter[str] = Counter()
    for item in items("appointment"):
        seen += delivery_ids(wiring.store().load(item["PK"]["S"].removeprefix("APPT#")))
    return Counter({delivery: seen[delivery] for delivery in deliveries})


def table() -> list[str]:
    """The table's items, comparable before and after."""
    client = boto3.client("dynamodb", region_name="us-east-1")
    found: list[str] = []
    for page in client.get_paginator("scan").paginate(TableName="AppointmentsTable"):
        found += [json.dumps(item, sort_keys=True) for item in page["Items"]]
    return sorted(found)


def peek(stack: Stack) -> int:
    """How many messages are queued, looked at and left visible for the processor."""
    messages = stack.queued()
    for message in messages:
        stack.sqs.change_message_visibility(
            QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    return len(messages)


def error_code(response: dict[str, Any]) -> str:
    document = json.loads(response["body"])
    assert set(document) == {"error", "request_id"}, document
    return str(document["error"]["code"])


# -- (a) no refusal is ever a 410 or a 3xx ---------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    kind: str
    status: int
    code: str
    make: Callable[[str, bytes, KeyServer], tuple[str, bytes, dict[str, str]]]  # (path source, body, headers)


def _unsigned(source: str, body: bytes, _: KeyServer) -> tuple[str, bytes, dict[str, str]]:
    return source, body, {}


def _wrong_secret(source: str, body: bytes, _: KeyServer) -> tuple[str, bytes, dict[str, str]]:
    if source == "connectwise":
        return source, body, {"x-content-signature": connectwise_signature("forged", body)}
    secret = "halo-webhook:guessed" if source == "halopsa" else "guessed"
    return source, body, signature_headers(source, secret, body, NOW)


def _tampered(source: str, body: bytes, _: KeyServer) -> tuple[str, bytes, dict[str, str]]:
    if source == "halopsa":  # Basic auth signs no body: the nearest tampering is credentials cut short
        return source, body, {"Authorization": "Basic"}
    return source, one_byte_changed(body), signed(source, body, NOW)


def _signed_as_is(payload: bytes) -> Callable[[str, bytes, KeyServer], tuple[str, bytes, dict[str, str]]]:
    def make(source: str, _: bytes, key_server: KeyServer) -> tuple[str, bytes, dict[str, str]]:
        if source == "connectwise":
            # ConnectWise's key URL is in the body: a body that is not a callback cannot be verified at all
            return source, payload, {"x-content-signature": connectwise_signature(SIGNING_KEY, payload)}
        return source, payload, signed(source, payload, NOW)

    return make


def _too_large(source: str, body: bytes, _: KeyServer) -> tuple[str, bytes, dict[str, str]]:
    large = body + b" " * (MAX_BODY_BYTES + 1 - len(body))
    return source, large, signed(source, large, NOW)


def _misspelt_source(source: str, body: bytes, _: KeyServer) -> tuple[str, bytes, dict[str, str]]:
    return source.upper() + "-v2", body, signed(source, body, NOW)


REFUSALS = [
    Refusal("unsigned", 401, "unauthorized", _unsigned),
    Refusal("wrong-secret", 401, "unauthorized", _wrong_secret),
    Refusal("tampered", 401, "unauthorized", _tampered),
    Refusal("too-large", 413, "payload_too_large", _too_large),
    Refusal("unknown-source", 404, "unknown_source", _misspelt_source),
]
# JSON the sources cannot read: ConnectWise must read its key URL from the body before the signature can be
# checked, so for it these are refused as unverifiable (401); every other source verifies first, then reads.
UNREADABLE = [
    ("not-json", b"not json", 400, "malformed_payload"),
    ("not-utf-8", b"\xff\xfe{}", 400, "malformed_payload"),
    ("empty", b"", 400, "malformed_payload"),
]


def _refusal_cases() -> list[Any]:
    cases = [pytest.param(source, refusal, id=f"{source}-{refusal.kind}") for source in SOURCES for refusal in REFUSALS]
    for source in SOURCES:
        for kind, payload, status, code in UNREADABLE:
            refusal = Refusal(kind, status, code, _signed_as_is(payload))
            if source == "connectwise":
                refusal = Refusal(kind, 401, "unauthorized", _signed_as_is(payload))
            cases.append(pytest.param(source, refusal, id=f"{source}-{kind}"))
    return cases


def is_text(body: bytes) -> bool:
    try:
        body.decode()
    except UnicodeDecodeError:
        return False
    return True


def assert_a_refusal_a_vendor_keeps_its_subscription_through(response: dict[str, Any]) -> None:
    status = response["statusCode"]
    assert not 300 <= status < 400, f"a {status} sends the vendor elsewhere (Autotask and Calendly count it failed)"
    assert status != 410, "410 Gone makes Calendly delete the subscription at once"
    assert 400 <= status < 500, f"{status} is not a refusal: the vendor would retry what cannot succeed"
    assert "Location" not in (response.get("headers") or {})


@pytest.mark.parametrize(("source", "refusal"), _refusal_cases())
def test_a_refusal_of_any_kind_from_any_source_is_a_4xx_other_than_410_and_changes_nothing(
    stack: Stack, key_server: KeyServer, source: str, refusal: Refusal
) -> None:
    """Calendly: a 410 deletes the subscription at once; Autotask and Calendly count a 3xx as a failure.

    What a retry cannot fix (a bad signature, a body we cannot read, one too large, a source we do not take)
    is a 4xx that names the problem, never 410 nor a redirect; nothing is queued or stored."""
    # Given the vendor's sample, made into a request we must refuse
    path_source, body, headers = refusal.make(source, body_of(source, key_server), key_server)
    # When the vendor posts it (bytes that are not text reach the function base64-encoded, as API Gateway sends them)
    response = stack.post(path_source, body, headers, base64_body=not is_text(body))
    # Then it is the refusal's own 4xx, never 410 or 3xx, and nothing is queued or stored
    assert_a_refusal_a_vendor_keeps_its_subscription_through(response)
    assert (response["statusCode"], error_code(response)) == (refusal.status, refusal.code), response["body"]
    assert stack.queued() == []
    assert stack.table_items() == []


@pytest.mark.parametrize("source", TIMESTAMPED)
@pytest.mark.parametrize("skew", [timedelta(minutes=-6), timedelta(minutes=6), timedelta(hours=-24)])
def test_a_replay_outside_the_tolerance_is_401_never_410(stack: Stack, source: str, skew: timedelta) -> None:
    """Calendly: a 410 deletes the subscription; a replayed or far-future t= is a 401 (Calendly retries it,
    re-signed), and a 24-hour-old signature is refused the same way, never as "gone"."""
    # Given a signed delivery whose signature is from outside the tolerance (either side)
    body = sample(DELIVERIES[source].sample)
    headers = signed(source, body, NOW + skew)
    # When it is posted
    response = stack.post(source, body, headers)
    # Then it is refused as unauthenticated, and nothing is queued
    assert_a_refusal_a_vendor_keeps_its_subscription_through(response)
    assert (response["statusCode"], error_code(response)) == (401, "unauthorized")
    assert stack.queued() == []


@pytest.mark.parametrize("key_server_answer", [302, 307, 404, 410])
def test_a_connectwise_key_server_answering_a_redirect_or_gone_is_never_passed_on_to_the_vendor(
    stack: Stack, key_server: KeyServer, key_server_answer: int
) -> None:
    """Calendly's 410 and everyone's 3xx rule, for the one request the ingress itself makes: ConnectWise's key
    server answering a redirect or 410 is our refusal (401), not an answer relayed to the sender."""
    # Given ConnectWise's key server answering a redirect or "gone"
    key_server.status = key_server_answer
    body = body_of("connectwise", key_server)
    # When a callback naming it arrives
    response = stack.post("connectwise", body, signed("connectwise", body, NOW))
    # Then the callback is refused as unverifiable, and the key server was asked once, not followed
    assert_a_refusal_a_vendor_keeps_its_subscription_through(response)
    assert (response["statusCode"], error_code(response)) == (401, "unauthorized")
    assert len(key_server.requests) == 1
    assert stack.queued() == []


# -- (b) a queue failure is 503, and the vendor's retry applies each event once ------------------------------


FAILURES: list[tuple[str, str, Inject]] = [
    ("queue-down", "SendMessageBatch", aws_error("AWS.SimpleQueueService.ServiceUnavailable", 503)),
    ("queue-throttled", "SendMessageBatch", aws_error("RequestThrottled", 403)),
    ("secret-unreadable", "GetSecretValue", aws_error("InternalServiceError", 500)),
]


@pytest.mark.parametrize(("failure", "operation", "fault"), FAILURES, ids=[f[0] for f in FAILURES])
@pytest.mark.parametrize("source", SOURCES)
def test_a_delivery_that_cannot_be_queued_is_503_and_the_vendors_retry_applies_each_event_once(
    stack: Stack, key_server: KeyServer, faults: Faults, source: str, failure: str, operation: str, fault: Inject
) -> None:
    """Every vendor retries a 5xx (Autotask after 30 s, Calendly for 24 h, Cal.com 3 times): a delivery we could
    not queue must be a 503, leave nothing behind, and its retry (same body, re-signed if the scheme has a time)
    must be taken and applied once; a later redelivery of it (an ack lost) is a 2xx again and changes nothing."""
    # Given what the delivery applies to, and the queue (or the signing secret) failing the next request
    given_what_the_delivery_applies_to(stack, source)
    before = table()
    wiring.use_clock(stack.clock)  # a cold function: the secret not cached yet
    rule = faults.on(operation, fault, calls={1})
    body = body_of(source, key_server)
    expected = expected_deliveries(source, body)
    # When the vendor delivers
    response = stack.post(source, body, signed(source, body, stack.clock.now()))
    # Then it is told 503 (retry), and nothing is queued or stored
    assert rule.hits == 1
    assert response["statusCode"] == 503, response["body"]
    assert error_code(response) in {"queue_unavailable", "secrets_unavailable"}
    assert stack.queued() == []
    assert table() == before
    # When the vendor retries on its schedule, with the same body
    stack.clock.advance(DELIVERIES[source].retry_after)
    assert deliver(stack, source, body, signed(source, body, stack.clock.now())) == 202
    stack.drain()
    # Then each event of the body is in a history once
    assert applied(expected) == Counter(dict.fromkeys(expected, 1))
    after_retry = table()
    # When the vendor, its ack lost, delivers it once more after the SQS deduplication window
    stack.clock.advance(timedelta(minutes=6))
    assert deliver(stack, source, body, signed(source, body, stack.clock.now())) == 202
    stack.drain()
    # Then nothing changes
    assert table() == after_retry


def _fails_every_entry(params: dict[str, Any]) -> Any:
    """SQS answering 200 with every entry of the batch failed: what ``SendMessageBatch`` may answer."""
    parsed = {
        "Successful": [],
        "Failed": [
            {"Id": entry["Id"], "SenderFault": False, "Code": "InternalError", "Message": "injected"}
            for entry in params["Entries"]
        ],
        "ResponseMetadata": {"HTTPStatusCode": 200},
    }
    return aws_error("unused")(params)[0], parsed


def test_a_deliverys_events_about_one_ticket_are_queued_all_or_nothing(
    stack: Stack, key_server: KeyServer, faults: Faults
) -> None:
    """Answer 2xx only when every event of the body is queued, and never apply half of one: ConnectWise's
    callback of a ticket closed with its owner (two events about one ticket) travels as one message, so an
    entry SQS fails is a 503 with nothing applied, and the retry applies both, each once. (SQS batches are
    not atomic: as two messages, the first could be applied while the vendor, told 503, gives up.)"""
    # Given an appointment against ConnectWise ticket 48213, and SQS failing the batch's entries once
    book_the_ticket(stack, "connectwise")
    faults.on("SendMessageBatch", _fails_every_entry, calls={1})
    body = body_of("connectwise", key_server)
    expected = expected_deliveries("connectwise", body)
    assigned, completed = sorted(expected)  # "...#ticket.assigned" < "...#ticket.completed"
    # When ConnectWise delivers the callback
    response = stack.post("connectwise", body, signed("connectwise", body, NOW))
    # Then it is told 503 and nothing of it is queued or applied
    assert response["statusCode"] == 503, response["body"]
    assert error_code(response) == "queue_unavailable"
    assert peek(stack) == 0
    stack.drain()
    assert applied(expected) == Counter({assigned: 0, completed: 0})
    # When ConnectWise retries the whole callback
    stack.clock.advance(timedelta(minutes=1))
    assert deliver(stack, "connectwise", body, signed("connectwise", body, stack.clock.now())) == 202
    # Then one message carries both events, and both are applied, each once, in the callback's order
    assert peek(stack) == 1
    stack.drain()
    assert applied(expected) == Counter({assigned: 1, completed: 1})


# -- (c) Autotask: 5 attempts in 2 minutes ---------------------------------------------------------------------


def test_an_autotask_callout_failing_four_times_is_applied_once_by_its_fifth_attempt(
    stack: Stack, faults: Faults
) -> None:
    """Autotask resends a failed callout after 30 s and drops it after 5 attempts within 2 minutes: with the
    queue down for the first four, the fifth is taken, and the ticket's change is applied once."""
    # Given an appointment against Autotask ticket 48213, and the queue down for four sends
    stack.clock.set(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
    book_the_ticket(stack, "autotask")
    appointment_id = wiring.store().find_by_external_ref(ExternalRef(system="generic", id="stf-ticket"))
    assert appointment_id is not None
    rule = faults.on(
        "SendMessageBatch", aws_error("AWS.SimpleQueueService.ServiceUnavailable", 503), calls={1, 2, 3, 4}
    )
    # When Autotask sends its callout (signed once: Autotask's signature has no time) at 0, 30, 60, 90, 120 s
    body = sample("autotask/ticket_assigned.json")
    headers = signed("autotask", body, NOW)
    first = datetime(2026, 11, 23, 9, 12, 31, tzinfo=UTC)
    statuses = []
    for attempt in range(5):
        stack.clock.set(first + timedelta(seconds=30 * attempt))
        statuses.append(deliver(stack, "autotask", body, headers))
    stack.drain()
    # Then the first four were 503, the fifth 202, within Autotask's two minutes
    assert rule.hits == 4
    assert statuses == [503, 503, 503, 503, 202]
    assert stack.clock.now() - first <= timedelta(minutes=2)
    # And the appointment changed once: one reassignment, to the ticket's new resource
    record = wiring.store().load(appointment_id)
    assert [t.id for t in record.appointment.technicians] == ["29682885"]
    assert [e.action for e in record.history] == [Action.CREATE, Action.REASSIGN]
    assert record.appointment.version == 2


# -- (d) Calendly: a redelivery 24 h later --------------------------------------------------------------------


def test_a_calendly_event_redelivered_24_hours_later_is_accepted_and_changes_nothing(stack: Stack) -> None:
    """Calendly retries for 24 h, and deletes a subscription answered 410: an event we already applied, delivered
    again a day later (re-signed, so inside the tolerance), is a 202 (not 409, not 410) and changes nothing."""
    # Given a Calendly booking delivered and applied
    body = sample("calendly/invitee_created.json")
    assert deliver(stack, "calendly", body, signed("calendly", body, NOW)) == 202
    stack.drain()
    before = table()
    # When Calendly delivers the same event again 24 hours later, signed then
    stack.clock.advance(timedelta(hours=24))
    response = stack.post("calendly", body, signed("calendly", body, stack.clock.now()))
    # Then it is accepted as the first delivery was, and it reaches the processor (SQS's 5 minutes are long past)
    assert response["statusCode"] == 202, response["body"]
    assert json.loads(response["body"]) == {"accepted": True, "source": "calendly", "events": 1}
    assert peek(stack) == 1
    # And applying it changes nothing: no history entry, no mail, no new version
    stack.drain()
    assert table() == before


# -- (e) the ack does no downstream work ------------------------------------------------------------------------


class AwsCalls:
    """Every AWS operation, in order, of every client made after ``watch`` (a botocore before-call hook)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, event_name: str, **_: Any) -> None:
        self.calls.append(event_name.removeprefix("before-call."))

    def take(self) -> list[str]:
        taken, self.calls = self.calls, []
        return taken


@pytest.fixture
def aws_calls(stack: Stack) -> Iterator[AwsCalls]:
    session = boto3.DEFAULT_SESSION
    assert session is not None  # the stack made its clients through it
    recorder = AwsCalls()
    session.events.register("before-call", recorder)
    wiring.use_clock(stack.clock)  # forget the clients built so far: the next ones carry the hook
    try:
        yield recorder
    finally:
        session.events.unregister("before-call", recorder)


@pytest.mark.parametrize("source", SOURCES)
def test_the_ack_reads_the_secret_once_and_queues_and_touches_nothing_downstream(
    stack: Stack, key_server: KeyServer, aws_calls: AwsCalls, source: str
) -> None:
    """Autotask gives up after 10 s (our function's timeout is 8 s): the ack verifies and queues, nothing more.
    A cold request reads the signing secrets, then sends one batch; a warm one only sends; a refusal only
    reads the secret; nothing on the request path touches DynamoDB, SES, EventBridge or the Scheduler."""
    body = body_of(source, key_server)
    # When a cold function takes a delivery, then a warm one another, then a badly signed one
    assert deliver(stack, source, body, signed(source, body, NOW)) == 202
    cold = aws_calls.take()
    assert deliver(stack, source, body, signed(source, body, NOW)) == 202
    warm = aws_calls.take()
    tampered = one_byte_changed(body) if source != "halopsa" else body
    refused_headers = signed(source, body, NOW) if source != "halopsa" else {"Authorization": "Basic bm9ib2R5Og=="}
    assert deliver(stack, source, tampered, refused_headers) == 401
    refused = aws_calls.take()
    # Then: the secret first, then the queue; then the queue alone; then nothing after the cached secret
    assert cold == ["secrets-manager.GetSecretValue", "sqs.SendMessageBatch"]
    assert warm == ["sqs.SendMessageBatch"]
    assert refused == []
    # And ConnectWise's key is fetched once (on the request path: its 2 s + 3 s timeouts fit Autotask's 10 s)
    assert len(key_server.requests) == (1 if source == "connectwise" else 0)


def test_a_refusal_before_the_signature_makes_no_aws_call_at_all(stack: Stack, aws_calls: AwsCalls) -> None:
    """The same 10 s rule at its cheapest: an unknown source or an oversized body is refused before the secret."""
    body = sample("generic/appointment_scheduled.json")
    assert deliver(stack, "acuity", body, signed("generic", body, NOW)) == 404
    assert deliver(stack, "generic", b" " * (MAX_BODY_BYTES + 1), {}) == 413
    assert aws_calls.take() == []


# -- the silent-source alarm counts what we accepted ----------------------------------------------------------


def webhooks_counted(output: str) -> Counter[str]:
    """The ``Webhooks`` datapoints, by source, in the EMF lines the functions printed."""
    counted: Counter[str] = Counter()
    for line in output.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            if any(metric["Name"] == "Webhooks" for metric in directive["Metrics"]):
                value = document["Webhooks"]  # a list when one document holds several datapoints
                counted[document["source"]] += int(sum(value) if isinstance(value, list) else value)
    return counted


@pytest.mark.parametrize("source", SOURCES)
def test_only_an_accepted_delivery_counts_toward_the_silent_source_alarm(
    stack: Stack, key_server: KeyServer, faults: Faults, capsys: pytest.CaptureFixture[str], source: str
) -> None:
    """Autotask disables a callout after 25 failures, Calendly a subscription after 24 h of them: neither tells
    us. Only a delivery we accepted counts in ``Webhooks`` (what each "webhook source silent" alarm watches),
    so a vendor we fail or refuse looks silent from its first failure, and stays so once it has given up."""
    body = body_of(source, key_server)
    faults.on("SendMessageBatch", aws_error("AWS.SimpleQueueService.ServiceUnavailable", 503), calls={1})
    capsys.readouterr()
    # When one delivery fails on the queue and one is refused
    assert deliver(stack, source, body, signed(source, body, NOW)) == 503
    assert deliver(stack, source, body, {}) == 401
    # Then neither counts
    assert webhooks_counted(capsys.readouterr().out) == Counter()
    # When the next is accepted
    assert deliver(stack, source, body, signed(source, body, NOW)) == 202
    # Then it counts once, for its source
    assert webhooks_counted(capsys.readouterr().out) == Counter({source: 1})


def test_a_signed_autotask_deactivation_notice_alarms_and_is_not_counted_as_a_delivery(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    """Autotask disables a callout after 25 consecutive failures and posts ``Action: Deactivated`` to its
    DeactivationUrl: the one direct sign that it gave up. With that URL set to ours, the notice is acknowledged,
    changes nothing, counts in ``WebhookSubscriptionsEnded`` (the alarm) and not in ``Webhooks``, so the
    silent-source alarm is not put off by the very notice."""
    # Given Autotask's deactivation notice, signed with the callout's secret
    body = sample("autotask/ticket_deactivated.json")
    before = table()
    capsys.readouterr()
    # When Autotask posts it
    assert deliver(stack, "autotask", body, signed("autotask", body, NOW)) == 202
    # Then it does not count as a delivery of the source, it counts as a subscription ended, and nothing changed
    printed = capsys.readouterr().out
    assert webhooks_counted(printed) == Counter()
    ended = [json.loads(line) for line in printed.splitlines() if '"WebhookSubscriptionsEnded"' in line]
    assert [document["WebhookSubscriptionsEnded"] for document in ended if "_aws" in document] == [[1.0]]
    assert stack.queued() == [] and table() == before
