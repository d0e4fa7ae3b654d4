"""Composition root: the only place that reads settings and builds clients and services.

Everything is built on first call and cached for the life of the Lambda container; nothing here runs
at import. Each factory imports what it builds, so a function's cold start loads its own service and
adapters, not every other function's. Tests and the local runner call ``reset()`` after changing the
environment.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING

from appointments.adapters.clock import SystemClock
from appointments.config import Settings
from appointments.errors import ConfigError

if TYPE_CHECKING:
    from appointments.domain.appointment_types import AppointmentTypeCatalog
    from appointments.ports import AppointmentStore, Clock
    from appointments.services.attention import Attention
    from appointments.services.back_office import BackOffice
    from appointments.services.ingress import WebhookIngress
    from appointments.services.mail_feedback import MailFeedback
    from appointments.services.outbox_relay import OutboxRelay
    from appointments.services.processor import EventProcessor
    from appointments.services.psa_writeback import PsaWriteback
    from appointments.services.sweeper import Sweeper
    from appointments.services.timezest_poller import TimeZestPoller
    from appointments.services.unmatched_alerts import UnmatchedAlerts
    from appointments.sources.base import Source


@functools.cache
def settings() -> Settings:
    return Settings.from_environ(os.environ)


_clock: Clock | None = None


def clock() -> Clock:
    """The system clock, unless a test or the local runner handed one in with ``use_clock``."""
    global _clock
    if _clock is None:
        _clock = SystemClock()
    return _clock


def use_clock(replacement: Clock) -> None:
    """Every service built from now on reads time from ``replacement`` (tests, the local runner)."""
    global _clock
    reset()
    _clock = replacement


@functools.cache
def catalog() -> AppointmentTypeCatalog:
    return settings().catalog()


@functools.cache
def store() -> AppointmentStore:
    from appointments.adapters.aws import dynamodb_client
    from appointments.adapters.dynamo_store import DynamoAppointmentStore

    config = settings()
    return DynamoAppointmentStore(
        dynamodb_client(),
        config.table_name,
        due_shards=config.due_shards,
        retention_days=config.appointment_retention_days,
    )


@functools.cache
def webhook_ingress() -> WebhookIngress:
    from appointments.adapters.aws import secretsmanager_client, sqs_client
    from appointments.adapters.secrets import SecretsManagerWebhookSecrets
    from appointments.adapters.sqs_queue import SqsEventQueue
    from appointments.services.ingress import WebhookIngress

    config = settings()
    return WebhookIngress(
        sources=_SourcesOnFirstUse(
            {
                "generic": _generic_source,
                "calcom": _calcom_source,
                "calendly": _calendly_source,
                "autotask": _autotask_source,
                "connectwise": _connectwise_source,
                "halopsa": _halopsa_source,
            }
        ),
        secrets=SecretsManagerWebhookSecrets(secretsmanager_client(), config.webhook_secrets_id),
        queue=SqsEventQueue(sqs_client(), config.event_queue_url),
        clock=clock(),
        catalog=catalog(),
    )


class _SourcesOnFirstUse(Mapping[str, "Source"]):
    """The webhook sources by name, each imported and built on its first request: a container that only
    ever hears from Calendly never loads the other five parsers (a sixth of the ingress's cold start)."""

    def __init__(self, factories: dict[str, Callable[[], Source]]) -> None:
        self._factories = factories
        self._built: dict[str, Source] = {}

    def __getitem__(self, name: str) -> Source:
        if name not in self._built:
            source = self._factories[name]()
            if source.name != name:
                raise ConfigError(f"the {name!r} source calls itself {source.name!r}")
            self._built[name] = source
        return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._factories)

    def __len__(self) -> int:
        return len(self._factories)


def _generic_source() -> Source:
    from appointments.sources.generic import GenericSource

    return GenericSource()


def _calcom_source() -> Source:
    from appointments.sources.calcom import CalcomSource

    return CalcomSource(settings().calcom_booking_base_url)


def _calendly_source() -> Source:
    from appointments.sources.calendly import CalendlySource

    return CalendlySource()


def _autotask_source() -> Source:
    from appointments.sources.autotask import AutotaskSource

    config = settings()
    return AutotaskSource(
        complete_status_id=config.autotask_complete_status_id, no_show_status_id=config.autotask_no_show_status_id
    )


def _connectwise_source() -> Source:
    from appointments.adapters.connectwise_keys import ConnectWiseCallbackKeys
    from appointments.sources.connectwise import ConnectWiseSource, key_hosts

    config = settings()
    return ConnectWiseSource(
        ConnectWiseCallbackKeys(key_hosts(config.connectwise_key_hosts)),
        key_hosts_allowed=config.connectwise_key_hosts,
        complete_statuses=config.connectwise_complete_statuses,
        no_show_statuses=config.connectwise_no_show_statuses,
    )


def _halopsa_source() -> Source:
    from appointments.sources.halopsa import HaloPsaSource

    config = settings()
    return HaloPsaSource(
        complete_status_id=config.halopsa_complete_status_id,
        no_show_status_id=config.halopsa_no_show_status_id,
        timezone=config.halopsa_timezone,
    )


@functools.cache
def event_processor() -> EventProcessor:
    from appointments.services.processor import EventProcessor, SourcePolicy

    config = settings()
    policy = SourcePolicy(
        ops_alert_email=config.ops_alert_email,
        default_types=config.source_default_types,
        type_map=config.vendor_type_map,
        customer_mail_sources=config.customer_mail_sources,
        timings=config.rule_timings(),
        waiting_retention=timedelta(hours=config.unmatched_event_retention_hours),
        unmatched_alert_after=timedelta(minutes=config.unmatched_alert_minutes) or None,
    )
    return EventProcessor(store(), clock(), catalog(), policy)


@functools.cache
def back_office() -> BackOffice:
    from appointments.domain.coupons import CouponPolicy
    from appointments.services.back_office import BackOffice, BackOfficePolicy

    config = settings()
    policy = BackOfficePolicy(
        coupons=CouponPolicy(percent=config.coupon_percent, valid_days=config.coupon_valid_days),
        timings=config.rule_timings(),
        no_show_mail_by=config.no_show_mail_by,
    )
    return BackOffice(store(), clock(), catalog(), policy)


@functools.cache
def attention() -> Attention:
    from appointments.services.attention import Attention

    return Attention(store(), clock(), settings().rule_timings())


@functools.cache
def sweeper() -> Sweeper:
    from appointments.domain.coupons import CouponPolicy
    from appointments.services.sweeper import Sweeper, SweepPolicy

    config = settings()
    policy = SweepPolicy(
        coupons=CouponPolicy(percent=config.coupon_percent, valid_days=config.coupon_valid_days),
        ops_alert_email=config.ops_alert_email,
        timings=config.rule_timings(),
        shards=config.due_shards,
        no_show_mail_by=config.no_show_mail_by,
    )
    return Sweeper(store(), clock(), catalog(), policy, mail=outbox_relay(), unmatched_alerts=unmatched_alerts())


@functools.cache
def unmatched_alerts() -> UnmatchedAlerts | None:
    """None when ``UNMATCHED_ALERT_MINUTES`` is 0: no alert is armed, and none is looked for."""
    from appointments.adapters.aws import sesv2_client
    from appointments.adapters.ses_mailer import SesMailer
    from appointments.mail.render import render_unmatched_alert
    from appointments.services.unmatched_alerts import AlertPolicy, UnmatchedAlerts

    config = settings()
    if config.unmatched_alert_minutes == 0:
        return None
    return UnmatchedAlerts(
        store(),
        SesMailer(sesv2_client(), configuration_set=config.mail_configuration_set),
        clock(),
        functools.partial(render_unmatched_alert, branding=config.branding()),
        AlertPolicy(sender=config.mail_from, ops_alert_email=config.ops_alert_email),
    )


@functools.cache
def outbox_relay() -> OutboxRelay:
    from appointments.adapters.aws import events_client, sesv2_client
    from appointments.adapters.event_bus import EventBusPublisher
    from appointments.adapters.ses_mailer import SesMailer
    from appointments.mail.render import render
    from appointments.services.outbox_relay import OutboxRelay, RelayPolicy

    config = settings()
    branding = config.branding()
    types = catalog()
    return OutboxRelay(
        store(),
        SesMailer(sesv2_client(), configuration_set=config.mail_configuration_set),
        EventBusPublisher(events_client(), config.event_bus_name),
        functools.partial(render, catalog=types, branding=branding),
        clock(),
        RelayPolicy(sender=config.mail_from, ops_alert_email=config.ops_alert_email),
    )


@functools.cache
def timezest_poller() -> TimeZestPoller:
    import time

    from appointments.adapters.aws import dynamodb_client, secretsmanager_client, sqs_client
    from appointments.adapters.dynamo_poll_state import DynamoPollState
    from appointments.adapters.secrets import SecretsManagerWebhookSecrets
    from appointments.adapters.sqs_queue import SqsEventQueue
    from appointments.adapters.timezest_api import TimeZestApi
    from appointments.adapters.vendor_http import VendorHttp
    from appointments.services.timezest_poller import PollPolicy, TimeZestPoller

    config = settings()
    api_key = SecretsManagerWebhookSecrets(secretsmanager_client(), config.webhook_secrets_id).webhook_secret(
        "timezest"
    )
    if not api_key:
        raise ConfigError('the webhook secrets have no "timezest" entry: put the TimeZest API key there')
    return TimeZestPoller(
        TimeZestApi(VendorHttp("timezest"), api_key, config.timezest_api_url),
        SqsEventQueue(sqs_client(), config.event_queue_url),
        DynamoPollState(dynamodb_client(), config.table_name),
        clock(),
        time.sleep,
        PollPolicy(requests_per_minute=config.timezest_requests_per_minute),
    )


@functools.cache
def psa_writeback() -> PsaWriteback:
    import time

    from appointments.adapters.aws import secretsmanager_client
    from appointments.adapters.psa_clients import psa_clients, read_psa_credentials
    from appointments.services.psa_writeback import PsaWriteback, WritebackSettings

    config = settings()
    credentials = read_psa_credentials(secretsmanager_client(), config.psa_credentials_id)
    return PsaWriteback(
        store(),
        psa_clients(credentials, clock()),
        clock(),
        time.sleep,
        WritebackSettings(rules=config.writeback_policy(), ops_alert_email=config.ops_alert_email),
    )


@functools.cache
def mail_feedback() -> MailFeedback:
    from appointments.adapters.ses_feedback import read_ses_notice
    from appointments.services.mail_feedback import FeedbackPolicy, MailFeedback

    config = settings()
    return MailFeedback(store(), clock(), FeedbackPolicy(ops_alert_email=config.ops_alert_email), read_ses_notice)


def reset() -> None:
    """Forget every built object, so the next call reads the environment again."""
    global _clock
    _clock = None
    for factory in (
        settings,
        catalog,
        store,
        webhook_ingress,
        event_processor,
        back_office,
        attention,
        sweeper,
        unmatched_alerts,
        outbox_relay,
        mail_feedback,
        timezest_poller,
        psa_writeback,
    ):
        factory.cache_clear()
