"""A stall is never silent: the worker's watchdog names what the batch loop waits on, and a stall it
cannot mend ends in an exit the supervisor restarts, from the register's offsets, losing nothing.

Real broker, real worker process, real PostgreSQL. The hang is one a deployment can meet: another
worker frozen (a paused VM, a stopped container) while it holds the outbox relay's lock, the
PostgreSQL advisory lock every worker's relay takes before it publishes left-behind rows. The worker's
outbox sweep then waits on it with no timeout, holding the relay's own lock, and every batch's publish
waits behind that: nothing is committed, no batch fails, no line was logged.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import func, select

from reghub.broker import EmbeddedBroker, create_topics, free_port
from reghub.settings import Settings
from sinks import tables
from sinks.register import Register
from streams.topics import DISPENSINGS, TopicNames
from streams.watchdog import EXIT_STALLED
from tests.conftest import PG_ADMIN_DSN
from tests.kafka_helpers import as_json
from tests.messages import report
from tests.test_batch_shrink import person, produce_many
from tests.test_readiness import get, wait_ready
from tests.test_worker_process import spawn_reghub, worker_env

pytestmark = [pytest.mark.broker, pytest.mark.database]

RELAY_LOCK = 7365686162  # sinks.outbox.lock
REPORTS = 300
WAITING = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"


async def registered(register: Register) -> int:
    async with register.engine.connect() as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(tables.purchases))).scalar()
        )


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_stall_is_named_and_ends_in_a_restart_that_loses_nothing(
    broker: EmbeddedBroker,
    settings: Settings,
    register: Register,
    database_url: str,
    tmp_path: Path,
) -> None:
    await create_topics(broker.bootstrap, TopicNames(settings.topic_prefix), 2)
    port = free_port()
    env = worker_env(broker, settings, port, tmp_path)
    env.update(
        {
            "REGHUB_READY_STALL_SECONDS": "3",
            "REGHUB_HEALTH_PROBE_SECONDS": "1",
            "REGHUB_OUTBOX_SWEEP_SECONDS": "0.5",
            "REGHUB_LOG_LEVEL": "warning",
        }
    )
    log = tmp_path / "worker.log"
    proc = spawn_reghub(["worker"], env, log, tmp_path)
    frozen = await asyncpg.connect(
        PG_ADMIN_DSN.rsplit("/", 1)[0] + "/" + database_url.rsplit("/", 1)[1]
    )
    try:
        await wait_ready(port, True, 60, log)
        topic = TopicNames(settings.topic_prefix)(DISPENSINGS)
        reports = [
            report(f"w{n}", 10_000, "2024-03-01T10:00:00+01:00", person=person(n))
            for n in range(REPORTS)
        ]
        await produce_many(broker.bootstrap, topic, reports[:1])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and await registered(register) < 1:
            await asyncio.sleep(0.1)  # the group is joined and a first batch went through
        # the other worker, frozen while it holds the relay's lock
        await frozen.execute("SELECT pg_advisory_lock($1)", RELAY_LOCK)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not await frozen.fetchval(WAITING):
            await asyncio.sleep(0.1)  # the worker's outbox sweep waits for it (every 0.5 s)
        await produce_many(broker.bootstrap, topic, reports[1:])
        try:
            status = await asyncio.to_thread(proc.wait, 30)
        except subprocess.TimeoutExpired:
            health = await asyncio.to_thread(get, port, "/health")
            pytest.fail(f"the stalled worker went on silently: {health}\n{log.read_text()[-3000:]}")
        text = log.read_text()
        assert status == EXIT_STALLED, text[-3000:]
        stalled = [line for line in text.splitlines() if "stalled: nothing committed" in line]
        assert len(stalled) == 1, text[-3000:]
        assert "relay lock: outbox sweep for" in stalled[0], stalled[0]
        assert "exiting with 70" in stalled[0], stalled[0]
        assert "still stalled" in text and "exiting with 70" in text

        # the frozen worker comes back (or is killed): the restarted worker registers everything
        await frozen.execute("SELECT pg_advisory_unlock($1)", RELAY_LOCK)
        proc = spawn_reghub(["worker"], env, tmp_path / "worker-2.log", tmp_path)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and await registered(register) < REPORTS:
            await asyncio.sleep(0.2)
        assert await registered(register) == REPORTS
    finally:
        await frozen.close()
        if proc.poll() is None:
            proc.terminate()
            await asyncio.to_thread(proc.wait, 20)


async def produce_one_batch_each(bootstrap: str, topic: str, reports: list[dict]) -> None:
    """Each report sent on its own and acknowledged before the next: one record batch each, as a
    steady trickle of reports leaves them in the broker."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    try:
        for r in reports:
            await (await producer.send(topic, as_json(r), key=r["person"]["key"].encode()))
    finally:
        await producer.stop()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_fetches_that_come_back_empty_while_behind_widen_the_fetch_wait(
    broker: EmbeddedBroker,
    settings: Settings,
    register: Register,
    database_url: str,
    tmp_path: Path,
) -> None:
    """The soak's stall, made quick: Tansu lists all of a partition's batches within the fetch's
    wait, and a fetch whose wait ran out first comes back empty, without an error, the high watermark
    ahead. 3,000 batches take about the 1 ms wait asked for here to list, as a partition of the
    soak took more than the worker's 50 ms by minute 43: the worker registered a report now and then
    between empty answers (58 in 30 s). It now asks for a longer wait after three polls within a
    minute that bring nothing or a record or two while it is behind, and registers every report."""
    topic = TopicNames(settings.topic_prefix)(DISPENSINGS)
    await create_topics(broker.bootstrap, TopicNames(settings.topic_prefix), 1)
    reports = [
        report(f"e{n}", 10_000, "2024-03-01T10:00:00+01:00", person=person(n)) for n in range(3_000)
    ]
    await produce_one_batch_each(broker.bootstrap, topic, reports)
    port = free_port()
    env = worker_env(broker, settings, port, tmp_path)
    env.update({"REGHUB_FETCH_MAX_WAIT_MS": "1", "REGHUB_LOG_LEVEL": "warning"})
    log = tmp_path / "worker.log"
    proc = spawn_reghub(["worker"], env, log, tmp_path)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and await registered(register) < len(reports):
            await asyncio.sleep(0.2)
        text = log.read_text()
        health = await asyncio.to_thread(get, port, "/health")
        assert await registered(register) == len(reports), f"{health}\n{text[-3000:]}"
        assert "the broker's fetch wait raised from 1 to 10 ms" in text, text[-3000:]
    finally:
        if proc.poll() is None:
            proc.terminate()
            await asyncio.to_thread(proc.wait, 20)
