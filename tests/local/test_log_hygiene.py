"""Log hygiene and the calls each function really makes, over the whole product run through the local runner.

One run of the representative flows through the real handlers (AWS simulated by the runner's embedded
moto): every webhook sample of every source, the ops API's actions, sweeps that send mail, the outbox
relay, a bounce and a complaint through mail feedback, the PSA write-back and the TimeZest poller. While it
runs, the Powertools logger writes into a buffer and the ``logging`` root is captured too; each function
invocation is framed by the function's name. Then:

- no line holds a webhook secret, the ops token, a PSA credential, the TimeZest key, or any customer's
  email, phone or name used in the flows;
- every Powertools line names the function's own service (its ``POWERTOOLS_SERVICE_NAME``), never
  ``service_undefined`` nor another function's; the package's own modules (standard ``logging``) write
  through the same JSON handler, never as plain text on the root logger;
- keys appended for one record (``append_context_keys``) never reach a line outside that record's
  function, nor stay on the logger after the invocation;
- each AWS call a function makes is on its row of the least-privilege table
  (``tests/template/test_least_privilege.py``).
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from appointments.observability import logger
from localdev.fake_psa import DevCredentials
from localdev.samples import SOURCES, shift, shift_days
from localdev.signing import DEV_CONNECTWISE_SIGNING_KEY, DEV_SECRETS
from localdev.template import TEMPLATE
from tests.local.conftest import OPS_TOKEN, START, running
from tests.template.test_least_privilege import (
    ALLOWED,
    BUS,
    EVENT_QUEUE,
    INDEXES,
    PSA_CREDENTIALS,
    SES_CONFIGURATION_SET,
    SES_IDENTITIES,
    TABLE,
    WEBHOOK_SECRETS,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.local.conftest import LocalRunner

EVENTS = Path(__file__).resolve().parents[2] / "events"
SAMPLES = sorted(p.relative_to(EVENTS).as_posix() for p in EVENTS.glob("*/*.json") if p.parent.name in DEV_SECRETS)
AUTH = {"Authorization": f"Bearer {OPS_TOKEN}", "Content-Type": "application/json"}

# Customers in the samples under events/ and in the flows below: none may reach a log line.
CUSTOMER_DATA = [
    "Dana Customer",
    "Dana Reyes",
    "Lee Park",
    "Marcus Bell",
    "dana.customer@client.example",
    "dana@example.com",
    "dana@reyesdental.example",
    "lee@parklaw.example",
    "marcus@bellhvac.example",
    "+1 212 555 0100",
    "+12125550100",
    "Robin Vale",
    "robin.vale@hollowcreek.example",
    "+1 646 555 0142",
    "Pat Customer",
    "pat@client.example",
]
# Per-record keys: only the function that appends them may carry them, and only while the record runs.
RECORD_KEYS = {
    "event-processor": {"source", "event_kind", "delivery_id"},
    "mail-feedback": {"sns_message_id"},
}


def secrets() -> list[str]:
    dev = DevCredentials()
    values = [v for source, v in DEV_SECRETS.items() if source != "connectwise"]  # a company id, not a secret
    values += ["dev-halopsa-password", DEV_CONNECTWISE_SIGNING_KEY, OPS_TOKEN]
    values += [
        dev.autotask_integration_code,
        dev.autotask_secret,
        dev.connectwise_public_key,
        dev.connectwise_private_key,
        dev.halo_client_secret,
    ]
    return [v for v in values if v]


@dataclass
class Capture:
    """Every log line, each with the function whose invocation wrote it (None: the runner's own)."""

    lines: list[tuple[str | None, str]] = field(default_factory=list)
    leftover_keys: list[tuple[str, set[str]]] = field(default_factory=list)
    calls: dict[str, set[tuple[str, str]]] = field(default_factory=lambda: defaultdict(set))
    services: dict[str, str] = field(default_factory=dict)


_current = threading.local()


class _Collect(logging.Handler):
    def __init__(self, capture: Capture, stream: io.StringIO) -> None:
        super().__init__(logging.DEBUG)
        self.capture = capture
        self.stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(("werkzeug", "moto", "localdev")):
            return  # the runner's machinery, never deployed
        extras = {
            k: v for k, v in record.__dict__.items() if k not in logging.LogRecord("", 0, "", 0, "", (), None).__dict__
        }
        text = f"{record.name} {record.levelname} {record.getMessage()} {extras!r}"
        if record.exc_info:
            text += " " + logging.Formatter().formatException(record.exc_info)
        self.capture.lines.append((getattr(_current, "function", None), text))


def _iam_actions(operation: str, params: dict[str, Any]) -> set[tuple[str, str]]:
    """The IAM actions and resources (as the least-privilege table names them) one API call needs."""
    table = TABLE if params.get("IndexName") is None else INDEXES
    match operation:
        case "TransactWriteItems":
            kinds = {next(iter(item)) for item in params["TransactItems"]}
            names = {
                "Put": "PutItem",
                "Update": "UpdateItem",
                "Delete": "DeleteItem",
                "ConditionCheck": "ConditionCheckItem",
            }
            return {(f"dynamodb:{names[k]}", TABLE) for k in kinds}
        case "GetItem" | "PutItem" | "UpdateItem" | "DeleteItem" | "Query" | "BatchGetItem" | "Scan":
            return {(f"dynamodb:{operation}", table)}
        case "SendMessage" | "SendMessageBatch":
            return {("sqs:SendMessage", EVENT_QUEUE if params["QueueUrl"].endswith(".fifo") else params["QueueUrl"])}
        case "GetSecretValue":
            name = WEBHOOK_SECRETS if "Webhook" in params["SecretId"] else PSA_CREDENTIALS
            return {("secretsmanager:GetSecretValue", name)}
        case "SendEmail":
            needed = {("ses:SendEmail", SES_IDENTITIES), ("ses:SendEmail", SES_CONFIGURATION_SET)}
            if "Raw" in params.get("Content", {}):
                needed |= {("ses:SendRawEmail", SES_IDENTITIES), ("ses:SendRawEmail", SES_CONFIGURATION_SET)}
            return needed
        case "PutEvents":
            return {("events:PutEvents", BUS)}
    return {(operation, "?")}


@pytest.fixture(scope="module")
def run() -> Iterator[Capture]:
    capture = Capture()
    buffer = io.StringIO()
    root = logging.getLogger()
    collect = _Collect(capture, buffer)
    previous_level = root.level
    root.addHandler(collect)
    root.setLevel(logging.INFO)
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous_stream = handler.setStream(buffer)
    session = boto3._get_default_session()

    def record_call(model: Any, params: dict[str, Any], **_: Any) -> None:
        function = getattr(_current, "function", None)
        if function is not None:
            capture.calls[function] |= _iam_actions(model.name, params)

    session.events.register("provide-client-params.*.*", record_call)
    try:
        with running(TEMPLATE) as local:
            _frame_invocations(local, capture, buffer)
            _flows(local)
    finally:
        session.events.unregister("provide-client-params.*.*", record_call)
        handler.setStream(previous_stream)
        root.removeHandler(collect)
        root.setLevel(previous_level)
    yield capture


def _frame_invocations(local: LocalRunner, capture: Capture, buffer: io.StringIO) -> None:
    """Each handler call marks its lines with the function's name (the runner runs one at a time)."""
    runner: Any = local.runner
    for name, handler in list(runner._handlers.items()):
        capture.services[name] = runner._specs[name].environment["POWERTOOLS_SERVICE_NAME"]

        def framed(event: Any, context: Any, *, _name: str = name, _handler: Any = handler) -> Any:
            _current.function = _name
            start = buffer.tell()
            try:
                return _handler(event, context)
            finally:
                written = buffer.getvalue()[start:]
                capture.lines += [(_name, line) for line in written.splitlines() if line.strip()]
                keys = set(logger.get_current_keys()) | set(logger.thread_safe_get_current_keys())
                capture.leftover_keys.append((_name, keys))
                _current.function = None

        runner._handlers[name] = framed


def _flows(local: LocalRunner) -> None:
    assert local.post("/_local/reset").status == 200
    assert local.post("/_local/clock", {"now": START.isoformat()}).status == 200
    # Every webhook sample of every source, moved to the runner's clock.
    documents = {relative: json.loads((EVENTS / relative).read_text()) for relative in SAMPLES}
    days = shift_days([(r.split("/")[0], d) for r, d in documents.items() if r.split("/")[0] in SOURCES], local.now())
    for relative, document in documents.items():
        source = relative.split("/")[0]
        body = json.dumps(shift(source, document, days) if source in SOURCES else document).encode()
        assert local.send(relative, body=body).status in (202, 200, 400, 401, 409, 422), relative
    assert local.post("/_local/settle").status == 200
    # The ops API: a phone booking on an Autotask ticket (the write-back), a search by email, actions.
    start = START.replace(hour=16, minute=0, second=0)
    created = local.request(
        "POST",
        "/appointments",
        body=json.dumps(
            {
                "start": start.isoformat(),
                "end": (start + timedelta(minutes=30)).isoformat(),
                "timezone": "America/New_York",
                "type": "remote_call_in",
                "customer": {
                    "name": "Robin Vale",
                    "email": "robin.vale@hollowcreek.example",
                    "phone": "+1 646 555 0142",
                },
                "technicians": [{"id": "29683", "name": "Sam Okafor"}],
                "ticket": {"system": "autotask", "id": "48213", "number": "T20261123.0042"},
            }
        ).encode(),
        headers=AUTH,
    )
    assert created.status == 201, created.body
    appointment_id = created.json()["id"]
    assert local.post("/_local/settle").status == 200
    for path in (
        "/appointments?q=robin.vale@hollowcreek.example",
        f"/appointments/{appointment_id}",
        "/attention",
        "/unmatched",
    ):
        assert local.request("GET", path, headers=AUTH).status == 200, path
    actions = [
        ("notes", {"text": "Robin Vale asked for a call on +1 646 555 0142"}),
        ("contact-attempts", {"outcome": "voicemail", "note": "voicemail for Robin Vale"}),
        (
            "reschedule",
            {
                "start": (start + timedelta(hours=1)).isoformat(),
                "end": (start + timedelta(hours=1, minutes=30)).isoformat(),
            },
        ),
    ]
    for action, document in actions:
        reply = local.request(
            "POST", f"/appointments/{appointment_id}/{action}", body=json.dumps(document).encode(), headers=AUTH
        )
        assert reply.status in (200, 422), (action, reply.body)
    assert local.request("POST", "/checks/run", body=b"{}", headers=AUTH).status == 200
    assert local.post("/_local/settle").status == 200
    # A TimeZest booking for the poller.
    tomorrow = START + timedelta(days=1)
    request = {
        "id": "sr_log_hygiene",
        "status": "scheduled",
        "appointment_type_id": "apty_remote30",
        "end_user_name": "Pat Customer",
        "end_user_email": "pat@client.example",
        "associated_entities": [{"type": "connectwise_psa/service_ticket", "id": 4711, "number": "#T20264711"}],
        "resources": [{"type": "team", "id": "team_1", "name": "Tier 1"}],
        "scheduled_agents": [],
        "selected_start_time": int(tomorrow.timestamp()),
        "selected_time_zone": "America/New_York",
        "scheduling_url": "https://msp.timezest.com/r/log-1",
    }
    assert local.post("/_local/timezest/requests", request).status == 200
    # The clock through the rules: reminders, pre-notices, auto-cancels, no-shows, mails and the write-back.
    for hours in (1, 2, 3, 1, 1, 1, 2, 6, 12, 24):
        assert local.post("/_local/clock", {"advance_seconds": hours * 3600}).status == 200
        assert local.post("/_local/settle").status == 200
    # Mail feedback: a bounce and a complaint on mails that went out.
    mails = local.get("/_local/outbox").json()["items"]
    assert mails, "no mail went out"
    assert local.post("/_local/ses/bounce", {"message_id": mails[0]["message_id"], "type": "Permanent"}).status == 200
    assert local.post("/_local/ses/complaint", {"message_id": mails[-1]["message_id"]}).status == 200
    assert local.post("/_local/settle").status == 200


def test_the_flows_ran_every_function(run: Capture) -> None:
    ran = {function for function, _ in run.lines if function is not None} | set(run.calls)
    assert ran == set(ALLOWED)


@pytest.mark.parametrize("kind", ["secrets", "customer data"])
def test_no_line_holds_a_secret_or_customer_data(run: Capture, kind: str) -> None:
    needles = secrets() if kind == "secrets" else CUSTOMER_DATA
    found = [
        (function, needle, line[:300])
        for function, line in run.lines
        for needle in needles
        if needle.lower() in line.lower()
    ]
    assert found == []


def _json_lines(run: Capture) -> list[tuple[str, dict[str, Any]]]:
    parsed = []
    for function, line in run.lines:
        if function is None or not line.startswith("{"):
            continue
        document = json.loads(line)
        if "_aws" in document:
            continue  # an EMF metrics document, not a log line
        parsed.append((function, document))
    return parsed


def test_every_line_names_its_own_function_as_service(run: Capture) -> None:
    lines = _json_lines(run)
    assert lines, "no Powertools line was captured"
    wrong = [
        (function, document.get("service"), document.get("message"))
        for function, document in lines
        if document.get("service") != run.services[function]
    ]
    assert wrong == []


def test_the_services_lines_are_json_under_the_functions_service_too(run: Capture) -> None:
    # The package's modules log with the standard library; their lines go out through the Powertools handler
    services_lines = [(f, d) for f, d in _json_lines(run) if str(d.get("name", "")).startswith("appointments.")]
    assert services_lines, "no line of the appointments package was captured: the flows log warnings and infos"
    assert all(document.get("service") == run.services[function] for function, document in services_lines)
    # and none reaches the root logger as plain text (in Lambda: a line without service or request id)
    plain = [line[:200] for function, line in run.lines if function is not None and line.startswith("appointments.")]
    assert plain == []


def test_keys_appended_for_a_record_stay_with_that_record(run: Capture) -> None:
    leaked = []
    for function, document in _json_lines(run):
        own = RECORD_KEYS.get(run.services[function], set())
        foreign = set().union(*RECORD_KEYS.values()) - own
        leaked += [(function, key, document.get("message")) for key in foreign if key in document]
    assert leaked == []
    assert [
        (function, keys & set().union(*RECORD_KEYS.values()))
        for function, keys in run.leftover_keys
        if keys & set().union(*RECORD_KEYS.values())
    ] == []


def test_each_call_a_function_makes_is_on_its_row_of_the_iam_table(run: Capture) -> None:
    beyond = {function: sorted(calls - set(ALLOWED[function])) for function, calls in run.calls.items()}
    assert {function: calls for function, calls in beyond.items() if calls} == {}
