"""Load through the local runner with every webhook source, then the clock through every timed rule.

Built from the samples under ``events/`` (ids, times and technicians varied per appointment), the six sources'
stories are delivered together: a generic booking and its changes; a generic booking linked to an Autotask
ticket, then Autotask's ticket webhooks; the same with a ConnectWise ticket; a Cal.com booking rescheduled
(a new uid each time) and maybe cancelled; a Calendly invitee rescheduled (the old invitee cancelled, a new
one created) and maybe cancelled; a HaloPSA appointment, its ticket reassigned, maybe deleted. 20% of the
webhooks are exact duplicates (a vendor's retry), everything is shuffled and sent from ``LOAD_ALL_THREADS``
threads, signed as each vendor signs. Then the clock moves hour by hour past every start, the sweeps fire
the reminders, pre-notices, auto-cancels and no-shows, the relay mails and the write-back writes the tickets.

Asserted: lost events 0 (each delivery in an appointment's history, or listed by ``GET /unmatched``),
duplicate appointments 0 (each booking id held by one appointment, a story's ids all by the same one),
duplicate mails 0 (per appointment and mail key: ``/_local/outbox`` by SES's tags, against the table's
mail items), duplicate PSA writes 0 (``GET /_local/psa``: one note per event id), nothing dead-lettered.
Throughput is printed, never asserted. ``LOAD_ALL_WEBHOOKS`` (120 in ``make test``, 2,000 in ``make soak``) and
``LOAD_ALL_STEP_MINUTES`` (180; 60) size it.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import boto3
import pytest

from appointments.sources.autotask import AutotaskSource
from appointments.sources.base import WebhookRequest
from appointments.sources.calcom import CalcomSource
from appointments.sources.calendly import CalendlySource
from appointments.sources.connectwise import ConnectWiseSource
from appointments.sources.generic import GenericSource
from appointments.sources.halopsa import HaloPsaSource
from localdev.signing import runner_webhook
from localdev.template import TEMPLATE
from tests.local.conftest import OPS_TOKEN, START, LocalRunner, dead_letters, running
from tests.signing import sample

if TYPE_CHECKING:
    from appointments.sources.base import Source
    from appointments.sources.connectwise import CallbackKeys

WEBHOOKS = int(os.environ.get("LOAD_ALL_WEBHOOKS", "120"))  # make soak: 2,000
THREADS = int(os.environ.get("LOAD_ALL_THREADS", "8"))
APPOINTMENTS = max(6, WEBHOOKS // 5)
STEP = timedelta(minutes=int(os.environ.get("LOAD_ALL_STEP_MINUTES", "180")))  # the clock's moves; soak: 60
AUTH = {"Authorization": f"Bearer {OPS_TOKEN}"}
SLOW_SECONDS = 1800
RULE_ACTIONS = ("reminder", "pre_notice", "auto_cancel", "no_show", "at_risk", "unassigned_at_start", "notice_skipped")

# Parsers used only to learn each delivery's id (the runner's own sources verify and parse what is sent).
PARSERS: dict[str, Source] = {
    "generic": GenericSource(),
    "calcom": CalcomSource("https://book.example"),
    "calendly": CalendlySource(),
    "autotask": AutotaskSource(),
    "connectwise": ConnectWiseSource(cast("CallbackKeys", None)),
    "halopsa": HaloPsaSource(),
}


def _z(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class Story:
    """One appointment's webhooks (source, body), in the order they happened, and the booking ids it uses."""

    n: int
    refs: list[str] = field(default_factory=list)
    webhooks: list[tuple[str, bytes]] = field(default_factory=list)

    def add(self, source: str, document: Any) -> None:
        self.webhooks.append((source, json.dumps(document).encode()))


class Writer:
    """Each source's webhooks for one appointment, from the samples, with this appointment's ids."""

    def __init__(self, rng: random.Random, n: int) -> None:
        self.rng, self.n = rng, n
        self.start = START + timedelta(hours=26, minutes=30 * rng.randrange(0, 24))  # reminders due from START on
        self.ticket = str(700000 + n)
        self.story = Story(n)
        self._at = START - timedelta(days=1) + timedelta(minutes=rng.randrange(0, 300))

    def at(self) -> datetime:
        """The next vendor time of this story: a few minutes after the last."""
        self._at += timedelta(minutes=self.rng.randrange(1, 40), seconds=self.rng.randrange(0, 60))
        return self._at

    def moved(self) -> datetime:
        self.start += timedelta(minutes=30 * self.rng.randrange(-2, 8))
        return self.start

    def technicians(self, most: int = 2) -> list[dict[str, str]]:
        picked = self.rng.sample(range(1, 9), self.rng.randrange(0, most + 1))
        return [{"id": f"t-{k}", "name": f"Tech {k}", "email": f"t{k}@msp.example"} for k in picked]

    # -- generic

    def generic(self, kind: str, *, ticket: dict[str, str] | None = None) -> None:
        document = json.loads(sample("generic/appointment_scheduled.json"))
        appointment: dict[str, Any] = {"external_id": f"load-{self.n:05d}"}
        if kind in ("appointment.scheduled", "appointment.rescheduled"):
            start = self.start if kind == "appointment.scheduled" else self.moved()
            appointment |= {key: document["appointment"][key] for key in ("timezone", "type", "customer", "links")} | {
                "start": start.isoformat(),
                "end": (start + timedelta(minutes=30)).isoformat(),
            }
            appointment["technicians"] = self.technicians(1)
            if ticket is not None:
                appointment["ticket"] = ticket
        elif kind == "appointment.assigned":
            appointment["technicians"] = self.technicians()
        index = len(self.story.webhooks)
        document.update(
            event_id=f"evt-load-{self.n:05d}-{index}",
            type=kind,
            occurred_at=self.at().isoformat(),
            appointment=appointment,
            reason="load test" if kind == "appointment.cancelled" else None,
        )
        self.story.add("generic", document)

    # -- PSA tickets

    def autotask_assigned(self, sequence: int) -> None:
        document = json.loads(sample("autotask/ticket_assigned.json"))
        resource = self.rng.choice([None, 29682885, 29682886])
        document.update(Id=int(self.ticket), SequenceNumber=sequence, EventTime=_z(self.at()))
        document["Fields"] = {"AssignedResourceID": resource, "TicketNumber": f"T20261123.{self.n:04d}"}
        self.story.add("autotask", document)

    def connectwise_assigned(self) -> None:
        document = json.loads(sample("connectwise/ticket_assigned.json"))
        entity = json.loads(document["Entity"])
        owner = self.rng.choice(["sokafor", "jlee", "pnatarajan"])
        entity.update(id=int(self.ticket), owner={"id": 171, "identifier": owner, "name": owner})
        entity["resources"] = ", ".join(self.rng.sample(["sokafor", "jlee", "pnatarajan"], 2))
        entity["_info"]["lastUpdated"] = self.at().strftime("%Y-%m-%dT%H:%M:%SZ")
        document.update(MessageId=str(uuid.UUID(int=self.rng.getrandbits(128))), ID=int(self.ticket))
        document["Entity"] = json.dumps(entity)
        self.story.add("connectwise", document)

    # -- Cal.com

    def calcom(
        self, trigger: str, uid: str, previous: str | None = None, previous_start: datetime | None = None
    ) -> None:
        name = {"BOOKING_CREATED": "booking_created", "BOOKING_RESCHEDULED": "booking_rescheduled"}
        document = json.loads(sample(f"calcom/{name.get(trigger, 'booking_cancelled')}.json"))
        payload = document["payload"]
        document["createdAt"] = _z(self.at())
        payload.update(uid=uid, iCalUID=f"{uid}@Cal.com", bookingId=100000 + self.rng.randrange(10**6))
        payload.update(startTime=_z(self.start), endTime=_z(self.start + timedelta(minutes=30)))
        if previous is not None and previous_start is not None:
            payload.update(rescheduleUid=previous, rescheduleStartTime=_z(previous_start))
            payload["rescheduleEndTime"] = _z(previous_start + timedelta(minutes=30))
        self.story.add("calcom", document)

    # -- Calendly

    def calendly(self, name: str, invitee: str, other: str | None = None) -> None:
        document = json.loads(sample(f"calendly/{name}.json"))
        payload, at = document["payload"], self.at()
        stamp = at.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        event = f"https://api.calendly.com/scheduled_events/ev-{invitee}"
        payload.update(uri=f"{event}/invitees/{invitee}", event=event, created_at=stamp, updated_at=stamp)
        payload["cancel_url"] = f"https://calendly.com/cancellations/{invitee}"
        payload["reschedule_url"] = f"https://calendly.com/reschedulings/{invitee}"
        other_uri = None if other is None else f"https://api.calendly.com/scheduled_events/ev-{other}/invitees/{other}"
        if payload.get("old_invitee") is not None:
            payload["old_invitee"] = other_uri
        if payload.get("new_invitee") is not None:
            payload["new_invitee"] = other_uri
        if isinstance(payload.get("cancellation"), dict):
            payload["cancellation"]["created_at"] = stamp
        scheduled = payload["scheduled_event"]
        scheduled.update(uri=event, start_time=_z(self.start), end_time=_z(self.start + timedelta(minutes=30)))
        document["created_at"] = stamp
        self.story.add("calendly", document)

    # -- HaloPSA

    def halo(self, name: str, appointment_id: int) -> None:
        document = json.loads(sample(f"halopsa/{name}.json"))
        document.update(
            id=str(uuid.UUID(int=self.rng.getrandbits(128))),
            escmsg_id=str(uuid.UUID(int=self.rng.getrandbits(128))),
            timestamp=self.at().strftime("%Y-%m-%dT%H:%M:%S.0000000Z"),
        )
        if "appointment" in document:
            document["object_id"] = appointment_id
            agents = [{"id": 10 + k, "name": f"Agent {k}", "email": f"a{k}@msp.example"} for k in range(2)]
            document["appointment"].update(
                id=appointment_id,
                ticket_id=int(self.ticket),
                start_date=self.start.strftime("%Y-%m-%dT%H:%M:%S"),
                end_date=(self.start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S"),
            )
            if "agents" in document["appointment"]:
                document["appointment"]["agents"] = agents[: self.rng.randrange(0, 3)]
        else:
            agent = self.rng.randrange(10, 20)
            document["object_id"] = int(self.ticket)
            document["ticket"].update(id=int(self.ticket), agent_id=agent, agent_name=f"Agent {agent}")
        self.story.add("halopsa", document)


def story(rng: random.Random, n: int) -> Story:
    """Appointment ``n``'s webhooks: its source is ``n``'s place in the six."""
    w = Writer(rng, n)
    match n % 6:
        case 0:  # generic only
            w.story.refs = [f"generic:load-{n:05d}"]
            w.generic("appointment.scheduled")
            later = ["appointment.rescheduled", "appointment.assigned", "appointment.assigned", "appointment.cancelled"]
            for kind in rng.sample([*later, "appointment.rescheduled"], 3):
                w.generic(kind)
        case 1:  # a generic booking on an Autotask ticket, then Autotask's ticket webhooks
            w.story.refs = [f"generic:load-{n:05d}"]
            w.generic("appointment.scheduled", ticket={"system": "autotask", "id": w.ticket})
            w.autotask_assigned(5)
            w.autotask_assigned(8)
            w.generic(rng.choice(["appointment.rescheduled", "appointment.assigned"]))
        case 2:  # the same on a ConnectWise ticket
            w.story.refs = [f"generic:load-{n:05d}"]
            w.generic("appointment.scheduled", ticket={"system": "connectwise", "id": w.ticket})
            w.connectwise_assigned()
            w.connectwise_assigned()
            w.generic(rng.choice(["appointment.rescheduled", "appointment.assigned"]))
        case 3:  # Cal.com: booked, rescheduled (a new uid), rescheduled again or cancelled
            uids = [f"cal{n:05d}u{k}" for k in range(3)]
            w.story.refs = [f"calcom:{uid}" for uid in uids[:2]]
            w.calcom("BOOKING_CREATED", uids[0])
            first = w.start
            w.moved()
            w.calcom("BOOKING_RESCHEDULED", uids[1], uids[0], first)
            if rng.random() < 0.3:
                w.calcom("BOOKING_CANCELLED", uids[1])
            else:
                second = w.start
                w.moved()
                w.calcom("BOOKING_RESCHEDULED", uids[2], uids[1], second)
                w.story.refs.append(f"calcom:{uids[2]}")
        case 4:  # Calendly: booked, rescheduled (old invitee cancelled, new one created), maybe cancelled
            old, new = f"inv-{n:05d}-a", f"inv-{n:05d}-b"
            w.story.refs = [f"calendly:{old}", f"calendly:{new}"]
            w.calendly("invitee_created", old)
            w.calendly("invitee_canceled_rescheduled", old, new)
            w.moved()
            w.calendly("invitee_created_rescheduled", new, old)
            w.calendly("invitee_canceled" if rng.random() < 0.3 else "invitee_created_rescheduled", new, old)
        case _:  # HaloPSA: an appointment, its ticket reassigned twice, maybe deleted
            appointment_id = 900000 + n
            w.story.refs = [f"halopsa:{appointment_id}"]
            w.halo("appointment_created", appointment_id)
            w.halo("ticket_reassigned", appointment_id)
            w.halo("ticket_reassigned", appointment_id)
            if rng.random() < 0.3:
                w.halo("appointment_deleted", appointment_id)
    return w.story


def delivery_ids(source: str, body: bytes) -> list[str]:
    return [event.delivery_id for event in PARSERS[source].parse(WebhookRequest(headers={}, body=body))]


# --- sending


@dataclass
class Sent:
    status: int
    seconds: float


def send_all(local: LocalRunner, webhooks: list[tuple[str, bytes]]) -> list[Sent]:
    now = local.now()  # the clock stands still (manual): every signature is fresh
    results: list[Sent] = []
    lock = threading.Lock()
    work = iter(webhooks)

    def sender() -> None:
        while True:
            with lock:
                item = next(work, None)
            if item is None:
                return
            source, body = item
            raw, headers = runner_webhook(source, body, local.base, now)
            began = time.perf_counter()
            reply = local.post(f"/webhooks/{source}", body=raw, headers=headers)
            sent = Sent(reply.status, time.perf_counter() - began)
            with lock:
                results.append(sent)

    threads = [threading.Thread(target=sender) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def post_slow(local: LocalRunner, path: str, document: Any = None) -> int:
    """A POST that may run long (a settle, a clock move firing the sweeps): the status, waiting up to
    ``SLOW_SECONDS`` where ``LocalRunner`` gives up after 30 s (at soak size a settle takes minutes)."""
    body = json.dumps(document).encode() if document is not None else b""
    request = urllib.request.Request(f"{local.base}{path}", data=body, method="POST")  # noqa: S310 - 127.0.0.1
    with urllib.request.urlopen(request, timeout=SLOW_SECONDS) as response:  # noqa: S310
        status: int = response.status
        return status


# --- reading back


def holders(local: LocalRunner, ref: str) -> list[str]:
    query = urllib.parse.urlencode(
        {
            "external_id": ref,
            "from": (START - timedelta(days=30)).isoformat(),
            "to": (START + timedelta(days=60)).isoformat(),
        }
    )
    return [item["id"] for item in local.get(f"/appointments?{query}", headers=AUTH).json()["items"]]


def unmatched(local: LocalRunner) -> set[str]:
    found: set[str] = set()
    cursor: str | None = None
    while True:
        path = "/unmatched?limit=100" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
        page = local.get(path, headers=AUTH).json()
        found |= {item["delivery_id"] for item in page["items"]}
        cursor = page.get("next_cursor")
        if not cursor:
            return found


def table_items(local: LocalRunner) -> list[dict[str, Any]]:
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    name = local.runner.provisioned.physical["AppointmentsTable"]
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": name}
    while True:
        page = dynamodb.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def ses_tag(value: str) -> str:
    """A value as the SES mailer writes it into a tag (``adapters.ses_mailer._tag``)."""
    safe = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.@")
    return "".join(chr(b) if b in safe else f"_{b:02x}" for b in value.encode())


def sent_mails(local: LocalRunner) -> Counter[tuple[str, str]]:
    """(appointment id, mail key as tagged) of each mail in the runner's outbox, counted."""
    counted: Counter[tuple[str, str]] = Counter()
    tap = local.runner._ses_tap
    for mail in local.get("/_local/outbox").json()["items"]:
        request = tap.request(mail["message_id"])
        assert request is not None, mail["subject"]
        counted[(request.tags.get("appointment_id", ""), request.tags.get("mail_key", ""))] += 1
    return counted


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def test_every_source_under_load_then_every_rule_loses_and_doubles_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given every appointment's webhooks from its source, 20% sent twice, all shuffled together
    rng = random.Random(20261201)
    stories = [story(rng, n) for n in range(APPOINTMENTS)]
    distinct = [webhook for s in stories for webhook in s.webhooks]
    assert len(distinct) <= WEBHOOKS
    duplicates = rng.sample(distinct, min(len(distinct), WEBHOOKS - len(distinct)))  # about 20% of what is sent
    deliveries = distinct + duplicates
    rng.shuffle(deliveries)
    ids = {n: [d for source, body in s.webhooks for d in delivery_ids(source, body)] for n, s in enumerate(stories)}
    assert all(ids.values())
    last_start = START + timedelta(hours=26 + 12 + 2 * 4)

    with running(TEMPLATE, background=True) as local:
        # When eight senders deliver them, while the queue is pumped
        began = time.perf_counter()
        sent = send_all(local, deliveries)
        sending = time.perf_counter() - began
        assert post_slow(local, "/_local/settle") == 200
        settled = time.perf_counter() - began
        # And the clock moves an hour at a time past every start and no-show time, the queues settled each time
        moves_began = time.perf_counter()
        moves = 0
        while local.now() < last_start + timedelta(hours=1):
            assert post_slow(local, "/_local/clock", {"advance_seconds": int(STEP.total_seconds())}) == 200
            assert post_slow(local, "/_local/settle") == 200
            moves += 1
        moving = time.perf_counter() - moves_began

        # Then every webhook was taken, and nothing was dead-lettered
        assert Counter(s.status for s in sent) == Counter({202: len(deliveries)})
        assert dead_letters(local) == 0
        assert local.get("/_local/dlq").json()["items"] == []

        # And each booking id is held by one appointment, the same for all of a story's ids
        doubled, held = [], {}
        for n, s in enumerate(stories):
            found = {ref: holders(local, ref) for ref in s.refs}
            appointments = {a for ids_of in found.values() for a in ids_of}
            if any(len(ids_of) != 1 for ids_of in found.values()) or len(appointments) != 1:
                doubled.append((n, found))
            else:
                held[n] = appointments.pop()
        assert doubled == []

        # And every delivery is in its appointment's history (once), or still waiting and listed
        waiting = unmatched(local)
        lost, twice = [], []
        rules: Counter[str] = Counter()
        for n, appointment_id in held.items():
            history = local.get(f"/appointments/{appointment_id}", headers=AUTH).json()["history"]
            seen = Counter(e["detail"].get("delivery_id") for e in history if e["detail"].get("delivery_id"))
            lost += [(n, d) for d in ids[n] if d not in seen and d not in waiting]
            twice += [(n, d) for d, count in seen.items() if count > 1]
            rules.update(e["action"] for e in history if e["action"] in RULE_ACTIONS)
        assert lost == []
        assert twice == []

        # And no mail went out twice: one outbox message per (appointment, mail key), each a sent mail item
        outbox = sent_mails(local)
        assert [key for key, count in outbox.items() if count > 1] == []
        items = table_items(local)
        stored = {
            (item["PK"]["S"].removeprefix("APPT#"), ses_tag(item["SK"]["S"].removeprefix("MAIL#"))): item
            for item in items
            if item["SK"]["S"].startswith("MAIL#")
        }
        assert set(outbox) <= set(stored)
        unsent = [
            key for key, item in stored.items() if item.get("status", {}).get("S") == "sent" and key not in outbox
        ]
        assert unsent == []

        # And the tickets got each domain event's note once
        writes = local.get("/_local/psa").json()["items"]
        notes = Counter(w["event_id"] for w in writes if w["kind"] == "note")
        assert [event_id for event_id, count in notes.items() if count > 1] == []

    # And no function gave up on a bus event (the runner drops it with a message; AWS would dead-letter it)
    dropped = [line for line in capsys.readouterr().err.splitlines() if "dropped event" in line]
    assert dropped == []

    acks = [s.seconds * 1000 for s in sent]
    with capsys.disabled():
        print(
            f"\nload (all sources): {len(deliveries)} webhooks ({len(duplicates)} duplicates, "
            f"{Counter(source for source, _ in deliveries)}) for {APPOINTMENTS} appointments from {THREADS} threads: "
            f"sent in {sending:.1f} s ({len(deliveries) / sending:.0f} webhooks/s), settled in {settled:.1f} s; "
            f"ack p50 {statistics.median(acks):.0f} ms, p99 {percentile(acks, 0.99):.0f} ms, max {max(acks):.0f} ms; "
            f"{moves} clock moves of {STEP} in {moving:.1f} s; rules {dict(rules)}; {sum(outbox.values())} mails, "
            f"{len(writes)} PSA writes ({sum(notes.values())} notes); {len(waiting)} still waiting; "
            "lost 0, duplicate appointments 0, duplicate mails 0, duplicate PSA writes 0"
        )
