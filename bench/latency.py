"""`--latency`: reports at a steady rate through the running worker; how long each takes to be registered
and answered. Goal: p99 < 200 ms for both.

- The worker is the real `reghub.wiring.processor` in this process, into a fresh PostgreSQL database
  (or `--database-url`), started and assigned its partitions before the first report is sent.
- The producer runs in a spawned process (so the worker's CPU-bound steps cannot delay the pacing,
  nor the pacing the worker): it generates its `--rate` x `--seconds` reports, then sends them
  paced in ticks of 10 ms: at each tick the reports due by then (20 per tick at 2000/s) as one
  batch per partition (`create_batch`/`send_batch`, partitioned as the default partitioner would),
  never waiting for acknowledgements in the loop. A report's produce time is the moment its tick's
  batches were handed to the client, on the machine's monotonic clock (`time.perf_counter`, one
  clock for every process on Linux); the producer sends them back by report id when it is done.
  Records keep their synthetic timestamps (paid time + 2 s, in 2024, where the reference data has
  scales), so no report is late.
- produce → committed row: the pipeline's `run` (load, handle, write in one register transaction)
  is wrapped; when it returns the transaction is committed, and every report of the batch is
  stamped with that moment.
- produce → decision: a bare consumer (own group) of the decisions topic, assigned before the first
  report is sent; a decision is matched to its report by `report_id` and stamped with the moment
  `getmany` handed it over (local receive time, so the consumer's fetch wait is included).

p50 / p99 / max are printed for both, and the worker's batches (count, mean size, mean time per
step). Reports still without a row or a decision 30 s after the last send are counted, not waited
for. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import queue
import random
import time
import traceback
import uuid
from datetime import timedelta
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import murmur2

from bench.harness.broker import SESSION_TIMEOUT_MS, assigned_at
from bench.harness.register import database
from bench.harness.timing import StepTimer
from reghub import synthetic, wiring
from reghub.broker import EmbeddedBroker, create_topics
from reghub.settings import Settings
from sinks.migrations import upgrade
from sinks.register import Register
from streams.topics import DECISIONS, DISPENSINGS, TopicNames

TICK_S = 0.010
DRAIN_S = 30.0
GOAL_MS = 200.0


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


# -- the producer (a spawned process) -------------------------------------------------------------


def _producer_main(bootstrap: str, topic: str, plan: dict[str, Any], out: Any) -> None:
    try:
        out.put(("done", *asyncio.run(_pace(bootstrap, topic, plan, out))))
    except BaseException:
        out.put(("error", traceback.format_exc()))
        raise SystemExit(1) from None


async def _pace(
    bootstrap: str, topic: str, plan: dict[str, Any], out: Any
) -> tuple[float, dict[int, int], dict[str, float]]:
    """Generate the reports, then send them at plan["rate"] per second; returns the seconds the
    sending took, each partition's end offset as acknowledged, and each report's produce time."""
    n, prefix = plan["n"], plan["prefix"]
    rng = random.Random(plan["seed"])
    reports = synthetic.encoded_reports(
        n,
        synthetic.persons(plan["persons"], rng),
        synthetic.pharmacies(),
        synthetic.DEMO_START,
        timedelta(days=plan["days"]),
        seed=plan["seed"],
        prefix=prefix,
    )
    out.put(("generated",))
    rate = plan["rate"]
    sent_at: dict[str, float] = {}
    ends: dict[int, int] = {}

    def acked(p: int, count: int) -> Any:
        return lambda f: ends.__setitem__(p, max(ends.get(p, 0), f.result().offset + count))

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=0, max_batch_size=1024 * 1024
    )
    await producer.start()
    try:
        parts = sorted(await producer.partitions_for(topic))
        futures: list[Any] = []

        async def send(builder: Any, p: int) -> None:
            future = await producer.send_batch(builder, topic, partition=p)
            future.add_done_callback(acked(p, builder.record_count()))
            futures.append(future)

        began = time.perf_counter()
        sent = 0
        while sent < n:
            due = min(n, int((time.perf_counter() - began) * rate) + 1)
            builders: dict[int, Any] = {}
            first = sent
            while sent < due:
                key, value, ts = reports[sent]
                p = parts[(murmur2(key) & 0x7FFFFFFF) % len(parts)]
                if p not in builders:
                    builders[p] = producer.create_batch()
                if builders[p].append(key=key, value=value, timestamp=ts) is None:  # full
                    await send(builders[p], p)
                    builders[p] = producer.create_batch()
                    builders[p].append(key=key, value=value, timestamp=ts)
                sent += 1
            for p, builder in builders.items():
                await send(builder, p)
            now = time.perf_counter()
            for i in range(first, sent):
                sent_at[f"{prefix}{i}"] = now  # the ids encoded_reports gave
            next_tick = began + (int((time.perf_counter() - began) / TICK_S) + 1) * TICK_S
            await asyncio.sleep(max(0.0, next_tick - time.perf_counter()))
        seconds = time.perf_counter() - began
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return seconds, ends, sent_at


# -- the worker and the measuring points (this process) -------------------------------------------


async def run(args: argparse.Namespace) -> None:
    rate, seconds = args.rate, args.seconds
    n = rate * seconds
    run_id = uuid.uuid4().hex[:8]
    plan = {
        "n": n,
        "rate": rate,
        "persons": args.persons,
        "days": args.days,
        "seed": args.seed,
        "prefix": f"l{run_id}-",
    }
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
            register = wiring.register(settings)  # the worker's own engine
            try:
                await upgrade(register.engine)
                await measure(settings, register, names, plan)
            finally:
                await register.close()
    finally:
        broker.stop()


async def measure(
    settings: Settings, register: Register, names: TopicNames, plan: dict[str, Any]
) -> None:
    """Start the worker and the decisions reader, then the producer; print both latencies."""
    topic = names(DISPENSINGS)
    committed_at: dict[str, float] = {}
    decided_at: dict[str, float] = {}
    processor = wiring.processor(settings, register)
    pipeline_run = processor.pipeline.run

    async def stamped_run(decoded: list[Any], *rest: Any, **kw: Any) -> Any:
        result = await pipeline_run(decoded, *rest, **kw)
        now = time.perf_counter()
        for d in decoded:
            if d.source.topic == topic:
                committed_at.setdefault(d.message_id, now)
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
                    decided_at.setdefault(orjson.loads(r.value)["report_id"], now)

    reader = asyncio.create_task(read_decisions())
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(
        target=_producer_main, args=(settings.kafka_bootstrap, topic, plan, out), daemon=True
    )
    try:
        await assigned_at(processor.consumer)  # type: ignore[arg-type]
        await assigned_at(decisions)
        proc.start()
        done: tuple[Any, ...] | None = None
        while done is None:
            if worker.done():
                worker.result()
            try:
                msg = out.get_nowait()
            except queue.Empty:
                if proc.exitcode is not None:
                    raise RuntimeError(f"the producer exited with {proc.exitcode}") from None
                await asyncio.sleep(0.05)
                continue
            if msg[0] == "error":
                raise RuntimeError(f"the producer failed:\n{msg[1]}")
            if msg[0] == "done":
                done = msg
        _, sending, ends, sent_at = done
        n = len(sent_at)
        print(f"  sent in {sending:.2f} s ({n / sending:,.0f} reports/s)")
        deadline = time.perf_counter() + DRAIN_S
        while time.perf_counter() < deadline and (len(committed_at) < n or len(decided_at) < n):
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
        proc.join(10)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
    s = processor.stats
    print(f"  the worker: {s.batches} batches, mean {s.messages / max(s.batches, 1):,.0f} records")
    per = {k: 1000 * v / max(s.batches, 1) for k, v in timer.seconds.items()}
    print("  mean per batch (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in per.items()))
    outcomes = dict(s.outcomes)
    if set(outcomes) - {"registered"}:
        print(f"  note: outcomes other than registered: {outcomes}")
    committed = [committed_at[i] - t for i, t in sent_at.items() if i in committed_at]
    decided = [decided_at[i] - t for i, t in sent_at.items() if i in decided_at]
    print(f"produce → committed row:   {summary(committed)}")
    print(f"produce → decision read:   {summary(decided)}")
    if len(committed) < n or len(decided) < n:
        read = {p: o for (t, p), o in s.committed.items() if t == topic}
        print(
            f"  note: {n - len(committed)} reports without a committed row and "
            f"{n - len(decided)} without a decision {DRAIN_S:.0f} s after the last send; the "
            f"worker read to offsets {read} of the log ends {ends} ({sum(ends.values())} records)"
        )
