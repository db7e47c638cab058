"""`ctr.individual-grants.v1`: LMST's individual grants (§ 145, § 148, § 151) entered, changed or ended."""

from __future__ import annotations

from rules.grants import apply_grant
from rules.outcomes import Refused
from schemas.grants import IndividualGrant
from streams.decode import Decoded
from streams.effects import Effects, refused
from streams.handlers.base import BatchView, Context, Handler, applied, person_state, rejection


def handle(view: BatchView, d: Decoded, ctx: Context) -> Effects:
    m: IndividualGrant = d.message  # type: ignore[assignment]
    outcome = apply_grant(person_state(view, d), m)
    if isinstance(outcome, Refused):
        return refused(rejection(d, outcome.reason))
    return applied(outcome.state)


HANDLER = Handler(handle)
