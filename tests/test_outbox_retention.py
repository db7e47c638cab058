"""Sent outbox rows are kept `REGHUB_OUTBOX_KEEP_HOURS` (1 h by default) and then deleted, unsent rows
never: the purge rule on both registers, its cadence, and the purge done by a real worker process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from reghub.broker import EmbeddedBroker, free_port
from reghub.settings import Settings
from sinks import outbox, tables
from sinks.publisher import Outgoing
from sinks.register import Register
from streams.app import OutboxTimers
from streams.topics import DECISIONS, DISPENSINGS, TopicNames
from tests.kafka_helpers import as_json, produce, read_until
from tests.messages import PERSON, report
from tests.test_worker_process import spawn_reghub, worker_env

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_sent_rows_are_kept_an_hour_by_default() -> None:
    assert Settings(pseudonym_key="test-pseudonym-key-0123456789").outbox_keep_hours == 1.0
    assert OutboxTimers().keep_hours == 1.0


def test_the_purge_runs_every_quarter_of_the_retention_within_a_second_and_an_hour() -> None:
    assert outbox.purge_interval(1.0) == 900.0
    assert outbox.purge_interval(24.0) == 3600.0
    assert outbox.purge_interval(0.0) == 1.0
    assert outbox.purge_interval(0.001) == 1.0


async def _row(register: Register, created: datetime, sent: datetime | None) -> int:
    payload = outbox.encode([Outgoing("t", b"k", b"v")])
    async with register.engine.begin() as conn:
        result = await conn.execute(
            insert(tables.outbox).returning(tables.outbox.c.id),
            {"created_at": created, "records": 1, "payload": payload, "sent_at": sent},
        )
        return int(result.scalar_one())


async def _ids(register: Register) -> set[int]:
    async with register.engine.connect() as conn:
        return set((await conn.execute(select(tables.outbox.c.id))).scalars())


async def test_purge_deletes_rows_sent_before_the_retention_and_keeps_unsent_ones(
    register: Register,
) -> None:
    old_sent = await _row(register, NOW - timedelta(hours=3), NOW - timedelta(hours=2))
    young_sent = await _row(register, NOW - timedelta(minutes=40), NOW - timedelta(minutes=30))
    old_unsent = await _row(register, NOW - timedelta(days=3), None)
    async with register.unit_of_work() as uow:
        deleted = await outbox.purge(uow.conn, timedelta(hours=1), NOW)
    assert deleted == 1
    assert await _ids(register) == {young_sent, old_unsent}
    assert old_sent not in await _ids(register)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_the_worker_process_purges_sent_rows_after_its_retention(
    broker: EmbeddedBroker, settings: Settings, register: Register, tmp_path: Path
) -> None:
    """A retention of 3.6 s: the worker purges every second, so a row sent 2 h ago and the row of the
    decision it publishes itself are gone within seconds (with the hourly purge it had, neither was)."""
    names = TopicNames(settings.topic_prefix)
    stale = await _row(register, NOW - timedelta(hours=3), datetime.now(UTC) - timedelta(hours=2))
    await produce(
        broker.bootstrap, names(DISPENSINGS), [(PERSON.encode(), as_json(report("r-keep-1", 1)))]
    )
    env = worker_env(broker, settings, free_port(), tmp_path) | {
        "REGHUB_OUTBOX_KEEP_HOURS": "0.001",
        "REGHUB_OUTBOX_MARK_INTERVAL_MS": "0",
    }
    log = tmp_path / "worker.log"
    proc: subprocess.Popen[bytes] = spawn_reghub(["worker"], env, log, tmp_path)
    try:
        decided = await read_until(broker.bootstrap, names(DECISIONS), lambda r: len(r) >= 1, 60)
        assert decided, f"no decision within 60 s; worker log:\n{log.read_text()[-3000:]}"
        deadline = time.monotonic() + 30
        ids = await _ids(register)
        while ids and time.monotonic() < deadline:
            assert proc.poll() is None, f"the worker exited:\n{log.read_text()[-3000:]}"
            await asyncio.sleep(0.5)
            ids = await _ids(register)
        assert stale not in ids
        assert ids == set(), f"outbox rows {sorted(ids)} not purged within 30 s of the decision"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
