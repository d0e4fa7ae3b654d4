"""The local runner started in-process on a free port, driven over HTTP like a developer would."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from localdev.clock import RunnerClock
from localdev.runner import Runner, RunnerConfig
from localdev.server import LocalServer
from localdev.signing import runner_webhook
from localdev.template import TEMPLATE
from tests.signing import sample

if TYPE_CHECKING:
    from collections.abc import Iterator

START = datetime(2026, 11, 23, 10, 0, 30, tzinfo=UTC)
FIXTURES = Path(__file__).parent / "fixtures"
OPS_TOKEN = "local-test-ops-token"


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    all_headers: tuple[tuple[str, str], ...] = ()

    def header_values(self, name: str) -> list[str]:
        return [value for key, value in self.all_headers if key.lower() == name.lower()]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class LocalRunner:
    base: str
    runner: Runner
    server: LocalServer

    def request(
        self, method: str, path: str, *, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Reply:
        url = f"{self.base}{path}"  # always http://127.0.0.1:<port>
        request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                received = tuple(response.headers.items())
                return Reply(response.status, dict(received), response.read(), received)
        except urllib.error.HTTPError as error:
            received = tuple(error.headers.items())
            return Reply(error.code, dict(received), error.read(), received)

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, document: Any = None, **kwargs: Any) -> Reply:
        body = kwargs.pop("body", None)
        if document is not None:
            body = json.dumps(document).encode()
        return self.request("POST", path, body=body if body is not None else b"", **kwargs)

    def now(self) -> datetime:
        return datetime.fromisoformat(self.get("/_local/clock").json()["now"])

    def send(self, relative: str, *, body: bytes | None = None) -> Reply:
        """What ``localdev send`` does: sign with the dev secret at the runner's time, and post."""
        source = relative.split("/")[0]
        raw, headers = runner_webhook(source, body if body is not None else sample(relative), self.base, self.now())
        return self.post(f"/webhooks/{source}", body=raw, headers=headers)


@contextmanager
def running(
    template: Path, *, manual_clock: bool = True, background: bool = False, port: int = 0, verbose: bool = False
) -> Iterator[LocalRunner]:
    clock = RunnerClock(manual=manual_clock)
    clock.set(START)
    runner = Runner(RunnerConfig(template_path=template, ops_token=OPS_TOKEN, verbose=verbose), clock)
    server = LocalServer(runner, port)
    runner.start()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    if background:
        server.start_background()
    try:
        yield LocalRunner(base=f"http://127.0.0.1:{server.port}", runner=runner, server=server)
    finally:
        server.stop()  # what Ctrl-C does; a test that stopped it already waits for nothing
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def product() -> Iterator[LocalRunner]:
    """The product's own template.yaml."""
    with running(TEMPLATE) as local:
        yield local


@pytest.fixture(scope="module")
def fixture_stack() -> Iterator[LocalRunner]:
    """A small template with schedules and an AWS_IAM API, which the product does not have yet."""
    with running(FIXTURES / "scheduled" / "template.yaml") as local:
        yield local


def dead_letters(local: LocalRunner) -> int:
    """Messages in every SQS dead-letter queue of the runner's stack: a load run must leave none."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    provisioned = local.runner.provisioned
    total = 0
    for logical_id in provisioned.dead_letter_queues:
        attributes = sqs.get_queue_attributes(
            QueueUrl=provisioned.physical[logical_id], AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        total += int(attributes["ApproximateNumberOfMessages"])
    return total
