"""Warm latency of each handler in-process under moto, beside "the limit": the AWS calls it cannot avoid.

Every handler is the real one, loaded from template.yaml into a stack built by
``tests/integration/stack.py`` (moto in-process). After a few warm-up invocations, each timed one is
followed by a replay of exactly the AWS calls that invocation made (caught with botocore's
``provide-client-params`` hook on the default session, the one the handlers' clients come from),
issued by a plain boto3 client of its own session against a twin of every table and of the event queue,
kept in the same state as the originals. The replay is what the operation costs when the handler adds
nothing: moto's own work, botocore's serialising and parsing. Their ratio is the handler's own
overhead (validation, domain logic, Powertools, rendering); it is measured side by side, so the noise of
this shared machine hits both alike. Absolute times are mostly moto's: a DynamoDB call under moto costs
milliseconds, in AWS the network round trip dominates instead.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tests.integration.stack import Stack

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 23, 10, 0, 30, tzinfo=UTC)
TWIN_SUFFIX = "BenchLimit"
SWEEP_DUE = 100
QUICK_SWEEP_DUE = 20


def layer_on_path() -> None:
    """The core layer importable as Lambda makes it (``/opt/python``); the runner does the same."""
    for path in (ROOT / "layers" / "core", ROOT):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


# -- catching the calls a handler makes, replaying them on twins ---------------------------------


@dataclass(frozen=True)
class Call:
    service: str  # boto3's client name: dynamodb, sqs, sesv2, events
    operation: str  # botocore's operation name: GetItem, TransactWriteItems
    params: dict[str, Any]


@dataclass
class CallLog:
    """The calls made through the default session's clients while ``recording``."""

    calls: list[Call] = field(default_factory=list)
    recording: bool = False

    def asked(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        # A reference, not a copy: the copy is made when replaying, outside the timed handler.
        if self.recording:
            self.calls.append(Call(model.service_model.service_name, model.name, params))

    @contextlib.contextmanager
    def catching(self) -> Iterator[list[Call]]:
        self.calls = []
        self.recording = True
        try:
            yield self.calls
        finally:
            self.recording = False


class Twins:
    """A twin of every table and of the event queue, and a client session the call log does not see."""

    def __init__(self, stack: Stack) -> None:
        import boto3

        from localdev.resources import REGION
        from localdev.template import dynamodb_tables, load_template

        self._session = boto3.session.Session(region_name=REGION)
        self._clients: dict[str, Any] = {}
        self.renamed: dict[str, str] = {}  # table names and queue URLs, to their twins'
        self.tables: list[str] = []  # the originals and their twins
        dynamodb = self.client("dynamodb")
        for table in dynamodb_tables(load_template()):
            twin = table.logical_id + TWIN_SUFFIX
            dynamodb.create_table(**{**table.create_request, "TableName": twin})
            self.renamed[table.logical_id] = twin
            self.tables += [table.logical_id, twin]
        sqs = self.client("sqs")
        attributes = sqs.get_queue_attributes(QueueUrl=stack.queue_url, AttributeNames=["All"])["Attributes"]
        kept = {k: v for k, v in attributes.items() if k in ("FifoQueue", "ContentBasedDeduplication")}
        twin_name = stack.queue_url.rsplit("/", 1)[1].replace(".fifo", TWIN_SUFFIX + ".fifo")
        self.renamed[stack.queue_url] = sqs.create_queue(QueueName=twin_name, Attributes=kept)["QueueUrl"]

    def client(self, service: str) -> Any:
        if service not in self._clients:
            session: Any = self._session  # boto3's stubs type client() by a literal service name
            self._clients[service] = session.client(service)
        return self._clients[service]

    def replay(self, calls: list[Call]) -> float:
        """The same calls, with the same parameters, against the twins (other services: the same ones); the
        seconds they took, parameters prepared beforehand."""
        prepared = [(c.service, xform(c.operation), self._renamed(copy.deepcopy(c.params))) for c in calls]
        for _, _, params in prepared:
            params.pop("ClientRequestToken", None)  # botocore filled it in place: a fresh one per replay
        started = time.perf_counter()
        for service, method, params in prepared:
            getattr(self.client(service), method)(**params)
        return time.perf_counter() - started

    def _renamed(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.renamed.get(value, value)
        if isinstance(value, dict):
            return {key: self._renamed(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._renamed(item) for item in value]
        return value


def expect(condition: bool, what: object) -> None:
    """A bench that measured something else than it meant to says so, rather than print its figures."""
    if not condition:
        raise RuntimeError(f"the bench went wrong: {what!r}")


def xform(operation: str) -> str:
    from botocore import xform_name

    name: str = xform_name(operation)
    return name


# -- the operations ---------------------------------------------------------------------------------


class Bench:
    """One stack under moto, its twins and the call log; ``mirrored`` keeps the twins in step."""

    def __init__(self, stack: Stack) -> None:
        import boto3

        self.stack = stack
        self.log = CallLog()
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        session: Any = boto3.DEFAULT_SESSION
        session.events.register("provide-client-params.*.*", self.log.asked, unique_id="bench-calls")
        self.twins = Twins(stack)
        self.sequence = 0
        self.ops_appointment: str | None = None

    def mirrored(self, action: Callable[[], Any]) -> Any:
        """``action`` on the stack, then its calls on the twins: setup that is not timed."""
        with self.log.catching() as calls:
            result = action()
        self.twins.replay(calls)
        return result

    def next_number(self) -> int:
        self.sequence += 1
        return self.sequence

    def truncate(self) -> None:
        """Every table and its twin emptied: under moto every Query scans the whole table, so size costs."""
        client = self.twins.client("dynamodb")
        for table in self.twins.tables:
            keys = [
                attribute["AttributeName"] for attribute in client.describe_table(TableName=table)["Table"]["KeySchema"]
            ]
            for page in client.get_paginator("scan").paginate(TableName=table):
                items = page["Items"]
                for first in range(0, len(items), 25):
                    batch = [
                        {"DeleteRequest": {"Key": {k: item[k] for k in keys}}} for item in items[first : first + 25]
                    ]
                    client.batch_write_item(RequestItems={table: batch})


@dataclass(frozen=True)
class Operation:
    name: str
    what: str
    prepare: Callable[[Bench], Callable[[], Any]]  # per invocation: untimed setup, then the timed call
    iterations: int
    quick_iterations: int
    truncate_each: bool = False
    quick: tuple[str, Callable[[Bench], Callable[[], Any]]] | None = None  # a lighter what and prepare


def generic_booking(number: int, start: datetime) -> bytes:
    from tests.signing import sample

    document = json.loads(sample("generic/appointment_scheduled.json"))
    document["event_id"] = f"evt_bench_{number:08d}"
    document["occurred_at"] = NOW.isoformat().replace("+00:00", "Z")
    document["appointment"].update(
        external_id=f"bench-{number}", start=start.isoformat(), end=(start + timedelta(minutes=30)).isoformat()
    )
    return json.dumps(document).encode()


def _ingress(bench: Bench) -> Callable[[], Any]:
    body = generic_booking(bench.next_number(), NOW + timedelta(days=2))

    def invoke() -> Any:
        response = bench.stack.post_generic(body)
        expect(response["statusCode"] == 202, response)
        return response

    return invoke


def _processor(bench: Bench) -> Callable[[], Any]:
    from appointments.domain.events import CanonicalEvent
    from appointments.sources.base import WebhookRequest
    from appointments.sources.generic import GenericSource
    from localdev.sqs import sqs_record

    number = bench.next_number()
    body = generic_booking(number, NOW + timedelta(days=2, minutes=number % 600))
    [event] = GenericSource().parse(WebhookRequest(headers={}, body=body))
    expect(isinstance(event, CanonicalEvent), event)
    record = sqs_record(
        event.model_dump_json(), group=event.entity, dedupe=event.delivery_id, queue_arn=bench.stack.queue_arn
    )

    def invoke() -> Any:
        failed = bench.stack.process([record])
        expect(failed == [], failed)
        return failed

    return invoke


def booked_by_ops(bench: Bench, start: datetime, *, mirror: bool = True) -> str:
    body = {
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=30)).isoformat(),
        "timezone": "America/New_York",
        "type": "remote_call_in",
        "customer": {"name": "Dana Reyes", "email": "dana@example.com"},
        "technicians": [{"id": "t-17", "name": "Sam Okafor"}],
    }

    def create() -> Any:
        return bench.stack.ops("POST", "/appointments", body)

    reply = bench.mirrored(create) if mirror else create()
    expect(reply.status == 201, reply.body)
    return str(reply.body["id"])


def _the_appointment(bench: Bench) -> str:
    """One appointment for the ops calls, booked on first use."""
    if bench.ops_appointment is None:
        bench.ops_appointment = booked_by_ops(bench, NOW + timedelta(days=3))
    return bench.ops_appointment


def _ops_get(bench: Bench) -> Callable[[], Any]:
    appointment_id = _the_appointment(bench)

    def invoke() -> Any:
        reply = bench.stack.ops("GET", f"/appointments/{appointment_id}")
        expect(reply.status == 200, reply.body)
        return reply

    return invoke


def _ops_note(bench: Bench) -> Callable[[], Any]:
    appointment_id = _the_appointment(bench)
    number = bench.next_number()

    def invoke() -> Any:
        reply = bench.stack.ops(
            "POST", f"/appointments/{appointment_id}/notes", {"text": f"Called, no answer {number}"}
        )
        expect(reply.status == 200, reply.body)
        return reply

    return invoke


def due_items(count: int) -> list[dict[str, Any]]:
    """``count`` unassigned appointments starting in 2 h, booked 3 days ago: reminder and pre-notice due."""
    from appointments import wiring
    from appointments.domain.lifecycle import Change
    from appointments.domain.model import Status
    from appointments.domain.rules import next_check
    from tests.factories import an_appointment

    store: Any = wiring.store()
    catalog = wiring.catalog()
    timings = wiring.settings().rule_timings()
    items = []
    for n in range(count):
        start = NOW + timedelta(hours=2, minutes=n % 60)
        booked = an_appointment(
            Status.SCHEDULED, at=NOW - timedelta(days=3), start=start, end=start + timedelta(minutes=30), technicians=()
        )
        booked = booked.model_copy(update={"next_due_at": next_check(booked, catalog, timings)})
        expect(booked.next_due_at is not None and booked.next_due_at <= NOW, f"not due: {booked.next_due_at}")
        items.append(store._appointment_put(Change(before=None, after=booked, history=()))["Put"]["Item"])
    return items


def seed(bench: Bench, items: list[dict[str, Any]]) -> None:
    client = bench.twins.client("dynamodb")
    for table in ("AppointmentsTable", bench.twins.renamed["AppointmentsTable"]):
        for first in range(0, len(items), 25):
            batch = [{"PutRequest": {"Item": item}} for item in items[first : first + 25]]
            unprocessed = client.batch_write_item(RequestItems={table: batch})["UnprocessedItems"]
            expect(not unprocessed, unprocessed)


def _sweep(bench: Bench, due: int = SWEEP_DUE) -> Callable[[], Any]:
    seed(bench, due_items(due))

    def invoke() -> Any:
        summary = bench.stack.run_schedule()
        expect(summary["due"] == due and not summary["stopped_early"], summary)
        return summary

    return invoke


def pending_mail_records(bench: Bench, appointment_ids: list[str]) -> list[dict[str, Any]]:
    """Each appointment's pending mails as the table's stream hands them to the relay."""
    from localdev.streams import lambda_record

    client = bench.twins.client("dynamodb")
    records = []
    for appointment_id in appointment_ids:
        items = client.query(
            TableName="AppointmentsTable",
            KeyConditionExpression="PK = :pk AND begins_with(SK, :mail)",
            ExpressionAttributeValues={":pk": {"S": f"APPT#{appointment_id}"}, ":mail": {"S": "MAIL#"}},
        )["Items"]
        records += [
            lambda_record(
                {
                    "eventID": f"{item['PK']['S']}/{item['SK']['S']}",
                    "eventName": "INSERT",
                    "dynamodb": {"Keys": {"PK": item["PK"], "SK": item["SK"]}, "NewImage": item},
                },
                "arn:aws:dynamodb:us-east-1:123456789012:table/AppointmentsTable/stream/bench",
                read_at=bench.stack.clock.now(),
            )
            for item in items
            if item.get("status", {}).get("S") == "pending"
        ]
    return records


def _relay(bench: Bench) -> Callable[[], Any]:
    appointment_id = booked_by_ops(bench, NOW + timedelta(days=2, minutes=bench.next_number() % 600))
    records = pending_mail_records(bench, [appointment_id])
    expect(len(records) == 1, records)

    def invoke() -> Any:
        response = bench.stack.invoke("OutboxRelayFunction", {"Records": records})
        expect(response["batchItemFailures"] == [], response)
        return response

    return invoke


OPERATIONS = (
    Operation("ingress", "verify a signed generic webhook, enqueue it (202)", _ingress, 200, 20),
    Operation("processor", "apply one SQS record: a new booking", _processor, 200, 20),
    Operation("ops GET", "GET /appointments/{id}", _ops_get, 200, 20),
    Operation("ops note", "POST /appointments/{id}/notes", _ops_note, 200, 20),
    Operation(
        "sweep",
        f"scheduled checks with {SWEEP_DUE} due",
        _sweep,
        5,
        1,
        truncate_each=True,
        quick=(f"scheduled checks with {QUICK_SWEEP_DUE} due", lambda bench: _sweep(bench, QUICK_SWEEP_DUE)),
    ),
    Operation("relay", "one stream record: the confirmation mail sent", _relay, 200, 20),
)
WARM_UP = 5
# As tests/conftest.py sets them: fake credentials, no X-Ray daemon (Tracer off), metrics on.
BENCH_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_SESSION_TOKEN": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "AppointmentDesk",
}


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """The handlers' log lines and metrics to /dev/null: still written (as in Lambda), not printed here."""
    sys.stdout.flush()
    saved = os.dup(1)
    with Path(os.devnull).open("w") as devnull:
        os.dup2(devnull.fileno(), 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


@contextlib.contextmanager
def bench_stack() -> Iterator[Bench]:
    """The stack under moto (tests/integration/stack.py), with its twins and call log."""
    import pytest

    from localdev.moto_memory import moto_patched
    from tests.integration.stack import stack_under_moto

    with pytest.MonkeyPatch.context() as patch:
        for name, value in BENCH_ENVIRONMENT.items():
            patch.setenv(name, value)
        for name in [name for name in os.environ if name.startswith("AWS_ENDPOINT_URL") or name == "AWS_PROFILE"]:
            patch.delenv(name)
        # moto deep-copies a whole table per item of every transaction (its rollback): the runner's patch saves
        # only the items a transaction names, so a sweep's cost does not grow with the table, as in DynamoDB.
        with moto_patched(), stack_under_moto(patch, NOW, CustomerMailSources="generic") as stack:
            yield Bench(stack)


def measure(bench: Bench, operation: Operation, quick: bool) -> dict[str, Any]:
    handler_ms: list[float] = []
    limit_ms: list[float] = []
    calls_per_invocation: Counter[str] = Counter()
    iterations = operation.quick_iterations if quick else operation.iterations
    what, prepare = operation.quick if quick and operation.quick else (operation.what, operation.prepare)
    warm_up = 1 if operation.truncate_each else (2 if quick else WARM_UP)
    for n in range(warm_up + iterations):
        invoke = prepare(bench)
        with bench.log.catching() as calls:
            started = time.perf_counter()
            invoke()
            elapsed = time.perf_counter() - started
        made = list(calls)
        replayed = bench.twins.replay(made)
        if n >= warm_up:
            handler_ms.append(elapsed * 1000)
            limit_ms.append(replayed * 1000)
            if n == warm_up:
                calls_per_invocation = Counter(f"{c.service}.{c.operation}" for c in made)
        if operation.truncate_each:
            bench.truncate()
    ratios = [h / lim for h, lim in zip(handler_ms, limit_ms, strict=True) if lim > 0]
    return {
        "what": what,
        "iterations": iterations,
        "handler_ms": percentiles(handler_ms),
        "limit_ms": percentiles(limit_ms),
        "ratio": {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)} if ratios else None,
        "calls": dict(sorted(calls_per_invocation.items())),
    }


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50": statistics.median(ordered), "p99": p99, "min": ordered[0], "max": ordered[-1]}


def run(quick: bool = False) -> dict[str, Any]:
    layer_on_path()
    started = time.perf_counter()
    results: dict[str, Any] = {}
    with quiet_stdout(), bench_stack() as bench:
        for operation in OPERATIONS:
            bench.truncate()
            bench.ops_appointment = None
            results[operation.name] = measure(bench, operation, quick)
    return {"quick": quick, "operations": results, "run_seconds": time.perf_counter() - started}


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "## Warm latency: handlers against the AWS calls they cannot avoid",
        "",
        "Each real handler runs in-process against moto (the stack of tests/integration/stack.py), warm "
        f"(after {WARM_UP} warm-up invocations; the sweep after one). Right after each invocation the same AWS "
        "calls it made (caught by a botocore hook) are replayed by a plain boto3 client against twin tables "
        "and queue in the same state: that is *the limit*, what the operation costs with no handler around "
        "it. The ratio is the median of the per-invocation ratios (min, max). Absolute times are mostly "
        "moto's own: a DynamoDB call under moto costs milliseconds of Python, far above what the handler adds.",
        "",
        "| operation | n | handler p50 ms | handler p99 ms | limit p50 ms | limit p99 ms | ratio median (min-max) "
        "| calls per invocation |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, figures in result["operations"].items():
        ratio = figures["ratio"]
        ratio_text = f"{ratio['median']:.2f} ({ratio['min']:.2f}-{ratio['max']:.2f})" if ratio else "-"
        calls = ", ".join(f"{operation} x{count}" for operation, count in figures["calls"].items())
        lines.append(
            f"| {name}: {figures['what']} | {figures['iterations']} | {figures['handler_ms']['p50']:.1f} | "
            f"{figures['handler_ms']['p99']:.1f} | {figures['limit_ms']['p50']:.1f} | "
            f"{figures['limit_ms']['p99']:.1f} | {ratio_text} | {calls} |"
        )
    lines += ["", f"Run time: {result['run_seconds']:.1f} s{' (quick)' if result['quick'] else ''}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    figures = run(quick="--quick" in sys.argv)
    print(json.dumps(figures, indent=2))
    print(markdown(figures))
