"""Event buses: every event put on one is logged, and delivered to the functions whose rules match it.

moto keeps no record of the events it is given; it only delivers them to rule targets. So every bus
(the template's and ``default``) gets a catch-all rule, ``localdev-tap``, whose SQS target is one
queue of the runner's own: an input transformer wraps each event with its bus's name, and one queue
keeps the order in which they were put across buses. The runner drains that queue into its log
(``GET /_local/events``) and a backlog it delivers from: each ``EventBridgeRule`` event whose pattern
matches (moto's own matcher, as ``put_events`` uses) invokes its function, as EventBridge invokes
Lambda asynchronously.

Departures from AWS: a function that fails is retried at once (Lambda backs off for minutes), up to
its ``EventInvokeConfig.MaximumRetryAttempts`` (default 2), then the event is dropped with a message;
an event's ``time`` is the one moto stamps, the wall clock unless the producer sets ``Time``.
"""

from __future__ import annotations

import copy
import json
import sys
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3

from localdev.resources import REGION

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from localdev.template import BusRule

TAP_QUEUE = "localdev-event-tap"
TAP_RULE = "localdev-tap"
_CATCH_ALL = json.dumps({"source": [{"prefix": ""}]})


class PatternError(Exception):
    """A rule's pattern moto's matcher refuses: the message says why."""


@dataclass(frozen=True)
class BusEvent:
    bus: str
    event: dict[str, Any]  # as EventBridge delivers it to a target

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.event["id"],
            "bus": self.bus,
            "source": self.event["source"],
            "detail_type": self.event["detail-type"],
            "detail": self.event["detail"],
            "time": self.event["time"],
        }


def install_taps(buses: Iterable[str]) -> str:
    """The tap queue, and a catch-all rule on each bus that copies every event into it; the queue's URL."""
    sqs = boto3.client("sqs", region_name=REGION)
    events = boto3.client("events", region_name=REGION)
    url = sqs.create_queue(QueueName=TAP_QUEUE)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for bus in dict.fromkeys(buses):
        events.put_rule(Name=TAP_RULE, EventBusName=bus, EventPattern=_CATCH_ALL, State="ENABLED")
        template = '{"bus": %s, "event": <aws.events.event.json>}' % json.dumps(bus)  # noqa: UP031 - not a format
        events.put_targets(
            Rule=TAP_RULE,
            EventBusName=bus,
            Targets=[{"Id": "localdev", "Arn": arn, "InputTransformer": {"InputTemplate": template}}],
        )
    return url


def drain_taps(url: str) -> list[BusEvent]:
    """Every event the tap holds, oldest first, taken off the queue."""
    sqs = boto3.client("sqs", region_name=REGION)
    taken: list[BusEvent] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not messages:
            return taken
        for message in messages:
            wrapped = json.loads(message["Body"])
            taken.append(BusEvent(bus=wrapped["bus"], event=target_event(wrapped["event"])))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def target_event(raw: dict[str, Any]) -> dict[str, Any]:
    """moto's event (time in epoch seconds, its ingestion time) as EventBridge hands it to a target."""
    time = raw.get("time")
    if isinstance(time, int | float):
        time = datetime.fromtimestamp(time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "version": raw.get("version", "0"),
        "id": raw["id"],
        "detail-type": raw["detail-type"],
        "source": raw["source"],
        "account": raw.get("account"),
        "time": time,
        "region": raw.get("region", REGION),
        "resources": raw.get("resources", []),
        "detail": raw.get("detail", {}),
    }


class RuleTarget:
    """One ``EventBridgeRule`` event of one function: its pattern, compiled by moto."""

    def __init__(self, rule: BusRule, retries: int) -> None:
        from moto.events.exceptions import InvalidEventPatternException
        from moto.events.models import EventPattern

        self.rule = rule
        self.retries = retries
        try:
            self._pattern = EventPattern.load(rule.pattern)
        except InvalidEventPatternException as error:
            raise PatternError(f"Pattern: {error.message}") from None

    def matches(self, event: BusEvent) -> bool:
        delivered: Any = event.event
        return event.bus == self.rule.bus and bool(self._pattern.matches_event(delivered))

    def deliver(self, event: BusEvent, invoke: Callable[[str, dict[str, Any]], Any]) -> int:
        """Invoke the function, retrying at once; how many invocations it took."""
        payload = json.loads(self.rule.input) if self.rule.input is not None else event.event
        for attempt in range(1, self.retries + 2):
            try:
                invoke(self.rule.function, copy.deepcopy(payload))
            except Exception:
                traceback.print_exc()
                continue
            return attempt
        print(
            f"localdev: {self.rule.function}.{self.rule.event}: dropped event {event.event['id']} "
            f"from {event.bus} after {self.retries + 1} attempt(s)",
            file=sys.stderr,
        )
        return self.retries + 1

    def describe(self) -> str:
        return f"{self.rule.bus}: {self.rule.pattern} → {self.rule.function}"
