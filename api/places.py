"""The treatment-place register's read side: one place with its history, and places counted by state and
category. Used by `reghub place show` and the API (`/v1/places/{place}`, the dashboard)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from sinks import places_tables as pt


async def place_record(conn: AsyncConnection, place: str) -> dict[str, Any] | None:
    """A place by SOR id or reference number: its state, company, unit, practitioners, information
    versions, state history and fees; None when there is none."""
    s = pt.states
    where = or_(s.c.sor_id == place, s.c.reference_number == place)
    found = (await conn.execute(select(s).where(where))).mappings().first()
    if found is None:
        return None
    sor = found["sor_id"]
    shown: dict[str, Any] = {"state": dict(found)}
    for name, table, key in (
        ("company", pt.companies, pt.companies.c.company_key == found["company_key"]),
        ("unit", pt.units, pt.units.c.sor_id == sor),
        ("practitioners", pt.practitioners, pt.practitioners.c.sor_id == sor),
        ("versions", pt.information, pt.information.c.sor_id == sor),
        ("history", pt.state_history, pt.state_history.c.sor_id == sor),
        ("fees", pt.fees, pt.fees.c.sor_id == sor),
    ):
        rows = (await conn.execute(select(table).where(key))).mappings().all()
        shown[name] = [dict(r) for r in rows]
    return shown


async def place_counts(conn: AsyncConnection) -> dict[str, dict[str, int]]:
    """Places by state, and by the category of the information version in force."""
    s, info = pt.states, pt.information
    by_state = dict((await conn.execute(select(s.c.state, func.count()).group_by(s.c.state))).all())
    rows = await conn.execute(
        select(info.c.category, func.count())
        .select_from(s.join(info, and_(info.c.sor_id == s.c.sor_id, info.c.version == s.c.version)))
        .where(info.c.category.is_not(None))  # a care-only unit has no category
        .group_by(info.c.category)
    )
    return {
        "by_state": {str(k): int(v) for k, v in sorted(by_state.items())},
        "by_category": {str(k): int(v) for k, v in sorted(rows.all())},
    }
