"""What every source module provides, and the helpers they share."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Protocol, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from appointments.domain.events import CanonicalEvent
from appointments.domain.model import ExternalRef
from appointments.errors import InvalidSignature, MalformedPayload, UnsupportedPayload

if TYPE_CHECKING:
    from collections.abc import Mapping

    from appointments.domain.events import BookingDetails, EventKind
    from appointments.domain.model import CancelledBy


@dataclass(frozen=True)
class WebhookRequest:
    """A webhook as received: header names lower-cased, the body exactly as sent."""

    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class SubscriptionEnded(Exception):
    """A verified notice that the vendor turned this webhook subscription off (Autotask's ``Deactivated``):
    acknowledged, changes nothing, counted apart from deliveries, and alarmed on."""


class Source(Protocol):
    name: str

    def verify(self, request: WebhookRequest, secret: str, now: datetime) -> None:
        """Raise ``InvalidSignature`` unless the request was signed with ``secret`` (and is fresh)."""
        ...

    def parse(self, request: WebhookRequest) -> tuple[CanonicalEvent, ...]:
        """Canonical events of a verified request; empty for an event type deliberately ignored.

        Raise ``MalformedPayload`` (400) for a body that is not the vendor's JSON at all,
        ``UnsupportedPayload`` (422, naming the field) for JSON of the wrong shape, and ``SubscriptionEnded``
        for the vendor's notice that it turned the subscription off.
        """
        ...


def hmac_hex(secret: str, message: bytes, digest: str = "sha256") -> str:
    return hmac.new(secret.encode(), message, getattr(hashlib, digest)).hexdigest()


def constant_time_equal(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())


def verify_timestamped_signature(
    header: str | None, secret: str, body: bytes, now: datetime, *, tolerance_seconds: int
) -> None:
    """The ``t=<unix>,v1=<hex>`` scheme (Calendly, generic): HMAC-SHA256 over ``"<t>.<body>"``.

    Fresh means |now - t| <= tolerance: a timestamp from the future is refused too. Several ``v1``
    values (during a secret rotation) are accepted if any matches.
    """
    if not header or not secret:
        raise InvalidSignature
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    timestamps, signatures = parts.get("t", []), parts.get("v1", [])
    # ASCII digits only, and few: str.isdigit() also passes "²" and "١٢٣", which int() refuses or reads,
    # and int() refuses more than 4,300 digits. Twelve digits is Unix time until the year 33658.
    if len(timestamps) != 1 or not re.fullmatch(r"[0-9]{1,12}", timestamps[0]) or not signatures:
        raise InvalidSignature
    signed_at = int(timestamps[0])
    if abs(now.astimezone(UTC).timestamp() - signed_at) > tolerance_seconds:
        raise InvalidSignature
    expected = hmac_hex(secret, timestamps[0].encode() + b"." + body)
    if not any(constant_time_equal(expected, signature) for signature in signatures):
        raise InvalidSignature


def as_utc(value: datetime) -> datetime:
    """A PSA's time in UTC: Autotask, ConnectWise and HaloPSA keep times in UTC and often send them without an
    offset, so a time without one is UTC, not local."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcTime = Annotated[datetime, AfterValidator(as_utc)]


def load_json_object(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, over-long integers; deep nesting
        raise MalformedPayload("the body is not JSON") from None
    if not isinstance(document, dict):
        raise MalformedPayload("the body is not a JSON object")
    return document


def unsupported(error: ValidationError, prefix: str = "") -> UnsupportedPayload:
    """The first problem pydantic found, as a 422 naming the field (never echoing the value)."""
    first = error.errors(include_input=False, include_url=False)[0]
    location = ".".join(str(part) for part in first["loc"])
    field = f"{prefix}.{location}" if prefix and location else (prefix or location or "body")
    return UnsupportedPayload(field, first["msg"])


class Lenient(BaseModel):
    """A vendor payload's shape: fields we do not read are ignored, so vendors may add fields freely."""

    model_config = ConfigDict(extra="ignore", frozen=True)


_Model = TypeVar("_Model", bound=Lenient)


def validated(model: type[_Model], data: object, *, prefix: str = "") -> _Model:
    """``data`` as ``model``, or a 422 naming the first wrong field (under ``prefix``)."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise unsupported(error, prefix=prefix) from None


def clipped(limit: int) -> AfterValidator:
    """Text a person typed is cut to what we keep (blank = none): a long reason must not lose the event."""

    def clip(text: str | None) -> str | None:
        return (text.strip()[:limit] or None) if text else None

    return AfterValidator(clip)


Reason = Annotated[str | None, clipped(2000)]  # why a booking was cancelled, rejected or moved


def booking_event(
    source: str,
    trigger: str,
    sent_at: datetime,
    kind: EventKind,
    booking_id: str,
    *,
    previous_id: str | None = None,
    booking: BookingDetails | None = None,
    reason: str | None = None,
    cancelled_by: CancelledBy | None = None,
) -> CanonicalEvent:
    """A scheduler's event about one booking (Cal.com, Calendly), which sends no delivery id of its own.

    A delivery is told apart by trigger, booking and send time. A reschedule (a new booking naming the
    one it replaces) is queued with the replaced booking, so it cannot overtake that booking's events.
    """
    return CanonicalEvent(
        source=source,
        delivery_id=f"{trigger}:{booking_id}:{sent_at.isoformat()}",
        kind=kind,
        occurred_at=sent_at,
        entity=f"{source}:{previous_id or booking_id}",
        external_ref=ExternalRef(system=source, id=booking_id),
        previous_ref=ExternalRef(system=source, id=previous_id) if previous_id else None,
        booking=booking,
        reason=reason,
        cancelled_by=cancelled_by,
    )
