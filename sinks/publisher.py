"""Step 6 of a batch, publish: decisions, dead letters, change feed, alerts and replays, delivery awaited.

The steps are fetch, decode, load, handle, write, publish, commit (`streams.processor`); the outputs
sent here were kept in the outbox by step 5 and are sent by the relay (`streams.relay`)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
)
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from sinks.rows import Outgoing

OUTPUT_ID_HEADER = "reghub-output-id"
"""`<outbox row id>.<index>`: the same output published twice carries the same id."""


PERMANENT: tuple[type[KafkaError], ...] = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    InvalidTopicError,
    TopicAuthorizationFailedError,
)
"""Errors no retry can mend: the record is too large for the producer or the broker, or the topic is
not one the hub may write to. Anything else is retried."""


class Publisher:
    """Sends a batch's outputs as a few record batches per partition and waits until the broker has them.

    Partitions are chosen as Kafka's default partitioner does (murmur2 of the key), so a consumer keyed by
    pharmacy or pseudonym sees one key on one partition whatever client produced it.

    Raises (from `publish`):
        aiokafka.errors.KafkaError: a message could not be delivered; the caller must not commit.
    """

    def __init__(self, producer: AIOKafkaProducer, max_request_size: int = 1_048_576) -> None:
        self.producer = producer
        self.max_request_size = max_request_size  # the producer's: a larger record is refused
        self._partitions: dict[str, list[int]] = {}
        self._partition_of: dict[tuple[str, bytes | None], int] = {}

    async def _partition_ids(self, topic: str) -> list[int]:
        if topic not in self._partitions:
            self._partitions[topic] = sorted(await self.producer.partitions_for(topic))
        return self._partitions[topic]

    async def publish(self, messages: Sequence[Outgoing], outbox_id: int | None = None) -> None:
        """Send `messages`; with `outbox_id`, each carries `reghub-output-id: <outbox id>.<index>`."""
        if not messages:
            return
        by_partition: dict[tuple[str, int], list[tuple[int, Outgoing]]] = {}
        for i, m in enumerate(messages):
            part = self._partition_of.get((m.topic, m.key))
            if part is None:
                partitions = await self._partition_ids(m.topic)
                part = DefaultPartitioner()(m.key, partitions, partitions)
                if m.key is not None and len(self._partition_of) < 100_000:
                    self._partition_of[(m.topic, m.key)] = part
            by_partition.setdefault((m.topic, part), []).append((i, m))
        futures = []
        for (topic, part), items in by_partition.items():
            batch, filled = self.producer.create_batch(), 0
            for i, m in items:
                headers = list(m.headers) or None
                if outbox_id is not None:
                    headers = [*m.headers, (OUTPUT_ID_HEADER, f"{outbox_id}.{i}".encode())]
                self._check_size(m, headers)
                if (
                    batch.append(key=m.key, value=m.value, timestamp=None, headers=headers)
                    is not None
                ):
                    filled += 1
                    continue
                if filled:
                    futures.append(await self.producer.send_batch(batch, topic, partition=part))
                    batch, filled = self.producer.create_batch(), 0
                if batch.append(key=m.key, value=m.value, timestamp=None, headers=headers) is None:
                    # larger than a whole batch: let the producer refuse it with its own error
                    fut = await self.producer.send(
                        topic, m.value, key=m.key, partition=part, headers=headers
                    )
                    futures.append(fut)
                else:
                    filled += 1
            if filled:
                futures.append(await self.producer.send_batch(batch, topic, partition=part))
        await asyncio.gather(*futures)

    def _check_size(self, m: Outgoing, headers: list[tuple[str, bytes]] | None) -> None:
        """Refuse a record larger than one request may be, as the producer's own `send` does: a
        batch built by hand takes its first record whatever its size, and the broker would refuse it.

        Raises:
            MessageSizeTooLargeError: the record is over `max_request_size`.
        """
        if len(m.value) < self.max_request_size // 2:
            return  # the common case, with room to spare for key, headers and framing
        size = DefaultRecordBatchBuilder.estimate_size_in_bytes(m.key, m.value, headers or [])
        if size > self.max_request_size:
            raise MessageSizeTooLargeError(
                f"a {size}-byte record is larger than max_request_size {self.max_request_size}"
            )

    async def publish_each(
        self, messages: Sequence[Outgoing], outbox_id: int
    ) -> list[tuple[int, Outgoing, KafkaError]]:
        """Send `messages` one at a time, each with its `reghub-output-id`; returns those the broker
        refuses for good (`PERMANENT`), with why.

        Raises:
            aiokafka.errors.KafkaError: a message could not be delivered now (retry).
        """
        refused = []
        for i, m in enumerate(messages):
            headers = [*m.headers, (OUTPUT_ID_HEADER, f"{outbox_id}.{i}".encode())]
            try:
                await (await self.producer.send(m.topic, m.value, key=m.key, headers=headers))
            except PERMANENT as exc:
                refused.append((i, m, exc))
        return refused
