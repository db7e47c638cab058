"""The treatment-place register's store: every read and write of its tables (`sinks.places_tables`).

A batch's registrations get their places loaded here before they are handled (`load_places`, one
read per table in the batch's transaction); the fee-ledger refresh, the place watch and the command
line read and write through the same store. Rows come and go as the typed values of
`sinks.places_rows`; handlers never see this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Table, bindparam, delete, insert, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection

from rules.treatment_places.fees import FeeTable
from sinks import places_tables as pt
from sinks.places_rows import (
    READ,
    CompanyRow,
    FeeRow,
    FeeTableRow,
    InformationRow,
    NotificationRow,
    PlaceRows,
    PractitionerRow,
    SorSnapshotRow,
    StateHistoryRow,
    StateRow,
    UnitRow,
    key_of,
)
from sinks.sql import upsert

TABLES: dict[type, Table] = {
    CompanyRow: pt.companies,
    UnitRow: pt.units,
    PractitionerRow: pt.practitioners,
    InformationRow: pt.information,
    NotificationRow: pt.notifications,
    StateRow: pt.states,
    StateHistoryRow: pt.state_history,
    FeeRow: pt.fees,
    FeeTableRow: pt.fee_tables,
    SorSnapshotRow: pt.sor_snapshot,
}
"""Each place row type's table: the rows a handler returns are upserted into it by primary key."""


class PlacesStore:
    """The place register on one unit of work's connection; reads and writes in its transaction."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def _rows(self, row: type, where: Any) -> dict[tuple[Any, ...], Any]:
        table = TABLES[row]
        result = await self.conn.execute(select(table).where(where))
        return {key_of(r): r for r in (row(*values) for values in result)}

    async def load_places(self, company_keys: Iterable[str], sor_ids: Iterable[str]) -> PlaceRows:
        """The companies with their units, practitioners, information versions, states and fees; also
        the places a new owner's unit replaces and the units that replace theirs (owner changes), and
        every fee table loaded (a row per year).

        Called once per batch with registrations, before any handler; reads only.
        """
        keys = set(company_keys)
        named = set(sor_ids)
        u = pt.units
        found = await self._rows(UnitRow, or_(u.c.company_key.in_(keys), u.c.sor_id.in_(named)))
        sors = {row.sor_id for row in found.values()} | named
        replaced = {row.replaces_sor_id for row in found.values() if row.replaces_sor_id}
        found.update(
            await self._rows(UnitRow, or_(u.c.sor_id.in_(replaced), u.c.replaces_sor_id.in_(sors)))
        )
        sors |= {row.sor_id for row in found.values()}
        keys |= {row.company_key for row in found.values()}
        loaded: PlaceRows = {UnitRow: found}
        loaded[CompanyRow] = await self._rows(CompanyRow, pt.companies.c.company_key.in_(keys))
        for row in (PractitionerRow, InformationRow, StateRow, FeeRow, StateHistoryRow):
            loaded[row] = await self._rows(row, TABLES[row].c.sor_id.in_(sors))
        loaded[FeeTableRow] = await self._rows(FeeTableRow, true())
        return loaded

    async def write_rows(self, rows: Iterable[Any]) -> None:
        """Upsert the place rows among a batch's rows (`Effects.rows`), one statement per table in the
        order the tables first appear; other registers' rows are left to their stores."""
        grouped: dict[type, list[Any]] = {}
        for row in rows:
            if type(row) in TABLES:
                grouped.setdefault(type(row), []).append(row)
        for row_type, written in grouped.items():
            await self.conn.execute(
                upsert(self.conn, TABLES[row_type]), [r._asdict() for r in written]
            )

    async def write_ledger(self, rows: Sequence[FeeRow], stale: Sequence[tuple[str, int]]) -> None:
        """The fee ledger brought up to date (`streams.fee_ledger`): `rows` upserted, and the rows of
        the (place, year) pairs in `stale` (years a place no longer owes) deleted first."""
        f = pt.fees
        if stale:
            await self.conn.execute(
                delete(f).where(f.c.sor_id == bindparam("s"), f.c.year == bindparam("y")),
                [{"s": s, "y": y} for s, y in stale],
            )
        if rows:
            await self.conn.execute(upsert(self.conn, f), [r._asdict() for r in rows])

    async def places_started_unregistered(
        self, unregistered: Sequence[str], today: date, limit: int
    ) -> list[tuple[str, str, date]]:
        """Places in one of the `unregistered` states whose treatment started before `today` and that
        were not alerted yet, earliest start first: (SOR id, company, treatment start)."""
        s, u = pt.states, pt.units
        query = (
            select(s.c.sor_id, s.c.company_key, u.c.treatment_starts_on)
            .select_from(s.join(u, u.c.sor_id == s.c.sor_id))
            .where(
                s.c.state.in_(unregistered),
                s.c.start_alerted_at.is_(None),
                u.c.treatment_starts_on < today,
            )
            .order_by(u.c.treatment_starts_on, s.c.sor_id)
            .limit(limit)
        )
        return [(sor, company, start) for sor, company, start in await self.conn.execute(query)]

    async def mark_start_alerted(
        self, sor_id: str, unregistered: Sequence[str], now: datetime
    ) -> bool:
        """Mark the place's late treatment start as alerted, only where no mark is and the place is
        still unregistered; whether this call set it (False: another worker's watch, or a
        registration, came first)."""
        s = pt.states
        marked = await self.conn.execute(
            update(s)
            .where(
                s.c.sor_id == sor_id,
                s.c.start_alerted_at.is_(None),
                s.c.state.in_(unregistered),
            )
            .values(start_alerted_at=now)
        )
        return marked.rowcount == 1

    async def fees_of_year(self, year: int) -> list[FeeRow]:
        """The fee ledger's rows of `year` (the invoice list), by reference number and place."""
        f = pt.fees
        query = select(f).where(f.c.year == year).order_by(f.c.reference_number, f.c.sor_id)
        return [FeeRow(*r) for r in await self.conn.execute(query)]

    async def replace_fee_table(self, table: FeeTable, now: datetime) -> None:
        """Load a year's fee table, replacing one loaded for the year before."""
        ft = pt.fee_tables
        await self.conn.execute(delete(ft).where(ft.c.year == table.year))
        await self.conn.execute(
            insert(ft),
            {
                "year": table.year,
                "de_minimis_limit": table.limit,
                **{f"fee_{c}": table.fees[c] for c in range(1, 6)},
                **{f"half_{c}": (table.halves or {}).get(c) for c in range(1, 6)},
                "care_only_fee_free": table.care_only_fee_free,
                "source": table.source,
                "loaded_at": now,
            },
        )

    async def sor_snapshot(self) -> list[str]:
        """The units of the SOR snapshot imported last, each as the JSON it was kept as."""
        return list((await self.conn.execute(select(pt.sor_snapshot.c.unit))).scalars().all())

    async def replace_sor_snapshot(self, rows: Sequence[SorSnapshotRow]) -> None:
        """Keep `rows` as the SOR snapshot imported last, in place of the one before."""
        await self.conn.execute(delete(pt.sor_snapshot))
        if rows:
            await self.conn.execute(insert(pt.sor_snapshot), [r._asdict() for r in rows])

    async def load_register(self) -> PlaceRows:
        """Every place of the register (for the fee ledger and the command line; not the hot path)."""
        loaded: PlaceRows = {}
        for row in READ:
            result = await self.conn.execute(select(TABLES[row]))
            loaded[row] = {key_of(r): r for r in (row(*values) for values in result)}
        return loaded
