"""`ctr.deferrals.v1`: a pharmacy's deferral agreement (henstand) entered, ended (§ 7 stk. 4) or settled."""

from __future__ import annotations

from rules.deadlines import due_same_day
from rules.deferral import apply_deferral
from rules.outcomes import Refused
from schemas.decisions import SettlementStatement
from schemas.deferrals import DeferralAgreement
from streams.decode import Decoded
from streams.effects import Effects, refused
from streams.handlers.base import BatchView, Context, Handler, applied, person_state, rejection
from streams.topics import DECISIONS


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
    if isinstance(outcome, Refused):
        return refused(rejection(d, outcome.reason), outputs)
    done, statement = outcome
    if statement is None:
        return applied(done.state, outputs=outputs)
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


HANDLER = Handler(handle)
