"""A batch that keeps failing gets smaller (issue: bounded under hostile values and long runs).

On PostgreSQL with a statement timeout shorter than a large batch's write, the worker used to retry the
same whole batch forever. Now a failed batch is fetched again at half its size, down to one record, and
grows back as batches succeed; `/ready` says so meanwhile. Real broker, real worker, real PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time

import asyncpg
import pytest
from sqlalchemy import func, select

from reghub.settings import Settings
from sinks import tables
from sinks.register import Register
from streams.health import Health
from streams.topics import DISPENSINGS, TopicNames
from tests.conftest import PG_ADMIN_DSN
from tests.kafka_helpers import as_json, running_worker
from tests.messages import report

pytestmark = [pytest.mark.broker, pytest.mark.database]

REPORTS = 6_000


def person(n: int) -> str:
    """Ten digits that read as a CPR number: day 1-28 of a month in 1950-1989."""
    return f"{1 + n % 28:02d}{1 + n // 28 % 12:02d}{50 + n // 336 % 40:02d}{1000 + n % 9000:04d}"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_batch_over_the_statement_timeout_is_cut_until_it_passes(
    settings: Settings, register: Register, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """6,000 reports, a 20 ms statement timeout: the whole batch cannot be written in
    time; cut in half (and again, if need be) it is, and every report is registered."""
    caplog.set_level(logging.WARNING, logger="streams.processor")
    name = database_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" SET statement_timeout = 20')
    finally:
        await admin.close()
    reports = [
        report(f"r{n}", 10_000, "2024-03-01T10:00:00+01:00", person=person(n))
        for n in range(REPORTS)
    ]
    topic = TopicNames(settings.topic_prefix)(DISPENSINGS)
    await produce_many(settings.kafka_bootstrap, topic, reports)
    async with running_worker(settings, register) as processor:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and processor.stats.messages < REPORTS:
            await asyncio.sleep(0.05)
        health = Health(processor)
        processor.stats.batch_limit = 375  # as a cut leaves it: what /ready says meanwhile
        problems = health.problems()
        processor.stats.batch_limit = None
    async with register.engine.connect() as conn:
        count = (await conn.execute(select(func.count()).select_from(tables.purchases))).scalar()
    assert count == REPORTS
    cuts = [r.getMessage() for r in caplog.records if r.getMessage().startswith("batches cut")]
    assert cuts, "no batch was cut"
    shape = r"batches cut to (\d+) records after a failed batch of (\d+)"
    cut, failed = (int(n) for n in re.fullmatch(shape, cuts[0]).groups())  # type: ignore[union-attr]
    assert cut == failed // 2
    assert processor.stats.failures >= 1
    assert "batches cut to 375 records after failures (growing back as they succeed)" in problems


async def produce_many(bootstrap: str, topic: str, reports: list[dict]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, as_json(r), key=r["person"]["key"].encode()) for r in reports
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
