"""`ctr.municipal-grants.v1`: a municipality's health supplement or rights-based subsidy decision (§ 8).

It meets the obligation its announcement on `municipality.decisions-made.v1` armed
(`streams.obligation_effects`); refused, it leaves that obligation open.
"""

from __future__ import annotations

from rules.deadlines import due_immediately
from rules.municipal import apply_municipal
from rules.obligations import MUNICIPAL_RULE, municipal_obligation_id
from rules.outcomes import Refused
from schemas.municipal import MunicipalDecision
from streams.decode import Decoded
from streams.effects import Effects
from streams.handlers.base import BatchView, Context, Handler, applied, person_state, rejection
from streams.obligation_effects import mark_rejected, meet
from streams.topics import MUNICIPAL_GRANTS


def handle(view: BatchView, d: Decoded, ctx: Context) -> Effects:
    m: MunicipalDecision = d.message  # type: ignore[assignment]
    due = due_immediately(m.decided_at, ctx.config.report_grace_seconds)
    reporter = f"municipality {m.sender.municipality_code}"
    late = ctx.out.late_report(d, due, reporter, "§ 8: immediately after the decision")
    alerts = (late,) if late is not None else ()
    state = person_state(view, d)
    outcome = apply_municipal(state, m)
    oid = _obligation_id(d)[0]
    if isinstance(outcome, Refused):
        rows = mark_rejected(view, ctx, oid)
        return Effects(rejected=rejection(d, outcome.reason), outputs=alerts, rows=rows)
    rows, resolved = meet(
        view, d, ctx, obligation_id=oid, kind="municipal_decision",
        legal_basis=MUNICIPAL_RULE, reporter=reporter, person_key=state.key,
    )  # fmt: skip
    return applied(outcome.state, outputs=(*alerts, *resolved), rows=rows)


def _obligation_id(d: Decoded) -> list[str]:
    m: MunicipalDecision = d.message  # type: ignore[assignment]
    return [
        municipal_obligation_id(m.sender.municipality_code, m.decision_id, m.action, m.decided_at)
    ]


TOPIC = MUNICIPAL_GRANTS

HANDLER = Handler(handle, obligations=_obligation_id)
