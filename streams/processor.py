"""The register's batch consumer: the seven steps of a batch, in one vocabulary across the processor, the
pipeline (`streams.pipeline`) and the publisher (`sinks.publisher`):

1. fetch — aiokafka `getmany` from the assigned partitions;
2. decode — each record to its topic's model or a `Rejected` (`streams.decode`);
3. load — each register's store loads what the batch needs (`Pipeline.run`);
4. handle — each message to its topic's handler, effects as values;
5. write — one register transaction through the unit of work (rows, ids, offsets, outbox);
6. publish — the relay sends the outbox row's outputs (`streams.relay`, `sinks.publisher`);
7. commit — Kafka offsets, on their interval; the register's offsets are the truth.

Hosted as a task of the faust app (`streams.app`); it does not depend on faust's acks, agents or tables.
Each batch pays one handoff and one database transaction, not one per event (design.md, "The hot path").
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from tenacity import RetryCallState

from sinks.publisher import Publisher
from sinks.register import Register, RegisterUnavailable
from sinks.rows import Outgoing
from streams import retrying
from streams.decode import Decoded, Rejected, Source, decode
from streams.handlers import HANDLERS
from streams.handlers.base import ApplyConfig, Handler
from streams.log_identity import LogIdentityUnknown, log_ids
from streams.metrics import Metrics
from streams.pipeline import BatchResult, Pipeline
from streams.relay import Relay
from streams.steps import (
    BACKOFF,
    BEFORE,
    COMMIT,
    FETCH,
    IDLE_COMMIT,
    IN_FLIGHT,
    LOOP,
    PUBLISH,
    PUBLISHING,
    WRITE,
    Steps,
)
from streams.topics import INPUTS, TopicNames, TopicSpec

log = logging.getLogger(__name__)

EMPTY_BEHIND_LIMIT = 3
"""Polls that bring nothing (or too little, `SHORT_POLL_RATIO`) while the partitions are behind, within
`EMPTY_BEHIND_WINDOW_S`, before the fetch wait is raised. Behind, a poll should never come back empty:
the broker has records to give."""

EMPTY_BEHIND_WINDOW_S = 60.0

SHORT_POLL_RATIO = 100
"""A poll counts with the empty ones when it brought under 1/100 of the batch it could have brought
(`RegisterProcessor._is_short`): behind, any broker gives whole fetches' worth, so one record at a time
is the short wait's doing too. Raising the wait costs nothing where the broker has records: it answers
at once."""

FETCH_WAIT_MAX_MS = 2_000
"""The longest the fetch wait is raised to (`RegisterProcessor.widen_fetch_wait`)."""

FULL_COLLECTION_EVERY_S = 60.0
"""How often the worker runs a full garbage collection, between two batches. With the thresholds `start`
sets, Python's own would come once in hours at a steady few hundred reports a second, and the cycles
the libraries leave behind (SQLAlchemy's statements, a unit of work's stores) would grow the worker's
memory until then: about 0.2 MB a minute at 300 reports/s (`bench.soak`)."""

DECODE_SLICE = 256
"""Records decoded between two yields to the event loop: the next batch is decoded in slices while the
current one waits on the database (a slice takes a few milliseconds), not in one block at its first
statement."""


@dataclass(frozen=True, slots=True)
class ConsumerConfig:
    """Batch limits and the consumer's broker settings: small frozen values."""

    bootstrap: str
    group_id: str
    max_records: int = 5_000
    poll_timeout_ms: int = 500
    fetch_max_wait_ms: int = 50
    kafka_commit_interval_s: float = 1.0  # `RegisterProcessor.commit_kafka_offsets`
    outbox_mark_interval_s: float = 1.0  # `streams.relay.Relay.publish`
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 1_000
    retry_backoff_max_s: float = 30.0
    idempotence: bool = True
    max_request_size: int = 1_048_576
    # security_protocol, ssl_context, sasl_* … passed to every aiokafka client as they are
    client_options: Mapping[str, Any] = field(default_factory=dict)
    # the same security as librdkafka properties, for the topic-id lookup (streams/log_identity.py)
    admin_options: Mapping[str, str] = field(default_factory=dict)


@dataclass
class ProcessorStats:
    """What the worker has done since it started; read by the health view and the CLI summary."""

    batches: int = 0
    messages: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    failures: int = 0
    last_batch_at: float | None = None
    failing_since: float | None = None  # first failure of the current run of failed attempts
    last_error: str | None = None
    assigned: int | None = None  # partitions held; None until the group is joined
    assigned_at: float | None = None  # when they were last assigned
    started_at: float = field(default_factory=time.time)
    incidents: list[dict[str, object]] = field(default_factory=list)
    committed: dict[tuple[str, int], int] = field(default_factory=dict)  # next offset per partition
    batch_limit: int | None = None  # records per fetch while cut down after failures; None: full
    empty_fetches: int = 0  # polls that brought nothing since the last committed batch
    fetch_wait_ms: int | None = None  # the broker's fetch wait asked for now

    def failed(self, error: str) -> None:
        self.failures += 1
        self.last_error = error
        if self.failing_since is None:
            self.failing_since = time.time()

    def succeeded(self) -> None:
        self.failing_since = None
        self.last_error = None


@dataclass(frozen=True, slots=True)
class Fetched:
    """One batch as fetched: the records per partition, and each decoded or rejected."""

    batch: dict[TopicPartition, list[ConsumerRecord]]
    decoded: list[Decoded]
    rejected: list[Rejected]


def _retrieved(task: asyncio.Task[None]) -> None:
    """Mark a finishing task's failure as seen: it is raised by the next `process` or `finished`."""
    if not task.cancelled():
        task.exception()


async def _discard(task: asyncio.Task[Fetched | None]) -> Fetched | None:
    """Stop a prefetch; returns what it had already fetched, so the caller can seek back over it."""
    if task.done() and not task.cancelled() and task.exception() is None:
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, KafkaError):
        return await task
    return None


class _Rebalance(ConsumerRebalanceListener):
    """Hand partitions over cleanly. Called by aiokafka inside a rebalance, before fetching resumes.

    Revoked: wait until the batch in flight is in the register and published, so the next owner starts
    after it. Assigned: publish what the outbox still holds (a crashed owner's outputs go out before
    the new owner's), then start each partition where the register has read to — in the same log.
    """

    def __init__(self, processor: RegisterProcessor) -> None:
        self.processor = processor

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self.processor.in_flight:
            await self.processor.finished()
            await self.processor.settle()  # while the partitions are still ours

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        p = self.processor
        p.stats.assigned = len(p.consumer.assignment()) if p.consumer is not None else 0
        p.stats.assigned_at = time.time()
        if not assigned or p.consumer is None:
            return
        # aiokafka starts fetching the new partitions while this runs; paused, nothing fetched from
        # where it reset them is handed out before they are moved to the register's offsets.
        p.consumer.pause(*assigned)
        try:
            try:
                await p.relay.drain()
            except (RegisterUnavailable, KafkaError) as exc:
                log.error("outbox not drained on assignment, the next batch will: %s", exc)
            try:
                await p.resume_from_register(assigned)
            except (
                Exception
            ) as exc:  # the register or broker failed: Kafka's offsets are never ahead
                p.stats.incidents.append(
                    {"kind": "offsets_unchecked", "detail": str(exc)[:200], "at": time.time()}
                )
                log.error(
                    "offsets not checked against the register, reading from Kafka's committed "
                    "offsets (what was registered is acknowledged as a duplicate): %s",
                    exc,
                )
        finally:
            p.consumer.resume(*assigned)


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
        self.metrics = Metrics(self.lag_by_partition)
        self.stats = ProcessorStats()
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.pipeline = Pipeline(register, names, apply_config, handlers)
        self._stopping = asyncio.Event()
        self.in_flight = asyncio.Lock()  # held during a batch's register transaction
        # the last batch's publish (and offset commit, when due), run beside the next batch's write
        self._finishing: asyncio.Task[None] | None = None
        self.log_ids: dict[str, str] = {}  # topic -> the log being read (streams/log_identity.py)
        self._ahead: asyncio.Task[Fetched | None] | None = None  # the next batch, prefetched
        self._failed_batch: Fetched | None = None  # the batch `_batch_failed` seeks back over
        self._uncommitted: dict[TopicPartition, int] = {}  # published, not yet committed in Kafka
        # next offset per partition the register holds, published or not (`stats.committed` follows
        # the publish)
        self._registered: dict[tuple[str, int], int] = {}
        self._kafka_committed_at = -math.inf
        self._collected_at = time.monotonic()  # the last full collection (`_collect_when_due`)
        # Set while no batch is in the register or once its write began: the next batch decodes then
        self._decode_now = asyncio.Event()
        self._decode_now.set()
        self.pipeline.on_write = self._decode_now.set
        self._specs = {names(spec): spec for spec in INPUTS}
        self._empty_behind: deque[float] = deque(maxlen=EMPTY_BEHIND_LIMIT)  # when (monotonic)
        self.steps = Steps()  # where the loop waits now: the watchdog names it (streams.watchdog)
        self._order = {names(spec): i for i, spec in enumerate(INPUTS)}
        # The retry policies, built once: each one built per batch left a cycle of objects behind
        # for the rarely run full collection (`start`)
        self._batch_policy = retrying.batches(
            RegisterUnavailable, config.retry_backoff_max_s, self._batch_failed
        )
        self._publish_policy = retrying.publishing(
            (KafkaError, RegisterUnavailable),
            config.retry_backoff_max_s,
            self._publish_failed,
            lambda seconds: retrying.until(self._stopping, seconds),
        )

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
            bootstrap_servers=c.bootstrap,
            acks="all",
            enable_idempotence=c.idempotence,
            linger_ms=0,  # the publisher sends whole batches it built itself: nothing to wait for
            # a batch the publisher builds is never larger than one request may be, so a record over
            # the limit is refused here (MessageSizeTooLargeError), as the broker would refuse it
            max_batch_size=min(256 * 1024, c.max_request_size),
            max_request_size=c.max_request_size,
            **c.client_options,
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
            **c.client_options,
        )
        self.publisher = Publisher(self.producer, c.max_request_size)
        self.relay = Relay(
            self.register,
            self.publisher,
            c.outbox_mark_interval_s,
            incident=lambda kind, topic, detail: self.pipeline.outputs().incident(
                kind, topic, detail
            ),
        )
        try:  # outputs a crash left unsent go out before anything new
            await self.relay.drain()
        except (RegisterUnavailable, KafkaError) as exc:
            log.error("outbox not drained at start, the first batch will: %s", exc)
        self.consumer.subscribe(list(self._specs), listener=_Rebalance(self))
        await self.consumer.start()

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
        costs no wall time of its own; a batch the register could not take discards that prefetched
        one, seeks back and is fetched again after a backoff (`streams.retrying.batches`).
        """
        assert self.consumer is not None
        try:
            while not self._stopping.is_set():
                await self._batch_policy(self._next_batch)
        finally:
            if self._ahead is not None:
                await _discard(self._ahead)
                self._ahead = None
            await self.finished()
            await self.settle()

    async def _next_batch(self) -> None:
        """One batch through steps 1-5 (its steps 6-7 go on as a task), the next one prefetched.

        Raises:
            RegisterUnavailable: the register did not take it; `_batch_failed` seeks back over it.
        """
        assert self.consumer is not None
        if self._stopping.is_set():  # stopped while waiting to retry
            return
        self.steps.enter(LOOP, FETCH)
        fetched = await (self._ahead or self.fetch())
        self._ahead = asyncio.create_task(self.fetch())
        if fetched is None:
            self.stats.empty_fetches += 1
            self._short_while_behind(0)
            self.steps.enter(LOOP, IDLE_COMMIT)
            await self._commit_when_idle()
            return
        self._short_while_behind(len(fetched.decoded) + len(fetched.rejected))
        try:
            await self.process(fetched, wait=False)
        except RegisterUnavailable as exc:
            self.stats.failed(f"register unavailable: {exc}")
            self._failed_batch = fetched
            raise
        self._grow_batches()
        self._collect_when_due()

    def _collect_when_due(self) -> None:
        """A full collection, at most every `FULL_COLLECTION_EVERY_S` (a few tens of ms: the heap the
        worker started with is frozen, `start`)."""
        now = time.monotonic()
        if now - self._collected_at >= FULL_COLLECTION_EVERY_S:
            gc.collect()
            self._collected_at = time.monotonic()

    async def _batch_failed(self, state: RetryCallState) -> None:
        """Before the wait for a failed batch's next attempt: say so, cut the batches down, and seek
        back over the failed batch and the one prefetched after it."""
        assert self.consumer is not None
        fetched, self._failed_batch = self._failed_batch, None
        log.error(
            "batch not committed, will retry in %.1f s: %s",
            retrying.next_delay(state),
            retrying.failure(state),
        )
        if fetched is not None:
            self._shrink_batches(sum(len(r) for r in fetched.batch.values()))
        stale = await _discard(self._ahead) if self._ahead is not None else None
        self._ahead = None
        for undone in (stale, fetched):  # the failed batch last: its offsets are earlier
            for tp, records in undone.batch.items() if undone else ():
                self.consumer.seek(tp, records[0].offset)
        self.steps.enter(LOOP, BACKOFF)

    def _shrink_batches(self, failed: int) -> None:
        """A batch the register could not take is fetched again at half its size, down to one
        record: a batch too large for a statement timeout, or one the register cannot hold, then
        still makes progress (one record at a time at worst) instead of failing whole forever."""
        smaller = max(1, failed // 2)
        if smaller < (self.stats.batch_limit or self.config.max_records):
            self.stats.batch_limit = smaller
            log.warning("batches cut to %d records after a failed batch of %d", smaller, failed)

    def _grow_batches(self) -> None:
        """After a batch the register took, double the cut-down batch size, back to the full one."""
        limit = self.stats.batch_limit
        if limit is None:
            return
        limit *= 2
        if limit >= self.config.max_records:
            self.stats.batch_limit = None
            log.info("batches back to their full size of %d records", self.config.max_records)
        else:
            self.stats.batch_limit = limit

    async def fetch(self) -> Fetched | None:
        """Steps 1-2, fetch and decode: the next records from the broker, each decoded or rejected;
        None if none."""
        assert self.consumer is not None
        started = time.perf_counter()
        batch = await self.consumer.getmany(
            timeout_ms=self.config.poll_timeout_ms,
            max_records=self.stats.batch_limit or self.config.max_records,
        )
        if not batch:
            return None
        decoded: list[Decoded] = []
        rejected: list[Rejected] = []
        hurry = False
        if not self._decode_now.is_set():
            try:  # decoded while the batch before is written: its longest waits on the database
                await self._decode_now.wait()
            except asyncio.CancelledError:
                hurry = True  # the records are taken: decode and return them (see below)
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
        for tp in sorted(batch, key=lambda tp: self._order[tp.topic]):
            spec = self._specs[tp.topic]
            for i, rec in enumerate(batch[tp], 1):
                source = Source(
                    tp.topic, tp.partition, rec.offset, rec.key, rec.value, rec.timestamp
                )
                item = decode(source, spec)
                (decoded if isinstance(item, Decoded) else rejected).append(item)
                if i % DECODE_SLICE == 0 and not hurry:
                    try:  # let the batch in the register go on while this one is decoded
                        await asyncio.sleep(0)
                    except asyncio.CancelledError:
                        # The records are taken from the consumer: finish and return them, so the
                        # caller (`_discard`) can seek back over them.
                        hurry = True
                        task = asyncio.current_task()
                        if task is not None:
                            task.uncancel()
        self.pipeline.step("fetch", started)
        return Fetched(batch, decoded, rejected)

    async def process(self, fetched: Fetched, *, wait: bool = True) -> None:
        """Run one fetched batch through the remaining steps.

        1-2. fetch, decode — done by `fetch`: every record to a model or a `Rejected`;
        3-5. load, handle, write — `Pipeline.run`: one register transaction with the rows, the
           consumed offsets and every output (the outbox row);
        6. publish — the relay publishes the outbox row, retrying until the broker has it;
        7. commit — Kafka offsets, always last and at most once per `kafka_commit_interval_s`
           (`commit_kafka_offsets`: the register's own offsets are the ones that count).

        A crash after step 5 loses nothing: the outbox row is published at the next start.

        Steps 6-7 run as a task after the batch before's (`finished`), so a batch's outputs go out
        after that one's, and its offsets are marked for commit after them; a batch committed while
        the one before is still being published waits for it, so at most one is pending. Without
        `wait` the call returns once the register committed the batch: the worker's loop runs the
        next batch's steps 3-5 while this one is published.

        Raises:
            RegisterUnavailable: steps 3-5 failed; nothing was written. Seek back and retry.
        """
        assert self.consumer is not None
        if self._finishing is not None and self._finishing.done():
            self._finishing.result()  # a failure in the batch before's publish stops the worker
        batch = fetched.batch
        offsets = {
            (tp.topic, tp.partition): records[-1].offset + 1 for tp, records in batch.items()
        }
        self.steps.enter(LOOP, IN_FLIGHT)
        async with self.in_flight:
            # Steps 3-5
            self.steps.enter(LOOP, WRITE)
            began = time.perf_counter()
            self._decode_now.clear()
            try:
                result = await self.pipeline.run(
                    fetched.decoded, fetched.rejected, offsets, self.log_ids
                )
            finally:
                self._decode_now.set()
            self._registered.update(offsets)
            seconds = time.perf_counter() - began
            before = self._finishing
            if before is not None and not before.done():
                # At most one batch waits to be published: a loop that ran ahead would queue ever
                # smaller batches behind a slower publisher; waiting lets the next batch grow instead.
                self.steps.enter(LOOP, BEFORE)
                await asyncio.shield(before)
            self._finishing = asyncio.create_task(
                self._finish(before, fetched, offsets, result, seconds)
            )
            self._finishing.add_done_callback(_retrieved)
        if wait:
            await self.finished()

    async def finished(self) -> None:
        """Wait until every batch the register committed is published and its offsets committed."""
        if self._finishing is not None:
            await asyncio.shield(self._finishing)

    async def _finish(
        self,
        before: asyncio.Task[None] | None,
        fetched: Fetched,
        offsets: dict[tuple[str, int], int],
        result: BatchResult,
        seconds: float,
    ) -> None:
        """Steps 6-7 of a batch committed in the register, after the batch before's (`before`)."""
        assert self.consumer is not None
        if before is not None:
            await before
        try:
            await self._finish_one(fetched, offsets, result, seconds)
        finally:
            self.steps.leave(PUBLISHING)

    async def _finish_one(
        self,
        fetched: Fetched,
        offsets: dict[tuple[str, int], int],
        result: BatchResult,
        seconds: float,
    ) -> None:
        assert self.consumer is not None
        batch = fetched.batch
        # Step 6 (its time overlaps the next batch's steps 3-5)
        self.steps.enter(PUBLISHING, PUBLISH)
        started = time.perf_counter()
        published = await self._publish(result.outbox_id, result.outputs)
        self.pipeline.step("publish", started)
        # Step 7 (also when stopping before the broker took the outputs: the register has the batch,
        # and its outbox row goes out at the next start; Kafka's lag tools should not show it)
        self._uncommitted.update({TopicPartition(t, p): o for (t, p), o in offsets.items()})
        if not published:
            return
        if time.monotonic() - self._kafka_committed_at >= self.config.kafka_commit_interval_s:
            self.steps.enter(PUBLISHING, COMMIT)
            await self.commit_kafka_offsets()
        self.stats.committed.update(offsets)
        self.stats.succeeded()
        self._count(batch, result.counts)
        records: dict[str, int] = {}
        for tp, got in batch.items():
            records[tp.topic] = records.get(tp.topic, 0) + len(got)
        self.metrics.batch(records, result.outputs, seconds)

    async def _commit_when_idle(self) -> None:
        """Commit the offsets still pending when a poll found nothing: an idle worker would otherwise
        leave the last batches' offsets uncommitted in Kafka until the next record comes."""
        finishing = self._finishing
        if not self._uncommitted or (finishing is not None and not finishing.done()):
            return
        if time.monotonic() - self._kafka_committed_at >= self.config.kafka_commit_interval_s:
            await self.commit_kafka_offsets()

    async def settle(self) -> None:
        """Mark sent the outbox rows published and not yet marked, then commit Kafka's offsets: both
        wait for their intervals while the worker runs, and are done now, before its partitions go
        to another worker or it stops."""
        await self.relay.flush()
        await self.commit_kafka_offsets()

    async def commit_kafka_offsets(self) -> None:
        """Commit in Kafka the offsets of the batches published since the last commit, for the
        partitions still assigned.

        The register's offsets, written with each batch, are the ones a worker starts from; Kafka's
        serve what does not read the register (the group's lag in Kafka's own tools, a start when the
        register cannot be read, which then acknowledges what it registered as duplicates). So the
        worker commits them after a batch at most once per `kafka_commit_interval_s`, and when its
        partitions are revoked or it stops: a commit after every batch held up the next batch's
        publishing, and put the latency run's p99 over its goal.
        """
        if not self._uncommitted or self.consumer is None:
            return
        assigned = self.consumer.assignment()
        offsets = {tp: o for tp, o in self._uncommitted.items() if tp in assigned}
        self._uncommitted = {}
        self._kafka_committed_at = time.monotonic()
        if not offsets:
            return
        started = time.perf_counter()
        try:
            await self.consumer.commit(offsets)
        except KafkaError as exc:  # a rebalance or a broker hiccup; the register's stay exact
            log.warning("Kafka offset commit refused, the register has the offsets: %s", exc)
            for tp, offset in offsets.items():  # tried again at the next commit, if still ours
                self._uncommitted.setdefault(tp, offset)
        self.pipeline.step("commit", started)

    def _short_while_behind(self, got: int) -> None:
        """A poll brought `got` records: if the broker said the partitions hold more than this worker
        has registered (a batch still being published counts: its records were fetched) and the poll
        brought nothing or under 1/`SHORT_POLL_RATIO` of what it could have (`_is_short`), note it;
        after `EMPTY_BEHIND_LIMIT` within `EMPTY_BEHIND_WINDOW_S`, ask the broker to wait longer
        (`widen_fetch_wait`). Not "in a row": while the wait is just too short, a fetch now and then
        still brings records.

        Tansu's storage lists every batch of a partition on each fetch and stops listing when the
        fetch's wait is over; once a partition holds more batches than it lists in that time, every
        fetch from behind comes back empty, without an error, the high watermark ahead, and the
        consumer asks again forever (the soak's stall at minute 54).
        """
        consumer = self.consumer
        if consumer is None or got * SHORT_POLL_RATIO >= self._batch_size():
            return  # a poll that full is never short, however far behind
        paused = consumer.paused()
        behind = sum(
            lag
            for (topic, part), lag in self.lag_by_partition(registered=True).items()
            if TopicPartition(topic, part) not in paused
        )
        behind -= got  # the records this poll brought are not registered yet
        if behind <= 0 or not self._is_short(got, behind):
            return
        now = time.monotonic()
        self._empty_behind.append(now)
        if (
            len(self._empty_behind) == EMPTY_BEHIND_LIMIT
            and now - self._empty_behind[0] <= EMPTY_BEHIND_WINDOW_S
        ):
            self._empty_behind.clear()
            self.widen_fetch_wait(behind)

    def _is_short(self, got: int, behind: int) -> bool:
        """A poll that brought nothing, or under 1/`SHORT_POLL_RATIO` of the batch it could have
        brought with `behind` records waiting: a broker that lists only some of a partition's batches
        within the wait answers one or two at a time."""
        return got * SHORT_POLL_RATIO < min(behind, self._batch_size())

    def _batch_size(self) -> int:
        """The most records a poll may bring now."""
        return self.stats.batch_limit or self.config.max_records

    def widen_fetch_wait(self, behind: int) -> bool:
        """Ask the broker to wait four times as long per fetch (up to `FETCH_WAIT_MAX_MS`); True if it
        was raised. A broker with records to give answers at once whatever the wait (Kafka does), so
        only a poll that finds nothing waits longer.
        """
        # aiokafka reads the wait from its fetcher for every request; it has no public setter
        fetcher = getattr(self.consumer, "_fetcher", None)
        now = getattr(fetcher, "_fetch_max_wait_ms", None)
        if not isinstance(now, int) or now >= FETCH_WAIT_MAX_MS:
            return False
        wider = min(FETCH_WAIT_MAX_MS, max(now * 4, 10))
        fetcher._fetch_max_wait_ms = wider  # type: ignore[union-attr]
        self.stats.fetch_wait_ms = wider
        log.warning(
            "polls came back empty or nearly so %d times within %.0f s with %d records behind: the "
            "broker's fetch wait raised from %d to %d ms (a broker that lists a partition within the "
            "wait, as Tansu does, finds nothing when it runs out)",
            EMPTY_BEHIND_LIMIT,
            EMPTY_BEHIND_WINDOW_S,
            behind,
            now,
            wider,
        )
        return True

    async def reseek(self) -> int:
        """Move every assigned partition to the offset the register has read to, dropping whatever
        the consumer fetched, buffered or waits for: the watchdog's remedy (`streams.watchdog`) when
        fetches bring nothing while the log's end is ahead. Returns how many partitions moved.

        Raises:
            RegisterUnavailable: the register's offsets could not be read; nothing moved.
        """
        assert self.consumer is not None
        async with self.register.unit_of_work(rollback=True) as uow:  # reads only
            offsets = await uow.consumer_offsets(self.config.group_id)
        moved = 0
        for tp in self.consumer.assignment():
            found = offsets.get((tp.topic, tp.partition))
            if found is not None:
                self.consumer.seek(tp, found[0])
                moved += 1
        return moved

    def lag_by_partition(self, *, registered: bool = False) -> dict[tuple[str, int], int]:
        """Records in each assigned partition not yet committed (from the last fetch's high
        watermarks); empty before the first fetch. With `registered`, a batch in the register and
        still being published counts as done too: its records were fetched."""
        consumer = self.consumer
        if consumer is None:
            return {}
        found = {}
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is not None:
                key = (tp.topic, tp.partition)
                done = self.stats.committed.get(key, 0)
                if registered:
                    done = max(done, self._registered.get(key, 0))
                found[key] = max(0, high - done)
        return found

    def _publish_failed(self, state: RetryCallState) -> None:
        exc = retrying.failure(state)
        self.stats.failed(f"outputs not published: {exc}")
        log.error(
            "outputs kept in the outbox, publishing again in %.1f s: %s",
            retrying.next_delay(state),
            exc,
        )

    async def _publish(self, outbox_id: int | None, outputs: list[Outgoing]) -> bool:
        """Publish a committed batch's outputs, retrying (and draining the outbox first) until the
        broker has them (`streams.retrying.publishing`); False only if the worker is stopping first."""

        async def attempt(state: RetryCallState) -> bool:
            if state.attempt_number > 1 and self._stopping.is_set():
                return False  # the wait for this attempt was ended by the stop
            await self.relay.publish(outbox_id, outputs)
            return True

        async for tried in self._publish_policy:  # publishes run one after another (`_finish`)
            with tried:
                return await attempt(tried.retry_state)
        raise AssertionError("unreachable: the policy retries forever")

    async def resume_from_register(self, assigned: set[TopicPartition]) -> None:
        """Start each assigned partition where the register has read to, if that offset belongs to the
        log being read. When it does not — the topic was created again, or the broker lost its log
        (the embedded broker keeps it in memory) — read the partition from its beginning: ids already
        processed are acknowledged as duplicates, new ones registered; say so (log, alert, /health).
        Where the log's identity is unknown (offsets stored before it was recorded, or a broker
        without topic ids), an offset beyond the log's end tells the same.
        """
        assert self.consumer is not None
        topics = sorted({tp.topic for tp in assigned})
        try:
            self.log_ids.update(
                await log_ids(self.config.bootstrap, topics, self.config.admin_options)
            )
        except LogIdentityUnknown as exc:
            log.warning("cannot tell which log is read, checking offsets only: %s", exc)
        async with self.register.unit_of_work(rollback=True) as uow:  # reads only
            offsets = await uow.consumer_offsets(self.config.group_id)
        stored = {TopicPartition(topic, part): found for (topic, part), found in offsets.items()}
        mine = [tp for tp in assigned if tp in stored]
        if not mine:
            return
        ends = await self.consumer.end_offsets(mine)
        starts = await self.consumer.beginning_offsets(mine)
        alerts = []
        for tp in sorted(mine):
            offset, stored_log = stored[tp]
            log_now = self.log_ids.get(tp.topic)
            identified = bool(stored_log and log_now)
            if identified and stored_log != log_now:
                problem = f"offset {offset} was read from log {stored_log}, this is log {log_now}"
                kind = "log_replaced"
            elif not identified and offset > ends[tp]:
                # Only when the log's identity is unknown: Tansu's ListOffsets answers the last
                # batch's base offset + 1, which under-reports the end of the log it does know.
                problem = f"offset {offset} is beyond the log's end {ends[tp]}"
                kind = "log_replaced"
            elif offset < starts[tp]:
                problem = f"offsets {offset}..{starts[tp] - 1} were deleted before they were read"
                kind = "messages_deleted_unread"
            else:
                committed = await self.consumer.committed(tp)
                if committed is None or committed != offset:
                    self.consumer.seek(tp, offset)
                self.stats.committed[(tp.topic, tp.partition)] = offset
                self._registered[(tp.topic, tp.partition)] = offset
                continue
            self.consumer.seek(tp, starts[tp])
            self.stats.committed[(tp.topic, tp.partition)] = starts[tp]
            self._registered[(tp.topic, tp.partition)] = starts[tp]
            detail = f"{tp.topic}/{tp.partition}: {problem}; reading it from offset {starts[tp]}"
            log.error("not the log the register read: %s", detail)
            self.stats.incidents.append({"kind": kind, "detail": detail, "at": time.time()})
            alerts.append(self.pipeline.outputs().incident(kind, tp.topic, detail))
        if alerts:
            try:
                await self.relay.enqueue(alerts)
            except (RegisterUnavailable, KafkaError) as exc:
                log.error("alert not yet published: %s", exc)

    def _count(
        self, batch: dict[TopicPartition, list[ConsumerRecord]], counts: dict[str, int]
    ) -> None:
        s = self.stats
        s.batches += 1
        s.messages += sum(len(r) for r in batch.values())
        for k, v in counts.items():
            s.outcomes[k] = s.outcomes.get(k, 0) + v
        s.last_batch_at = time.time()
        s.empty_fetches = 0
        if self.on_batch is not None:
            self.on_batch(s)
