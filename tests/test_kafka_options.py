"""Kafka security and topic durability settings, and the client options the hub builds from them."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest
from pydantic import ValidationError

from reghub.kafka_options import faust_credentials, kafka_client_options, librdkafka_options
from reghub.settings import Settings

KEY = "test-pseudonym-key-0123456789"


def settings(**values: object) -> Settings:
    return Settings(pseudonym_key=KEY, **values)  # type: ignore[arg-type]


def test_production_defaults_are_plaintext_three_replicas_two_in_sync_and_idempotent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("TOPIC_REPLICATION_FACTOR", "TOPIC_MIN_INSYNC_REPLICAS", "KAFKA_IDEMPOTENCE"):
        monkeypatch.delenv(f"REGHUB_{name}", raising=False)
    s = settings()
    assert (s.topic_replication_factor, s.topic_min_insync_replicas) == (3, 2)
    assert s.kafka_idempotence is True
    assert kafka_client_options(s) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(s) is None


def test_sasl_ssl_gives_a_verifying_tls_context_and_the_sasl_login() -> None:
    s = settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="reghub",
        kafka_sasl_password="sasl-password",
    )
    options = kafka_client_options(s)

    context = options.pop("ssl_context")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert options == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "reghub",
        "sasl_plain_password": "sasl-password",
    }
    credentials = faust_credentials(s)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert "sasl-password" not in repr(s) and "sasl-password" not in repr(credentials)


def test_sasl_plaintext_has_no_tls_context() -> None:
    s = settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_username="reghub",
        kafka_sasl_password="sasl-password",
    )
    options = kafka_client_options(s)
    assert "ssl_context" not in options
    assert options["sasl_mechanism"] == "PLAIN"
    assert faust_credentials(s).protocol.value == "SASL_PLAINTEXT"


def test_ssl_alone_is_tls_without_sasl() -> None:
    s = settings(kafka_security_protocol="SSL")
    options = kafka_client_options(s)
    assert set(options) == {"security_protocol", "ssl_context"}
    assert isinstance(faust_credentials(s), faust.SSLCredentials)


def test_sasl_without_a_login_is_refused_without_echoing_values() -> None:
    with pytest.raises(ValidationError) as info:
        settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="reghub")
    assert "REGHUB_KAFKA_SASL_PASSWORD" in str(info.value)
    assert KEY not in str(info.value)


def test_min_insync_replicas_cannot_exceed_the_replication_factor() -> None:
    with pytest.raises(ValidationError, match="REGHUB_TOPIC_MIN_INSYNC_REPLICAS"):
        settings(topic_replication_factor=1, topic_min_insync_replicas=2)


def test_the_topic_id_lookup_gets_the_same_security_in_librdkafka_terms(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    s = settings(
        kafka_security_protocol="SASL_SSL",
        kafka_ssl_cafile=ca,
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="reghub",
        kafka_sasl_password="sasl-password",
    )
    assert librdkafka_options(s) == {
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": str(ca),
        "ssl.endpoint.identification.algorithm": "https",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "reghub",
        "sasl.password": "sasl-password",
    }
    assert librdkafka_options(settings(kafka_security_protocol="SSL")) == {
        "security.protocol": "SSL",
        "ssl.ca.location": "probe",  # the system's CAs, as the TLS context without a CA file
        "ssl.endpoint.identification.algorithm": "https",
    }
    assert librdkafka_options(settings()) == {"security.protocol": "PLAINTEXT"}
