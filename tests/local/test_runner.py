"""The runner's gateway, auth and scheduler, on a small fixture template with schedules and an AWS_IAM API."""

from __future__ import annotations

from pathlib import Path

import pytest

from localdev.__main__ import _print_banner
from localdev.clock import RunnerClock
from localdev.runner import DEV_IDENTITY_ARN, Runner, RunnerConfig, StartupError
from localdev.server import LocalServer
from localdev.template import TemplateError
from tests.local.conftest import FIXTURES, OPS_TOKEN, START, LocalRunner

AUTH = {"Authorization": f"Bearer {OPS_TOKEN}"}


@pytest.fixture(autouse=True)
def _fresh(fixture_stack: LocalRunner) -> None:
    # A reset first: the first clock move after it may go back in time.
    assert fixture_stack.post("/_local/reset").status == 200
    assert fixture_stack.post("/_local/clock", {"now": START.isoformat()}).status == 200


def runs(local: LocalRunner) -> list[str]:
    reply = local.get("/runs", headers=AUTH)
    assert reply.status == 200
    result: list[str] = reply.json()
    return result


# --- the scheduler


def test_moving_the_clock_past_a_rate_runs_the_function_at_its_due_time(fixture_stack: LocalRunner) -> None:
    reply = fixture_stack.post("/_local/clock", {"advance_seconds": 300})
    assert reply.json()["ran"] == ["HeartbeatFunction.EveryFiveMinutes"]
    assert runs(fixture_stack) == ["heartbeat#2026-11-23T10:05:00Z"]


def test_fire_times_missed_by_a_big_jump_are_run_once(fixture_stack: LocalRunner) -> None:
    fixture_stack.post("/_local/clock", {"advance_seconds": 3 * 3600})
    assert runs(fixture_stack) == ["heartbeat#2026-11-23T13:00:00Z"]


def test_nothing_runs_until_a_fire_time_is_reached(fixture_stack: LocalRunner) -> None:
    assert fixture_stack.post("/_local/clock", {"advance_seconds": 200}).json()["ran"] == []
    assert runs(fixture_stack) == []


def test_a_schedule_in_a_time_zone_fires_at_its_local_time_with_its_input(fixture_stack: LocalRunner) -> None:
    # 02:00 in New York on 24 November is 07:00 UTC
    reply = fixture_stack.post("/_local/clock", {"now": "2026-11-24T07:00:10Z"})
    assert "HeartbeatFunction.NightlyInNewYork" in reply.json()["ran"]
    assert "nightly#2026-11-24T07:00:00Z" in runs(fixture_stack)


def test_tick_runs_every_scheduled_function_once_now(fixture_stack: LocalRunner) -> None:
    reply = fixture_stack.post("/_local/tick")
    assert sorted(reply.json()["ran"]) == ["HeartbeatFunction.EveryFiveMinutes", "HeartbeatFunction.NightlyInNewYork"]
    assert runs(fixture_stack) == ["heartbeat#2026-11-23T10:00:30Z", "nightly#2026-11-23T10:00:30Z"]


def test_the_schedules_are_listed(fixture_stack: LocalRunner) -> None:
    items = fixture_stack.get("/_local/schedules").json()["items"]
    assert {(item["event"], item["expression"]) for item in items} == {
        ("EveryFiveMinutes", "rate(5 minutes)"),
        ("NightlyInNewYork", "cron(0 2 * * ? *)"),
    }


# --- the gateway and auth


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": OPS_TOKEN}])
def test_an_iam_route_without_the_bearer_token_is_401_before_the_function_runs(
    fixture_stack: LocalRunner, headers: dict[str, str]
) -> None:
    reply = fixture_stack.get("/runs", headers=headers)
    assert reply.status == 401
    error = reply.json()
    assert error["error"]["code"] == "unauthorized"
    assert error["request_id"]


def test_the_proxy_event_carries_everything_api_gateway_sends(fixture_stack: LocalRunner) -> None:
    reply = fixture_stack.request(
        "PATCH",
        "/echo/a%20b/c?x=1&x=2&y=",
        body=b'{"hello": "world"}',
        headers={**AUTH, "Content-Type": "application/json", "X-Repeat": "one"},
    )
    assert reply.status == 200
    document = reply.json()
    event = document["event"]
    assert (event["resource"], event["path"], event["httpMethod"]) == ("/echo/{proxy+}", "/echo/a b/c", "PATCH")
    assert event["pathParameters"] == {"proxy": "a b/c"}
    assert event["queryStringParameters"] == {"x": "2", "y": ""}
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"], "y": [""]}
    assert event["headers"]["X-Repeat"] == "one"
    assert event["multiValueHeaders"]["X-Repeat"] == ["one"]
    assert (event["body"], event["isBase64Encoded"]) == ('{"hello": "world"}', False)
    context = event["requestContext"]
    assert (context["stage"], context["resourcePath"], context["path"]) == ("v1", "/echo/{proxy+}", "/v1/echo/a b/c")
    assert context["identity"]["userArn"] == DEV_IDENTITY_ARN
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["requestId"]
    # The function's context counts down from the template's Timeout (5 s).
    assert 0 < document["remaining_ms"] <= 5000


def test_multi_value_response_headers_reach_the_client(fixture_stack: LocalRunner) -> None:
    reply = fixture_stack.get("/echo/x", headers=AUTH)
    assert reply.header_values("X-Seen") == ["one", "two"]


# --- bad configuration stops the runner at start


def _variant(tmp_path: Path, old: str, new: str) -> Path:
    template = (FIXTURES / "scheduled" / "template.yaml").read_text()
    assert old in template
    target = tmp_path / "template.yaml"
    target.write_text(template.replace(old, new))
    (tmp_path / "functions").symlink_to(FIXTURES / "scheduled" / "functions")
    return target


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("rate(5 minutes)", "cron(0 12 L * ? *)", "Resources.HeartbeatFunction.Properties.Events.EveryFiveMinutes"),
        ("rate(5 minutes)", "rate(5 minute)", "EveryFiveMinutes"),
    ],
)
def test_a_schedule_the_runner_cannot_emulate_stops_it_naming_where(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    with pytest.raises(StartupError, match=message):
        Runner(RunnerConfig(template_path=_variant(tmp_path, old, new)), RunnerClock())


def test_an_event_type_the_runner_cannot_emulate_stops_it_naming_where(tmp_path: Path) -> None:
    template = _variant(tmp_path, "Type: Schedule\n", "Type: S3\n")
    with pytest.raises(TemplateError, match=r"HeartbeatFunction\.Properties\.Events\.EveryFiveMinutes.*'S3'"):
        Runner(RunnerConfig(template_path=template), RunnerClock())


def test_a_port_in_use_stops_the_runner(fixture_stack: LocalRunner) -> None:
    port = int(fixture_stack.base.rsplit(":", 1)[1])
    with pytest.raises(OSError):
        LocalServer(fixture_stack.runner, port)


def test_the_embedded_aws_listens_on_loopback_only(fixture_stack: LocalRunner) -> None:
    assert fixture_stack.runner.endpoint.startswith("http://127.0.0.1:")


def test_the_start_banner_says_the_state_lives_in_memory_and_goes_with_the_runner(
    fixture_stack: LocalRunner, capsys: pytest.CaptureFixture[str]
) -> None:
    _print_banner(fixture_stack.runner, fixture_stack.server, fixture_stack.runner.config, 0.5)

    banner = capsys.readouterr().out
    assert "State (tables, queues, mail) lives in memory: it is gone when the runner stops." in banner
