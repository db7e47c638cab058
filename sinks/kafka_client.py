"""Kafka client helpers that need no settings: starting an aiokafka client with a one-line failure, and
a partition's true end on brokers that answer it wrongly. Used by the worker's shell, the CLI and the
read API's lag view alike."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from aiokafka.errors import KafkaConnectionError
from aiokafka.structs import TopicPartition


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
