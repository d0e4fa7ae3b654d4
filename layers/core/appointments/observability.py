"""The Powertools logger, tracer and metrics: the only instances, shared by every function.

The service name comes from ``POWERTOOLS_SERVICE_NAME`` set per function in the template. Powertools reads
it once, when the Logger is made at import; the logger here reads it again at each invocation, so a process
that runs several functions (the local runner, the tests) logs each line under its own function's name.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit, single_metric

if TYPE_CHECKING:
    from collections.abc import Iterable

    from appointments.domain.history import HistoryEntry
    from appointments.services.psa_writeback import Written
    from appointments.services.sweeper import SweepReport
    from appointments.services.timezest_poller import PollReport

_Handler = TypeVar("_Handler", bound=Callable[..., Any])


class _Logger(Logger):
    """Powertools' Logger whose ``service`` is the invoked function's, read at each invocation."""

    @overload
    def inject_lambda_context(
        self,
        lambda_handler: _Handler,
        log_event: bool | None = None,
        correlation_id_path: str | None = None,
        clear_state: bool | None = False,
        flush_buffer_on_uncaught_error: bool = False,
    ) -> _Handler: ...

    @overload
    def inject_lambda_context(
        self,
        lambda_handler: None = None,
        log_event: bool | None = None,
        correlation_id_path: str | None = None,
        clear_state: bool | None = False,
        flush_buffer_on_uncaught_error: bool = False,
    ) -> Callable[[_Handler], _Handler]: ...

    def inject_lambda_context(
        self,
        lambda_handler: _Handler | None = None,
        log_event: bool | None = None,
        correlation_id_path: str | None = None,
        clear_state: bool | None = False,
        flush_buffer_on_uncaught_error: bool = False,
    ) -> Any:
        options: dict[str, Any] = {
            "log_event": log_event,
            "correlation_id_path": correlation_id_path,
            "clear_state": clear_state,
            "flush_buffer_on_uncaught_error": flush_buffer_on_uncaught_error,
        }
        if lambda_handler is None:  # used with arguments: Powertools comes back here with the handler
            return super().inject_lambda_context(None, **options)
        decorated = super().inject_lambda_context(lambda_handler, **options)

        @functools.wraps(lambda_handler)
        def handler(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
            service = os.environ.get("POWERTOOLS_SERVICE_NAME")
            if service and service != self.service:
                self.service = service
                self.append_keys(service=service)
            return decorated(event, context, *args, **kwargs)

        return handler


logger = _Logger()
tracer = Tracer()
metrics = Metrics()

# The services log through the standard library (``logging.getLogger(__name__)``: the package below the
# functions does not depend on Powertools' Logger). Their parent logger writes through the Powertools
# handler, so their lines are JSON too, with the function's service, its request id and the keys appended
# for the record at hand, and the logger's ``name`` saying which module wrote it.
logging.getLogger(__package__ or "appointments")
copy_config_to_registered_loggers(source_logger=logger, include={__package__ or "appointments"})


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


# Event outcomes by the processor's history record; every other entry for an event is an applied change.
_EVENT_RECORDS = {"event_superseded": "EventsSuperseded", "event_ignored": "EventsIgnored", "psa_echo": "EventsIgnored"}


def record_events(history: Iterable[HistoryEntry]) -> None:
    """Per committed change: each event it applied (``EventsApplied``), found older than what the appointment
    knows (``EventsSuperseded``) or changing nothing (``EventsIgnored``). Entries not caused by an event
    (alerts, merges) are not counted."""
    for entry in history:
        if "delivery_id" not in entry.detail:
            continue
        name = _EVENT_RECORDS.get(str(entry.action), "EventsApplied")
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def record_parked() -> None:
    """An event kept waiting for its booking or ticket (``GET /unmatched`` lists them)."""
    metrics.add_metric(name="EventsParked", unit=MetricUnit.Count, value=1)


def record_mail_feedback(outcome: str, bounce: bool) -> None:
    """One count per SES notice by outcome (``MailFeedbackAlerted``…), and ``MailsBounced`` for each bounce,
    complaint or reject the desk recorded."""
    metrics.add_metric(name=f"MailFeedback{outcome.title()}", unit=MetricUnit.Count, value=1)
    if bounce:
        metrics.add_metric(name="MailsBounced", unit=MetricUnit.Count, value=1)


def record_webhook(source: str, events: int) -> None:
    """A webhook accepted from ``source``: ``Webhooks`` with the one dimension ``source`` (what the silent-source
    alarms watch), in a metric document of its own so the function's other metrics keep theirs."""
    with single_metric(name="Webhooks", unit=MetricUnit.Count, value=1) as metric:
        metric.add_dimension(name="source", value=source)
    metrics.add_metric(name="WebhookEventsQueued", unit=MetricUnit.Count, value=events)


def record_subscription_ended(source: str) -> None:
    """The vendor's notice that it turned its webhook subscription off: ``WebhookSubscriptionsEnded`` (the
    alarm), and not a ``Webhooks`` datapoint, which would tell the silent-source alarm the vendor is alive."""
    metrics.add_metric(name="WebhookSubscriptionsEnded", unit=MetricUnit.Count, value=1)


# A mail another sender holds or has sent (a replayed record, the sweeper first) counts as nothing.
_MAIL_METRICS = {"sent": "MailsSent", "retry": "MailsRetried", "failed": "MailsFailed", "skipped": "MailsSkipped"}


def record_mail(outcome: str) -> None:
    """One count per mail a sender (the outbox relay, or a sweep's due mails) sent, put back for a retry,
    gave up on (``MailsFailed``: refused for good, recorded and alerted) or skipped as overtaken."""
    if (name := _MAIL_METRICS.get(str(outcome))) is not None:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
