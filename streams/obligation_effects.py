"""Reporting obligations inside a batch: found, armed by an announcement, met or marked by a report.

Shared by the handlers of the announcing topics (`pharmacy.payments.v1`, `municipality.decisions-made.v1`)
and of the reporting ones (`ctr.dispensings.v1`, `ctr.deferrals.v1`, `ctr.municipal-grants.v1`). Each
topic's handler names the obligations its messages touch (`Handler.obligations`); the CTR store loads
them before the batch is handled (one query per batch, rows locked on PostgreSQL), and a message finds
an obligation as the batch has it (`BatchView.obligation`): written by an earlier message of the batch,
else as loaded. Values only: the rows are `sinks.rows.ObligationRow`s the store writes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rules.obligations import arm, fulfil, reject
from sinks.rows import ObligationRow, Outgoing, obligation_row
from streams.decode import Decoded
from streams.handlers.base import BatchView, Context

Row = ObligationRow


def announce(view: BatchView, ctx: Context, **event: Any) -> Row:
    """An announced event arms its obligation (`rules.obligations.arm`); the row to write."""
    armed = arm(view.obligation(event["obligation_id"]), **event)
    return obligation_row(armed, ctx.now)


def meet(
    view: BatchView,
    d: Decoded,
    ctx: Context,
    *,
    obligation_id: str,
    kind: str,
    legal_basis: str,
    reporter: str,
    person_key: str,
) -> tuple[tuple[Row, ...], tuple[Outgoing, ...]]:
    """A report meets its obligation by the time it reached the broker: the row, and the resolution of
    a missing alert raised for it."""
    existing = view.obligation(obligation_id)
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
    row = obligation_row(met, ctx.now)
    if met.state == "resolved":
        return (row,), (ctx.out.obligation_alert(met, "report_resolved"),)
    return (row,), ()


def mark_rejected(view: BatchView, ctx: Context, obligation_id: str) -> tuple[Row, ...]:
    """A refused report leaves its obligation open, marked as having had a rejected report."""
    marked = reject(view.obligation(obligation_id))
    return (obligation_row(marked, ctx.now),) if marked else ()
