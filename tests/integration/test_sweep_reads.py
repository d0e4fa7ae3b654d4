"""A sweep reads what is due, not the table: ten times the appointments stored, the same items read.

The sweep of the scheduled-checks function (``wiring.sweeper()``, the real DynamoDB store) under moto, its
DynamoDB calls counted by botocore hooks, as ``tools/bench/sweep_scaling.py`` measures it at scale.
"""

from __future__ import annotations

from tools.bench.sweep_scaling import sweep_reads_under_moto

DUE = 10
SHARDS = 4  # DUE_SHARDS, the template's default


def test_ten_times_the_appointments_stored_read_the_same_items() -> None:
    small = sweep_reads_under_moto(50, due=DUE)
    large = sweep_reads_under_moto(500, due=DUE)

    assert small["due"] == large["due"] == DUE
    assert not small["stopped_early"] and not large["stopped_early"]
    assert small["applied"] == large["applied"]
    assert large["items_read_by_operation"] == small["items_read_by_operation"]
    assert large["items_read"] == small["items_read"]
    # One page of each shard of appointments, one of each shard of mails, one of the unmatched alerts.
    assert small["calls"]["Query"] == large["calls"]["Query"] == 2 * SHARDS + 1
    assert "Scan" not in small["calls"] and "Scan" not in large["calls"]
