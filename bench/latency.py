"""`--latency`: reports at a steady rate through the running worker; how long each takes to be registered
and answered; then the same through Quix Streams → PostgreSQLSink, for the ratio of the two p99s.

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

The peer, after the worker is stopped: Quix Streams → PostgreSQLSink (`bench/peer_quix.py`, its
defaults, or `--quix-commit-interval`) on a dispensings topic of its own under the same broker, fed by
the same producer at the same rate once it has processed one warm-up report (its group join behind
it, as the worker's is). A report's row is committed when the sink's `write` of the batch holding it
returns (psycopg2 commits there); the child sends those moments back. Its p99 is printed beside the
worker's, and `latency p99, reghub decision / quix row: R`. Quix's sink writes at each checkpoint,
every `commit_interval` (5 s by default): with its defaults its rows wait for that.
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
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import murmur2

from bench import peer_quix
from bench.harness.broker import SESSION_TIMEOUT_MS, assigned_at, produce
from bench.harness.register import PG_ADMIN_DSN, database
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


def summary(values: list[float], goal: bool = True) -> str:
    ms = [v * 1000 for v in values]
    p99 = percentile(ms, 99)
    verdict = f"p99 {'within' if p99 < GOAL_MS else 'over'} the {GOAL_MS:.0f} ms goal"
    return (
        f"p50 {percentile(ms, 50):7.1f} ms   p99 {p99:7.1f} ms   max {max(ms, default=0):7.1f} ms"
        f"   ({len(ms)} reports; {verdict if goal else 'the peer'})"
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


async def _produce(
    bootstrap: str, topic: str, plan: dict[str, Any], check: Callable[[], None]
) -> tuple[float, dict[int, int], dict[str, float]]:
    """Run the paced producer in a spawned process until it is done, calling `check` (which raises
    if what is measured has failed) meanwhile; returns what `_pace` returns."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_producer_main, args=(bootstrap, topic, plan, out), daemon=True)
    proc.start()
    try:
        while True:
            check()
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
                _, sending, ends, sent_at = msg
                return sending, ends, sent_at
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)


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
                _, decided = await measure(settings, register, names, plan)
            finally:
                await register.close()
        if not peer_quix.available():
            print(f"  note: no Quix Streams, so no peer: {peer_quix.INSTALL_HINT}")
            return
        quix = await measure_quix(
            broker.bootstrap, prefix, args.partitions, {**plan, "prefix": f"q{run_id}-"},
            args.quix_commit_interval,
        )  # fmt: skip
    finally:
        broker.stop()
    ours, theirs = percentile(decided, 99), percentile(quix, 99)
    print(f"latency p99, reghub decision / quix row: {ours / theirs if theirs else 0:.2f}")


async def measure_quix(
    bootstrap: str,
    prefix: str,
    partitions: int,
    plan: dict[str, Any],
    commit_interval: float | None,
) -> list[float]:
    """Quix Streams → PostgreSQLSink (`bench/peer_quix.py`) on a topic of its own, fed by the same
    paced producer at the same rate once it has processed a warm-up report; per report produce →
    its row committed. Returns those latencies (seconds) and prints them."""
    names = TopicNames(f"{prefix}quix.")
    await create_topics(bootstrap, names, partitions)
    topic = names(DISPENSINGS)
    warm_up = synthetic.encoded_reports(
        1,
        synthetic.persons(1, random.Random(plan["seed"])),
        synthetic.pharmacies(),
        synthetic.DEMO_START,
        timedelta(days=1),
        seed=plan["seed"],
        prefix=f"{plan['prefix']}warm-",
    )
    await produce(bootstrap, topic, warm_up)
    async with database(None) as url:
        peer = peer_quix.LatencyPeer(
            bootstrap, topic, PG_ADMIN_DSN, url.rsplit("/", 1)[1], commit_interval
        )
        try:
            await peer.start()
            sending, _, sent_at = await _produce(bootstrap, topic, plan, peer.poll)
            n = len(sent_at)
            print(f"  quix: sent in {sending:.2f} s ({n / sending:,.0f} reports/s)")
            deadline = time.perf_counter() + DRAIN_S
            while time.perf_counter() < deadline and not sent_at.keys() <= peer.committed_at.keys():
                peer.poll()
                await asyncio.sleep(0.05)
        finally:
            peer.close()
    rows = [peer.committed_at[i] - t for i, t in sent_at.items() if i in peer.committed_at]
    interval = "Quix's default 5 s" if commit_interval is None else f"{commit_interval:g} s"
    print(f"quix produce → committed row: {summary(rows, goal=False)}")
    print(f"  (Quix → PostgreSQLSink, which writes at each checkpoint: commit interval {interval})")
    if len(rows) < n:
        print(
            f"  note: {n - len(rows)} reports without a Quix row {DRAIN_S:.0f} s after the last send"
        )
    return rows


async def measure(
    settings: Settings, register: Register, names: TopicNames, plan: dict[str, Any]
) -> tuple[list[float], list[float]]:
    """Start the worker and the decisions reader, then the producer; print both latencies and
    return them (seconds): produce → committed row, produce → decision read."""
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

    def check() -> None:
        if worker.done():
            worker.result()

    try:
        await assigned_at(processor.consumer)  # type: ignore[arg-type]
        await assigned_at(decisions)
        sending, ends, sent_at = await _produce(settings.kafka_bootstrap, topic, plan, check)
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
    return committed, decided
