"""The obligation watch: at each tick, every open obligation past its due time becomes `missing` and
its alert is raised — at that moment, not in a nightly batch (a faust timer, `streams.app`).

The state change and the alert are one register transaction (the alert is an outbox row), so an alert is
raised once: a worker that dies after the commit leaves the row for the relay, and one that dies before
it leaves the obligation open for the next tick. On PostgreSQL the obligations are locked with SKIP
LOCKED, so two workers' watches never take the same one, and a batch meeting an obligation holds its
lock (`sinks.obligations.by_id`): an obligation is met or alerted, never both at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import datetime

from rules.obligations import at_risk
from sinks.ctr_store import CtrStore
from sinks.register import Register
from sinks.rows import Outgoing
from streams.outputs import Outputs

BATCH = 500


async def raise_missing(
    register: Register, out: Outputs, now: datetime
) -> tuple[int | None, list[Outgoing]]:
    """Mark the overdue obligations missing and keep their alerts in the outbox, in one transaction.

    Returns:
        The outbox row and the alerts, for the relay to publish; (None, []) when none was overdue.

    Raises:
        RegisterUnavailable: nothing was changed; the next tick tries again.
    """
    async with register.unit_of_work() as uow:
        due = await uow.ctr.overdue_obligations(now, BATCH)
        if not due:
            return None, []
        await uow.ctr.mark_missing(due, now)
        alerts = [
            out.obligation_alert(
                replace(o, state="missing"),
                "report_missing",
                "a report came but was rejected" if o.state == "rejected_open" else None,
            )
            for o in due
        ]
        outbox_id = await uow.keep_outputs(alerts, now)
    return outbox_id, alerts


@dataclass
class LagWatch:
    """The hub's own lag against the obligations it must meet (one per worker): an alert when the lag
    puts the earliest open obligation at risk, before it breaches, and one when the lag is gone.

    The rate is the worker's over the last ticks (messages handled per second). An episode is this
    worker's: a worker that restarts mid-episode starts without one, and raises it again if the risk
    is still there.
    """

    window_s: float = 30.0
    at_risk: bool = False
    _seen: list[tuple[float, int]] = field(default_factory=list)

    def rate(self, messages: int, at: float | None = None) -> float:
        now = time.monotonic() if at is None else at
        self._seen = [(t, m) for t, m in self._seen if now - t <= self.window_s]
        self._seen.append((now, messages))
        first_t, first_m = self._seen[0]
        return (messages - first_m) / (now - first_t) if now > first_t else 0.0

    def verdict(
        self, lag: int, per_second: float, earliest_due: datetime | None, now: datetime
    ) -> str | None:
        """ "obligations_at_risk" or "obligations_at_risk_cleared" when the episode starts or ends."""
        risky = at_risk(lag, per_second, earliest_due, now)
        if risky and not self.at_risk:
            self.at_risk = True
            return "obligations_at_risk"
        if self.at_risk and lag == 0:
            self.at_risk = False
            return "obligations_at_risk_cleared"
        return None


async def earliest_due(register: Register, now: datetime) -> datetime | None:
    """The earliest due time of an open obligation not yet due."""
    async with register.engine.connect() as conn:
        return await CtrStore(conn).earliest_due(now)
