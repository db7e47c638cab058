"""Every knob of the hub in one frozen object, read from `REGHUB_*` environment variables at start-up."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Components get these values through their constructors and never read the environment themselves."""

    model_config = SettingsConfigDict(env_prefix="REGHUB_", frozen=True, extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    database_url: str = "sqlite+aiosqlite:///.reghub/register.db"
    topic_prefix: str = ""
    topic_partitions: int = Field(default=4, ge=1)
    consumer_group: str = "reghub-register"
    kafka_session_timeout_ms: int = Field(default=10_000, ge=6_000)
    kafka_heartbeat_interval_ms: int = 1_000
    fetch_max_wait_ms: int = 50
    batch_max_records: int = Field(default=5_000, ge=1)
    retry_backoff_max_s: float = 30.0
    scale_refresh_seconds: float = Field(
        default=60.0, gt=0, description="re-read scales this often"
    )
    report_grace_seconds: int = Field(default=60, ge=0, description="'immediately' for § 7 stk. 1")
    rights_based_coverage_pct: Decimal = Field(default=Decimal(100), ge=0, le=100)
    pseudonym_key: SecretStr = Field(
        min_length=16, description="HMAC key for person pseudonyms on monitoring topics; no default"
    )
    web_port: int = 6066
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    data_dir: Path = Path(".reghub")
    log_level: str = "info"
