"""``python -m localdev serve`` runs the product locally.

``python -m localdev send <file> [--as-is] [--url URL]`` signs a sample event with the local secret and posts
it, its times moved to the runner's clock (``localdev.samples``) unless ``--as-is``. ``--url`` defaults to
``$LOCALDEV_URL``, then ``http://127.0.0.1:3000``.

``python -m localdev demo [--url URL]`` sends a short story of samples (moved the same way) and says what to look at.

``python -m localdev mail-preview [--out DIR]`` renders every mail from sample data into DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

from localdev.clock import RunnerClock
from localdev.runner import DEV_OPS_TOKEN, Runner, RunnerConfig, StartupError, describe_route
from localdev.samples import shift, shift_days
from localdev.schedule import ScheduleError
from localdev.server import LocalServer
from localdev.signing import DEV_SECRETS, runner_webhook
from localdev.template import TEMPLATE, TemplateError, layer_paths, load_template

DEFAULT_PORT = 3000
DEFAULT_PREVIEW_OUT = Path("mail-preview")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run every function of template.yaml on 127.0.0.1")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument("--clock", choices=("system", "manual"), default="system")
    serve.add_argument("--template", type=Path, default=TEMPLATE)
    serve.add_argument("--parameter", action="append", default=[], metavar="NAME=VALUE", help="override a parameter")
    serve.add_argument(
        "--verbose", action="store_true", help="show the functions' log lines, EMF metrics and full tracebacks"
    )
    send = commands.add_parser("send", help="sign a sample event with the local secret and post it")
    send.add_argument("file", type=Path, help="events/<source>/<name>.json")
    send.add_argument("--source", help="the webhook source (default: the sample's folder name)")
    send.add_argument("--url", default=_default_url(), help="the runner (default: $LOCALDEV_URL or %(default)s)")
    send.add_argument(
        "--as-is", action="store_true", help="send the sample's times unchanged (default: moved to the runner's clock)"
    )
    demo = commands.add_parser("demo", help="send a short story of samples, moved to the runner's clock")
    demo.add_argument("--url", default=_default_url(), help="the runner (default: $LOCALDEV_URL or %(default)s)")
    preview = commands.add_parser("mail-preview", help="render every mail from sample data into a folder")
    preview.add_argument("--out", type=Path, default=DEFAULT_PREVIEW_OUT, help="the folder (default: %(default)s)")
    arguments = parser.parse_args(argv)
    if arguments.command == "serve":
        return _serve(arguments)
    if arguments.command == "mail-preview":
        return _mail_preview(arguments)
    if arguments.command == "demo":
        return _demo(arguments)
    return _send(arguments)


def _default_url() -> str:
    """``$LOCALDEV_URL`` when set (a runner on another port), else the ``make run`` runner."""
    return os.environ.get("LOCALDEV_URL") or f"http://127.0.0.1:{DEFAULT_PORT}"


def _mail_preview(arguments: argparse.Namespace) -> int:
    # The core layer goes on the path as Lambda puts it there; only then can the mail package be imported.
    for path in layer_paths(load_template()):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    from appointments.errors import ConfigError
    from localdev.mail_preview import preview_branding, write_previews

    try:
        branding = preview_branding(os.environ)
        written = write_previews(arguments.out, branding)
    except ConfigError as error:
        return _fail(str(error))
    except OSError as error:
        return _fail(f"{arguments.out}: {error.strerror or error}")
    for path in written:
        print(path)
    return 0


def _serve(arguments: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        parameters = dict(_pair(text) for text in arguments.parameter)
        config = RunnerConfig.from_environ(
            os.environ, template_path=arguments.template, parameters=parameters, verbose=arguments.verbose
        )
        runner = Runner(config, RunnerClock(manual=arguments.clock == "manual"))
        server = LocalServer(runner, arguments.port)
    except OSError as error:
        return _fail(f"cannot listen on 127.0.0.1:{arguments.port}: {error.strerror or error}")
    except (StartupError, TemplateError, ScheduleError, ValueError) as error:
        return _fail(str(error))
    try:
        runner.start()
    except (StartupError, TemplateError) as error:
        runner.stop()
        server.server_close()
        return _fail(str(error))
    # Explicit, because a shell that starts the runner in the background makes it ignore SIGINT.
    on_signal = _StopOnSignal(server)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    server.start_background()
    _print_banner(runner, server, config, time.monotonic() - started)
    try:
        server.serve_forever(poll_interval=0.2)  # returns once the stop has drained everything
    finally:
        server.stop()  # after a signal: waits for the stop under way
    print("localdev: stopped; its tables, queues and mail are gone", flush=True)
    return 0


class _StopOnSignal:
    """Ctrl-C or SIGTERM: stop in order on another thread while this one keeps answering (503); again: exit now."""

    def __init__(self, server: LocalServer) -> None:
        self._server = server
        self._stopper: threading.Thread | None = None

    def __call__(self, signum: int, frame: Any) -> None:
        if self._stopper is not None:
            os.write(2, b"\nlocaldev: stopped at once; requests in flight were dropped\n")
            os._exit(1)
        self._stopper = threading.Thread(target=self._stop, name="localdev-stop")
        self._stopper.start()

    def _stop(self) -> None:
        print("\nlocaldev: stopping: new requests get 503; finishing those in flight and what they queued…", flush=True)
        self._server.stop()


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise ValueError(f"--parameter {text!r}: expected NAME=VALUE")
    return name, value


def _print_banner(runner: Runner, server: LocalServer, config: RunnerConfig, seconds: float) -> None:
    base = f"http://127.0.0.1:{server.port}"
    lines = [f"localdev: the appointment desk on {base} (ready in {seconds:.2f} s, clock {runner.clock.mode})", ""]
    lines += [f"Embedded AWS (moto): {runner.endpoint}  (point boto3 or the AWS CLI at it with --endpoint-url)"]
    lines += ["State (tables, queues, mail) lives in memory: it is gone when the runner stops.", ""]
    routes = sorted(runner.routes, key=lambda route: (route.path, route.method))
    lines += ["Routes:"] + [f"  {describe_route(route)}" for route in routes]
    lines += ["", "Queues pumped into functions:"] + [f"  {line}" for line in runner.subscriptions] or ["  (none)"]
    lines += ["", "Streams read into functions:"]
    lines += [f"  {line}" for line in runner.stream_subscriptions] or ["  (none)"]
    lines += ["", "Event bus rules (every event: /_local/events):"]
    lines += [f"  {line}" for line in runner.bus_rules] or ["  (none)"]
    lines += ["", "SNS topics delivered to functions (SES bounces on request: POST /_local/ses/bounce):"]
    lines += [f"  {line}" for line in runner.topic_subscriptions] or ["  (none)"]
    lines += ["", "Schedules, on the runner's clock:"]
    schedules = [f"  {item['function']}.{item['event']}: {item['expression']}" for item in runner.schedules]
    lines += schedules or ["  (none)"]
    lines += ["", "Webhook secrets (set WEBHOOK_SECRET_<SOURCE> to change):"]
    for source, secret in config.webhook_secrets.items():
        shown = secret if secret == DEV_SECRETS.get(source) else f"(from WEBHOOK_SECRET_{source.upper()})"
        lines.append(f"  {source:9} {shown}")
    parameters = runner.parameters
    lines.append(
        f"Mail from {parameters.get('MailFrom')}; ops alerts to {parameters.get('OpsAlertEmail')} "
        "(--parameter MailFrom=... / OpsAlertEmail=...)"
    )
    token = DEV_OPS_TOKEN if config.ops_token == DEV_OPS_TOKEN else "(from OPS_API_TOKEN)"
    lines += [f"Ops API bearer token: {token}", ""]
    lines += [
        "Try it:",
        "  .venv/bin/python -m localdev send events/generic/appointment_scheduled.json",
        f"  curl -s {base}/_local/outbox          # mail sent",
        f"  curl -s -XPOST {base}/_local/clock -d '{{\"advance_seconds\": 3600}}'",
        "Ctrl-C stops everything (requests already accepted are finished first; state in memory is dropped).",
    ]
    print("\n".join(lines), flush=True)


def _send(arguments: argparse.Namespace) -> int:
    path: Path = arguments.file
    source = arguments.source or path.resolve().parent.name
    if source not in DEV_SECRETS:
        return _fail(f"{path}: cannot tell the source (give --source, one of {', '.join(DEV_SECRETS)})")
    try:
        body = path.read_bytes()
    except OSError as error:
        return _fail(f"{path}: {error.strerror or error}")
    base = arguments.url.rstrip("/")
    try:
        now = datetime.fromisoformat(_request(f"{base}/_local/clock")[1]["now"])
        if not arguments.as_is:
            body = _shifted_body(source, body, now, None)
        status, answer = _post_webhook(base, source, body, now)
    except urllib.error.URLError as error:
        return _fail(f"cannot reach {base} ({error.reason}): is `make run` running?")
    print(f"POST /webhooks/{source} → {status} {json.dumps(answer)}")
    return 0 if 200 <= status < 300 else 1


def _shifted_body(source: str, body: bytes, now: datetime, days: int | None) -> bytes:
    """The sample with its times moved (``localdev.samples``); the bytes as they are when nothing moves."""
    try:
        document = json.loads(body)
    except ValueError:
        return body  # not JSON: the runner's answer says so
    moved = shift(source, document, days if days is not None else shift_days([(source, document)], now))
    return body if moved == document else json.dumps(moved, indent=2, ensure_ascii=False).encode()


def _post_webhook(base: str, source: str, body: bytes, now: datetime) -> tuple[int, Any]:
    """Sign ``body`` as ``source``'s vendor would at the runner's ``now`` and post it."""
    body, headers = runner_webhook(source, body, base, now, os.environ.get(f"WEBHOOK_SECRET_{source.upper()}"))
    return _request(f"{base}/webhooks/{source}", body=body, headers=headers)


# The demo's story, in order: (sample, what it is, the ops API list that shows it).
DEMO_STORY = (
    ("generic/appointment_scheduled_unassigned.json", "generic booking, nobody assigned", "generic:stf-982"),
    ("generic/appointment_scheduled.json", "generic call-in booking, technician assigned", "generic:stf-981"),
    ("calcom/booking_created.json", "Cal.com booking", "calcom:bXk3n8QvTz2LmP4rWc7yHd"),
    ("calcom/booking_rescheduled.json", "Cal.com reschedule of that booking", "calcom:bXk3n8QvTz2LmP4rWc7yHd"),
    ("calendly/invitee_created.json", "Calendly booking", "calendly:7c1e4b9a-2f3d-4a86-8e50-b3d9f6a21c47"),
    ("calendly/invitee_canceled.json", "Calendly cancel of it", "calendly:7c1e4b9a-2f3d-4a86-8e50-b3d9f6a21c47"),
    # Its EventTime is older than the booking's occurred_at: history shows it event_superseded (newest news wins).
    ("autotask/ticket_assigned.json", "Autotask assignment of ticket 48213, older news", "generic:stf-981"),
)
EVENTS = Path(__file__).resolve().parent.parent / "events"


def _demo(arguments: argparse.Namespace) -> int:
    """Each sample of the story, all moved by one shift (the story's earliest start: tomorrow), in order."""
    base = arguments.url.rstrip("/")
    try:
        samples = [(name.split("/")[0], (EVENTS / name).read_bytes()) for name, _, _ in DEMO_STORY]
    except OSError as error:
        return _fail(f"{error.filename}: {error.strerror or error}")
    failed = 0
    try:
        now = datetime.fromisoformat(_request(f"{base}/_local/clock")[1]["now"])
        days = shift_days([(source, json.loads(body)) for source, body in samples], now)
        print(f"localdev demo: {len(samples)} webhooks to {base}, the samples moved {days:+d} days")
        for number, ((name, what, external_id), (source, body)) in enumerate(zip(DEMO_STORY, samples, strict=True), 1):
            status, answer = _post_webhook(base, source, _shifted_body(source, body, now, days), now)
            _request(f"{base}/_local/settle", body=b"{}", headers={"Content-Type": "application/json"})
            failed += status != 202
            look = f'curl -s -H "$T" "{base}/appointments?external_id={external_id}"'
            detail = "" if status == 202 else f" {json.dumps(answer)}"
            print(f"{number}. {what} ({name}) → {status}{detail}\n   look: {look}")
    except urllib.error.URLError as error:
        return _fail(f"cannot reach {base} ({error.reason}): is `make run` running?")
    print(f'(T="Authorization: Bearer $OPS_API_TOKEN", dev-ops-token by default; mail: curl -s {base}/_local/outbox)')
    return 1 if failed else 0


def _request(url: str, *, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    if not url.startswith(("http://127.0.0.1", "http://localhost")):
        raise urllib.error.URLError("the local runner listens on 127.0.0.1 only")
    method = "POST" if body else "GET"
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback only, checked above
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def _fail(message: str) -> int:
    print(f"localdev: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
