"""Kafka connection security from `Settings`: the keyword arguments every aiokafka client of the hub gets,
the same as faust broker credentials for the worker's faust app, and as librdkafka properties for the
one confluent-kafka client (`streams.log_identity`). The settings-free client helpers
(`BrokerUnavailable`, `start_client`, `log_ends`) live in `sinks.kafka_client`."""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka.helpers import create_ssl_context

from reghub.settings import Settings

_TLS = ("SSL", "SASL_SSL")


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for SSL and SASL_SSL (server verified against the CA file, or the system's CAs;
    a client certificate when one is configured), else None."""
    if settings.kafka_security_protocol not in _TLS:
        return None
    password = settings.kafka_ssl_key_password
    return create_ssl_context(
        cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None,
        certfile=str(settings.kafka_ssl_certfile) if settings.kafka_ssl_certfile else None,
        keyfile=str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
        password=password.get_secret_value() if password else None,
    )


def kafka_client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if protocol.startswith("SASL_"):
        password = settings.kafka_sasl_password
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = password.get_secret_value() if password else None
    return options


def librdkafka_options(settings: Settings) -> dict[str, str]:
    """The same connection security as librdkafka configuration properties, for the confluent-kafka
    admin client that reads topic ids (`streams.log_identity`): TLS verifies the server and its host
    name against the CA file (else the system's CAs), SASL logs in with the same user."""
    protocol = settings.kafka_security_protocol
    options = {"security.protocol": protocol}
    if protocol in _TLS:
        files = {
            "ssl.ca.location": settings.kafka_ssl_cafile,
            "ssl.certificate.location": settings.kafka_ssl_certfile,
            "ssl.key.location": settings.kafka_ssl_keyfile,
        }
        options.update({name: str(path) for name, path in files.items() if path})
        options.setdefault("ssl.ca.location", "probe")  # the system's CAs, as `ssl_context`
        options["ssl.endpoint.identification.algorithm"] = "https"
        if settings.kafka_ssl_key_password:
            options["ssl.key.password"] = settings.kafka_ssl_key_password.get_secret_value()
    if protocol.startswith("SASL_"):
        password = settings.kafka_sasl_password
        options["sasl.mechanism"] = settings.kafka_sasl_mechanism
        options["sasl.username"] = settings.kafka_sasl_username or ""
        options["sasl.password"] = password.get_secret_value() if password else ""
    return options


def faust_credentials(settings: Settings) -> Any:
    """`broker_credentials` for a faust app: None for PLAINTEXT, else faust.SSLCredentials or
    faust.SASLCredentials (with the TLS context for SASL_SSL)."""
    import faust

    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = ssl_context(settings)
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    password = settings.kafka_sasl_password
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=password.get_secret_value() if password else None,
        mechanism=settings.kafka_sasl_mechanism,
        ssl_context=context,
    )
