"""Builds the hub's components from `Settings`: the only place that turns settings into constructor values."""

from __future__ import annotations

from collections.abc import Mapping

from api.lag import KafkaAccess
from api.tokens import TokenKeys
from reghub.kafka_options import kafka_client_options, librdkafka_options
from reghub.settings import Settings
from rules.dispensing import RulesConfig
from schemas.common import set_window
from sinks.register import Register, worker_engine
from streams.handlers import HANDLERS
from streams.handlers.base import ApplyConfig, Handler
from streams.processor import ConsumerConfig, RegisterProcessor
from streams.topics import ALERTS, INPUTS, TopicNames, TopicSpec


def topic_names(settings: Settings) -> TopicNames:
    return TopicNames(settings.topic_prefix)


def register(settings: Settings) -> Register:
    return Register(worker_engine(settings.database_url))


def token_keys(settings: Settings) -> TokenKeys:
    """How the API verifies bearer tokens: the configured secret, public key or JWKS URL."""
    secret = settings.api_token_secret
    return TokenKeys(
        audience=settings.api_token_audience,
        issuer=settings.api_token_issuer,
        secret=secret.get_secret_value().encode() if secret is not None else None,
        public_key=settings.api_token_public_key,
        jwks_url=settings.api_jwks_url,
    )


def rules_config(settings: Settings) -> RulesConfig:
    return RulesConfig(rights_based_coverage=settings.rights_based_coverage_pct)


def apply_config(settings: Settings) -> ApplyConfig:
    set_window(settings.earliest_event_year, settings.event_ahead_days)
    return ApplyConfig(
        group_id=settings.consumer_group,
        report_grace_seconds=settings.report_grace_seconds,
        pseudonym_secret=settings.pseudonym_key.get_secret_value().encode(),
        rules=rules_config(settings),
        dead_letter_max_bytes=settings.dead_letter_max_bytes,
    )


def processor(
    settings: Settings,
    reg: Register | None = None,
    handlers: Mapping[TopicSpec, Handler] = HANDLERS,
) -> RegisterProcessor:
    return RegisterProcessor(
        ConsumerConfig(
            bootstrap=settings.kafka_bootstrap,
            group_id=settings.consumer_group,
            max_records=settings.batch_max_records,
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
            kafka_commit_interval_s=settings.kafka_commit_interval_ms / 1000,
            outbox_mark_interval_s=settings.outbox_mark_interval_ms / 1000,
            session_timeout_ms=settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
            retry_backoff_max_s=settings.retry_backoff_max_s,
            idempotence=settings.kafka_idempotence,
            max_request_size=settings.kafka_max_request_size,
            client_options=kafka_client_options(settings),
            admin_options=librdkafka_options(settings),
        ),
        apply_config(settings),
        reg or register(settings),
        topic_names(settings),
        handlers=handlers,
    )


def kafka_access(settings: Settings) -> KafkaAccess:
    """The register's consumer group and input topics, and the alerts topic, as `settings` name them."""
    names = TopicNames(settings.topic_prefix)
    return KafkaAccess(
        bootstrap=settings.kafka_bootstrap,
        group=settings.consumer_group,
        topics=tuple(names(spec) for spec in INPUTS),
        alerts_topic=names(ALERTS),
        options=lambda: kafka_client_options(settings),
    )
