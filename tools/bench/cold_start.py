"""Cold start of every function against a minimal Powertools function, in fresh interpreters.

What is timed, in the child, from its first statement: the import of the function's module (the
handler file, with the layer on ``sys.path``, as Lambda loads it) plus building the service its first
request builds (``wiring.<factory>()``, which creates its boto3 clients). The baseline times what the
Powertools docs show at the top of every function: boto3 and pydantic imported, a Logger, Tracer,
Metrics and an ``APIGatewayRestResolver`` instantiated. The interpreter's own start is the same for
both and left out. Rounds interleave the baseline and the functions so that the machine's noise hits
them alike; the figure is the ratio to the baseline of the same round.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

from localdev.resources import ACCOUNT_ID, REGION
from localdev.runner import DEV_PARAMETERS
from localdev.template import functions, layer_paths, load_template, parameter_defaults, resolve

ROOT = Path(__file__).resolve().parents[2]

# The service each function's first request builds (functions/<name>/app.py).
SERVICE_OF = {
    "WebhookIngressFunction": "webhook_ingress",
    "EventProcessorFunction": "event_processor",
    "OpsApiFunction": "back_office",
    "ScheduledChecksFunction": "sweeper",
    "OutboxRelayFunction": "outbox_relay",
    "MailFeedbackFunction": "mail_feedback",
    "TimeZestPollerFunction": "timezest_poller",
    "PsaWritebackFunction": "psa_writeback",
}

BASELINE = """
import time
started, cpu_started = time.perf_counter(), time.process_time()
import boto3
import pydantic
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="Baseline")
app = APIGatewayRestResolver()
print(time.perf_counter() - started, time.process_time() - cpu_started)
"""

FUNCTION = """
import importlib.util, sys, time
started, cpu_started = time.perf_counter(), time.process_time()
spec = importlib.util.spec_from_file_location("app", {path!r})
module = importlib.util.module_from_spec(spec)
sys.modules["app"] = module
spec.loader.exec_module(module)
from appointments import wiring
wiring.{factory}()
print(time.perf_counter() - started, time.process_time() - cpu_started)
"""


@dataclass(frozen=True)
class Subject:
    name: str  # the function's logical id, or "baseline"
    code: str
    environment: dict[str, str]


class _Placeholder(dict[str, str]):
    """Every resource a function's environment names, as a plausible physical id."""

    def __missing__(self, logical_id: str) -> str:
        if logical_id.endswith("Queue"):
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{logical_id}.fifo"
        if logical_id.endswith(("Secret", "Secrets", "Credentials")):
            return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:{logical_id}"
        if logical_id.endswith("Topic"):
            return f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{logical_id}"
        return logical_id

    def __init__(self, parameters: dict[str, str]) -> None:
        super().__init__()
        self._parameters = parameters

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key not in self._parameters


def _lambda_environment(function: str) -> dict[str, str]:
    """What the Lambda runtime sets, so Tracer, Metrics and Logger take their Lambda paths."""
    return {
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "_X_AMZN_TRACE_ID": "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0",
        "PATH": os.environ.get("PATH", ""),
    }


def subjects(shipped: Path | None = None) -> list[Subject]:
    """The baseline and every function; from ``shipped`` (see ``_as_shipped_without_bytecode``) if given."""
    template = load_template()
    parameters = parameter_defaults(template, DEV_PARAMETERS)
    layers = os.pathsep.join(str(path) for path in layer_paths(template, root=ROOT))
    if shipped is not None:
        layers = str(shipped / "layer")
    found = [
        Subject(
            "baseline",
            BASELINE,
            {**_lambda_environment("baseline"), "POWERTOOLS_SERVICE_NAME": "baseline", "PYTHONPATH": layers},
        )
    ]
    for spec in functions(template, root=ROOT):
        environment = {
            name: resolve(value, physical=_Placeholder(parameters), parameters=parameters, where=spec.logical_id)
            for name, value in spec.environment.items()
        }
        module, _, _ = spec.handler.rpartition(".")
        handler_file = spec.code_uri / f"{module}.py"
        if shipped is not None:
            handler_file = shipped / spec.code_uri.relative_to(ROOT) / f"{module}.py"
        code = FUNCTION.format(path=str(handler_file), factory=SERVICE_OF[spec.logical_id])
        found.append(
            Subject(
                spec.logical_id, code, {**_lambda_environment(spec.logical_id), **environment, "PYTHONPATH": layers}
            )
        )
    if shipped is not None:  # nothing compiled may be written next to the sources: every start compiles again
        found = [Subject(s.name, s.code, {**s.environment, "PYTHONDONTWRITEBYTECODE": "1"}) for s in found]
    return found


# What the Lambda runtime provides itself (compiled): the layer does not need to ship these.
RUNTIME_PACKAGES = frozenset({"boto3", "s3transfer", "jmespath", "python-dateutil", "six"})


def _layer_distributions() -> list[str]:
    """The distributions ``pip install -r layers/core/requirements.txt`` puts in the layer, dependencies too."""
    seen: set[str] = set()
    pending = [
        re.split(r"[\[=<>~! ;]", line.split("#")[0].strip())[0]
        for line in (ROOT / "layers" / "core" / "requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    while pending:
        name = pending.pop().lower().replace("_", "-")
        if name in seen or name in RUNTIME_PACKAGES:
            continue
        seen.add(name)
        distribution = metadata.distribution(name)
        for requirement in distribution.requires or []:
            if "extra ==" in requirement and "tracer" not in requirement:
                continue
            pending.append(re.split(r"[\[=<>~! ;(]", requirement)[0])
    return sorted(seen)


def _as_shipped_without_bytecode(directory: Path) -> Path:
    """The layer and the functions as ``sam build`` ships them today: sources, no ``__pycache__``. Lambda's
    ``/opt`` and ``/var/task`` are read-only, so a container compiles every module it imports, at every start."""
    layer = directory / "layer"
    for name in _layer_distributions():
        distribution = metadata.distribution(name)
        for file in distribution.files or []:
            if "__pycache__" in file.parts or file.parts[0].endswith((".dist-info", "..")):
                continue
            source = Path(str(distribution.locate_file(file)))
            if source.is_file():
                (layer / file).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, layer / file)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "layers" / "core" / "appointments", layer / "appointments", ignore=ignore)
    shutil.copytree(ROOT / "functions", directory / "functions", ignore=ignore)
    return directory


class _SecretsAnswer(BaseHTTPRequestHandler):
    """Secrets Manager's GetSecretValue, for the services that read a secret while they are built."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = json.dumps({"Name": "bench", "SecretString": json.dumps({"timezest": "bench-key"})}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def _local_aws() -> Iterator[str]:
    """Every AWS endpoint of the children is this loopback server: nothing leaves the machine."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SecretsAnswer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class Timing:
    wall: float  # seconds
    cpu: float  # seconds of CPU the child used: what a busy machine's waiting for a core does not inflate


def _time_once(subject: Subject, endpoint: str) -> Timing:
    done = subprocess.run(  # noqa: S603 - our own interpreter, our own code
        [sys.executable, "-c", subject.code],
        env={**subject.environment, "AWS_ENDPOINT_URL": endpoint},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{subject.name}: cold start failed\n{done.stderr[-2000:]}")
    wall, cpu = done.stdout.strip().splitlines()[-1].split()
    return Timing(float(wall), float(cpu))


GOAL = 1.15  # the target: every function at or below 1.15 times the baseline


VARIANTS = {
    "bytecode": "with compiled bytecode (`.pyc`), as `make build` ships it",
    "source": "sources only, compiled at every start (Lambda cannot write `__pycache__`)",
}


def run(quick: bool = False, rounds: int | None = None) -> dict[str, Any]:
    """Each round times the baseline and every function once, in each variant, each in a fresh interpreter."""
    rounds = rounds or (2 if quick else 5)
    with tempfile.TemporaryDirectory(prefix="cold-start-") as directory, _local_aws() as endpoint:
        measured = {
            "bytecode": subjects(),
            "source": subjects(_as_shipped_without_bytecode(Path(directory))),
        }
        for variant_subjects in measured.values():  # once, untimed: the bytecode caches exist before round 1
            _time_once(variant_subjects[0], endpoint)
        variants: dict[str, Any] = {}
        timings: dict[str, dict[str, list[Timing]]] = {v: {s.name: [] for s in measured[v]} for v in measured}
        ratios: dict[str, dict[str, list[float]]] = {v: {s.name: [] for s in measured[v]} for v in measured}
        for _ in range(rounds):
            for variant, variant_subjects in measured.items():
                this_round = {subject.name: _time_once(subject, endpoint) for subject in variant_subjects}
                for name, timing in this_round.items():
                    timings[variant][name].append(timing)
                    ratios[variant][name].append(timing.cpu / this_round["baseline"].cpu)
        for variant in measured:
            variants[variant] = {
                name: {**_figures(timings[variant][name]), "ratio": _summary(ratios[variant][name])}
                for name in timings[variant]
            }
    return {"rounds": rounds, "goal_ratio": GOAL, "variants": variants}


def _figures(timings: list[Timing]) -> dict[str, dict[str, float]]:
    return {
        "cpu_ms": _summary([timing.cpu * 1000 for timing in timings]),
        "wall_ms": _summary([timing.wall * 1000 for timing in timings]),
    }


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def markdown(result: dict[str, Any]) -> str:
    bytecode, source = result["variants"]["bytecode"], result["variants"]["source"]
    goal = result["goal_ratio"]
    lines = [
        "## Cold start",
        "",
        "Each function's handler module imported and its service built (`wiring.<factory>()`, which makes the "
        "boto3 clients its first request uses) in a fresh interpreter, with the Lambda environment the template "
        "gives it, against a **baseline** in the same round: a minimal Powertools function (boto3 and pydantic "
        "imported; Logger, Tracer, Metrics and an `APIGatewayRestResolver` instantiated). The interpreter's own "
        "start is the same for both and left out. Times are CPU time (a shared machine's wait for a core is not "
        f"the function's cost), median of {result['rounds']} rounds with min and max; the ratio is to the "
        f"baseline of the same round; the goal is {goal:.2f}.",
        "",
        "Two variants, each function against a baseline built the same way: "
        + "; ".join(f"**{name}**: {words}" for name, words in VARIANTS.items())
        + ". The second is what a container pays when the deployment has no `.pyc`: the runtime's own "
        "libraries (boto3) are compiled, the layer's and the function's are not.",
        "",
        "| function | CPU ms | x baseline (min-max) | goal | no .pyc: CPU ms | x its baseline | .pyc saves |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for name, figures in bytecode.items():
        ratio, unshipped = figures["ratio"], source[name]
        verdict = "" if name == "baseline" else ("met" if ratio["median"] <= goal else "not met")
        saved = unshipped["cpu_ms"]["median"] - figures["cpu_ms"]["median"]
        lines.append(
            f"| {name} | {figures['cpu_ms']['median']:.0f} | {ratio['median']:.2f} "
            f"({ratio['min']:.2f}-{ratio['max']:.2f}) | {verdict} | {unshipped['cpu_ms']['median']:.0f} | "
            f"{unshipped['ratio']['median']:.2f} | {saved:.0f} ms |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(run(rounds=int(sys.argv[1]) if len(sys.argv) > 1 else None)))
