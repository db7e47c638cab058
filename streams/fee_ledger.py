"""The fee ledger brought up to date: one row per place per calendar year it was registered, up to the
current year, with the fee tables loaded so far (spec/treatment-places.md § 6).

The handler writes a place's ledger up to the year of each event; this fills what no event writes: a
year in which nothing happened to a place, and the years a fee table loaded later was waited for. It
runs in `reghub fee-table load` (with the table, in one transaction), in `reghub fees` (before the
list is read from the ledger) and each night in the worker, so the ledger, `reghub place show`, the
API and the invoice list show the same rows.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.common import local_day
from sinks import places_tables as pt
from sinks.register import _upsert
from streams.handlers.registrations import load_register, whole_ledger


async def refresh_ledger(conn: AsyncConnection, now: datetime) -> int:
    """Recompute every place's ledger up to the current (Copenhagen) year in the caller's transaction;
    rows for a year a place no longer owes (a backdated deregistration) are deleted.

    Returns:
        The number of ledger rows.

    Raises:
        SQLAlchemyError: nothing of the refresh is kept when the caller's transaction rolls back.
    """
    book = await load_register(conn)
    this_year = (local_day(now) or now.date()).year
    rows = whole_ledger(book, this_year, now)
    f = pt.fees
    stale = set(book.fees) - {(r.sor_id, r.year) for r in rows}
    if stale:
        await conn.execute(
            delete(f).where(f.c.sor_id == bindparam("s"), f.c.year == bindparam("y")),
            [{"s": s, "y": y} for s, y in sorted(stale)],
        )
    if rows:
        await conn.execute(_upsert(conn, f), [r._asdict() for r in rows])
    return len(rows)
