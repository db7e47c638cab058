"""Reads of the obligations table for the dashboard: the overdue ones, those at risk, and the day's
compliance per reporter so far. Each statement is served by an index (`ix_obligations_state_due`,
`ix_obligations_event`); the person key is never selected."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from rules.compliance import DaySummary
from rules.deadlines import COPENHAGEN, seconds_late
from rules.obligations import OPEN_STATES
from sinks import tables as t
from sinks.times import utc

LISTED = 20
"""Obligations listed at most, per list."""


async def overdue(conn: AsyncConnection, now: datetime, since: datetime) -> list[dict[str, Any]]:
    """Obligations past their due time and not met: `missing` ones due since `since`, and open ones
    the watch has not turned missing yet; the `LISTED` most overdue, oldest due first, with the
    number of all of them under "total" in each."""
    ob = t.obligations
    where = or_(
        (ob.c.state == "missing") & (ob.c.due_at >= since) & (ob.c.due_at < now),
        ob.c.state.in_(OPEN_STATES) & (ob.c.due_at < now),
    )
    total = (await conn.execute(select(func.count()).select_from(ob).where(where))).scalar() or 0
    rows = await conn.execute(
        select(ob.c.obligation_id, ob.c.reporter, ob.c.kind, ob.c.state, ob.c.due_at)
        .where(where)
        .order_by(ob.c.due_at)
        .limit(LISTED)
    )
    return [{**_listed(r), "total": total} for r in rows]


async def at_risk(conn: AsyncConnection, now: datetime, within_s: float) -> list[dict[str, Any]]:
    """Open obligations falling due within `within_s` seconds: the report has not come, and time is
    short; the `LISTED` due first."""
    ob = t.obligations
    rows = await conn.execute(
        select(ob.c.obligation_id, ob.c.reporter, ob.c.kind, ob.c.state, ob.c.due_at)
        .where(
            ob.c.state.in_(OPEN_STATES),
            ob.c.due_at >= now,
            ob.c.due_at < now + timedelta(seconds=within_s),
        )
        .order_by(ob.c.due_at)
        .limit(LISTED)
    )
    return [_listed(r) for r in rows]


def _listed(r: Any) -> dict[str, Any]:
    return {
        "obligation": r.obligation_id,
        "reporter": r.reporter,
        "kind": r.kind,
        "state": r.state,
        "due": utc(r.due_at),
    }


async def compliance_of_day(conn: AsyncConnection, day: date) -> list[DaySummary]:
    """Per reporter, the obligations of `day` (the Danish local date of their event) so far, counted as
    the day's close counts them (`rules.compliance`: open ones count as missing) — by a GROUP BY over
    the day's range of the event index, and the met-late ones read for the worst lateness."""
    ob = t.obligations
    start = datetime.combine(day, time(0), tzinfo=COPENHAGEN).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=COPENHAGEN).astimezone(UTC)
    in_day = (ob.c.event_at >= start) & (ob.c.event_at < end)
    counted: dict[str, dict[str, int]] = {}
    rows = await conn.execute(
        select(ob.c.reporter, ob.c.state, func.count())
        .where(in_day)
        .group_by(ob.c.reporter, ob.c.state)
    )
    for reporter, state, n in rows:
        c = counted.setdefault(reporter, {"on_time": 0, "late": 0, "missing": 0, "resolved": 0})
        shown = "missing" if state in (*OPEN_STATES, "missing") else state
        if shown in c:
            c[shown] += int(n)
    worst: dict[str, int] = {}
    late = await conn.execute(
        select(ob.c.reporter, ob.c.due_at, ob.c.arrived_at).where(
            in_day, ob.c.state.in_(("late", "resolved"))
        )
    )
    for reporter, due, arrived in late:
        if due is not None and arrived is not None:
            worst[reporter] = max(worst.get(reporter, 0), seconds_late(utc(due), utc(arrived)))  # type: ignore[arg-type]
    return [
        DaySummary(
            day,
            reporter,
            c["on_time"],
            c["late"],
            c["missing"],
            c["resolved"],
            worst.get(reporter, 0),
        )
        for reporter, c in sorted(counted.items())
    ]
