"""`--rebuild N`: a register rebuilt from the topic; how fast, and how much memory the worker needs.
Goal: peak RSS < 300 MB.

1. An embedded Tansu broker and the hub topics; N reports produced to the dispensings topic in chunks
   of 100,000 (generated chunk by chunk, so the bench itself never holds all N).
2. A fresh PostgreSQL database (or `--database-url`), migrated by this process.
3. One worker in a child process (multiprocessing "spawn": a fresh interpreter, so its peak RSS is
   the worker's own): the real `reghub.wiring.processor`, a new consumer group, the register empty,
   so it replays the topic from offset 0. It is timed from its assignment (the group join excluded)
   until the batch that brings it to N messages is committed.
4. The child reports its peak resident set over its whole life (imports, start, replay): `VmHWM`
   of /proc/self/status, the high-water mark of its own image. Not `ru_maxrss`, which on Linux
   survives the exec and so would start at the peak of the bench process the child was forked from
   (where `resource.getrusage` is all there is, elsewhere, it is used). The same is reported after
   `start()` (before the first batch), so the replay's own growth can be seen.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import queue
import random
import resource
import time
import traceback
import uuid
from datetime import timedelta
from typing import Any

from bench.harness.broker import SESSION_TIMEOUT_MS, assigned_at, produce
from bench.harness.deployed import peak_mb, run_deployed
from bench.harness.register import database
from reghub import synthetic, wiring
from reghub.broker import EmbeddedBroker, create_topics
from reghub.settings import Settings
from sinks.migrations import upgrade
from sinks.register import make_engine
from streams.topics import DISPENSINGS, TopicNames

CHUNK = 100_000
GOAL_MB = 300.0


def _peak_mb() -> float:
    """This process's peak resident set, MB: `VmHWM` of /proc/self/status, else `ru_maxrss`.

    On Linux `ru_maxrss` survives exec: a spawned child starts with the peak of the parent it was
    forked from (the bench, which held the produced reports), so the kernel's per-image high-water
    mark is the one that tells the worker's own peak."""
    try:
        return peak_mb(os.getpid())
    except (OSError, ValueError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _child(settings: dict[str, Any], n: int, reports: Any) -> None:
    try:
        asyncio.run(_replay(settings, n, reports))
    except BaseException:
        reports.put(("error", traceback.format_exc()))
        raise SystemExit(1) from None


async def _replay(settings: dict[str, Any], n: int, reports: Any) -> None:
    processor = wiring.processor(Settings(**settings))
    done = asyncio.Event()
    ended: list[float] = []

    def on_batch(stats: Any) -> None:
        if stats.messages >= n and not ended:
            ended.append(time.perf_counter())
            done.set()

    processor.on_batch = on_batch
    try:
        await processor.start()
        started_mb = _peak_mb()
        task = asyncio.create_task(processor.run())
        t0 = await assigned_at(processor.consumer)  # type: ignore[arg-type]
        waiter = asyncio.create_task(done.wait())
        await asyncio.wait({task, waiter}, timeout=3600, return_when=asyncio.FIRST_COMPLETED)
        if not done.is_set():
            waiter.cancel()
            if task.done():
                task.result()
            raise TimeoutError(f"the worker handled {processor.stats.messages} of {n}")
        await processor.stop()
        await task
    finally:
        await processor.close()
        await processor.register.close()
    s = processor.stats
    reports.put(
        ("done", s.messages, ended[0] - t0, s.batches, dict(s.outcomes), started_mb, _peak_mb())
    )


async def produce_chunked(bootstrap: str, topic: str, args: argparse.Namespace, run: str) -> float:
    """N reports in chunks of CHUNK, each chunk generated just before it is sent; returns seconds."""
    rng = random.Random(args.seed)
    people = synthetic.persons(args.persons, rng)
    shops = synthetic.pharmacies()
    n = args.rebuild
    chunks = max(1, -(-n // CHUNK))
    span = timedelta(days=args.days)
    seconds = 0.0
    for c in range(chunks):
        count = min(CHUNK, n - c * CHUNK)
        start = synthetic.DEMO_START + span * (c * CHUNK / n)
        reports = synthetic.encoded_reports(
            count, people, shops, start, span * (count / n), seed=args.seed + c,
            prefix=f"r{run}-{c}-",
        )  # fmt: skip
        seconds += await produce(bootstrap, topic, reports)
        del reports
    return seconds


async def run(args: argparse.Namespace) -> None:
    n = args.rebuild
    run_id = uuid.uuid4().hex[:8]
    print(
        f"rebuild: {n} reports, {args.partitions} partitions, batches of up to {args.max_records}"
    )
    broker = EmbeddedBroker()
    broker.start()
    try:
        prefix = f"rb{run_id}."
        names = TopicNames(prefix)
        await create_topics(broker.bootstrap, names, args.partitions)
        topic = names(DISPENSINGS)
        seconds = await produce_chunked(broker.bootstrap, topic, args, run_id)
        print(f"produce:  {n / seconds:,.0f} reports/s ({seconds:.2f} s)")
        async with database(args.database_url) as url:
            engine = make_engine(url)
            await upgrade(engine)
            await engine.dispose()
            settings = {
                "kafka_bootstrap": broker.bootstrap,
                "kafka_idempotence": False,
                "database_url": url,
                "topic_prefix": prefix,
                "consumer_group": f"{prefix}rebuild-{uuid.uuid4().hex[:6]}",
                "kafka_session_timeout_ms": SESSION_TIMEOUT_MS,
                "pseudonym_key": "bench-pseudonym-key-0123456789",
                "report_grace_seconds": 10**10,
                "batch_max_records": args.max_records,
            }
            done = await asyncio.to_thread(_spawn, settings, n)
        _, messages, secs, batches, outcomes, started_mb, worker_peak = done
        verdict = "within" if worker_peak < GOAL_MB else "over"
        print(
            f"rebuild, one worker: {messages / secs:,.0f} reports/s ({messages} in {secs:.2f} s, "
            f"{batches} batches; group join excluded)"
        )
        print(
            f"  its peak RSS: {worker_peak:,.0f} MB ({started_mb:,.0f} MB after start, before the "
            f"first batch; {verdict} the {GOAL_MB:.0f} MB goal)"
        )
        if set(outcomes) - {"registered"}:
            print(f"  note: outcomes other than registered: {outcomes}")
        if args.database_url is None and args.rebuild_processes > 0:
            await _as_deployed(broker, prefix, topic, args)
    finally:
        broker.stop()


async def _as_deployed(
    broker: EmbeddedBroker, prefix: str, topic: str, args: argparse.Namespace
) -> None:
    """The same replay by the hub as deployed, `reghub worker --processes K`, into a fresh register."""
    k = args.rebuild_processes
    pid = broker.process.pid if broker.process else None
    async with database(None) as url:
        r = await run_deployed(
            broker.bootstrap, prefix, url, args.rebuild, args.max_records, topic, k, pid
        )
    peaks = ", ".join(f"{mb:,.0f}" for mb in r.peak_mb)
    verdict = "within" if max(r.peak_mb) < GOAL_MB else "over"
    print(
        f"rebuild as deployed (reghub worker --processes {k}): {r.rate:,.0f} reports/s "
        f"({r.records} in {r.seconds:.2f} s from the first worker's partitions; start and group "
        f"join {r.join_seconds:.1f} s, excluded)"
    )
    print(f"  peak RSS per worker: {peaks} MB ({verdict} the {GOAL_MB:.0f} MB goal)")


def _spawn(settings: dict[str, Any], n: int) -> tuple[Any, ...]:
    """Run the replaying worker in a spawned child; its final report."""
    ctx = multiprocessing.get_context("spawn")
    reports = ctx.Queue()
    proc = ctx.Process(target=_child, args=(settings, n, reports), name="reghub-bench-rebuild")
    proc.start()
    try:
        while True:
            try:
                msg = reports.get(timeout=0.5)
            except queue.Empty:
                if proc.exitcode is not None:
                    raise RuntimeError(f"the worker exited with {proc.exitcode}") from None
                continue
            if msg[0] == "error":
                raise RuntimeError(f"the worker failed:\n{msg[1]}")
            return msg
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
