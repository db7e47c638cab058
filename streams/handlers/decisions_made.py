"""`municipality.decisions-made.v1`: a municipal decision, or a change or end of one, announced as it is
made arms the obligation to report it immediately (order § 8), met by its message on
`ctr.municipal-grants.v1`."""

from __future__ import annotations

from collections.abc import Iterable

from rules.deadlines import due_immediately
from rules.obligations import MUNICIPAL_RULE, municipal_obligation_id
from schemas.decisions_made import MunicipalDecisionMade
from streams.decode import Decoded
from streams.effects import Effects
from streams.handlers.base import BatchView, Context, Handler
from streams.obligation_effects import announce
from streams.topics import DECISIONS_MADE


def _ids(d: Decoded) -> Iterable[str]:
    m: MunicipalDecisionMade = d.message  # type: ignore[assignment]
    return (_obligation_id(m),)


def _obligation_id(m: MunicipalDecisionMade) -> str:
    return municipal_obligation_id(
        m.sender.municipality_code, m.decision_id, m.action, m.decided_at
    )


def handle(view: BatchView, d: Decoded, ctx: Context) -> Effects:
    m: MunicipalDecisionMade = d.message  # type: ignore[assignment]
    row = announce(
        view,
        ctx,
        obligation_id=_obligation_id(m),
        kind="municipal_decision",
        reporter=f"municipality {m.sender.municipality_code}",
        legal_basis=MUNICIPAL_RULE,
        person_key=view.canonical(m.person.key),
        event_at=m.decided_at,
        due_at=due_immediately(m.decided_at, ctx.config.report_grace_seconds),
    )
    return Effects(outcome="applied", reason=f"obligation {row.state}", rows=(row,))


TOPIC = DECISIONS_MADE

HANDLER = Handler(handle, obligations=_ids)
