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


async def test_an_idle_worker_commits_its_last_offsets_within_the_interval(
    settings: Settings, register: Register
) -> None:
    """Kafka's committed offsets follow the register's also when no record comes after the last
    batch (Kafka's own lag tools would show lag that is not there): with a 500 ms interval, a batch
    handled right after a commit is committed in Kafka within about a second of idling, on every
    partition it read, without a stop."""
    settings = settings.model_copy(update={"kafka_commit_interval_ms": 500})
    topic = TopicNames(settings.topic_prefix)(DISPENSINGS)
    first = report("r-0", 10_000, "2024-04-02T11:00:00+02:00")
    await produce(settings.kafka_bootstrap, topic, [(PERSON.encode(), as_json(first))])
    async with running_worker(settings, register) as processor:
        await asyncio.wait_for(_handled(processor, 1), 30)
        others = ["0707701234", "0909901234", "0101701234", "0202701234"]
        sales = [
            (
                key.encode(),
                as_json(report(f"r-{i}", 10_000, "2024-04-03T11:00:00+02:00", person=key)),
            )
            for i, key in enumerate(others, 1)
        ]
        await produce(settings.kafka_bootstrap, topic, sales)  # right after the first commit
        await asyncio.wait_for(_handled(processor, 5), 30)
        registered = await _register_offsets(register)
        assert sum(registered.values()) == 5
        deadline = asyncio.get_running_loop().time() + 5
        committed: dict[tuple[str, int], int | None] = {}
        while asyncio.get_running_loop().time() < deadline:
            committed = {
                where: await _kafka_committed(settings, TopicPartition(*where))
                for where in registered
            }
            if committed == registered:
                break
            await asyncio.sleep(0.2)
        assert committed == registered  # while the worker still runs and idles
