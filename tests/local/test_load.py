"""Load through the local runner, the way vendors deliver: signed webhooks from parallel senders, retried
(exact duplicates), each appointment's events fully shuffled. Then settle and hold every appointment to the
rules of docs/convergence.md: nothing acknowledged is lost, nothing dead-lettered, no appointment doubled.

``make test`` runs it at CI size; ``make soak`` sets LOAD_APPOINTMENTS (and LOAD_THREADS) higher. Figures
(throughput, acknowledgement latency) are printed, never asserted: this machine is shared and noisy.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import threading
import time
import urllib.parse
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from appointments.domain.events import CanonicalEvent
from appointments.domain.model import Appointment
from appointments.sources.base import WebhookRequest
from appointments.sources.generic import GenericSource
from localdev.signing import DEV_SECRETS, signature_headers
from localdev.template import TEMPLATE
from tests.convergence_oracle import Expected, expected
from tests.local.conftest import OPS_TOKEN, START, LocalRunner, dead_letters, running

APPOINTMENTS = int(os.environ.get("LOAD_APPOINTMENTS", "50"))  # make soak: 200 (1,000 webhooks) and more
THREADS = int(os.environ.get("LOAD_THREADS", "8"))
DISTINCT_PER_APPOINTMENT = 4  # 200 appointments: 800 distinct events and 200 duplicates make 1,000 webhooks
DUPLICATE_SHARE = 0.25  # of the distinct events: duplicates are 20% of what is sent
TECHNICIANS = [{"id": f"t-{n}", "name": f"Tech {n}", "email": f"t{n}@msp.example"} for n in range(1, 6)]
LATER = ["appointment.rescheduled", "appointment.assigned", "appointment.cancelled", "appointment.checked_in"]
LATER += ["appointment.assigned", "appointment.no_show", "appointment.completed", "appointment.rescheduled"]


def _booking(rng: random.Random) -> dict[str, Any]:
    start = START + timedelta(days=2, hours=rng.randrange(0, 240))
    return {
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=rng.choice([30, 60]))).isoformat(),
        "timezone": "America/New_York",
        "type": "remote_call_in",
        "customer": {"name": rng.choice(["Dana Reyes", "Ana Silva", "Lee Park"]), "email": "c@example.com"},
        "technicians": rng.sample(TECHNICIANS, rng.randrange(0, 2)),
    }


def appointment_events(rng: random.Random, n: int) -> list[bytes]:
    """One appointment's distinct webhooks: a booking and three later events, at distinct vendor times."""
    external_id = f"load-{n:05d}"
    minutes = rng.sample(range(0, 600), DISTINCT_PER_APPOINTMENT)
    kinds = [rng.choice(["appointment.scheduled", "appointment.requested"]), *rng.sample(LATER, 3)]
    bodies = []
    for index, (kind, minute) in enumerate(zip(kinds, minutes, strict=True)):
        appointment: dict[str, Any] = {"external_id": external_id}
        if kind in ("appointment.scheduled", "appointment.requested", "appointment.rescheduled"):
            appointment.update(_booking(rng))
        elif kind == "appointment.assigned":
            appointment["technicians"] = rng.sample(TECHNICIANS, rng.randrange(0, 3))
        document = {
            "event_id": f"evt-{external_id}-{index}",
            "type": kind,
            "occurred_at": (START - timedelta(days=1) + timedelta(minutes=minute)).isoformat(),
            "appointment": appointment,
            "reason": "load test" if kind == "appointment.cancelled" else None,
        }
        bodies.append(json.dumps(document).encode())
    return bodies


@dataclass
class Sent:
    status: int
    seconds: float


def _send_all(local: LocalRunner, bodies: list[bytes]) -> list[Sent]:
    now = local.now()  # the clock stands still (manual): every signature is fresh
    results: list[Sent] = []
    lock = threading.Lock()
    work = iter(bodies)

    def sender() -> None:
        while True:
            with lock:
                body = next(work, None)
            if body is None:
                return
            headers = {
                "Content-Type": "application/json",
                **signature_headers("generic", DEV_SECRETS["generic"], body, now),
            }
            began = time.perf_counter()
            reply = local.post("/webhooks/generic", body=body, headers=headers)
            sent = Sent(reply.status, time.perf_counter() - began)
            with lock:
                results.append(sent)

    threads = [threading.Thread(target=sender) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _appointment(local: LocalRunner, external_id: str) -> list[Appointment]:
    query = urllib.parse.urlencode(
        {
            "external_id": f"generic:{external_id}",
            "from": (START - timedelta(days=30)).isoformat(),
            "to": (START + timedelta(days=60)).isoformat(),
        }
    )
    auth = {"Authorization": f"Bearer {OPS_TOKEN}"}
    items = local.get(f"/appointments?{query}", headers=auth).json()["items"]
    return [Appointment.model_validate(_detail(local, item["id"], auth)) for item in items]


def _detail(local: LocalRunner, appointment_id: str, auth: dict[str, str]) -> dict[str, Any]:
    # The API's view leaves out bookkeeping; what the oracle compares is all in it.
    view = local.get(f"/appointments/{appointment_id}", headers=auth).json()
    fields = {name: view[name] for name in ("id", "status", "start", "end", "timezone", "type", "customer")}
    fields.update(
        technicians=view["technicians"],
        cancellation=view["cancellation"],
        checked_in_at=view["checked_in_at"],
        created_at=view["created_at"],
        updated_at=view["updated_at"],
        version=view["version"],
    )
    return fields


def _parsed(body: bytes) -> CanonicalEvent:
    [event] = GenericSource().parse(WebhookRequest(headers={}, body=body))
    return event


def test_parallel_shuffled_duplicated_webhooks_all_converge_with_nothing_lost() -> None:
    # Given every appointment's distinct events, some sent twice, each appointment's fully shuffled and all interleaved
    rng = random.Random(20261201)
    distinct = {n: appointment_events(rng, n) for n in range(APPOINTMENTS)}
    everything = [body for bodies in distinct.values() for body in bodies]
    duplicates = rng.sample(everything, int(len(everything) * DUPLICATE_SHARE))
    deliveries = everything + duplicates
    rng.shuffle(deliveries)

    with running(TEMPLATE, background=True) as local:
        # When eight senders deliver them all at once, while the queue is pumped
        began = time.perf_counter()
        sent = _send_all(local, deliveries)
        sending = time.perf_counter() - began
        assert local.post("/_local/settle").status == 200
        settled = time.perf_counter() - began

        # Then every webhook was acknowledged, nothing was dead-lettered, and each booking is one appointment
        assert [s.status for s in sent if s.status != 202] == []
        assert dead_letters(local) == 0
        wrong = []
        for n, bodies in distinct.items():
            found = _appointment(local, f"load-{n:05d}")
            assert len(found) == 1, f"load-{n:05d} is held by {len(found)} appointments"
            want = expected([_parsed(body) for body in bodies])
            if Expected.of(found[0]) != want:
                wrong.append((n, Expected.of(found[0]), want))
        # And every final state is the newest news per fact
        assert wrong == []

    latencies = sorted(s.seconds for s in sent)
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    print(
        f"\nload: {len(deliveries)} webhooks ({len(duplicates)} duplicates) for {APPOINTMENTS} appointments from "
        f"{THREADS} threads: sent in {sending:.1f} s ({len(deliveries) / sending:.0f}/s), settled in {settled:.1f} s "
        f"({len(everything) / settled:.0f} events applied/s); ack latency p50 {p50:.0f} ms, p99 {p99:.0f} ms, "
        f"max {latencies[-1] * 1000:.0f} ms"
    )
