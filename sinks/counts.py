"""The register's counts kept as the batches are written: purchases registered per minute, and running
totals of the register, so that the dashboard reads a few small rows whatever the number of purchases.

Two tables (`sinks.tables`), no person in either:

- `register_minutes`: per UTC minute, the purchase rows registered in it (`registered_at`), their
  subsidy and how many deviate from what the pharmacy granted, as registered. An event count: a later
  correction or a retention run does not change a past minute.
- `register_totals`: the register as it is now: purchase rows, their subsidy, the deviating ones, and
  persons (own rows, not a person's other numbers). Every change of those is added here in the
  transaction that makes it: a batch's new purchases and persons, its changes to earlier purchases
  (corrections, returns, replays), a merge of two persons, and a retention run's deletions; and the
  reporting obligations by state, moved as the batches and the obligation watch change them.

Both are keyed by a `slot` as well (`slot_of`): workers writing at once add to different rows, so a
batch never waits for another worker's commit to add its counts. A reader sums the slots. The upserts
add to what is there (`ON CONFLICT DO UPDATE SET n = n + EXCLUDED.n`) on PostgreSQL and SQLite alike,
in a fixed order (minutes, then totals), last in the batch's transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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
    """Counts to add (negative to take away): purchase rows, subsidy in øre, deviating rows, persons,
    and reporting obligations by state (`rules.obligations.State`; a state absent is 0)."""

    purchases: int = 0
    subsidy: int = 0
    deviations: int = 0
    persons: int = 0
    obligations: Mapping[str, int] = field(default_factory=dict)

    def __add__(self, other: Tally) -> Tally:
        states = dict(self.obligations)
        for state, n in other.obligations.items():
            states[state] = states.get(state, 0) + n
        return Tally(
            self.purchases + other.purchases,
            self.subsidy + other.subsidy,
            self.deviations + other.deviations,
            self.persons + other.persons,
            {state: n for state, n in states.items() if n},
        )

    def __neg__(self) -> Tally:
        return Tally(
            -self.purchases,
            -self.subsidy,
            -self.deviations,
            -self.persons,
            {state: -n for state, n in self.obligations.items()},
        )

    def __bool__(self) -> bool:
        return any((self.purchases, self.subsidy, self.deviations, self.persons)) or any(
            self.obligations.values()
        )


def obligation_moves(before: Iterable[str], after: Iterable[str]) -> Tally:
    """Obligations leaving the states `before` (one per obligation, as it was) for those `after`."""
    states: dict[str, int] = {}
    for state in before:
        states[state] = states.get(state, 0) - 1
    for state in after:
        states[state] = states.get(state, 0) + 1
    return Tally(obligations={state: n for state, n in states.items() if n})


def of_purchase(subsidy: int, deviation: int) -> Tally:
    """One purchase row with this subsidy and deviation."""
    return Tally(1, subsidy, 1 if deviation != 0 else 0)


def minute_of(at: datetime) -> datetime:
    """The UTC minute `at` falls in."""
    shown = utc(at)
    assert shown is not None
    return shown.replace(second=0, microsecond=0)


def of_purchases(rows: Sequence[PurchaseRow]) -> Tally:
    """New purchase rows (a batch's: one pass, no object per row)."""
    return Tally(len(rows), sum(r.subsidy for r in rows), sum(1 for r in rows if r.deviation != 0))


def by_minute(rows: Sequence[PurchaseRow]) -> dict[datetime, Tally]:
    """New purchase rows counted by the minute they were registered in (a batch's rows share one
    time, or a few)."""
    at_times: dict[datetime, list[PurchaseRow]] = {}
    for row in rows:
        at_times.setdefault(row.registered_at, []).append(row)
    minutes: dict[datetime, Tally] = {}
    for at, same in at_times.items():
        minute = minute_of(at)
        minutes[minute] = minutes.get(minute, Tally()) + of_purchases(same)
    return minutes


def slot_of(partitions: Iterable[int]) -> int:
    """The slot a batch adds to: by its lowest partition, so workers (whose partitions differ) mostly
    add to different rows."""
    return min(partitions, default=0) % SLOTS


_TOTALS = (
    "purchases",
    "subsidy",
    "deviations",
    "persons",
    *(f"obligations_{state}" for state in t.OBLIGATION_STATES),
)


@functools.cache
def _upserts(dialect: str) -> tuple[Any, Any]:
    """The two statements `add` runs, built once per dialect: a statement built per batch leaves a
    cycle of SQLAlchemy objects behind (its `excluded` alias), which only a full collection frees."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    m, r = t.register_minutes, t.register_totals
    minutes = insert(m)
    minutes = minutes.on_conflict_do_update(
        index_elements=[m.c.minute, m.c.slot],
        set_={
            name: m.c[name] + minutes.excluded[name]
            for name in ("purchases", "subsidy", "deviations")
        },
    )
    totals = insert(r)
    totals = totals.on_conflict_do_update(
        index_elements=[r.c.slot],
        set_={name: r.c[name] + totals.excluded[name] for name in _TOTALS},
    )
    return minutes, totals


async def add(
    conn: AsyncConnection, slot: int, minutes: dict[datetime, Tally], total: Tally
) -> None:
    """Add a transaction's counts: `minutes` to the minutes' rows, `total` to the totals.

    Called last in the transaction that made the changes (the row locks are held until its commit).
    Writes nothing for empty counts.
    """
    minutes_upsert, totals_upsert = _upserts(conn.dialect.name)
    if minutes:
        await conn.execute(
            minutes_upsert,
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
        unknown = total.obligations.keys() - set(t.OBLIGATION_STATES)
        assert not unknown, f"obligation states without a count: {sorted(unknown)}"
        values = {
            "slot": slot,
            "purchases": total.purchases,
            "subsidy": total.subsidy,
            "deviations": total.deviations,
            "persons": total.persons,
            **{
                f"obligations_{state}": total.obligations.get(state, 0)
                for state in t.OBLIGATION_STATES
            },
        }
        await conn.execute(totals_upsert, values)


async def totals(conn: AsyncConnection) -> Tally:
    """The register's totals now: at most `SLOTS` rows read."""
    r = t.register_totals
    names = ["purchases", "subsidy", "deviations", "persons"]
    names += [f"obligations_{state}" for state in t.OBLIGATION_STATES]
    row = (await conn.execute(select(*(func.coalesce(func.sum(r.c[n]), 0) for n in names)))).one()
    found = [int(v) for v in row]
    states = dict(zip(t.OBLIGATION_STATES, found[4:], strict=True))
    return Tally(*found[:4], {state: n for state, n in states.items() if n})


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
