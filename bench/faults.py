"""Fault campaign: the real worker processes against the real broker and PostgreSQL, under faults.

Run as `python -m bench.faults [-n 20000] [--only kill9,fuzz] [--stall 60] [--refuse 45]
[--fuzz 100000] …` (`--help` lists every flag). Each scenario gets a fresh Tansu broker, a fresh
PostgreSQL database (created, migrated with `sinks.migrations.upgrade`, dropped at the end), its own
topic prefix and consumer group, and two `python -m reghub worker` processes configured by
`REGHUB_*` variables (as `tests/test_worker_process.py` starts one). N synthetic reports
(`reghub.synthetic`, spread over persons and 4 partitions) stream in while the fault happens:

1. `kill9`: 20 `kill -9`s of a random live worker at random moments of the stream; each killed
   worker is started again after a random 0.5-3 s.
2. `broker-stall`: half the reports paced, then the other half at once; while the workers work
   through that backlog (once the register has 500 more rows), Tansu is stopped (SIGSTOP) for
   `--stall` seconds; 2 s before it continues (SIGCONT) the workers are killed with -9 (all of
   them, or `--stall-victims N`), so that a batch the register has committed is never published by
   the worker that wrote it; they are started again after SIGCONT. (A produce request already
   written to the stopped broker's socket is still taken when it continues; what a big batch's
   publish had not yet written is what a worker without an outbox loses.)
3. `db-refuses`: the database refuses connections for `--refuse` seconds (`ALTER DATABASE …
   ALLOW_CONNECTIONS false` and `pg_terminate_backend` of its backends, as the admin user on the
   admin database), then accepts them again.
4. `pg-terminate`: `--terminations` times, the workers' backends are terminated while one of them
   is inside a transaction (polled in pg_stat_activity).
5. `fuzz`: `--fuzz` hostile records (`bench.hostile`: hypothesis strategies derived from the input
   schemas) produced to the input topics as fast as the broker takes them; the workers must stay
   alive with /health answering, and every record must be dead-lettered with a reason (matched by
   the source position in its headers), or, if it happens to be valid, be taken: registered or
   parked (`processed_messages`) or applied (the change feed, for topics that keep no ids). A
   record identical to an earlier one with the same id is answered by that one's dead letter. In
   this row "registered" counts the valid records taken and "decided" the dispensings among them
   with a decision.

After the fault, the scenario waits until it is quiet: the register's and the broker's committed
offsets together cover every input record, and nothing changed on the register or the output topics
for a few seconds (or 40 s when something is still missing: a worker retries a failed batch after
up to 30 s). The workers are stopped (SIGTERM), then everything is counted from its source of truth:

- sent: reports the broker acknowledged (acks=all), by report id;
- registered: distinct report ids in `purchases` (SQL);
- decided: distinct report ids with a decision on `ctr.decisions.v1` (the whole topic read by a new
  consumer); decisions of the same report published more than once are counted as republished
  (at-least-once; consumers dedupe by report id), not as doubled;
- dead-lettered: records on `ctr.dead-letter.v1`;
- lost: reports sent but neither registered nor dead-lettered ("lost reports"), and registered
  reports without a decision ("lost decisions");
- doubled: report ids with more than one purchase row, plus subsidy periods whose saldo is not the
  sum of the bases of the purchases registered in them (a report counted twice shows there even
  though its row is upserted once);
- recovered: seconds from the end of the fault (or of the stream, if that ended later) until every
  sent report was registered or dead-lettered and every registered one decided.

A scenario passes with nothing lost, nothing doubled, no worker exit it did not cause, and quiet
within `--settle-timeout`; fuzz also needs every record accounted for, every dead letter with a
non-empty `reghub-reason` and /health answering throughout. The exit status is 0 when all pass.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from reghub import synthetic
from reghub.broker import EmbeddedBroker, create_topics, free_port
from sinks.migrations import upgrade
from sinks.register import make_engine
from streams.topics import (
    CHANGES,
    DEAD_LETTER,
    DECISIONS,
    DISPENSINGS,
    INPUTS,
    TopicNames,
    TopicSpec,
)

PG_ADMIN_DSN = os.environ.get("REGHUB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REPO = Path(__file__).resolve().parent.parent
PSEUDONYM_KEY = "faults-pseudonym-key-0123456789"
SESSION_TIMEOUT_MS = 6_000
MONITOR_APP = "reghub-faults-monitor"
"""application_name of the campaign's own connection, so pg-terminate leaves it alone."""
QUIET_S = 3.0
GIVE_UP_S = 40.0
IDLE_S = 1.5  # reading a whole topic: nothing new for this long after its reported end is its end
HEALTH_GRACE_S = 8.0  # a worker started this recently may not answer /health yet
SCENARIOS = ("kill9", "broker-stall", "db-refuses", "pg-terminate", "fuzz")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- the register: a fresh database, and the campaign's own connection to it ---------------------


def _dsn(name: str) -> str:
    return f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"


def _url(name: str) -> str:
    return _dsn(name).replace("postgresql://", "postgresql+asyncpg://", 1)


@contextlib.asynccontextmanager
async def fresh_database(label: str, keep: bool = False) -> AsyncIterator[str]:
    """A new, migrated PostgreSQL database; dropped (connections or not) when the block ends, unless
    `keep`."""
    name = f"reghub_faults_{label.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            engine = make_engine(_url(name))
            try:
                await upgrade(engine)
            finally:
                await engine.dispose()
            yield name
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            if keep:
                log(f"database {name} kept")
            else:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


class Sql:
    """The campaign's connection to the scenario's database; reconnects after a fault took it."""

    def __init__(self, name: str) -> None:
        self.dsn = _dsn(name)
        self.conn: asyncpg.Connection | None = None

    async def _connection(self) -> asyncpg.Connection:
        if self.conn is None or self.conn.is_closed():
            self.conn = await asyncpg.connect(
                self.dsn, timeout=5, server_settings={"application_name": MONITOR_APP}
            )
        return self.conn

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record] | None:
        """Rows, or None while the database cannot be reached."""
        try:
            conn = await self._connection()
            return await conn.fetch(query, *args, timeout=10)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            if self.conn is not None:
                with contextlib.suppress(Exception):
                    self.conn.terminate()
            self.conn = None
            return None

    async def scalar(self, query: str, *args: Any) -> Any:
        rows = await self.fetch(query, *args)
        return None if not rows else rows[0][0]

    async def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                await self.conn.close()


# -- worker processes -------------------------------------------------------------------------------


class Worker:
    """One `python -m reghub worker` process, in its own process group."""

    def __init__(self, index: int, env: dict[str, str], folder: Path) -> None:
        self.index = index
        self.env = env
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.starts = 0
        self.last_health: dict[str, Any] = {}

    @property
    def log_path(self) -> Path:
        return self.folder / f"worker-{self.index}.log"

    def start(self) -> None:
        env = {**self.env, "REGHUB_WEB_PORT": str(self.port)}
        with open(self.log_path, "ab") as out:
            out.write(f"--- start {self.starts + 1} at {time.strftime('%H:%M:%S')}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "reghub", "worker"],
                env=env,
                cwd=self.folder,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started_at = time.monotonic()
        self.starts += 1

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL of its group after `timeout`; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        return self.proc.wait()

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5) as resp:
            return json.loads(resp.read())

    def last_error(self) -> str:
        """The exception that ended its last run, as its log tells it: the last one logged since
        that run started (not counting errors of the logging itself), with the last frame of the
        project's own code before it."""
        text = self.log_tail(200_000)
        run = text[text.rfind("--- start ") :].splitlines()
        candidates: list[tuple[str, str]] = []
        frame, in_logging_error, logging_errors = "", False, 0
        for ln in run:
            stripped = ln.strip()
            if stripped == "--- Logging error ---":
                in_logging_error, logging_errors = True, logging_errors + 1
            elif in_logging_error and stripped.startswith("Message:"):
                in_logging_error = False
            if in_logging_error:
                continue
            if stripped.startswith(f'File "{REPO}/') and "site-packages" not in stripped:
                frame = stripped.replace(f"{REPO}/", "")
            elif re.match(r"^[\w.]+(Error|Exception)\b", ln):
                candidates.append((stripped, frame))
        if candidates:
            error, where = candidates[-1]
            return f"{error} ({where})" if where else error
        if logging_errors:
            return "no exception in its log: the crash's own log record failed to format"
        return "no exception in its log"

    def log_tail(self, chars: int = 1500) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""


class Pool:
    """The scenario's workers: started, killed on purpose, restarted; exits nobody caused are crashes."""

    def __init__(self, env: dict[str, str], folder: Path, count: int) -> None:
        self.workers = [Worker(i, env, folder) for i in range(count)]
        self.expected: set[int] = set()  # workers killed on purpose and not started again yet
        self.crashes: list[str] = []
        self.kills = 0
        self.health_probes = 0
        self.health_misses: list[str] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def start(self) -> None:
        for w in self.workers:
            w.start()
        self._tasks = [
            asyncio.create_task(self._supervise()),
            asyncio.create_task(self._probe_health()),
        ]

    async def ready(self, timeout: float = 60.0) -> None:
        """Until every worker answers /health."""
        deadline = time.monotonic() + timeout
        waiting = set(range(len(self.workers)))
        while waiting and time.monotonic() < deadline:
            for i in list(waiting):
                with contextlib.suppress(OSError, ValueError):
                    await asyncio.to_thread(self.workers[i].health)
                    waiting.discard(i)
            await asyncio.sleep(0.2)
        if waiting:
            tails = "\n".join(self.workers[i].log_tail() for i in waiting)
            raise RuntimeError(f"workers {sorted(waiting)} did not answer /health:\n{tails}")

    def alive(self) -> list[Worker]:
        return [w for w in self.workers if w.alive and w.index not in self.expected]

    def kill9(self, w: Worker) -> None:
        self.expected.add(w.index)
        w.kill9()
        self.kills += 1

    def restart(self, w: Worker) -> None:
        w.start()
        self.expected.discard(w.index)

    async def restart_after(self, w: Worker, delay: float) -> None:
        await asyncio.sleep(delay)
        if not self._stopping:
            self.restart(w)

    async def _supervise(self) -> None:
        """An exit nobody caused is a crash: noted with its code and log, and the worker restarted."""
        while True:
            await asyncio.sleep(0.2)
            for w in self.workers:
                if w.index in self.expected or w.alive or self._stopping:
                    continue
                code = w.proc.returncode if w.proc is not None else None
                self.crashes.append(
                    f"worker {w.index} exited with {code} at {time.strftime('%H:%M:%S')}: "
                    f"{w.last_error()}"
                )
                await asyncio.sleep(1.0)
                if not self._stopping:
                    w.start()

    async def _probe_health(self) -> None:
        """/health of every live worker once a second (not in its first seconds after a start)."""
        while True:
            await asyncio.sleep(1.0)
            for w in self.workers:
                if not w.alive or w.index in self.expected:
                    continue
                if time.monotonic() - w.started_at < HEALTH_GRACE_S:
                    continue
                self.health_probes += 1
                try:
                    w.last_health = await asyncio.to_thread(w.health)
                except (OSError, ValueError) as exc:
                    if w.alive and not self._stopping:
                        self.health_misses.append(f"worker {w.index}: {exc}")

    async def stop(self) -> list[int | None]:
        self._stopping = True
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        return await asyncio.gather(*(asyncio.to_thread(w.stop) for w in self.workers))


# -- the broker side: producing, tailing, reading whole topics --------------------------------------


@dataclass
class Sent:
    """What the broker acknowledged: report ids, and where each record landed."""

    ids: set[str] = field(default_factory=set)
    positions: dict[int, tuple[str, int, int]] = field(default_factory=dict)  # item → (t, p, o)
    ends: dict[tuple[str, int], int] = field(default_factory=dict)  # last offset acked + 1
    refused: Counter[str] = field(default_factory=Counter)  # non-retriable errors, by type
    retries: int = 0
    last_ack_at: float = 0.0


class Feeder:
    """Produces with acks=all, paced or at full speed; a record that fails is sent again."""

    def __init__(self, bootstrap: str, request_timeout_s: float) -> None:
        self.producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=False,
            linger_ms=5,
            request_timeout_ms=int(request_timeout_s * 1000),
            max_request_size=4 * 1024 * 1024,
        )
        self.sent = Sent()

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def send(
        self,
        items: list[tuple[int, str, bytes | None, bytes | None, int | None, str | None]],
        rate: float | None = None,
        chunk: int = 2_000,
        attempts: int = 1_000,
    ) -> None:
        """items: (index, topic, key, value, timestamp ms, report id). `rate` per second, or all at
        once in chunks. A record whose error is not retriable is tried `attempts` times at most."""
        if rate:
            chunk = max(1, int(rate * 0.05))
        started = time.monotonic()
        for c in range(0, len(items), chunk):
            if rate:
                due = started + c / rate
                if due > time.monotonic():
                    await asyncio.sleep(due - time.monotonic())
            todo = items[c : c + chunk]
            tries = 0
            while todo:
                tries += 1
                futures: list[Any] = []
                for _i, topic, key, value, ts, _rid in todo:
                    try:
                        futures.append(
                            await self.producer.send(topic, value, key=key, timestamp_ms=ts)
                        )
                    except KafkaError as exc:  # refused before it left: too large, …
                        futures.append(_failed(exc))
                results = await asyncio.gather(*futures, return_exceptions=True)
                again = []
                for item, res in zip(todo, results, strict=True):
                    if isinstance(res, BaseException):
                        retriable = isinstance(res, KafkaError) and res.retriable
                        if (not retriable and tries >= 3) or tries >= attempts:
                            self.sent.refused[type(res).__name__] += 1
                        else:
                            again.append(item)
                        continue
                    index, _t, _k, _v, _ts, rid = item
                    self.sent.positions[index] = (res.topic, res.partition, res.offset)
                    where = (res.topic, res.partition)
                    self.sent.ends[where] = max(self.sent.ends.get(where, 0), res.offset + 1)
                    if rid is not None:
                        self.sent.ids.add(rid)
                self.sent.last_ack_at = time.monotonic()
                if again:
                    self.sent.retries += len(again)
                    await asyncio.sleep(0.5)
                todo = again


async def _failed(exc: BaseException) -> None:
    raise exc


class Tail:
    """Follows a topic from its beginning (no group) and calls `on_record` for each record."""

    def __init__(
        self, bootstrap: str, topic: str, on_record: Callable[[ConsumerRecord], None]
    ) -> None:
        self.consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )
        self.on_record = on_record
        self.records = 0
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                batch = await self.consumer.getmany(timeout_ms=200, max_records=10_000)
            except Exception:  # the broker may be stopped: try again
                await asyncio.sleep(0.5)
                continue
            for recs in batch.values():
                for rec in recs:
                    self.records += 1
                    self.on_record(rec)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.consumer.stop()


async def read_all(
    bootstrap: str, topic: str, keep: Callable[[ConsumerRecord], Any], timeout: float = 300.0
) -> list[Any]:
    """`keep(record)` for every record of `topic` now, read by a new consumer from the beginning until
    it has reached the end offsets the broker reports and then received nothing for `IDLE_S` (Tansu's
    reported end can be short of the real one: the base offset of the last record batch, plus one)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    try:
        await consumer.topics()
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[Any] = []
        seen = dict.fromkeys(tps, 0)
        deadline = time.monotonic() + timeout
        idle_since = time.monotonic()
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: read {len(out)} records, not to the end")
            batch = await consumer.getmany(timeout_ms=200, max_records=20_000)
            for tp, recs in batch.items():
                out.extend(keep(r) for r in recs)
                seen[tp] = recs[-1].offset + 1
            if batch:
                idle_since = time.monotonic()
            elif all(seen[tp] >= ends[tp] for tp in tps) and (
                time.monotonic() - idle_since >= IDLE_S
            ):
                return out
    finally:
        await consumer.stop()


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """What the campaign keeps of a dead letter: its headers, not the (maybe huge) value."""

    reason: str
    message_id: str
    source: tuple[str, int, int]  # topic, partition, offset of the record it rejects

    @classmethod
    def of(cls, rec: ConsumerRecord) -> DeadLetter:
        def number(name: str) -> int:
            value = header(rec, name)
            return int(value) if value.lstrip("-").isdigit() else -1

        return cls(
            header(rec, "reghub-reason"),
            header(rec, "reghub-message-id"),
            (
                header(rec, "reghub-source-topic"),
                number("reghub-source-partition"),
                number("reghub-source-offset"),
            ),
        )


def purchase_decision(rec: ConsumerRecord) -> str | None:
    """The report id of a purchase decision (None for anything else on the topic)."""
    try:
        d = orjson.loads(rec.value)
    except (orjson.JSONDecodeError, TypeError):
        return None
    if isinstance(d, dict) and d.get("kind", "purchase") == "purchase":
        rid = d.get("report_id")
        return rid if isinstance(rid, str) else None
    return None


def change_outcome(rec: ConsumerRecord) -> tuple[str, str, str] | None:
    """(source topic, message id, outcome) of a change-feed record."""
    try:
        c = orjson.loads(rec.value)
        return c["source_topic"], c["message_id"], c["outcome"]
    except (orjson.JSONDecodeError, TypeError, KeyError):
        return None


def header(rec: ConsumerRecord, name: str) -> str:
    for k, v in rec.headers or ():
        if k == name:
            return (v or b"").decode("utf-8", "replace")
    return ""


# -- one scenario's hub ----------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table, and what the scenario noticed on the way."""

    scenario: str
    sent: int = 0
    registered: int = 0
    decided: int = 0
    dead_lettered: int = 0
    lost_reports: int = 0
    lost_decisions: int = 0
    doubled: int = 0
    republished: int = 0
    recovered_s: float | None = None
    quiet: bool = False
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.lost_reports + self.lost_decisions

    @property
    def passed(self) -> bool:
        return not self.lost and not self.doubled and self.quiet and not self.problems


class Hub:
    """A scenario's broker, database, topics, group, workers and the campaign's watchers."""

    def __init__(self, label: str, args: argparse.Namespace, folder: Path) -> None:
        self.label = label
        self.args = args
        self.folder = folder
        run = uuid.uuid4().hex[:6]
        self.names = TopicNames(f"faults{run}.{label}.")
        self.group = f"faults{run}.{label}.register"
        self.broker = EmbeddedBroker(log_path=folder / "tansu.log")
        self.db = ""
        self.sql: Sql | None = None
        self.pool: Pool | None = None
        self.feeder: Feeder | None = None
        self.decisions: Counter[str] = Counter()  # report id → decision records (tail)
        self.dead_ids: set[str] = set()  # claimed message ids of dead letters (tail)
        self.tails: list[Tail] = []
        self._offsets: AIOKafkaConsumer | None = None
        self._committed: AIOKafkaConsumer | None = None
        self.broker_stopped = False

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    def topic(self, spec: TopicSpec) -> str:
        return self.names(spec)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Hub]:
        self.broker.start()
        try:
            async with fresh_database(self.label, self.args.keep_database) as db:
                self.db = db
                self.sql = Sql(db)
                try:
                    await create_topics(self.bootstrap, self.names, self.args.partitions)
                    await self._start_watchers()
                    env = self.worker_env()
                    self.pool = Pool(env, self.folder, self.args.workers)
                    self.pool.start()
                    await self.pool.ready()
                    self.feeder = Feeder(self.bootstrap, request_timeout_s=self.args.stall + 120)
                    await self.feeder.start()
                    yield self
                finally:
                    self.cont_broker()
                    if self.feeder is not None:
                        with contextlib.suppress(Exception):
                            await self.feeder.stop()
                    if self.pool is not None:
                        await self.pool.stop()
                    await self._stop_watchers()
                    await self.sql.close()
        finally:
            self.cont_broker()
            self.broker.stop()

    def worker_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGHUB_")}
        env.update(
            {
                "PYTHONPATH": str(REPO),
                "REGHUB_KAFKA_BOOTSTRAP": self.bootstrap,
                "REGHUB_KAFKA_IDEMPOTENCE": "false",  # Tansu refuses InitProducerId
                "REGHUB_DATABASE_URL": _url(self.db),
                "REGHUB_TOPIC_PREFIX": self.names.prefix,
                "REGHUB_CONSUMER_GROUP": self.group,
                "REGHUB_PSEUDONYM_KEY": PSEUDONYM_KEY,
                "REGHUB_KAFKA_SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
                "REGHUB_REPORT_GRACE_SECONDS": "1000000000",
                "REGHUB_DATA_DIR": str(self.folder / ".reghub"),
                "REGHUB_LOG_LEVEL": "warning",
            }
        )
        return env

    async def _start_watchers(self) -> None:
        def on_decision(rec: ConsumerRecord) -> None:
            rid = purchase_decision(rec)
            if rid is not None:
                self.decisions[rid] += 1

        def on_dead(rec: ConsumerRecord) -> None:
            self.dead_ids.add(header(rec, "reghub-message-id"))

        self.tails = [
            Tail(self.bootstrap, self.topic(DECISIONS), on_decision),
            Tail(self.bootstrap, self.topic(DEAD_LETTER), on_dead),
        ]
        for t in self.tails:
            await t.start()
        self._offsets = AIOKafkaConsumer(bootstrap_servers=self.bootstrap)
        await self._offsets.start()
        self._committed = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=self.group, enable_auto_commit=False
        )
        await self._committed.start()
        await self._offsets.topics()
        tps = self.input_partitions()
        self._committed.assign(tps)

    async def _stop_watchers(self) -> None:
        for t in self.tails:
            await t.stop()
        for c in (self._offsets, self._committed):
            if c is not None:
                with contextlib.suppress(Exception):
                    await c.stop()

    def input_partitions(self) -> list[TopicPartition]:
        assert self._offsets is not None
        tps = []
        for spec in INPUTS:
            name = self.topic(spec)
            for p in sorted(self._offsets.partitions_for_topic(name) or ()):
                tps.append(TopicPartition(name, p))
        return tps

    async def lag(self) -> tuple[int, int] | None:
        """(records on the input topics that neither the register's nor the broker's committed offsets
        cover, records the broker's committed offsets alone do not cover); None if not answerable."""
        assert self._offsets is not None and self._committed is not None and self.sql is not None
        tps = self.input_partitions()
        try:
            ends = await asyncio.wait_for(self._offsets.end_offsets(tps), 10)
            committed = {}
            for tp in tps:
                committed[tp] = await asyncio.wait_for(self._committed.committed(tp), 10) or 0
        except Exception:
            return None
        rows = await self.sql.fetch(
            "SELECT topic, partition, next_offset FROM consumer_offsets WHERE group_id = $1",
            self.group,
        )
        if rows is None:
            return None
        stored = {TopicPartition(r["topic"], r["partition"]): r["next_offset"] for r in rows}
        if self.feeder is not None:  # the broker's reported end can be short (see read_all)
            for (t, p), end in self.feeder.sent.ends.items():
                tp = TopicPartition(t, p)
                if tp in ends:
                    ends[tp] = max(ends[tp], end)
        either = sum(max(0, ends[tp] - max(committed[tp], stored.get(tp, 0))) for tp in tps)
        broker = sum(max(0, ends[tp] - committed[tp]) for tp in tps)
        return either, broker

    # -- faults on the broker --

    def stop_broker(self) -> None:
        assert self.broker.process is not None
        os.kill(self.broker.process.pid, signal.SIGSTOP)
        self.broker_stopped = True

    def cont_broker(self) -> None:
        if self.broker_stopped and self.broker.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.broker.process.pid, signal.SIGCONT)
            self.broker_stopped = False

    # -- waiting until it is quiet --

    async def settle(
        self,
        since: float,
        caught_up: Callable[[], Awaitable[bool]],
        snapshot: Callable[[], Awaitable[tuple[Any, ...]]],
    ) -> tuple[bool, float | None, str]:
        """Wait until quiet; returns (quiet, seconds from `since` to caught up or None, and the lag
        or, when not quiet, why)."""
        timeout = self.args.settle_timeout
        recovered: float | None = None
        last: tuple[Any, ...] | None = None
        changed = time.monotonic()
        lag_text = "unknown"
        assert self.pool is not None
        while time.monotonic() - since < timeout:
            now = time.monotonic()
            if recovered is None and await caught_up():
                recovered = now - since
            snap = await snapshot()
            if snap != last:
                last, changed = snap, now
            lag = await self.lag()
            if lag is not None:
                lag_text = f"{lag[0]} uncovered by any committed offset, {lag[1]} by the broker's"
            still = now - changed
            if len(self.pool.crashes) >= 3 and still >= self.args.crash_loop_seconds:
                return False, recovered, f"workers keep crashing ({lag_text})"
            covered = lag is not None and lag[0] == 0
            if covered and still >= QUIET_S and (recovered is not None or still >= GIVE_UP_S):
                return True, recovered, lag_text
            await asyncio.sleep(0.25)
        return False, recovered, f"not quiet within {timeout:.0f} s ({lag_text})"


# -- counting ---------------------------------------------------------------------------------------


@dataclass
class Truth:
    """What the sources of truth say once a scenario is quiet and its workers stopped."""

    purchases: dict[str, int]  # report id → rows
    saldo_mismatches: int
    decisions: Counter[str]  # report id → decision records on the topic
    dead: list[DeadLetter]
    processed: set[tuple[str, str]]  # (source topic, message id) in processed_messages


async def count_truth(hub: Hub) -> Truth:
    assert hub.sql is not None
    rows = await hub.sql.fetch("SELECT report_id, count(*) AS n FROM purchases GROUP BY report_id")
    mismatches = await hub.sql.scalar(
        """
        SELECT count(*) FROM subsidy_periods sp
        LEFT JOIN (
            SELECT person_key, period_start, sum(basis) AS s FROM purchases
            WHERE period_start IS NOT NULL GROUP BY person_key, period_start
        ) p ON p.person_key = sp.person_key AND p.period_start = sp.period_start
        WHERE sp.saldo <> coalesce(p.s, 0)
        """
    )
    processed = await hub.sql.fetch("SELECT source_topic, message_id FROM processed_messages")
    if rows is None or mismatches is None or processed is None:
        raise RuntimeError("the register could not be read after the scenario")
    ids = await read_all(hub.bootstrap, hub.topic(DECISIONS), purchase_decision)
    decisions = Counter(rid for rid in ids if rid is not None)
    dead = await read_all(hub.bootstrap, hub.topic(DEAD_LETTER), DeadLetter.of)
    return Truth(
        {r["report_id"]: r["n"] for r in rows},
        int(mismatches),
        decisions,
        dead,
        {(r["source_topic"], r["message_id"]) for r in processed},
    )


def reason_summary(dead: list[DeadLetter], top: int = 6) -> str:
    reasons = Counter(d.reason.split(":")[0] or "(none)" for d in dead)
    return ", ".join(f"{k} {v}" for k, v in reasons.most_common(top))


def fill_reports(row: Row, hub: Hub, truth: Truth) -> None:
    """The columns for a scenario of synthetic reports."""
    assert hub.feeder is not None
    sent = hub.feeder.sent.ids
    registered = set(truth.purchases)
    dead_ids = {d.message_id for d in truth.dead}
    decided = {rid for rid in truth.decisions if rid in registered}
    row.sent = len(sent)
    row.registered = len(registered & sent)
    row.decided = len(decided & sent)
    row.dead_lettered = len(truth.dead)
    row.lost_reports = len(sent - registered - dead_ids)
    row.lost_decisions = len(registered - set(truth.decisions))
    doubled_rows = sum(1 for n in truth.purchases.values() if n > 1)
    row.doubled = doubled_rows + truth.saldo_mismatches
    row.republished = sum(truth.decisions[r] - 1 for r in decided)
    if truth.saldo_mismatches:
        row.notes.append(f"{truth.saldo_mismatches} subsidy periods whose saldo ≠ Σ basis")
    if doubled_rows:
        row.notes.append(f"{doubled_rows} report ids with more than one purchase row")
    if truth.dead:
        distinct = len({d.source for d in truth.dead})
        again = (
            f" ({len(truth.dead) - distinct} of them again)" if distinct < len(truth.dead) else ""
        )
        row.notes.append(f"dead letters{again}: {reason_summary(truth.dead)}")
    strangers = registered - sent
    if strangers:
        row.notes.append(f"{len(strangers)} registered report ids the broker never acknowledged")
    if row.lost_decisions:
        missing = sorted(registered - set(truth.decisions), key=_report_number)
        row.notes.append(
            f"registered without a decision: {len(missing)} reports, e.g. " + ", ".join(missing[:5])
        )


def _report_number(rid: str) -> int:
    tail = rid.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


# -- the scenarios ----------------------------------------------------------------------------------


def synthetic_reports(
    args: argparse.Namespace, topic: str, label: str
) -> list[tuple[int, str, bytes | None, bytes | None, int | None, str | None]]:
    """N valid reports spread over persons (so over partitions); report ids `f-<label>-<i>`."""
    rng = random.Random(args.seed)
    people = synthetic.persons(args.persons, rng)
    prefix = f"f-{label}-"
    encoded = synthetic.encoded_reports(
        args.n,
        people,
        synthetic.pharmacies(),
        synthetic.DEMO_START,
        timedelta(days=300),
        seed=args.seed,
        prefix=prefix,
    )
    return [(i, topic, k, v, ts, f"{prefix}{i}") for i, (k, v, ts) in enumerate(encoded)]


class ReportScenario:
    """A scenario of N synthetic reports: produce while the fault happens, settle, count."""

    label = ""

    def __init__(self, args: argparse.Namespace, folder: Path) -> None:
        self.args = args
        self.folder = folder
        self.rng = random.Random(f"{args.seed}-{self.label}")
        self.fault_end = 0.0
        self.row = Row(self.label)

    async def run(self) -> Row:
        folder = self.folder / self.label
        folder.mkdir(parents=True, exist_ok=True)
        hub = Hub(self.label, self.args, folder)
        async with hub.running():
            items = synthetic_reports(self.args, hub.topic(DISPENSINGS), self.label)
            log(f"{self.label}: {len(items)} reports, {self.args.workers} workers, fault starts")
            await self.fault(hub, items)
            assert hub.feeder is not None and hub.sql is not None
            since = max(self.fault_end, hub.feeder.sent.last_ack_at)
            sent = hub.feeder.sent.ids

            async def caught_up() -> bool:
                registered = await hub.sql.scalar("SELECT count(*) FROM purchases")  # type: ignore[union-attr]
                if registered is None:
                    return False
                dead = len(hub.dead_ids & sent)
                decided = sum(1 for rid in hub.decisions if rid in sent)
                return registered + dead >= len(sent) and decided >= registered

            async def snapshot() -> tuple[Any, ...]:
                registered = await hub.sql.scalar("SELECT count(*) FROM purchases")  # type: ignore[union-attr]
                return registered, hub.tails[0].records, hub.tails[1].records

            log(f"{self.label}: fault over; waiting until quiet")
            quiet, recovered, lag = await hub.settle(since, caught_up, snapshot)
            self.row.quiet, self.row.recovered_s = quiet, recovered
            if not quiet:
                self.row.problems.append(lag)
            elif recovered is None:
                self.row.notes.append(f"quiet without catching up; lag at the end: {lag}")
            assert hub.pool is not None
            pool = hub.pool
            codes = await pool.stop()
            truth = await count_truth(hub)
            fill_reports(self.row, hub, truth)
            self._pool_notes(pool, codes, hub)
        return self.row

    def _pool_notes(self, pool: Pool, codes: list[int | None], hub: Hub) -> None:
        if pool.crashes:
            self.row.problems.append(f"{len(pool.crashes)} worker exit(s) nobody caused")
            self.row.notes.extend(pool.crashes[:3])
        if pool.health_misses:
            self.row.notes.append(
                f"/health missed {len(pool.health_misses)} of {pool.health_probes} probes "
                f"(first: {pool.health_misses[0]})"
            )
        failed = {w.index: w.last_health.get("failed_batches") for w in pool.workers}
        if any(failed.values()):
            self.row.notes.append(f"batches retried (per worker, since its last start): {failed}")
        assert hub.feeder is not None
        s = hub.feeder.sent
        if s.retries:
            self.row.notes.append(f"the campaign's producer sent {s.retries} records again")
        if s.refused:
            self.row.notes.append(f"the broker refused records: {dict(s.refused)}")
        bad = [c for c in codes if c not in (0, -signal.SIGTERM, None)]
        if bad:
            self.row.notes.append(f"worker exit codes on SIGTERM: {codes}")

    async def fault(self, hub: Hub, items: list[Any]) -> None:
        raise NotImplementedError


class Kill9(ReportScenario):
    label = "kill9"

    async def fault(self, hub: Hub, items: list[Any]) -> None:
        a = self.args
        assert hub.pool is not None and hub.feeder is not None
        pool = hub.pool
        window = a.stream_seconds
        produce = asyncio.create_task(hub.feeder.send(items, rate=len(items) / window))
        moments = sorted(self.rng.uniform(2.0, window) for _ in range(a.kills))
        started = time.monotonic()
        restarts = []
        per_worker: Counter[int] = Counter()
        for at in moments:
            await asyncio.sleep(max(0.0, started + at - time.monotonic()))
            while not pool.alive():  # both down: wait for one to be back
                await asyncio.sleep(0.1)
            w = self.rng.choice(pool.alive())
            pool.kill9(w)
            per_worker[w.index] += 1
            delay = self.rng.uniform(a.restart_min, a.restart_max)
            restarts.append(asyncio.create_task(pool.restart_after(w, delay)))
        await asyncio.gather(*restarts)
        self.fault_end = time.monotonic()
        await produce
        self.row.notes.append(
            f"{pool.kills} kill -9 over {window:.0f} s (per worker {dict(sorted(per_worker.items()))}), "
            f"each restarted after {a.restart_min}-{a.restart_max} s"
        )


class BrokerStall(ReportScenario):
    label = "broker-stall"

    async def fault(self, hub: Hub, items: list[Any]) -> None:
        a = self.args
        assert hub.pool is not None and hub.feeder is not None and hub.sql is not None
        half = len(items) // 2
        await hub.feeder.send(items[:half], rate=half / max(a.stream_seconds / 2, 1.0))
        before = await hub.sql.scalar("SELECT count(*) FROM purchases") or 0
        await hub.feeder.send(items[half:])  # a backlog: the workers are busy when it stops
        # Stop the broker once the workers are into the backlog: a batch is between commit and publish.
        deadline = time.monotonic() + 10
        progressed = before
        while time.monotonic() < deadline:
            progressed = await hub.sql.scalar("SELECT count(*) FROM purchases") or 0
            if progressed >= min(before + 500, len(items)):
                break
            await asyncio.sleep(0.01)
        hub.stop_broker()
        stopped = time.monotonic()
        self.row.notes.append(
            f"broker stopped {a.stall:.0f} s with {len(items) - progressed} of {len(items)} "
            f"reports not yet registered"
        )
        kill_at = max(a.stall - 2.0, a.stall / 2)
        await asyncio.sleep(kill_at)
        # Which worker holds a batch the register committed but could not publish is not visible
        # from outside; by default every worker dies, so whichever does dies with it.
        at_kill = await hub.sql.scalar("SELECT count(*) FROM purchases")
        alive = hub.pool.alive()
        victims = self.rng.sample(alive, min(len(alive), a.stall_victims or len(alive)))
        for w in victims:
            hub.pool.kill9(w)
        await asyncio.sleep(max(0.0, stopped + a.stall - time.monotonic()))
        hub.cont_broker()
        await asyncio.sleep(self.rng.uniform(0.5, 2.0))
        for w in victims:
            hub.pool.restart(w)
        self.fault_end = time.monotonic()
        self.row.notes.append(
            f"worker(s) {sorted(w.index for w in victims)} killed -9 {kill_at:.0f} s into the "
            f"stall, with {at_kill - progressed} more reports registered than at the stop; "
            f"started again {self.fault_end - stopped - a.stall:.1f} s after SIGCONT"
        )


class DbRefuses(ReportScenario):
    label = "db-refuses"

    async def fault(self, hub: Hub, items: list[Any]) -> None:
        a = self.args
        assert hub.feeder is not None
        lead = min(10.0, a.stream_seconds / 3)
        produce = asyncio.create_task(hub.feeder.send(items, rate=len(items) / (lead + a.refuse)))
        await asyncio.sleep(lead)
        admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
        try:
            await admin.execute(f'ALTER DATABASE "{hub.db}" ALLOW_CONNECTIONS false')
            ended = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                hub.db,
            )
            await asyncio.sleep(a.refuse)
            await admin.execute(f'ALTER DATABASE "{hub.db}" ALLOW_CONNECTIONS true')
        finally:
            await admin.close()
        self.fault_end = time.monotonic()
        await produce
        self.row.notes.append(
            f"database refused connections for {a.refuse:.0f} s ({ended} backends terminated)"
        )


class PgTerminate(ReportScenario):
    label = "pg-terminate"

    async def fault(self, hub: Hub, items: list[Any]) -> None:
        a = self.args
        assert hub.feeder is not None
        window = a.stream_seconds
        produce = asyncio.create_task(hub.feeder.send(items, rate=len(items) / window))
        started = time.monotonic()
        admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
        mid, backends = 0, 0
        try:
            for k in range(a.terminations):
                at = window * (0.15 + 0.7 * (k + self.rng.random()) / a.terminations)
                await asyncio.sleep(max(0.0, started + at - time.monotonic()))
                caught = False
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:  # a worker's backend inside a transaction
                    if await admin.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 "
                        "AND application_name <> $2 AND xact_start IS NOT NULL "
                        "AND state IN ('active', 'idle in transaction')",
                        hub.db,
                        MONITOR_APP,
                    ):
                        caught = True
                        break
                    await asyncio.sleep(0.002)
                backends += await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = $1 AND application_name <> $2 AND pid <> pg_backend_pid()",
                    hub.db,
                    MONITOR_APP,
                )
                mid += caught
        finally:
            await admin.close()
        self.fault_end = time.monotonic()
        await produce
        self.row.notes.append(
            f"{a.terminations} terminations of the workers' backends ({backends} backends; "
            f"{mid} while one was inside a transaction)"
        )


class Fuzz:
    """Hostile records on every input topic; the workers must stay up and account for each."""

    label = "fuzz"

    def __init__(self, args: argparse.Namespace, folder: Path) -> None:
        self.args = args
        self.folder = folder
        self.row = Row(self.label)

    async def run(self) -> Row:
        from bench import hostile
        from streams.decode import Decoded, Source, decode

        a = self.args
        started = time.monotonic()
        records = hostile.shuffled(hostile.generate(a.fuzz, a.seed), a.seed)
        kinds = ", ".join(f"{k} {n}" for k, n in hostile.iter_kinds(records))
        size = sum(len(r.value or b"") for r in records)
        log(
            f"fuzz: {len(records)} hostile records drawn in {time.monotonic() - started:.0f} s "
            f"({size / 1e6:.0f} MB)"
        )
        self.row.notes.append(f"kinds: {kinds}")
        folder = self.folder / self.label
        folder.mkdir(parents=True, exist_ok=True)
        hub = Hub(self.label, a, folder)
        async with hub.running():
            assert hub.feeder is not None and hub.pool is not None and hub.sql is not None
            items = [
                (i, hub.topic(r.spec), r.key, r.value, None, None) for i, r in enumerate(records)
            ]
            log(f"fuzz: producing {len(items)} records to {len(INPUTS)} input topics")
            await hub.feeder.send(items, attempts=3)
            since = hub.feeder.sent.last_ack_at
            sent = hub.feeder.sent

            async def caught_up() -> bool:
                lag = await hub.lag()
                return lag is not None and lag[0] == 0

            async def snapshot() -> tuple[Any, ...]:
                processed = await hub.sql.scalar("SELECT count(*) FROM processed_messages")  # type: ignore[union-attr]
                return processed, hub.tails[0].records, hub.tails[1].records

            log("fuzz: produced; waiting until quiet")
            quiet, recovered, lag = await hub.settle(since, caught_up, snapshot)
            self.row.quiet, self.row.recovered_s = quiet, recovered
            if not quiet:
                self.row.problems.append(lag)
            pool = hub.pool
            alive_to_the_end = [w.alive for w in pool.workers]
            codes = await pool.stop()
            truth = await count_truth(hub)
            changes = await read_all(hub.bootstrap, hub.topic(CHANGES), change_outcome)
            outcomes: dict[tuple[str, str], set[str]] = {}
            for c in changes:
                if c is not None:
                    outcomes.setdefault(c[:2], set()).add(c[2])

        # What became of each produced record: dead-lettered (its source position in the headers);
        # taken, i.e. registered or parked (processed_messages keeps dispensing and correction ids)
        # or applied or parked on the change feed (the other topics keep no ids); answered by the
        # dead letter of an identical record with the same id; or lost.
        dead_at = Counter(d.source for d in truth.dead)
        no_reason = sum(1 for d in truth.dead if not d.reason.strip())
        at_position = {pos: i for i, pos in sent.positions.items()}
        dead_values: dict[tuple[str, str], set[bytes | None]] = {}
        for dl in truth.dead:
            i = at_position.get(dl.source)
            if i is not None and dl.message_id:
                dead_values.setdefault((dl.source[0], dl.message_id), set()).add(records[i].value)
        taken = truth.processed | {k for k, v in outcomes.items() if v & {"applied", "parked"}}
        accepted, lost, lost_decisions, decided, twins = 0, 0, 0, 0, 0
        lost_kinds: Counter[str] = Counter()
        examples: list[str] = []
        undecided: dict[str, str] = {}  # report id → what the change feed says became of it
        for i, pos in sent.positions.items():
            if pos in dead_at:
                continue
            r = records[i]
            d = decode(Source(pos[0], pos[1], pos[2], r.key, r.value, 0), r.spec)
            where = (pos[0], d.message_id) if isinstance(d, Decoded) else None
            said = "/".join(sorted(outcomes.get(where, {"nothing"}))) if where else "nothing"
            if where is not None and where in taken:
                accepted += 1
                if r.spec is DISPENSINGS:
                    if d.message_id in truth.decisions:
                        decided += 1
                    else:
                        lost_decisions += 1
                        undecided[d.message_id] = f"{d.message_id} ({r.kind}; {said})"
                continue
            if where is not None and r.value in dead_values.get(where, ()):
                twins += 1
                continue
            lost += 1
            lost_kinds[r.kind] += 1
            if len(examples) < 5:
                what = d.message_id if isinstance(d, Decoded) else d.reason
                examples.append(
                    f"{r.kind} at {pos[0]}/{pos[1]}/{pos[2]} ({what}; change feed: {said})"
                )
        ours = set(sent.positions.values())
        strangers = [d for d in truth.dead if d.source not in ours]
        row = self.row
        row.sent = len(sent.positions)
        row.registered = accepted
        row.decided = decided
        row.dead_lettered = len(truth.dead)
        row.lost_reports = lost
        row.lost_decisions = lost_decisions
        row.doubled = sum(1 for n in truth.purchases.values() if n > 1) + truth.saldo_mismatches
        row.republished = sum(n - 1 for n in dead_at.values() if n > 1)
        if lost:
            row.notes.append(f"not accounted for, by kind: {dict(lost_kinds.most_common())}")
            row.notes.append(f"e.g. {'; '.join(examples)}")
        if twins:
            row.notes.append(
                f"{twins} records answered by the dead letter of an identical record with their id"
            )
        if undecided:
            row.notes.append(
                f"taken without a decision: {len(undecided)} report ids, e.g. "
                + ", ".join(list(undecided.values())[:5])
            )
        if no_reason:
            row.problems.append(f"{no_reason} dead letters without a reghub-reason")
        if strangers:
            row.notes.append(
                f"{len(strangers)} dead letters name a source position the campaign did not produce "
                "to: "
                + "; ".join(f"{'/'.join(map(str, d.source))} {d.reason}" for d in strangers[:3])
            )
        if pool.crashes or not all(alive_to_the_end):
            row.problems.append(f"{len(pool.crashes)} worker crash(es)")
            row.notes.extend(pool.crashes[:3])
        if pool.health_misses:
            row.problems.append(
                f"/health missed {len(pool.health_misses)} of {pool.health_probes} probes "
                f"(first: {pool.health_misses[0]})"
            )
        else:
            row.notes.append(f"/health answered all {pool.health_probes} probes")
        if sent.refused:
            row.notes.append(f"the broker refused records (not sent): {dict(sent.refused)}")
        row.notes.append(f"dead letters: {reason_summary(truth.dead, 8)}")
        failed = {w.index: w.last_health.get("failed_batches") for w in pool.workers}
        if any(failed.values()):
            row.notes.append(f"batches retried (per worker, since its last start): {failed}")
        bad = [c for c in codes if c not in (0, -signal.SIGTERM, None)]
        if bad:
            row.notes.append(f"worker exit codes on SIGTERM: {codes}")
        return row


RUNNERS: dict[str, Callable[[argparse.Namespace, Path], Any]] = {
    "kill9": Kill9,
    "broker-stall": BrokerStall,
    "db-refuses": DbRefuses,
    "pg-terminate": PgTerminate,
    "fuzz": Fuzz,
}


# -- the table -------------------------------------------------------------------------------------


HEADER = (
    "scenario",
    "sent",
    "registered",
    "decided",
    "dead-lettered",
    "lost (reports+decisions)",
    "doubled",
    "republished",
    "recovered",
    "verdict",
)


def table(rows: list[Row]) -> str:
    """The campaign's table: one line per scenario, columns as wide as their widest cell."""
    body = [
        (
            r.scenario,
            str(r.sent),
            str(r.registered),
            str(r.decided),
            str(r.dead_lettered),
            f"{r.lost} ({r.lost_reports}+{r.lost_decisions})",
            str(r.doubled),
            str(r.republished),
            "never" if r.recovered_s is None else f"{r.recovered_s:.1f} s",
            "pass" if r.passed else "FAIL",
        )
        for r in rows
    ]
    widths = [max(len(c) for c in col) for col in zip(HEADER, *body, strict=True)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    head = line(HEADER)
    return "\n".join([head, "-" * len(head), *(line(b) for b in body)])


def details(rows: list[Row]) -> str:
    out = []
    for r in rows:
        out.append(f"{r.scenario}:")
        out.extend(f"  problem: {p}" for p in r.problems)
        out.extend(f"  {n}" for n in r.notes)
    return "\n".join(out)


async def campaign(args: argparse.Namespace) -> list[Row]:
    folder = Path(args.logs) if args.logs else Path(tempfile.mkdtemp(prefix="reghub-faults-"))
    folder.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    try:
        for name in args.only:
            began = time.monotonic()
            try:
                row = await RUNNERS[name](args, folder).run()
            except Exception as exc:  # a scenario that breaks is a failed line, not a stopped run
                row = Row(name)
                row.problems.append(f"the scenario broke: {type(exc).__name__}: {exc}")
                row.notes.append(traceback.format_exc(limit=-4))
            log(f"{name}: done in {time.monotonic() - began:.0f} s")
            rows.append(row)
            print(table([row]).splitlines()[-1], flush=True)
    finally:
        if not args.logs:
            shutil.rmtree(folder, ignore_errors=True)
    return rows


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.faults",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-n", type=int, default=20_000, help="reports per scenario (default 20000)")
    p.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help=f"comma-separated scenarios to run, in order (default: {','.join(SCENARIOS)})",
    )
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--partitions", type=int, default=4, help="partitions per topic (default 4)")
    p.add_argument("--persons", type=int, default=2_000, help="distinct persons (default 2000)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--stream-seconds",
        type=float,
        default=60.0,
        help="how long the reports stream in (kill9, pg-terminate; default 60)",
    )
    p.add_argument("--kills", type=int, default=20, help="kill9: kill -9s (default 20)")
    p.add_argument("--restart-min", type=float, default=0.5, help="kill9: restart delay from (s)")
    p.add_argument("--restart-max", type=float, default=3.0, help="kill9: restart delay to (s)")
    p.add_argument("--stall", type=float, default=60.0, help="broker-stall: seconds (default 60)")
    p.add_argument(
        "--stall-victims",
        type=int,
        default=0,
        metavar="N",
        help="broker-stall: workers killed -9 during the stall (default 0: all of them)",
    )
    p.add_argument("--refuse", type=float, default=45.0, help="db-refuses: seconds (default 45)")
    p.add_argument("--terminations", type=int, default=5, help="pg-terminate: how many (default 5)")
    p.add_argument(
        "--fuzz", type=int, default=100_000, help="fuzz: hostile records (default 100000)"
    )
    p.add_argument(
        "--settle-timeout",
        type=float,
        default=300.0,
        help="seconds after the fault to become quiet before the scenario fails (default 300)",
    )
    p.add_argument(
        "--crash-loop-seconds",
        type=float,
        default=60.0,
        help="give a scenario up when workers have crashed 3 times or more and nothing changed "
        "for this long (default 60)",
    )
    p.add_argument("--logs", metavar="DIR", help="keep worker and broker logs in DIR")
    p.add_argument(
        "--keep-database",
        action="store_true",
        help="leave each scenario's database for inspection (its name is printed)",
    )
    args = p.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in args.only if s not in RUNNERS]
    if unknown:
        p.error(f"unknown scenario(s) {unknown}; choose from {', '.join(SCENARIOS)}")
    if args.workers < 1 or args.n < 1:
        p.error("--workers and -n must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # the campaign's own clients retry through a stopped broker; their complaints are expected
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    print(
        f"fault campaign: {args.n} reports per scenario, {args.workers} workers, "
        f"{args.partitions} partitions, {args.persons} persons; scenarios {', '.join(args.only)}",
        flush=True,
    )
    rows = asyncio.run(campaign(args))
    print()
    print(table(rows))
    print()
    print(details(rows))
    return 0 if rows and all(r.passed for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
