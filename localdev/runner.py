"""The runner: the template's functions wired to an embedded moto server, a gateway, a pump and a scheduler.

The pump is Lambda's event sources: SQS queues, DynamoDB streams (``localdev.streams``), event
buses (``localdev.eventbridge``) and SNS topics (``localdev.sns``). SES's event publishing (a bounce or
complaint about a mail the runner's SES took, on request) is ``localdev.ses``.

Everything runs in this process on 127.0.0.1. Functions run one at a time (a lock), with the
template's environment applied and the runner's clock as every service's clock. Where Lambda's
behaviour is emulated rather than reproduced, the docstring says how.
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import json
import logging
import os
import sys
import threading
import traceback
import urllib.request
import uuid
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from typing import TYPE_CHECKING, Any

import boto3

from localdev import console, sns, streams
from localdev.apigw import (
    HttpRequest,
    HttpResponse,
    RouteTable,
    anonymous_identity,
    gateway_error,
    http_response,
    is_binary,
    proxy_event,
)
from localdev.console_site import SignIns
from localdev.eventbridge import BusEvent, PatternError, RuleTarget, drain_taps, install_taps
from localdev.fake_psa import FakePsa, fake_psa_credentials
from localdev.fake_timezest import FakeTimeZest
from localdev.gate import Gate
from localdev.lambdas import context_for, load_handler
from localdev.moto_memory import moto_patched
from localdev.resources import ACCOUNT_ID, REGION, provision
from localdev.schedule import ScheduleError, parse_schedule
from localdev.ses import BOUNCES, FeedbackRefused, SesTap, feedback_record
from localdev.signing import DEV_SECRETS
from localdev.sqs import record_of_message
from localdev.template import (
    TEMPLATE,
    event_buses,
    functions,
    layer_paths,
    load_template,
    parameter_defaults,
    secrets,
    ses_event_destinations,
    sqs_queues,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime
    from pathlib import Path

    from localdev.clock import RunnerClock
    from localdev.lambdas import Handler
    from localdev.resources import Provisioned
    from localdev.schedule import ScheduleExpression
    from localdev.template import ApiRoute, ScheduledInvocation

DEV_PARAMETERS = {
    "MailFrom": "desk@msp.example",
    "OpsAlertEmail": "ops@msp.example",
    "TimeZestPolling": "ENABLED",
    # The NO-SHOW status of the samples' Autotask (events/autotask/ticket_no_show.json): the write-back sets it.
    "AutotaskNoShowStatusId": "23",
}
FAKE_TIMEZEST_PATH = "/_local/timezest/v1"  # where the runner serves its fake TimeZest API
FAKE_PSA_PATH = "/_local/psa"  # where it serves its fake PSA (GET there lists every write it received)
DEV_OPS_TOKEN = "dev-ops-token"  # noqa: S105 - the documented local default, printed at start
DEV_IDENTITY_ARN = f"arn:aws:iam::{ACCOUNT_ID}:user/local-dev"
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
SETTLE_ROUNDS = 1000  # passes of the pump before settle gives up: a function feeding its own source loops
STOP_DRAIN_SECONDS = 30.0  # how long stopping waits for requests in flight before it lets go anyway

# The process-wide environment the functions see: fake credentials and the embedded endpoint.
_AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "POWERTOOLS_TRACE_DISABLED": "true",
    # Metrics stay on and print their EMF lines, as CloudWatch would receive them: Powertools 3.37 never
    # clears its metric set while POWERTOOLS_METRICS_DISABLED is set.
}


class StartupError(Exception):
    """The runner cannot start: the message says what and where."""


@dataclass(frozen=True)
class RunnerConfig:
    template_path: Path = TEMPLATE
    parameters: Mapping[str, str] = field(default_factory=dict)  # overrides of the template's defaults
    webhook_secrets: Mapping[str, str] = field(default_factory=lambda: dict(DEV_SECRETS))
    ops_token: str = DEV_OPS_TOKEN
    verbose: bool = False  # the functions' own output (log lines, EMF metrics) and full tracebacks
    console_root: Path | None = None  # the console's static files; None: console/ next to the template

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], **overrides: Any) -> RunnerConfig:
        """Secrets from ``WEBHOOK_SECRET_<SOURCE>`` and the ops token from ``OPS_API_TOKEN``, else dev defaults."""
        webhook_secrets = {
            source: environ.get(f"WEBHOOK_SECRET_{source.upper()}", default) for source, default in DEV_SECRETS.items()
        }
        return cls(webhook_secrets=webhook_secrets, ops_token=environ.get("OPS_API_TOKEN", DEV_OPS_TOKEN), **overrides)


@dataclass
class _Schedule:
    spec: ScheduledInvocation
    expression: ScheduleExpression
    checked_until: datetime


@dataclass(frozen=True)
class Handled:
    """What the pump handed to functions, retries included: queue messages, stream records, bus events and
    topic notifications."""

    messages: int = 0
    stream_records: int = 0
    events: int = 0
    notifications: int = 0

    def __add__(self, other: Handled) -> Handled:
        return Handled(
            self.messages + other.messages,
            self.stream_records + other.stream_records,
            self.events + other.events,
            self.notifications + other.notifications,
        )

    def as_json(self) -> dict[str, int]:
        return {
            "handled": self.messages,
            "stream_records": self.stream_records,
            "events": self.events,
            "notifications": self.notifications,
        }


@dataclass(frozen=True)
class SentMail:
    to: tuple[str, ...]
    sender: str
    subject: str
    text: str | None
    html: str | None
    sent_at: datetime
    message_id: str = ""  # the id SES answered
    headers: tuple[tuple[str, str], ...] = ()  # the top-level headers, as SES's event records list them

    def as_json(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "to": list(self.to),
            "from": self.sender,
            "subject": self.subject,
            "text": self.text,
            "html": self.html,
            "sent_at": self.sent_at.isoformat(),
        }


class Runner:
    def __init__(self, config: RunnerConfig, clock: RunnerClock) -> None:
        self.config = config
        self.clock = clock
        self._lock = threading.RLock()
        self._pump_lock = threading.RLock()  # one pass of the queues at a time: background, settle, stop
        self._schedule_lock = threading.RLock()  # one scheduler pass at a time: background, clock moves, tick
        self._gateway = Gate()
        self._started = False
        self._template = load_template(config.template_path)
        self._root = config.template_path.resolve().parent
        self._specs = {spec.logical_id: spec for spec in functions(self._template, root=self._root)}
        self._parameters = parameter_defaults(self._template, {**DEV_PARAMETERS, **config.parameters})
        # TimeZest sends no webhooks: the poller reads this fake unless TIMEZEST_API_URL names another.
        self.timezest = FakeTimeZest(clock=clock.now, api_key=config.webhook_secrets.get("timezest", ""))
        # The PSA write-back writes to this fake (Autotask, ConnectWise and HaloPSA dialects): GET /_local/psa.
        self.psa = FakePsa(clock=clock.now, mount=FAKE_PSA_PATH)
        self._psa_credentials: dict[str, Any] = {}
        # Cognito-authorized routes (the console's API) are the same functions as the IAM routes: locally a dev
        # sign-in's token is taken there instead (``console_identity``), so they are not served twice.
        self.console_root = config.console_root or self._root / "console"
        self.sign_ins = SignIns()  # the console's dev sign-ins (POST /_local/console/sign-in)
        self.routes = RouteTable(
            route for spec in self._specs.values() for route in spec.routes if not route.cognito_auth
        )
        self._schedules = self._parse_schedules()
        self._streams = self._stream_mappings()
        self._rule_targets = self._parse_rules()
        self._topics = self._topic_mappings()
        self._ses_destinations = ses_event_destinations(self._template)
        self._queue_specs = {queue.logical_id: queue for queue in sqs_queues(self._template)}
        self._failures: dict[str, tuple[str, int]] = {}  # message id → (last failure reason, receive count)
        self._failures_lock = threading.Lock()
        self._http_state = threading.local()  # .handled_by: the function (or "gateway") of this thread's request
        self._ses_tap = SesTap()
        self._tap_lock = threading.Lock()  # one drain of the event tap at a time, so the log keeps put order
        self._tap_url = ""
        self._events: list[BusEvent] = []  # every event put on a bus, oldest first
        self._event_backlog: list[BusEvent] = []  # those not yet delivered to the rules' functions
        self._handlers: dict[str, Handler] = {}
        self._provisioned: Provisioned | None = None
        self._saved_environment: dict[str, str | None] = {}
        self._moto: Any = None
        self._moto_patches = contextlib.ExitStack()  # localdev.moto_memory's, while the moto server runs
        self._seen_mail = 0
        self._mail: list[SentMail] = []
        self.endpoint = ""

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        console.install(verbose=self.config.verbose)  # before the functions' loggers are made
        self._moto_patches.enter_context(moto_patched())
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self._set_environment({**_AWS_ENVIRONMENT, "AWS_ENDPOINT_URL": self.endpoint})
        for path in layer_paths(self._template, root=self._root):
            if str(path) not in sys.path:
                sys.path.insert(0, str(path))
        self._ses_tap.install()  # before any function makes its SES client
        self._provision()
        _wiring().use_clock(self.clock)
        console.hook_batch_failures()
        for logical_id, spec in self._specs.items():
            self._handlers[logical_id] = load_handler(spec)
        self._started = True

    @property
    def stopping(self) -> bool:
        return self._gateway.closed

    def begin_stop(self) -> None:
        """From now on the gateway answers 503 and invokes nothing; requests already in flight carry on."""
        self._gateway.close()

    def stop(self, *, drain_seconds: float = STOP_DRAIN_SECONDS) -> None:
        """Refuse new requests, let those in flight finish, pump what they queued, then let go of everything.

        A webhook acknowledged with 202 is in its queue; the last settle hands it to its processor
        before the state (tables, queues, mail: all in memory) is gone.
        """
        self.begin_stop()
        if not self._gateway.wait_empty(drain_seconds):
            print(f"localdev: requests still in flight after {drain_seconds:.0f} s; stopping anyway", file=sys.stderr)
        if self._started:
            self._started = False
            try:
                self.settle()
            except Exception:
                traceback.print_exc()
        self._ses_tap.uninstall()
        if self._handlers:
            _wiring().reset()
        if self._moto is not None:
            # moto's state is process-wide: leave none behind for whatever runs next in this process.
            self._reset_moto()
            self._moto.stop()
            self._moto = None
        self._moto_patches.close()
        for name, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_environment.clear()
        console.uninstall()

    def listening_at(self, base_url: str) -> None:
        """The server's address, known once it is bound (before ``start``): the poller's fake TimeZest is there."""
        if "TimeZestApiUrl" in self._parameters and "TimeZestApiUrl" not in self.config.parameters:
            self._parameters["TimeZestApiUrl"] = os.environ.get("TIMEZEST_API_URL") or base_url + FAKE_TIMEZEST_PATH
        self._psa_credentials = fake_psa_credentials(base_url + FAKE_PSA_PATH, self.psa.credentials)
        # ConnectWise callbacks name their signing key's URL: locally, the key the runner serves.
        if "ConnectWiseKeyHosts" in self._parameters and "ConnectWiseKeyHosts" not in self.config.parameters:
            self._parameters["ConnectWiseKeyHosts"] += "," + base_url

    def reset(self) -> None:
        """Forget every item, message, stream record, event and mail; the clock stays where it is."""
        with self._pump_lock, self._lock:  # no pump pass reads a stream or a queue that is going away
            self.timezest.reset()
            self.psa.reset()
            self._reset_moto()
            _wiring().use_clock(self.clock)
            self._provision()
            self._mail.clear()
            self._seen_mail = 0
            self._ses_tap.clear()
            with self._failures_lock:
                self._failures.clear()
            with self._tap_lock:
                self._events.clear()
                self._event_backlog.clear()

    def _reset_moto(self) -> None:
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")  # noqa: S310 - loopback
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - our own moto server on 127.0.0.1
            pass

    def _set_environment(self, values: Mapping[str, str]) -> None:
        for name, value in values.items():
            self._saved_environment.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def _provision(self) -> None:
        secret_values = dict.fromkeys(secrets(self._template), "{}")
        secret_values["WebhookSecrets"] = json.dumps(dict(self.config.webhook_secrets))
        if "PsaCredentials" in secret_values:
            secret_values["PsaCredentials"] = json.dumps(self._psa_credentials)
        self._provisioned = provision(
            self._template,
            parameters=self._parameters,
            secret_values=secret_values,
            senders=[self._parameters["MailFrom"]] if "MailFrom" in self._parameters else [],
        )
        self._set_environment(self._shared_environment(self._provisioned))
        self._tap_url = install_taps(["default", *event_buses(self._template).values()])
        client = boto3.client("dynamodbstreams", region_name=REGION)
        for mapping in self._streams:
            subscription = mapping.subscription
            stream_arn = self._provisioned.stream_arns[subscription.table]
            mapping.cursor = streams.StreamCursor(client, stream_arn, subscription.starting_position)
        for topic in self._topics:
            topic.install(self._provisioned.physical[topic.subscription.topic])

    def _shared_environment(self, provisioned: Provisioned) -> dict[str, str]:
        """One process has one environment: every function must agree, except on POWERTOOLS_* names."""
        shared: dict[str, str] = {}
        owner: dict[str, str] = {}
        for logical_id, spec in self._specs.items():
            for name, value in provisioned.environment(spec).items():
                if name.startswith("POWERTOOLS_SERVICE_NAME"):
                    continue
                if name in shared and shared[name] != value:
                    raise StartupError(
                        f"Resources.{logical_id}.Properties.Environment.Variables.{name} differs from "
                        f"{owner[name]}'s: the local runner shares one environment, so move it to Globals"
                    )
                shared[name], owner[name] = value, logical_id
        return shared

    def _parse_schedules(self) -> list[_Schedule]:
        parsed = []
        for spec in self._specs.values():
            for schedule in spec.schedules:
                if schedule.state_parameter is not None and self._parameters[schedule.state_parameter] == "DISABLED":
                    continue
                try:
                    expression = parse_schedule(schedule.expression, timezone=schedule.timezone)
                except ScheduleError as error:
                    where = f"Resources.{spec.logical_id}.Properties.Events.{schedule.event}"
                    raise StartupError(f"{where}: {error}") from None
                parsed.append(_Schedule(schedule, expression, self.clock.now()))
        return parsed

    def _stream_mappings(self) -> list[streams.StreamMapping]:
        mappings = []
        for spec in self._specs.values():
            for subscription in spec.streams:
                try:
                    mapping = streams.StreamMapping(
                        subscription, invoke=self.invoke, clock=self.clock.now, give_up=self._send_on_failure
                    )
                except streams.FilterError as error:
                    where = f"Resources.{spec.logical_id}.Properties.Events.{subscription.event}.FilterCriteria"
                    raise StartupError(f"{where}.{error}") from None
                mappings.append(mapping)
        return mappings

    def _parse_rules(self) -> list[RuleTarget]:
        targets = []
        for spec in self._specs.values():
            for rule in spec.rules:
                try:
                    targets.append(RuleTarget(rule, spec.async_retries))
                except PatternError as error:
                    raise StartupError(f"Resources.{spec.logical_id}.Properties.Events.{rule.event}.{error}") from None
        return targets

    def _topic_mappings(self) -> list[sns.TopicMapping]:
        mappings: list[sns.TopicMapping] = []
        for spec in self._specs.values():
            queue = spec.dead_letter_queue
            dead_letter = None if queue is None else functools.partial(self._dead_letter, queue)
            mappings.extend(
                sns.TopicMapping(subscription, retries=spec.async_retries, dead_letter=dead_letter)
                for subscription in spec.topics
            )
        return mappings

    def _dead_letter(self, queue: str, event: dict[str, Any], error: str) -> None:
        """An asynchronous invocation Lambda gave up on, in the function's DeadLetterQueue."""
        sns.dead_letter_message(self.provisioned.physical[queue], event, error)

    @property
    def provisioned(self) -> Provisioned:
        if self._provisioned is None:
            raise RuntimeError("the runner is not started")
        return self._provisioned

    @property
    def parameters(self) -> dict[str, str]:
        return dict(self._parameters)

    @property
    def subscriptions(self) -> list[str]:
        return [
            f"{s.queue} → {spec.logical_id} (batches of {s.batch_size}"
            + (", partial failures)" if s.reports_item_failures else ")")
            for spec in self._specs.values()
            for s in spec.subscriptions
        ]

    @property
    def stream_subscriptions(self) -> list[str]:
        return [streams.describe(mapping.subscription) for mapping in self._streams]

    @property
    def bus_rules(self) -> list[str]:
        return [target.describe() for target in self._rule_targets]

    @property
    def topic_subscriptions(self) -> list[str]:
        return [topic.describe() for topic in self._topics]

    @property
    def function_names(self) -> list[str]:
        return list(self._specs)

    # -- invoking ----------------------------------------------------------------------------------

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        """Run one function on one event, as Lambda would, one invocation at a time."""
        spec = self._specs[function]
        service = spec.environment.get("POWERTOOLS_SERVICE_NAME")
        with self._lock:
            previous = os.environ.get("POWERTOOLS_SERVICE_NAME")
            if isinstance(service, str):
                os.environ["POWERTOOLS_SERVICE_NAME"] = service
            try:
                with console.quiet_invocation():
                    return self._handlers[function](event, context_for(spec))
            finally:
                if previous is None:
                    os.environ.pop("POWERTOOLS_SERVICE_NAME", None)
                else:
                    os.environ["POWERTOOLS_SERVICE_NAME"] = previous
                self._collect_mail()

    # -- the gateway -------------------------------------------------------------------------------

    def handle_http(self, request: HttpRequest) -> HttpResponse:
        with self._gateway.admit() as admitted:
            if not admitted:
                return stopping_error()
            return self._handle_http(request)

    def handled_by(self) -> str:
        """The function that answered this thread's last gateway request, or ``gateway`` if none did."""
        return str(getattr(self._http_state, "handled_by", "gateway"))

    def _handle_http(self, request: HttpRequest) -> HttpResponse:
        self._http_state.handled_by = "gateway"
        if len(request.body) > MAX_BODY_BYTES:
            return gateway_error(413, "Request Too Long")
        matched = self.routes.match(request.method, request.path)
        if matched is None:
            return gateway_error(403, "Missing Authentication Token")
        route, path_parameters = matched
        identity = None
        claims = None
        if route.iam_auth:
            identity = self._authorised_identity(request)
            if identity is None:
                # A person signed in to the console: as ConsoleApi's Cognito authorizer would pass them on.
                claims = self._console_claims(request)
                if claims is None:
                    return _unauthorised()
        header = {name.lower(): value for name, value in request.headers}
        event = proxy_event(
            request,
            resource=route.path,
            path_parameters=path_parameters,
            stage=route.stage,
            at=self.clock.now(),
            binary=is_binary(header.get("content-type"), route.binary_media_types, request.body),
            identity=identity,
            claims=claims,
        )
        self._http_state.handled_by = route.function
        try:
            result = self.invoke(route.function, event)
        except Exception as error:
            console.failure(f"{route.function}: {request.method} {request.path} failed: {console.reason(error)}", error)
            return gateway_error(502, "Internal server error")
        return http_response(result)

    def _authorised_identity(self, request: HttpRequest) -> dict[str, str | None] | None:
        """AWS_IAM stands in as a bearer token locally; the caller becomes a dev IAM user."""
        given = next((value for name, value in request.headers if name.lower() == "authorization"), "")
        scheme, _, token = given.partition(" ")
        expected = self.config.ops_token.encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
            return None
        user_agent = next((value for name, value in request.headers if name.lower() == "user-agent"), None)
        return anonymous_identity(request.source_ip, user_agent) | {
            "accountId": ACCOUNT_ID,
            "caller": "AIDALOCALDEVUSER",
            "user": "AIDALOCALDEVUSER",
            "accessKey": "ASIALOCALDEVKEY",
            "userArn": DEV_IDENTITY_ARN,
        }

    def _console_claims(self, request: HttpRequest) -> dict[str, str] | None:
        """The claims of a dev sign-in's token (``Bearer <token>``, or the bare token as API Gateway's Cognito
        authorizer takes an ID token), or None: the caller is nobody."""
        given = next((value for name, value in request.headers if name.lower() == "authorization"), "").strip()
        scheme, _, rest = given.partition(" ")
        token = rest.strip() if scheme.lower() == "bearer" else given
        email = self.sign_ins.email_for(token) if token else None
        if email is None:
            return None
        return {"email": email, "email_verified": "true", "cognito:username": email, "token_use": "id"}

    # -- the pump: Lambda's event sources ---------------------------------------------------------

    def pump(self) -> Handled:
        """One pass of every event source: what it handed to functions.

        A queued record that fails is made visible again at once (Lambda waits for the visibility
        timeout), so a failing message reaches the dead-letter queue after maxReceiveCount passes, not
        hours. A stream batch or an event that fails is retried at once, within the pass.
        """
        with self._pump_lock:
            return self._pump()[0]

    def _pump(self) -> tuple[Handled, bool]:
        """One pass: what it handed to functions, and whether it took anything from a source at all."""
        messages = self._pump_queues()
        read, delivered = self._pump_streams()
        events, dispatched = self._pump_events()
        published, notified = self._pump_topics()
        return Handled(messages, delivered, dispatched, notified), messages + read + events + published > 0

    def _pump_topics(self) -> tuple[int, int]:
        """Each SNS message published since the last pass, to its subscribers: (messages read, invocations)."""
        read = invocations = 0
        for topic in self._topics:
            topic_read, topic_invocations = topic.pump(self.invoke)
            read, invocations = read + topic_read, invocations + topic_invocations
        return read, invocations

    def _pump_streams(self) -> tuple[int, int]:
        read = delivered = 0
        for mapping in self._streams:
            mapping_read, mapping_delivered = mapping.pump()
            read, delivered = read + mapping_read, delivered + mapping_delivered
        return read, delivered

    def _send_on_failure(self, queue: str, message: dict[str, Any]) -> None:
        """A stream batch Lambda gave up on, described to the mapping's OnFailure queue."""
        sqs = boto3.client("sqs", region_name=REGION)
        sqs.send_message(QueueUrl=self.provisioned.physical[queue], MessageBody=json.dumps(message))

    def _pump_events(self) -> tuple[int, int]:
        """Take what was put on the buses into the log, then deliver the backlog: (events delivered, invocations)."""
        self._tap()
        with self._tap_lock:
            backlog, self._event_backlog = self._event_backlog, []
        invocations = 0
        for event in backlog:
            for target in self._rule_targets:
                if target.matches(event):
                    invocations += target.deliver(event, self.invoke)
        return len(backlog), invocations

    def _tap(self) -> None:
        """Move what the tap queue holds into the log and the backlog, in the order it was put."""
        with self._tap_lock:
            if self._tap_url:
                taken = drain_taps(self._tap_url)
                self._events.extend(taken)
                self._event_backlog.extend(taken)

    @property
    def bus_events(self) -> list[BusEvent]:
        """Every event put on a bus since the start or the last reset, oldest first."""
        self._tap()
        with self._tap_lock:
            return list(self._events)

    def _pump_queues(self) -> int:
        sqs = boto3.client("sqs", region_name=REGION)
        handled = 0
        for spec in self._specs.values():
            for subscription in spec.subscriptions:
                url = self.provisioned.physical[subscription.queue]
                arn = self.provisioned.queue_arns[subscription.queue]
                messages = sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=min(10, subscription.batch_size),
                    WaitTimeSeconds=0,
                    MessageSystemAttributeNames=["All"],
                ).get("Messages", [])
                if not messages:
                    continue
                handled += len(messages)
                records = [record_of_message(dict(message), arn) for message in messages]
                failed = self._deliver(spec.logical_id, records, subscription.reports_item_failures)
                for record in records:
                    if record["messageId"] in failed:
                        self._record_failed(spec.logical_id, subscription.queue, record, failed[record["messageId"]])
                        sqs.change_message_visibility(
                            QueueUrl=url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0
                        )
                    else:
                        sqs.delete_message(QueueUrl=url, ReceiptHandle=record["receiptHandle"])
        return handled

    def _deliver(self, function: str, records: list[dict[str, Any]], partial: bool) -> dict[str, str]:
        """Invoke the function on a batch: the message ids that failed, each with its reason."""
        everything = [record["messageId"] for record in records]
        try:
            with console.batch_failures() as reasons:
                result = self.invoke(function, {"Records": records})
        except Exception as error:
            if console.settings.verbose:
                traceback.print_exc()
            # A batch processor that failed every record raises; the reason it gave each one is the better line.
            return {message_id: reasons.get(message_id, console.reason(error)) for message_id in everything}
        if not partial:
            return {}
        failures = result.get("batchItemFailures", []) if isinstance(result, dict) else None
        if failures is None:
            return dict.fromkeys(everything, f"the function answered no batchItemFailures list: {result!r}"[:300])
        reported = {str(failure.get("itemIdentifier")) for failure in failures}
        why = "reported in batchItemFailures (the function's log says why)"
        return {message_id: reasons.get(message_id, why) for message_id in everything if message_id in reported}

    def _record_failed(self, function: str, queue: str, record: dict[str, Any], reason: str) -> None:
        """One line per failed record; another when SQS will move it to the dead-letter queue."""
        message_id = record["messageId"]
        receives = int(record["attributes"].get("ApproximateReceiveCount", "1"))
        with self._failures_lock:
            self._failures[message_id] = (reason, receives)
        spec = self._queue_specs.get(queue)
        limit = spec.max_receive_count if spec is not None else None
        of = f"/{limit}" if limit else ""
        console.log(f"localdev: {function}: record {message_id} failed (receive {receives}{of}): {reason}")
        if spec is not None and spec.dead_letter_queue is not None and limit and receives >= limit:
            console.log(
                f"localdev: dead-lettered: {spec.dead_letter_queue} {message_id} after {receives} receives: {reason}"
            )

    # -- dead-letter queues --------------------------------------------------------------------------

    def _dead_letter_queues(self) -> dict[str, str | None]:
        """Every dead-letter queue of the template: logical id → the SQS queue it redrives to (``None``: a
        stream's ``OnFailure`` or a function's ``DeadLetterQueue``, which have no source queue)."""
        queues: dict[str, str | None] = {}
        for queue in self._queue_specs.values():
            if queue.dead_letter_queue is not None:
                queues[queue.dead_letter_queue] = queue.logical_id
        for mapping in self._streams:
            if mapping.subscription.on_failure_queue is not None:
                queues.setdefault(mapping.subscription.on_failure_queue, None)
        for spec in self._specs.values():
            if spec.dead_letter_queue is not None:
                queues.setdefault(spec.dead_letter_queue, None)
        return queues

    @staticmethod
    def _take_all(sqs: Any, url: str) -> list[dict[str, Any]]:
        """Every message of a queue, received and hidden for a minute: the caller gives each back or deletes it."""
        taken: list[dict[str, Any]] = []
        seen: set[str] = set()
        while True:
            messages = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=60,
                WaitTimeSeconds=0,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            fresh = [message for message in messages if message["MessageId"] not in seen]
            if not fresh:
                return taken
            seen.update(message["MessageId"] for message in fresh)
            taken.extend(fresh)

    def dead_letters(self) -> list[dict[str, Any]]:
        """Every message in every dead-letter queue, with the reason its last delivery failed (if known)."""
        sqs = boto3.client("sqs", region_name=REGION)
        items: list[dict[str, Any]] = []
        with self._pump_lock:
            for queue in self._dead_letter_queues():
                url = self.provisioned.physical[queue]
                taken = self._take_all(sqs, url)
                for message in taken:
                    items.append(self._dead_letter_item(queue, message))
                    sqs.change_message_visibility(
                        QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
        return items

    def _dead_letter_item(self, queue: str, message: dict[str, Any]) -> dict[str, Any]:
        message_id = message["MessageId"]
        with self._failures_lock:
            remembered = self._failures.get(message_id)
        error = message.get("MessageAttributes", {}).get("ErrorMessage", {}).get("StringValue")
        # This look received it once more: the count before it is the one it arrived with.
        receives = max(0, int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1")) - 1)
        return {
            "queue": queue,
            "message_id": message_id,
            "body": message["Body"],
            "reason": remembered[0] if remembered is not None else error,
            "receive_count": remembered[1] if remembered is not None else receives,
        }

    def redrive(self) -> int:
        """Move every message of each SQS dead-letter queue back to its source queue (FIFO: same group and
        deduplication id), then settle; how many moved. What Lambda gave up on (a stream's OnFailure, a
        function's DeadLetterQueue) has no source queue and stays. In AWS: SQS's DLQ redrive."""
        sqs = boto3.client("sqs", region_name=REGION)
        moved = 0
        with self._pump_lock:
            for queue, source in self._dead_letter_queues().items():
                if source is None:
                    continue
                url, source_url = self.provisioned.physical[queue], self.provisioned.physical[source]
                for message in self._take_all(sqs, url):
                    request: dict[str, Any] = {"QueueUrl": source_url, "MessageBody": message["Body"]}
                    if message.get("MessageAttributes"):
                        request["MessageAttributes"] = message["MessageAttributes"]
                    attributes = message.get("Attributes", {})
                    if "MessageGroupId" in attributes:
                        request["MessageGroupId"] = attributes["MessageGroupId"]
                    if "MessageDeduplicationId" in attributes:
                        request["MessageDeduplicationId"] = attributes["MessageDeduplicationId"]
                    sent = sqs.send_message(**request)
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                    console.log(f"localdev: redriven: {queue} {message['MessageId']} → {source} {sent['MessageId']}")
                    moved += 1
        self.settle()
        return moved

    def settle(self) -> Handled:
        """Pump until every subscribed queue, stream and bus has nothing pending; what was handed to functions.

        A pass that took nothing from any source read every stream to its end and the event tap empty;
        the queues are then checked for messages in flight too.
        """
        with self._pump_lock:  # two pumps at once would each see the other's messages in flight
            total = Handled()
            for _ in range(SETTLE_ROUNDS):
                handled, moved = self._pump()
                total += handled
                if not moved and self._queues_empty():
                    return total
        raise RuntimeError(f"the queues, streams and buses did not settle in {SETTLE_ROUNDS} passes")

    def _queues_empty(self) -> bool:
        sqs = boto3.client("sqs", region_name=REGION)
        urls = [self.provisioned.physical[s.queue] for spec in self._specs.values() for s in spec.subscriptions]
        for url in [*urls, self._tap_url] if self._tap_url else urls:
            attributes = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            if any(int(count) for count in attributes.values()):
                return False
        if any(topic.pending() for topic in self._topics):
            return False
        with self._tap_lock:
            return not self._event_backlog

    # -- the scheduler -----------------------------------------------------------------------------

    @property
    def schedules(self) -> list[dict[str, str]]:
        return [
            {"function": s.spec.function, "event": s.spec.event, "kind": s.spec.kind, "expression": s.spec.expression}
            for s in self._schedules
        ]

    def run_due(self) -> list[str]:
        """Run each schedule that came due since it was last checked, once, at its latest due time.

        Missed fire times are coalesced: moving the clock three hours runs a rate(1 minute) function
        once, not 180 times, as a rule that was paused would. A clock set back runs nothing, and the
        schedules count again from there: they fire as the clock passes their times once more.
        """
        with self._schedule_lock:
            now = self.clock.now()
            ran = []
            for schedule in self._schedules:
                due = schedule.expression.latest_due(schedule.checked_until, now)
                schedule.checked_until = now
                if due is not None:
                    self._run_schedule(schedule.spec, due)
                    ran.append(f"{schedule.spec.function}.{schedule.spec.event}")
            return ran

    def tick(self) -> list[str]:
        """Run every scheduled function once at the current clock, then settle."""
        with self._schedule_lock:
            now = self.clock.now()
            for schedule in self._schedules:
                self._run_schedule(schedule.spec, now)
                schedule.checked_until = now
        self.settle()
        return [f"{s.spec.function}.{s.spec.event}" for s in self._schedules]

    def _run_schedule(self, spec: ScheduledInvocation, at: datetime) -> None:
        try:
            self.invoke(spec.function, scheduled_event(spec, at))
        except Exception as error:
            console.failure(f"{spec.function}.{spec.event}: scheduled run failed: {console.reason(error)}", error)

    def clock_moved(self) -> list[str]:
        ran = self.run_due()
        self.settle()
        return ran

    # -- mail --------------------------------------------------------------------------------------

    def _collect_mail(self) -> None:
        """Stamp mail SES took since the last look with the runner's clock (moto keeps no send time)."""
        from moto.core.models import DEFAULT_ACCOUNT_ID
        from moto.ses.models import ses_backends

        sent = ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages
        for message in sent[self._seen_mail :]:
            self._mail.append(_sent_mail(message, self.clock.now()))
        self._seen_mail = len(sent)

    @property
    def outbox(self) -> list[SentMail]:
        with self._lock:
            self._collect_mail()
            return list(self._mail)

    # -- SES event publishing ----------------------------------------------------------------------

    def ses_feedback(
        self,
        event_type: str,
        *,
        message_id: str | None = None,
        to: str | None = None,
        bounce_type: str = "Permanent",
        bounce_subtype: str | None = None,
        complaint_type: str = "abuse",
    ) -> dict[str, Any]:
        """Publish what SES would about a mail it took: a ``Bounce`` or a ``Complaint``, to the SNS topic of
        every event destination of the mail's configuration set that takes it. The mail is the one SES
        answered ``message_id`` for, or the latest sent to ``to`` (then only that address is concerned).
        Delivered on the next pump pass (``settle`` waits for it)."""
        if event_type not in ("Bounce", "Complaint"):
            raise ValueError(f"SES publishes no {event_type!r} here")
        if event_type == "Bounce" and bounce_type not in BOUNCES:
            raise FeedbackRefused(422, "type", f"must be one of {', '.join(BOUNCES)}")
        mail = self._sent(message_id, to)
        request = self._ses_tap.request(mail.message_id)
        configuration_set = request.configuration_set if request is not None else None
        if configuration_set is None:
            raise FeedbackRefused(
                409, None, "that mail was sent without a configuration set: SES publishes no events about it"
            )
        matching = event_type.lower()
        destinations = [
            d for d in self._ses_destinations if d.configuration_set == configuration_set and matching in d.event_types
        ]
        if not destinations:
            raise FeedbackRefused(
                409, None, f"configuration set {configuration_set!r} has no SNS event destination for {matching} events"
            )
        recipients = mail.to if to is None else tuple(a for a in mail.to if a.lower() == to.strip().lower())
        record = feedback_record(
            event_type,
            mail,
            request,
            at=self.clock.now(),
            recipients=recipients,
            bounce_type=bounce_type,
            bounce_subtype=bounce_subtype,
            complaint_type=complaint_type,
        )
        client = boto3.client("sns", region_name=REGION)
        published = []
        for destination in destinations:
            topic_arn = self.provisioned.physical[destination.topic]
            sent = client.publish(TopicArn=topic_arn, Message=json.dumps(record))
            published.append({"destination": destination.name, "topic": topic_arn, "sns_message_id": sent["MessageId"]})
        return {
            "event_type": event_type,
            "message_id": mail.message_id,
            "recipients": list(recipients),
            "published": published,
        }

    def _sent(self, message_id: str | None, to: str | None) -> SentMail:
        mail = self.outbox
        if message_id is not None:
            found = next((m for m in mail if m.message_id == message_id), None)
            if found is None:
                raise FeedbackRefused(404, "message_id", "the runner's SES sent no mail with that id")
            return found
        wanted = (to or "").strip().lower()
        found = next((m for m in reversed(mail) if wanted in (a.lower() for a in m.to)), None)
        if found is None:
            raise FeedbackRefused(404, "to", "the runner's SES sent no mail to that address")
        return found


def _wiring() -> Any:
    """The package's composition root, importable once the template's layers are on the path.

    Its clock becomes the runner's, and a reset makes it build fresh clients for the new endpoint.
    """
    from appointments import wiring

    return wiring


def scheduled_event(spec: ScheduledInvocation, at: datetime) -> dict[str, Any]:
    """What EventBridge (``Schedule``) or EventBridge Scheduler (``ScheduleV2``) delivers at ``at``."""
    time = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    if spec.kind == "ScheduleV2":
        text = spec.input or "{}"
        for placeholder, value in (
            ("<aws.scheduler.scheduled-time>", time),
            ("<aws.scheduler.execution-id>", str(uuid.uuid4())),
            ("<aws.scheduler.attempt-number>", "1"),
        ):
            text = text.replace(placeholder, value)
        delivered: dict[str, Any] = json.loads(text)
        return delivered
    if spec.input is not None:
        custom: dict[str, Any] = json.loads(spec.input)
        return custom
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": time,
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{spec.function}-{spec.event}"],
        "detail": {},
    }


def _sent_mail(message: Any, at: datetime) -> SentMail:
    raw = getattr(message, "raw_data", None)
    if raw is not None:
        parsed = message_from_bytes(raw.encode() if isinstance(raw, str) else raw, policy=policy.default)
        text_part = parsed.get_body(preferencelist=("plain",))
        html_part = parsed.get_body(preferencelist=("html",))
        return SentMail(
            # moto lists a recipient once per header and once per Destination: each is mailed once.
            to=tuple(dict.fromkeys(str(a) for a in getattr(message, "destinations", []) or [parsed.get("To", "")])),
            sender=str(parsed.get("From", getattr(message, "source", ""))),
            # A subject over one 78-character line is folded right after "Subject:"; the parser keeps that space.
            subject=str(parsed.get("Subject", "")).lstrip(),
            text=text_part.get_content() if text_part is not None else None,
            html=html_part.get_content() if html_part is not None else None,
            sent_at=at,
            message_id=str(getattr(message, "id", "")),
            headers=tuple((name, str(value)) for name, value in parsed.items()),
        )
    destinations = getattr(message, "destinations", {}) or {}
    to = destinations.get("ToAddresses", []) if isinstance(destinations, dict) else list(destinations)
    body = str(getattr(message, "body", "") or "")
    html = body if body.lstrip().startswith("<") else None
    return SentMail(
        to=tuple(to),
        sender=str(getattr(message, "source", "")),
        subject=str(getattr(message, "subject", "")),
        text=None if html is not None else body,
        html=html,
        sent_at=at,
        message_id=str(getattr(message, "id", "")),
    )


def api_error(
    status: int,
    code: str,
    message: str,
    *,
    details: Sequence[Mapping[str, Any]] = (),
    headers: Sequence[tuple[str, str]] = (),
) -> HttpResponse:
    """The runner's own refusals in the API's one error shape: ``{"error": {code, message, details}, request_id}``."""
    body = {
        "error": {"code": code, "message": message, "details": [dict(detail) for detail in details]},
        "request_id": str(uuid.uuid4()),
    }
    return HttpResponse(
        status=status, headers=[("Content-Type", "application/json"), *headers], body=json.dumps(body).encode()
    )


def stopping_error() -> HttpResponse:
    """503 once the runner began to stop: nothing was accepted, nothing will be processed."""
    return api_error(503, "runner_stopping", "the local runner is stopping: the request was not accepted")


def _unauthorised() -> HttpResponse:
    return api_error(401, "unauthorized", "a valid bearer token is required", headers=[("WWW-Authenticate", "Bearer")])


def describe_route(route: ApiRoute) -> str:
    auth = " (bearer token)" if route.iam_auth else ""
    return f"{route.method:6} {route.path}{auth} → {route.function}"
