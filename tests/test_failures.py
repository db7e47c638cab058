"""A register that fails: nothing is committed, the batch is retried, and the purchase counts once."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka import TopicPartition
from sqlalchemy import func, select, text

from reghub import wiring
from reghub.settings import Settings
from sinks import outbox, tables
from sinks.changes import BatchChanges
from sinks.register import Register, RegisterUnavailable, RegisterUnitOfWork, make_engine
from streams.handlers import HANDLERS
from streams.handlers.base import Handler
from streams.topics import DEAD_LETTER, DECISIONS, DISPENSINGS, TopicNames
from tests.kafka_helpers import as_json, produce, read_until, running_worker
from tests.messages import PERSON, report

pytestmark = [pytest.mark.broker, pytest.mark.database]


class FailingUnitOfWork(RegisterUnitOfWork):
    """The real unit of work, whose first writes fail as a lost database connection would."""

    failures_left = 0

    async def write(self, changes: BatchChanges, group_id: str) -> None:
        await super().write(changes, group_id)
        if FailingUnitOfWork.failures_left > 0:
            FailingUnitOfWork.failures_left -= 1
            raise RegisterUnavailable("forced: connection lost before commit")


class FailingRegister(Register):
    unit_of_work_class = FailingUnitOfWork


async def test_a_failed_write_commits_nothing_and_is_retried(settings: Settings) -> None:
    names = TopicNames(settings.topic_prefix)
    register = FailingRegister(make_engine(settings.database_url))
    FailingUnitOfWork.failures_left = 3
    await produce(
        settings.kafka_bootstrap,
        names(DISPENSINGS),
        [(PERSON.encode(), as_json(report("r-retry", 400_000, "2024-04-02T11:00:00+02:00")))],
    )
    try:
        async with running_worker(settings, register) as processor:
            while processor.stats.failures < 1:
                await asyncio.sleep(0.05)
            assert processor.consumer is not None
            partitions = [
                p for p in processor.consumer.assignment() if p.topic == names(DISPENSINGS)
            ]
            committed = {p: await processor.consumer.committed(p) for p in partitions}
            assert all(v in (None, 0) for v in committed.values()), committed
            async with register.engine.connect() as conn:
                rows = (
                    await conn.execute(select(func.count()).select_from(tables.purchases))
                ).scalar()
                stored = (await conn.execute(select(tables.consumer_offsets))).all()
            assert rows == 0 and stored == []
            records = await read_until(
                settings.kafka_bootstrap, names(DECISIONS), lambda r: len(r) >= 1
            )
            assert processor.stats.failures == 3
            # the decision is published before the Kafka offsets are committed: wait for the commit
            while processor.stats.batches < 1:
                await asyncio.sleep(0.05)
            final = {p: await processor.consumer.committed(p) for p in partitions}
        assert orjson.loads(records[0].value)["subsidy"] == 201_975
        assert sorted(v or 0 for v in final.values())[-1] == 1
        async with register.engine.connect() as conn:
            rows = (await conn.execute(select(func.count()).select_from(tables.purchases))).scalar()
            offsets = (await conn.execute(select(tables.consumer_offsets))).all()
        assert rows == 1
        assert [(o.topic, o.next_offset) for o in offsets] == [(names(DISPENSINGS), 1)]
        assert TopicPartition(offsets[0].topic, offsets[0].partition) in final
    finally:
        await register.close()


async def test_a_failed_batch_is_retried_after_a_doubling_backoff_one_line_each(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The batch policy (`streams.retrying.batches`): 0.5 s, 1 s, 2 s between the attempts, one
    error line per failed attempt with the delay and the reason, then the batch goes through."""
    caplog.set_level(logging.ERROR, logger="streams.processor")
    names = TopicNames(settings.topic_prefix)
    register = FailingRegister(make_engine(settings.database_url))
    FailingUnitOfWork.failures_left = 3
    await produce(
        settings.kafka_bootstrap,
        names(DISPENSINGS),
        [(PERSON.encode(), as_json(report("r-backoff", 400_000, "2024-04-02T11:00:00+02:00")))],
    )
    try:
        async with running_worker(settings, register) as processor:
            records = await read_until(
                settings.kafka_bootstrap, names(DECISIONS), lambda r: len(r) >= 1
            )
            assert processor.stats.failures == 3
    finally:
        await register.close()
    assert len(records) == 1
    delays = re.findall(
        r"batch not committed, will retry in (\d+\.\d) s: forced: connection lost before commit",
        caplog.text,
    )
    assert delays == ["0.5", "1.0", "2.0"], caplog.text


REFUSE_OUTBOX_MARKS = [
    "CREATE SEQUENCE outbox_refusals",
    """CREATE FUNCTION refuse_outbox_marks() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF nextval('outbox_refusals') <= 4 THEN
            RAISE EXCEPTION 'forced: outbox refused' USING ERRCODE = '40001';
        END IF;
        RETURN NULL;
    END $$""",
    "CREATE TRIGGER refuse_outbox_marks BEFORE UPDATE ON outbox FOR EACH STATEMENT "
    "EXECUTE FUNCTION refuse_outbox_marks()",
]
"""PostgreSQL refuses the first four updates of the outbox (marking rows sent) as a serialization
failure: a transient register error, from the database itself."""


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_outputs_not_marked_in_the_outbox_are_published_again_after_a_doubling_backoff(
    settings: Settings, register: Register, caplog: pytest.LogCaptureFixture
) -> None:
    """The publish policy (`streams.retrying.publishing`): a row left unsent (as by a crash) cannot be
    marked at start nor on assignment, so the first batch's publish drains the outbox first and fails
    twice more; it is published again after 0.5 s and 1 s, one error line each, and then marked."""
    caplog.set_level(logging.WARNING, logger="streams")
    names = TopicNames(settings.topic_prefix)
    left = wiring.processor(settings, register).pipeline.outputs()
    async with register.engine.begin() as conn:
        await outbox.add(
            conn, [left.incident("log_replaced", "test", "left unsent")], datetime.now(UTC)
        )
        for statement in REFUSE_OUTBOX_MARKS:
            await conn.execute(text(statement))
    await produce(
        settings.kafka_bootstrap,
        names(DISPENSINGS),
        [(PERSON.encode(), as_json(report("r-publish", 400_000, "2024-04-02T11:00:00+02:00")))],
    )
    async with running_worker(settings, register) as processor:
        records = await read_until(
            settings.kafka_bootstrap, names(DECISIONS), lambda r: len(r) >= 1
        )
        # each failed attempt had sent the outputs before the mark failed: wait for the one that ends
        while processor.stats.batches < 1:
            await asyncio.sleep(0.05)
        assert processor.stats.failures == 2
        assert not processor.relay.dirty
    assert len({r.value for r in records}) == 1
    assert "outbox not drained at start" in caplog.text
    assert "outbox not drained on assignment" in caplog.text
    delays = re.findall(
        r"outputs kept in the outbox, publishing again in (\d+\.\d) s: .*SQLSTATE 40001",
        caplog.text,
    )
    assert delays == ["0.5", "1.0"], caplog.text


async def test_a_bug_on_one_message_is_dead_lettered_and_leaves_no_trace(
    settings: Settings, register: Register
) -> None:
    """An unexpected error after the rules ran on one report: `internal_error`, nothing of it kept,
    the rest of the batch goes on — through the worker and the broker."""
    real = HANDLERS[DISPENSINGS]

    def fails_on_boom(view, d, ctx):  # type: ignore[no-untyped-def]
        effects = real.handle(view, d, ctx)  # its row and new state are already built
        if d.message_id == "boom":
            raise RuntimeError("a bug after the state was already changed")
        return effects

    handlers = {**HANDLERS, DISPENSINGS: Handler(fails_on_boom, real.needs, real.redecide)}
    names = TopicNames(settings.topic_prefix)
    sales = [report("before", 100_000), report("boom", 300_000), report("after", 100_000)]
    await produce(
        settings.kafka_bootstrap, names(DISPENSINGS), [(PERSON.encode(), as_json(s)) for s in sales]
    )
    async with running_worker(settings, register, handlers):
        dead = await read_until(settings.kafka_bootstrap, names(DEAD_LETTER), lambda r: len(r) >= 1)
        good = await read_until(settings.kafka_bootstrap, names(DECISIONS), lambda r: len(r) >= 2)
    assert dict(dead[0].headers)["reghub-reason"] == b"internal_error"
    assert dict(dead[0].headers)["reghub-message-id"] == b"boom"
    after = orjson.loads(good[1].value)
    assert after["report_id"] == "after" and after["saldo_before"] == 100_000
    async with register.engine.connect() as conn:
        saldo = (await conn.execute(select(tables.subsidy_periods.c.saldo))).scalar()
        ids = (await conn.execute(select(tables.purchases.c.report_id))).scalars().all()
    assert saldo == 200_000 and sorted(ids) == ["after", "before"]
