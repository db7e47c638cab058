"""Every knob of the hub in one frozen object, read from `REGHUB_*` environment variables at start-up."""

from __future__ import annotations

import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

SECRETS_DIR_VARIABLE = "REGHUB_SECRETS_DIR"
LOG_FORMAT_VARIABLE = "REGHUB_LOG_FORMAT"

DATABASE_URL_FORMS = (
    "postgresql://user:password@host:5432/name (or postgres://…) or sqlite:///path/to/register.db"
)
"""The forms of `REGHUB_DATABASE_URL` the hub accepts, as `--help` and its errors name them."""

_ASYNC_DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
}


def async_database_url(url: str) -> str:
    """`url` with the async driver the hub runs on (asyncpg, aiosqlite) in its scheme.

    Raises:
        ValueError: not a PostgreSQL or SQLite URL; the message names the accepted forms, never the
            URL itself (it may hold a password).
    """
    scheme, separator, rest = url.strip().partition("://")
    driver = _ASYNC_DRIVERS.get(scheme.lower()) if separator else None
    if driver is None:
        shown = separator and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,30}", scheme)
        named = f"{scheme}:// is not supported" if shown else "not a URL"
        raise ValueError(f"{named}; use {DATABASE_URL_FORMS}")
    if not rest.strip("/"):
        raise ValueError(f"no host or file given; use {DATABASE_URL_FORMS}")
    return f"{driver}://{rest}"


class Settings(BaseSettings):
    """Components get these values through their constructors and never read the environment themselves."""

    # errors never repeat the values given: they may be secrets
    model_config = SettingsConfigDict(
        env_prefix="REGHUB_", frozen=True, extra="ignore", hide_input_in_errors=True
    )

    kafka_bootstrap: str = "127.0.0.1:9092"
    # Exactly-once delivery per producer session on Apache Kafka; Tansu (the embedded and test broker)
    # refuses InitProducerId, so the embedded hub and the tests turn it off.
    kafka_idempotence: bool = True
    # Kafka TLS and SASL (reghub/kafka_options.py turns these into client options).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_ssl_cafile: Path | None = Field(default=None, description="CA bundle; none: the system's")
    kafka_ssl_certfile: Path | None = Field(default=None, description="client certificate (mTLS)")
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # Topics the hub creates: production clusters have three brokers or more; the embedded hub, the
    # tests and the one-broker compose stack set 1 and 1.
    topic_replication_factor: int = Field(default=3, ge=1)
    topic_min_insync_replicas: int = Field(default=2, ge=1)
    database_url: str = Field(
        default="sqlite+aiosqlite:///.reghub/register.db",
        description=f"the register: {DATABASE_URL_FORMS}",
    )
    topic_prefix: str = ""
    topic_partitions: int = Field(default=4, ge=1)
    consumer_group: str = "reghub-register"
    kafka_session_timeout_ms: int = Field(default=10_000, ge=6_000)
    kafka_heartbeat_interval_ms: int = 1_000
    fetch_max_wait_ms: int = 50
    kafka_commit_interval_ms: int = Field(
        default=1_000,
        ge=0,
        description="commit Kafka offsets at most this often (the register's offsets are exact)",
    )
    batch_max_records: int = Field(default=5_000, ge=1)
    kafka_max_request_size: int = Field(
        default=1_048_576,
        ge=1024,
        description="the largest record the producer sends (Apache Kafka's default limit: 1 MB)",
    )
    earliest_event_year: int = Field(
        default=2000,
        ge=1900,
        le=2100,
        description="an event time before 1 January of this year is refused (schema.value_error)",
    )
    event_ahead_days: int = Field(
        default=366,
        ge=0,
        description="an event time more than this many days after its record reached the broker is "
        "refused (schema.value_error)",
    )
    dead_letter_max_bytes: int = Field(
        default=262_144,
        ge=0,
        description="a dead letter carries the original bytes up to this size, then their length "
        "and SHA-256 in headers: a refused message near the record limit never gives a dead letter "
        "over it",
    )
    retry_backoff_max_s: float = 30.0
    scale_refresh_seconds: float = Field(
        default=60.0, gt=0, description="re-read scales this often"
    )
    outbox_keep_hours: float = Field(
        default=1.0,
        ge=0,
        description="sent outputs kept this long (about 0.16 GB an hour at 300/s)",
    )
    outbox_sweep_seconds: float = Field(default=10.0, gt=0)
    outbox_mark_interval_ms: int = Field(
        default=1_000, ge=0, description="mark published outbox rows sent at most this often"
    )
    outbox_stale_seconds: float = Field(
        default=30.0, gt=0, description="an output unsent this long is published by any worker"
    )
    ready_stall_seconds: float = Field(
        default=60.0, gt=0, description="not ready when nothing is committed this long with lag"
    )
    health_probe_seconds: float = Field(default=5.0, gt=0)
    report_grace_seconds: int = Field(default=60, ge=0, description="'immediately' for § 7 stk. 1")
    rights_based_coverage_pct: Decimal = Field(default=Decimal(100), ge=0, le=100)
    pseudonym_key: SecretStr = Field(
        min_length=16, description="HMAC key for person pseudonyms on monitoring topics; no default"
    )
    web_port: int = 6066
    web_host: str = Field(
        default="127.0.0.1",
        description="the worker's web port (health, metrics) binds this address; 0.0.0.0 in a container",
    )
    worker_urls: list[str] = Field(
        default_factory=list,
        description="the workers' web addresses the dashboard asks (JSON list, e.g. "
        '["http://worker-1:6066"])',
    )
    obligation_check_seconds: float = Field(
        default=1.0, gt=0, description="how often reports missing at their due time are looked for"
    )
    place_check_seconds: float = Field(
        default=60.0,
        gt=0,
        description="how often places still unregistered after their treatment start are looked for",
    )
    worker_processes: int | None = Field(
        default=None, ge=1, description="`reghub worker` processes; default: cores on PostgreSQL"
    )
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # The API's bearer tokens (api/tokens.py): an HS256 secret (the embedded run, tests), or the
    # issuer's public key, or its JWKS URL (production).
    api_token_secret: SecretStr | None = Field(
        default=None, min_length=32, description="HS256 key of the API's tokens (development)"
    )
    api_token_public_key: str | None = Field(
        default=None, description="the token issuer's PEM public key (RS/PS/ES algorithms)"
    )
    api_jwks_url: str | None = Field(default=None, description="the token issuer's JWKS URL")
    api_token_audience: str = "reghub-api"
    api_token_issuer: str = "reghub-dev"
    data_dir: Path = Path(".reghub")
    log_level: str = "info"
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="json: one JSON object a log line (containers); text: for a terminal",
    )

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        return async_database_url(url)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                "REGHUB_KAFKA_SASL_USERNAME and REGHUB_KAFKA_SASL_PASSWORD are required with "
                f"REGHUB_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol}"
            )
        if self.topic_min_insync_replicas > self.topic_replication_factor:
            raise ValueError(
                "REGHUB_TOPIC_MIN_INSYNC_REPLICAS must not exceed REGHUB_TOPIC_REPLICATION_FACTOR"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Also read secrets from files named like the variables (`reghub_pseudonym_key`, …) in the
        folders `REGHUB_SECRETS_DIR` names, separated by `:` like PATH (compose: its secrets volume
        and /run/secrets, where compose mounts its `secrets:`); a later folder wins over an earlier
        one, and the environment over any file."""
        # a folder that is not there holds no secret (a setting it should have held is reported
        # missing by name), rather than a library warning on stderr
        folders = [f for f in secrets_folders(os.environ.get(SECRETS_DIR_VARIABLE)) if f.is_dir()]
        if folders:
            file_secret_settings = SecretsSettingsSource(settings_cls, secrets_dir=folders)
        return init_settings, env_settings, dotenv_settings, file_secret_settings


def secrets_folders(value: str | None) -> list[Path]:
    """The folders of `REGHUB_SECRETS_DIR` (`value`, None when unset): `:`-separated, blanks left out."""
    return [Path(part) for part in (value or "").split(os.pathsep) if part.strip()]
