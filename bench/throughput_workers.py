"""Throughput, several workers (`python -m bench.dispensing_throughput --workers N`): N worker
processes (multiprocessing "spawn", one asyncio loop each, the real `reghub.wiring.processor`) in
one consumer group against the same database, timed from "go" until the register holds N more
purchase rows."""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import os
import queue
import time
import traceback
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from bench.harness.broker import JOIN_TIMEOUT_S, SESSION_TIMEOUT_MS
from bench.harness.register import count_purchases, database
from bench.harness.stage import finish, stage
from bench.harness.timing import Result, cpu_seconds, process_cpu
from reghub import wiring
from reghub.settings import Settings
from sinks.migrations import upgrade
from sinks.register import Register, make_engine
from streams.processor import RegisterProcessor

SETTLE_S = 20.0  # how long to wait for every worker to get partitions once all are held
STOP_TIMEOUT_S = 15.0

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
        "kafka_idempotence": False,  # as in every other mode: the embedded Tansu refuses InitProducerId
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


async def run(args: argparse.Namespace) -> None:
    """Produce, read the ceiling, then time the worker processes end to end; print the figures."""
    async with stage(args) as s:
        async with database(args.database_url) as url:
            multi, dialect, added = await end_to_end_workers(
                s.broker.bootstrap, s.prefix, url, args.n, args.max_records, args.workers,
                s.topic, args.partitions, s.broker_pid, args.gc_threshold,
            )  # fmt: skip
        e2e = multi.result
        mean = e2e.records / max(e2e.batches, 1)
        print_workers(multi, added, s.topic)
    workers = [(w.batches, w.messages) for w in multi.workers]
    finish(s.produce_rate, s.top, e2e, dialect, mean, workers)
