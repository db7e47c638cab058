"""`--latency`: reports at a steady rate through the running worker; how long each takes to be registered
and answered. Goal: p99 < 200 ms for both.

- The worker is the real `reghub.wiring.processor` in this process, into a fresh PostgreSQL database
  (or `--database-url`), started and assigned its partitions before the first report is sent.
- A producer (same process, its own aiokafka client) sends `--rate` reports per second for
  `--seconds`, paced in ticks of 10 ms: at each tick it sends the reports due by then (so 20 per
  tick at 2000/s) as one batch per partition (`create_batch`/`send_batch`), never waiting for
  acknowledgements in the loop. A report's produce time is the moment its tick's batches were
  handed to the producer, kept by report id (the producer and both
  measuring points live in this process, on one monotonic clock); the record keeps its synthetic
  timestamp (paid time + 2 s, in 2024, where the reference data has scales), so no report is late.
- produce → committed row: the pipeline's `run` (load, handle, write in one register transaction)
  is wrapped; when it returns the transaction is committed, and every report of the batch is
  stamped with that moment.
- produce → decision: a bare consumer (own group) of the decisions topic, assigned before the first
  report is sent; a decision is matched to its report by `report_id` and stamped with the moment
  `getmany` handed it over (local receive time, so the consumer's fetch wait is included).

p50 / p99 / max are printed for both; the reports still unaccounted for 30 s after the last send
are counted, not waited for. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import murmur2

from reghub import synthetic, wiring
from reghub.broker import EmbeddedBroker, create_topics
from reghub.settings import Settings
from sinks.migrations import upgrade
from sinks.register import Register, make_engine
from streams.topics import DECISIONS, DISPENSINGS, TopicNames

TICK_S = 0.010
DRAIN_S = 30.0
GOAL_MS = 200.0


@dataclass
class Latencies:
    """Seconds from produce to each measuring point, one entry per report."""

    committed: list[float] = field(default_factory=list)
    decided: list[float] = field(default_factory=list)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summary(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    p99 = percentile(ms, 99)
    verdict = "within" if p99 < GOAL_MS else "over"
    return (
        f"p50 {percentile(ms, 50):7.1f} ms   p99 {p99:7.1f} ms   max {max(ms, default=0):7.1f} ms"
        f"   ({len(ms)} reports; p99 {verdict} the {GOAL_MS:.0f} ms goal)"
    )


async def pace(
    bootstrap: str, topic: str, reports: list[tuple[bytes, bytes, int]], ids: list[str],
    rate: int, sent_at: dict[str, float], ends: dict[int, int],
) -> float:  # fmt: skip
    """Send `reports` at `rate` per second, each tick's reports as one batch per partition (keyed and
    partitioned as the default partitioner would); returns the seconds the sending took and fills
    `ends` with each partition's end offset as the broker acknowledged it."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    try:
        parts = sorted(await producer.partitions_for(topic))
        futures: list[Any] = []
        began = time.perf_counter()
        sent = 0
        while sent < len(reports):
            due = min(len(reports), int((time.perf_counter() - began) * rate) + 1)
            builders: dict[int, Any] = {}
            tick: list[str] = []
            while sent < due:
                key, value, ts = reports[sent]
                p = parts[(murmur2(key) & 0x7FFFFFFF) % len(parts)]
                builder = builders.get(p) or builders.setdefault(p, producer.create_batch())
                builder.append(key=key, value=value, timestamp=ts)
                tick.append(ids[sent])
                sent += 1
            now = time.perf_counter()
            for report_id in tick:
                sent_at[report_id] = now
            for p, builder in builders.items():
                count = builder.record_count()
                futures.append(await producer.send_batch(builder, topic, partition=p))
                futures[-1].add_done_callback(
                    lambda f, p=p, count=count: ends.__setitem__(
                        p, max(ends.get(p, 0), f.result().offset + count)
                    )
                )
            next_tick = began + (int((time.perf_counter() - began) / TICK_S) + 1) * TICK_S
            await asyncio.sleep(max(0.0, next_tick - time.perf_counter()))
        seconds = time.perf_counter() - began
        await asyncio.gather(*futures)
        return seconds
    finally:
        await producer.stop()


async def run(args: argparse.Namespace) -> None:
    from bench.dispensing_throughput import SESSION_TIMEOUT_MS, database

    rate, seconds = args.rate, args.seconds
    n = rate * seconds
    run_id = uuid.uuid4().hex[:8]
    rng = random.Random(args.seed)
    reports = synthetic.encoded_reports(
        n,
        synthetic.persons(args.persons, rng),
        synthetic.pharmacies(),
        synthetic.DEMO_START,
        timedelta(days=args.days),
        seed=args.seed,
        prefix=f"l{run_id}-",
    )
    ids = [f"l{run_id}-{i}" for i in range(n)]  # the report ids encoded_reports gave
    print(
        f"latency: {rate} reports/s for {seconds} s ({n} reports), {args.partitions} partitions, "
        f"ticks of {TICK_S * 1000:.0f} ms"
    )
    broker = EmbeddedBroker()
    broker.start()
    try:
        prefix = f"lat{run_id}."
        names = TopicNames(prefix)
        await create_topics(broker.bootstrap, names, args.partitions)
        topic = names(DISPENSINGS)
        async with database(args.database_url) as url:
            settings = Settings(
                kafka_bootstrap=broker.bootstrap,
                kafka_idempotence=False,
                database_url=url,
                topic_prefix=prefix,
                consumer_group=f"{prefix}register",
                kafka_session_timeout_ms=SESSION_TIMEOUT_MS,
                pseudonym_key="bench-pseudonym-key-0123456789",
                report_grace_seconds=10**10,
                batch_max_records=args.max_records,
            )
            register = Register(make_engine(url))
            try:
                await upgrade(register.engine)
                lat = await measure(settings, register, names, topic, reports, ids, rate)
            finally:
                await register.close()
    finally:
        broker.stop()
    print(f"produce → committed row:   {summary(lat.committed)}")
    print(f"produce → decision read:   {summary(lat.decided)}")
    missing_c, missing_d = n - len(lat.committed), n - len(lat.decided)
    if missing_c or missing_d:
        print(
            f"  note: {missing_c} reports without a committed row and {missing_d} without a "
            f"decision {DRAIN_S:.0f} s after the last send"
        )


async def measure(
    settings: Settings,
    register: Register,
    names: TopicNames,
    topic: str,
    reports: list[tuple[bytes, bytes, int]],
    ids: list[str],
    rate: int,
) -> Latencies:
    """Start the worker and the decisions reader, send at `rate`, collect both latencies."""
    from bench.dispensing_throughput import StepTimer, assigned_at

    lat = Latencies()
    sent_at: dict[str, float] = {}
    processor = wiring.processor(settings, register)
    pipeline_run = processor.pipeline.run

    async def stamped_run(decoded: list[Any], *rest: Any, **kw: Any) -> Any:
        result = await pipeline_run(decoded, *rest, **kw)
        now = time.perf_counter()
        for d in decoded:
            at = sent_at.get(d.message_id) if d.source.topic == topic else None
            if at is not None:
                lat.committed.append(now - at)
        return result

    processor.pipeline.run = stamped_run  # type: ignore[method-assign]
    decisions = AIOKafkaConsumer(
        names(DECISIONS),
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"bench-decisions-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=1_000,
        fetch_max_wait_ms=10,
    )
    await processor.start()
    timer = StepTimer()
    processor.pipeline.on_step = timer
    await decisions.start()
    worker = asyncio.create_task(processor.run())
    reading = True

    async def read_decisions() -> None:
        while reading:
            batch = await decisions.getmany(timeout_ms=100)
            now = time.perf_counter()
            for records in batch.values():
                for r in records:
                    at = sent_at.get(orjson.loads(r.value)["report_id"])
                    if at is not None:
                        lat.decided.append(now - at)

    reader = asyncio.create_task(read_decisions())
    try:
        await assigned_at(processor.consumer)  # type: ignore[arg-type]
        await assigned_at(decisions)
        await asyncio.sleep(0.5)  # the first fetches are under way
        ends: dict[int, int] = {}
        sending = await pace(settings.kafka_bootstrap, topic, reports, ids, rate, sent_at, ends)
        print(f"  sent in {sending:.2f} s ({len(reports) / sending:,.0f} reports/s)")
        deadline = time.perf_counter() + DRAIN_S
        while time.perf_counter() < deadline and (
            len(lat.committed) < len(reports) or len(lat.decided) < len(reports)
        ):
            if worker.done():
                worker.result()
            await asyncio.sleep(0.05)
    finally:
        reading = False
        await asyncio.gather(reader, return_exceptions=True)
        await processor.stop()
        await asyncio.gather(worker, return_exceptions=True)
        await processor.close()
        await decisions.stop()
    s = processor.stats
    if len(lat.committed) < len(reports):
        read = {p: o for (t, p), o in s.committed.items() if t == topic}
        print(f"  note: the worker read to offsets {read} of the log ends {ends}")
    print(f"  the worker: {s.batches} batches, mean {s.messages / max(s.batches, 1):,.0f} records")
    per = {k: 1000 * v / max(s.batches, 1) for k, v in timer.seconds.items()}
    print("  per batch (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in per.items()))
    outcomes = dict(s.outcomes)
    if set(outcomes) - {"registered"}:
        print(f"  note: outcomes other than registered: {outcomes}")
    return lat
