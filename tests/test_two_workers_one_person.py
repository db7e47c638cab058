"""Two workers' batches on one person at once, through the real pipeline on PostgreSQL: a renumbered
person's reports under both numbers (two partitions), a person's messages on two topics, or a
partition's old owner still finishing a batch after the group gave the partition to another.

A third connection holds the person's row, as a third worker's batch would, until both batches wait for
it; then they go one after the other.

- Two reports: the later batch reads the saldo the earlier one left, and the saldo counts both (a
  `SELECT ... FOR UPDATE` that waited used to read the period as it was before the other committed).
- One report in both batches: both find it unregistered before either holds the person (the processed
  ids are read before the persons are locked). The later write meets the earlier's rows: the register
  refuses it, no single message is to blame, and the batch is retried as transient; the retry finds the
  report registered and answers it as a duplicate. Nothing is registered twice or dead-lettered.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
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


@contextlib.asynccontextmanager
async def _two_hubs_held_at_one_person(database_url: str) -> AsyncIterator[tuple[Hub, Hub, Any]]:
    """Two pipelines on one register, the person registered by one report (r1, 40,000 øre), and a
    connection holding the person's row locked (released by its rollback)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer: two workers share a PostgreSQL register")
    first, second, gate = Hub(database_url), Hub(database_url), Hub(database_url)
    try:
        await first.pipeline.start()
        await second.pipeline.start()
        await first.send((DISPENSINGS, report("r1", 40_000, "2024-02-01T10:00:00+01:00")))
        async with gate.register.engine.connect() as conn:
            await conn.execute(
                text("SELECT 1 FROM persons WHERE person_key = :k FOR UPDATE"), {"k": PERSON}
            )
            yield first, second, conn
    finally:
        for hub in (first, second, gate):
            await hub.register.close()


async def _release_when_both_wait(conn: Any, tasks: list[asyncio.Task[Any]]) -> None:
    await asyncio.sleep(1.0)
    assert not any(t.done() for t in tasks), "a batch did not wait for the person's lock"
    await conn.rollback()


async def test_two_reports_of_one_person_in_two_workers_batches_at_once_both_reach_the_saldo(
    database_url: str,
) -> None:
    async with _two_hubs_held_at_one_person(database_url) as (first, second, conn):
        both = [
            asyncio.create_task(
                _until_registered(first, report("r2", 55_000, "2024-02-02T10:00:00+01:00"))
            ),
            asyncio.create_task(
                _until_registered(second, report("r3", 70_000, "2024-02-03T10:00:00+01:00"))
            ),
        ]
        await _release_when_both_wait(conn, both)
        for result, _ in [await asyncio.wait_for(t, 30) for t in both]:
            assert dict(result.counts).get("registered") == 1, result
        purchases = await first.rows(tables.purchases)
        periods = await first.rows(tables.subsidy_periods)
    assert sorted(p.report_id for p in purchases) == ["r1", "r2", "r3"]
    assert [(p.person_key, p.saldo) for p in periods] == [(PERSON, 165_000)]
    # each report's saldo after is the one before it plus its own basis, in whichever order they went
    after = sorted(p.saldo_after for p in purchases)
    assert after[0] == 40_000 and after[2] == 165_000 and after[1] in (95_000, 110_000), after


async def test_one_report_in_two_workers_batches_at_once_is_registered_once(
    database_url: str,
) -> None:
    async with _two_hubs_held_at_one_person(database_url) as (first, second, conn):
        again = report("r2", 55_000, "2024-02-02T10:00:00+01:00")
        both = [
            asyncio.create_task(_until_registered(first, again)),
            asyncio.create_task(_until_registered(second, again)),
        ]
        await _release_when_both_wait(conn, both)
        results = [await asyncio.wait_for(t, 30) for t in both]
        purchases = await first.rows(tables.purchases)
        periods = await first.rows(tables.subsidy_periods)
    outcomes = sorted(
        (dict(result.counts).get("registered", 0), dict(result.counts).get("duplicate", 0))
        for result, _ in results
    )
    assert outcomes == [(0, 1), (1, 0)], results
    assert sum(refused for _, refused in results) >= 1
    for result, _ in results:
        assert not [o for o in result.outputs if o.topic == NAMES(DEAD_LETTER)]
    assert sorted(p.report_id for p in purchases) == ["r1", "r2"]
    assert [(p.person_key, p.saldo) for p in periods] == [(PERSON, 95_000)]
