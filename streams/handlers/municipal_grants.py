"""`ctr.municipal-grants.v1`: a municipality's health supplement or rights-based subsidy decision (§ 8)."""

from __future__ import annotations

from rules.deadlines import due_immediately
from rules.municipal import apply_municipal
from rules.outcomes import Refused
from schemas.municipal import MunicipalDecision
from streams.decode import Decoded
from streams.effects import Effects, refused
from streams.handlers.base import BatchView, Context, Handler, applied, person_state, rejection


def handle(view: BatchView, d: Decoded, ctx: Context) -> Effects:
    m: MunicipalDecision = d.message  # type: ignore[assignment]
    due = due_immediately(m.decided_at, ctx.config.report_grace_seconds)
    reporter = f"municipality {m.sender.municipality_code}"
    late = ctx.out.late_report(d, due, reporter, "§ 8: immediately after the decision")
    alerts = (late,) if late is not None else ()
    outcome = apply_municipal(person_state(view, d), m)
    if isinstance(outcome, Refused):
        return refused(rejection(d, outcome.reason), alerts)
    return applied(outcome.state, outputs=alerts)


HANDLER = Handler(handle)
