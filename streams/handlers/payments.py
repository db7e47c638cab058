"""`pharmacy.payments.v1`: a till payment arms the obligation to report it immediately (§ 7 stk. 1).

The dispensing report with the same pharmacy and dispensing id fulfils it (`streams.handlers.dispensings`);
the obligation watch (`streams.obligation_watch`) raises the alert of a report still missing at its due
time. A payment announced after its report decides at once whether that report was on time.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from rules.obligations import Obligation, arm_payment, payment_obligation_id
from schemas.payments import TillPayment
from sinks import obligations, tables
from streams.decode import Decoded
from streams.effects import Effects
from streams.handlers.base import BatchView, Context, Handler
from streams.topics import DISPENSINGS, PAYMENTS


def obligation_of(
    view: BatchView, topics: tuple[str, ...], obligation_id: str
) -> Obligation | None:
    """An obligation as this batch has it: written by an earlier message of the batch, or preloaded
    by one of `topics`' handlers."""
    for row in reversed(view.written(tables.obligations)):
        if row[0] == obligation_id:
            return obligations.of_row(row)  # an ObligationRow
    for topic in topics:
        found = (view.preloaded(topic) or {}).get(obligation_id)
        if found is not None:
            return found
    return None


async def preload(conn: AsyncConnection, messages: list[Decoded]) -> dict[str, Obligation]:
    ids = []
    for d in messages:
        m: TillPayment = d.message  # type: ignore[assignment]
        ids.append(payment_obligation_id(m.pharmacy_number, m.dispensing_id))
    return await obligations.by_id(conn, ids)


def handle(view: BatchView, d: Decoded, ctx: Context) -> Effects:
    m: TillPayment = d.message  # type: ignore[assignment]
    oid = payment_obligation_id(m.pharmacy_number, m.dispensing_id)
    existing = obligation_of(view, (PAYMENTS.base, DISPENSINGS.base), oid)
    armed = arm_payment(
        existing,
        obligation_id=oid,
        reporter=m.pharmacy_number,
        person_key=view.canonical(m.person.key),
        paid_at=m.paid_at,
        grace_seconds=ctx.config.report_grace_seconds,
    )
    return Effects(
        outcome="applied",
        reason=f"obligation {armed.state}",
        rows=((tables.obligations, obligations.row_of(armed, ctx.now)),),
    )


HANDLER = Handler(handle, preload=preload)
