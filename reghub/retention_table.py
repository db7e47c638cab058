"""`reghub retention [--dry-run] [--as-of YYYY-MM-DD]`: the § 4 run of a day, as a table.

One row per line of `rules.retention.schedule`: the rule (paragraph), the table, the cutoff (data that
arose on or before it goes) and the rows. Without `--dry-run` the rows are deleted, in one transaction
(`sinks.retention.apply`); with it they are only counted and nothing changes. `--as-of` defaults to
today in Copenhagen.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from rich.console import Console
from rich.table import Table

from reghub.settings import Settings
from rules.deadlines import COPENHAGEN
from rules.retention import schedule
from sinks import retention
from sinks.register import make_engine


def today() -> date:
    return datetime.now(UTC).astimezone(COPENHAGEN).date()


async def run(
    settings: Settings,
    as_of_text: str | None,
    *,
    dry_run: bool,
    console: Console | None = None,
) -> int:
    console = console or Console()
    try:
        as_of = date.fromisoformat(as_of_text) if as_of_text else today()
    except ValueError:
        console.print(f"--as-of: not a date (YYYY-MM-DD): {as_of_text!r}")
        return 2
    engine = make_engine(settings.database_url)
    try:
        if dry_run:
            async with engine.connect() as conn:
                counts = await retention.plan(conn, as_of)
        else:
            counts = await retention.apply(engine, as_of)
    finally:
        await engine.dispose()
    verb = "would be deleted (dry run: nothing deleted)" if dry_run else "deleted"
    table = Table(title=f"Retention (§ 4) as of {as_of.isoformat()}: rows {verb}")
    for column in ("rule", "table", "cutoff", "rows"):
        table.add_column(column, justify="right" if column == "rows" else "left")
    for step in schedule(as_of):
        table.add_row(
            f"{step.rule.paragraph} {step.rule.name}",
            step.label.removeprefix("deceased."),
            step.cutoff.isoformat(),
            str(counts.get(step.label, 0)),
        )
    console.print(table)
    total = sum(counts.values())
    if dry_run:
        console.print(f"dry run: {total} rows would be deleted; nothing was deleted")
    else:
        console.print(f"{total} rows deleted")
    return 0
