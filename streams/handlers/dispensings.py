"""`ctr.dispensings.v1`: a pharmacy's dispensing report, a sale or a return (§ 3 stk. 1, § 7 stk. 1).

The hot path: one call per report. Registers the purchase by the § 146 scale of its payment day, settles
open balancing amounts (§ 6), answers with a decision, parks a report dated where no scale is known.
"""

from __future__ import annotations

from typing import Any

import orjson

from rules.deadlines import due_immediately
from rules.dispensing import apply_dispensing
from rules.outcomes import Parked, PurchaseResult, Refused
from schemas.decisions import PurchaseDecision
from schemas.dispensing import DispensingReport
from sinks.publisher import Outgoing
from sinks.rows import ParkedRow, PurchaseRow
from streams.decode import Decoded
from streams.effects import Effects, Needs, refused
from streams.handlers.base import (
    COPENHAGEN,
    BatchView,
    Context,
    Handler,
    person_state,
    rejection,
)
from streams.topics import DECISIONS


def needs(d: Decoded) -> Needs:
    m: DispensingReport = d.message  # type: ignore[assignment]
    day = m.paid_or_invoiced_at.astimezone(COPENHAGEN).date()
    return Needs(report_ids=(m.return_of,) if m.return_of else (), day=day)


def handle(view: BatchView, d: Decoded, ctx: Context) -> Effects:
    m: DispensingReport = d.message  # type: ignore[assignment]
    state = person_state(view, d)
    day = m.paid_or_invoiced_at.astimezone(COPENHAGEN).date()
    original = view.purchase(m.return_of, state.key) if m.return_of else None
    outcome = apply_dispensing(state, m, day, view.scales, ctx.config.rules, original)
    outputs: list[Outgoing] = []
    grace = ctx.config.report_grace_seconds
    if d.source.timestamp_ms / 1000 - m.paid_or_invoiced_at.timestamp() > grace:
        due = due_immediately(m.paid_or_invoiced_at, grace)
        rule = "§ 7 stk. 1: immediately after payment"
        late = ctx.out.late_report(d, due, m.pharmacy_number, rule)
        if late is not None:
            outputs.append(late)
    if isinstance(outcome, Refused):
        return refused(rejection(d, outcome.reason), outputs)
    if isinstance(outcome, Parked):
        value = (
            PurchaseDecision(
                report_id=m.report_id,
                status="parked",
                reason=outcome.reason,
                pharmacy_number=m.pharmacy_number,
                dispensing_id=m.dispensing_id,
            )
            .model_dump_json()
            .encode()
        )
        parked = ParkedRow(
            m.report_id,
            d.source.topic,
            outcome.day,
            outcome.reason,
            d.source.key,
            d.source.value or b"",
            ctx.now,
            None,
        )
        outputs.append(ctx.out.emit(DECISIONS, m.pharmacy_number.encode(), value))
        return Effects(
            outcome="parked", output=value, reason=outcome.reason, parked=(parked,), outputs=outputs
        )
    result = outcome.purchase
    assert result is not None
    settled_by = None
    if state.balances:
        before = {b.balance_id: b.remaining for b in state.balances}
        settled_by = {
            b.balance_id: m.report_id
            for b in outcome.state.balances
            if before.get(b.balance_id, b.remaining) != b.remaining
        }
    updates: tuple[tuple[str, dict[str, Any]], ...] = ()
    if m.return_of and original is not None:
        updates = ((m.return_of, {"returned_basis": original.returned_basis - result.basis}),)
    row = purchase_row(d, m, state.key, result, ctx)
    outputs.append(ctx.out.emit(DECISIONS, m.pharmacy_number.encode(), decision(row, "registered")))
    return Effects(
        outcome="registered",
        states=(outcome.state,),
        purchases=(row,),
        purchase_updates=updates,
        settled_by=settled_by,
        outputs=outputs,
    )


def redecide(row: PurchaseRow, ctx: Context) -> Outgoing:
    """A redelivered report's decision, rebuilt from its register row."""
    return ctx.out.emit(DECISIONS, row.pharmacy_number.encode(), decision(row, "duplicate"))


def decision(row: PurchaseRow, status: str) -> bytes:
    """A registered purchase's decision (`PurchaseDecision` as JSON) from its register row.

    Called once per report, and again for a redelivered one; built without the model for speed, and
    checked against the model by the tests.
    """
    return orjson.dumps(
        {
            "schema_version": 1,
            "kind": "purchase",
            "report_id": row.report_id,
            "status": status,
            "reason": None,
            "pharmacy_number": row.pharmacy_number,
            "dispensing_id": row.dispensing_id,
            "subsidised": row.subsidised,
            "subsidy_entitled": row.subsidy_entitled,
            "balancing_applied": row.balancing_applied,
            "subsidy": row.subsidy,
            "health_supplement": row.health_supplement,
            "rights_based": row.rights_based,
            "citizen_pays": row.citizen_pays,
            "deferred_to_agreement": row.deferred_to_agreement,
            "citizen_pays_at_counter": row.citizen_pays - row.deferred_to_agreement,
            "saldo_before": row.saldo_after - row.basis,
            "saldo_after": row.saldo_after,
            "period_start": row.period_start,
            "period_end": row.period_end,
            "previous_period_end": row.previous_period_end,
            "under18": row.under18,
            "remaining_balancing": row.remaining_balancing,
            "granted_subsidy": row.granted_subsidy,
            "deviation": row.deviation,
        }
    )


def purchase_row(
    d: Decoded, m: DispensingReport, person_key: str, r: PurchaseResult, ctx: Context
) -> PurchaseRow:
    p = r.period
    lines = orjson.dumps(
        [
            {
                "drug_id": ln.drug_id,
                "reimbursement_price": ln.reimbursement_price,
                "actual_price": ln.actual_price,
                "generally_reimbursed": ln.generally_reimbursed,
            }
            for ln in m.lines
        ]
    ).decode()
    return PurchaseRow(
        m.report_id,
        person_key,
        m.kind,
        m.return_of,
        m.pharmacy_number,
        m.pharmacy_site_p_number,
        m.dispensing_id,
        m.ordination_id,
        m.paid_or_invoiced_at,
        r.day,
        lines,
        p.start if p else None,
        p.end if p else None,
        p.previous_end if p else None,
        p.under18 if p else None,
        r.terminal,
        r.basis,
        r.subsidy_entitled,
        r.balancing_applied,
        r.subsidy,
        r.health_supplement,
        r.rights_based,
        r.citizen_pays,
        r.deferred_to_agreement,
        r.saldo_after,
        r.subsidised,
        r.remaining_balancing,
        m.granted_subsidy,
        r.deviation,
        0,
        "registered",
        d.source.partition,
        d.source.offset,
        ctx.now,
    )


HANDLER = Handler(handle, needs=needs, redecide=redecide)
