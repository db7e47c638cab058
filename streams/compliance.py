"""Closing a day: the compliance summary per reporter (`rules.compliance`), stored and published once.

Run shortly after local midnight by a faust crontab in every worker (`streams.app`). A day's summary of a
reporter is inserted, never replaced: the worker whose insert takes it publishes it (through the outbox,
in the same transaction), and the others, or the same worker after a restart, publish nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from rules.compliance import DaySummary, summarize
from rules.deadlines import COPENHAGEN
from schemas.monitoring import ComplianceSummary
from sinks.ctr_store import CtrStore
from sinks.register import Register
from sinks.rows import ComplianceRow, Outgoing
from streams.outputs import Outputs
from streams.topics import COMPLIANCE


async def day_summaries(ctr: CtrStore, day: date) -> list[DaySummary]:
    """The summaries of `day` computed from the obligations as they stand."""
    start = datetime.combine(day, time(0), tzinfo=COPENHAGEN).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=COPENHAGEN).astimezone(UTC)
    return summarize(day, await ctr.obligations_of(start, end))


async def close_day(
    register: Register, out: Outputs, day: date
) -> tuple[int | None, list[Outgoing]]:
    """Store and publish `day`'s summaries not stored yet. Returns the outbox row and the records."""
    now = datetime.now(UTC)
    async with register.unit_of_work() as uow:
        outputs = []
        for s in await day_summaries(uow.ctr, day):
            row = ComplianceRow(
                s.day, s.reporter, s.on_time, s.late, s.missing, s.resolved,
                s.worst_seconds_late, now,
            )  # fmt: skip
            if not await uow.ctr.close_day(row):
                continue  # closed already, by this worker or another
            summary = ComplianceSummary(
                day=s.day, reporter=s.reporter, on_time=s.on_time, late=s.late,
                missing=s.missing, resolved=s.resolved, worst_seconds_late=s.worst_seconds_late,
                at=now,
            )  # fmt: skip
            outputs.append(
                out.emit(COMPLIANCE, s.reporter.encode(), summary.model_dump_json().encode())
            )
        outbox_id = await uow.keep_outputs(outputs, now) if outputs else None
    return outbox_id, outputs


def yesterday(now: datetime) -> date:
    return now.astimezone(COPENHAGEN).date() - timedelta(days=1)
