"""The ConnectWise Manage / PSA source: callbacks (``system/callbacks``) into ticket events.

**Signature.** ``x-content-signature: <base64 HMAC-SHA256(key = SHA-256(signing_key), raw body)>``, where
``signing_key`` is the ``signing_key`` field of the JSON that ``GET <Metadata.key_url>`` answers (no API
credentials: the URL itself names the key). The URL comes from the unverified body, so it is fetched only when
it names an allow-listed host (``ConnectWiseKeyHosts``: ConnectWise's cloud hosts by default, https on the
default port, no user info); anything else is refused with 401 and no request at all. A key is cached per URL
for an hour (at most ``MAX_CACHED_KEYS`` URLs); a signature that fails with a cached key refetches the key
once, for a rotation, but at most once a minute per URL, so forged bodies cannot make us hammer ConnectWise.
Any ConnectWise tenant can sign a callback with its own key, so after the signature the body's ``CompanyId``
must be one of the company ids held under ``connectwise`` in the webhook secrets (comma-separated). A key
server that does not answer is a 503 (``SigningKeyUnavailable``): the sender retries, nothing is queued.

**Tickets** (``Type`` ``ticket``, ``Action`` ``added`` or ``updated``): ``Entity`` is the ticket as a JSON
string. Its ``status`` moved to a configured COMPLETE status (``ticket.completed``) or NO-SHOW status
(``ticket.no_show``); its ``owner`` and ``resources`` (a comma-separated list of member identifiers) become
the technicians (``ticket.assigned``: the owner first and primary, then the other resources; neither =
unassigned). Statuses are per board in ConnectWise, so a configured status is matched by **name**
(case-insensitive: ``>Closed`` on one board is the same status as ``>Closed`` on another) or, when it is all
digits, by one board's status id. Technicians are named by member ``identifier``, the one id both the owner
and ``resources`` carry. The ticket's time is ``_info.lastUpdated``; a delivery is told apart by
``MessageId`` (the same on a redelivery) or, without one, by ticket, action and that time.

**Schedule entries** (``Type`` ``schedule``) are checked for shape (a 422 names the field) and then
deliberately produce no event. A schedule entry names no customer, so it can never make a booking; it could
only move or cancel an appointment the desk already holds through the entry's ticket (``objectId``), and the
processor routes only ticket events by ticket, none of which carries a time. Keyed on the entry instead
(``connectwise:<id>``), its events would wait for a booking nothing ever creates and fill the unmatched list
that ops are alerted about. And a deleted entry is not a cancellation: TimeZest moves a ConnectWise booking
by replacing its schedule entry. Time and technician changes reach the desk through the booking source
(TimeZest, generic) and the ticket callbacks.

Deliberately ignored (2xx, no event): deleted tickets, other types (companies, contacts, activities ...),
and actions ConnectWise may add later. Ids are bounded to 2^63-1, names and identifiers to 100 characters
and ``resources`` to 2000, so every key and delivery id built from them fits; more than ``MAX_TECHNICIANS``
resources are cut to that many (the owner stays).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Protocol
from urllib.parse import urlsplit

from pydantic import Field

from appointments.domain.events import MAX_TECHNICIANS, CanonicalEvent, EventKind
from appointments.domain.model import Technician, TicketRef
from appointments.errors import (
    ConfigError,
    InvalidSignature,
    SigningKeyUnavailable,
    UnsupportedPayload,
    VendorRefused,
    VendorUnavailable,
)
from appointments.sources.base import Lenient, UtcTime, WebhookRequest, load_json_object, validated

if TYPE_CHECKING:
    from collections.abc import Iterable

SIGNATURE_HEADER = "x-content-signature"
# ConnectWise's cloud API hosts (North America, Europe, Australia, their sandboxes) and its developer staging
# host. An on-premises Manage server is added by its host name.
DEFAULT_KEY_HOSTS = (
    "api-na.myconnectwise.net",
    "api-eu.myconnectwise.net",
    "api-au.myconnectwise.net",
    "na.myconnectwise.net",
    "eu.myconnectwise.net",
    "au.myconnectwise.net",
    "sandbox-na.myconnectwise.net",
    "sandbox-eu.myconnectwise.net",
    "sandbox-au.myconnectwise.net",
    "api-staging.connectwisedev.com",
)
DEFAULT_COMPLETE_STATUSES = (">Closed", "Completed")
KEY_TTL = timedelta(hours=1)
MIN_REFETCH_INTERVAL = timedelta(minutes=1)
MAX_CACHED_KEYS = 64
MAX_KEY_URL_LENGTH = 2000
_HANDLED_ACTIONS = frozenset({"added", "updated"})
_LOOPBACK_NAMES = frozenset({"localhost"})
_DEFAULT_PORTS = {"https": 443, "http": 80}
_HOST_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-.")


class CallbackKeys(Protocol):
    """The signing key behind a callback's ``Metadata.key_url`` (an allow-listed URL: it is never checked here).

    Raises ``VendorUnavailable`` when the key server does not answer usefully (try later) and
    ``VendorRefused`` or ``InvalidSignature`` when it will not give a key for that URL.
    """

    def signing_key(self, url: str) -> str: ...


# -- the allow-list --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyHost:
    """One allow-list entry: ``host``, ``*.suffix`` (https, default port), or an origin ``scheme://host:port``."""

    scheme: str
    host: str  # for a wildcard: the suffix, with its leading dot
    port: int
    wildcard: bool = False

    def admits(self, scheme: str, host: str, port: int) -> bool:
        if scheme != self.scheme or port != self.port:
            return False
        if self.wildcard:
            return host.endswith(self.host) and len(host) > len(self.host)
        return host == self.host


def key_hosts(entries: Iterable[str]) -> tuple[KeyHost, ...]:
    """The allow-list from its comma-separated entries; ``ValueError`` naming a bad entry.

    Plain ``http`` is allowed only for a loopback origin (the local runner's key server): in AWS a key is
    always fetched over https.
    """
    hosts: list[KeyHost] = []
    for raw in entries:
        entry = raw.strip().lower()
        if not entry:
            continue
        if "://" in entry:
            parts = urlsplit(entry)
            try:
                port = parts.port
            except ValueError:
                raise ValueError(f"{raw!r} has a port that is not a number") from None
            host = parts.hostname or ""
            if parts.scheme not in _DEFAULT_PORTS or parts.username or parts.password or parts.path.strip("/"):
                raise ValueError(f"{raw!r} must be an origin: https://host[:port] (http only on 127.0.0.1)")
            if parts.scheme == "http" and not _loopback(host):
                raise ValueError(f"{raw!r}: plain http is allowed only for a loopback host")
            _check_host(raw, host)
            hosts.append(KeyHost(parts.scheme, host, port or _DEFAULT_PORTS[parts.scheme]))
        elif entry.startswith("*."):
            suffix = entry[1:]
            _check_host(raw, suffix[1:])
            if suffix.count(".") < 2:
                raise ValueError(f"{raw!r} is too wide: a wildcard needs at least two labels after it")
            hosts.append(KeyHost("https", suffix, 443, wildcard=True))
        else:
            _check_host(raw, entry)
            hosts.append(KeyHost("https", entry, 443))
    return tuple(hosts)


def _check_host(raw: str, host: str) -> None:
    if not host or not set(host) <= _HOST_CHARACTERS | {":", "[", "]"} or host.startswith(".") or ".." in host:
        raise ValueError(f"{raw!r} is not a host name")


def _loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_key_url(url: str, hosts: Iterable[KeyHost]) -> bool:
    """Whether ``url`` may be fetched: its scheme, host and port on the allow-list, no user info, nothing odd."""
    if len(url) > MAX_KEY_URL_LENGTH or not url.isprintable() or any(c.isspace() or c == "\\" for c in url):
        return False
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host or "@" in parts.netloc or host.endswith("."):
        return False
    effective_port = port if port is not None else _DEFAULT_PORTS[scheme]
    return any(entry.admits(scheme, host, effective_port) for entry in hosts)


# -- the key cache -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CachedKey:
    key: bytes  # SHA-256 of the signing key: the HMAC key itself
    fetched_at: datetime


class _KeyCache:
    """Keys by URL, the oldest dropped first once ``limit`` URLs are held; times are the caller's ``now``."""

    def __init__(self, keys: CallbackKeys, *, ttl: timedelta, refetch_after: timedelta, limit: int) -> None:
        self._keys = keys
        self._ttl, self._refetch_after, self._limit = ttl, refetch_after, limit
        self._held: OrderedDict[str, _CachedKey] = OrderedDict()

    def cached(self, url: str, now: datetime) -> _CachedKey | None:
        held = self._held.get(url)
        if held is None or not (held.fetched_at <= now < held.fetched_at + self._ttl):
            return None
        return held

    def may_refetch(self, held: _CachedKey, now: datetime) -> bool:
        return now - held.fetched_at >= self._refetch_after

    def fetch(self, url: str, now: datetime) -> _CachedKey:
        try:
            signing_key = self._keys.signing_key(url)
        except VendorRefused:
            raise InvalidSignature from None
        except VendorUnavailable:
            raise SigningKeyUnavailable("the ConnectWise callback key could not be fetched; retry later") from None
        if not signing_key:
            raise InvalidSignature
        held = _CachedKey(key=hashlib.sha256(signing_key.encode()).digest(), fetched_at=now)
        self._held.pop(url, None)
        self._held[url] = held
        while len(self._held) > self._limit:
            self._held.popitem(last=False)
        return held


# -- the payload ---------------------------------------------------------------------------------------


ConnectWiseId = Annotated[int, Field(ge=0, le=2**63 - 1)]
Name = Annotated[str, Field(max_length=100)]


class _Envelope(Lenient):
    MessageId: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    Action: Annotated[str, Field(min_length=1, max_length=100)]
    Type: Annotated[str, Field(min_length=1, max_length=100)]
    ID: ConnectWiseId | None = None
    Entity: Any = None  # the record as a JSON string (an object is taken too); read by ``_entity``


class _Member(Lenient):
    id: ConnectWiseId | None = None
    identifier: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    name: Name | None = None


class _Status(Lenient):
    id: ConnectWiseId | None = None
    name: Name | None = None


class _Info(Lenient):
    lastUpdated: UtcTime


class _Ticket(Lenient):
    id: ConnectWiseId
    status: _Status | None = None
    owner: _Member | None = None
    resources: Annotated[str, Field(max_length=2000)] | None = None
    info: _Info = Field(alias="_info")


class _ScheduleType(Lenient):
    identifier: Name | None = None


class _ScheduleEntry(Lenient):
    id: ConnectWiseId
    objectId: ConnectWiseId | None = None
    member: _Member | None = None
    dateStart: UtcTime | None = None
    dateEnd: UtcTime | None = None
    type: _ScheduleType | None = None
    doneFlag: bool | None = None


def _entity(envelope: _Envelope) -> dict[str, Any]:
    entity = envelope.Entity
    if isinstance(entity, str):
        try:
            entity = json.loads(entity)
        except (ValueError, RecursionError):
            raise UnsupportedPayload("Entity", "is not JSON") from None
    if not isinstance(entity, dict):
        raise UnsupportedPayload("Entity", "must be a JSON object (or a string holding one)")
    return entity


def _signed_document(body: bytes) -> dict[str, Any]:
    """The body as JSON before its signature is checked: anything unreadable is simply not signed."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidSignature from None
    if not isinstance(document, dict):
        raise InvalidSignature
    return document


def _key_url(document: dict[str, Any]) -> str:
    metadata = document.get("Metadata", document.get("metadata"))
    url = metadata.get("key_url") if isinstance(metadata, dict) else None
    if not isinstance(url, str):
        raise InvalidSignature
    return url


def _given_signature(header: str | None) -> bytes:
    if not header:
        raise InvalidSignature
    try:
        given = base64.b64decode(header.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSignature from None
    if len(given) != hashlib.sha256().digest_size:
        raise InvalidSignature
    return given


def _signs(key: bytes, body: bytes, given: bytes) -> bool:
    return hmac.compare_digest(hmac.new(key, body, hashlib.sha256).digest(), given)


class ConnectWiseSource:
    name = "connectwise"

    def __init__(
        self,
        keys: CallbackKeys,
        *,
        key_hosts_allowed: Iterable[str] = DEFAULT_KEY_HOSTS,
        complete_statuses: Iterable[str] = DEFAULT_COMPLETE_STATUSES,
        no_show_statuses: Iterable[str] = (),
        key_ttl: timedelta = KEY_TTL,
        min_refetch_interval: timedelta = MIN_REFETCH_INTERVAL,
    ) -> None:
        try:
            self._hosts = key_hosts(key_hosts_allowed)
        except ValueError as error:
            raise ConfigError(f"the ConnectWise key hosts: {error}") from None
        complete = {_status_key(status) for status in complete_statuses if status.strip()}
        no_show = {_status_key(status) for status in no_show_statuses if status.strip()}
        if not complete or complete & no_show:
            raise ConfigError("the ConnectWise COMPLETE statuses must be set and differ from the NO-SHOW statuses")
        self._status_kinds = dict.fromkeys(complete, EventKind.TICKET_COMPLETED)
        # NO-SHOW is a status each company adds itself: without one named, that mapping is off.
        self._status_kinds.update(dict.fromkeys(no_show, EventKind.TICKET_NO_SHOW))
        self._cache = _KeyCache(keys, ttl=key_ttl, refetch_after=min_refetch_interval, limit=MAX_CACHED_KEYS)

    # -- verify

    def verify(self, request: WebhookRequest, secret: str, now: datetime) -> None:
        companies = {company.strip().casefold() for company in secret.split(",") if company.strip()}
        given = _given_signature(request.header(SIGNATURE_HEADER))
        if not companies:
            raise InvalidSignature
        document = _signed_document(request.body)
        url = _key_url(document)
        if not allowed_key_url(url, self._hosts):
            raise InvalidSignature
        held = self._cache.cached(url, now)
        if held is None:
            held = self._cache.fetch(url, now)
        elif not _signs(held.key, request.body, given) and self._cache.may_refetch(held, now):
            held = self._cache.fetch(url, now)  # the key may have been rotated since we cached it
        if not _signs(held.key, request.body, given):
            raise InvalidSignature
        company = document.get("CompanyId")
        if not isinstance(company, str) or company.strip().casefold() not in companies:
            raise InvalidSignature

    # -- parse

    def parse(self, request: WebhookRequest) -> tuple[CanonicalEvent, ...]:
        envelope = validated(_Envelope, load_json_object(request.body))
        action, kind = envelope.Action.casefold(), envelope.Type.casefold()
        if action not in _HANDLED_ACTIONS | {"deleted"}:
            return ()
        if kind == "ticket":
            if action not in _HANDLED_ACTIONS:
                return ()
            return self._ticket_events(envelope, validated(_Ticket, _entity(envelope), prefix="Entity"))
        if kind == "schedule":
            if action in _HANDLED_ACTIONS:
                validated(_ScheduleEntry, _entity(envelope), prefix="Entity")
            return ()
        return ()

    def _ticket_events(self, envelope: _Envelope, ticket: _Ticket) -> tuple[CanonicalEvent, ...]:
        kinds: list[EventKind] = []
        if {"owner", "resources"} & ticket.model_fields_set:
            kinds.append(EventKind.TICKET_ASSIGNED)
        if (status_kind := self._status_kind(ticket.status)) is not None:
            kinds.append(status_kind)
        at = ticket.info.lastUpdated
        delivery_id = envelope.MessageId or f"ticket:{ticket.id}:{envelope.Action.casefold()}:{at.isoformat()}"
        return tuple(
            CanonicalEvent(
                source=self.name,
                # Each event of a delivery needs its own id, or the second would be dropped as a duplicate.
                delivery_id=delivery_id if len(kinds) == 1 else f"{delivery_id}#{kind}",
                kind=kind,
                occurred_at=at,
                entity=f"{self.name}:ticket:{ticket.id}",
                ticket=TicketRef(system=self.name, id=str(ticket.id)),
                technicians=_technicians(ticket) if kind is EventKind.TICKET_ASSIGNED else None,
            )
            for kind in kinds
        )

    def _status_kind(self, status: _Status | None) -> EventKind | None:
        if status is None:
            return None
        by_name = self._status_kinds.get(_status_key(status.name)) if status.name else None
        by_id = self._status_kinds.get(str(status.id)) if status.id is not None else None
        return by_name or by_id


def _status_key(status: str) -> str:
    return status.strip().casefold()


def _technicians(ticket: _Ticket) -> tuple[Technician, ...]:
    technicians: list[Technician] = []
    owner = ticket.owner
    owner_id = (owner.identifier or (str(owner.id) if owner.id is not None else None)) if owner else None
    if owner is not None and owner_id:
        technicians.append(Technician(id=owner_id, name=owner.name or owner_id, primary=True))
    seen = {owner_id.casefold()} if owner_id else set()
    for identifier in (part.strip() for part in (ticket.resources or "").split(",")):
        if identifier and identifier.casefold() not in seen and len(technicians) < MAX_TECHNICIANS:
            seen.add(identifier.casefold())
            # ``resources`` names members by identifier only; the name is the identifier until someone looks it up.
            technicians.append(Technician(id=identifier[:100], name=identifier[:100]))
    return tuple(technicians)
