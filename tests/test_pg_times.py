"""`sinks.pg_times`: the register's `timestamptz` codec gives PostgreSQL the same instants asyncpg's own
does, and reads back what asyncpg's own reads.

Checked against PostgreSQL's own rendering of what it stored (`to_char` in UTC) and against a plain
asyncpg connection with its built-in codec, on the same rows: never against the codec's own arithmetic.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from sinks.register import make_engine

ZONES: list[Any] = [
    UTC,
    ZoneInfo("Europe/Copenhagen"),
    ZoneInfo("America/St_Johns"),
    timezone(timedelta(hours=14)),
    timezone(timedelta(hours=-12, minutes=-30)),
]


def sample(n: int, seed: int = 11) -> list[datetime]:
    """Aware times from year 1 to 9999 in several zones, with the edges near PostgreSQL's epoch."""
    rng = random.Random(seed)
    earliest = datetime(1, 1, 2, tzinfo=UTC)
    span = (datetime(9999, 12, 30, tzinfo=UTC) - earliest) // timedelta(microseconds=1)
    times = [earliest + timedelta(microseconds=rng.randrange(span)) for _ in range(n)]
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    times += [epoch, epoch - timedelta(microseconds=1), epoch + timedelta(microseconds=1)]
    times += [datetime(2024, 3, 31, 0, 59, 59, 999_999, tzinfo=UTC)]  # the hour Copenhagen skips
    return [t.astimezone(rng.choice(ZONES)) for t in times]


def in_utc(value: datetime) -> str:
    """An aware time as `to_char(… AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')` prints it."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


async def _raw(engine: AsyncEngine) -> tuple[Any, Any]:
    conn = await engine.connect()
    raw = (await conn.get_raw_connection()).driver_connection
    return conn, raw


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_postgresql_stores_the_instant_each_time_names(database_url: str) -> None:
    times = sample(3_000)
    engine = make_engine(database_url)
    conn, raw = await _raw(engine)
    try:
        await raw.execute("CREATE TABLE times (n int PRIMARY KEY, at timestamptz)")
        await raw.copy_records_to_table("times", records=list(enumerate(times)))
        await raw.execute("INSERT INTO times VALUES ($1, $2)", -1, times[0])  # a parameter
        stored = await raw.fetch(
            "SELECT n, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS utc, at "
            "FROM times ORDER BY n"
        )
    finally:
        await conn.close()
        await engine.dispose()
    assert len(stored) == len(times) + 1
    expected = [in_utc(times[0]), *map(in_utc, times)]
    assert [row["utc"] for row in stored] == expected
    assert [row["at"] for row in stored] == [times[0], *times]  # read back: the same instants
    assert all(row["at"].tzinfo is UTC for row in stored)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_the_codec_and_asyncpgs_own_agree_both_ways(database_url: str) -> None:
    """Rows written with asyncpg's built-in codec read the same through the register's, and the other
    way round: naive times (local), dates (local midnight) and the infinities included."""
    times: list[Any] = sample(500, seed=5)
    times += [datetime(2024, 6, 1, 12, 30, 15, 123_456), date(2024, 6, 1)]  # naive, a date
    times += [datetime.max, datetime.min]  # asyncpg's infinities
    engine = make_engine(database_url)
    conn, ours = await _raw(engine)
    plain = await asyncpg.connect(_dsn(database_url))
    try:
        await plain.execute("CREATE TABLE times (writer text, n int, at timestamptz)")
        await ours.copy_records_to_table(
            "times", records=[("ours", n, t) for n, t in enumerate(times)]
        )
        await plain.copy_records_to_table(
            "times", records=[("asyncpg", n, t) for n, t in enumerate(times)]
        )
        query = "SELECT writer, n, at, at::text AS text FROM times ORDER BY n, writer"
        read_by_us = await ours.fetch(query)
        read_by_asyncpg = await plain.fetch(query)
    finally:
        await plain.close()
        await conn.close()
        await engine.dispose()
    by_writer: dict[str, list[str]] = {"ours": [], "asyncpg": []}
    for row in read_by_asyncpg:
        by_writer[row["writer"]].append(row["text"])
    assert by_writer["ours"] == by_writer["asyncpg"]  # PostgreSQL holds the same from both
    assert by_writer["ours"][-2:] == ["infinity", "-infinity"]
    assert [tuple(r) for r in read_by_us] == [tuple(r) for r in read_by_asyncpg]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_what_is_not_a_time_is_refused_as_asyncpg_refuses_it(database_url: str) -> None:
    engine = make_engine(database_url)
    conn, raw = await _raw(engine)
    try:
        await raw.execute("CREATE TEMP TABLE times (at timestamptz)")
        with pytest.raises(
            asyncpg.DataError, match=re.escape("expected a datetime.date or datetime.datetime")
        ):
            await raw.execute("INSERT INTO times VALUES ($1)", "2024-01-01T00:00:00+00:00")
    finally:
        await conn.close()
        await engine.dispose()
