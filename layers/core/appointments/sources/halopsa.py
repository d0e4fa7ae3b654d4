"""The HaloPSA source: Standard Webhooks (Configuration > Integrations > Webhooks) into ticket and booking events.

Halo signs nothing: the webhook's only auth is **Basic** (``Authorization: Basic base64(user:password)``), so the
configured secret is ``user:password`` and the decoded credentials are compared with it in constant time. There
is no timestamp in the auth, so no freshness check.

The payload relied on (Halo's guide "Webhook Integration", kbid 838 on usehalo.com / haloitsm.com / halocrm.io:
every payload type carries an id, notification id, escmsg id, event name, webhook id, object id and timestamp,
plus "the ticket and action objects where applicable"; a live "ticket status changed" delivery quoted in
homotechsual/dotMARC ``test/DotMarc.Tests/Notifications/HaloWebhookEndpointTests.cs``)::

    {"id": "<guid>", "webhook_id": "<guid>", "notification_id": 41, "escmsg_id": "<guid>",
     "event": "ticket status changed", "message": "...", "object_id": 4242, "agent_id": 3,
     "timestamp": "2026-09-25T06:41:08.7895915Z",
     "ticket": {"id": 4242, "status_id": 9, "agent_id": 3, ...}}

With batching on (v2.164+), one delivery is a JSON array of such objects; each is read on its own.

Handled:

- a ``ticket`` object: ``status_id`` equal to the configured COMPLETE status (``ticket.completed``; Halo's
  built-in "Closed" is 9) or NO-SHOW status (``ticket.no_show``; none by default); and, for an event whose name
  speaks of assignment ("Ticket Reassigned", "Ticket Assigned ..."), the ticket's agents (``ticket.assigned``:
  ``agent_id`` is the primary, an ``agents`` list adds others; ``agent_id`` null, 0 or Halo's "Unassigned"
  agent = unassigned). Other ticket events do not re-assert the agent: the ticket's agent need not be the
  appointment's.
- an ``appointment`` object linked to a ticket (``ticket_id``): ``start_date``/``end_date`` (UTC, as Halo's API
  keeps them), ``agent_id`` (primary) and ``agents``, the end user and client as the customer, and the
  appointment type id as the vendor type: ``appointment.scheduled`` (created or changed) or, for an event naming a
  deletion or cancellation, ``appointment.cancelled`` (by ops: an agent removed it). External ref
  ``halopsa:<appointment id>``, ``ticket`` = the Halo ticket. Halo sends no time zone: the configured one is used.

Deliberately ignored (2xx, no event): ticket events with another status and no assignment, appointments linked
to no ticket (an agent's own calendar), "Event information only" payloads (no object to read: choose "Small
object" or "Full object"), and every other object or event (clients, assets, actions alone, ...).

A delivery is told apart by ``escmsg_id`` (the queued event message, the same when Halo re-sends it), else the
payload's ``id``, else object id and timestamp.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, ValidationError

from appointments.domain.events import MAX_TECHNICIANS, BookingDetails, CanonicalEvent, EventKind
from appointments.domain.model import CancelledBy, Customer, ExternalRef, Technician, TicketRef
from appointments.errors import ConfigError, InvalidSignature, MalformedPayload, UnsupportedPayload
from appointments.sources.base import Lenient, UtcTime, WebhookRequest, validated

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from datetime import datetime

AUTH_HEADER = "Authorization"
CLOSED_STATUS_ID = "9"  # Halo's built-in "Closed" status
MAX_BATCH = 100  # events in one batched delivery
_UNASSIGNED_AGENT = "unassigned"  # the name of Halo's placeholder agent
_ASSIGNMENT_WORDS = ("assign",)  # "Ticket Reassigned", "Ticket Assigned to Agent"
_REMOVAL_WORDS = ("delet", "cancel")  # "Appointment Deleted", "Appointment Cancelled"
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")  # as ``appointments.domain.model.Email``
_EMAIL_MAX_CHARS = 254


HaloId = Annotated[int, Field(ge=0, le=2**63 - 1)]
Text = Annotated[str, Field(max_length=500)]


class _Agent(Lenient):
    id: HaloId
    name: Text | None = None
    email: Text | None = None


class _Ticket(Lenient):
    id: HaloId
    status_id: HaloId | None = None
    agent_id: HaloId | None = None
    agent_name: Text | None = None
    agents: Annotated[tuple[_Agent, ...], Field(max_length=MAX_TECHNICIANS)] | None = None


class _Appointment(Lenient):
    id: HaloId
    ticket_id: HaloId | None = None
    start_date: UtcTime
    end_date: UtcTime
    agent_id: HaloId | None = None
    agent_name: Text | None = None
    agents: Annotated[tuple[_Agent, ...], Field(max_length=MAX_TECHNICIANS)] | None = None
    appointment_type_id: HaloId | None = None
    user_name: Text | None = None
    user_email: Text | None = None
    client_name: Annotated[str, Field(max_length=200)] | None = None


class _Delivery(Lenient):
    id: Annotated[str, Field(max_length=100)] | None = None
    escmsg_id: Annotated[str, Field(max_length=100)] | None = None
    event: Annotated[str, Field(max_length=200)] = ""
    object_id: HaloId | None = None
    timestamp: UtcTime
    ticket: dict[str, Any] | None = None
    appointment: dict[str, Any] | None = None


class HaloPsaSource:
    name = "halopsa"

    def __init__(
        self,
        *,
        complete_status_id: str = CLOSED_STATUS_ID,
        no_show_status_id: str | None = None,
        timezone: str = "UTC",
    ) -> None:
        if not complete_status_id or complete_status_id == no_show_status_id:
            raise ConfigError("the HaloPSA COMPLETE status id must be set and differ from the NO-SHOW status id")
        self._status_kinds = {complete_status_id: EventKind.TICKET_COMPLETED}
        if no_show_status_id:
            self._status_kinds[no_show_status_id] = EventKind.TICKET_NO_SHOW
        self._timezone = timezone

    def verify(self, request: WebhookRequest, secret: str, now: datetime) -> None:
        scheme, _, token = (request.header(AUTH_HEADER) or "").strip().partition(" ")
        if not secret or scheme.casefold() != "basic" or not token.strip():
            raise InvalidSignature
        try:
            credentials = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidSignature from None
        if not hmac.compare_digest(credentials, secret.encode()):
            raise InvalidSignature

    def parse(self, request: WebhookRequest) -> tuple[CanonicalEvent, ...]:
        documents, batched = _documents(request.body)
        events: list[CanonicalEvent] = []
        for index, document in enumerate(documents):
            prefix = str(index) if batched else ""  # a refused field is named by its place in the batch
            events += self._translate(validated(_Delivery, document, prefix=prefix), prefix)
        return tuple(events)

    def _translate(self, delivery: _Delivery, prefix: str) -> list[CanonicalEvent]:
        def at(field: str) -> str:
            return f"{prefix}.{field}" if prefix else field

        if delivery.appointment is not None:
            appointment = validated(_Appointment, delivery.appointment, prefix=at("appointment"))
            event = self._appointment_event(delivery, appointment, at)
            return [] if event is None else [event]
        if delivery.ticket is not None:
            return self._ticket_events(delivery, validated(_Ticket, delivery.ticket, prefix=at("ticket")))
        return []

    def _ticket_events(self, delivery: _Delivery, ticket: _Ticket) -> list[CanonicalEvent]:
        kinds = []
        if _names_any(delivery.event, _ASSIGNMENT_WORDS):
            kinds.append(EventKind.TICKET_ASSIGNED)
        if ticket.status_id is not None and (status_kind := self._status_kinds.get(str(ticket.status_id))):
            kinds.append(status_kind)
        delivery_id = _delivery_id(delivery, f"ticket:{ticket.id}")
        return [
            CanonicalEvent(
                source=self.name,
                # Each event of a delivery needs its own id, or the second would be dropped as a duplicate.
                delivery_id=delivery_id if len(kinds) == 1 else f"{delivery_id}#{kind}",
                kind=kind,
                occurred_at=delivery.timestamp,
                entity=f"{self.name}:ticket:{ticket.id}",
                ticket=TicketRef(system=self.name, id=str(ticket.id)),
                technicians=_agents(ticket.agent_id, ticket.agent_name, ticket.agents)
                if kind is EventKind.TICKET_ASSIGNED
                else None,
            )
            for kind in kinds
        ]

    def _appointment_event(
        self, delivery: _Delivery, appointment: _Appointment, at: Callable[[str], str]
    ) -> CanonicalEvent | None:
        if not appointment.ticket_id:
            return None  # an agent's own calendar entry, not a customer's appointment
        ticket = TicketRef(system=self.name, id=str(appointment.ticket_id))
        common: dict[str, Any] = {
            "source": self.name,
            "delivery_id": _delivery_id(delivery, f"appointment:{appointment.id}"),
            "occurred_at": delivery.timestamp,
            "entity": f"{self.name}:{appointment.id}",
            "external_ref": ExternalRef(system=self.name, id=str(appointment.id)),
            "ticket": ticket,
        }
        if _names_any(delivery.event, _REMOVAL_WORDS):
            return CanonicalEvent(kind=EventKind.CANCELLED, cancelled_by=CancelledBy.OPS, **common)
        technicians = (
            _agents(appointment.agent_id, appointment.agent_name, appointment.agents)
            if "agent_id" in appointment.model_fields_set or appointment.agents is not None
            else None
        )
        customer_name = appointment.user_name or appointment.client_name or f"HaloPSA ticket {appointment.ticket_id}"
        try:
            booking = BookingDetails(
                start=appointment.start_date,
                end=appointment.end_date,
                timezone=self._timezone,
                vendor_type=str(appointment.appointment_type_id) if appointment.appointment_type_id else None,
                customer=Customer(
                    name=customer_name,
                    email=_email(appointment.user_email),
                    company=appointment.client_name or None,
                ),
                technicians=technicians,
                ticket=ticket,
            )
        except ValidationError as error:
            first = error.errors(include_input=False, include_url=False)[0]
            location = str(first["loc"][0]) if first["loc"] else ""
            field = {"start": "start_date", "end": "end_date", "customer": "user_email"}.get(location, "")
            raise UnsupportedPayload(at(f"appointment.{field}" if field else "appointment"), first["msg"]) from None
        return CanonicalEvent(kind=EventKind.SCHEDULED, booking=booking, **common)


def _documents(body: bytes) -> tuple[list[Any], bool]:
    """The delivery's events, and whether Halo batched them (a JSON array, v2.164+)."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, over-long integers; deep nesting
        raise MalformedPayload("the body is not JSON") from None
    if isinstance(document, dict):
        return [document], False
    if isinstance(document, list) and document and all(isinstance(item, dict) for item in document):
        if len(document) > MAX_BATCH:
            raise UnsupportedPayload("body", f"must batch at most {MAX_BATCH} events")
        return document, True
    raise MalformedPayload("the body is not a JSON object or a list of them")


def _email(text: str | None) -> str | None:
    # An address Halo holds but we could not mail is left out rather than losing the event.
    address = (text or "").strip()
    return address if len(address) <= _EMAIL_MAX_CHARS and _EMAIL.fullmatch(address) else None


def _names_any(event: str, words: Iterable[str]) -> bool:
    name = event.casefold()
    return any(word in name for word in words)


def _delivery_id(delivery: _Delivery, subject: str) -> str:
    if delivery.escmsg_id:
        return f"escmsg:{delivery.escmsg_id}:{subject}"
    if delivery.id:
        return f"id:{delivery.id}:{subject}"
    return f"{subject}:{delivery.timestamp.isoformat()}"


def _agents(
    primary_id: int | None, primary_name: str | None, others: Iterable[_Agent] | None
) -> tuple[Technician, ...]:
    """The primary agent first and marked, then the others named; Halo's "Unassigned" placeholder is nobody."""
    agents: dict[str, Technician] = {}
    if primary_id and (primary_name or "").strip().casefold() != _UNASSIGNED_AGENT:
        agents[str(primary_id)] = _technician(primary_id, primary_name, None, primary=True)
    for agent in others or ():
        if agent.id and (agent.name or "").strip().casefold() != _UNASSIGNED_AGENT:
            agents.setdefault(str(agent.id), _technician(agent.id, agent.name, agent.email, primary=False))
    return tuple(agents.values())[:MAX_TECHNICIANS]


def _technician(agent_id: int, name: str | None, email: str | None, *, primary: bool) -> Technician:
    # A payload may name an agent by id only; the name is a placeholder until someone looks it up.
    return Technician(
        id=str(agent_id), name=(name or "").strip() or f"HaloPSA agent {agent_id}", email=_email(email), primary=primary
    )
