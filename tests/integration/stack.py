"""The stack under moto, built from template.yaml: table, queues, secret, and the real handlers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from appointments import wiring
from appointments.adapters.clock import ManualClock
from localdev.apigw import HttpRequest, RouteTable, anonymous_identity, is_binary, proxy_event
from localdev.lambdas import Handler, LambdaContext, load_handler
from localdev.resources import provision
from localdev.runner import scheduled_event
from localdev.signing import signature_headers
from localdev.sqs import record_of_message
from localdev.template import FunctionSpec, functions, load_template, parameter_defaults

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

LOCAL_PARAMETERS = {"MailFrom": "desk@msp.example", "OpsAlertEmail": "ops@msp.example"}
GENERIC_SECRET = "whsec_generic_integration"
CALCOM_SECRET = "calcom-integration-secret"
CALENDLY_SECRET = "calendly-integration-signing-key"
AUTOTASK_SECRET = "autotask-integration-secret"
HALOPSA_SECRET = "halo-webhook:halopsa-integration-password"  # Basic auth, user:password
CONNECTWISE_COMPANIES = "acmemsp"  # not a signing secret: the company ids whose callbacks are taken
OPS_CALLER = "arn:aws:iam::123456789012:user/dana.dispatcher"
SECRETS = {
    "generic": GENERIC_SECRET,
    "calcom": CALCOM_SECRET,
    "calendly": CALENDLY_SECRET,
    "autotask": AUTOTASK_SECRET,
    "halopsa": HALOPSA_SECRET,
    "connectwise": CONNECTWISE_COMPANIES,
}


@dataclass(frozen=True)
class OpsReply:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class Stack:
    handlers: dict[str, Handler]
    specs: dict[str, FunctionSpec]
    sqs: SQSClient
    queue_url: str
    queue_arn: str
    clock: ManualClock

    def post(self, source: str, body: bytes, headers: dict[str, str], *, base64_body: bool = False) -> dict[str, Any]:
        request = HttpRequest(
            method="POST",
            path=f"/webhooks/{source}",
            headers=tuple({"Content-Type": "application/json", **headers}.items()),
            body=body,
            source_ip="203.0.113.10",
        )
        event = proxy_event(
            request,
            resource="/webhooks/{source}",
            path_parameters={"source": source},
            stage="v1",
            at=self.clock.now(),
            binary=base64_body,
        )
        response: dict[str, Any] = self.invoke("WebhookIngressFunction", event)
        return response

    def ops(self, method: str, path: str, body: Any = None, **options: Any) -> OpsReply:
        """A request to the ops API, as API Gateway passes it on once IAM has authenticated the caller."""
        response = self.ops_raw(method, path, body, **options)
        multi = {name: values[-1] for name, values in (response.get("multiValueHeaders") or {}).items() if values}
        return OpsReply(
            status=response["statusCode"],
            headers={**(response.get("headers") or {}), **multi},
            body=json.loads(response["body"]) if response.get("body") else None,
        )

    def ops_raw(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        caller: str | None = OPS_CALLER,
        raw: bytes | None = None,
        content_type: str | None = "application/json",
        claims: dict[str, str] | None = None,
        proxy: bool = False,
    ) -> dict[str, Any]:
        """The handler's raw answer; ``caller`` None is a request IAM did not authenticate.

        ``claims``: a Cognito authorizer let the request in (the console's API); ``proxy``: as ConsoleApi's
        ``/{proxy+}`` resource passes it (no path parameters, the resource is the proxy's).

        ``content_type`` None sends no Content-Type header at all (as a bare ``curl --data-binary`` or a
        Swagger UI GET does)."""
        routes = RouteTable(route for spec in self.specs.values() for route in spec.routes if route.api == "OpsApi")
        url_path, _, query = path.partition("?")
        matched = routes.match(method, url_path)
        assert matched is not None, f"the template declares no ops route for {method} {url_path}"
        route, parameters = matched
        payload = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        request = HttpRequest(
            method=method,
            path=url_path,
            query=query,
            headers=tuple((({"Content-Type": content_type} if content_type else {}) | (headers or {})).items()),
            body=payload,
        )
        identity = anonymous_identity("198.51.100.7", "ops-test") | ({"userArn": caller} if caller else {})
        event = proxy_event(
            request,
            resource="/{proxy+}" if proxy else route.path,
            path_parameters={"proxy": url_path.lstrip("/")} if proxy else parameters,
            stage=route.stage,
            at=self.clock.now(),
            binary=is_binary(None, (), payload),
            identity=identity,
            claims=claims,
        )
        response: dict[str, Any] = self.invoke(route.function, event)
        return response

    def signed_post(self, source: str, body: bytes) -> dict[str, Any]:
        return self.post(source, body, signature_headers(source, SECRETS[source], body, self.clock.now()))

    def post_generic(self, body: bytes) -> dict[str, Any]:
        return self.signed_post("generic", body)

    def post_calcom(self, body: bytes) -> dict[str, Any]:
        return self.signed_post("calcom", body)

    def post_calendly(self, body: bytes) -> dict[str, Any]:
        return self.signed_post("calendly", body)

    def post_autotask(self, body: bytes) -> dict[str, Any]:
        return self.signed_post("autotask", body)

    def post_halopsa(self, body: bytes) -> dict[str, Any]:
        return self.signed_post("halopsa", body)

    def run_schedule(self, function: str = "ScheduledChecksFunction") -> Any:
        """What EventBridge Scheduler delivers to ``function`` at the stack's clock (its first schedule)."""
        schedule = self.specs[function].schedules[0]
        return self.invoke(function, scheduled_event(schedule, self.clock.now()))

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        spec = self.specs[function]
        return self.handlers[function](event, LambdaContext(function, timeout_seconds=spec.timeout))

    def table_items(self) -> list[Any]:
        return boto3.client("dynamodb", region_name="us-east-1").scan(TableName="AppointmentsTable")["Items"]

    def queued(self) -> list[Any]:
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageSystemAttributeNames=["All"]
        )
        return response.get("Messages", [])

    def process(self, records: list[dict[str, Any]]) -> list[str]:
        """Run the processor on a batch; the ids of the records it hands back as failed."""
        response = self.invoke("EventProcessorFunction", {"Records": records})
        return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]

    def drain(self) -> None:
        """What Lambda's event source mapping does: receive, process, delete what succeeded."""
        for _ in range(20):
            messages = self.queued()
            if not messages:
                return
            records = [self.record_of(m) for m in messages]
            failed = set(self.process(records))
            for message, record in zip(messages, records, strict=True):
                if record["messageId"] not in failed:
                    self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            assert not failed, f"records failed: {failed}"
        raise AssertionError("the queue did not drain")

    def record_of(self, message: Any) -> dict[str, Any]:
        return record_of_message(message, self.queue_arn)


@contextmanager
def stack_under_moto(monkeypatch: pytest.MonkeyPatch, now: datetime, **parameters: str) -> Iterator[Stack]:
    template = load_template()
    with mock_aws():
        values = parameter_defaults(template, {**LOCAL_PARAMETERS, **parameters})
        provisioned = provision(
            template,
            parameters=values,
            secret_values={"WebhookSecrets": json.dumps(SECRETS)},
            senders=[values["MailFrom"]],
        )
        specs = functions(template)
        for spec in specs:
            for name, value in provisioned.environment(spec).items():
                if name != "POWERTOOLS_SERVICE_NAME":
                    monkeypatch.setenv(name, value)
        sqs = boto3.client("sqs", region_name="us-east-1")
        clock = ManualClock(now)
        wiring.use_clock(clock)
        try:
            yield Stack(
                handlers={spec.logical_id: load_handler(spec) for spec in specs},
                specs={spec.logical_id: spec for spec in specs},
                sqs=sqs,
                queue_url=provisioned.physical["EventQueue"],
                queue_arn=provisioned.queue_arns["EventQueue"],
                clock=clock,
            )
        finally:
            wiring.reset()
