"""A Cal.com cancellation of a booking the desk never received, through the local runner over HTTP: it waits,
listed by ``GET /unmatched``, and once ``UnmatchedAlertMinutes`` (30) have passed ops get one mail about it."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from tests.local.conftest import OPS_TOKEN, START

if TYPE_CHECKING:
    from tests.local.conftest import LocalRunner

AUTH = {"Authorization": f"Bearer {OPS_TOKEN}"}


@pytest.fixture(autouse=True)
def _fresh(product: LocalRunner) -> None:
    assert product.post("/_local/reset").status == 200
    assert product.post("/_local/clock", {"now": START.isoformat()}).status == 200


def ops_alerts(local: LocalRunner) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = local.get("/_local/outbox").json()["items"]
    return [mail for mail in items if "unmatched" in mail["subject"]]


def test_a_cancellation_of_a_booking_never_received_alerts_ops_once_after_thirty_minutes(
    product: LocalRunner,
) -> None:
    # Given a Cal.com cancellation whose booking never arrived, delivered twice
    for _ in range(2):
        assert product.send("calcom/booking_cancelled.json").status == 202
        product.post("/_local/settle")
    listed = product.get("/unmatched", headers=AUTH).json()["items"]
    assert len(listed) == 1
    # When 29 minutes pass, then 30, then an hour more
    product.post("/_local/clock", {"now": (START + timedelta(minutes=29)).isoformat()})
    before = ops_alerts(product)
    product.post("/_local/clock", {"now": (START + timedelta(minutes=30)).isoformat()})
    product.post("/_local/clock", {"now": (START + timedelta(minutes=90)).isoformat()})
    # Then ops got one mail, after the delay, naming what waits and where to see it
    assert before == []
    [mail] = ops_alerts(product)
    assert mail["to"] == ["ops@msp.example"]  # the runner's OpsAlertEmail
    assert "calcom" in mail["subject"]
    assert "appointment.cancelled" in mail["subject"]
    assert "GET /unmatched" in mail["text"]
    assert f"arrived: {START.isoformat()}" in mail["text"]
    # And the event still waits, listed for ops
    assert len(product.get("/unmatched", headers=AUTH).json()["items"]) == 1
