"""The scenarios of synthetic reports: N reports produced while a fault happens (kill -9 of
workers, a stopped broker, a database refusing connections, terminated backends), then settled and
counted."""

from __future__ import annotations

import abc
import argparse
import asyncio
import random
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg

from bench.faults.database import MONITOR_APP, PG_ADMIN_DSN
from bench.faults.feed import synthetic_reports
from bench.faults.hub import Hub
from bench.faults.progress import log
from bench.faults.report import Row
from bench.faults.truth import count_truth, fill_reports
from bench.faults.workers import Pool
from streams.topics import DISPENSINGS


class ReportScenario(abc.ABC):
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

    @abc.abstractmethod
    async def fault(self, hub: Hub, items: list[Any]) -> None:
        """Break something while the reports stream in; each scenario breaks its own thing."""


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
