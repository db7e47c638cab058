"""Kafka connection security from `Settings`: the keyword arguments every aiokafka client of the hub gets,
and the same as faust broker credentials for the worker's faust app."""

from __future__ import annotations

import contextlib
import logging
import ssl
import time
from typing import Any

from aiokafka.errors import KafkaConnectionError
from aiokafka.helpers import create_ssl_context
from aiokafka.structs import TopicPartition

from reghub.settings import Settings

_TLS = ("SSL", "SASL_SSL")


class BrokerUnavailable(Exception):
    """No Kafka broker answered at the bootstrap address (over TLS or SASL: or not as configured)."""

    def __init__(self, bootstrap: str, protocol: str = "PLAINTEXT") -> None:
        plain = protocol == "PLAINTEXT"
        super().__init__(
            f"no broker at {bootstrap}"
            if plain
            else f"no broker answered at {bootstrap} over {protocol}"
        )
        self.bootstrap = bootstrap
        self.protocol = protocol

    @property
    def hint(self) -> str:
        """What to do about it, on the same line."""
        if self.protocol == "PLAINTEXT":
            return f"{self} — start the hub with ./up, or set REGHUB_KAFKA_BOOTSTRAP"
        return f"{self} — check REGHUB_KAFKA_BOOTSTRAP and the REGHUB_KAFKA_SSL_*/SASL_* settings"


async def start_client(client: Any, bootstrap: str, protocol: str = "PLAINTEXT") -> None:
    """`await client.start()` for an aiokafka producer, consumer or admin client; a broker that does not
    answer becomes `BrokerUnavailable` (and the half-started client is closed).
    """
    library = logging.getLogger("aiokafka")
    level = library.level
    library.setLevel(logging.CRITICAL)  # its "Unable connect to …" would repeat what we raise
    try:
        await client.start()
    except KafkaConnectionError as exc:
        with contextlib.suppress(Exception):
            await (client.stop() if hasattr(client, "stop") else client.close())
        raise BrokerUnavailable(bootstrap, protocol) from exc
    finally:
        library.setLevel(level)


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


async def log_ends(consumer: Any, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    """The offset after each partition's last record, for an assigned consumer (left positioned there).

    The broker's answer (`end_offsets`) is not taken as it is: Tansu answers with the base offset of
    the partition's last record batch plus one, so the other records of that batch (a worker publishes
    its outputs in batches) would count as not yet written. Each partition's last batch is fetched once
    from that offset minus one: on Kafka that is the last record, on Tansu its whole batch.
    """
    ends = dict(await consumer.end_offsets(partitions))
    pending = {tp for tp in partitions if ends[tp] > 0}
    for tp in pending:
        consumer.seek(tp, ends[tp] - 1)
    deadline = time.monotonic() + 3  # a compacted partition may have lost its last offsets
    while pending and time.monotonic() < deadline:
        fetched = await consumer.getmany(*pending, timeout_ms=200)
        for tp, records in fetched.items():
            if records:
                ends[tp] = max(ends[tp], records[-1].offset + 1)
                pending.discard(tp)
    for tp in partitions:
        consumer.seek(tp, ends[tp])
    return ends
