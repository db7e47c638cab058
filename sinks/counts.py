"""The register's counts kept as the batches are written: purchases registered per minute, and running
totals of the register, so that the dashboard reads a few small rows whatever the number of purchases.

Two tables (`sinks.tables`), no person in either:

- `register_minutes`: per UTC minute, the purchase rows registered in it (`registered_at`), their
  subsidy and how many deviate from what the pharmacy granted, as registered. An event count: a later
  correction or a retention run does not change a past minute.
- `register_totals`: the register as it is now: purchase rows, their subsidy, the deviating ones, and
  persons (own rows, not a person's other numbers). Every change of those is added here in the
  transaction that makes it: a batch's new purchases and persons, its changes to earlier purchases
  (corrections, returns, replays), a merge of two persons, and a retention run's deletions.

Both are keyed by a `slot` as well (`slot_of`): workers writing at once add to different rows, so a
batch never waits for another worker's commit to add its counts. A reader sums the slots. The upserts
add to what is there (`ON CONFLICT DO UPDATE SET n = n + EXCLUDED.n`) on PostgreSQL and SQLite alike,
in a fixed order (minutes, then totals), last in the batch's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from sinks import tables as t
from sinks.rows import PurchaseRow
from sinks.times import utc

SLOTS = 8
"""Rows per minute (and of totals) that workers writing at once spread over."""


@dataclass(frozen=True, slots=True)
class Tally:
    """Counts to add (negative to take away): purchase rows, subsidy in øre, deviating rows, persons."""

    purchases: int = 0
    subsidy: int = 0
    deviations: int = 0
    persons: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.purchases + other.purchases,
            self.subsidy + other.subsidy,
            self.deviations + other.deviations,
            self.persons + other.persons,
        )

    def __neg__(self) -> Tally:
        return Tally(-self.purchases, -self.subsidy, -self.deviations, -self.persons)

    def __bool__(self) -> bool:
        return any((self.purchases, self.subsidy, self.deviations, self.persons))


def of_purchase(subsidy: int, deviation: int) -> Tally:
    """One purchase row with this subsidy and deviation."""
    return Tally(1, subsidy, 1 if deviation != 0 else 0)


def minute_of(at: datetime) -> datetime:
    """The UTC minute `at` falls in."""
    shown = utc(at)
    assert shown is not None
    return shown.replace(second=0, microsecond=0)


def by_minute(rows: Iterable[PurchaseRow]) -> dict[datetime, Tally]:
    """New purchase rows counted by the minute they were registered in."""
    minutes: dict[datetime, Tally] = {}
    for row in rows:
        minute = minute_of(row.registered_at)
        minutes[minute] = minutes.get(minute, Tally()) + of_purchase(row.subsidy, row.deviation)
    return minutes


def slot_of(partitions: Iterable[int]) -> int:
    """The slot a batch adds to: by its lowest partition, so workers (whose partitions differ) mostly
    add to different rows."""
    return min(partitions, default=0) % SLOTS


def _insert(conn: AsyncConnection) -> Any:
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert


async def add(
    conn: AsyncConnection, slot: int, minutes: dict[datetime, Tally], total: Tally
) -> None:
    """Add a transaction's counts: `minutes` to the minutes' rows, `total` to the totals.

    Called last in the transaction that made the changes (the row locks are held until its commit).
    Writes nothing for empty counts.
    """
    if minutes:
        m = t.register_minutes
        stmt = _insert(conn)(m)
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[m.c.minute, m.c.slot],
                set_={
                    name: m.c[name] + stmt.excluded[name]
                    for name in ("purchases", "subsidy", "deviations")
                },
            ),
            [
                {
                    "minute": minute,
                    "slot": slot,
                    "purchases": n.purchases,
                    "subsidy": n.subsidy,
                    "deviations": n.deviations,
                }
                for minute, n in sorted(minutes.items())
            ],
        )
    if total:
        r = t.register_totals
        stmt = _insert(conn)(r).values(
            slot=slot,
            purchases=total.purchases,
            subsidy=total.subsidy,
            deviations=total.deviations,
            persons=total.persons,
        )
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[r.c.slot],
                set_={
                    name: r.c[name] + stmt.excluded[name]
                    for name in ("purchases", "subsidy", "deviations", "persons")
                },
            )
        )


async def totals(conn: AsyncConnection) -> Tally:
    """The register's totals now: at most `SLOTS` rows read."""
    r = t.register_totals
    row = (
        await conn.execute(
            select(
                func.coalesce(func.sum(r.c.purchases), 0),
                func.coalesce(func.sum(r.c.subsidy), 0),
                func.coalesce(func.sum(r.c.deviations), 0),
                func.coalesce(func.sum(r.c.persons), 0),
            )
        )
    ).one()
    return Tally(*(int(v) for v in row))


async def minutes_since(conn: AsyncConnection, since: datetime) -> dict[datetime, Tally]:
    """The counts of each minute from `since` on (minutes without a purchase are absent): a range of
    the primary key, at most `SLOTS` rows a minute."""
    m = t.register_minutes
    rows = await conn.execute(
        select(m.c.minute, m.c.purchases, m.c.subsidy, m.c.deviations).where(m.c.minute >= since)
    )
    found: dict[datetime, Tally] = {}
    for minute, purchases, subsidy, deviations in rows:
        at = minute_of(minute)
        found[at] = found.get(at, Tally()) + Tally(purchases, subsidy, deviations)
    return found


def since(now: datetime, minutes: int) -> datetime:
    """The first minute of a window of `minutes` minutes before `now`'s minute."""
    return minute_of(now - timedelta(minutes=minutes))
