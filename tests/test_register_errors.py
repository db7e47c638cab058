"""Register errors by kind, on PostgreSQL: a transient one is retried with nothing committed; one caused by
one message's data is isolated, dead-lettered with a `register.*` reason, and the rest of the batch goes on.
"""

from __future__ import annotations

import asyncio
import sqlite3

import orjson
import pytest
from sqlalchemy import func, select

from reghub.settings import Settings
from sinks import tables
from sinks.changes import BatchChanges
from sinks.errors import RegisterRefused, RegisterUnavailable, classify
from sinks.register import Register, RegisterUnitOfWork, make_engine
from streams.handlers import HANDLERS
from streams.handlers.base import Handler
from streams.topics import DEAD_LETTER, DECISIONS, DISPENSINGS, TopicNames
from tests.kafka_helpers import as_json, produce, read_until, running_worker
from tests.messages import PERSON, report

pytestmark = [pytest.mark.broker, pytest.mark.database]


def postgres_only(settings: Settings) -> None:
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("the column limits and pg_terminate_backend are PostgreSQL's")


def poisoning(report_id: str) -> dict:
    """The real registry, whose dispensing handler gives one report a pharmacy number longer than its
    column (varchar 5): a data error the schema cannot see, as a rules bug could make."""
    real = HANDLERS[DISPENSINGS]

    def handle(view, d, ctx):  # type: ignore[no-untyped-def]
        effects = real.handle(view, d, ctx)
        if d.message_id == report_id:
            effects.purchases = [effects.purchases[0]._replace(pharmacy_number="123456")]
        return effects

    return {**HANDLERS, DISPENSINGS: Handler(handle, real.needs, real.redecide)}


async def test_a_data_error_of_one_message_is_isolated_and_dead_lettered(
    settings: Settings, register: Register
) -> None:
    postgres_only(settings)
    names = TopicNames(settings.topic_prefix)
    sales = [report(f"r{i}", 100_000, f"2024-04-{i + 1:02d}T11:00:00+02:00") for i in range(7)]
    sales[4]["report_id"] = "poison"
    await produce(
        settings.kafka_bootstrap, names(DISPENSINGS), [(PERSON.encode(), as_json(s)) for s in sales]
    )
    async with running_worker(settings, register, poisoning("poison")) as processor:
        dead = await read_until(settings.kafka_bootstrap, names(DEAD_LETTER), lambda r: len(r) >= 1)
        decided = await read_until(
            settings.kafka_bootstrap, names(DECISIONS), lambda r: len(r) >= 6
        )
        while processor.stats.messages < 7:
            await asyncio.sleep(0.05)
        failures = processor.stats.failures
    headers = dict(dead[0].headers)
    assert headers["reghub-message-id"] == b"poison"
    assert headers["reghub-reason"].startswith(b"register.data_error: SQLSTATE 22001")
    assert [orjson.loads(r.value)["report_id"] for r in decided] == [
        "r0", "r1", "r2", "r3", "r5", "r6"
    ]  # fmt: skip
    assert failures == 0, "a deterministic error is not retried"
    async with register.engine.connect() as conn:
        ids = (await conn.execute(select(tables.purchases.c.report_id))).scalars().all()
        saldo = (await conn.execute(select(tables.subsidy_periods.c.saldo))).scalar()
        offsets = (await conn.execute(select(tables.consumer_offsets.c.next_offset))).all()
    assert sorted(ids) == ["r0", "r1", "r2", "r3", "r5", "r6"]
    assert saldo == 600_000
    assert [o.next_offset for o in offsets] == [7]


class DropsConnectionOnce(RegisterUnitOfWork):
    """The real unit of work, whose first write loses its connection: the server ends the session."""

    dropped = False

    async def write(self, changes: BatchChanges, group_id: str) -> None:
        if not DropsConnectionOnce.dropped:
            DropsConnectionOnce.dropped = True
            await self.conn.exec_driver_sql("SELECT pg_terminate_backend(pg_backend_pid())")
        await super().write(changes, group_id)


class DroppingRegister(Register):
    unit_of_work_class = DropsConnectionOnce


async def test_a_lost_connection_is_retried_and_commits_once(settings: Settings) -> None:
    postgres_only(settings)
    names = TopicNames(settings.topic_prefix)
    register = DroppingRegister(make_engine(settings.database_url))
    DropsConnectionOnce.dropped = False
    await produce(
        settings.kafka_bootstrap,
        names(DISPENSINGS),
        [(PERSON.encode(), as_json(report("r-lost", 400_000)))],
    )
    try:
        async with running_worker(settings, register) as processor:
            decided = await read_until(
                settings.kafka_bootstrap, names(DECISIONS), lambda r: len(r) >= 1
            )
            failures = processor.stats.failures
        assert DropsConnectionOnce.dropped and failures == 1
        assert orjson.loads(decided[0].value)["report_id"] == "r-lost"
        async with register.engine.connect() as conn:
            rows = (await conn.execute(select(func.count()).select_from(tables.purchases))).scalar()
            dead = await conn.execute(select(func.count()).select_from(tables.parked_messages))
        assert rows == 1 and dead.scalar() == 0
    finally:
        await register.close()


def test_sqlite_errors_are_classified_by_kind() -> None:
    """SQLite's own exceptions, raised by a real in-memory database."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE persons (person_key TEXT PRIMARY KEY, kind TEXT NOT NULL)")
    db.execute("CREATE TABLE processed_messages (message_id TEXT PRIMARY KEY)")
    db.execute("INSERT INTO processed_messages VALUES ('m1')")
    with pytest.raises(sqlite3.IntegrityError) as not_null:
        db.execute("INSERT INTO persons VALUES ('k', NULL)")
    with pytest.raises(sqlite3.IntegrityError) as processed:
        db.execute("INSERT INTO processed_messages VALUES ('m1')")
    with pytest.raises(sqlite3.OperationalError) as missing:
        db.execute("SELECT nothing FROM nowhere")
    refused = classify(not_null.value)
    assert isinstance(refused, RegisterRefused)
    assert refused.reason == "register.integrity_error: NOT NULL constraint persons.kind"
    assert isinstance(classify(processed.value), RegisterUnavailable)  # already processed: retry
    assert isinstance(classify(missing.value), RegisterUnavailable)
