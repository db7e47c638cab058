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

from rules.treatment_places.states import treatment_days_before_registration
from schemas.common import local_day
from schemas.treatment_places import PlaceAlert
from sinks.register import Register
from sinks.rows import Outgoing
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
    async with register.unit_of_work() as uow:
        due = await uow.places.places_started_unregistered(UNREGISTERED, today, BATCH)
        alerts: list[Outgoing] = []
        for sor, company, start in due:
            if not await uow.places.mark_start_alerted(sor, UNREGISTERED, now):
                continue  # another worker's watch, or a registration, came first
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
        outbox_id = await uow.keep_outputs(alerts, now)
    return outbox_id, alerts
