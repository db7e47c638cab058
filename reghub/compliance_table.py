"""`reghub compliance --date D`: a day's compliance summary per reporter, as a table.

The summary stored when the day was closed (`streams.compliance`), or, for a day not closed yet, the
same summary computed from the obligations as they stand (and said so).
"""

from __future__ import annotations

from datetime import date

from rich.console import Console
from rich.table import Table

from reghub.settings import Settings
from rules.deadlines import human_duration
from sinks.ctr_store import CtrStore
from sinks.register import make_engine
from streams.compliance import day_summaries


async def print_day(settings: Settings, day_text: str, console: Console | None = None) -> int:
    console = console or Console()
    try:
        day = date.fromisoformat(day_text)
    except ValueError:
        console.print(f"--date: not a date (YYYY-MM-DD): {day_text!r}")
        return 2
    engine = make_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            ctr = CtrStore(conn)
            summaries = await ctr.closed_day(day)
            note = "closed"
            if not summaries:
                summaries = await day_summaries(ctr, day)
                note = "not closed yet: computed from the obligations as they stand"
    finally:
        await engine.dispose()
    table = Table(title=f"Reporting obligations of {day.isoformat()} ({note})")
    for column in ("reporter", "on time", "late", "missing", "resolved", "worst lateness"):
        table.add_column(column, justify="left" if column == "reporter" else "right")
    for s in summaries:
        table.add_row(
            s.reporter, str(s.on_time), str(s.late), str(s.missing), str(s.resolved),
            human_duration(s.worst_seconds_late) if s.late or s.resolved else "",
        )  # fmt: skip
    if not summaries:
        console.print(f"no reporting obligations on {day.isoformat()}")
        return 0
    console.print(table)
    return 0
