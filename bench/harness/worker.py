"""The real worker (`reghub.wiring.processor`) in this process, timed from its assignment until it
has committed N messages, with its time per batch step, in the garbage collector and in CPU."""

from __future__ import annotations

import asyncio
import cProfile
import gc
import io
import pstats
import time
import uuid

from bench.harness.broker import SESSION_TIMEOUT_MS, assigned_at
from bench.harness.register import count_purchases
from bench.harness.timing import GcTimer, Result, StepTimer, cpu_seconds
from reghub import wiring
from reghub.settings import Settings
from sinks.migrations import upgrade
from streams.processor import ProcessorStats


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
    database = register.engine.url.database if dialect == "postgresql" else None
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
            cpu0 = cpu_seconds(broker_pid, database)
            if profiler is not None:
                profiler.enable()
            waiter = asyncio.create_task(done.wait())
            with gc_timer.installed():
                await asyncio.wait(
                    {task, waiter}, timeout=1800, return_when=asyncio.FIRST_COMPLETED
                )
            cpu1 = cpu_seconds(broker_pid, database)
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
