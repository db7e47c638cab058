"""`ctr.deferrals.v1`: a pharmacy's deferral agreement (henstand) entered, ended (§ 7 stk. 4) or settled.

An agreement entered or ended meets the obligation its announcement on `pharmacy.payments.v1` armed
(`streams.obligation_effects`); refused, it leaves that obligation open.
"""

from __future__ import annotations

from typing import Any

from rules.deadlines import due_same_day
from rules.deferral import apply_deferral
from rules.obligations import DEFERRAL_RULE, deferral_obligation_id
from rules.outcomes import Refused
from schemas.decisions import SettlementStatement
from schemas.deferrals import DeferralAgreement
from streams.decode import Decoded
from streams.effects import Effects
from streams.handlers.base import BatchView, Context, Handler, applied, person_state, rejection
from streams.obligation_effects import mark_rejected, meet
from streams.topics import DECISIONS, DEFERRALS


def handle(view: BatchView, d: Decoded, ctx: Context) -> Effects:
    m: DeferralAgreement = d.message  # type: ignore[assignment]
    outputs = []
    if m.action != "settle":
        late = ctx.out.late_report(
            d, due_same_day(m.date), m.pharmacy_number, "§ 7 stk. 4: the same day"
        )
        if late is not None:
            outputs.append(late)
    state = person_state(view, d)
    outcome = apply_deferral(state, m)
    oids = _obligation_id(d)
    if isinstance(outcome, Refused):
        rows = tuple(r for oid in oids for r in mark_rejected(view, ctx, oid))
        return Effects(rejected=rejection(d, outcome.reason), outputs=outputs, rows=rows)
    rows: tuple[Any, ...] = ()
    if oids:
        rows, resolved = meet(
            view, d, ctx, obligation_id=oids[0], kind="deferral_agreement",
            legal_basis=DEFERRAL_RULE, reporter=m.pharmacy_number, person_key=state.key,
        )  # fmt: skip
        outputs.extend(resolved)
    done, statement = outcome
    if statement is None:
        return applied(done.state, outputs=outputs, rows=rows)
    period = state.period
    output = (
        SettlementStatement(
            message_id=m.message_id,
            agreement_id=statement.agreement_id,
            pharmacy_number=statement.pharmacy_number,
            period_start=period.start if period else None,
            total_own_payment=statement.total_own_payment,
            total_rates_paid=statement.total_rates_paid,
            difference_in_citizens_favour=statement.difference_in_citizens_favour,
            payout_with_statement=statement.difference_in_citizens_favour > 0,
        )
        .model_dump_json()
        .encode()
    )
    outputs.append(ctx.out.emit(DECISIONS, m.pharmacy_number.encode(), output))
    return applied(done.state, output, outputs=outputs)


def _obligation_id(d: Decoded) -> list[str]:
    m: DeferralAgreement = d.message  # type: ignore[assignment]
    if m.action not in ("entered", "ended"):
        return []
    return [deferral_obligation_id(m.pharmacy_number, m.agreement_id, m.action)]


TOPIC = DEFERRALS

HANDLER = Handler(handle, obligations=_obligation_id)
