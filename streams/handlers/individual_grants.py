"""`ctr.individual-grants.v1`: LMST's individual grants (§ 145, § 148, § 151) entered, changed or ended.

A grant entered with a start before purchases of the current period applies to them too (spec § 4): the
period is recomputed from the first purchase it changes, as a correction recomputes it, and each
difference becomes a balancing amount owed to the person in the period where it arose.
"""

from __future__ import annotations

from typing import Any

from rules.corrections import apply_recomputed
from rules.grants import apply_grant, recompute_for_grant
from rules.outcomes import Parked, Refused
from schemas.grants import IndividualGrant
from streams.decode import Decoded
from streams.effects import Effects, Needs, refused
from streams.handlers.base import BatchView, Context, Handler, applied, person_state, rejection
from streams.topics import INDIVIDUAL_GRANTS


def needs(d: Decoded) -> Needs:
    m: IndividualGrant = d.message  # type: ignore[assignment]
    return Needs(current_period=m.action == "enter")


def handle(view: BatchView, d: Decoded, ctx: Context) -> Effects:
    m: IndividualGrant = d.message  # type: ignore[assignment]
    state = person_state(view, d)
    outcome = apply_grant(state, m)
    if isinstance(outcome, Refused):
        return refused(rejection(d, outcome.reason))
    entered = outcome.state
    if m.action != "enter" or entered == state or entered.period is None:
        return applied(entered)
    chain = view.chain(entered.key, entered.period.start)
    if chain is None:
        return applied(entered)
    period, records = chain
    grant = next(g for g in entered.grants if g.grant_id == m.grant_id)
    # A corrected purchase's stored lines are those it was reported with, not the corrected ones:
    # it is not priced again.
    lines = {r.report_id: r.lines for r in records if r.lines and r.status != "corrected"}
    result = recompute_for_grant(entered, grant, period, records, lines, view.scales)
    if result is None:
        return applied(entered)
    if isinstance(result, Parked):
        return refused(rejection(d, result.reason))
    before = {r.report_id: r for r in records}
    updates: list[tuple[str, dict[str, Any]]] = []
    for record in result.records:
        was = before[record.report_id]
        changed = {
            column: new
            for column, new, old in (
                ("basis", record.basis, was.basis),
                ("subsidy_entitled", record.entitled, was.entitled),
                ("terminal", record.terminal, was.terminal),
            )
            if new != old
        }
        if changed:
            updates.append((record.report_id, changed))
    return applied(
        apply_recomputed(entered, result),
        periods=((entered.key, result.period),),
        purchase_updates=tuple(updates),
    )


TOPIC = INDIVIDUAL_GRANTS

HANDLER = Handler(handle, needs=needs)
