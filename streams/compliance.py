"""Closing a day: the compliance summary per reporter (`rules.compliance`), stored and published once.

Run shortly after local midnight by a faust crontab in every worker (`streams.app`). A day's summary of a
reporter is inserted, never replaced: the worker whose insert takes it publishes it (through the outbox,
in the same transaction), and the others, or the same worker after a restart, publish nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from rules.compliance import DaySummary, summarize
from rules.deadlines import COPENHAGEN
from schemas.monitoring import ComplianceSummary
from sinks import obligations, outbox
from sinks import tables as t
from sinks.publisher import Outgoing
from sinks.register import Register
from sinks.rows import ComplianceRow
from streams.outputs import Outputs
from streams.topics import COMPLIANCE


async def day_summaries(conn: AsyncConnection, day: date) -> list[DaySummary]:
    """The summaries of `day` computed from the obligations as they stand."""
    # in UTC, as stored: SQLite compares the text of times and keeps no offset
    start = datetime.combine(day, time(0), tzinfo=COPENHAGEN).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=COPENHAGEN).astimezone(UTC)
    ob = t.obligations
    rows = await conn.execute(select(ob).where(ob.c.event_at >= start, ob.c.event_at < end))
    return summarize(day, [obligations.of_row(r) for r in rows])


async def closed(conn: AsyncConnection, day: date) -> list[DaySummary]:
    """The summaries stored when `day` was closed; empty if it is not closed yet."""
    cd = t.compliance_days
    rows = await conn.execute(select(cd).where(cd.c.day == day).order_by(cd.c.reporter))
    return [
        DaySummary(
            r.day, r.reporter, r.on_time, r.late, r.missing, r.resolved, r.worst_seconds_late
        )
        for r in rows
    ]


async def close_day(
    register: Register, out: Outputs, day: date
) -> tuple[int | None, list[Outgoing]]:
    """Store and publish `day`'s summaries not stored yet. Returns the outbox row and the records."""
    now = datetime.now(UTC)
    async with register.unit_of_work() as uow:
        conn = uow.conn
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        outputs = []
        for s in await day_summaries(conn, day):
            row = ComplianceRow(
                s.day, s.reporter, s.on_time, s.late, s.missing, s.resolved,
                s.worst_seconds_late, now,
            )  # fmt: skip
            stmt = (
                insert(t.compliance_days)
                .on_conflict_do_nothing()
                .returning(t.compliance_days.c.day)
            )
            if (await conn.execute(stmt, [row._asdict()])).first() is None:
                continue  # closed already, by this worker or another
            summary = ComplianceSummary(
                day=s.day, reporter=s.reporter, on_time=s.on_time, late=s.late,
                missing=s.missing, resolved=s.resolved, worst_seconds_late=s.worst_seconds_late,
                at=now,
            )  # fmt: skip
            outputs.append(
                out.emit(COMPLIANCE, s.reporter.encode(), summary.model_dump_json().encode())
            )
        outbox_id = await outbox.add(conn, outputs, now) if outputs else None
    return outbox_id, outputs


def yesterday(now: datetime) -> date:
    return now.astimezone(COPENHAGEN).date() - timedelta(days=1)
