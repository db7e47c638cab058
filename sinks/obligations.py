"""The obligations table as the rules see it: read by id for a batch, the overdue ones for the watch,
and `rules.obligations.Obligation` to and from its row."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from rules.obligations import OPEN_STATES, Obligation
from sinks import tables as t
from sinks.rows import obligation_of
from sinks.sql import among_joined


async def by_id(conn: AsyncConnection, ids: Iterable[str]) -> dict[str, Obligation]:
    """The obligations among `ids`, locked for this transaction on PostgreSQL: the watch skips them,
    so an obligation is either met by this batch or alerted as missing, never both at once."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    ob = t.obligations
    # the ids are bound when it runs, not built into the statement (`sinks.sql.OnTransaction._among`)
    if conn.dialect.name == "postgresql":  # one text parameter: the statement text never changes
        query = select(ob).where(among_joined(ob.c.obligation_id, "ids")).with_for_update()
    else:
        query = select(ob).where(ob.c.obligation_id.in_(bindparam("ids", expanding=True)))
    return {r.obligation_id: obligation_of(r) for r in await conn.execute(query, {"ids": wanted})}


async def overdue(conn: AsyncConnection, now: datetime, limit: int) -> list[Obligation]:
    """Open obligations past their due time, oldest first, locked for this transaction; on PostgreSQL
    rows another worker's watch holds are skipped, so each alert is raised by one worker only."""
    ob = t.obligations
    query = (
        select(ob)
        .where(ob.c.state.in_(OPEN_STATES), ob.c.due_at < now)
        .order_by(ob.c.due_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return [obligation_of(r) for r in await conn.execute(query)]
