"""The treatment-start watch: a place still unregistered when its stated treatment start has passed is
alerted at that moment (`treatment_before_registration` on `stps.alerts.v1`), not when its next event
happens to come (a faust timer, `streams.app`).

A place registers before treatment starts (RBT § 1 stk. 3); a registration on the start day itself is
not late, so the alert is due from the next Copenhagen day. The mark on the place and the alert are one
register transaction (the alert is an outbox row), and the mark is set only where none is (`UPDATE …
WHERE start_alerted_at IS NULL`: a second worker's watch, blocked on the same row, finds it set), so
each place is alerted once across workers and restarts. The handler reads the same mark and raises
no second alert when the late registration comes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from rules.treatment_places.states import treatment_days_before_registration
from schemas.common import local_day
from schemas.treatment_places import PlaceAlert
from sinks import outbox
from sinks import places_tables as pt
from sinks.publisher import Outgoing
from sinks.register import Register
from streams.outputs import Outputs
from streams.topics import PLACE_ALERTS, REGISTRATIONS

BATCH = 500
UNREGISTERED = ("SOR_ONLY",)
"""The states of a place that treats without being registered (a notified place is exempt)."""


async def raise_unregistered_starts(
    register: Register, out: Outputs, now: datetime
) -> tuple[int | None, list[Outgoing]]:
    """Alert every place whose treatment start has passed while it is still unregistered, once.

    Returns:
        The outbox row and the alerts, for the relay to publish; (None, []) when none was due.

    Raises:
        RegisterUnavailable: nothing was changed; the next tick tries again.
    """
    today = local_day(now) or now.date()
    s, u = pt.states, pt.units
    async with register.unit_of_work() as uow:
        due = (
            await uow.conn.execute(
                select(s.c.sor_id, s.c.company_key, u.c.treatment_starts_on)
                .select_from(s.join(u, u.c.sor_id == s.c.sor_id))
                .where(
                    s.c.state.in_(UNREGISTERED),
                    s.c.start_alerted_at.is_(None),
                    u.c.treatment_starts_on < today,
                )
                .order_by(u.c.treatment_starts_on, s.c.sor_id)
                .limit(BATCH)
            )
        ).all()
        alerts: list[Outgoing] = []
        for sor, company, start in due:
            marked = await uow.conn.execute(
                update(s)
                .where(
                    s.c.sor_id == sor,
                    s.c.start_alerted_at.is_(None),
                    s.c.state.in_(UNREGISTERED),
                )
                .values(start_alerted_at=now)
            )
            if marked.rowcount != 1:  # another worker's watch, or a registration, came first
                continue
            days = treatment_days_before_registration(start, None, today)
            alert = PlaceAlert(
                kind="treatment_before_registration",
                source_topic=out.names(REGISTRATIONS),
                message_id=f"start-{sor}",
                company=company,
                sor_id=sor,
                days=days,
                detail=f"treatment started {start} and the place is not registered",
                at=now,
            )
            alerts.append(
                out.emit(PLACE_ALERTS, company.encode(), alert.model_dump_json().encode())
            )
        if not alerts:
            return None, []
        outbox_id = await outbox.add(uow.conn, alerts, now)
    return outbox_id, alerts
