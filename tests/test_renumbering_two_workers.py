"""A renumbering while two worker processes share the consumer group and one of them is killed.

Purchases under the old number, the renumbering (on `cpr.person-events.v1`, keyed by the old number),
then purchases under both numbers interleaved: the two numbers lie on different partitions, so another
worker may hold the new number's reports while the renumbering is on its way. One worker is killed with
SIGKILL in the middle and a new one started. The register must end with exactly the purchases sent,
each once, all under the person's internal id, the saldo equal to their sum, and each purchase's subsidy
equal to what the same purchases get when sent under one number in payment order.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka.partitioner import murmur2
from sqlalchemy import func, select

from reghub.broker import EmbeddedBroker, free_port
from reghub.settings import Settings
from sinks import tables
from sinks.migrations import upgrade
from sinks.register import Register, make_engine
from streams.topics import DECISIONS, DISPENSINGS, PERSON_EVENTS, TopicNames
from tests.kafka_helpers import as_json, produce, read_until
from tests.messages import PERSON, renumbering, report
from tests.test_person_identity import Hub, sale
from tests.test_worker_process import spawn_reghub, worker_env

pytestmark = [pytest.mark.broker, pytest.mark.database]

PURCHASES = 20
FIRST_DAY = datetime.fromisoformat("2024-02-01T10:00:00+01:00")


def partition(key: str, partitions: int) -> int:
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def new_number_elsewhere(partitions: int) -> str:
    """A number of the same birth date as PERSON whose reports go to another partition."""
    for serial in range(1235, 1300):
        key = f"050560{serial}"
        if partition(key, partitions) != partition(PERSON, partitions):
            return key
    raise AssertionError("no such number")


def purchases(new: str) -> list[tuple[str, str, int, str]]:
    """(report id, key, price, paid at): five under the old number, then both numbers alternating."""
    found = []
    for i in range(PURCHASES):
        key = PERSON if i < 5 or i % 2 == 0 else new
        paid = (FIRST_DAY + timedelta(days=i)).isoformat()
        found.append((f"p{i:02d}", key, 40_000 + 1_000 * i, paid))
    return found


def start_worker(env: dict[str, str], tmp: Path, name: str) -> subprocess.Popen[bytes]:
    return spawn_reghub(
        ["worker"], {**env, "REGHUB_WEB_PORT": str(free_port())}, tmp / f"{name}.log", tmp
    )


async def one_number(sent: list[tuple[str, str, int, str]]) -> dict[str, int]:
    """Each purchase's subsidy when all come under one number, in payment order, in-process."""
    url = f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/reference.db"
    engine = make_engine(url)
    await upgrade(engine)
    await engine.dispose()
    hub = Hub(url)
    try:
        await hub.pipeline.start()
        for report_id, _, price, paid in sent:
            await hub.send(sale(report_id, price, paid))
        return {p.report_id: p.subsidy_entitled for p in await hub.rows(tables.purchases)}
    finally:
        await hub.register.close()


async def settled(register: Register, timeout: float) -> dict[str, Any]:
    """Wait until every purchase is registered under the old number and the renumbering applied."""
    deadline = time.monotonic() + timeout
    found: dict[str, Any] = {}
    while time.monotonic() < deadline:
        async with register.engine.connect() as conn:
            rows = (await conn.execute(select(tables.purchases))).all()
            done = await conn.scalar(
                select(func.count()).where(tables.processed_messages.c.message_id == "renumber")
            )
        found = {"rows": rows, "renumbered": done}
        if done and len(rows) >= PURCHASES and {r.person_key for r in rows} == {PERSON}:
            return found
        await asyncio.sleep(0.5)
    return found


async def test_two_workers_a_kill_and_a_renumbering_lose_and_double_nothing(
    broker: EmbeddedBroker, settings: Settings, register: Register, tmp_path: Path
) -> None:
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("two worker processes share a PostgreSQL register; SQLite has one writer")
    names = TopicNames(settings.topic_prefix)
    new = new_number_elsewhere(settings.topic_partitions)
    sent = purchases(new)
    env = worker_env(broker, settings, 0, tmp_path)
    workers = [start_worker(env, tmp_path, "w1"), start_worker(env, tmp_path, "w2")]
    try:
        for report_id, key, price, paid in sent[:5]:
            await produce(
                broker.bootstrap,
                names(DISPENSINGS),
                [(key.encode(), as_json(report(report_id, price, paid, person=key)))],
            )
        # the CPR register's feed reports the new number after the earlier sales are registered (a
        # pharmacy's renumbering onto a number that got reports first would be held for review)
        await read_until(broker.bootstrap, names(DECISIONS), lambda r: len(r) >= 5, timeout=90)
        move = renumbering("renumber", PERSON, new, "2024-02-06", source="cpr_register")
        await produce(broker.bootstrap, names(PERSON_EVENTS), [(PERSON.encode(), as_json(move))])
        for n, (report_id, key, price, paid) in enumerate(sent[5:], start=5):
            await produce(
                broker.bootstrap,
                names(DISPENSINGS),
                [(key.encode(), as_json(report(report_id, price, paid, person=key)))],
            )
            if n == 10:  # in the middle: kill one worker outright and start another
                os.killpg(workers[0].pid, signal.SIGKILL)
                workers[0].wait()
                workers.append(start_worker(env, tmp_path, "w3"))
            await asyncio.sleep(0.2)
        found = await settled(register, timeout=120)
    finally:
        for w in workers:
            if w.poll() is None:
                os.killpg(w.pid, signal.SIGTERM)
        for w in workers:
            try:
                w.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(w.pid, signal.SIGKILL)
                w.wait()
    logs = "\n".join((tmp_path / f"{n}.log").read_text()[-2000:] for n in ("w1", "w2", "w3"))
    rows = found["rows"]
    assert found["renumbered"] == 1, logs
    ids = [r.report_id for r in rows]
    assert sorted(ids) == [s[0] for s in sent], logs  # each once, none lost
    assert {r.person_key for r in rows} == {PERSON}
    async with register.engine.connect() as conn:
        periods = (await conn.execute(select(tables.subsidy_periods))).all()
        person = (
            await conn.execute(select(tables.persons).where(tables.persons.c.person_key == new))
        ).one()
    assert person.alias_of == PERSON
    assert [(p.person_key, p.saldo) for p in periods] == [(PERSON, sum(s[2] for s in sent))]
    expected = await one_number(sent)
    assert {r.report_id: r.subsidy_entitled for r in rows} == expected
