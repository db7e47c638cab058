"""The peer of `--compare`: Quix Streams reading the dispensings topic into PostgreSQL, in a child process.

`run(...)` starts a child (multiprocessing "spawn": librdkafka's threads and Quix's own poll loop stay
out of the bench's asyncio loop) that builds a Quix `Application` on the given broker (its own
consumer group, `auto_offset_reset="earliest"`, `auto_create_topics=False`: the topic exists; the
producer Quix always creates has idempotence off, since Tansu refuses InitProducerId; a session
timeout of 6 s as the bench's other consumers, since Tansu makes a join wait about half of it; its
state directory a temporary one) and one
StreamingDataFrame: the topic's JSON values, sunk with
`quixstreams.sinks.community.postgresql.PostgreSQLSink` into table `reports` of a database the
parent created empty — one row per report, the sink's defaults otherwise (it creates the table and
its columns; nested objects go to JSONB columns). Application defaults are kept too, so the sink
writes at each checkpoint, every `commit_interval` = 5 s, and after the last one.

The child reports the moment it processed its first record and the moment it processed the N-th;
the parent polls `select count(*) from reports` every 50 ms and takes the moment it reaches N. The
figure is N / (N rows visible − first record processed), both on the machine's monotonic clock; the
last record processed is printed too, so the flush tail (up to one commit interval) can be seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import queue
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import asyncpg

TABLE = "reports"
POLL_S = 0.05
TIMEOUT_S = 1800.0
INSTALL_HINT = (
    "--compare needs Quix Streams: .venv-tools/bin/uv sync --locked --extra embedded --extra test "
    "--extra bench (or pip install 'quixstreams[postgresql]>=3.20,<4')"
)


def available() -> bool:
    """Quix Streams and its PostgreSQL sink can be imported."""
    try:
        import quixstreams  # noqa: F401
        from quixstreams.sinks.community import postgresql  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class QuixResult:
    records: int
    seconds: float  # first record processed → N rows in the table
    processed_seconds: float  # first record processed → N-th record processed
    join_seconds: float  # child start → first record processed
    # CPU seconds between the first record (as the parent learnt of it) and N rows: "consumer" (the
    # Quix process, librdkafka's threads included), and whatever else `cpu` sampled
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


def _child(
    bootstrap: str,
    topic: str,
    pg: dict[str, Any],
    n: int,
    reports: Any,
    stop: Any,
    stamp: bool = False,
    commit_interval: float | None = None,
) -> None:
    """The Quix application; reports ("first", t), ("processed", t) and ("error", text); with
    `stamp`, also ("written", report ids, t) after each write the sink committed."""
    try:
        import shutil
        import tempfile
        import threading

        from quixstreams import Application
        from quixstreams.sinks.community.postgresql import PostgreSQLSink

        seen = 0
        state_dir = tempfile.mkdtemp(prefix="bench-quix-state-")  # unused (stateless), but created

        def on_processed(_topic: str, _partition: int, _offset: int) -> None:
            nonlocal seen
            seen += 1
            if seen == 1:
                reports.put(("first", time.perf_counter()))
            if seen == n:
                reports.put(("processed", time.perf_counter()))

        class StampingSink(PostgreSQLSink):
            """The sink as it is; each batch's report ids sent back once its transaction is
            committed (`write` returns after psycopg2's `with connection:` commits)."""

            def write(self, batch: Any) -> None:
                super().write(batch)
                now = time.perf_counter()
                reports.put(("written", [item.value.get("report_id") for item in batch], now))

        extra: dict[str, Any] = {}
        if commit_interval is not None:
            extra["commit_interval"] = commit_interval
        app = Application(
            **extra,
            broker_address=bootstrap,
            consumer_group=f"bench-quix-{pg['dbname']}",
            auto_offset_reset="earliest",
            auto_create_topics=False,
            use_changelog_topics=False,
            producer_extra_config={"enable.idempotence": False},
            # as the bench's other consumers: Tansu holds a JoinGroup about half the session timeout
            consumer_extra_config={"session.timeout.ms": 6_000, "heartbeat.interval.ms": 1_000},
            state_dir=state_dir,
            on_message_processed=on_processed,
            loglevel="WARNING",
        )
        sdf = app.dataframe(app.topic(topic, value_deserializer="json"))
        sdf.sink((StampingSink if stamp else PostgreSQLSink)(table_name=TABLE, **pg))
        threading.Thread(target=lambda: (stop.wait(), app.stop()), daemon=True).start()
        try:
            app.run()
        finally:
            shutil.rmtree(state_dir, ignore_errors=True)
    except BaseException:
        reports.put(("error", traceback.format_exc()))
        raise SystemExit(1) from None


def _connection(admin_dsn: str, dbname: str) -> dict[str, Any]:
    u = urlsplit(admin_dsn)
    return {
        "host": u.hostname or "127.0.0.1",
        "port": u.port or 5432,
        "dbname": dbname,
        "user": u.username or "postgres",
        "password": u.password or "",
    }


async def _count(conn: asyncpg.Connection) -> int:
    exists = await conn.fetchval("select to_regclass($1) is not null", TABLE)
    return int(await conn.fetchval(f"select count(*) from {TABLE}")) if exists else 0


CpuSampler = Callable[[int], dict[str, float]]
"""CPU seconds used so far, by name, given the Quix process's pid (its own under "consumer")."""


async def run(
    bootstrap: str, topic: str, n: int, admin_dsn: str, dbname: str, cpu: CpuSampler | None = None
) -> QuixResult:
    """One Quix run into `dbname` (created empty by the caller), from the topic's beginning."""
    pg = _connection(admin_dsn, dbname)
    ctx = multiprocessing.get_context("spawn")
    reports, stop = ctx.Queue(), ctx.Event()
    marks: dict[str, float] = {}
    cpu_at: list[dict[str, float]] = []
    started = time.perf_counter()
    proc = ctx.Process(
        target=_child, args=(bootstrap, topic, pg, n, reports, stop), name="bench-quix", daemon=True
    )
    proc.start()
    conn = await asyncpg.connect(
        host=pg["host"], port=pg["port"], user=pg["user"], password=pg["password"] or None,
        database=dbname,
    )  # fmt: skip

    def receive() -> None:
        while True:
            try:
                kind, value = reports.get_nowait()
            except queue.Empty:
                break
            if kind == "error":
                raise RuntimeError(f"the Quix application failed:\n{value}")
            marks[kind] = value
        if proc.exitcode is not None:
            raise RuntimeError(f"the Quix application exited with {proc.exitcode}")

    try:
        while True:
            receive()
            if "first" in marks and cpu is not None and not cpu_at and proc.pid is not None:
                cpu_at.append(cpu(proc.pid))
            if "first" in marks and await _count(conn) >= n:
                done_at = time.perf_counter()
                if cpu_at and proc.pid is not None:
                    cpu_at.append(cpu(proc.pid))
                break
            if time.perf_counter() - started > TIMEOUT_S:
                raise TimeoutError(f"Quix wrote {await _count(conn)} of {n} rows")
            await asyncio.sleep(POLL_S)
        deadline = time.perf_counter() + 5
        while "processed" not in marks and time.perf_counter() < deadline:
            receive()
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        proc.join(15)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
        await conn.close()
        with contextlib.suppress(Exception):
            reports.close()
    first = marks["first"]
    return QuixResult(
        records=n,
        seconds=done_at - first,
        processed_seconds=marks.get("processed", done_at) - first,
        join_seconds=first - started,
        cpu={k: cpu_at[1][k] - cpu_at[0].get(k, 0.0) for k in cpu_at[1]}
        if len(cpu_at) == 2
        else {},
    )


class LatencyPeer:
    """Quix Streams → PostgreSQLSink running on `topic` for `--latency`: `start()` returns once it
    has processed the topic's first record (a warm-up report the caller sent, so its group join is
    behind it); `committed_at` maps each report id to the moment the sink's transaction holding its
    row was committed, as the child reports them (`poll()`)."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        admin_dsn: str,
        dbname: str,
        commit_interval: float | None = None,
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.reports, self.stop_event = ctx.Queue(), ctx.Event()
        self.committed_at: dict[str, float] = {}
        self.proc = ctx.Process(
            target=_child,
            args=(
                bootstrap,
                topic,
                _connection(admin_dsn, dbname),
                1,
                self.reports,
                self.stop_event,
                True,
                commit_interval,
            ),
            name="bench-quix-latency",
            daemon=True,
        )
        self.first = False

    def poll(self) -> None:
        """Take in what the child reported; raise if it failed or exited."""
        while True:
            try:
                msg = self.reports.get_nowait()
            except queue.Empty:
                break
            if msg[0] == "error":
                raise RuntimeError(f"the Quix application failed:\n{msg[1]}")
            if msg[0] == "first":
                self.first = True
            elif msg[0] == "written":
                for rid in msg[1]:
                    self.committed_at.setdefault(rid, msg[2])
        if self.proc.exitcode is not None:
            raise RuntimeError(f"the Quix application exited with {self.proc.exitcode}")

    async def start(self) -> None:
        self.proc.start()
        deadline = time.perf_counter() + 120
        while not self.first:
            self.poll()
            if time.perf_counter() > deadline:
                raise TimeoutError("Quix processed no record within 120 s")
            await asyncio.sleep(0.02)

    def close(self) -> None:
        self.stop_event.set()
        self.proc.join(15)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)
        with contextlib.suppress(Exception):
            self.reports.close()
