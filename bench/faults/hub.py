"""One scenario's hub: its broker, database, topics, consumer group, workers and the campaign's
watchers; the broker stall; how far the workers are behind; waiting until it is quiet."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from bench.faults.database import Sql, database_url, fresh_database
from bench.faults.feed import Feeder
from bench.faults.topics import Tail, header, purchase_decision
from bench.faults.workers import REPO, Pool
from reghub.broker import EmbeddedBroker, create_topics
from streams.topics import DEAD_LETTER, DECISIONS, INPUTS, TopicNames, TopicSpec

PSEUDONYM_KEY = "faults-pseudonym-key-0123456789"
SESSION_TIMEOUT_MS = 6_000

QUIET_S = 3.0
GIVE_UP_S = 40.0


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
                "REGHUB_DATABASE_URL": database_url(self.db),
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
