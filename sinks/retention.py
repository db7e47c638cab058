"""Retention (§ 4) on the register: what `rules.retention` says is due, as set-based DELETEs.

`plan(conn, as_of)` counts what a run on `as_of` would delete and changes nothing; `apply(engine_or_conn,
as_of)` deletes it in one transaction, and takes what it deleted off the register's totals (`sinks.counts`)
in it. Both return the rows per line of `rules.retention.schedule`
(`deceased.<table>`, `<table>`, `supplements.<kind>`, `persons`), zeros included, and count each row
once: a row of a deceased person counts under `deceased.<table>` only.

A run is idempotent: a second run on the same day deletes nothing. Several workers may run it at once:
on PostgreSQL a transaction-scoped advisory lock makes them take turns (the later ones find nothing
left); SQLite has one writer at a time anyway. Times are compared in UTC, as stored (`sinks.times`):
the Copenhagen day D ends at the UTC instant of D + 1 at 00:00 in Copenhagen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    LargeBinary,
    Select,
    Table,
    and_,
    cast,
    delete,
    false,
    func,
    not_,
    or_,
    select,
    text,
    union,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from rules.deadlines import COPENHAGEN
from rules.retention import (
    DECEASED,
    PERSONS_RULE,
    RETAINED,
    Retained,
    cutoff,
    schedule,
)
from sinks import counts
from sinks import tables as t

log = logging.getLogger(__name__)

LOCK_ID = 0x43545234  # "CTR4": the advisory lock of a retention run on PostgreSQL


def end_of_day_utc(day: date) -> datetime:
    """The UTC instant the Copenhagen day `day` ends (daylight saving included)."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=COPENHAGEN).astimezone(UTC)


def _past(column: Any, cut: date) -> ColumnElement[bool]:
    """`column` (a date, or a time compared as its Copenhagen day) falls on or before `cut`."""
    return column < end_of_day_utc(cut) if isinstance(column.type, DateTime) else column <= cut


class _Run:
    """The predicates of a run on `as_of` over `retained`, built once; each a full-row condition."""

    def __init__(self, as_of: date, retained: tuple[Retained, ...]) -> None:
        self.as_of = as_of
        self.retained = retained
        self.tables: dict[str, Table] = {}
        for r in retained:
            if r.table not in t.metadata.tables:
                raise LookupError(f"retention: no table {r.table!r} in the register's metadata")
            self.tables[r.table] = t.metadata.tables[r.table]
        p = t.persons
        self.dead_cut = cutoff(DECEASED, as_of)
        # a person's group: their own row and its alias rows, named by the own row's key
        group = func.coalesce(p.c.alias_of, p.c.person_key)
        dead_groups = select(group).where(p.c.died_on <= self.dead_cut).correlate(None)
        self.dead_keys: Select[Any] = (
            select(p.c.person_key).where(group.in_(dead_groups)).correlate(None)
        )

    def _key_in(self, column: Any, keys: Select[Any]) -> ColumnElement[bool]:
        if isinstance(column.type, LargeBinary):  # a message key: the person number as bytes
            (key,) = keys.selected_columns
            keys = keys.with_only_columns(cast(key, LargeBinary))
        return column.in_(keys)

    def dead(self, table: Table, persons: tuple[str, ...]) -> ColumnElement[bool]:
        """The rows of `table` naming a deceased person due for deletion (§ 4 stk. 2)."""
        if not persons:
            return false()
        return or_(*(self._key_in(table.c[c], self.dead_keys) for c in persons))

    def due(self, r: Retained) -> ColumnElement[bool]:
        """The rows of line `r` that arose on or before its cutoff; never a row with no date, nor one
        a row of its `kept_by` table still keeps."""
        table = self.tables[r.table]
        cut = cutoff(r.rule, self.as_of)
        column = table.c[r.arose]
        condition = and_(column.is_not(None), _past(column, cut))
        if r.fallback is not None:  # the fallback may be of another type: no coalesce
            other = table.c[r.fallback]
            condition = or_(
                condition, and_(column.is_(None), other.is_not(None), _past(other, cut))
            )
        if r.only is not None:
            condition = and_(table.c[r.only[0]] == r.only[1], condition)
        if r.kept_by is not None:
            name, columns = r.kept_by
            keeper = next(k for k in self.retained if k.table == name)
            rows = t.metadata.tables[name]
            kept = (
                select(rows.c[columns[0]])
                .where(*(rows.c[c] == table.c[c] for c in columns), not_(self.due(keeper)))
                .exists()
            )
            condition = and_(condition, not_(kept))
        return condition

    def persons_of(self, table: str) -> tuple[str, ...]:
        return next(r.persons for r in self.retained if r.table == table)

    def gone(self, table: str) -> ColumnElement[bool]:
        """Every row of `table` this run deletes (before the persons rows)."""
        tab = self.tables[table]
        return or_(
            self.dead(tab, self.persons_of(table)),
            *(self.due(r) for r in self.retained if r.table == table),
        )

    def unused_persons(self, *, after_deletes: bool) -> ColumnElement[bool]:
        """The persons rows whose group has nothing person-keyed left after this run and whose rows
        were all last updated on or before the general cutoff. `after_deletes`: the run's other
        deletions are done, so every row left is in use."""
        p = t.persons
        member = p.alias("member")
        group = func.coalesce(member.c.alias_of, member.c.person_key)
        in_use = []
        for name in dict.fromkeys(r.table for r in self.retained if r.persons):
            tab = self.tables[name]
            for c in self.persons_of(name):
                key: Any = member.c.person_key
                if isinstance(tab.c[c].type, LargeBinary):
                    key = cast(key, LargeBinary)
                used = select(group).select_from(tab.join(member, tab.c[c] == key))
                if not after_deletes:
                    used = used.where(not_(self.gone(name)))
                in_use.append(used.correlate(None))
        stale = (
            select(group)
            .group_by(group)
            .having(
                func.max(member.c.updated_at) < end_of_day_utc(cutoff(PERSONS_RULE, self.as_of))
            )
            .correlate(None)
        )
        own_group = func.coalesce(p.c.alias_of, p.c.person_key)
        condition = own_group.in_(stale)
        if in_use:
            condition = and_(condition, own_group.not_in(union(*in_use)))
        return condition


async def _count(conn: AsyncConnection, table: Table, where: ColumnElement[bool]) -> int:
    return int((await conn.scalar(select(func.count()).select_from(table).where(where))) or 0)


async def plan(
    conn: AsyncConnection, as_of: date, retained: tuple[Retained, ...] = RETAINED
) -> dict[str, int]:
    """What a run on `as_of` would delete, per line of `rules.retention.schedule`; changes nothing."""
    run = _Run(as_of, retained)
    counts: dict[str, int] = {}
    dead_persons = t.persons.c.person_key.in_(run.dead_keys)
    for step in schedule(as_of, retained):
        if step.label == f"deceased.{t.persons.name}":
            counts[step.label] = await _count(conn, t.persons, dead_persons)
        elif step.label.startswith("deceased."):
            table = run.tables[step.table]
            counts[step.label] = await _count(
                conn, table, run.dead(table, run.persons_of(step.table))
            )
        elif step.table == t.persons.name:
            where = and_(run.unused_persons(after_deletes=False), not_(dead_persons))
            counts[step.label] = await _count(conn, t.persons, where)
        else:
            r = next(r for r in retained if r.label == step.label)
            table = run.tables[r.table]
            where = and_(run.due(r), not_(run.dead(table, r.persons)))
            counts[step.label] = await _count(conn, table, where)
    return counts


async def _delete(
    conn: AsyncConnection, table: Table, where: ColumnElement[bool], gone: list[counts.Tally]
) -> int:
    """Delete `table`'s rows matching `where`; what a purchases, persons or obligations row deleted
    took from the register's totals (`sinks.counts`) is added to `gone`, from the rows the DELETE
    returns."""
    if table is t.purchases:
        rows = (
            await conn.execute(
                delete(table).where(where).returning(table.c.subsidy, table.c.deviation)
            )
        ).all()
        gone.extend(counts.of_purchase(subsidy, deviation) for subsidy, deviation in rows)
        return len(rows)
    if table is t.obligations:
        rows = (await conn.execute(delete(table).where(where).returning(table.c.state))).all()
        gone.append(counts.obligation_moves((), (state for (state,) in rows)))  # taken off below
        return len(rows)
    if table is t.persons:
        rows = (await conn.execute(delete(table).where(where).returning(table.c.alias_of))).all()
        gone.append(counts.Tally(persons=sum(1 for (alias_of,) in rows if alias_of is None)))
        return len(rows)
    result = await conn.execute(delete(table).where(where))
    return int(result.rowcount or 0)


async def _apply(
    conn: AsyncConnection, as_of: date, retained: tuple[Retained, ...]
) -> dict[str, int]:
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": LOCK_ID})
    run = _Run(as_of, retained)
    deleted: dict[str, int] = {}
    gone: list[counts.Tally] = []
    for step in schedule(as_of, retained):
        if step.label == f"deceased.{t.persons.name}":
            deleted[step.label] = await _delete(
                conn, t.persons, t.persons.c.person_key.in_(run.dead_keys), gone
            )
        elif step.label.startswith("deceased."):
            table = run.tables[step.table]
            deleted[step.label] = await _delete(
                conn, table, run.dead(table, run.persons_of(step.table)), gone
            )
        elif step.table == t.persons.name:
            deleted[step.label] = await _delete(
                conn, t.persons, run.unused_persons(after_deletes=True), gone
            )
        else:
            r = next(r for r in retained if r.label == step.label)
            deleted[step.label] = await _delete(conn, run.tables[r.table], run.due(r), gone)
    # the register's totals lose what was deleted, in the same transaction
    await counts.add(conn, 0, {}, -sum(gone, counts.Tally()))
    return deleted


async def apply(
    engine_or_conn: AsyncEngine | AsyncConnection,
    as_of: date,
    retained: tuple[Retained, ...] = RETAINED,
) -> dict[str, int]:
    """Delete what is due on `as_of`, in one transaction; the rows deleted per line.

    Given an engine, the run is its own transaction, committed at the end. Given a connection already
    in a transaction, the run joins it and the caller commits; otherwise it begins and commits one.
    """
    if isinstance(engine_or_conn, AsyncEngine):
        async with engine_or_conn.begin() as conn:
            return await _apply(conn, as_of, retained)
    conn = engine_or_conn
    if conn.in_transaction():
        return await _apply(conn, as_of, retained)
    async with conn.begin():
        return await _apply(conn, as_of, retained)


def summary(counts: dict[str, int]) -> str:
    """`purchases=12 balances=3 …`: the lines with rows, no person data; "nothing" when none."""
    shown = " ".join(f"{label}={n}" for label, n in counts.items() if n)
    return shown or "nothing"


def _now() -> datetime:
    return datetime.now(UTC)


async def daily(engine: AsyncEngine, clock: Callable[[], datetime] = _now) -> dict[str, int] | None:
    """The daily run: `apply` as of today in Copenhagen (by `clock`), logging the counts only.

    Never raises (but on cancellation): a failed run is logged, by the error's kind only (a database
    message could quote a row), and the next day's run deletes what this one left.
    """
    as_of = clock().astimezone(COPENHAGEN).date()
    try:
        counts = await apply(engine, as_of)
    except Exception as exc:
        cause = exc.__cause__ or getattr(exc, "orig", None)
        log.warning(
            "retention: run of %s failed (%s%s); it runs again tomorrow",
            as_of,
            type(exc).__name__,
            f" from {type(cause).__name__}" if cause is not None else "",
        )
        return None
    log.info("retention: deleted %s (as of %s)", summary(counts), as_of)
    return counts
