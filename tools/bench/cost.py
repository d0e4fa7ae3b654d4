"""The bill, on paper: what one appointment costs in AWS requests, the monthly bill at 1,000 and 1,000,000
appointments, the Autotask API budget, and what changes at 100 MSPs and 10 million appointments a month.

Nothing here is measured against AWS. The model multiplies three kinds of input:

- **calls per operation**: the deterministic AWS calls (and PSA requests) of each operation, from
  ``measured["calls"]`` when the calls section ran, else ``tools/bench/call_budgets.BUDGETS`` (which
  ``tests/integration/test_call_budgets.py`` asserts exactly, so the two agree);
- **a typical appointment** (``STORY``): how many times each operation happens in one appointment's life;
  named constants, each with why it was chosen;
- **unit prices** (``PRICES``, us-east-1), each with the page it was read on and whether the figure was
  seen on an AWS page (``verified``) or only on a third-party copy of it.

A Lambda invocation's billed duration is modelled, not taken from the local runs (moto's latencies are not
AWS's): ``own CPU (warm section's handler minus its moto replay, scaled to a 512 MB share of a vCPU) + Σ
calls x a typical in-region latency per call kind``. DynamoDB capacity units come from the item sizes of a
real appointment, history entry and mail, built by the production adapter (``DynamoAppointmentStore``) in
this process, no AWS (or moto) involved. Everything is computed in ``run``; no total is written down.
"""

from __future__ import annotations

import math
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.bench.call_budgets import BUDGETS

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
REGION = "us-east-1"
READ_ON = "2026-12-01"  # when the prices below were looked up
Counts = dict[str, int]


# -- unit prices ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Price:
    usd: float
    per: str
    source: str
    verified: bool  # seen on an AWS page (pricing page, docs, whitepaper); else a third-party copy of it


LAMBDA_PRICING = "https://aws.amazon.com/lambda/pricing/"
DYNAMODB_PRICING = "https://aws.amazon.com/dynamodb/pricing/on-demand/"
CLOUDWATCH_PRICING = "https://aws.amazon.com/cloudwatch/pricing/"
PRICES: dict[str, Price] = {
    "lambda_request": Price(
        0.20 / 1e6, "request", f"{LAMBDA_PRICING} (figure from a copy: git.mcrn.ar lambda_local_runner cost.md)", False
    ),
    "lambda_gb_s_arm": Price(
        0.0000133334, "GB-second (arm64, first 7.5 billion)", f"{LAMBDA_PRICING} (figure: cloudchipr.com)", False
    ),
    "apigw_rest_request": Price(
        3.50 / 1e6,
        "REST API request (first 333 million)",
        "https://docs.aws.amazon.com/whitepapers/latest/best-practices-api-gateway-private-apis-integration/"
        "cost-optimization.html (AWS whitepaper, table 4)",
        True,
    ),
    "dynamodb_wru": Price(0.625 / 1e6, "write request unit", f"{DYNAMODB_PRICING} (figure: airbyte.com)", False),
    "dynamodb_rru": Price(0.125 / 1e6, "read request unit", f"{DYNAMODB_PRICING} (figure: airbyte.com)", False),
    "dynamodb_stream_read_by_lambda": Price(
        0.0,
        "GetRecords by a Lambda trigger",
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CostOptimization_StreamsUsage.html "
        '("Read requests made by Lambda-based consumers of DynamoDB Streams are free")',
        True,
    ),
    "dynamodb_storage": Price(0.25, "GB-month (Standard table class)", DYNAMODB_PRICING, False),
    "dynamodb_pitr": Price(0.20, "GB-month of continuous backup", DYNAMODB_PRICING, False),
    "sqs_fifo_request": Price(
        0.50 / 1e6,
        "FIFO request (each 64 KB chunk)",
        "https://aws.amazon.com/sqs/pricing/ (figure: factualminds.com, cloudburn.io)",
        False,
    ),
    "ses_mail": Price(
        0.10 / 1000, "outbound mail", "https://aws.amazon.com/ses/pricing/ (figure: acecloudinterviews.com)", False
    ),
    "eventbridge_custom_event": Price(
        1.00 / 1e6,
        "custom event published (64 KB chunk)",
        "https://aws.amazon.com/eventbridge/pricing/ (figure: blog.awsfundamentals.com, factualminds.com)",
        False,
    ),
    "scheduler_invocation": Price(
        1.00 / 1e6,
        "EventBridge Scheduler invocation (after 14 million free)",
        "https://aws.amazon.com/eventbridge/pricing/ (figure: cloudburn.io)",
        False,
    ),
    "logs_ingested": Price(
        0.50, "GB of logs ingested (standard)", f"{CLOUDWATCH_PRICING} (figure: factualminds.com)", False
    ),
    "logs_stored": Price(0.03, "GB-month of logs stored", CLOUDWATCH_PRICING, False),
    "custom_metric": Price(
        0.30, "custom metric-month (first 10,000)", f"{CLOUDWATCH_PRICING} (figure: signoz.io)", False
    ),
    "alarm_metric": Price(0.10, "standard-resolution alarm metric-month", CLOUDWATCH_PRICING, False),
    "dashboard": Price(3.00, "dashboard-month", f"{CLOUDWATCH_PRICING} (figure: factualminds.com)", False),
    "xray_trace": Price(
        5.00 / 1e6, "trace recorded (after 100,000 free)", "https://aws.amazon.com/de/xray/pricing/", True
    ),
    "secret_month": Price(
        0.40, "secret-month", "https://aws.amazon.com/secrets-manager/pricing/ (figure: hivebook.wiki)", False
    ),
    "secret_call": Price(
        0.05 / 10_000, "API call", "https://aws.amazon.com/secrets-manager/pricing/ (figure: hivebook.wiki)", False
    ),
    "cloudfront_request": Price(
        0.0100 / 10_000, "HTTPS request (US)", "https://aws.amazon.com/cloudfront/pricing/", False
    ),
    "cloudfront_gb": Price(
        0.085, "GB out to the internet (US, first 10 TB)", "https://aws.amazon.com/cloudfront/pricing/", False
    ),
    "s3_get": Price(0.0004 / 1000, "GET request (S3 Standard)", "https://aws.amazon.com/s3/pricing/", False),
}


# -- assumptions ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assumption:
    value: float
    why: str


A = Assumption
ASSUMPTIONS: dict[str, Assumption] = {
    # Latency of one call from Lambda in the same region: the wait a function is billed for.
    "ms_dynamodb": A(5, "DynamoDB GetItem/Query/UpdateItem: 'single-digit millisecond' (aws.amazon.com/dynamodb)"),
    "ms_dynamodb_transaction": A(10, "TransactWriteItems: two-phase, assumed twice a single write"),
    "ms_sqs": A(10, "SQS SendMessageBatch: assumption"),
    "ms_ses": A(30, "SES v2 SendEmail: assumption"),
    "ms_events": A(20, "EventBridge PutEvents: assumption"),
    "ms_secrets": A(20, "Secrets Manager GetSecretValue: assumption"),
    "ms_autotask": A(300, "one Autotask REST request over the internet: assumption"),
    "own_cpu_local_ms": A(5, "handler's own CPU per invocation when the warm section did not run: assumption"),
    "vcpu_mb": A(1769, "Lambda gives one full vCPU at 1,769 MB, CPU in proportion below (AWS Lambda docs)"),
    "cold_start_share": A(0.02, "share of invocations that start a new container: assumption"),
    "init_cpu_ms": A(800, "INIT phase per cold start when the cold-start section did not run: assumption"),
    # The typical appointment.
    "reschedules": A(0.3, "vendor reschedules per appointment: assumption"),
    "ticket_webhooks": A(2, "PSA ticket webhooks per appointment (assignment, completion): assumption"),
    "confirmation_mails": A(1, "the desk mails the booking's confirmation (CustomerMailSources names the source)"),
    "reminders": A(1, "one ReminderOffsetsHours (24 h), every appointment booked earlier than that"),
    "pre_notices": A(0.05, "appointments still unassigned 3 h before: assumption"),
    "no_shows": A(0.05, "customer-calls-in appointments nobody called in for: assumption"),
    "ops_actions": A(0.2, "dispatcher changes (reassign, contact attempt) per appointment: assumption"),
    "ops_reads": A(1, "dispatcher opens the appointment's detail once: assumption"),
    "on_ticket": A(1, "share of appointments linked to an Autotask ticket (worst case for the Autotask budget)"),
    "psa_note_requests": A(
        2, "a note-only write-back: search the ticket's notes, add the note (psa.write minus PATCH)"
    ),
    "log_bytes_per_invocation": A(1500, "START/END/REPORT lines, ~2 Powertools log lines, one EMF blob: assumption"),
    "custom_metric_series": A(60, "add_metric names x their dimensions, as the dashboard lists them: rough count"),
    # The dispatcher's console.
    "console_hours_per_day": A(9, "one dispatcher console open 9 h a working day: assumption"),
    "working_days": A(22, "working days a month: appointments are booked and polled on them"),
    "console_refresh_seconds": A(10, "console/app.js refreshes its screen every 10 s"),
    "console_requests_per_refresh": A(2, "GET /attention and the screen's own list (console.today)"),
    "attention_loaded_share": A(
        0.02,
        "share of the 9-day attention window with a record needing a human in the last 2 days (attention_at: a "
        "bounced or failed mail, at risk, unassigned at start, a failed PSA write), the only ones GET /attention "
        "loads: assumption",
    ),
    "console_page_loads_per_day": A(2, "sign-ins a day: each loads the console's files once (cached after)"),
    "console_files_kb": A(300, "index.html, app.js, css, logo: assumption"),
    "console_files": A(6, "files per page load: assumption"),
    # Queues and the idle polling Lambda does for the SQS event source mapping.
    "sqs_idle_receives_per_minute": A(15, "5 pollers long-polling 20 s each: assumption, not verified"),
    "secret_reads_per_month": A(
        8640 * 2, "ingress caches the signing secrets 5 min per container: 12 reads/h, 2 warm containers"
    ),
    # Peaks, for the limits.
    "peak_hour_share": A(0.2, "the busiest hour carries 20% of a working day's volume: assumption"),
    "xray_reservoir_per_second": A(1, "X-Ray's default rule: 1 request/s then 5% (docs, oneuptime.com)"),
    "xray_rate": A(0.05, "X-Ray's default rule: 5% beyond the reservoir"),
    "months_kept": A(12, "storage lines show the table and logs after 12 months (nothing expires by default)"),
}
SECONDS_PER_MONTH = 30.4 * 86400
MINUTES_PER_MONTH = 30.4 * 1440


def a(name: str) -> float:
    return ASSUMPTIONS[name].value


# -- limits (section 3) -----------------------------------------------------------------------------------

LIMITS: dict[str, tuple[float, str]] = {
    "partition_wcu": (
        1000,
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput-scenarios.html",
    ),
    "partition_rcu": (3000, "same page: each partition is limited to 1,000 write and 3,000 read units per second"),
    "sqs_fifo_tps": (
        300,
        "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/troubleshooting-fifo-throttling-"
        "issues.html (300 TPS per API action, 3,000 msg/s batched; high throughput mode raises it per partition)",
    ),
    "ses_rate": (
        14,
        "a common first production quota (14 mails/s); https://docs.aws.amazon.com/ses/latest/dg/quotas.html now "
        "says only 'varies based on your specific use case' out of the sandbox (1/s in it): not verified",
    ),
    "putevents_tps": (
        10_000,
        "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html (us-east-1, per account)",
    ),
    "lambda_concurrency": (1000, "Lambda's default concurrent executions per account and region (not verified here)"),
    "autotask_per_hour": (
        10_000,
        "10,000 calls per rolling 60 min per database, shared by all integrations; 3 concurrent threads per object "
        "endpoint per integration (https://ww1.autotask.net/help/DeveloperHelp/Content/APIs/General/ThreadLimiting.htm)",
    ),
    "timezest_per_minute": (180, "180 requests per 60 s, account-wide (TimeZest's API documentation; docs/vendors.md)"),
    "halopsa_per_5min": (450, "450 requests / 5 min, cited by a third-party integrator, not by HaloPSA: not verified"),
}


# -- the template ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateFacts:
    memory_mb: int
    due_shards: int
    schedules_every_minute: int  # the sweep, and the TimeZest poller when enabled
    timezest_polling: bool
    alarm_metrics: int  # standard alarms count 1; metric-math alarms count each metric they read
    alarms: int
    secrets: int
    dashboards: int
    fifo_throughput_limit: str
    psa_writeback_concurrency: int


def _resources(text: str) -> dict[str, str]:
    """Each resource's block of template.yaml, by logical id (a text scan: cfn-lint's loader takes a second)."""
    body = text.split("\nResources:\n", 1)[1].split("\nOutputs:\n", 1)[0]
    blocks: dict[str, str] = {}
    for match in re.finditer(r"^  (\w+):\n((?:    .*\n|\s*\n)*)", body, flags=re.MULTILINE):
        blocks[match.group(1)] = match.group(2)
    return blocks


def _default(text: str, parameter: str) -> str:
    found = re.search(rf"^  {parameter}:\n(?:    .*\n)*?    Default: \"?([^\"\n]*)\"?\n", text, flags=re.MULTILINE)
    return found.group(1).strip() if found else ""


def template_facts(path: Path = TEMPLATE) -> TemplateFacts:
    text = path.read_text()
    resources = _resources(text)
    alarms = {name: block for name, block in resources.items() if "Type: AWS::CloudWatch::Alarm" in block}
    # Alarms on a condition (the silent-source ones) exist only when WatchedSources names their source.
    deployed = {name: block for name, block in alarms.items() if "Condition:" not in block.split("Properties:")[0]}
    memory = re.search(r"^Globals:\n(?:  .*\n)*?    MemorySize: (\d+)", text, flags=re.MULTILINE)
    writeback = resources.get("PsaWritebackFunction", "")
    reserved = re.search(r"ReservedConcurrentExecutions: (\d+)", writeback)
    fifo = re.search(r"FifoThroughputLimit: (\w+)", resources.get("EventQueue", ""))
    return TemplateFacts(
        memory_mb=int(memory.group(1)) if memory else 128,
        due_shards=int(_default(text, "DueShards") or 1),
        schedules_every_minute=text.count("ScheduleExpression: rate(1 minute)"),
        timezest_polling=_default(text, "TimeZestPolling") == "ENABLED",
        alarm_metrics=sum(max(1, block.count("MetricStat:")) for block in deployed.values()),
        alarms=len(deployed),
        secrets=sum("Type: AWS::SecretsManager::Secret" in block for block in resources.values()),
        dashboards=sum("Type: AWS::CloudWatch::Dashboard" in block for block in resources.values()),
        fifo_throughput_limit=fifo.group(1) if fifo else "perQueue",
        psa_writeback_concurrency=int(reserved.group(1)) if reserved else 0,
    )


# -- item sizes --------------------------------------------------------------------------------------------

FALLBACK_ITEM_BYTES = {"appointment": 1900, "history": 620, "mail": 330, "small": 150}


def _attribute_bytes(value: Any) -> int:
    """DynamoDB's size of one attribute value (names are added by the caller)."""
    kind, inner = next(iter(value.items()))
    if kind in ("S", "B"):
        return len(str(inner).encode())
    if kind == "N":
        return math.ceil(len(str(inner).lstrip("-").replace(".", "")) / 2) + 1
    if kind == "L":
        return 3 + sum(1 + _attribute_bytes(element) for element in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _attribute_bytes(v) for k, v in inner.items())
    return 1


def item_bytes(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + _attribute_bytes(value) for name, value in item.items())


def measure_item_bytes() -> dict[str, int]:
    """A booked, rescheduled, reassigned appointment and its items, as the production adapter writes them."""
    for path in (ROOT / "layers" / "core", ROOT):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    from datetime import timedelta

    from appointments.adapters.dynamo_store import DynamoAppointmentStore, _history_item, _ref_item
    from appointments.domain import lifecycle
    from appointments.domain.ids import new_ulid
    from appointments.domain.model import Technician
    from appointments.domain.outbox import MailKind, OutboxMail
    from tests.factories import CATALOG, NOW, OPS, START, a_draft

    store = DynamoAppointmentStore(None, "AppointmentsTable", due_shards=4)  # type: ignore[arg-type]  # builds items only
    booked = lifecycle.create(a_draft(), appointment_id=new_ulid(NOW), catalog=CATALOG, at=NOW, actor=OPS)
    moved = lifecycle.reschedule(booked.after, start=START + timedelta(hours=2), at=NOW, actor=OPS)
    alex = (Technician(id="t-23", name="Alex Kim"),)
    reassigned = lifecycle.reassign(moved.after, alex, at=NOW + timedelta(minutes=5), actor=OPS)
    appointment = reassigned.after
    reminder = OutboxMail.notice(
        MailKind.REMINDER, appointment, notice_key="reminder#24", to=("dana@example.com",), at=NOW, context={}
    )
    return {
        "appointment": item_bytes(dict(store._appointment_put(reassigned)["Put"]["Item"])),
        "history": item_bytes(dict(_history_item(appointment, 0, reassigned.history[0]))),
        "mail": item_bytes(dict(store._mail_item(reminder))),
        "small": item_bytes(dict(_ref_item(appointment.external_refs[0], appointment.id))),
    }


# -- the typical appointment ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One operation in an appointment's life: ``count`` times per appointment, each one invocation of
    ``function`` (``invokes`` 0: it rides another invocation) making the calls of ``operation``."""

    what: str
    function: str
    operation: str | None  # a BUDGETS key; None: no AWS call
    count: float
    invokes: float = 1.0
    api_requests: float = 0.0  # through API Gateway
    sqs_messages: float = 0.0  # received and deleted by the event source mapping
    minus: str | None = None  # calls of ``operation`` minus those of this one: a per-due-item cost of the sweep


def story() -> list[Step]:
    """One appointment's life, from ``ASSUMPTIONS``. History entries each become one domain event."""
    reschedules, tickets, reminders = a("reschedules"), a("ticket_webhooks"), a("reminders")
    pre_notices, no_shows, ops_actions = a("pre_notices"), a("no_shows"), a("ops_actions")
    on_ticket = a("on_ticket")
    # Written back by default (PsaNoteActions): the desk's reschedules, no-shows and dispatchers' changes; never
    # what the PSA itself said (its assignment and completion), nor create.
    note_writes = on_ticket * (reschedules + ops_actions)
    status_writes = on_ticket * no_shows
    writes = note_writes + status_writes
    # The bus rule hands psa_writeback create, reschedule, reassign, complete, no_show and the ops changes.
    matched = 1 + reschedules + tickets + no_shows + ops_actions
    commits = 1 + reschedules + tickets + reminders + pre_notices + no_shows + ops_actions + writes
    return [
        Step("booking webhook", "WebhookIngressFunction", "webhook.generic", 1, api_requests=1),
        Step("reschedule webhook", "WebhookIngressFunction", "webhook.generic", reschedules, api_requests=1),
        Step("PSA ticket webhooks", "WebhookIngressFunction", "webhook.autotask", tickets, api_requests=1),
        Step("booking applied", "EventProcessorFunction", "event.new_booking", 1, sqs_messages=1),
        Step("reschedule applied", "EventProcessorFunction", "event.update", reschedules, sqs_messages=1),
        Step("ticket update applied", "EventProcessorFunction", "event.ticket_update", tickets, sqs_messages=1),
        Step(
            "reminder (sweep, per due item)",
            "ScheduledChecksFunction",
            "sweep.one_reminder",
            reminders,
            invokes=0,
            minus="sweep.nothing_due",
        ),
        Step(
            "pre-notice (sweep, per due item)",
            "ScheduledChecksFunction",
            "sweep.one_reminder",
            pre_notices,
            invokes=0,
            minus="sweep.nothing_due",
        ),
        Step(
            "no-show (sweep, per due item)",
            "ScheduledChecksFunction",
            "sweep.one_no_show",
            no_shows,
            invokes=0,
            minus="sweep.nothing_due",
        ),
        Step("relay: one stream batch per commit", "OutboxRelayFunction", None, commits),
        Step(
            "relay: confirmation and reschedule mails",
            "OutboxRelayFunction",
            "relay.mail",
            a("confirmation_mails") + reschedules,
            invokes=0,
        ),
        Step(
            "relay: timed mails (reminder, pre-notice, no-show) the sweep made",
            "OutboxRelayFunction",
            "relay.mail",
            reminders + pre_notices + no_shows,
            invokes=0,
        ),
        Step("relay: domain event published", "OutboxRelayFunction", "relay.event", commits, invokes=0),
        Step("PSA write-back: note", "PsaWritebackFunction", "psa.write", note_writes),
        Step("PSA write-back: no-show status + note", "PsaWritebackFunction", "psa.write", status_writes),
        Step("PSA write-back: nothing to write", "PsaWritebackFunction", None, matched - writes),
        Step("dispatcher change", "OpsApiFunction", "ops.reassign", ops_actions, api_requests=1),
        Step("dispatcher reads the detail", "OpsApiFunction", "ops.get", a("ops_reads"), api_requests=1),
    ]


# -- calls, latency, capacity units ------------------------------------------------------------------------

LATENCY_OF = {
    "dynamodb.GetItem": "ms_dynamodb",
    "dynamodb.Query": "ms_dynamodb",
    "dynamodb.UpdateItem": "ms_dynamodb",
    "dynamodb.TransactWriteItems": "ms_dynamodb_transaction",
    "sqs.SendMessageBatch": "ms_sqs",
    "sesv2.SendEmail": "ms_ses",
    "events.PutEvents": "ms_events",
    "secretsmanager.GetSecretValue": "ms_secrets",
}
# What each operation's transaction writes: the items, and whether the appointment's due index key moves
# (an index key that changes is a delete and a put in the index: two writes).
TRANSACTION_ITEMS: dict[str, tuple[tuple[str, ...], bool]] = {
    "event.new_booking": (("appointment", "history", "small", "small", "mail"), False),
    "event.update": (("appointment", "history", "mail"), True),
    "event.ticket_update": (("appointment", "history"), True),
    "sweep": (("appointment", "history", "mail"), True),
    "psa.write": (("appointment", "history"), False),
    "ops.reassign": (("appointment", "history"), True),
}
# Table queries read a partition strongly (the appointment's items, a waiting list, a write record); the
# sweep's read the keys-only due index (eventually consistent).
PARTITION_QUERIES = {"psa.write", "ops.get"}


@dataclass
class Sizes:
    kb: dict[str, float]
    source: str

    def units(self, kind: str, unit_kb: float) -> int:
        return max(1, math.ceil(self.kb[kind] / unit_kb))

    @property
    def partition_kb(self) -> float:
        """An appointment's partition after its life: the item, ~6 history entries, ~2.4 mails."""
        return self.kb["appointment"] + 6 * self.kb["history"] + 2.4 * self.kb["mail"]


def calls_of(operation: str, measured_calls: dict[str, Counts]) -> Counts:
    return dict(measured_calls.get(operation) or BUDGETS[operation])


def step_calls(step: Step, measured_calls: dict[str, Counts]) -> dict[str, float]:
    if step.operation is None:
        return {}
    calls: dict[str, float] = {k: float(v) for k, v in calls_of(step.operation, measured_calls).items()}
    if step.minus is not None:
        for name, n in calls_of(step.minus, measured_calls).items():
            calls[name] = calls.get(name, 0) - n
    if step.what.startswith("PSA write-back: note"):
        calls.pop("autotask.PATCH Tickets", None)  # a note alone sets no status
    return {name: n for name, n in calls.items() if n}


def write_units(step: Step, calls: dict[str, float], sizes: Sizes) -> float:
    """Write request units of one occurrence: transactions count twice, index writes once each."""
    units = 0.0
    transactions = calls.get("dynamodb.TransactWriteItems", 0)
    if transactions:
        key = "sweep" if step.function == "ScheduledChecksFunction" else (step.operation or "")
        items, due_moves = TRANSACTION_ITEMS[key]
        table = sum(sizes.units(kind, 1) for kind in items)
        index = sizes.units("appointment", 1) * ("appointment" in items)  # by_day projects all attributes
        index += (2 if due_moves else 1) * ("appointment" in items) + items.count("mail")  # due: keys only
        units += transactions * (2 * table + index)
    updates = calls.get("dynamodb.UpdateItem", 0)
    if updates:
        if step.operation == "relay.event":
            units += updates * sizes.units("history", 1)
        elif step.operation == "relay.mail_already_sent":
            units += updates * sizes.units("mail", 1)  # a refused conditional write still costs its unit
        else:  # a mail claimed (its due time moves to the lease's end) and marked sent (it leaves the index)
            units += updates * sizes.units("mail", 1) + (updates / 2) * 3
    return units


def read_units(step: Step, calls: dict[str, float], sizes: Sizes) -> float:
    units = calls.get("dynamodb.GetItem", 0) * sizes.units("appointment", 4)  # strongly consistent
    queries = calls.get("dynamodb.Query", 0)
    if step.function == "ScheduledChecksFunction":
        units += queries * 0.5  # keys-only index, eventually consistent, one small page
    elif step.operation in PARTITION_QUERIES:
        units += queries * math.ceil(sizes.partition_kb / 4)
    else:
        units += queries * 1.0  # small strongly consistent reads (refs, waiting events)
    return units


@dataclass
class CpuModel:
    """The handler's own CPU per invocation on Lambda, from the warm section or the assumption."""

    local_ms: dict[str, float]
    source: str
    share: float  # of a vCPU at the function's memory

    def lambda_ms(self, function: str) -> float:
        return self.local_ms.get(function, a("own_cpu_local_ms")) / self.share


WARM_OPERATION_OF = {
    "WebhookIngressFunction": "ingress",
    "EventProcessorFunction": "processor",
    "OpsApiFunction": "ops note",
    "OutboxRelayFunction": "relay",
    "ScheduledChecksFunction": "sweep",
}


def cpu_model(measured: dict[str, Any], memory_mb: int) -> CpuModel:
    share = min(1.0, memory_mb / a("vcpu_mb"))
    operations = (measured.get("warm") or {}).get("operations") or {}
    local: dict[str, float] = {}
    for function, name in WARM_OPERATION_OF.items():
        figures = operations.get(name)
        if not figures:
            continue
        own = figures["handler_ms"]["p50"] - figures["limit_ms"]["p50"]
        if function == "ScheduledChecksFunction":  # the warm sweep settles N due items in one invocation
            due = re.search(r"(\d+) due", str(figures.get("what", "")))
            own /= int(due.group(1)) if due else 100
        local[function] = max(0.5, own)
    source = "measured (warm: handler p50 minus its moto replay p50)" if local else "assumption (own_cpu_local_ms)"
    return CpuModel(local, source, share)


def billed_ms(step: Step, calls: dict[str, float], cpu: CpuModel) -> float:
    """Billed duration = own CPU + Σ calls x latency (per occurrence; a per-due-item step adds no own start-up)."""
    waiting = sum(n * latency_ms(name) for name, n in calls.items())
    own = cpu.lambda_ms(step.function) if (step.invokes or step.minus) else 0.0
    return own + waiting


def latency_ms(call: str) -> float:
    if call.startswith("autotask."):
        return a("ms_autotask")
    return a(LATENCY_OF.get(call, "ms_dynamodb"))


# -- the per-appointment cost ------------------------------------------------------------------------------


@dataclass
class Tally:
    """Billable quantities, by price key (plus counters that are not prices)."""

    quantity: dict[str, float] = field(default_factory=dict)

    def add(self, key: str, amount: float) -> None:
        self.quantity[key] = self.quantity.get(key, 0.0) + amount

    def scaled(self, factor: float) -> Tally:
        return Tally({key: value * factor for key, value in self.quantity.items()})

    def merged(self, other: Tally) -> Tally:
        out = Tally(dict(self.quantity))
        for key, value in other.quantity.items():
            out.add(key, value)
        return out


def per_appointment(
    measured_calls: dict[str, Counts], cpu: CpuModel, sizes: Sizes, memory_gb: float
) -> tuple[list[dict[str, Any]], Tally]:
    rows: list[dict[str, Any]] = []
    tally = Tally()
    for step in story():
        calls = step_calls(step, measured_calls)
        duration = billed_ms(step, calls, cpu)
        wru, rru = write_units(step, calls, sizes), read_units(step, calls, sizes)
        quantities = {
            "lambda_request": step.count * step.invokes,
            "lambda_gb_s_arm": step.count * memory_gb * duration / 1000,
            "apigw_rest_request": step.count * step.api_requests,
            "dynamodb_wru": step.count * wru,
            "dynamodb_rru": step.count * rru,
            # A batch of messages is sent in one request; the mapping receives and deletes each (low volume).
            "sqs_fifo_request": step.count * (calls.get("sqs.SendMessageBatch", 0) + 2 * step.sqs_messages),
            "ses_mail": step.count * calls.get("sesv2.SendEmail", 0),
            "eventbridge_custom_event": step.count * calls.get("events.PutEvents", 0),
            "log_bytes": step.count * step.invokes * a("log_bytes_per_invocation"),
            "autotask": step.count * sum(n for name, n in calls.items() if name.startswith("autotask.")),
            f"invocations:{step.function}": step.count * step.invokes,
            f"busy_ms:{step.function}": step.count * duration,
        }
        for key, value in quantities.items():
            tally.add(key, value)
        usd = sum(quantities[key] * PRICES[key].usd for key in quantities if key in PRICES)
        rows.append(
            {
                "what": step.what,
                "function": step.function,
                "count": step.count,
                "calls": calls,
                "billed_ms": duration,
                "wru": wru,
                "rru": rru,
                "usd": usd,
            }
        )
    # Cold starts: their INIT phase is billed too (a share of the invocations).
    return rows, tally


def cold_start_tally(tally: Tally, measured: dict[str, Any], cpu: CpuModel, memory_gb: float) -> tuple[Tally, str]:
    functions = ((measured.get("cold_start") or {}).get("functions")) or {}
    extra = Tally()
    for key, invocations in tally.quantity.items():
        if not key.startswith("invocations:"):
            continue
        function = key.split(":", 1)[1]
        init_local = functions.get(function, {}).get("cpu_ms", {}).get("median", a("init_cpu_ms"))
        extra.add("lambda_gb_s_arm", invocations * a("cold_start_share") * memory_gb * init_local / cpu.share / 1000)
    source = "measured (cold_start: CPU ms median)" if functions else "assumption (init_cpu_ms)"
    return extra, source


# -- fixed and volume-dependent lines of a month -----------------------------------------------------------


def console_month(appointments: float, sizes: Sizes, cpu: CpuModel, memory_gb: float) -> dict[str, Any]:
    """One console open ``console_hours_per_day``: GET /attention reads the 9-day window of by_day (all
    attributes) and loads each appointment of it with a recent record needing a human (``attention_at``); the
    screen adds 2 days of list."""
    per_day = appointments / 30.4  # calendar days: the window spans weekends too
    window = 9 * per_day  # [now - 2 days, now + 7 days)
    loads = a("attention_loaded_share") * window
    day_queries = 10 + math.ceil(window / 200)  # one per UTC day, paged by 200
    queries = day_queries + loads + 1 + 2  # + the unmatched page + the day's list (2 UTC days)
    rru = (
        0.5 * (window + 2 * per_day) * sizes.kb["appointment"] / 4  # index pages, eventually consistent
        + 0.5 * (day_queries + 3)  # each query reads at least half a unit
        + loads * math.ceil(sizes.partition_kb / 4)  # each load: the appointment's partition, strongly
    )
    refreshes = a("console_hours_per_day") * 3600 / a("console_refresh_seconds") * a("working_days")
    duration_ms = 2 * cpu.lambda_ms("OpsApiFunction") + queries * a("ms_dynamodb")
    requests = refreshes * a("console_requests_per_refresh")
    tally = Tally(
        {
            "apigw_rest_request": requests,
            "lambda_request": requests,
            "lambda_gb_s_arm": refreshes * memory_gb * duration_ms / 1000,
            "dynamodb_rru": refreshes * rru,
            "log_bytes": requests * a("log_bytes_per_invocation"),
            "invocations:OpsApiFunction": requests,
        }
    )
    loads_per_month = a("console_page_loads_per_day") * a("working_days")
    tally.add("cloudfront_request", loads_per_month * a("console_files"))
    tally.add("cloudfront_gb", loads_per_month * a("console_files_kb") / 1e6)
    tally.add("s3_get", loads_per_month * a("console_files"))
    return {
        "tally": tally,
        "queries_per_refresh": queries,
        "rru_per_refresh": rru,
        "duration_ms_per_refresh": duration_ms,
        "refreshes": refreshes,
        "window": window,
        "fits_29s": duration_ms < 29_000,
    }


def fixed_month(facts: TemplateFacts, measured_calls: dict[str, Counts], cpu: CpuModel, memory_gb: float) -> Tally:
    """What a deployed stack costs with no appointment at all."""
    sweep_calls = {k: float(v) for k, v in calls_of("sweep.nothing_due", measured_calls).items()}
    sweep = Step("sweep", "ScheduledChecksFunction", "sweep.nothing_due", MINUTES_PER_MONTH)
    sweep_ms = billed_ms(sweep, sweep_calls, cpu)
    tally = Tally()
    tally.add("lambda_request", MINUTES_PER_MONTH)
    tally.add("lambda_gb_s_arm", MINUTES_PER_MONTH * memory_gb * sweep_ms / 1000)
    tally.add("dynamodb_rru", MINUTES_PER_MONTH * sweep_calls.get("dynamodb.Query", 0) * 0.5)
    tally.add("scheduler_invocation", MINUTES_PER_MONTH)
    tally.add("log_bytes", MINUTES_PER_MONTH * a("log_bytes_per_invocation"))
    tally.add("invocations:ScheduledChecksFunction", MINUTES_PER_MONTH)
    tally.add("busy_ms:ScheduledChecksFunction", MINUTES_PER_MONTH * sweep_ms)
    tally.add("sqs_fifo_request", MINUTES_PER_MONTH * a("sqs_idle_receives_per_minute"))
    tally.add("secret_month", facts.secrets)
    tally.add("secret_call", a("secret_reads_per_month"))
    tally.add("alarm_metric", facts.alarm_metrics)
    tally.add("custom_metric", a("custom_metric_series"))
    tally.add("dashboard", facts.dashboards)
    return tally


def xray_traces(tally: Tally) -> float:
    """Traces recorded under the default sampling rule, function by function, the month's requests spread evenly."""
    reservoir = a("xray_reservoir_per_second") * SECONDS_PER_MONTH
    traces = 0.0
    for key, invocations in tally.quantity.items():
        if key.startswith("invocations:"):
            traces += min(invocations, reservoir) + a("xray_rate") * max(0.0, invocations - reservoir)
    return traces


LINE_NAMES = {
    "lambda_request": "Lambda requests",
    "lambda_gb_s_arm": "Lambda duration (GB-s, arm64)",
    "apigw_rest_request": "API Gateway REST requests",
    "dynamodb_wru": "DynamoDB writes (WRU, incl. GSI)",
    "dynamodb_rru": "DynamoDB reads (RRU)",
    "dynamodb_stream_read_by_lambda": "DynamoDB stream reads (by Lambda)",
    "sqs_fifo_request": "SQS FIFO requests",
    "ses_mail": "SES mails",
    "eventbridge_custom_event": "EventBridge custom events",
    "scheduler_invocation": "EventBridge Scheduler (sweep)",
    "logs_ingested": "CloudWatch Logs ingested (GB)",
    "custom_metric": "CloudWatch custom metrics (EMF)",
    "alarm_metric": "CloudWatch alarm metrics",
    "dashboard": "CloudWatch dashboard",
    "xray_trace": "X-Ray traces (Tracing: Active)",
    "secret_month": "Secrets Manager secrets",
    "secret_call": "Secrets Manager API calls",
    "cloudfront_request": "CloudFront requests (console)",
    "cloudfront_gb": "CloudFront data out (GB)",
    "s3_get": "S3 GETs (console files)",
}


CONSOLE_ONLY = ("cloudfront_request", "cloudfront_gb", "s3_get")


def priced_lines(tally: Tally, *, console: bool = False) -> list[dict[str, Any]]:
    """Every billable line of ``tally`` (logs and X-Ray traces derived from its invocations)."""
    month = tally.merged(Tally())
    month.add("logs_ingested", month.quantity.get("log_bytes", 0) / 1e9)
    month.add("xray_trace", xray_traces(month))
    return [
        {
            "line": name,
            "price": key,
            "quantity": month.quantity.get(key, 0.0),
            "usd": month.quantity.get(key, 0.0) * PRICES[key].usd,
        }
        for key, name in LINE_NAMES.items()
        if console or key not in CONSOLE_ONLY
    ]


def bill(appointments: float, variable: Tally, fixed: Tally, console: dict[str, Any], sizes: Sizes) -> dict[str, Any]:
    """The stack's month without its console, the console's own lines, and what accumulates."""
    month = fixed.merged(variable.scaled(appointments))
    month.add("dynamodb_stream_read_by_lambda", 1)  # listed at its price: nothing
    lines = priced_lines(month)
    console_lines = [line for line in priced_lines(console["tally"], console=True) if line["usd"] > 0]
    kept = a("months_kept")
    table_gb = kept * appointments * stored_bytes_per_appointment(sizes) / 1e9
    logs_gb = kept * (month.quantity.get("log_bytes", 0) + console["tally"].quantity.get("log_bytes", 0)) / 1e9
    storage = [
        {"line": f"DynamoDB storage after {kept:g} months", "price": "dynamodb_storage", "quantity": table_gb},
        {"line": f"Point-in-time recovery after {kept:g} months", "price": "dynamodb_pitr", "quantity": table_gb},
        {"line": f"CloudWatch Logs kept after {kept:g} months", "price": "logs_stored", "quantity": logs_gb},
    ]
    for line in storage:
        line["usd"] = line["quantity"] * PRICES[str(line["price"])].usd
    total = sum(line["usd"] for line in lines)
    console_usd = sum(line["usd"] for line in console_lines)
    return {
        "appointments": appointments,
        "lines": lines,
        "console_lines": console_lines,
        "storage": storage,
        "total_usd": total,
        "console_usd": console_usd,
        "console_fits_29s": console["fits_29s"],
        "with_console_usd": total + console_usd,
        "storage_usd": sum(line["usd"] for line in storage),
        "autotask_requests": month.quantity.get("autotask", 0.0),
    }


def stored_bytes_per_appointment(sizes: Sizes) -> float:
    """Its items once its life is over (history, mails, ref, ticket link), the by_day copy, 100 B per index entry."""
    b = {kind: kb * 1000 for kind, kb in sizes.kb.items()}
    return b["appointment"] * 2 + 100 + 6 * b["history"] + 2.4 * b["mail"] + 2 * b["small"]


# -- limits -----------------------------------------------------------------------------------------------


def peak_per_second(per_month: float) -> float:
    """A monthly count's rate in the busiest hour: ``peak_hour_share`` of a working day in one hour."""
    return per_month / a("working_days") * a("peak_hour_share") / 3600


def autotask_section(per_appointment_requests: float, volumes: list[float]) -> list[dict[str, Any]]:
    rows = []
    for appointments in volumes:
        month = appointments * per_appointment_requests
        peak_hour = month / a("working_days") * a("peak_hour_share")
        rows.append(
            {
                "appointments": appointments,
                "requests_per_month": month,
                "peak_hour": peak_hour,
                "share_of_limit": peak_hour / LIMITS["autotask_per_hour"][0],
            }
        )
    return rows


def scale_section(variable: Tally, facts: TemplateFacts, cpu: CpuModel, total: float, msps: int) -> dict[str, Any]:
    """100 MSPs, ``total`` appointments a month: one stack each, or one multi-tenant stack."""
    q = variable.quantity
    per_msp = total / msps
    rule_firings = a("reminders") + a("pre_notices") + a("no_shows")
    due_per_minute = peak_per_second(total * rule_firings) * 60
    # Appointment writes that carry due keys: every transaction of a Step (one appointment item each).
    transactions = sum(step.count * step_calls(step, {}).get("dynamodb.TransactWriteItems", 0) for step in story())
    index_wcu = peak_per_second(total * transactions) * 2  # a moving due key: delete + put
    per_shard_wcu = index_wcu / facts.due_shards
    needed_shards = max(1, math.ceil(index_wcu / (LIMITS["partition_wcu"][0] / 2)))  # half the partition: headroom
    per_item_ms = billed_ms(
        Step("", "ScheduledChecksFunction", "sweep.one_reminder", 1, invokes=0, minus="sweep.nothing_due"),
        step_calls(
            Step("", "ScheduledChecksFunction", "sweep.one_reminder", 1, invokes=0, minus="sweep.nothing_due"), {}
        ),
        cpu,
    )
    sweep_capacity = 45_000 / per_item_ms  # 55 s timeout, 10 s reserve, one item after another
    mails_per_s = peak_per_second(total * q["ses_mail"])
    events_per_s = peak_per_second(total * q["eventbridge_custom_event"])
    webhooks_per_s = peak_per_second(total * q["apigw_rest_request"])
    # Concurrency at peak: Σ invocations/s x their billed seconds (Little's law).
    concurrency = sum(
        peak_per_second(total * q[f"invocations:{function}"])
        * (q[f"busy_ms:{function}"] / 1000)
        / max(q[f"invocations:{function}"], 1e-9)
        for function in {key.split(":", 1)[1] for key in q if key.startswith("invocations:")}
    )
    autotask_peak_per_msp = per_msp * q["autotask"] / a("working_days") * a("peak_hour_share")
    return {
        "msps": msps,
        "appointments": total,
        "per_msp": per_msp,
        "due_items_per_minute_peak": due_per_minute,
        "due_items_per_minute_peak_per_msp": due_per_minute / msps,
        "due_index_wcu_peak": index_wcu,
        "due_index_wcu_per_shard": per_shard_wcu,
        "due_shards": facts.due_shards,
        "due_shards_needed": needed_shards,
        "sweep_ms_per_due_item": per_item_ms,
        "sweep_capacity_per_minute": sweep_capacity,
        "mails_per_second_peak": mails_per_s,
        "mails_per_second_peak_per_msp": mails_per_s / msps,
        "events_per_second_peak": events_per_s,
        "webhooks_per_second_peak": webhooks_per_s,
        "sqs_sends_per_second_peak": peak_per_second(total * (1 + a("reschedules") + a("ticket_webhooks"))),
        "lambda_concurrency_peak": concurrency,
        "autotask_peak_hour_per_msp": autotask_peak_per_msp,
        "sweeps_per_month_one_stack_each": msps * MINUTES_PER_MONTH,
        "fifo_throughput_limit": facts.fifo_throughput_limit,
    }


# -- run ---------------------------------------------------------------------------------------------------

VOLUMES = (1_000.0, 1_000_000.0)
SCALE_MSPS = 100
SCALE_APPOINTMENTS = 10_000_000.0


def _measured_calls(measured: dict[str, Any]) -> dict[str, Counts]:
    operations = (measured.get("calls") or {}).get("operations") or {}
    return {name: dict(figures["calls"]) for name, figures in operations.items() if figures.get("calls")}


def _sizes(measured: dict[str, Any]) -> Sizes:
    given = measured.get("sizes") or {}
    if all(f"{kind}_item_bytes" in given for kind in ("appointment", "history", "mail")):
        kb = {kind: float(given[f"{kind}_item_bytes"]) / 1000 for kind in ("appointment", "history", "mail")}
        return Sizes(kb | {"small": FALLBACK_ITEM_BYTES["small"] / 1000}, "measured (sizes section)")
    try:
        return Sizes({k: v / 1000 for k, v in measure_item_bytes().items()}, "built by DynamoAppointmentStore here")
    except Exception:  # the model still runs on the fallback sizes, and says so
        return Sizes({k: v / 1000 for k, v in FALLBACK_ITEM_BYTES.items()}, "assumption (FALLBACK_ITEM_BYTES)")


def run(quick: bool = False, measured: dict[str, Any] | None = None) -> dict[str, Any]:
    """The model; ``quick`` changes nothing (it is arithmetic), it is accepted for the orchestrator."""
    started = time.perf_counter()
    measured = measured or {}
    facts = template_facts()
    memory_gb = facts.memory_mb / 1024
    measured_calls = _measured_calls(measured)
    sizes = _sizes(measured)
    cpu = cpu_model(measured, facts.memory_mb)
    rows, variable = per_appointment(measured_calls, cpu, sizes, memory_gb)
    cold, cold_source = cold_start_tally(variable, measured, cpu, memory_gb)
    variable = variable.merged(cold)
    fixed = fixed_month(facts, measured_calls, cpu, memory_gb)
    bills = {}
    consoles = {}
    for volume in VOLUMES:
        console = console_month(volume, sizes, cpu, memory_gb)
        bills[f"{volume:.0f}"] = bill(volume, variable, fixed, console, sizes)
        consoles[f"{volume:.0f}"] = {k: v for k, v in console.items() if k != "tally"} | {
            "usd": bills[f"{volume:.0f}"]["console_usd"]
        }
    per_appt_usd = {key: value * PRICES[key].usd for key, value in variable.quantity.items() if key in PRICES} | {
        "logs_ingested": variable.quantity.get("log_bytes", 0) / 1e9 * PRICES["logs_ingested"].usd
    }
    fixed_usd = sum(q * PRICES[k].usd for k, q in fixed.quantity.items() if k in PRICES) + (
        fixed.quantity.get("log_bytes", 0) / 1e9 * PRICES["logs_ingested"].usd
    )
    return {
        "region": REGION,
        "prices_read_on": READ_ON,
        "prices": {k: vars(p) for k, p in PRICES.items()},
        "assumptions": {k: vars(v) for k, v in ASSUMPTIONS.items()},
        "limits": {k: {"value": v, "source": s} for k, (v, s) in LIMITS.items()},
        "template": vars(facts),
        "inputs": {
            "calls": "measured (calls section)" if measured_calls else "budgets (tools/bench/call_budgets.py)",
            "cpu": cpu.source,
            "cpu_local_ms": cpu.local_ms,
            "cpu_share": cpu.share,
            "cold_start": cold_source,
            "sizes": sizes.source,
            "item_kb": sizes.kb,
        },
        "per_appointment": {
            "rows": rows,
            "usd": per_appt_usd,
            "total_usd": sum(per_appt_usd.values()),
            "autotask_requests": variable.quantity.get("autotask", 0.0),
        },
        "fixed_usd": fixed_usd,
        "monthly": bills,
        "console": consoles,
        "autotask": autotask_section(
            variable.quantity.get("autotask", 0.0), [*VOLUMES, SCALE_APPOINTMENTS / SCALE_MSPS]
        ),
        "scale": scale_section(variable, facts, cpu, SCALE_APPOINTMENTS, SCALE_MSPS),
        "seconds": time.perf_counter() - started,
    }


# -- markdown ----------------------------------------------------------------------------------------------


def _usd(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) < 0.01:
        return f"{value:.5f}"
    return f"{value:,.2f}"


def _n(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"


def _price_cell(key: str, prices: dict[str, Any]) -> str:
    price = prices[key]
    unit = price["usd"]
    shown = f"${unit * 1e6:.4g}/M" if unit and unit < 1e-3 else f"${unit:.4g}"
    return shown + ("" if price["verified"] else " (not verified)")


def _per_appointment_table(result: dict[str, Any]) -> list[str]:
    lines = [
        "| step | function | per appt | AWS calls each | billed ms each | WRU each | RRU each | $ per 1,000 appts |",
        "|---|---|---:|---|---:|---:|---:|---:|",
    ]
    for row in result["per_appointment"]["rows"]:
        calls = ", ".join(f"{name.split('.', 1)[1]} {n:g}" for name, n in row["calls"].items()) or "none"
        lines.append(
            f"| {row['what']} | {row['function'].removesuffix('Function')} | {row['count']:g} | {calls} | "
            f"{row['billed_ms']:.0f} | {row['wru']:g} | {row['rru']:g} | {row['usd'] * 1000:.4f} |"
        )
    return lines


def _bill_table(result: dict[str, Any]) -> list[str]:
    prices = result["prices"]
    volumes = list(result["monthly"])
    head = " | ".join(f"{float(v):,.0f}/month: quantity | $" for v in volumes)
    lines = [f"| line | unit price | {head} |", "|---|---|" + "---:|---:|" * len(volumes)]
    for index, line in enumerate(result["monthly"][volumes[0]]["lines"]):
        cells = []
        for volume in volumes:
            this = result["monthly"][volume]["lines"][index]
            cells += [_n(this["quantity"]), _usd(this["usd"])]
        lines.append(f"| {line['line']} | {_price_cell(line['price'], prices)} | {' | '.join(cells)} |")
    lines.append(_total_row("**the stack a month**", "total_usd", result, volumes))
    for line in result["monthly"][volumes[-1]]["console_lines"]:
        cells = []
        for volume in volumes:
            found = [c for c in result["monthly"][volume]["console_lines"] if c["price"] == line["price"]]
            cells += [_n(found[0]["quantity"]), _usd(found[0]["usd"])] if found else ["0", "0"]
        lines.append(f"| console: {line['line']} | {_price_cell(line['price'], prices)} | {' | '.join(cells)} |")
    lines.append(_total_row("one dispatcher console", "console_usd", result, volumes))
    lines.append(_total_row("**with one console**", "with_console_usd", result, volumes))
    for index, line in enumerate(result["monthly"][volumes[0]]["storage"]):
        cells = []
        for volume in volumes:
            this = result["monthly"][volume]["storage"][index]
            cells += [f"{this['quantity']:,.2f} GB", _usd(this["usd"])]
        lines.append(f"| {line['line']} | {_price_cell(line['price'], prices)} | {' | '.join(cells)} |")
    return lines


def _total_row(name: str, key: str, result: dict[str, Any], volumes: list[str]) -> str:
    cells = " | ".join(f" | **{_usd(result['monthly'][v][key])}**" for v in volumes)
    return f"| {name} | |{cells} |"


def _prices_table(result: dict[str, Any]) -> list[str]:
    lines = ["| price | $ | per | source | verified |", "|---|---:|---|---|---|"]
    for key, price in result["prices"].items():
        lines.append(
            f"| {key} | {price['usd']:.10g} | {price['per']} | {price['source']} | "
            f"{'yes' if price['verified'] else 'not verified'} |"
        )
    return lines


def _assumptions_table(result: dict[str, Any]) -> list[str]:
    lines = ["| assumption | value | why |", "|---|---:|---|"]
    lines += [f"| {key} | {item['value']:g} | {item['why']} |" for key, item in result["assumptions"].items()]
    return lines


def _scale_table(result: dict[str, Any]) -> list[str]:
    s, limits = result["scale"], result["limits"]
    behind = s["due_items_per_minute_peak"] > s["sweep_capacity_per_minute"]
    ses_over = s["mails_per_second_peak"] > limits["ses_rate"]["value"]
    lines = [
        f"{s['msps']} MSPs, {s['appointments']:,.0f} appointments a month ({s['per_msp']:,.0f} each); peak = "
        f"{a('peak_hour_share'):.0%} of a working day in one hour.",
        "",
        "| what | at peak (all MSPs) | limit | verdict |",
        "|---|---:|---|---|",
        f"| due index writes (`due` GSI, moving keys count 2) | {s['due_index_wcu_peak']:,.0f} WCU/s total, "
        f"{s['due_index_wcu_per_shard']:,.0f} per shard with DUE_SHARDS={s['due_shards']} | "
        f"{limits['partition_wcu']['value']:,.0f} WCU/s per partition | one stack: DUE_SHARDS ≥ "
        f"{s['due_shards_needed']} (half a partition each); {s['due_shards']} is enough |",
        f"| due items to settle per minute | {s['due_items_per_minute_peak']:,.0f} "
        f"({s['due_items_per_minute_peak_per_msp']:,.0f} per MSP) | one sweep settles them one after another: "
        f"~{s['sweep_ms_per_due_item']:.0f} ms each, {s['sweep_capacity_per_minute']:,.0f} per 45 s run | "
        f"{'**one multi-tenant stack falls behind**; ' if behind else ''}"
        "shards do not help: the sweep is sequential |",
        f"| SES mails | {s['mails_per_second_peak']:,.1f}/s ({s['mails_per_second_peak_per_msp']:,.2f}/s per MSP) | "
        f"{limits['ses_rate']['value']:g}/s per account (not verified) | "
        f"{'**over** in one account: raise the quota' if ses_over else 'fits'} |",
        f"| EventBridge PutEvents (1 entry each) | {s['events_per_second_peak']:,.0f}/s | "
        f"{limits['putevents_tps']['value']:,.0f}/s per account | fits |",
        f"| SQS FIFO sends (one batch per webhook) | {s['sqs_sends_per_second_peak']:,.0f}/s | "
        f"{limits['sqs_fifo_tps']['value']:g} TPS per API action (FifoThroughputLimit={s['fifo_throughput_limit']}: "
        "high throughput mode, more per partition) | fits |",
        f"| API Gateway (webhooks, ops) | {s['webhooks_per_second_peak']:,.0f} req/s "
        f"({s['webhooks_per_second_peak'] / s['msps']:,.1f} per MSP) | 100 req/s per stack (WebhookApi throttling, "
        "template) | "
        f"{'**one multi-tenant stack over**; ' if s['webhooks_per_second_peak'] > 100 else ''}per MSP stack fits |",
        f"| Lambda concurrency (Σ rate x billed s) | {s['lambda_concurrency_peak']:,.1f} | "
        f"{limits['lambda_concurrency']['value']:,.0f} per account | fits (console polling not included) |",
        f"| Autotask requests, busiest hour, per MSP | {s['autotask_peak_hour_per_msp']:,.0f} | "
        f"{limits['autotask_per_hour']['value']:,.0f}/h per database, shared | fits (each MSP its own database) |",
        f"| TimeZest poller | {TIMEZEST_RATE_TEXT} | {limits['timezest_per_minute']['value']:g}/60 s per account | "
        "per MSP, fixed: volume changes pages, not the rate |",
        "| Calendly, Cal.com | webhooks in only | — | the desk calls neither API: no vendor limit applies |",
        f"| the sweep's fixed cost | {MINUTES_PER_MONTH:,.0f} runs/month per stack; "
        f"{s['sweeps_per_month_one_stack_each']:,.0f} for one stack per MSP | — | "
        f"${result['fixed_usd']:,.2f}/month per stack before any appointment (fixed lines above) |",
    ]
    return lines


TIMEZEST_RATE_TEXT = "150 requests/min budget (TimeZestRequestsPerMinute)"


def markdown(result: dict[str, Any]) -> str:
    inputs, t = result["inputs"], result["template"]
    per = result["per_appointment"]
    ranked = sorted(per["usd"].items(), key=lambda kv: -kv[1])
    biggest = ", ".join(f"{LINE_NAMES.get(key, key)} ${usd:.5f}" for key, usd in ranked if usd >= 5e-6)
    lines = [
        "## Cost model and scale on paper",
        "",
        f"Arithmetic, not a measurement: calls per operation ({inputs['calls']}) x how often each happens in a "
        f"typical appointment (assumptions below) x unit prices ({result['region']}, read on "
        f"{result['prices_read_on']}; *not verified* = the figure was read on a third-party copy of the AWS page "
        "named, not on the AWS page itself). List prices, no free tier (an account's free tier is shared by all "
        f"its stacks). Template: {t['memory_mb']} MB arm64, DUE_SHARDS={t['due_shards']}, sweep every minute, "
        f"{t['alarms']} alarms ({t['alarm_metrics']} alarm metrics), {t['secrets']} secrets, TimeZest polling "
        f"{'on' if t['timezest_polling'] else 'off (default)'}.",
        "",
        "Billed duration per invocation = own CPU / "
        f"{inputs['cpu_share']:.2f} (a {t['memory_mb']} MB share of a vCPU) + Σ calls x latency "
        f"(DynamoDB {a('ms_dynamodb'):g} ms, transaction {a('ms_dynamodb_transaction'):g} ms, SQS {a('ms_sqs'):g} ms, "
        f"SES {a('ms_ses'):g} ms, PutEvents {a('ms_events'):g} ms, Autotask {a('ms_autotask'):g} ms: assumptions). "
        f"Own CPU: {inputs['cpu']}; cold starts: {inputs['cold_start']} x {a('cold_start_share'):.0%} of invocations. "
        f"Item sizes ({inputs['sizes']}): appointment {inputs['item_kb']['appointment']:.2f} KB, history "
        f"{inputs['item_kb']['history']:.2f} KB, mail {inputs['item_kb']['mail']:.2f} KB; a transaction costs 2 WRU "
        "per KB of each item, each GSI write 1 more (by_day holds every attribute; due holds keys, 2 writes when "
        "the key moves).",
        "",
        "### 1. One appointment",
        "",
        *_per_appointment_table(result),
        "",
        f"Per appointment: **${per['total_usd']:.5f}** "
        f"({biggest}), "
        f"{per['autotask_requests']:.2f} Autotask requests. DynamoDB stream reads by the relay: free "
        "(Lambda trigger). Fixed, whatever the volume: "
        f"**${result['fixed_usd']:,.2f}/month** (the sweep {MINUTES_PER_MONTH:,.0f} runs, idle SQS polling, alarms, "
        "metrics, dashboard, secrets).",
        "",
        "### Monthly bill",
        "",
        *_bill_table(result),
        "",
        *_console_note(result),
        "",
        "### 2. Autotask API budget",
        "",
        f"{per['autotask_requests']:.2f} requests per appointment: a note is "
        f"{a('psa_note_requests'):g} requests (search the ticket's notes, add one), a no-show 3 (status too); "
        f"{a('on_ticket'):.0%} of appointments on an Autotask ticket. Limit: "
        f"{result['limits']['autotask_per_hour']['value']:,.0f} per rolling hour per Autotask database, shared with "
        "every other integration (Autotask's ThreadLimiting page, linked under Limits below).",
        "",
        "| appointments a month (one Autotask database) | requests a month | busiest hour | share of 10,000/h |",
        "|---:|---:|---:|---:|",
        *[
            f"| {row['appointments']:,.0f} | {row['requests_per_month']:,.0f} | {row['peak_hour']:,.0f} | "
            f"{row['share_of_limit']:.1%}{' **over**' if row['share_of_limit'] > 1 else ''} |"
            for row in result["autotask"]
        ],
        "",
        f"The last row is one MSP of {SCALE_MSPS} sharing {SCALE_APPOINTMENTS:,.0f} a month. The write-back's "
        f"reserved concurrency ({t['psa_writeback_concurrency']}) matches Autotask's 3 threads per endpoint.",
        "",
        "### 3. Scale on paper",
        "",
        *_scale_table(result),
        "",
        "### Prices and assumptions",
        "",
        *_prices_table(result),
        "",
        *_assumptions_table(result),
        "",
        "Limits: "
        + "; ".join(f"{key} {item['value']:,.0f} ({item['source']})" for key, item in result["limits"].items())
        + ".",
        "",
        f"Model run: {result['seconds'] * 1000:.0f} ms.",
    ]
    return "\n".join(lines) + "\n"


def _console_note(result: dict[str, Any]) -> list[str]:
    lines = [
        "The console lines (in the bill: API Gateway, Lambda, RRU) are one console open "
        f"{a('console_hours_per_day'):g} h "
        f"a working day, refreshing every {a('console_refresh_seconds'):g} s. GET /attention reads every appointment "
        "of its 9-day window from `by_day` and loads each one with a record needing a human in the last 2 days "
        f"(`attention_at`; assumed {a('attention_loaded_share'):.0%}): the listing grows with the stack's volume.",
        "",
        "| appointments/month in the stack | appointments in the window | queries per refresh | RRU per refresh | "
        "billed ms per refresh | $ a month per console | fits API Gateway's 29 s |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for volume, console in result["console"].items():
        lines.append(
            f"| {float(volume):,.0f} | {console['window']:,.0f} | {console['queries_per_refresh']:,.0f} | "
            f"{console['rru_per_refresh']:,.0f} | {console['duration_ms_per_refresh']:,.0f} | {_usd(console['usd'])} | "
            f"{'yes' if console['fits_29s'] else '**no**'} |"
        )
    lines += [
        "",
        "A stack's console therefore costs more than its appointments at low volume, and at high volume in one "
        "stack GET /attention cannot answer at all (its reads are sequential: one query per loaded appointment).",
    ]
    return lines


if __name__ == "__main__":
    print(markdown(run()))
