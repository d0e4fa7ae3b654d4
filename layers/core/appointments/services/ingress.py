"""Webhook ingress: verify, parse, check, queue. Fast and side-effect free until the enqueue.

Order matters: the size limit first (cheap), then the signature on the raw body (nothing about an
unsigned request is read), then parsing, then the checks that need our configuration. Nothing is
stored before the enqueue, so a refused request changes nothing and a failed enqueue loses nothing:
the sender retries on the 503.

A 202 means the event will be applied: what the processor or the store would refuse later (an end not
after the start, more technicians, answers or metadata than an appointment holds, an id too long for an
event or a store key) is refused here with a 422 naming the field, and nothing is queued. Each source
refuses or clips that in its own terms (its module says which); the checks here are the net under them:
a canonical event a source could not build, or one naming a ref or ticket the store could not key on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import ValidationError

from appointments.domain.events import MAX_KEY_ID_BYTES, MAX_TECHNICIANS, fits_a_key
from appointments.errors import InvalidSignature, PayloadTooLarge, UnknownSource, UnsupportedPayload
from appointments.sources.base import SubscriptionEnded, unsupported

if TYPE_CHECKING:
    from collections.abc import Mapping

    from appointments.domain.appointment_types import AppointmentTypeCatalog
    from appointments.domain.events import CanonicalEvent
    from appointments.domain.model import ExternalRef, TicketRef
    from appointments.ports import Clock, EventQueue, SecretSource
    from appointments.sources.base import Source, WebhookRequest

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024


@dataclass(frozen=True)
class Accepted:
    """What a sender is told: the same for a redelivery as for the first delivery."""

    source: str
    delivery_ids: tuple[str, ...]
    subscription_ended: bool = False  # the vendor's own notice that it turned the subscription off


class WebhookIngress:
    def __init__(
        self,
        sources: Mapping[str, Source],
        secrets: SecretSource,
        queue: EventQueue,
        clock: Clock,
        catalog: AppointmentTypeCatalog,
    ) -> None:
        self._sources = sources  # may build each source on first use (wiring): never copied
        self._secrets = secrets
        self._queue = queue
        self._clock = clock
        self._catalog = catalog

    @property
    def sources(self) -> Mapping[str, Source]:
        """The sources taken, by name, as configured: what reads a vendor's payload (tests read samples so)."""
        return self._sources

    def accept(self, source_name: str, request: WebhookRequest) -> Accepted:
        source = self._sources.get(source_name)
        if source is None:
            raise UnknownSource(source_name, tuple(self._sources))
        if len(request.body) > MAX_BODY_BYTES:
            raise PayloadTooLarge(MAX_BODY_BYTES)
        secret = self._secrets.webhook_secret(source_name)
        if not secret:
            raise InvalidSignature
        source.verify(request, secret, self._clock.now())
        try:
            events = source.parse(request)
        except ValidationError as error:  # a canonical event the payload cannot make: never a 500
            raise unsupported(error, prefix="event") from None
        except SubscriptionEnded:
            logger.error("the vendor turned its webhook subscription off: re-enable it", extra={"vendor": source_name})
            return Accepted(source=source_name, delivery_ids=(), subscription_ended=True)
        for event in events:
            _refuse_what_the_store_cannot_hold(event)
            if event.booking is not None and event.booking.type is not None:
                self._catalog.get(event.booking.type)
        if events:
            self._queue.enqueue(events)
        return Accepted(source=source_name, delivery_ids=tuple(event.delivery_id for event in events))


def _refuse_what_the_store_cannot_hold(event: CanonicalEvent) -> None:
    keyed: dict[str, ExternalRef | TicketRef | None] = {
        "event.external_ref": event.external_ref,
        "event.previous_ref": event.previous_ref,
        "event.ticket": event.ticket,
        "event.booking.ticket": event.booking.ticket if event.booking is not None else None,
    }
    for field, ref in keyed.items():
        if ref is not None and not fits_a_key(ref.system, ref.id):
            raise UnsupportedPayload(field, f"system and id must together be at most {MAX_KEY_ID_BYTES} bytes in UTF-8")
    if event.technicians is not None and len(event.technicians) > MAX_TECHNICIANS:
        raise UnsupportedPayload("event.technicians", f"must be at most {MAX_TECHNICIANS}")
