"""One report in two workers' batches at once, on PostgreSQL: a partition's old owner still finishing a
batch after the group gave the partition to another, or a pharmacy's resend under the person's other
number, on another partition.

Both batches find the report unregistered before either holds the person (the processed ids are read
before the persons are locked). The second waits for the first's lock, then its write meets the first's
rows: the register refuses it, no single message is to blame, and the batch is retried as transient; the
retry finds the report registered and answers it as a duplicate. Nothing is registered twice, nothing is
dead-lettered, and the saldo counts the report once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from sinks import tables
from sinks.errors import RegisterUnavailable
from streams.pipeline import BatchResult
from streams.topics import DEAD_LETTER, DISPENSINGS
from tests.hub import Hub
from tests.messages import PERSON, report
from tests.test_handler_atomicity import NAMES

pytestmark = pytest.mark.database


async def _until_registered(hub: Hub, message: dict[str, Any]) -> tuple[BatchResult, int]:
    """Send the message, as the worker does: again after each transient refusal."""
    refused = 0
    while True:
        try:
            return await hub.send((DISPENSINGS, message)), refused
        except RegisterUnavailable:
            refused += 1
            if refused > 5:
                raise


async def test_one_report_in_two_workers_batches_at_once_is_registered_once(
    database_url: str,
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer: two workers share a PostgreSQL register")
    first, second = Hub(database_url), Hub(database_url)
    gate = Hub(database_url)
    try:
        await first.pipeline.start()
        await second.pipeline.start()
        await first.send((DISPENSINGS, report("r1", 40_000, "2024-02-01T10:00:00+01:00")))
        again = report("r2", 55_000, "2024-02-02T10:00:00+01:00")
        async with gate.register.engine.connect() as conn:
            # holds the person, as a batch of a third worker would, until both batches wait for it
            await conn.execute(
                text("SELECT 1 FROM persons WHERE person_key = :k FOR UPDATE"), {"k": PERSON}
            )
            both = [
                asyncio.create_task(_until_registered(first, again)),
                asyncio.create_task(_until_registered(second, again)),
            ]
            await asyncio.sleep(1.0)
            assert not any(t.done() for t in both), "a batch did not wait for the person's lock"
            await conn.rollback()
        results = [await asyncio.wait_for(t, 30) for t in both]
        outcomes = sorted(
            (dict(result.counts).get("registered", 0), dict(result.counts).get("duplicate", 0))
            for result, _ in results
        )
        assert outcomes == [(0, 1), (1, 0)], results
        assert sum(refused for _, refused in results) >= 1
        for result, _ in results:
            assert not [o for o in result.outputs if o.topic == NAMES(DEAD_LETTER)]
        purchases = await first.rows(tables.purchases)
        assert sorted(p.report_id for p in purchases) == ["r1", "r2"]
        periods = await first.rows(tables.subsidy_periods)
        assert [(p.person_key, p.saldo) for p in periods] == [(PERSON, 95_000)]
    finally:
        for hub in (first, second, gate):
            await hub.register.close()
