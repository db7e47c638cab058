"""The obligation watch: at each tick, every open obligation past its due time becomes `missing` and
its alert is raised — at that moment, not in a nightly batch (a faust timer, `streams.app`).

The state change and the alert are one register transaction (the alert is an outbox row), so an alert is
raised once: a worker that dies after the commit leaves the row for the relay, and one that dies before
it leaves the obligation open for the next tick. On PostgreSQL the obligations are locked with SKIP
LOCKED, so two workers' watches never take the same one, and a batch meeting an obligation holds its
lock (`sinks.obligations.by_id`): an obligation is met or alerted, never both at once.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import update

from sinks import obligations, outbox
from sinks import tables as t
from sinks.publisher import Outgoing
from sinks.register import Register
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
        due = await obligations.overdue(uow.conn, now, BATCH)
        if not due:
            return None, []
        ob = t.obligations
        await uow.conn.execute(
            update(ob)
            .where(ob.c.obligation_id.in_([o.obligation_id for o in due]))
            .values(state="missing", updated_at=now)
        )
        alerts = [
            out.obligation_alert(
                replace(o, state="missing"),
                "report_missing",
                "a report came but was rejected" if o.state == "rejected_open" else None,
            )
            for o in due
        ]
        outbox_id = await outbox.add(uow.conn, alerts, now)
    return outbox_id, alerts
