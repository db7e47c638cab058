"""Reporting obligations inside a batch: found, armed by an announcement, met or marked by a report.

Shared by the handlers of the announcing topics (`pharmacy.payments.v1`, `municipality.decisions-made.v1`)
and of the reporting ones (`ctr.dispensings.v1`, `ctr.deferrals.v1`, `ctr.municipal-grants.v1`). Each
topic's handler preloads the obligations its messages name (`preloader`, one query per batch, rows locked
on PostgreSQL); a message finds an obligation as the batch has it: written by an earlier message of the
batch, else preloaded by one of the topics involved.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from rules.obligations import Obligation, arm, fulfil, reject
from sinks import obligations, tables
from sinks.publisher import Outgoing
from streams.decode import Decoded
from streams.handlers.base import BatchView, Context

Row = tuple[Any, Any]


def preloader(
    ids_of: Callable[[Decoded], Iterable[str]],
) -> Callable[[AsyncConnection, list[Decoded]], Awaitable[dict[str, Obligation]]]:
    async def preload(conn: AsyncConnection, messages: list[Decoded]) -> dict[str, Obligation]:
        return await obligations.by_id(conn, [oid for d in messages for oid in ids_of(d)])

    return preload


def obligation_of(view: BatchView, topics: Iterable[str], obligation_id: str) -> Obligation | None:
    row = view.written_row(tables.obligations, obligation_id)
    if row is not None:
        return obligations.of_row(row)  # an ObligationRow
    for topic in topics:
        found = (view.preloaded(topic) or {}).get(obligation_id)
        if found is not None:
            return found
    return None


def announce(view: BatchView, ctx: Context, topics: Iterable[str], **event: Any) -> Row:
    """An announced event arms its obligation (`rules.obligations.arm`); the row to write."""
    armed = arm(obligation_of(view, topics, event["obligation_id"]), **event)
    return (tables.obligations, obligations.row_of(armed, ctx.now))


def meet(
    view: BatchView,
    d: Decoded,
    ctx: Context,
    topics: Iterable[str],
    *,
    obligation_id: str,
    kind: str,
    legal_basis: str,
    reporter: str,
    person_key: str,
) -> tuple[tuple[Row, ...], tuple[Outgoing, ...]]:
    """A report meets its obligation by the time it reached the broker: the row, and the resolution of
    a missing alert raised for it."""
    existing = obligation_of(view, topics, obligation_id)
    met = fulfil(
        existing,
        obligation_id=obligation_id,
        reporter=reporter,
        person_key=person_key,
        arrived_at=datetime.fromtimestamp(d.source.timestamp_ms / 1000, UTC),
        kind=kind,
        legal_basis=legal_basis,
    )
    if existing is not None and met == existing:
        return (), ()
    row = (tables.obligations, obligations.row_of(met, ctx.now))
    if met.state == "resolved":
        return (row,), (ctx.out.obligation_alert(met, "report_resolved"),)
    return (row,), ()


def mark_rejected(
    view: BatchView, ctx: Context, topics: Iterable[str], obligation_id: str
) -> tuple[Row, ...]:
    """A refused report leaves its obligation open, marked as having had a rejected report."""
    marked = reject(obligation_of(view, topics, obligation_id))
    return ((tables.obligations, obligations.row_of(marked, ctx.now)),) if marked else ()
