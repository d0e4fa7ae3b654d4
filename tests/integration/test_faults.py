"""Fault injection (issue 18, item 3): the real handlers, services and adapters under moto, with AWS failing.

Faults are injected into the boto3 clients the wiring builds (``appointments.adapters.aws``'s factories are
wrapped so that every new client carries the hooks of ``Faults``): a hook on botocore's ``before-call`` event
answers chosen calls with an AWS error (the SDK's own retries already spent: ``before-call`` comes after
them), raises, or runs another actor first (a race); a hook on ``after-call`` fails a call after AWS did it
(a lost response, a crash after SES took a mail). Nothing of the product is mocked; the PSA is the fake PSA
of the local runner (``localdev/fake_psa.py``) on 127.0.0.1, down for an hour of the stack's clock.

What Lambda does around the functions is done here as the template configures it: the SQS event source
mapping (a failed record goes back to the queue, a killed invocation returns the whole batch), the stream's
(``ReportBatchItemFailures``: retried from the first failed record; a killed invocation retries the whole
batch), EventBridge's asynchronous invoke (two retries, then the dead-letter queue, redriven later).

Every scenario runs several times (the fault at another position, another count, another error) and counts,
per fault: runs, lost, duplicated, and duplicated within the documented SES send-then-mark window. The table
is printed at the end of the module (``-s``) and is in docs/reliability.md ("Fault injection"):

    .venv/bin/python -m pytest tests/integration/test_faults.py -s -q
"""

from __future__ import annotations

import json
import random
import warnings
from collections import Counter
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

from appointments import wiring
from appointments.adapters import aws
from appointments.adapters.psa_clients import psa_clients
from appointments.adapters.ses_mailer import untag
from appointments.domain.events import CanonicalEvent
from appointments.domain.history import Action, Record
from appointments.domain.model import ExternalRef, Status
from appointments.domain.outbox import MailKind, MailStatus
from appointments.ports import AppointmentRecord
from appointments.services.psa_writeback import PsaWriteback, PsaWritebackFailed, WritebackSettings, Written
from localdev.fake_psa import FakePsa, fake_psa_credentials, serve
from localdev.fake_timezest import Fault
from localdev.lambdas import LambdaContext
from localdev.resources import REGION
from localdev.runner import scheduled_event
from tests.integration.conftest import TABLE
from tests.integration.stack import Stack, stack_under_moto
from tests.integration.test_outbox_relay import Bus, TableStream
from tests.signing import sample

NOW = datetime(2026, 11, 23, 10, 0, 30, tzinfo=UTC)  # Monday; the generic samples happen this morning
RUNS = 5
OPS_MAIL = "ops@msp.example"


# -- the tally: one row per fault ---------------------------------------------------------------------


@dataclass
class Row:
    runs: int = 0
    lost: int = 0
    duplicated: int = 0
    duplicated_in_window: int = 0  # the SES send-then-mark window (docs/reliability.md), counted apart


TALLY: dict[str, Row] = {}
FAULTS = {
    "1": "DynamoDB throttling on the processor's commit",
    "2": "conditional failure race: ops action vs webhook",
    "3": "SQS send failure in webhook ingress",
    "4a": "SES throttling, then success",
    "4b": "SES rejection",
    "5": "EventBridge PutEvents failure",
    "5b": "PutEvents failure, then the published mark throttled",
    "6": "PSA API down for an hour",
    "7": "processor crash mid-batch",
    "8": "sweep killed half-way",
    "9": "relay crash between SES send and mark",
}


def tally(fault: str, *, lost: int, duplicated: int, in_window: int = 0) -> None:
    row = TALLY.setdefault(fault, Row())
    row.runs += 1
    row.lost += lost
    row.duplicated += duplicated
    row.duplicated_in_window += in_window


def table() -> str:
    lines = [
        "| # | fault | runs | lost | duplicated | duplicated within the SES window |",
        "|---|---|---|---|---|---|",
    ]
    for key, name in FAULTS.items():
        if (row := TALLY.get(key)) is not None:
            lines.append(
                f"| {key} | {name} | {row.runs} | {row.lost} | {row.duplicated} | {row.duplicated_in_window} |"
            )
    return "\n".join(lines)


@pytest.fixture(scope="module", autouse=True)
def print_table() -> Iterator[None]:
    yield
    if TALLY:
        print("\n\nFault injection (tests/integration/test_faults.py)\n" + table())


def counted(observed: Counter[Any], expected: set[Any]) -> tuple[int, int]:
    """(lost, duplicated): what was expected and never seen, and every sighting beyond the first."""
    lost = sum(1 for key in expected if observed[key] == 0)
    duplicated = sum(max(0, n - 1) for n in observed.values())
    return lost, duplicated


# -- the injector ---------------------------------------------------------------------------------------


class LambdaKilled(BaseException):
    """The invocation dies (timeout, out of memory): nothing after it runs, no handler catches it."""


Inject = Callable[[dict[str, Any]], Any]


@dataclass
class Rule:
    operation: str
    action: Inject  # gets the call's parameters; returns an (http, parsed) answer, None to go on, or raises
    calls: Container[int] | None  # which of the matching calls (1-based) it hits; None: every one
    when: Callable[[dict[str, Any]], bool] | None = None
    seen: int = 0
    hits: int = 0


@dataclass
class Faults:
    """Hooks on every client the wiring builds from now on; ``sent`` counts the mails SES took, per mail."""

    before: list[Rule] = field(default_factory=list)
    after: list[Rule] = field(default_factory=list)
    sent: Counter[tuple[str, str]] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # "<operation>:<error code>" of every failed call
    _params: list[dict[str, Any]] = field(default_factory=list)
    _send_tags: list[list[dict[str, str]]] = field(default_factory=list)

    def on(self, operation: str, action: Inject, *, calls: Container[int] | None = None, **kw: Any) -> Rule:
        rule = Rule(operation, action, calls, **kw)
        self.before.append(rule)
        return rule

    def after_call(self, operation: str, action: Inject, *, calls: Container[int] | None = None, **kw: Any) -> Rule:
        rule = Rule(operation, action, calls, **kw)
        self.after.append(rule)
        return rule

    def clear(self) -> None:
        self.before.clear()
        self.after.clear()

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-parameter-build.*.*", self._build)
        client.meta.events.register("before-call.*.*", self._before)
        client.meta.events.register("after-call.*.*", self._after)
        return client

    def _build(self, params: dict[str, Any], **_: Any) -> None:
        self._params.append(params)

    def _before(self, model: Any, **_: Any) -> Any:
        params = self._params.pop() if self._params else {}
        if model.name == "SendEmail":
            self._send_tags.append(params.get("EmailTags", []))
        for rule in list(self.before):
            if (answer := _fire(rule, model.name, params)) is not None:
                return answer
        return None

    def _after(self, model: Any, http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
        if model.name == "SendEmail":
            tags = {t["Name"]: untag(t["Value"]) for t in self._send_tags.pop()}
            if http_response.status_code < 300:
                self.sent[(tags.get("appointment_id", ""), tags.get("mail_key", ""))] += 1
        if http_response.status_code >= 300:
            self.errors[f"{model.name}:{parsed.get('Error', {}).get('Code', '')}"] += 1
        for rule in list(self.after):
            _fire(rule, model.name, parsed)


def _fire(rule: Rule, operation: str, params: dict[str, Any]) -> Any:
    if rule.operation != operation or (rule.when is not None and not rule.when(params)):
        return None
    rule.seen += 1
    if rule.calls is not None and rule.seen not in rule.calls:
        return None
    rule.hits += 1
    return rule.action(params)


def _answer(status: int) -> AWSResponse:
    return AWSResponse("https://injected.invalid", status, HTTPHeaders(), None)


def aws_error(code: str, status: int = 400, **extra: Any) -> Inject:
    """Answer the call with this AWS error, as the service would (botocore raises its ClientError)."""

    def answer(_: dict[str, Any]) -> Any:
        parsed = {
            "Error": {"Code": code, "Message": "injected fault"},
            "ResponseMetadata": {"HTTPStatusCode": status},
            **extra,
        }
        return _answer(status), parsed

    return answer


def kill(_: dict[str, Any]) -> Any:
    raise LambdaKilled


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with stack_under_moto(monkeypatch, NOW, CustomerMailSources="generic") as built:
        yield built


@pytest.fixture
def faults(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Faults:
    injector = Faults()
    for name in ("dynamodb_client", "sqs_client", "sesv2_client", "events_client"):
        factory = getattr(aws, name)
        monkeypatch.setattr(aws, name, lambda factory=factory: injector.attach(factory()))
    wiring.use_clock(stack.clock)  # forget the clients built so far: the next ones carry the hooks
    return injector


# -- Lambda around the functions ------------------------------------------------------------------------


def pump(stack: Stack, *, rounds: int = 30) -> int:
    """The SQS event source mapping until the queue is empty: a failed record (or every record of a killed
    invocation) is visible again at once (the visibility timeout, shortened). How many invocations failed."""
    failures = 0
    for _ in range(rounds):
        messages = stack.queued()
        if not messages:
            return failures
        records = [stack.record_of(m) for m in messages]
        try:
            failed = set(stack.process(records))
        except LambdaKilled:
            failed = {r["messageId"] for r in records}
        failures += bool(failed)
        for message, record in zip(messages, records, strict=True):
            if record["messageId"] in failed:
                stack.sqs.change_message_visibility(
                    QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
            else:
                stack.sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"])
    raise AssertionError("the queue did not drain")


def relay(stack: Stack, records: list[dict[str, Any]], *, retries: int = 10) -> int:
    """The stream's event source mapping: on a partial failure the batch is retried from the first failed
    record; a killed invocation retries it all. How many invocations failed."""
    failures = 0
    while records:
        try:
            response = stack.invoke("OutboxRelayFunction", {"Records": records})
        except LambdaKilled:
            failures += 1
        else:
            failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
            if not failed:
                return failures
            failures += 1
            first = next(n for n, r in enumerate(records) if r["dynamodb"]["SequenceNumber"] == failed[0])
            records = records[first:]
        assert failures <= retries, "the stream record was given up on"
    return failures


def items(kind: str) -> list[dict[str, Any]]:
    client = boto3.client("dynamodb", region_name=REGION)
    found: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=TABLE):
        found += [item for item in page["Items"] if item.get("kind", {}).get("S") == kind]
    return found


def appointment_of(external_id: str) -> str:
    found = wiring.store().find_by_external_ref(ExternalRef(system="generic", id=external_id))
    assert found is not None, f"no appointment holds generic:{external_id}"
    return found


def generic(name: str, **changes: Any) -> bytes:
    document = json.loads(sample(f"generic/{name}.json"))
    document["appointment"].update(changes.pop("appointment", {}))
    document.update(changes)
    return json.dumps(document).encode()


def booking(n: int, *, start: datetime | None = None, technicians: bool = True) -> bytes:
    """A generic booking of its own (stf-f<n>), assigned or not."""
    begin = start or datetime(2026, 11, 24, 15, 0, tzinfo=UTC) + timedelta(hours=n)
    return generic(
        "appointment_scheduled" if technicians else "appointment_scheduled_unassigned",
        event_id=f"evt_f{n}",
        appointment={
            "external_id": f"stf-f{n}",
            "start": begin.isoformat(),
            "end": (begin + timedelta(minutes=30)).isoformat(),
            "ticket": None,
        },
    )


def later_events(n: int) -> list[bytes]:
    """A reschedule and an assignment of stf-f<n>, after its booking."""
    moved = datetime(2026, 11, 25, 15, 0, tzinfo=UTC) + timedelta(hours=n)
    return [
        generic(
            "appointment_rescheduled",
            event_id=f"evt_f{n}_r",
            appointment={
                "external_id": f"stf-f{n}",
                "start": moved.isoformat(),
                "end": (moved + timedelta(minutes=30)).isoformat(),
            },
        ),
        generic(
            "appointment_assigned",
            event_id=f"evt_f{n}_a",
            occurred_at="2026-11-23T11:45:00Z",
            appointment={"external_id": f"stf-f{n}", "technicians": [{"id": f"t-{n}", "name": f"Tech {n}"}]},
        ),
    ]


def delivery_ids(record: AppointmentRecord) -> Counter[str]:
    return Counter(str(entry.detail["delivery_id"]) for entry in record.history if "delivery_id" in entry.detail)


def applied_once(external_ids: list[str], deliveries: dict[str, set[str]]) -> tuple[int, int]:
    """(lost, duplicated) over the history entries of each appointment's deliveries."""
    lost = duplicated = 0
    for external_id in external_ids:
        seen = delivery_ids(wiring.store().load(appointment_of(external_id)))
        more_lost, more_duplicated = counted(seen, deliveries[external_id])
        lost, duplicated = lost + more_lost, duplicated + more_duplicated
    return lost, duplicated


# -- 1. DynamoDB throttling on the processor's commit -------------------------------------------------------


@pytest.mark.parametrize("run", range(RUNS))
def test_1_a_throttled_commit_fails_the_record_and_its_retry_applies_it_once(
    stack: Stack, faults: Faults, run: int
) -> None:
    # Given three bookings and, for each, a reschedule and an assignment, queued by the ingress
    bodies = {f"stf-f{n}": [booking(n), *later_events(n)] for n in range(3)}
    for posted in bodies.values():
        for body in posted:
            assert stack.post_generic(body)["statusCode"] == 202
    # And DynamoDB throttling the processor's transactions at one to three random positions: the table's
    # capacity exceeded (even runs), or one item of the transaction throttled (odd runs: how DynamoDB says it)
    throttled = set(random.Random(run).sample(range(1, 10), k=1 + run % 3))
    fault = (
        aws_error("ProvisionedThroughputExceededException")
        if run % 2 == 0
        else aws_error("TransactionCanceledException", CancellationReasons=[{"Code": "ThrottlingError"}])
    )
    rule = faults.on("TransactWriteItems", fault, calls=throttled)
    # When the event source mapping runs the processor until the queue is empty
    failures = pump(stack)
    # Then the throttled records failed and were retried
    assert rule.hits == len(throttled) and failures >= 1
    # And each event is in its appointment's history once, and each appointment is where its events lead
    deliveries = {ext: {f"evt_f{ext[5:]}", f"evt_f{ext[5:]}_r", f"evt_f{ext[5:]}_a"} for ext in bodies}
    lost, duplicated = applied_once(list(bodies), deliveries)
    tally("1", lost=lost, duplicated=duplicated)
    assert (lost, duplicated) == (0, 0)
    for n in range(3):
        appointment = wiring.store().get(appointment_of(f"stf-f{n}"))
        assert appointment.start == datetime(2026, 11, 25, 15, 0, tzinfo=UTC) + timedelta(hours=n)
        assert [t.id for t in appointment.technicians] == [f"t-{n}"]
        assert appointment.status is Status.SCHEDULED


# -- 2. A conditional failure race: an ops action and a webhook ---------------------------------------------

RACES: list[tuple[str, str, dict[str, Any], str]] = [
    # (who commits second and so meets the version conflict, the ops action, its body, the vendor's event)
    ("webhook", "notes", {"text": "Customer prefers afternoons."}, "rescheduled"),
    ("ops", "notes", {"text": "Customer prefers afternoons."}, "rescheduled"),
    ("webhook", "contact-attempts", {"outcome": "voicemail"}, "assigned"),
    ("ops", "reassign", {"technicians": [{"id": "t-23", "name": "Alex Kim"}]}, "rescheduled"),
    ("webhook", "hold", {"on": True, "reason": "the right technician"}, "cancelled"),
]


@pytest.mark.parametrize(("second", "action", "body", "vendor_event"), RACES)
def test_2_an_ops_action_and_a_webhook_racing_are_both_applied_once(
    stack: Stack, faults: Faults, second: str, action: str, body: dict[str, Any], vendor_event: str
) -> None:
    # Given a booking (stf-981), applied
    assert stack.post_generic(generic("appointment_scheduled"))["statusCode"] == 202
    pump(stack)
    appointment_id = appointment_of("stf-981")
    webhook = generic(f"appointment_{vendor_event}", appointment={"external_id": "stf-981"})
    delivery = json.loads(webhook)["event_id"]
    assert stack.post_generic(webhook)["statusCode"] == 202

    def ops_first(_: dict[str, Any]) -> None:
        assert stack.ops("POST", f"/appointments/{appointment_id}/{action}", body).status == 200

    def webhook_first(_: dict[str, Any]) -> None:
        # The processor's service itself: a handler run inside another would flush the other's metrics.
        for message in stack.queued():
            wiring.event_processor().apply(CanonicalEvent.model_validate_json(message["Body"]))
            stack.sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"])

    # When the one who commits second read the appointment before the other committed (the other's whole
    # request runs inside the first's commit call, just before it reaches DynamoDB)
    if second == "webhook":
        faults.on("TransactWriteItems", ops_first, calls={1})
        pump(stack)
    else:
        faults.on("TransactWriteItems", webhook_first, calls={1})
        assert stack.ops("POST", f"/appointments/{appointment_id}/{action}", body).status == 200
    # Then the loser met DynamoDB's conditional failure and tried again
    assert faults.errors["TransactWriteItems:TransactionCanceledException"] == 1
    # And both are in the history once: the vendor's event and the dispatcher's action
    record = wiring.store().load(appointment_id)
    ops_entries = [e for e in record.history if e.actor.kind.value == "ops"]
    seen = delivery_ids(record)
    lost = (seen[delivery] == 0) + (len(ops_entries) == 0)
    duplicated = max(0, seen[delivery] - 1) + max(0, len(ops_entries) - 1)
    tally("2", lost=lost, duplicated=duplicated)
    assert (lost, duplicated) == (0, 0)
    assert record.appointment.version == 3
    if vendor_event == "cancelled":
        assert record.appointment.status is Status.CANCELLED


# -- 3. SQS send failure in the webhook ingress --------------------------------------------------------------


def _lost_answer(_: dict[str, Any]) -> Any:
    raise ReadTimeoutError(endpoint_url="https://sqs.us-east-1.amazonaws.com/")


def _partial(_: dict[str, Any]) -> Any:
    parsed = {
        "Successful": [],
        "Failed": [{"Id": "0", "SenderFault": False, "Code": "InternalError", "Message": "injected"}],
        "ResponseMetadata": {"HTTPStatusCode": 200},
    }
    return _answer(200), parsed


SQS_FAULTS: list[tuple[str, Inject, bool]] = [
    # (name, the fault, whether SQS did take the message before the answer was lost)
    ("ServiceUnavailable", aws_error("ServiceUnavailable", 503), False),
    ("RequestThrottled", aws_error("RequestThrottled", 403), False),
    ("KmsThrottled", aws_error("KmsThrottled", 400), False),
    ("one entry failed", _partial, False),
    ("answer lost after SQS took it", _lost_answer, True),
]


@pytest.mark.parametrize(("name", "fault", "taken"), SQS_FAULTS, ids=[f[0] for f in SQS_FAULTS])
def test_3_a_queue_that_fails_answers_503_stores_nothing_and_the_vendors_retry_applies_once(
    stack: Stack, faults: Faults, name: str, fault: Inject, taken: bool
) -> None:
    # Given SQS failing the ingress's send (or taking the message and the answer getting lost)
    if taken:
        faults.after_call("SendMessageBatch", fault, calls={1})
    else:
        faults.on("SendMessageBatch", fault, calls={1})
    body = generic("appointment_scheduled")
    # When the vendor delivers a booking through the handler the template routes it to
    answer = stack.post_generic(body)
    # Then it is told 503, and nothing is stored
    assert answer["statusCode"] == 503, answer
    assert json.loads(answer["body"])["error"]["code"] == "queue_unavailable"
    assert stack.table_items() == []
    queued = stack.queued()
    assert len(queued) == (1 if taken else 0)
    for message in queued:  # looked at, not taken: visible again
        stack.sqs.change_message_visibility(
            QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    # When the vendor retries the delivery
    assert stack.post_generic(body)["statusCode"] == 202
    pump(stack)
    # Then the booking is applied once: one appointment, one create, one confirmation
    record = wiring.store().load(appointment_of("stf-981"))
    lost, duplicated = counted(delivery_ids(record), {"evt_01JDQ3F8ZB6W2Y1N7T5K4M9H2C"})
    duplicated += len(items("appointment")) - 1
    tally("3", lost=lost, duplicated=duplicated)
    assert (lost, duplicated) == (0, 0)
    assert [m.kind for m in record.mails] == [MailKind.CONFIRMATION]


# -- 4. SES throttling, then success; SES rejection ---------------------------------------------------------


def mail_items() -> dict[tuple[str, str], dict[str, Any]]:
    """Every outbox mail in the table, by (appointment id, mail key)."""
    return {(i["PK"]["S"].removeprefix("APPT#"), i["SK"]["S"].removeprefix("MAIL#")): i for i in items("mail")}


def sweep(stack: Stack, at: datetime) -> dict[str, Any]:
    stack.clock.set(at)
    summary: dict[str, Any] = stack.run_schedule()
    return summary


def book(stack: Stack, *bodies: bytes) -> None:
    for body in bodies:
        assert stack.post_generic(body)["statusCode"] == 202
    pump(stack)


@pytest.mark.parametrize("throttled", range(1, RUNS + 1))
def test_4a_a_throttled_mail_is_retried_by_the_sweeps_and_sent_once(
    stack: Stack, faults: Faults, throttled: int
) -> None:
    # Given SES throttling the first ``throttled`` sends
    rule = faults.on("SendEmail", aws_error("TooManyRequestsException", 429), calls=set(range(1, throttled + 1)))
    stream = TableStream(stack)
    # When a booking commits its confirmation and the stream hands it to the relay, and its record is replayed
    book(stack, booking(1))
    records = stream.new_records()
    relay(stack, records)
    relay(stack, records)
    # And scheduled_checks runs every minute for an hour (the retries back off 1, 2, 4, 8, 16 minutes)
    for minute in range(1, 61):
        assert sweep(stack, NOW + timedelta(minutes=minute))["failed"] == 0
        relay(stack, stream.new_records())
    # Then the mail was throttled as many times, then sent once, and nothing was recorded as failed
    assert rule.hits == throttled
    mails = mail_items()
    lost, duplicated = counted(faults.sent, set(mails))
    tally("4a", lost=lost, duplicated=duplicated)
    assert (lost, duplicated) == (0, 0)
    assert {m["status"]["S"] for m in mails.values()} == {MailStatus.SENT}
    record = wiring.store().load(appointment_of("stf-f1"))
    assert Record.MAIL_FAILED not in [e.action for e in record.history]


REJECTIONS = ["confirmation", "confirmation replayed", "reminder by the sweep", "ops reschedule", "ops cancel"]


@pytest.mark.parametrize("which", REJECTIONS)
def test_4b_a_rejected_mail_is_recorded_once_and_ops_alerted_once(stack: Stack, faults: Faults, which: str) -> None:
    # Given SES rejecting every mail to the customer (ops alerts go through)
    def to_customer(params: dict[str, Any]) -> bool:
        return OPS_MAIL not in params.get("Destination", {}).get("ToAddresses", [])

    stream = TableStream(stack)
    start = NOW + timedelta(hours=30)  # tomorrow: its reminder is due in 6 hours
    book(stack, booking(1, start=start))
    appointment_id = appointment_of("stf-f1")
    if which.startswith("confirmation"):
        faults.on("SendEmail", aws_error("MessageRejected"), when=to_customer)
        records = stream.new_records()
        relay(stack, records)
        if which.endswith("replayed"):
            relay(stack, records)
            relay(stack, records)
    else:
        relay(stack, stream.new_records())  # the confirmation goes out
        faults.on("SendEmail", aws_error("MessageRejected"), when=to_customer)
        if which.startswith("reminder"):
            sweep(stack, start - timedelta(hours=24))
        elif which == "ops reschedule":
            moved = {"start": (start + timedelta(days=1)).isoformat()}
            assert stack.ops("POST", f"/appointments/{appointment_id}/reschedule", moved).status == 200
        else:
            assert stack.ops("POST", f"/appointments/{appointment_id}/cancel", {"reason": "r"}).status == 200
    # When the stream hands every new item to the relay, and the sweeps run for the next half hour
    for _ in range(0, 31, 5):
        relay(stack, stream.new_records())
        sweep(stack, stack.clock.now() + timedelta(minutes=5))
    relay(stack, stream.new_records())
    # Then the mail is failed, recorded once in history, and ops were alerted once (and only once mailed)
    record = wiring.store().load(appointment_id)
    failed = [e for e in record.history if e.action is Record.MAIL_FAILED]
    alerts = [m for m in record.mails if m.kind is MailKind.OPS_ALERT and m.context.get("mail")]
    alert_sends = sum(faults.sent[(appointment_id, m.key)] for m in alerts)
    failed_mails = [m for m in record.mails if m.status is MailStatus.FAILED]
    lost = (len(failed) == 0) + (alert_sends == 0)
    duplicated = max(0, len(failed) - 1) + max(0, len(alerts) - 1) + max(0, alert_sends - 1)
    tally("4b", lost=lost, duplicated=duplicated)
    assert (lost, duplicated) == (0, 0)
    assert len(failed_mails) == 1 and failed[0].detail["mail"] == failed_mails[0].key
    assert faults.sent[(appointment_id, failed_mails[0].key)] == 0


# -- 5. EventBridge PutEvents failure ------------------------------------------------------------------------


def _one_entry_refused(_: dict[str, Any]) -> Any:
    parsed = {
        "FailedEntryCount": 1,
        "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "injected"}],
        "ResponseMetadata": {"HTTPStatusCode": 200},
    }
    return _answer(200), parsed


BUS_FAULTS: list[tuple[str, Inject, set[int]]] = [
    ("the first put throttled", aws_error("ThrottlingException"), {1}),
    ("two puts failing", aws_error("InternalException", 500), {2, 3}),
    ("the entry refused", _one_entry_refused, {1}),
    ("every other put refused", _one_entry_refused, {1, 3, 5}),
    ("the last put unavailable", aws_error("ServiceUnavailable", 503), {5}),
]


@pytest.mark.parametrize(("name", "fault", "calls"), BUS_FAULTS, ids=[f[0] for f in BUS_FAULTS])
def test_5_a_refused_publish_retries_the_stream_record_and_publishes_once(
    stack: Stack, faults: Faults, name: str, fault: Inject, calls: set[int]
) -> None:
    # Given two bookings, one rescheduled and reassigned, the other noted: five history entries on the stream
    stream, bus = TableStream(stack), Bus()
    book(stack, booking(1), *later_events(1), booking(2, technicians=False))
    assert stack.ops("POST", f"/appointments/{appointment_of('stf-f2')}/notes", {"text": "n"}).status == 200
    # When the bus fails the chosen PutEvents calls while the relay takes the batch (retried by the mapping)
    rule = faults.on("PutEvents", fault, calls=calls)
    failures = relay(stack, stream.new_records())
    relay(stack, stream.new_records())
    # Then each failure failed the batch from its record on, and every entry reached the subscriber once
    assert rule.hits == len(calls) and failures >= 1
    published = Counter(event["detail"]["event_id"] for event in bus.received())
    history = {f"{i['PK']['S'].removeprefix('APPT#')}/{i['SK']['S']}" for i in items("history")}
    assert len(history) == 5
    lost, duplicated = counted(published, history)
    tally("5", lost=lost, duplicated=duplicated)
    assert (lost, duplicated) == (0, 0)


@pytest.mark.parametrize("k", range(1, 4))
def test_5_a_refused_publish_and_a_throttled_mark_lose_nothing(stack: Stack, faults: Faults, k: int) -> None:
    # Given a booking, rescheduled and reassigned: three history entries on the stream
    stream, bus = TableStream(stack), Bus()
    book(stack, booking(1), *later_events(1))
    # When the bus refuses the k-th put, and DynamoDB throttles the first published mark after a put it took
    faults.on("PutEvents", aws_error("ThrottlingException"), calls={k})
    faults.on(
        "UpdateItem",
        aws_error("ProvisionedThroughputExceededException"),
        calls={1},
        when=lambda params: params.get("UpdateExpression") == "SET published_at = :at",
    )
    relay(stack, stream.new_records())
    # Then every entry reached the subscriber; one the bus took but whose mark failed may come twice (the
    # relay marks after the bus took it: at least once, and consumers deduplicate on event_id)
    published = Counter(event["detail"]["event_id"] for event in bus.received())
    history = {f"{i['PK']['S'].removeprefix('APPT#')}/{i['SK']['S']}" for i in items("history")}
    lost, duplicated = counted(published, history)
    tally("5b", lost=lost, duplicated=0, in_window=duplicated)
    assert lost == 0
    assert duplicated <= 1


# -- 6. A PSA API down for an hour ---------------------------------------------------------------------------


@dataclass
class DownPsa(FakePsa):
    """The fake PSA, answering 503 to everything for ``outage`` of its clock, from its ``ok_first + 1``th request."""

    ok_first: int = 0
    outage: timedelta = timedelta(hours=1)
    down_until: datetime | None = None

    def _next_fault(self, system: str) -> Fault | None:
        if self.ok_first > 0:
            self.ok_first -= 1
            return super()._next_fault(system)
        if self.down_until is None:
            self.down_until = self.clock() + self.outage
        if self.clock() < self.down_until:
            return Fault(status=503)
        return super()._next_fault(system)


TICKET_IDS = {"autotask": "48213", "connectwise": "5120", "halopsa": "771"}
OUTAGES = [("autotask", 0), ("connectwise", 0), ("halopsa", 0), ("autotask", 2), ("connectwise", 1)]


@pytest.mark.parametrize(("system", "ok_first"), OUTAGES)
def test_6_a_psa_down_for_an_hour_is_recorded_and_alerted_once_and_written_once_after(
    stack: Stack, faults: Faults, system: str, ok_first: int
) -> None:
    # Given an assigned booking linked to a ticket of this PSA, marked a no-show by the rules at 15:10
    stream, bus = TableStream(stack), Bus()
    ticket = {"system": system, "id": TICKET_IDS[system], "number": "T-1"}
    book(stack, generic("appointment_scheduled", appointment={"ticket": ticket}))
    appointment_id = appointment_of("stf-981")
    sweep(stack, datetime(2026, 11, 23, 15, 10, tzinfo=UTC))
    relay(stack, stream.new_records())
    [no_show] = [e["detail"] for e in bus.received() if e["detail-type"] == "appointment.no_show"]
    # And the PSA going down (after ``ok_first`` good answers) for an hour of the stack's clock
    clock = stack.clock
    psa = DownPsa(clock=clock.now, ok_first=ok_first)
    with serve(psa) as base_url:
        writeback = PsaWriteback(
            wiring.store(),
            psa_clients(fake_psa_credentials(base_url, psa.credentials), clock),
            clock,
            lambda seconds: clock.set(clock.now() + timedelta(seconds=seconds)),
            WritebackSettings(rules=wiring.settings().writeback_policy(), ops_alert_email=OPS_MAIL),
        )
        # When EventBridge invokes the write-back, and Lambda retries it after one and two more minutes
        for wait in (0, 1, 2):
            clock.advance(timedelta(minutes=wait))
            with pytest.raises(PsaWritebackFailed):
                writeback.handle(no_show)
            relay(stack, stream.new_records())  # the failure's alert goes out
            sweep(stack, clock.now())
        # Then (the event now in the dead-letter queue) the failure is recorded once and ops mailed once
        record = wiring.store().load(appointment_id)
        failures = [e for e in record.history if e.action is Record.PSA_WRITEBACK_FAILED]
        alerts = [
            m for m in record.mails if m.kind is MailKind.OPS_ALERT and m.context.get("event_id") == no_show["event_id"]
        ]
        alerted = sum(faults.sent[(appointment_id, m.key)] for m in alerts)
        # When the PSA is back and the dead-letter queue is redriven (twice: a redrive can repeat)
        clock.advance(timedelta(hours=1))
        assert writeback.handle(no_show) is Written.WRITTEN
        assert writeback.handle(no_show) is Written.ALREADY
        relay(stack, stream.new_records())
    # Then the ticket has the NO-SHOW status and one note naming the event, recorded once as written
    written = [e for e in wiring.store().load(appointment_id).history if e.action is Record.PSA_WRITTEN]
    found = psa.ticket(system, TICKET_IDS[system])
    notes = [n for n in (found.notes if found else []) if no_show["event_id"] in n.text]
    lost = (len(failures) == 0) + (alerted == 0) + (len(notes) == 0) + (len(written) == 0)
    duplicated = sum(max(0, n - 1) for n in (len(failures), len(alerts), alerted, len(notes), len(written)))
    tally("6", lost=lost, duplicated=duplicated)
    assert (lost, duplicated) == (0, 0), (failures, alerts, alerted, notes, written)
    status = wiring.settings().writeback_policy().statuses.get("no_show", {}).get(system)
    assert found is not None and (status is None or found.status == status)


# -- 7. A processor crash mid-batch --------------------------------------------------------------------------


def _connection_lost(_: dict[str, Any]) -> Any:
    raise EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com/")


@pytest.mark.parametrize("k", range(RUNS))
def test_7_a_processor_crashing_after_k_records_leaves_the_rest_to_the_redelivery_which_applies_them_once(
    stack: Stack, faults: Faults, k: int
) -> None:
    # Given one batch of six events: three bookings and, for each, a reschedule
    bodies = {f"stf-f{n}": [booking(n), later_events(n)[0]] for n in range(3)}
    for posted in bodies.values():
        for body in posted:
            assert stack.post_generic(body)["statusCode"] == 202
    # When the processor fails at record k + 1: its connection to DynamoDB lost (an exception: a partial batch
    # failure), or the invocation killed there (a timeout: the whole batch comes back)
    crash = _connection_lost if k % 2 == 0 else kill
    rule = faults.on("TransactWriteItems", crash, calls={k + 1})
    failures = pump(stack)
    # Then the batch failed once, and the redelivery applied what was left, each event once
    assert rule.hits == 1 and failures == 1
    deliveries = {ext: {f"evt_f{ext[5:]}", f"evt_f{ext[5:]}_r"} for ext in bodies}
    lost, duplicated = applied_once(list(bodies), deliveries)
    tally("7", lost=lost, duplicated=duplicated)
    assert (lost, duplicated) == (0, 0)
    for n in range(3):
        appointment = wiring.store().get(appointment_of(f"stf-f{n}"))
        assert appointment.start == datetime(2026, 11, 25, 15, 0, tzinfo=UTC) + timedelta(hours=n)
        assert appointment.version == 2


# -- 8. A sweep killed half-way ------------------------------------------------------------------------------


class RunningOut:
    """Lambda's context whose time left runs out after ``calls`` looks (a long sweep, a slow table)."""

    def __init__(self, function: str, calls: int) -> None:
        self._real = LambdaContext(function, timeout_seconds=55)
        self._calls = calls

    def get_remaining_time_in_millis(self) -> int:
        self._calls -= 1
        return 40_000 if self._calls >= 0 else 5_000

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@pytest.mark.parametrize("k", range(1, RUNS + 1))
def test_8_a_sweep_stopped_half_way_is_finished_by_the_next_and_each_notice_goes_once(
    stack: Stack, faults: Faults, k: int
) -> None:
    # Given six unassigned bookings starting 18:00 to 18:50: their pre-notices all due by 15:55
    stream = TableStream(stack)
    starts = [datetime(2026, 11, 23, 18, 10 * n, tzinfo=UTC) for n in range(6)]
    book(stack, *[booking(n, start=start, technicians=False) for n, start in enumerate(starts)])
    relay(stack, stream.new_records())
    at = datetime(2026, 11, 23, 15, 55, tzinfo=UTC)
    stack.clock.set(at)
    # When the minute's sweep is stopped after about k appointments: its time running out (odd k), or the
    # invocation killed in the middle of its (k + 1)th transaction (even k)
    schedule = scheduled_event(stack.specs["ScheduledChecksFunction"].schedules[0], at)
    handler = stack.handlers["ScheduledChecksFunction"]
    if k % 2:
        summary = handler(schedule, RunningOut("ScheduledChecksFunction", calls=k + 1))
        assert summary["stopped_early"] and sum(summary["applied"].values()) < 6
    else:
        rule = faults.on("TransactWriteItems", kill, calls={k + 1})
        # A killed invocation runs no ``finally``; here the metrics' flush does, and warns it has nothing.
        with pytest.raises(LambdaKilled), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            handler(schedule, LambdaContext("ScheduledChecksFunction", timeout_seconds=55))
        assert rule.hits == 1
    relay(stack, stream.new_records())
    # And the next minute's sweep runs, and the stream hands the relay what they committed
    faults.clear()
    assert sweep(stack, at + timedelta(minutes=1))["stopped_early"] is False
    relay(stack, stream.new_records())
    sweep(stack, at + timedelta(minutes=4))  # a lease left by the killed run has run out
    # Then every appointment had its pre-notice once, and every mail went out once
    lost = duplicated = 0
    for n in range(6):
        record = wiring.store().load(appointment_of(f"stf-f{n}"))
        notices = [e for e in record.history if e.action is Action.PRE_NOTICE]
        lost += len(notices) == 0
        duplicated += max(0, len(notices) - 1)
    mails = mail_items()
    more_lost, more_duplicated = counted(faults.sent, set(mails))
    tally("8", lost=lost + more_lost, duplicated=duplicated + more_duplicated)
    assert (lost, duplicated, more_lost, more_duplicated) == (0, 0, 0, 0)
    assert len(mails) == 12  # six confirmations, six pre-notices


@pytest.mark.parametrize("k", range(1, 4))
def test_8_a_due_appointment_the_table_will_not_read_is_left_due_and_the_sweep_goes_on(
    stack: Stack, faults: Faults, k: int
) -> None:
    # Given four unassigned bookings whose pre-notices are due
    stream = TableStream(stack)
    starts = [datetime(2026, 11, 23, 18, 10 * n, tzinfo=UTC) for n in range(4)]
    book(stack, *[booking(n, start=start, technicians=False) for n, start in enumerate(starts)])
    relay(stack, stream.new_records())
    at = datetime(2026, 11, 23, 15, 55, tzinfo=UTC)
    # When the sweep's read of the k-th due appointment is throttled (the SDK's retries spent)
    rule = faults.on("GetItem", aws_error("ProvisionedThroughputExceededException"), calls={k})
    summary = sweep(stack, at)
    # Then that one is left due and counted failed, and the others are applied in the same run
    assert rule.hits == 1
    assert summary["failed"] == 1 and summary["applied"] == {"pre_notice": 3}, summary
    relay(stack, stream.new_records())
    # And the next minute's run applies it; each pre-notice once, each mail once
    assert sweep(stack, at + timedelta(minutes=1))["applied"] == {"pre_notice": 1}
    relay(stack, stream.new_records())
    lost = duplicated = 0
    for n in range(4):
        notices = [e for e in wiring.store().load(appointment_of(f"stf-f{n}")).history if e.action is Action.PRE_NOTICE]
        lost += len(notices) == 0
        duplicated += max(0, len(notices) - 1)
    more_lost, more_duplicated = counted(faults.sent, set(mail_items()))
    tally("8", lost=lost + more_lost, duplicated=duplicated + more_duplicated)
    assert (lost, duplicated, more_lost, more_duplicated) == (0, 0, 0, 0)


# -- 9. The stream relay crashing between the SES send and the finish mark ------------------------------------


@pytest.mark.parametrize("k", range(1, RUNS + 1))
def test_9_a_relay_killed_between_send_and_mark_sends_that_mail_at_most_twice_and_loses_nothing(
    stack: Stack, faults: Faults, k: int
) -> None:
    # Given five bookings: five confirmations in one stream batch
    stream = TableStream(stack)
    book(stack, *[booking(n) for n in range(5)])
    records = stream.new_records()
    # When the relay's invocation is killed right after SES took the k-th mail, before it is marked sent
    rule = faults.after_call("SendEmail", kill, calls={k})
    failures = relay(stack, records)  # the mapping retries the batch: the killed mail is still claimed
    # And the sweeps of the next minutes run (the claim's lease runs out after two)
    for minute in range(1, 6):
        sweep(stack, NOW + timedelta(minutes=minute))
        relay(stack, stream.new_records())
    # Then every mail went out, the k-th one twice at most: the documented window, and nothing else twice
    assert rule.hits == 1 and failures == 1
    mails = mail_items()
    lost, duplicated = counted(faults.sent, set(mails))
    crashed = [key for key, n in faults.sent.items() if n > 1]
    in_window = sum(faults.sent[key] - 1 for key in crashed)
    tally("9", lost=lost, duplicated=duplicated - in_window, in_window=in_window)
    assert lost == 0 and duplicated == in_window <= 1
    assert {m["status"]["S"] for m in mails.values()} == {MailStatus.SENT}
