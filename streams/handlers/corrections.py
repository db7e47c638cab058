"""`ctr.corrections.v1`: a correction or cancellation of a report (§ 7 stk. 6, 7), a balancing amount
(§ 6), or a voluntary repayment.

A correction recomputes the period from the corrected report on; later purchases keep what they got and
each difference becomes a balancing amount in the period where it arose.
"""

from __future__ import annotations

from dataclasses import replace

from rules.corrections import apply_balancing, apply_recomputed, recompute_period
from rules.history import cancel_sale
from rules.outcomes import Parked, Refused
from rules.state import PersonState
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
from streams.topics import CORRECTIONS

UNKNOWN_REPORT = "rule.correction_of_unknown_report"


def needs(d: Decoded) -> Needs:
    m: Correction = d.message  # type: ignore[assignment]
    if m.report_id is None:  # a balancing amount dated in an earlier period keeps that period
        return Needs(history=m.action == "balancing" and m.arose_on is not None)
    if m.action == "cancel":  # may move the period's start, and takes the sale's returns with it
        return Needs(report_ids=(m.report_id,), history=True)
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
        periods = view.history(state.key).periods if needs(d).history else ()
        outcome = apply_balancing(state, m, day, periods)
        if isinstance(outcome, Refused):
            return refused(rejection(d, outcome.reason))
        return applied(outcome.state, corrections=(row,))
    assert m.report_id is not None
    target = view.purchase(m.report_id, state.key)
    if m.action == "cancel":
        return _cancel(view, d, m, state, row)
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


def _cancel(
    view: BatchView, d: Decoded, m: Correction, state: PersonState, row: CorrectionRow
) -> Effects:
    """A cancelled report leaves with its returns; the later purchases are recomputed, and a period it
    opened starts again at the next remaining purchase (`rules.history.cancel_sale`)."""
    assert m.report_id is not None
    history = view.history(state.key)
    target = history.record(m.report_id)
    if target is None:
        return refused(rejection(d, UNKNOWN_REPORT))
    if target.status == "cancelled":
        return refused(rejection(d, "rule.report_already_cancelled"))
    result = cancel_sale(
        state.birth_date,
        history,
        m.report_id,
        view.scales,
        balance_id=f"correction:{m.message_id}",
        origin=f"cancellation ordered by {m.sender.ordered_by}",
    )
    if isinstance(result, Parked):
        return refused(rejection(d, result.reason))
    after = replace(
        state,
        period=result.current(history.periods),
        balances=(*state.balances, *result.balances),
    )
    return applied(
        after,
        periods=tuple((state.key, p) for p in result.periods),
        removed_periods=tuple((state.key, start) for start in result.removed),
        purchase_updates=result.updates,
        corrections=(row,),
    )


TOPIC = CORRECTIONS

HANDLER = Handler(handle, needs=needs)
