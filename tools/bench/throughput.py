"""Throughput of the webhook path and of the event processor, and each handler's memory peak per batch.

Webhooks: signed generic bookings POSTed from 8 client threads, over HTTP on 127.0.0.1, to the local
runner (``python -m localdev serve --port 0 --clock manual``, a process of its own, fresh for each run):
requests answered 202 per second. The runner's pump applies them in the background meanwhile, in the same
process, as it does for a developer; all of it runs on moto, so the figure is the runner's, not AWS's.

Processor: new-booking records fed to ``EventProcessorFunction`` in batches of 10, in-process under moto
(``tools.bench.warm``'s stack): events applied per second. Each figure is the median of 3 runs, with min
and max.

Memory (here rather than in warm.py: it needs a fresh interpreter): in a child process, each handler
is warmed up, then one batch runs under ``tracemalloc``: the peak of Python allocations during the batch
above what was held before it, and the growth of the process's peak RSS (``ru_maxrss``, which only
grows: a batch that stays under an earlier peak shows 0). moto runs in that process too, so its own
allocations for the calls (parsing, the items it keeps) are in the figures: an upper bound.
"""

from __future__ import annotations

import json
import os
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from http.client import HTTPConnection
from typing import TYPE_CHECKING, Any

from tools.bench.warm import NOW, ROOT, expect, generic_booking, layer_on_path, quiet_stdout

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tools.bench.warm import Bench

READY = re.compile(r"on http://127\.0\.0\.1:(\d+) \(ready in ([0-9.]+) s")
CLIENT_THREADS = 8
RUNS = 3
BATCH = 10


# -- webhooks through the local runner over HTTP ------------------------------------------------------


@contextmanager
def runner() -> Iterator[int]:
    """The local runner on a free loopback port; its output drained so a long run never blocks on it."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("AWS_ENDPOINT_URL")}
    with subprocess.Popen(
        [sys.executable, "-m", "localdev", "serve", "--port", "0", "--clock", "manual"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        try:
            if process.stdout is None:
                raise RuntimeError("no pipe from the runner")
            output = process.stdout
            banner = []
            for line in output:  # blocks until the runner prints
                banner.append(line)
                if match := READY.search(line):
                    break
            else:
                raise RuntimeError("the runner exited before it was ready:\n" + "".join(banner))
            drain = threading.Thread(target=lambda: [None for _ in output], daemon=True)
            drain.start()
            yield int(match.group(1))
        finally:
            # Killed, not stopped: a stop would first drain the backlog the run left (tens of seconds).
            process.kill()
            process.wait()


def runner_now(port: int) -> datetime:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_local/clock", timeout=10) as response:
        return datetime.fromisoformat(json.loads(response.read())["now"])


def signed_bookings(count: int, at: datetime, first: int) -> list[tuple[bytes, dict[str, str]]]:
    from localdev.signing import runner_webhook

    return [
        runner_webhook("generic", generic_booking(first + n, at + timedelta(days=2, minutes=n)), "", at)
        for n in range(count)
    ]


def post(port: int, body: bytes, headers: dict[str, str]) -> int:
    connection = HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", "/webhooks/generic", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def webhook_run(port: int, requests: int, first: int) -> dict[str, float]:
    signed = signed_bookings(requests + 1, runner_now(port), first=first)
    post(port, *signed[0])  # on a fresh runner, this builds the ingress function's clients: not timed
    timed = signed[1:]
    answered: list[float] = []  # when each answer came, for the rate of the first and last tenth

    def send(request: tuple[bytes, dict[str, str]]) -> int:
        status = post(port, *request)
        answered.append(time.perf_counter())
        return status

    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        started = time.perf_counter()
        statuses = list(pool.map(send, timed))
        elapsed = time.perf_counter() - started
    refused = [status for status in statuses if status != 202]
    expect(not refused, f"{len(refused)} requests not accepted: {refused[:5]}")
    return {
        "requests": len(timed),
        "seconds": elapsed,
        "per_second": len(timed) / elapsed,
        **tenths([at - started for at in sorted(answered)]),
    }


def tenths(finished: list[float]) -> dict[str, float]:
    """The rate over the first and the last tenth of the work (seconds since the start, in order)."""
    tenth = max(1, len(finished) // 10)
    last_start = finished[-tenth - 1] if len(finished) > tenth else 0.0
    return {
        "first_tenth_per_second": tenth / finished[tenth - 1],
        "last_tenth_per_second": tenth / (finished[-1] - last_start),
    }


def webhook_runs(requests: int, fresh_runner_each: bool) -> list[dict[str, float]]:
    """``RUNS`` runs; on one runner (quick: its start costs seconds) or each on a fresh one."""
    if fresh_runner_each:
        runs = []
        for n in range(RUNS):
            with runner() as port:
                runs.append(webhook_run(port, requests, first=n * (requests + 1)))
        return runs
    with runner() as port:
        return [webhook_run(port, requests, first=n * (requests + 1)) for n in range(RUNS)]


# -- the processor in-process -------------------------------------------------------------------------


def booking_records(bench: Bench, count: int) -> list[dict[str, Any]]:
    from appointments.sources.base import WebhookRequest
    from appointments.sources.generic import GenericSource
    from localdev.sqs import sqs_record

    records = []
    for _ in range(count):
        number = bench.next_number()
        body = generic_booking(number, NOW + timedelta(days=2, minutes=number % 600))
        [event] = GenericSource().parse(WebhookRequest(headers={}, body=body))
        records.append(
            sqs_record(
                event.model_dump_json(), group=event.entity, dedupe=event.delivery_id, queue_arn=bench.stack.queue_arn
            )
        )
    return records


def processor_run(bench: Bench, events: int, *, empty_each_batch: bool) -> dict[str, float]:
    """``events`` new bookings in batches; ``empty_each_batch``: the tables emptied after each (not timed),
    for a figure that does not depend on how much the run wrote before (under moto every Query scans the
    whole table)."""
    bench.truncate()
    records = booking_records(bench, events)
    batches = [records[first : first + BATCH] for first in range(0, len(records), BATCH)]
    elapsed = 0.0
    finished: list[float] = []
    for batch in batches:
        started = time.perf_counter()
        failed = bench.stack.process(batch)
        elapsed += time.perf_counter() - started
        finished.append(elapsed)
        expect(failed == [], failed)
        if empty_each_batch:
            bench.truncate()
    return {
        "events": events,
        "seconds": elapsed,
        "per_second": events / elapsed,
        **{name: rate * BATCH for name, rate in tenths(finished).items()},
    }


def processor_runs(events: int) -> tuple[list[dict[str, float]], dict[str, float]]:
    """``RUNS`` runs on tables emptied after each batch, and one on a table that grows."""
    from tools.bench.warm import bench_stack

    with quiet_stdout(), bench_stack() as bench:
        processor_run(bench, BATCH, empty_each_batch=True)  # warm-up: the clients built
        runs = [processor_run(bench, events, empty_each_batch=True) for _ in range(RUNS)]
        return runs, processor_run(bench, events, empty_each_batch=False)


# -- memory per batch, in a child interpreter -----------------------------------------------------------


def memory_batches(bench: Bench, size: int) -> dict[str, Callable[[], Callable[[], Any]]]:
    """Each handler's batch of ``size`` (100: 100 requests, 10 SQS batches of 10, 100 due, 100 records): a
    preparation, which gives the batch to run. Prepared one at a time on empty tables: a sweep would send
    the relay's pending mails."""
    from appointments import wiring
    from tests.ses_events import ses_record
    from tools.bench import warm

    notices = max(2, size // 10)

    def ingress() -> Callable[[], Any]:
        bodies = [generic_booking(bench.next_number(), NOW + timedelta(days=2)) for _ in range(size)]
        return lambda: [bench.stack.post_generic(body) for body in bodies]

    def processor() -> Callable[[], Any]:
        records = booking_records(bench, size)
        return lambda: [bench.stack.process(records[n : n + BATCH]) for n in range(0, size, BATCH)]

    def ops() -> Callable[[], Any]:
        appointment_id = warm.booked_by_ops(bench, NOW + timedelta(days=3), mirror=False)
        return lambda: [bench.stack.ops("GET", f"/appointments/{appointment_id}") for _ in range(size)]

    def relay() -> Callable[[], Any]:
        booked = [warm.booked_by_ops(bench, NOW + timedelta(days=2, minutes=n), mirror=False) for n in range(size)]
        records = warm.pending_mail_records(bench, booked)
        return lambda: bench.stack.invoke("OutboxRelayFunction", {"Records": records})

    def feedback() -> Callable[[], Any]:
        booked = [warm.booked_by_ops(bench, NOW + timedelta(days=4, minutes=n), mirror=False) for n in range(notices)]
        bench.stack.invoke("OutboxRelayFunction", {"Records": warm.pending_mail_records(bench, booked)})
        records = []
        for appointment_id in booked:
            [mail] = wiring.store().load(appointment_id).mails
            notice = ses_record(
                "Bounce", appointment_id=appointment_id, mail_key=mail.key, message_id=mail.message_id or ""
            )
            records.append(sns_record(json.dumps(notice), appointment_id))
        return lambda: bench.stack.invoke("MailFeedbackFunction", {"Records": records})

    return {
        f"ingress: {size} signed webhooks": ingress,
        f"processor: {size // BATCH} batches of {BATCH} new bookings": processor,
        f"ops: {size} GET /appointments/{{id}}": ops,
        f"sweep: {size} due": lambda: warm._sweep(bench, size),
        f"relay: a batch of {size} stream records ({size} mails)": relay,
        f"mail feedback: {notices} bounce notices": feedback,
    }


def sns_record(message: str, tag: str) -> dict[str, Any]:
    return {
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:MailFeedbackTopic:bench",
        "Sns": {
            "Type": "Notification",
            "MessageId": f"bench-{tag}",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:MailFeedbackTopic",
            "Subject": "",
            "Message": message,
            "Timestamp": "2026-11-23T10:00:30.000Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertUrl": "EXAMPLE",
            "UnsubscribeUrl": "EXAMPLE",
            "MessageAttributes": {},
        },
    }


def memory_child(quick: bool) -> dict[str, dict[str, float]]:
    """In this (fresh) process: each batch once small to warm up, then once measured."""
    from tools.bench.warm import bench_stack

    figures: dict[str, dict[str, float]] = {}
    with quiet_stdout(), bench_stack() as bench:
        for prepare in memory_batches(bench, BATCH).values():  # warm-up: clients, imports, templates
            bench.truncate()
            prepare()()
        for name, prepare in memory_batches(bench, BATCH if quick else 100).items():
            bench.truncate()
            batch = prepare()
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            tracemalloc.start()
            batch()
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            figures[name] = {
                "tracemalloc_peak_mb": peak / 2**20,
                "maxrss_growth_mb": (rss_after - rss_before) / 1024,  # Linux: kilobytes
                "maxrss_mb": rss_after / 1024,
            }
    return figures


def memory(quick: bool) -> dict[str, dict[str, float]]:
    done = subprocess.run(  # noqa: S603 - our own interpreter, our own module
        [sys.executable, "-m", "tools.bench.throughput", "--memory-child", *(["--quick"] if quick else [])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the memory child failed\n{done.stderr[-3000:]}")
    figures: dict[str, dict[str, float]] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


# -- the section ---------------------------------------------------------------------------------------


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def run(quick: bool = False) -> dict[str, Any]:
    layer_on_path()
    started = time.perf_counter()
    requests = 30 if quick else 400
    webhooks = webhook_runs(requests, fresh_runner_each=not quick)
    processor, growing = processor_runs(20 if quick else 300)
    return {
        "quick": quick,
        "webhooks": {
            "requests": requests,
            "threads": CLIENT_THREADS,
            "fresh_runner_each_run": not quick,
            "per_second": summary([r["per_second"] for r in webhooks]),
            "runs": webhooks,
        },
        "processor": {
            "events": processor[0]["events"],
            "batch": BATCH,
            "per_second": summary([r["per_second"] for r in processor]),
            "runs": processor,
            "growing_table": growing,
        },
        "memory": memory(quick),
        "run_seconds": time.perf_counter() - started,
    }


def markdown(result: dict[str, Any]) -> str:
    webhooks, processor = result["webhooks"], result["processor"]
    growing = processor["growing_table"]
    runner_how = "a fresh runner for each run" if webhooks["fresh_runner_each_run"] else "the runs on one runner"
    lines = [
        "## Throughput and memory",
        "",
        f"Webhooks: signed generic bookings from {webhooks['threads']} client threads over HTTP on 127.0.0.1 to "
        f"the local runner (`python -m localdev serve --clock manual`, {runner_how}); its pump applies them "
        "meanwhile in the same process. Processor: new-booking SQS records in batches of "
        f"{processor['batch']} to the real handler in-process under moto, the tables emptied after each batch "
        f"(not timed). Median of {RUNS} runs (min-max). Both run on moto: the figures compare versions of this "
        "code, not what AWS would sustain. The last columns are the rate over the first and the last tenth of "
        "each run (medians): under moto 5.2.5 every Query scans the whole table, so rates fall as tables grow.",
        "",
        "| path | per run | per second: median (min-max) | first tenth /s | last tenth /s |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| webhooks answered 202 | {webhooks['runs'][0]['requests']} requests | {_range(webhooks['per_second'])} "
        f"| {_median(webhooks['runs'], 'first_tenth_per_second')} "
        f"| {_median(webhooks['runs'], 'last_tenth_per_second')} |",
        f"| events applied by the processor | {processor['events']} events | {_range(processor['per_second'])} "
        f"| {_median(processor['runs'], 'first_tenth_per_second')} "
        f"| {_median(processor['runs'], 'last_tenth_per_second')} |",
        f"| the same, one run on a growing table | {growing['events']} events | {growing['per_second']:.0f} "
        f"| {growing['first_tenth_per_second']:.0f} | {growing['last_tenth_per_second']:.0f} |",
        "",
        "### Memory per batch",
        "",
        "In a fresh interpreter, after one warm-up batch each, each batch on empty tables: the tracemalloc peak "
        "during the batch (Python allocations made in it and still held at its peak), and how much the "
        "process's peak RSS grew (it only grows, so a batch below an earlier peak shows 0). moto runs in the "
        "same process: its allocations for the calls count too, so these are upper bounds.",
        "",
        "| handler: batch | tracemalloc peak MB | peak RSS growth MB | peak RSS after MB |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, figures in result["memory"].items():
        lines.append(
            f"| {name} | {figures['tracemalloc_peak_mb']:.1f} | {figures['maxrss_growth_mb']:.1f} | "
            f"{figures['maxrss_mb']:.0f} |"
        )
    lines += ["", f"Run time: {result['run_seconds']:.1f} s{' (quick)' if result['quick'] else ''}."]
    return "\n".join(lines) + "\n"


def _median(runs: list[dict[str, float]], key: str) -> str:
    return f"{statistics.median(run[key] for run in runs):.0f}"


def _range(figures: dict[str, float]) -> str:
    return f"{figures['median']:.0f} ({figures['min']:.0f}-{figures['max']:.0f})"


if __name__ == "__main__":
    if "--memory-child" in sys.argv:
        layer_on_path()
        print(json.dumps(memory_child(quick="--quick" in sys.argv)))
    else:
        figures = run(quick="--quick" in sys.argv)
        print(json.dumps(figures, indent=2))
        print(markdown(figures))
