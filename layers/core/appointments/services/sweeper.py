"""The sweeper: runs the timed rules on what the ``due`` index says is due, and only on that.

Each run reads every shard's due appointments (paged), re-reads each one, asks ``domain.rules`` what
applies now, and writes the effects (state, history, mails, next check) in one transaction conditioned
on the version it read. A conflict (an assignment, a reschedule, a check-in, another sweep) re-reads
and decides again, so the newer state always wins the race. It stops taking new work when the time
left runs low: whatever it leaves is still due and the next run takes it. Pending mails have shards of
their own; ``MailSender`` is the seam where the mail sender plugs in, ``AlertSender`` the one for the ops
alerts about booking changes left unmatched (``services.unmatched_alerts``).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from appointments.domain import lifecycle
from appointments.domain.history import Action, HistoryEntry, Record
from appointments.domain.lifecycle import Change
from appointments.domain.model import Actor, CancelledBy
from appointments.domain.outbox import MailKind, NoShowMailBy, OutboxMail, no_show_mail
from appointments.domain.rules import Rule, RuleTimings, armed, decide, next_check
from appointments.errors import AppError, AppointmentNotFound, VersionConflict
from appointments.ports import DueKind

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from appointments.domain.appointment_types import AppointmentTypeCatalog
    from appointments.domain.coupons import CouponPolicy
    from appointments.domain.model import Appointment
    from appointments.domain.rules import Due, Verdict
    from appointments.ports import AppointmentStore, Clock, DueItem

logger = logging.getLogger(__name__)

PAGE_SIZE = 100
MAIL_SAFETY_NET_AFTER = timedelta(minutes=1)
ATTEMPTS = 3


class MailSender(Protocol):
    def send_due(self, items: tuple[DueItem, ...]) -> int:
        """Send what these pending mails hold; how many were sent (the next issue's SES sender)."""
        ...


class AlertSender(Protocol):
    def send_due(self, now: datetime) -> int:
        """Send the ops alerts about unmatched booking changes due at ``now``; how many were sent."""
        ...


@dataclass(frozen=True)
class SweepPolicy:
    coupons: CouponPolicy
    ops_alert_email: str
    timings: RuleTimings = field(default_factory=RuleTimings)
    shards: int = 4
    reserve_seconds: float = 10.0  # stop taking new work with less time than this left
    # Who sends the missed-appointment mail: the desk, or (for an appointment with a ticket) the PSA's workflow.
    no_show_mail_by: NoShowMailBy = NoShowMailBy.DESK
    # The outbox relay sends a new mail within a second of its commit (the table's stream). The sweep sends
    # only the pending mails older than this: the ones the stream missed and throttled retries. Sending the
    # mails its own run just created was 4 of every 5 calls of a busy sweep, each one raced by the relay.
    mail_safety_net_after: timedelta = MAIL_SAFETY_NET_AFTER


@dataclass(frozen=True)
class Effect:
    """One rule applied (or skipped): what the operator's metrics are made of."""

    rule: Rule
    appointment_id: str
    due_at: datetime
    applied_at: datetime
    skipped: str | None = None  # the reason, for a skip

    @property
    def lateness_seconds(self) -> float:
        return (self.applied_at - self.due_at).total_seconds()


@dataclass
class SweepReport:
    due: int = 0  # due appointments read from the index
    effects: list[Effect] = field(default_factory=list)
    failed: int = 0  # left due after an error, for the next run
    stopped_early: bool = False  # time ran low: the rest waits for the next run
    mails_sent: int = 0
    unmatched_alerts_sent: int = 0

    def summary(self) -> dict[str, Any]:
        """What the run did, per rule: the answer of ``POST /checks/run`` and the function's result."""
        applied = Counter(str(e.rule) for e in self.effects if e.skipped is None)
        skipped = Counter(str(e.rule) for e in self.effects if e.skipped is not None)
        lateness = [e.lateness_seconds for e in self.effects if e.skipped is None]
        return {
            "due": self.due,
            "applied": dict(sorted(applied.items())),
            "skipped": dict(sorted(skipped.items())),
            "failed": self.failed,
            "stopped_early": self.stopped_early,
            "max_lateness_seconds": max(lateness, default=0.0),
        }


def _unlimited() -> float:
    return float("inf")


class Sweeper:
    def __init__(
        self,
        store: AppointmentStore,
        clock: Clock,
        catalog: AppointmentTypeCatalog,
        policy: SweepPolicy,
        mail: MailSender | None = None,
        unmatched_alerts: AlertSender | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._catalog = catalog
        self._policy = policy
        self._mail = mail
        self._unmatched_alerts = unmatched_alerts

    def sweep(self, *, seconds_left: Callable[[], float] = _unlimited, requested_by: str | None = None) -> SweepReport:
        """One run over every shard. ``requested_by``: the ops caller of ``POST /checks/run``, if any."""
        report = SweepReport()
        now = self._clock.now()
        # A page from each shard in turn, so a backlog in one never starves the others.
        cursors: dict[int, str | None] = dict.fromkeys(range(self._policy.shards))
        while cursors:
            for shard, cursor in list(cursors.items()):
                if seconds_left() < self._policy.reserve_seconds:
                    report.stopped_early = True
                    return report
                page = self._store.due(DueKind.APPOINTMENT, shard, now, limit=PAGE_SIZE, cursor=cursor)
                report.due += len(page.items)
                for item in page.items:
                    if seconds_left() < self._policy.reserve_seconds:
                        report.stopped_early = True
                        return report
                    self._settle_one(item.appointment_id, report, requested_by)
                if page.cursor is None:
                    del cursors[shard]
                else:
                    cursors[shard] = page.cursor
        if self._mail is not None:
            report.mails_sent = self._send_mail(now - self._policy.mail_safety_net_after, seconds_left)
        if self._unmatched_alerts is not None:
            report.unmatched_alerts_sent = self._unmatched_alerts.send_due(now)
        return report

    def _send_mail(self, pending_since: datetime, seconds_left: Callable[[], float]) -> int:
        """The mails still pending since before ``pending_since``: one page per shard, while time is left."""
        assert self._mail is not None  # noqa: S101 - called only with a sender
        sent = 0
        for shard in range(self._policy.shards):
            if seconds_left() < self._policy.reserve_seconds:
                break
            sent += self._mail.send_due(self._store.due(DueKind.MAIL, shard, pending_since, limit=PAGE_SIZE).items)
        return sent

    def _settle_one(self, appointment_id: str, report: SweepReport, requested_by: str | None) -> None:
        """Decide and apply for one appointment; a conflict re-reads and decides again."""
        for remaining in reversed(range(ATTEMPTS)):
            try:
                appointment = self._store.get(appointment_id)
            except AppointmentNotFound:
                return  # merged into another since the index was read
            except AppError:
                # A read the store refused (throttled): this one stays due, the rest of the run goes on.
                logger.exception("a due appointment could not be read; it stays due")
                report.failed += 1
                return
            at = self._clock.now()
            verdict = decide(appointment, self._catalog.get(appointment.type), self._policy.timings, now=at)
            change = self._change(appointment, verdict, at, requested_by)
            if change is None:
                return
            try:
                self._store.commit(change)
            except VersionConflict:
                if remaining == 0:
                    report.failed += 1
                    return
                continue
            except AppError:
                logger.exception("a rule could not be applied; the appointment stays due")
                report.failed += 1
                return
            report.effects += [Effect(d.rule, appointment.id, d.at, at) for d in verdict.apply]
            report.effects += [Effect(s.due.rule, appointment.id, s.due.at, at, s.reason) for s in verdict.skip]
            return

    def _change(
        self, appointment: Appointment, verdict: Verdict, at: datetime, requested_by: str | None
    ) -> Change | None:
        """The verdict as one change: one history entry per rule applied or skipped, then the next check."""
        if not verdict:
            # Nothing due after all (the index was a step behind): only the next check moves.
            next_due = next_check(appointment, self._catalog, self._policy.timings)
            if next_due == appointment.next_due_at:
                return None
            return Change(appointment, lifecycle.evolve(appointment, at=at, next_due_at=next_due), history=())
        by = {"requested_by": requested_by} if requested_by else {}
        current = appointment
        history: list[HistoryEntry] = []
        mails: list[OutboxMail] = []
        for skip in verdict.skip:
            step = lifecycle.record(
                current,
                Record.NOTICE_SKIPPED,
                at=at,
                actor=Actor.system(),
                detail={"rule": skip.due.rule.value, "due_at": skip.due.at.isoformat(), "reason": skip.reason, **by},
            )
            sent = {**step.after.notices_sent, skip.due.key: at}
            # Every step is built on the version this change will write, so each mail's key names it.
            current = step.after.model_copy(update={"notices_sent": sent, "version": appointment.version})
            history += step.history
        for due in verdict.apply:
            step = self._apply(current, due, at, by)
            current = step.after.model_copy(update={"version": appointment.version})
            history += step.history
            mails += step.mails
        after = current.model_copy(update={"version": appointment.version + 1})
        change = Change(before=appointment, after=after, history=tuple(history), mails=tuple(mails))
        return armed(change, self._catalog, self._policy.timings)

    def _apply(self, appointment: Appointment, due: Due, at: datetime, by: dict[str, Any]) -> Change:
        detail = {"due_at": due.at.isoformat(), **by}
        match due.rule:
            case Rule.REMINDER | Rule.PRE_NOTICE:
                action = Action.REMINDER if due.rule is Rule.REMINDER else Action.PRE_NOTICE
                change = lifecycle.record_notice(appointment, action, notice_key=due.key, at=at, detail=detail)
                kind = MailKind.REMINDER if due.rule is Rule.REMINDER else MailKind.PRE_NOTICE
                return self._to_customer(change, kind, notice_key=due.key)
            case Rule.AUTO_CANCEL:
                coupon = self._policy.coupons.offer(appointment, at=at)
                reason = "no technician could be assigned in time"
                change = lifecycle.cancel(
                    appointment, by=CancelledBy.SYSTEM, reason=reason, coupon=coupon, at=at, actor=Actor.system()
                )
                change = change.with_history_detail(detail)
                context: dict[str, Any] = {"reason": reason}
                if coupon is not None:
                    context["coupon"] = {"code": coupon.code, "percent": coupon.percent}
                change = self._to_customer(change, MailKind.CANCELLED, context=context)
                return change.with_mails(self._ops_alert(change.after, "auto_cancel", "auto-cancelled: no technician"))
            case Rule.AT_RISK | Rule.UNASSIGNED_AT_START:
                record = Record.AT_RISK if due.rule is Rule.AT_RISK else Record.UNASSIGNED_AT_START
                change = lifecycle.record(appointment, record, at=at, actor=Actor.system(), detail=detail)
                sent = {**change.after.notices_sent, due.key: at}
                change = Change(change.before, change.after.model_copy(update={"notices_sent": sent}), change.history)
                subject = (
                    "at risk: unassigned inside the auto-cancel window"
                    if due.rule is Rule.AT_RISK
                    else "the start has come and no technician is assigned"
                )
                return change.with_mails(self._ops_alert(change.after, str(due.rule), subject))
            case Rule.NO_SHOW:
                # "desk", "psa" or "none": the PSA note says who told the customer.
                mail = no_show_mail(appointment, self._policy.no_show_mail_by)
                change = lifecycle.mark_no_show(appointment, at=at, actor=Actor.system())
                change = change.with_history_detail({**detail, "mail": mail})
                return self._to_customer(change, MailKind.NO_SHOW) if mail == NoShowMailBy.DESK else change
        raise ValueError(f"no effect for {due.rule}")  # pragma: no cover

    def _to_customer(
        self, change: Change, kind: MailKind, *, notice_key: str | None = None, context: dict[str, Any] | None = None
    ) -> Change:
        after = change.after
        if after.customer.email is None:
            return change
        to, at, told = (after.customer.email,), after.updated_at, context or {}
        if notice_key is not None:
            return change.with_mails(OutboxMail.notice(kind, after, notice_key=notice_key, to=to, at=at, context=told))
        return change.with_mails(OutboxMail.for_change(kind, after, to=to, at=at, context=told))

    def _ops_alert(self, appointment: Appointment, code: str, subject: str) -> OutboxMail:
        to, at = (self._policy.ops_alert_email,), appointment.updated_at
        return OutboxMail.ops_alert(appointment, code=code, subject=subject, to=to, at=at, context={"rule": code})
