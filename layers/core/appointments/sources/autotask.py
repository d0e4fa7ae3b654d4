"""The Autotask (Datto/Kaseya PSA) source: ticket webhooks into ticket events.

Signed with ``X-Hook-Signature: sha1=<base64 HMAC-SHA1(secret, body)>``; there is no timestamp, so no
freshness check. A delivery is told apart by webhook GUID, ticket id, sequence number and event time.
Handled, for a ticket created or updated: ``Status`` moved to the COMPLETE status (``ticket.completed``) or
to the configured NO-SHOW status (``ticket.no_show``), and ``AssignedResourceID`` sent (``ticket.assigned``;
null = unassigned). Deliberately ignored (no event): other statuses, deletions, entities other than
tickets, and any action Autotask adds later. The ``Deactivated`` notice Autotask posts to the callout's
DeactivationUrl when it turns the callout off (after 25 failures in a row, or its owner deactivated) raises
``SubscriptionEnded``: ops are alarmed at once rather than after the silent-source hours (unsigned, it never
gets past ``verify``). Autotask ids are tickets, linked through ``ticket``, never external refs.

Nothing is clipped: ids and the sequence number are integers of at most 2^63-1, the webhook GUID at most 100
characters and the ticket number at most 100, so every delivery id, entity and store key built from them
fits, and a value out of range is refused with a 422 naming the field (``Id``, ``Guid``, ``Fields.TicketNumber``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BeforeValidator, Field

from appointments.domain.events import CanonicalEvent, EventKind
from appointments.domain.model import Technician, TicketRef
from appointments.errors import ConfigError, InvalidSignature, UnsupportedPayload
from appointments.sources.base import (
    Lenient,
    SubscriptionEnded,
    UtcTime,
    WebhookRequest,
    constant_time_equal,
    load_json_object,
    validated,
)

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

SIGNATURE_HEADER = "X-Hook-Signature"
SIGNATURE_PREFIX = "sha1="
COMPLETE_STATUS_ID = "5"  # Autotask's system status "Complete", the same in every instance
_HANDLED_ACTIONS = frozenset({"create", "update"})
_DEACTIVATED = "deactivated"
_TICKET_ENTITY = "ticket"
_ENVELOPE_KEYS = ("Action", "Guid", "EntityType", "Id", "Fields", "EventTime", "SequenceNumber")
_FIELD_KEYS = ("Status", "AssignedResourceID", "TicketNumber")

# A JSON string literal, or an unterminated one up to the end: the optional closing quote means every scan
# succeeds where it starts, so a hostile body of quotes and backslashes still takes linear time.
_STRING_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"?', re.DOTALL)
# Inside a literal: an escaped quote, any other escape pair (kept as sent), or a character Autotask escapes.
_ESCAPABLE = re.compile(r"""\\"|\\.|[&<>'`+]|[^\x00-\x7f]""", re.DOTALL)


def autotask_escaped(body: str) -> str:
    """The body as Autotask hashes it when it signs: special and non-ASCII characters in strings as ``\\uXXXX``.

    Autotask appears to sign a differently escaped serialisation of what it sends, so a body holding
    ``& < > ' " ` +`` or non-ASCII text can fail the raw-byte check. This is the transformation of the community
    node msoukhomlinov/n8n-nodes-autotask (``nodes/Autotask/helpers/webhook/signature.ts``), applied to the raw
    text so that number formats, key order and whitespace stay exactly as sent.
    """
    return _STRING_LITERAL.sub(lambda literal: _ESCAPABLE.sub(_escaped_character, literal.group()), body)


def _escaped_character(match: re.Match[str]) -> str:
    text = match.group()
    if text == '\\"':
        return "\\u0022"
    if text.startswith("\\"):
        return text
    # One escape per UTF-16 code unit (a surrogate pair beyond the BMP), upper-case hex, as the community node does.
    units = text.encode("utf-16-be")
    return "".join(f"\\u{int.from_bytes(units[i : i + 2], 'big'):04X}" for i in range(0, len(units), 2))


def _base64_hmac_sha1(secret: str, message: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha1).digest()).decode()


def _as_text(value: object) -> object:
    return str(value) if isinstance(value, int) else value


AutotaskId = Annotated[int, Field(ge=0, le=2**63 - 1)]  # bounded so entity and delivery ids keep their length
# A picklist value: an id, sent as a number, that the configuration names as text.
PicklistId = Annotated[str, BeforeValidator(_as_text), Field(max_length=100)]


class _Notice(Lenient):
    Action: Annotated[str, Field(min_length=1, max_length=100)]
    EntityType: Annotated[str, Field(max_length=100)] | None = None


class _TicketFields(Lenient):
    """The subscribed and display-always fields: only those, so a missing key is unknown, not empty."""

    Status: PicklistId | None = None
    AssignedResourceID: AutotaskId | None = None  # sent as null when the ticket is unassigned
    TicketNumber: Annotated[str, Field(max_length=100)] | None = None


class _TicketChange(Lenient):
    Guid: Annotated[str, Field(min_length=1, max_length=100)]  # the webhook's, the same for every delivery
    Id: AutotaskId
    EventTime: UtcTime
    SequenceNumber: AutotaskId
    Fields: _TicketFields = _TicketFields()


class AutotaskSource:
    name = "autotask"

    def __init__(self, *, complete_status_id: str = COMPLETE_STATUS_ID, no_show_status_id: str | None = None) -> None:
        if not complete_status_id or complete_status_id == no_show_status_id:
            raise ConfigError("the Autotask COMPLETE status id must be set and differ from the NO-SHOW status id")
        self._status_kinds = {complete_status_id: EventKind.TICKET_COMPLETED}
        # The NO-SHOW status is a custom one, different in every instance: without its id that mapping is off.
        if no_show_status_id:
            self._status_kinds[no_show_status_id] = EventKind.TICKET_NO_SHOW

    def verify(self, request: WebhookRequest, secret: str, now: datetime) -> None:
        header = request.header(SIGNATURE_HEADER)
        if not secret or not header or not header.startswith(SIGNATURE_PREFIX):
            raise InvalidSignature
        signature = header.removeprefix(SIGNATURE_PREFIX)
        if constant_time_equal(_base64_hmac_sha1(secret, request.body), signature):
            return
        try:
            escaped = autotask_escaped(request.body.decode()).encode()
        except UnicodeDecodeError:
            raise InvalidSignature from None
        if not constant_time_equal(_base64_hmac_sha1(secret, escaped), signature):
            raise InvalidSignature

    def parse(self, request: WebhookRequest) -> tuple[CanonicalEvent, ...]:
        document = _with_canonical_keys(load_json_object(request.body), _ENVELOPE_KEYS)
        notice = validated(_Notice, document)
        if notice.Action.casefold() == _DEACTIVATED:
            raise SubscriptionEnded
        if notice.Action.casefold() not in _HANDLED_ACTIONS:
            return ()
        if notice.EntityType is None:  # optional only in the notices ignored above, whose shape is not documented
            raise UnsupportedPayload("EntityType", "is required")
        if notice.EntityType.casefold() != _TICKET_ENTITY:
            return ()
        if isinstance(fields := document.get("Fields"), dict):
            document["Fields"] = _with_canonical_keys(fields, _FIELD_KEYS, prefix="Fields.")
        return self._events(validated(_TicketChange, document))

    def _events(self, change: _TicketChange) -> tuple[CanonicalEvent, ...]:
        fields = change.Fields
        kinds = []
        if "AssignedResourceID" in fields.model_fields_set:
            kinds.append(EventKind.TICKET_ASSIGNED)
        if fields.Status is not None and (status_kind := self._status_kinds.get(fields.Status)):
            kinds.append(status_kind)
        delivery_id = f"{change.Guid}:{change.Id}:{change.SequenceNumber}:{change.EventTime.isoformat()}"
        ticket = TicketRef(system=self.name, id=str(change.Id), number=fields.TicketNumber)
        return tuple(
            CanonicalEvent(
                source=self.name,
                # Each event of a delivery needs its own id, or the second would be dropped as a duplicate.
                delivery_id=delivery_id if len(kinds) == 1 else f"{delivery_id}#{kind}",
                kind=kind,
                occurred_at=change.EventTime,
                sequence=change.SequenceNumber,
                entity=f"{self.name}:ticket:{change.Id}",
                ticket=ticket,
                technicians=_assigned(fields.AssignedResourceID) if kind is EventKind.TICKET_ASSIGNED else None,
            )
            for kind in kinds
        )


def _assigned(resource_id: int | None) -> tuple[Technician, ...]:
    # The webhook names the resource by id only; the name is a placeholder until someone looks it up.
    return () if resource_id is None else (Technician(id=str(resource_id), name=f"Autotask resource {resource_id}"),)


def _with_canonical_keys(document: dict[str, Any], names: Iterable[str], *, prefix: str = "") -> dict[str, Any]:
    """The keys we read, spelt our way: integrations disagree on Autotask's key case (``Id``/``id``, ``PersonID``)."""
    name_of = {name.casefold(): name for name in names}
    canonical: dict[str, Any] = {}
    for key, value in document.items():
        name = name_of.get(key.casefold())
        if name is None:
            continue
        if name in canonical:
            raise UnsupportedPayload(f"{prefix}{name}", "is given more than once, in different letter cases")
        canonical[name] = value
    return canonical
