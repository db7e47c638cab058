"""Dispensing throughput: N synthetic reports produced, read bare (the ceiling), then by the worker.

Run as `python -m bench.dispensing_throughput [-n 200000] [--partitions 4] [--database-url URL]
[--workers N] [--compare | --latency [--rate R --seconds S] | --rebuild [N]]`.

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
per step by the pipeline's own step hook (`Pipeline.on_step`); figures are printed, nothing is
asserted. `--profile FILE` writes a cProfile of the end-to-end phase (pstats format).

`--workers N` (N > 1) runs step 4 as N worker processes (multiprocessing "spawn", one asyncio loop
each, the real `reghub.wiring.processor`) in one consumer group against the same database. Each
worker starts its processor and reports its assignment; once every worker holds partitions and
together they hold every partition of the dispensings topic (disjointly), the parent sets "go" and
the workers call `run()`. End to end is timed from "go" until `select count(*) from purchases`
(polled every 50 ms by the parent) reaches N more rows. No per-step breakdown in that mode; the
prefetch the consumers may do between their assignment and "go" (one fetch per partition) is not
timed, and the polls are not free: a scan of a growing table, their time is printed (on 2 cores
they cost PostgreSQL about 1 CPU-s per 200,000 reports, roughly 10 % off the figure).

Three other modes, each in one invocation:

`--compare` (needs the `bench` extra: Quix Streams): the same broker, the same produced reports and
the same PostgreSQL server for three readers of the topic: the ceiling (step 3), Quix Streams
(`bench/peer_quix.py`: an Application in a child process, its own consumer group from the earliest
offset, `PostgreSQLSink` with one row per report into a fresh database, its defaults otherwise)
and reghub end to end (step 4, a fresh database per run). Two rounds, alternating: Quix, reghub,
Quix, reghub. Quix is timed from its first record processed until `count(*)` of its table
(polled every 50 ms) reaches N: its sink writes at each checkpoint (every 5 s by default), so the
time to the last record processed is printed as well. reghub is timed as in step 4 (assignment →
the batch bringing it to N committed: its rows, outputs and offsets in one transaction). Printed:
each run, the median per system, reghub/Quix and each against the ceiling. Quix's rows are the
reports as JSON columns, reghub's are the register's (purchases, lines, balances, outbox, …): the
same input, not the same work.

`--latency [--rate 2000 --seconds 60]` (`bench/latency.py`): a steady stream of reports while the
worker runs; per report produce → committed register row and produce → decision read back from the
decisions topic, p50 / p99 / max. Goal: p99 < 200 ms.

`--rebuild [N]` (`bench/rebuild.py`, N = 2,000,000 by default): N reports on the topic, then a worker
in a spawned process replays them into an empty register; its rate and peak RSS
(`ru_maxrss`). Goal: peak RSS < 300 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import multiprocessing
import os
import pstats
import queue
import random
import shutil
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Iterator
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
SETTLE_S = 20.0  # --workers: how long to wait for every worker to get partitions once all are held
STOP_TIMEOUT_S = 15.0


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


def process_cpu(pid: int | str) -> float:
    """CPU seconds (utime + stime) used so far by process `pid` (Linux `/proc`; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(broker_pid: int | None) -> dict[str, float]:
    """CPU seconds (user + system) used so far by this process, the broker, all PostgreSQL processes
    and the whole machine (Linux `/proc`; empty elsewhere)."""
    tick = os.sysconf("SC_CLK_TCK")
    of = process_cpu

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
    """Wall time per step of the worker's batch, from the hook the pipeline offers (`on_step`).

    - fetch: getmany + decode, running while the previous batch is written (and waiting for that);
    - load / handle / write: the pipeline's steps inside the register transaction;
    - transaction: the whole unit of work, so BEGIN/COMMIT is what it has beyond the three;
    - publish, commit: the publisher's send-and-await and the offset commit, a task running while
      the next batch is in the register: wall time that overlaps it, not added to it.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.first_batch_at: float | None = None

    def __call__(self, step: str, seconds: float) -> None:
        if self.first_batch_at is None and step != "fetch":
            self.first_batch_at = time.perf_counter() - seconds
        self.seconds[step] += seconds

    def breakdown(self, total: float) -> dict[str, float]:
        s = self.seconds
        return {
            "fetch: getmany + decode (overlaps the batch before)": s["fetch"],
            "load: register reads": s["load"],
            "handle: rules, rows, outputs (CPU)": s["handle"],
            "write": s["write"],
            "BEGIN/COMMIT": s["transaction"] - s["load"] - s["handle"] - s["write"],
            "publish (overlaps the next batch)": s["publish"],
            "offset commit (overlaps the next batch)": s["commit"],
            "outside the register transaction": total - s["transaction"],
        }


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
        kafka_idempotence=False,
        database_url=url,
        topic_prefix=prefix,
        consumer_group=f"{prefix}register-{uuid.uuid4().hex[:6]}",
        kafka_session_timeout_ms=SESSION_TIMEOUT_MS,
        pseudonym_key="bench-pseudonym-key-0123456789",
        report_grace_seconds=10**10,
        batch_max_records=max_records,
    )
    register = wiring.register(settings)  # the worker's own engine
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
        processor.pipeline.on_step = timer
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


# -- several workers --------------------------------------------------------------------------------

Assignment = tuple[tuple[str, int], ...]  # (topic, partition), sorted


def _assignment(processor: RegisterProcessor) -> Assignment:
    assert processor.consumer is not None
    return tuple(sorted((tp.topic, tp.partition) for tp in processor.consumer.assignment()))


def _worker_main(
    index: int,
    settings: dict[str, Any],
    gc_threshold: int | None,
    reports: Any,  # multiprocessing.Queue
    go: Any,  # multiprocessing.Event
    stop: Any,  # multiprocessing.Event
) -> None:
    """A worker process: its own loop, the real processor; what it does goes to `reports`."""
    try:
        asyncio.run(_worker(index, settings, gc_threshold, reports, go, stop))
    except BaseException:
        reports.put(("error", index, traceback.format_exc()))
        raise SystemExit(1) from None


async def _worker(
    index: int,
    settings: dict[str, Any],
    gc_threshold: int | None,
    reports: Any,
    go: Any,
    stop: Any,
) -> None:
    """start() → report each change of the assignment until "go" → run() until "stop" → stop(),
    await run, close(); then report the processor's stats."""
    processor = wiring.processor(Settings(**settings))
    try:
        await processor.start()
        reported: Assignment | None = None
        while not go.is_set():  # the assignment may change while the group settles
            if stop.is_set():  # the parent gave up
                return
            now = _assignment(processor)
            if now != reported:
                reports.put(("assigned", index, now))
                reported = now
            await asyncio.sleep(0.005)
        if gc_threshold is not None:
            gc.collect()
            gc.freeze()
            gc.set_threshold(gc_threshold, *gc.get_threshold()[1:])
        task = asyncio.create_task(processor.run())
        while not stop.is_set() and not task.done():
            now = _assignment(processor)
            if now != reported:  # a rebalance during the timed run: the parent notes it
                reports.put(("reassigned", index, now))
                reported = now
            await asyncio.sleep(0.05)
        await processor.stop()
        await task  # raises what stopped the worker
    finally:
        await processor.close()
        await processor.register.close()
    s = processor.stats
    reports.put(("done", index, s.batches, s.messages, dict(s.outcomes), s.failures))


@dataclass
class WorkerRun:
    """One worker process of a `--workers` run."""

    pid: int
    assignment: Assignment = ()
    assignments: int = 0  # assignments reported before "go" (more than 1: a rebalance)
    reassigned: list[Assignment] = field(default_factory=list)
    batches: int = 0
    messages: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    failures: int = 0
    cpu: float = 0.0


@dataclass
class MultiResult:
    result: Result
    workers: list[WorkerRun]
    settle_seconds: float
    polls: int
    poll_seconds: float
    notes: list[str]


async def end_to_end_workers(
    bootstrap: str,
    prefix: str,
    url: str,
    n: int,
    max_records: int,
    workers: int,
    topic: str,
    partitions: int,
    broker_pid: int | None = None,
    gc_threshold: int | None = None,
) -> tuple[MultiResult, str, int]:
    """N worker processes in one group, timed from "go" until the register holds N more purchase
    rows; returns (result, dialect, purchase rows added)."""
    settings = {
        "kafka_bootstrap": bootstrap,
        "database_url": url,
        "topic_prefix": prefix,
        "consumer_group": f"{prefix}register-{uuid.uuid4().hex[:6]}",
        "kafka_session_timeout_ms": SESSION_TIMEOUT_MS,
        "pseudonym_key": "bench-pseudonym-key-0123456789",
        "report_grace_seconds": 10**10,
        "batch_max_records": max_records,
    }
    register = Register(make_engine(url))
    dialect = register.engine.dialect.name
    ctx = multiprocessing.get_context("spawn")
    reports = ctx.Queue()
    go, stop = ctx.Event(), ctx.Event()
    procs: list[multiprocessing.process.BaseProcess] = []
    runs: dict[int, WorkerRun] = {}
    notes: list[str] = []
    done: set[int] = set()
    dead: set[int] = set()

    def receive(block_s: float = 0.0) -> None:
        """Take in what the workers reported (waiting up to `block_s` for the first message); raise
        if one failed, or exited before it was told to stop."""
        wait = block_s
        while True:
            try:
                msg = reports.get(timeout=wait) if wait else reports.get_nowait()
            except queue.Empty:
                break
            wait = 0.0
            kind, index = msg[0], msg[1]
            run = runs[index]
            if kind == "error":
                raise RuntimeError(f"worker {index} failed:\n{msg[2]}")
            if kind == "assigned":
                run.assignment = msg[2]
                run.assignments += 1
            elif kind == "reassigned":
                run.reassigned.append(msg[2])
            elif kind == "done":
                run.batches, run.messages, run.outcomes, run.failures = msg[2:]
                done.add(index)
        for i, proc in enumerate(procs):
            code = proc.exitcode
            if code is None or i in done or (code == 0 and stop.is_set()):
                continue
            if i not in dead:  # its last words may still be in the pipe
                dead.add(i)
                receive(block_s=1.0)
            raise RuntimeError(f"worker {i} exited with {code} before it was told to stop")

    try:
        await upgrade(register.engine)  # once, before the workers: they only read the scales
        before = await count_purchases(register)
        started = time.perf_counter()
        for i in range(workers):
            proc = ctx.Process(
                target=_worker_main,
                args=(i, settings, gc_threshold, reports, go, stop),
                name=f"reghub-bench-worker-{i}",
                daemon=True,
            )
            proc.start()
            assert proc.pid is not None
            procs.append(proc)
            runs[i] = WorkerRun(pid=proc.pid)

        # Wait until every worker holds partitions and together, disjointly, all of the topic's.
        every_partition = set(range(partitions))
        held_at: float | None = None  # first moment the topic's partitions were all held
        stable: tuple[Assignment, ...] | None = None
        stable_since = 0.0
        while True:
            receive(block_s=0.01)
            now = time.perf_counter()
            current = tuple(runs[i].assignment for i in range(workers))
            mine = [[p for t, p in a if t == topic] for a in current]
            held = [p for ps in mine for p in ps]
            everything = [tp for a in current for tp in a]
            all_held = len(held) == len(set(held)) and set(held) == every_partition
            disjoint = len(everything) == len(set(everything))
            if current != stable:
                stable, stable_since = current, now
            settled = now - stable_since >= 0.25  # no change reported for a quarter second
            if all_held and disjoint and all(current) and settled:
                break
            if all_held and held_at is None:
                held_at = now
            if held_at is not None and now - held_at > SETTLE_S and all_held and settled:
                idle = [i for i, ps in enumerate(mine) if not ps]
                notes.append(
                    f"after {SETTLE_S:.0f} s, worker(s) {idle} still hold no partition of the "
                    f"dispensings topic; measured as it is"
                )
                break
            if now - started > JOIN_TIMEOUT_S + SETTLE_S:
                raise TimeoutError(
                    f"partitions of {topic} not all held within {JOIN_TIMEOUT_S + SETTLE_S:.0f} "
                    f"s: {dict(enumerate(mine))}"
                )

        cpu0 = cpu_seconds(broker_pid)
        worker_cpu0 = [process_cpu(r.pid) for r in runs.values()]
        t0 = time.perf_counter()
        go.set()
        settle_seconds = t0 - started

        target = before + n
        polls, poll_seconds = 0, 0.0
        while True:
            t = time.perf_counter()
            count = await count_purchases(register)
            t1 = time.perf_counter()
            polls += 1
            poll_seconds += t1 - t
            if count >= target:
                break
            receive()
            if t1 - t0 > 1800:
                raise TimeoutError(f"the workers wrote {count - before} of {n} purchase rows")
            await asyncio.sleep(0.05)
        cpu1 = cpu_seconds(broker_pid)
        for r, c0 in zip(runs.values(), worker_cpu0, strict=True):
            r.cpu = process_cpu(r.pid) - c0
        stop.set()
        deadline = time.perf_counter() + STOP_TIMEOUT_S
        while len(done) < workers and time.perf_counter() < deadline:
            receive(block_s=0.05)
        added = await count_purchases(register) - before
    finally:
        stop.set()
        for i, proc in enumerate(procs):
            proc.join(STOP_TIMEOUT_S)
            if proc.is_alive():
                notes.append(f"worker {i} did not stop within {STOP_TIMEOUT_S:.0f} s: terminated")
                proc.terminate()
                proc.join(5)
        reports.close()
        await register.close()

    if len(done) < workers:
        notes.append(f"workers {sorted(set(runs) - done)} did not report their stats")
    for i, r in runs.items():
        if r.reassigned:
            notes.append(f"worker {i}'s assignment changed during the timed run: {r.reassigned}")
        if r.failures:
            notes.append(f"worker {i} retried {r.failures} batch(es)")
    outcomes: dict[str, int] = defaultdict(int)
    for r in runs.values():
        for k, v in r.outcomes.items():
            outcomes[k] += v
    if set(outcomes) - {"registered"}:
        notes.append(f"outcomes other than registered: {dict(outcomes)}")
    cpu = {k: cpu1[k] - cpu0[k] for k in cpu1}
    if cpu:
        cpu["workers"] = sum(r.cpu for r in runs.values())
    result = Result(
        records=n,
        seconds=t1 - t0,
        join_seconds=settle_seconds,
        batches=sum(r.batches for r in runs.values()),
        cpu=cpu,
    )
    multi = MultiResult(result, list(runs.values()), settle_seconds, polls, poll_seconds, notes)
    return multi, dialect, added


def _partitions_of(assignment: Assignment, topic: str) -> str:
    mine = [p for t, p in assignment if t == topic]
    others = len(assignment) - len(mine)
    return f"dispensings {mine}" + (f" + {others} other input partitions" if others else "")


# -- main -----------------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    if args.latency:
        from bench import latency

        await latency.run(args)
        return
    if args.rebuild is not None:
        from bench import rebuild

        await rebuild.run(args)
        return
    if args.compare:
        from bench import peer_quix

        if not peer_quix.available():
            print(peer_quix.INSTALL_HINT, file=sys.stderr)
            raise SystemExit(2)
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

        if args.compare:
            await compare(args, broker, prefix, topic, top)
            return

        multi: MultiResult | None = None
        if args.workers > 1:
            async with database(args.database_url) as url:
                multi, dialect, added = await end_to_end_workers(
                    broker.bootstrap, prefix, url, n, args.max_records, args.workers, topic,
                    args.partitions, broker.process.pid if broker.process else None,
                    args.gc_threshold,
                )  # fmt: skip
            e2e = multi.result
            mean = e2e.records / max(e2e.batches, 1)
            print_workers(multi, added, topic)
        else:
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

    finish(produce_rate, top, e2e, dialect, mean, args.workers, multi)


async def compare(
    args: argparse.Namespace, broker: EmbeddedBroker, prefix: str, topic: str, top: Result
) -> None:
    """`--compare`: Quix Streams and reghub in turn, two rounds, each into a fresh database."""
    from bench import peer_quix

    n: int = args.n
    pid = broker.process.pid if broker.process else None
    quix: list[float] = []
    reghub: list[float] = []
    quix_cpu: list[dict[str, float]] = []
    reghub_cpu: list[dict[str, float]] = []

    def sample(quix_pid: int) -> dict[str, float]:
        found = cpu_seconds(pid)
        return {"consumer": process_cpu(quix_pid), **found} if found else {}

    for round_ in (1, 2):
        async with database(None) as url:
            q = await peer_quix.run(
                broker.bootstrap, topic, n, PG_ADMIN_DSN, url.rsplit("/", 1)[1], sample
            )
        quix.append(q.rate)
        quix_cpu.append(q.cpu)
        print(
            f"round {round_}, quix:   {q.rate:,.0f} reports/s ({n} rows in {q.seconds:.2f} s from "
            f"the first record; the last processed at {q.processed_seconds:.2f} s; start and group "
            f"join {q.join_seconds:.1f} s, excluded)"
        )
        async with database(None) as url:
            e2e, _, added = await end_to_end(
                broker.bootstrap, prefix, url, n, args.max_records, None, pid, args.gc_threshold
            )
        reghub.append(e2e.rate)
        reghub_cpu.append({"consumer": e2e.cpu.get("worker", 0.0), **e2e.cpu} if e2e.cpu else {})
        print(
            f"round {round_}, reghub: {e2e.rate:,.0f} reports/s ({e2e.records} in "
            f"{e2e.seconds:.2f} s; group join {e2e.join_seconds:.1f} s, excluded; {added} "
            f"purchase rows added)"
        )
    q_med, r_med = statistics.median(quix), statistics.median(reghub)
    print()
    print(f"ceiling:        {top.rate:,.0f} reports/s (aiokafka getmany + orjson)")
    print(f"quix (median):  {q_med:,.0f} reports/s (PostgreSQLSink, one row per report)")
    print(f"reghub (median): {r_med:,.0f} reports/s (the register, end to end)")
    print(f"reghub / quix:  {r_med / q_med if q_med else 0:.2f}")
    print(f"quix / ceiling: {q_med / top.rate if top.rate else 0:.2f}")
    print(f"reghub / ceiling: {r_med / top.rate if top.rate else 0:.2f}")
    for name, runs in (("quix", quix_cpu), ("reghub", reghub_cpu)):
        if all(runs):
            print(f"{name} CPU per report (µs, median of the rounds): {_cpu_per_report(runs, n)}")


def _cpu_per_report(runs: list[dict[str, float]], n: int) -> str:
    """Each process's CPU over a timed run, per report: where a system's reports/s come from."""
    parts = []
    for key, label in (("consumer", "consumer"), ("postgresql", "postgresql"), ("tansu", "tansu")):
        per = statistics.median(r.get(key, 0.0) for r in runs) / n * 1e6
        parts.append(f"{label} {per:,.0f}")
    return ", ".join(parts)


def print_workers(multi: MultiResult, added: int, topic: str) -> None:
    """The end-to-end phase of a `--workers` run: rate, assignment and work per worker, CPU."""
    e2e, workers = multi.result, multi.workers
    print(
        f"end to end: {e2e.rate:,.0f} reports/s with {len(workers)} workers ({added} purchase "
        f"rows in {e2e.seconds:.2f} s from go; group join and settling {multi.settle_seconds:.1f} "
        f"s, excluded)"
    )
    for i, w in enumerate(workers):
        print(
            f"  worker {i} (pid {w.pid}): {_partitions_of(w.assignment, topic)}; "
            f"{w.batches} batches, {w.messages} messages, CPU {w.cpu:.1f} s"
            + (f" ({w.assignments} assignments while settling)" if w.assignments > 1 else "")
        )
    print(
        f"  purchases polled {multi.polls} times, {multi.poll_seconds:.2f} s in the queries "
        f"(the end is known to within ~50 ms)"
    )
    for note in multi.notes:
        print(f"  note: {note}")
    if e2e.cpu:
        c = e2e.cpu
        other = c["machine"] - c["workers"] - c["worker"] - c["tansu"] - c["postgresql"]
        print(
            f"  CPU used in the timed run (s): workers {c['workers']:.1f} (summed), bench "
            f"(parent) {c['worker']:.1f}, tansu {c['tansu']:.1f}, postgresql "
            f"{c['postgresql']:.1f}, everything else {other:.1f}; the machine had "
            f"{os.cpu_count()} cores x {e2e.seconds:.1f} s"
        )


def finish(
    produce_rate: float,
    top: Result,
    e2e: Result,
    dialect: str,
    mean: float,
    workers: int = 1,
    multi: MultiResult | None = None,
) -> None:
    """The closing summary."""
    print()
    print(f"produce:      {produce_rate:,.0f} reports/s")
    print(f"ceiling:      {top.rate:,.0f} reports/s (aiokafka getmany + orjson)")
    if multi is None:
        print(
            f"end to end:   {e2e.rate:,.0f} reports/s into {dialect} "
            f"({e2e.batches} batches, mean {mean:,.0f} records)"
        )
    else:
        print(
            f"end to end:   {e2e.rate:,.0f} reports/s into {dialect} with {workers} workers "
            f"({e2e.batches} batches, mean {mean:,.0f} records)"
        )
        for i, w in enumerate(multi.workers):
            print(f"  worker {i}:   {w.batches} batches, {w.messages} messages")
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
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes in the end-to-end phase, one consumer group (default 1: in this "
        "process, with the per-step breakdown)",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--compare",
        action="store_true",
        help="ceiling, Quix Streams and reghub on the same reports, two rounds (needs the bench "
        "extra)",
    )
    mode.add_argument(
        "--latency", action="store_true", help="produce → committed row / decision at a steady rate"
    )
    mode.add_argument(
        "--rebuild",
        type=int,
        nargs="?",
        const=2_000_000,
        metavar="N",
        help="replay N reports (default 2000000) into an empty register in a worker process: "
        "rate and peak RSS",
    )
    p.add_argument("--rate", type=int, default=2_000, help="--latency: reports/s (default 2000)")
    p.add_argument("--seconds", type=int, default=60, help="--latency: seconds (default 60)")
    args = p.parse_args(argv)
    if args.rate < 1 or args.seconds < 1:
        p.error("--rate and --seconds must be at least 1")
    if args.rebuild is not None and args.rebuild < 1:
        p.error("--rebuild N must be at least 1")
    if (args.compare or args.latency or args.rebuild is not None) and args.workers > 1:
        p.error("--workers is for the default mode only")
    if args.compare and args.database_url is not None:
        p.error("--compare writes into fresh PostgreSQL databases: no --database-url")
    if args.workers < 1:
        p.error("--workers must be at least 1")
    if args.workers > 1 and args.profile:
        p.error("--profile profiles this process: only with --workers 1")
    return args


if __name__ == "__main__":
    asyncio.run(main(parse()))
