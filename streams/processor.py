"""The register's batch consumer: aiokafka `getmany` → decode → load → handle → write → publish → commit.

Hosted as a task of the faust app (`streams.app`); it does not depend on faust's acks, agents or tables.
Each batch pays one handoff and one database transaction, not one per event (design.md, "The hot path").
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import ConsumerRecord
from sqlalchemy import select

from sinks import tables
from sinks.publisher import Publisher
from sinks.register import Register, RegisterUnavailable
from streams.decode import Decoded, Rejected, Source, decode
from streams.handlers import HANDLERS
from streams.handlers.base import ApplyConfig, Handler
from streams.pipeline import Pipeline
from streams.topics import INPUTS, TopicNames, TopicSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ConsumerConfig:
    """Batch limits and the consumer's broker settings: small frozen values."""

    bootstrap: str
    group_id: str
    max_records: int = 5_000
    poll_timeout_ms: int = 500
    fetch_max_wait_ms: int = 50
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 1_000
    retry_backoff_max_s: float = 30.0


@dataclass
class ProcessorStats:
    """What the worker has done since it started; read by the health view and the CLI summary."""

    batches: int = 0
    messages: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    failures: int = 0
    last_batch_at: float | None = None


@dataclass(frozen=True, slots=True)
class Fetched:
    """One batch as fetched: the records per partition, and each decoded or rejected."""

    batch: dict[TopicPartition, list[ConsumerRecord]]
    decoded: list[Decoded]
    rejected: list[Rejected]


async def _discard(task: asyncio.Task[Fetched | None]) -> Fetched | None:
    """Stop a prefetch; returns what it had already fetched, so the caller can seek back over it."""
    if task.done() and not task.cancelled() and task.exception() is None:
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, KafkaError):
        return await task
    return None


class _SeekToRegisterOffsets(ConsumerRebalanceListener):
    """On assignment, start each partition where the register says it has read to, if that is further.

    Called by aiokafka inside a rebalance, before fetching resumes; it reads the database once.
    """

    def __init__(self, processor: RegisterProcessor) -> None:
        self.processor = processor

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        p = self.processor
        if not assigned or p.consumer is None:
            return
        t = tables.consumer_offsets
        async with p.register.engine.connect() as conn:
            rows = await conn.execute(
                select(t.c.topic, t.c.partition, t.c.next_offset).where(
                    t.c.group_id == p.config.group_id
                )
            )
            stored = {TopicPartition(r.topic, r.partition): r.next_offset for r in rows}
        for tp in assigned:
            if tp not in stored:
                continue
            committed = await p.consumer.committed(tp)
            if committed is None or committed < stored[tp]:
                p.consumer.seek(tp, stored[tp])


class RegisterProcessor:
    """Consumes every CTR input topic in batches and keeps the register.

    `run` loops until `stop` is called. A batch that cannot be written or published is not committed:
    the consumer seeks back to the batch's first offsets and the batch is retried with backoff.
    """

    def __init__(
        self,
        config: ConsumerConfig,
        apply_config: ApplyConfig,
        register: Register,
        names: TopicNames,
        on_batch: Callable[[ProcessorStats], None] | None = None,
        handlers: Mapping[TopicSpec, Handler] = HANDLERS,
    ) -> None:
        self.config = config
        self.apply_config = apply_config
        self.register = register
        self.names = names
        self.on_batch = on_batch
        self.stats = ProcessorStats()
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.pipeline = Pipeline(register, names, apply_config, handlers)
        self._stopping = asyncio.Event()
        self._specs = {names(spec): spec for spec in INPUTS}
        self._order = {names(spec): i for i, spec in enumerate(INPUTS)}

    async def start(self) -> None:
        """Connect to the broker and read the scales.

        Raises:
            aiokafka.errors.KafkaConnectionError: the broker cannot be reached.
        """
        c = self.config
        await self.pipeline.start()
        # A batch keeps thousands of short-lived objects alive at once; with the default thresholds the
        # collector rescans them again and again (a quarter of the worker's time, measured by the bench).
        gc.freeze()
        gc.set_threshold(200_000, 50, 100)
        self.producer = AIOKafkaProducer(
            bootstrap_servers=c.bootstrap, acks="all", linger_ms=5, max_batch_size=256 * 1024
        )
        await self.producer.start()
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=c.bootstrap,
            group_id=c.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=c.session_timeout_ms,
            heartbeat_interval_ms=c.heartbeat_interval_ms,
            fetch_max_wait_ms=c.fetch_max_wait_ms,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        self.consumer.subscribe(list(self._specs), listener=_SeekToRegisterOffsets(self))
        await self.consumer.start()
        self.publisher = Publisher(self.producer)

    async def stop(self) -> None:
        self._stopping.set()

    async def close(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
        if self.producer is not None:
            await self.producer.stop()

    async def run(self) -> None:
        """Fetch and process batches until stopped; never raises on bad input or a failed batch.

        The next batch is fetched and decoded while the current one waits on the database, so decoding
        costs no wall time of its own; a failed batch discards that prefetched one and seeks back.
        """
        assert self.consumer is not None
        backoff = 0.5
        ahead: asyncio.Task[Fetched | None] | None = None
        try:
            while not self._stopping.is_set():
                fetched = await (ahead or self.fetch())
                ahead = asyncio.create_task(self.fetch())
                if fetched is None:
                    continue
                try:
                    await self.process(fetched)
                    backoff = 0.5
                except (RegisterUnavailable, KafkaError) as exc:
                    self.stats.failures += 1
                    log.error("batch not committed, will retry in %.1f s: %s", backoff, exc)
                    stale = await _discard(ahead)
                    ahead = None
                    for undone in (
                        stale,
                        fetched,
                    ):  # the failed batch last: its offsets are earlier
                        for tp, records in undone.batch.items() if undone else ():
                            self.consumer.seek(tp, records[0].offset)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.config.retry_backoff_max_s)
        finally:
            if ahead is not None:
                await _discard(ahead)

    async def fetch(self) -> Fetched | None:
        """Step 1, `decode`: the next records from the broker, each decoded or rejected; None if none."""
        assert self.consumer is not None
        started = time.perf_counter()
        batch = await self.consumer.getmany(
            timeout_ms=self.config.poll_timeout_ms, max_records=self.config.max_records
        )
        if not batch:
            return None
        decoded: list[Decoded] = []
        rejected: list[Rejected] = []
        for tp in sorted(batch, key=lambda tp: self._order[tp.topic]):
            spec = self._specs[tp.topic]
            for rec in batch[tp]:
                source = Source(
                    tp.topic, tp.partition, rec.offset, rec.key, rec.value, rec.timestamp
                )
                item = decode(source, spec)
                (decoded if isinstance(item, Decoded) else rejected).append(item)
        self.pipeline.step("fetch", started)
        return Fetched(batch, decoded, rejected)

    async def process(self, fetched: Fetched) -> None:
        """Run one fetched batch through the remaining steps. Offsets are committed only after write
        and publish.

        1. decode — done by `fetch`: every record to a model or a `Rejected`;
        2-4. load, handle, write — `Pipeline.run`: one register transaction, with the consumed offsets;
        5. publish — dead letters, decisions, changes, alerts, replays; delivery awaited;
        6. commit — last offset + 1 per partition, always last.

        Raises:
            RegisterUnavailable: steps 2-4 failed; nothing was written or committed.
            KafkaError: step 5 failed; the register has the batch, redelivery will be skipped.
        """
        assert self.consumer is not None
        batch = fetched.batch
        offsets = {
            (tp.topic, tp.partition): records[-1].offset + 1 for tp, records in batch.items()
        }
        # Steps 2-4
        result = await self.pipeline.run(fetched.decoded, fetched.rejected, offsets)
        # Step 5
        started = time.perf_counter()
        await self.publisher.publish(result.outputs)
        self.pipeline.step("publish", started)
        # Step 6
        started = time.perf_counter()
        try:
            await self.consumer.commit({TopicPartition(t, p): o for (t, p), o in offsets.items()})
        except CommitFailedError as exc:  # partitions moved on; the register's offsets stay exact
            log.warning("offset commit refused after a rebalance: %s", exc)
        self.pipeline.step("commit", started)
        self._count(batch, result.counts)

    def _count(
        self, batch: dict[TopicPartition, list[ConsumerRecord]], counts: dict[str, int]
    ) -> None:
        s = self.stats
        s.batches += 1
        s.messages += sum(len(r) for r in batch.values())
        for k, v in counts.items():
            s.outcomes[k] = s.outcomes.get(k, 0) + v
        s.last_batch_at = time.time()
        if self.on_batch is not None:
            self.on_batch(s)
