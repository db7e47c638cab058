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

from schemas.common import local_day
from sinks.places_store import PlacesStore
from streams.handlers.registrations import Book, whole_ledger


async def refresh_ledger(places: PlacesStore, now: datetime) -> int:
    """Recompute every place's ledger up to the current (Copenhagen) year in the store's transaction;
    rows for a year a place no longer owes (a backdated deregistration) are deleted.

    Returns:
        The number of ledger rows.

    Raises:
        SQLAlchemyError: nothing of the refresh is kept when the caller's transaction rolls back.
    """
    book = Book.loaded(await places.load_register())
    this_year = (local_day(now) or now.date()).year
    rows = whole_ledger(book, this_year, now)
    stale = set(book.fees) - {(r.sor_id, r.year) for r in rows}
    await places.write_ledger(rows, sorted(stale))
    return len(rows)
