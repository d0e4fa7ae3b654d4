"""The Powertools logger, tracer and metrics: the only instances, shared by every function.

The service name comes from ``POWERTOOLS_SERVICE_NAME`` set per function in the template.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

if TYPE_CHECKING:
    from appointments.services.psa_writeback import Written
    from appointments.services.sweeper import SweepReport
    from appointments.services.timezest_poller import PollReport

logger = Logger()
tracer = Tracer()
metrics = Metrics()


def record_sweep(report: SweepReport) -> None:
    """A metric per rule applied and skipped, and each effect's lateness (applied - due): rules running late
    show at once. Lateness is the sweep's own (its minute plus any catch-up), not the mail's."""
    metrics.add_metric(name="DueAppointments", unit=MetricUnit.Count, value=report.due)
    metrics.add_metric(name="RuleFailures", unit=MetricUnit.Count, value=report.failed)
    for effect in report.effects:
        name = "".join(part.title() for part in str(effect.rule).split("_"))
        if effect.skipped is None:
            metrics.add_metric(name=f"{name}Applied", unit=MetricUnit.Count, value=1)
            metrics.add_metric(name=f"{name}LatenessSeconds", unit=MetricUnit.Seconds, value=effect.lateness_seconds)
        else:
            metrics.add_metric(name=f"{name}Skipped", unit=MetricUnit.Count, value=1)


def record_poll(report: PollReport) -> None:
    """What a TimeZest poll cost and brought: requests against the vendor's limit, 429s, changes, lag."""
    metrics.add_metric(name="TimeZestRequests", unit=MetricUnit.Count, value=report.requests)
    metrics.add_metric(name="TimeZestRateLimited", unit=MetricUnit.Count, value=report.rate_limited)
    metrics.add_metric(name="TimeZestChanges", unit=MetricUnit.Count, value=report.changes)
    metrics.add_metric(name="TimeZestUnreadable", unit=MetricUnit.Count, value=report.unreadable)
    metrics.add_metric(name="TimeZestPollIncomplete", unit=MetricUnit.Count, value=0 if report.completed else 1)


def record_writeback(written: Written) -> None:
    """One count per outcome of the PSA write-back (written, already written, skipped, ticket gone)."""
    name = "".join(part.title() for part in written.value.split("_"))
    metrics.add_metric(name=f"PsaWriteback{name}", unit=MetricUnit.Count, value=1)
