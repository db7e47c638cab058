"""Dispensing throughput: N synthetic reports produced, read bare (the ceiling), then by the worker.

Run as `python -m bench.dispensing_throughput [-n 200000] [--partitions 4] [--database-url URL]`.

1. An embedded Tansu broker and the hub topics under a unique prefix, `--partitions` partitions.
2. N reports (`reghub.synthetic`) produced to the dispensings topic, keyed by person, in whole
   batches (`create_batch`/`send_batch`, partitioned as the default partitioner would).
3. The ceiling: a bare aiokafka consumer (own group) reading the topic with `getmany` and
   `orjson.loads`.
4. End to end: the real worker (`reghub.wiring.processor`) into a fresh PostgreSQL database (or
   `--database-url`, e.g. `sqlite+aiosqlite:///…`, or `sqlite` for a temporary file), timed from
   the moment its consumer got its assignment (the group join, several seconds on Tansu, is
   excluded) until the batch that brings it to N messages is committed.

Both consumers are timed the same way (assignment → N records handled). The worker's time is split
per step by wrapping methods of its instances (no product code is changed); figures are printed,
nothing is asserted. `--profile FILE` writes a cProfile of the end-to-end phase (pstats format).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import os
import pstats
import random
import shutil
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import murmur2
from sqlalchemy import func, select

from reghub import synthetic, wiring
from reghub.broker import EmbeddedBroker, create_topics
from reghub.settings import Settings
from sinks import tables
from sinks.migrations import upgrade
from sinks.register import Register, make_engine
from streams.processor import ProcessorStats, RegisterProcessor
from streams.topics import DISPENSINGS, TopicNames

PG_ADMIN_DSN = os.environ.get("REGHUB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SESSION_TIMEOUT_MS = 6_000
JOIN_TIMEOUT_S = 60.0


class GcTimer:
    """Time spent in the cyclic garbage collector while installed (a `gc.callbacks` entry)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = [0, 0, 0]
        self._started: float | None = None

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            self.seconds += time.perf_counter() - self._started
            self.collections[info["generation"]] += 1
            self._started = None

    @contextlib.contextmanager
    def installed(self) -> Iterator[GcTimer]:
        gc.callbacks.append(self)
        try:
            yield self
        finally:
            gc.callbacks.remove(self)


@dataclass
class Result:
    """One consumer's run: records handled between its assignment and the last record."""

    records: int = 0
    seconds: float = 0.0
    join_seconds: float = 0.0
    batches: int = 0
    steps: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    gc: GcTimer | None = None

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


# -- broker side ----------------------------------------------------------------------------------


async def produce(bootstrap: str, topic: str, reports: list[tuple[bytes, bytes, int]]) -> float:
    """Send every report in whole batches, partitioned as aiokafka's default partitioner would."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=20,
        max_batch_size=1024 * 1024,
        max_request_size=16 * 1024 * 1024,
    )
    await producer.start()
    try:
        parts = sorted(await producer.partitions_for(topic))
        partition_of: dict[bytes, int] = {}
        began = time.perf_counter()
        builders = {p: producer.create_batch() for p in parts}
        futures: list[Awaitable[Any]] = []
        for key, value, ts in reports:
            p = partition_of.get(key)
            if p is None:
                p = partition_of[key] = parts[(murmur2(key) & 0x7FFFFFFF) % len(parts)]
            builder = builders[p]
            if builder.append(key=key, value=value, timestamp=ts) is None:  # full: send it
                futures.append(await producer.send_batch(builder, topic, partition=p))
                builder = builders[p] = producer.create_batch()
                builder.append(key=key, value=value, timestamp=ts)
        for p, builder in builders.items():
            if builder.record_count():
                futures.append(await producer.send_batch(builder, topic, partition=p))
        await asyncio.gather(*futures)
        return time.perf_counter() - began
    finally:
        await producer.stop()


async def assigned_at(consumer: AIOKafkaConsumer) -> float:
    """The moment `consumer` has partitions (polled every 5 ms)."""
    deadline = time.perf_counter() + JOIN_TIMEOUT_S
    while not consumer.assignment():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"no partitions assigned within {JOIN_TIMEOUT_S:.0f} s")
        await asyncio.sleep(0.005)
    return time.perf_counter()


async def ceiling(bootstrap: str, topic: str, n: int, max_records: int) -> Result:
    """A bare consumer: `getmany` and `orjson.loads` of each value, nothing else."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-ceiling-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=1_000,
        fetch_max_wait_ms=50,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    started = time.perf_counter()
    await consumer.start()
    result = Result()
    try:
        t0 = await assigned_at(consumer)
        result.join_seconds = t0 - started
        loads = orjson.loads
        while result.records < n:
            batch = await consumer.getmany(timeout_ms=500, max_records=max_records)
            for records in batch.values():
                for r in records:
                    loads(r.value)
                result.records += len(records)
            result.batches += bool(batch)
            if time.perf_counter() - t0 > 600:
                raise TimeoutError(f"ceiling read {result.records} of {n} in 600 s")
        result.seconds = time.perf_counter() - t0
    finally:
        await consumer.stop()
    return result


def cpu_seconds(broker_pid: int | None) -> dict[str, float]:
    """CPU seconds (user + system) used so far by this process, the broker, all PostgreSQL processes
    and the whole machine (Linux `/proc`; empty elsewhere)."""
    tick = os.sysconf("SC_CLK_TCK")

    def of(pid: int | str) -> float:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / tick

    try:
        with open("/proc/stat") as f:
            total = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return {}
    postgres = 0.0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry.name}/comm") as f:
                if f.read().strip() == "postgres":
                    postgres += of(entry.name)
    return {
        "worker": of(os.getpid()),
        "tansu": of(broker_pid) if broker_pid else 0.0,
        "postgresql": postgres,
        "machine": (sum(total) - total[3] - total[4]) / tick,  # all but idle and iowait
    }


# -- the register ---------------------------------------------------------------------------------


def _pg_url(name: str) -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


@contextlib.asynccontextmanager
async def database(url: str | None) -> AsyncIterator[str]:
    """The register's URL: a fresh PostgreSQL database (dropped after), a temporary SQLite file for
    `sqlite`, or `url` as given (left in place)."""
    if url == "sqlite":
        folder = tempfile.mkdtemp(prefix="reghub-bench-")
        try:
            yield f"sqlite+aiosqlite:///{folder}/register.db"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    if url is not None:
        yield url
        return
    name = f"reghub_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield _pg_url(name)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def count_purchases(register: Register) -> int:
    async with register.engine.connect() as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(tables.purchases))).scalar()
        )


class StepTimer:
    """Wall time per step of the worker's batch, by wrapping methods of its instances.

    - fetch: `RegisterProcessor.fetch` (getmany + decode), running while the previous batch is written;
    - process: the whole `RegisterProcessor.process` (apply + write + publish + commit);
    - transaction: the register's unit of work (apply and write, with BEGIN/COMMIT);
    - known_messages / load_states / load_purchases / write: the unit of work's calls;
    - publish, commit: the publisher's send-and-await and the offset commit.
    Apply (CPU) is what remains of `transaction`.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.first_batch_at: float | None = None

    def wrap(self, name: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - t

        return timed

    def install(self, processor: RegisterProcessor) -> None:
        process = self.wrap("process", processor.process)

        async def first_then_process(batch: Any) -> None:
            if self.first_batch_at is None:
                self.first_batch_at = time.perf_counter()
            await process(batch)

        processor.process = first_then_process  # type: ignore[method-assign]
        processor.fetch = self.wrap("fetch", processor.fetch)  # type: ignore[method-assign]
        processor.publisher.publish = self.wrap("publish", processor.publisher.publish)  # type: ignore[method-assign]
        assert processor.consumer is not None
        processor.consumer.commit = self.wrap("commit", processor.consumer.commit)  # type: ignore[method-assign]
        unit_of_work = processor.register.unit_of_work
        timer = self

        @contextlib.asynccontextmanager
        async def timed_unit_of_work() -> AsyncIterator[Any]:
            t = time.perf_counter()
            async with unit_of_work() as uow:
                for name in ("known_messages", "load_states", "load_purchases", "write"):
                    setattr(uow, name, timer.wrap(name, getattr(uow, name)))
                yield uow
            timer.seconds["transaction"] += time.perf_counter() - t

        processor.register.unit_of_work = timed_unit_of_work  # type: ignore[method-assign]

    def breakdown(self, total: float) -> dict[str, float]:
        s = self.seconds
        reads = s["known_messages"] + s["load_states"] + s["load_purchases"]
        steps = {
            "fetch: getmany + decode (overlaps the batch before)": s["fetch"],
            "apply: reads": reads,
            "apply: rules, rows, outputs (CPU) + BEGIN/COMMIT": s["transaction"]
            - reads
            - s["write"],
            "write": s["write"],
            "publish": s["publish"],
            "offset commit": s["commit"],
        }
        steps["outside process (getmany, waiting)"] = total - s["process"]
        return steps


async def end_to_end(
    bootstrap: str,
    prefix: str,
    url: str,
    n: int,
    max_records: int,
    profile: str | None,
    broker_pid: int | None = None,
    gc_threshold: int | None = None,
) -> tuple[Result, str, int]:
    """The real worker from assignment until it has committed N messages; returns (result, dialect,
    purchase rows added)."""
    settings = Settings(
        kafka_bootstrap=bootstrap,
        database_url=url,
        topic_prefix=prefix,
        consumer_group=f"{prefix}register-{uuid.uuid4().hex[:6]}",
        kafka_session_timeout_ms=SESSION_TIMEOUT_MS,
        pseudonym_key="bench-pseudonym-key-0123456789",
        report_grace_seconds=10**10,
        batch_max_records=max_records,
    )
    register = Register(make_engine(url))
    dialect = register.engine.dialect.name
    try:
        await upgrade(register.engine)
        before = await count_purchases(register)
        processor = wiring.processor(settings, register)
        done = asyncio.Event()
        ended: list[float] = []

        def on_batch(stats: ProcessorStats) -> None:
            if stats.messages >= n and not ended:
                ended.append(time.perf_counter())
                done.set()

        processor.on_batch = on_batch
        started = time.perf_counter()
        await processor.start()
        timer = StepTimer()
        timer.install(processor)
        profiler = cProfile.Profile() if profile else None
        gc_timer = GcTimer()
        if gc_threshold is not None:
            gc.collect()
            gc.freeze()
            gc.set_threshold(gc_threshold, *gc.get_threshold()[1:])
        task = asyncio.create_task(processor.run())
        try:
            t0 = await assigned_at(processor.consumer)  # type: ignore[arg-type]
            cpu0 = cpu_seconds(broker_pid)
            if profiler is not None:
                profiler.enable()
            waiter = asyncio.create_task(done.wait())
            with gc_timer.installed():
                await asyncio.wait(
                    {task, waiter}, timeout=1800, return_when=asyncio.FIRST_COMPLETED
                )
            cpu1 = cpu_seconds(broker_pid)
            if profiler is not None:
                profiler.disable()
            if not done.is_set():
                waiter.cancel()
                if task.done():
                    task.result()  # raises what stopped the worker
                raise TimeoutError(f"the worker handled {processor.stats.messages} of {n}")
        finally:
            await processor.stop()
            await asyncio.gather(task, return_exceptions=True)
            await processor.close()
        seconds = ended[0] - t0
        result = Result(
            records=processor.stats.messages,
            seconds=seconds,
            join_seconds=t0 - started,
            batches=processor.stats.batches,
            steps=timer.breakdown(seconds),
            cpu={k: cpu1[k] - cpu0[k] for k in cpu1},
            gc=gc_timer,
        )
        if timer.first_batch_at is not None:
            result.steps["(from the first batch's start)"] = ended[0] - timer.first_batch_at
        outcomes = dict(processor.stats.outcomes)
        if set(outcomes) - {"registered"}:
            print(f"  note: outcomes other than registered: {outcomes}")
        if profiler is not None and profile:
            profiler.dump_stats(profile)
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
            print(text.getvalue())
        added = await count_purchases(register) - before
        return result, dialect, added
    finally:
        await register.close()


# -- main -----------------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    n: int = args.n
    run = uuid.uuid4().hex[:8]
    rng = random.Random(args.seed)
    people = synthetic.persons(args.persons, rng)
    reports = synthetic.encoded_reports(
        n,
        people,
        synthetic.pharmacies(),
        synthetic.DEMO_START,
        timedelta(days=args.days),
        seed=args.seed,
        prefix=f"b{run}-",
    )
    size = sum(len(v) for _, v, _ in reports) / max(n, 1)
    print(
        f"{n} reports of {size:.0f} bytes on average, {args.persons} persons, "
        f"{args.partitions} partitions, batches of up to {args.max_records}"
    )

    broker = EmbeddedBroker()
    broker.start()
    try:
        prefix = f"bench{run}."
        names = TopicNames(prefix)
        await create_topics(broker.bootstrap, names, args.partitions)
        topic = names(DISPENSINGS)

        seconds = await produce(broker.bootstrap, topic, reports)
        produce_rate = n / seconds
        print(f"produce:    {produce_rate:,.0f} reports/s ({seconds:.2f} s)")
        del reports, people

        top = await ceiling(broker.bootstrap, topic, n, args.max_records)
        print(
            f"ceiling:    {top.rate:,.0f} reports/s ({top.records} in {top.seconds:.2f} s, "
            f"{top.batches} batches; group join {top.join_seconds:.1f} s, excluded)"
        )

        async with database(args.database_url) as url:
            e2e, dialect, added = await end_to_end(
                broker.bootstrap, prefix, url, n, args.max_records, args.profile,
                broker.process.pid if broker.process else None, args.gc_threshold,
            )  # fmt: skip
        mean = e2e.records / max(e2e.batches, 1)
        print(
            f"end to end: {e2e.rate:,.0f} reports/s ({e2e.records} in {e2e.seconds:.2f} s; "
            f"group join {e2e.join_seconds:.1f} s, excluded; {added} purchase rows added)"
        )
        print("  where the worker's time went (wall, s; % of the timed run):")
        for step, s in e2e.steps.items():
            share = f"{100 * s / e2e.seconds:5.1f} %" if not step.startswith("(") else ""
            print(f"    {step:<52} {s:8.2f}  {share}")
        if e2e.gc is not None:
            g = e2e.gc
            print(
                f"  garbage collector: {g.seconds:.2f} s ({100 * g.seconds / e2e.seconds:.1f} %), "
                f"collections per generation {g.collections}"
            )
        if e2e.cpu:
            c = e2e.cpu
            other = c["machine"] - c["worker"] - c["tansu"] - c["postgresql"]
            print(
                f"  CPU used in the timed run (s): worker {c['worker']:.1f}, tansu "
                f"{c['tansu']:.1f}, postgresql {c['postgresql']:.1f}, everything else "
                f"{other:.1f}; the machine had {os.cpu_count()} cores x {e2e.seconds:.1f} s"
            )
    finally:
        broker.stop()

    print()
    print(f"produce:      {produce_rate:,.0f} reports/s")
    print(f"ceiling:      {top.rate:,.0f} reports/s (aiokafka getmany + orjson)")
    print(
        f"end to end:   {e2e.rate:,.0f} reports/s into {dialect} "
        f"({e2e.batches} batches, mean {mean:,.0f} records)"
    )
    print(f"ratio:        {e2e.rate / top.rate if top.rate else 0:.2f} of the ceiling")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.dispensing_throughput",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-n", type=int, default=200_000, help="reports to produce (default 200000)")
    p.add_argument("--partitions", type=int, default=4, help="partitions per topic (default 4)")
    p.add_argument(
        "--database-url",
        default=None,
        help="the register (default: a fresh PostgreSQL database at $REGHUB_TEST_PG, dropped "
        "after; 'sqlite' for a temporary SQLite file)",
    )
    p.add_argument("--persons", type=int, default=20_000, help="distinct persons (default 20000)")
    p.add_argument("--days", type=int, default=300, help="days the reports span from 2024-01-02")
    p.add_argument(
        "--max-records",
        type=int,
        default=Settings.model_fields["batch_max_records"].default,
        help="getmany max_records, both consumers (default: the hub's)",
    )
    p.add_argument(
        "--gc-threshold",
        type=int,
        metavar="N",
        help="experiment: gen-0 GC threshold N (Python's default 700) and gc.freeze() of the "
        "start-up heap, both for the end-to-end phase (default: the interpreter's settings)",
    )
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--profile", metavar="FILE", help="cProfile the end-to-end phase into FILE")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
