"""Webhook ingress: verify, parse, check, queue. Fast and side-effect free until the enqueue.

Order matters: the size limit first (cheap), then the signature on the raw body (nothing about an
unsigned request is read), then parsing, then the checks that need our configuration. Nothing is
stored before the enqueue, so a refused request changes nothing and a failed enqueue loses nothing:
the sender retries on the 503.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from appointments.errors import InvalidSignature, PayloadTooLarge, UnknownSource

if TYPE_CHECKING:
    from collections.abc import Mapping

    from appointments.domain.appointment_types import AppointmentTypeCatalog
    from appointments.ports import Clock, EventQueue, SecretSource
    from appointments.sources.base import Source, WebhookRequest

MAX_BODY_BYTES = 256 * 1024


@dataclass(frozen=True)
class Accepted:
    """What a sender is told: the same for a redelivery as for the first delivery."""

    source: str
    delivery_ids: tuple[str, ...]


class WebhookIngress:
    def __init__(
        self,
        sources: Mapping[str, Source],
        secrets: SecretSource,
        queue: EventQueue,
        clock: Clock,
        catalog: AppointmentTypeCatalog,
    ) -> None:
        self._sources = dict(sources)
        self._secrets = secrets
        self._queue = queue
        self._clock = clock
        self._catalog = catalog

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
        events = source.parse(request)
        for event in events:
            if event.booking is not None and event.booking.type is not None:
                self._catalog.get(event.booking.type)
        if events:
            self._queue.enqueue(events)
        return Accepted(source=source_name, delivery_ids=tuple(event.delivery_id for event in events))
