"""`ctr.corrections.v1`: a correction or cancellation of a report (§ 7 stk. 6, 7), a balancing amount
(§ 6), or a voluntary repayment.

A correction recomputes the period from the corrected report on; later purchases keep what they got and
each difference becomes a balancing amount in the period where it arose.
"""

from __future__ import annotations

from rules.corrections import apply_balancing, apply_recomputed, recompute_period
from rules.outcomes import Parked, Refused
from schemas.corrections import Correction
from sinks.rows import CorrectionRow
from streams.decode import Decoded
from streams.effects import Effects, Needs, refused
from streams.handlers.base import (
    COPENHAGEN,
    BatchView,
    Context,
    Handler,
    applied,
    person_state,
    rejection,
)

UNKNOWN_REPORT = "rule.correction_of_unknown_report"


def needs(d: Decoded) -> Needs:
    m: Correction = d.message  # type: ignore[assignment]
    if m.report_id is None:
        return Needs()
    return Needs(report_ids=(m.report_id,), chains=(m.report_id,))


def handle(view: BatchView, d: Decoded, ctx: Context) -> Effects:
    m: Correction = d.message  # type: ignore[assignment]
    state = person_state(view, d)
    day = m.sent_at.astimezone(COPENHAGEN).date()
    row = CorrectionRow(
        m.message_id,
        state.key,
        m.action,
        m.report_id,
        m.sender.ordered_by,
        m.sender.reported_by,
        m.amount,
        ctx.now,
    )
    if m.action in ("balancing", "repayment"):
        outcome = apply_balancing(state, m, day)
        if isinstance(outcome, Refused):
            return refused(rejection(d, outcome.reason))
        return applied(outcome.state, corrections=(row,))
    assert m.report_id is not None
    target = view.purchase(m.report_id, state.key)
    if target is None or target.period_start is None:
        return refused(rejection(d, UNKNOWN_REPORT))
    chain = view.chain(state.key, target.period_start)
    if chain is None:
        return refused(rejection(d, UNKNOWN_REPORT))
    period, records = chain
    result = recompute_period(state, m, period, records, view.scales)
    if isinstance(result, Parked | Refused):
        return refused(rejection(d, result.reason))
    updates = tuple(
        (
            record.report_id,
            {"basis": record.basis, "subsidy_entitled": record.entitled, "status": record.status},
        )
        for record in result.records
    )
    return applied(
        apply_recomputed(state, result),
        periods=((state.key, result.period),),
        purchase_updates=updates,
        corrections=(row,),
    )


HANDLER = Handler(handle, needs=needs)
