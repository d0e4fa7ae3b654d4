"""What the runner says on its console: an access line per request, one line per failed record, the
functions' own output only with --verbose; and the dead-letter queues seen and redriven over /_local/dlq."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import boto3
import pytest

from localdev.resources import REGION
from localdev.template import TEMPLATE
from tests.local.conftest import running

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.local.conftest import LocalRunner

ACCESS_LINE = re.compile(r"^(GET|POST) (/\S*) (\d{3}) (\d+) ms (\S+)$", re.MULTILINE)


@pytest.fixture
def quiet() -> Iterator[LocalRunner]:
    """A runner of its own, started under the test's capture (moto's state is one per process: one at a time)."""
    with running(TEMPLATE) as local:
        yield local


def test_one_access_line_per_request_without_the_query(quiet: LocalRunner, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert quiet.send("generic/appointment_scheduled.json").status == 202
    assert quiet.get("/_local/health?who=someone@example.com").status == 200
    assert quiet.get("/nowhere").status == 403
    lines = ACCESS_LINE.findall(capsys.readouterr().err)
    webhook = [line for line in lines if line[1] == "/webhooks/generic"]
    assert webhook and webhook[0][0] == "POST" and webhook[0][2] == "202"
    assert webhook[0][4] == "WebhookIngressFunction"
    assert ("GET", "/_local/health", "200") in [line[:3] for line in lines]
    assert [line[4] for line in lines if line[1] == "/_local/health"] == ["_local"]
    assert [(line[2], line[4]) for line in lines if line[1] == "/nowhere"] == [("403", "gateway")]


def test_quiet_by_default_verbose_shows_the_functions_output(capfd: pytest.CaptureFixture[str]) -> None:
    # Each runner starts under this test's capture, one after the other: it stands in for the stdout it
    # finds, as `serve` does.
    with running(TEMPLATE) as quiet:
        capfd.readouterr()
        assert quiet.send("generic/appointment_scheduled.json").status == 202
        quiet.post("/_local/settle")
        out = capfd.readouterr().out
    assert '"_aws"' not in out  # no EMF metric lines
    assert '"level"' not in out  # no Powertools log lines
    with running(TEMPLATE, verbose=True) as loud:
        capfd.readouterr()
        assert loud.send("generic/appointment_scheduled.json").status == 202
        loud.post("/_local/settle")
        assert '"_aws"' in capfd.readouterr().out


def test_a_poisoned_message_is_dead_lettered_listed_and_redriven(
    quiet: LocalRunner, capsys: pytest.CaptureFixture[str]
) -> None:
    quiet.post("/_local/reset")
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=quiet.runner.endpoint)
    url = quiet.runner.provisioned.physical["EventQueue"]
    capsys.readouterr()
    message_id = sqs.send_message(
        QueueUrl=url, MessageBody="not json", MessageGroupId="poison", MessageDeduplicationId="poison-1"
    )["MessageId"]
    quiet.post("/_local/settle")
    err = capsys.readouterr().err
    failures = [line for line in err.splitlines() if f"record {message_id} failed" in line]
    assert len(failures) == 5
    assert "EventProcessorFunction: record" in failures[0] and "(receive 1/5)" in failures[0]
    assert "Traceback" not in err
    assert f"dead-lettered: EventDeadLetterQueue {message_id} after 5 receives: " in err

    items = quiet.get("/_local/dlq").json()["items"]
    assert [(item["queue"], item["message_id"], item["body"], item["receive_count"]) for item in items] == [
        ("EventDeadLetterQueue", message_id, "not json", 5)
    ]
    reason = items[0]["reason"]
    assert reason and reason in failures[-1] and "batchItemFailures" not in reason
    assert quiet.get("/_local/dlq").json()["items"] == items  # looking moves nothing

    redriven = quiet.post("/_local/dlq/redrive")
    assert redriven.status == 200 and redriven.json() == {"redriven": 1}
    err = capsys.readouterr().err
    assert "redriven: EventDeadLetterQueue" in err
    assert err.count("dead-lettered: EventDeadLetterQueue") == 1  # it failed five times again
    again = quiet.get("/_local/dlq").json()["items"]
    assert len(again) == 1 and again[0]["body"] == "not json" and again[0]["message_id"] != message_id

    quiet.post("/_local/reset")
    assert quiet.get("/_local/dlq").json()["items"] == []
