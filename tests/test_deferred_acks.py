"""What only matters after a crash waits for its interval: Kafka's offsets are committed, and published
outbox rows marked sent, at most once per interval after a batch, and when the worker stops. The
register's offsets, written with every batch, stay exact in between."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import func, select

from reghub.settings import Settings
from sinks import tables
from sinks.register import Register
from streams.topics import DISPENSINGS, TopicNames
from tests.kafka_helpers import as_json, produce, running_worker
from tests.messages import PERSON, report

pytestmark = [pytest.mark.broker, pytest.mark.database]


async def _kafka_committed(settings: Settings, tp: TopicPartition) -> int | None:
    """The group's committed offset as any other Kafka client of the group sees it."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.consumer_group,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        return await consumer.committed(tp)
    finally:
        await consumer.stop()


async def _register_offsets(register: Register) -> dict[tuple[str, int], int]:
    t = tables.consumer_offsets
    async with register.engine.connect() as conn:
        rows = await conn.execute(select(t.c.topic, t.c.partition, t.c.next_offset))
        return {(r.topic, r.partition): r.next_offset for r in rows}


async def _unmarked_rows(register: Register) -> int:
    o = tables.outbox
    async with register.engine.connect() as conn:
        query = select(func.count()).select_from(o).where(o.c.sent_at.is_(None))
        return int((await conn.execute(query)).scalar_one())


async def _handled(processor: object, count: int) -> None:
    while processor.stats.messages < count:  # type: ignore[attr-defined]
        await asyncio.sleep(0.05)


async def test_offsets_and_outbox_marks_wait_for_the_interval_or_the_stop_and_the_registers_never_wait(
    settings: Settings, register: Register
) -> None:
    settings = settings.model_copy(
        update={"kafka_commit_interval_ms": 600_000, "outbox_mark_interval_ms": 600_000}
    )
    topic = TopicNames(settings.topic_prefix)(DISPENSINGS)
    sale = report("r-first", 100_000, "2024-04-02T11:00:00+02:00")
    await produce(settings.kafka_bootstrap, topic, [(PERSON.encode(), as_json(sale))])
    async with running_worker(settings, register) as processor:
        await asyncio.wait_for(_handled(processor, 1), 30)
        [(where, _)] = processor.stats.committed.items()
        tp = TopicPartition(*where)
        # the first batch's offsets are committed at once: the interval counts from a commit
        assert await _kafka_committed(settings, tp) == 1
        assert await _unmarked_rows(register) == 0  # and its outbox row marked sent
        later = [
            report(f"r-later-{i}", 10_000, f"2024-04-0{i + 3}T11:00:00+02:00") for i in range(2)
        ]
        await produce(
            settings.kafka_bootstrap, topic, [(PERSON.encode(), as_json(s)) for s in later]
        )
        await asyncio.wait_for(_handled(processor, 3), 30)
        assert await _register_offsets(register) == {where: 3}
        assert await _kafka_committed(settings, tp) == 1  # within the interval: not yet
        assert await _unmarked_rows(register) >= 1  # published, not yet marked
    assert await _kafka_committed(settings, tp) == 3  # committed as the worker stopped
    assert await _unmarked_rows(register) == 0  # and marked
