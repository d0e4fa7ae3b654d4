"""Composition root: the only place that reads settings and builds clients and services.

Everything is built on first call and cached for the life of the Lambda container; nothing here runs
at import. Tests and the local runner call ``reset()`` after changing the environment.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING

from appointments.adapters.aws import dynamodb_client
from appointments.adapters.clock import SystemClock
from appointments.adapters.dynamo_store import DynamoAppointmentStore
from appointments.config import Settings

if TYPE_CHECKING:
    from appointments.domain.appointment_types import AppointmentTypeCatalog
    from appointments.ports import AppointmentStore, Clock


@functools.cache
def settings() -> Settings:
    return Settings.from_environ(os.environ)


@functools.cache
def clock() -> Clock:
    return SystemClock()


@functools.cache
def catalog() -> AppointmentTypeCatalog:
    return settings().catalog()


@functools.cache
def store() -> AppointmentStore:
    config = settings()
    return DynamoAppointmentStore(dynamodb_client(), config.table_name, due_shards=config.due_shards)


def reset() -> None:
    """Forget every built object, so the next call reads the environment again."""
    for factory in (settings, clock, catalog, store):
        factory.cache_clear()
