"""Every sample under ``events/``, in a shuffled order, through the local runner over HTTP: whatever order the
vendors' webhooks come in, each event they carry is applied to an appointment (its delivery id is in the
history) or waits, listed by ``GET /unmatched``. Nothing is dead-lettered, nothing is lost without a trace.

The samples are moved to the runner's clock by one shift (as ``localdev demo`` moves its story), so they
keep their offsets; the order is a seeded shuffle, so a failure names the order that caused it.
"""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from appointments import wiring
from appointments.sources.base import SubscriptionEnded, WebhookRequest
from localdev.samples import SOURCES, shift, shift_days
from localdev.signing import DEV_SECRETS
from tests.local.conftest import OPS_TOKEN, START

if TYPE_CHECKING:
    from collections.abc import Mapping

    from appointments.sources.base import Source
    from tests.local.conftest import LocalRunner

EVENTS = Path(__file__).resolve().parents[2] / "events"
# Every sample of every source the runner signs for (``localdev send`` cannot send the others either).
SAMPLES = sorted(
    path.relative_to(EVENTS).as_posix() for path in EVENTS.glob("*/*.json") if path.parent.name in DEV_SECRETS
)
AUTH = {"Authorization": f"Bearer {OPS_TOKEN}"}


@pytest.fixture(autouse=True)
def _fresh(product: LocalRunner) -> None:
    assert product.post("/_local/reset").status == 200
    assert product.post("/_local/clock", {"now": START.isoformat()}).status == 200


def sources() -> Mapping[str, Source]:
    """The runner's own sources, as it configured them: they say which events each sample carries."""
    return wiring.webhook_ingress().sources


def moved(local: LocalRunner) -> dict[str, bytes]:
    """Every sample's body, all moved by one shift to the runner's clock."""
    documents = {relative: json.loads((EVENTS / relative).read_text()) for relative in SAMPLES}
    story = [(relative.split("/")[0], document) for relative, document in documents.items()]
    days = shift_days([(source, document) for source, document in story if source in SOURCES], local.now())
    return {
        relative: json.dumps(
            shift(relative.split("/")[0], document, days) if relative.split("/")[0] in SOURCES else document
        ).encode()
        for relative, document in documents.items()
    }


def applied_deliveries(local: LocalRunner) -> set[str]:
    """Every delivery id in the history of every appointment the ops API lists."""
    found: set[str] = set()
    # The samples lie within a week of the runner's date: 30 days either side hold them all.
    since, until = (local.now() + timedelta(days=days) for days in (-30, 30))
    window = f"from={since:%Y-%m-%dT%H:%M:%SZ}&to={until:%Y-%m-%dT%H:%M:%SZ}"
    listed = local.get(f"/appointments?{window}&limit=100", headers=AUTH)
    assert listed.status == 200, listed.body
    body: dict[str, Any] = listed.json()
    assert body["next_cursor"] is None
    for item in body["items"]:
        detail = local.get(f"/appointments/{item['id']}", headers=AUTH).json()
        found |= {entry["detail"]["delivery_id"] for entry in detail["history"] if "delivery_id" in entry["detail"]}
    return found


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_sample_in_any_order_is_applied_or_listed_unmatched_and_none_is_dead_lettered(
    product: LocalRunner, seed: int
) -> None:
    # Given every sample, moved to the runner's clock, in a shuffled order
    bodies = moved(product)
    order = list(SAMPLES)
    random.Random(seed).shuffle(order)
    readers = sources()
    expected: dict[str, str] = {}  # delivery id -> the sample that carried it
    # When each is sent, signed as its vendor would, and the queue settles after each
    for relative in order:
        source = relative.split("/")[0]
        reply = product.send(relative, body=bodies[relative])
        assert reply.status == 202, (seed, relative, reply.status, reply.body)
        try:
            events = readers[source].parse(WebhookRequest(headers={}, body=bodies[relative]))
        except SubscriptionEnded:  # the vendor's notice that it gave up: acknowledged, alarmed, no event
            events = ()
        assert reply.json()["events"] == len(events), (seed, relative)
        expected.update({event.delivery_id: relative for event in events})
        assert product.post("/_local/settle").status == 200
    # Then nothing went to a dead-letter queue
    assert product.get("/_local/dlq").json()["items"] == [], (seed, order)
    # And every event is on an appointment's history or waits, listed for ops
    unmatched = product.get("/unmatched?limit=100", headers=AUTH).json()
    assert unmatched["next_cursor"] is None
    waiting = {item["delivery_id"] for item in unmatched["items"]}
    applied = applied_deliveries(product)
    lost = {delivery: sample for delivery, sample in expected.items() if delivery not in applied | waiting}
    assert lost == {}, (seed, order)
    assert applied & expected.keys(), "the samples make appointments"
