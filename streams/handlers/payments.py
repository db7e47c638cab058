"""`pharmacy.payments.v1`: a till payment, or a deferral agreement entered or ended, announced as it
happens; it arms the obligation to report it (`rules.obligations`).

A payment's report is due immediately (§ 7 stk. 1) and met by its dispensing report
(`streams.handlers.dispensings`); an agreement's the same day (§ 7 stk. 4), met by its message on
`ctr.deferrals.v1`. The watch (`streams.obligation_watch`) raises the alert of one missing at its due time.
"""

from __future__ import annotations

from collections.abc import Iterable

from rules.deadlines import COPENHAGEN, due_immediately, due_same_day
from rules.obligations import (
    DEFERRAL_RULE,
    PAYMENT_RULE,
    deferral_obligation_id,
    payment_obligation_id,
)
from schemas.payments import TillPayment
from streams.decode import Decoded
from streams.effects import Effects
from streams.handlers.base import BatchView, Context, Handler
from streams.obligation_effects import announce
from streams.topics import PAYMENTS


def obligation_id(m: TillPayment) -> str:
    if m.event == "payment":
        assert m.dispensing_id is not None
        return payment_obligation_id(m.pharmacy_number, m.dispensing_id)
    assert m.agreement_id is not None
    action = "entered" if m.event == "deferral_entered" else "ended"
    return deferral_obligation_id(m.pharmacy_number, m.agreement_id, action)


def _ids(d: Decoded) -> Iterable[str]:
    return (obligation_id(d.message),)  # type: ignore[arg-type]


def handle(view: BatchView, d: Decoded, ctx: Context) -> Effects:
    m: TillPayment = d.message  # type: ignore[assignment]
    payment = m.event == "payment"
    row = announce(
        view,
        ctx,
        obligation_id=obligation_id(m),
        kind="dispensing_report" if payment else "deferral_agreement",
        reporter=m.pharmacy_number,
        legal_basis=PAYMENT_RULE if payment else DEFERRAL_RULE,
        person_key=view.canonical(m.person.key),
        event_at=m.paid_at,
        due_at=due_immediately(m.paid_at, ctx.config.report_grace_seconds)
        if payment
        else due_same_day(m.paid_at.astimezone(COPENHAGEN).date()),
    )
    return Effects(outcome="applied", reason=f"obligation {row.state}", rows=(row,))


TOPIC = PAYMENTS

HANDLER = Handler(handle, obligations=_ids)
