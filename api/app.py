"""The HTTP read side: health, register statistics and a small monitoring dashboard.

No person-level data is served here yet: § 5 access control (pharmacies, doctors, citizens) comes with
verified tokens and an audit log, and until then the API shows aggregates only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from api import monitoring
from api.dashboard import PAGE
from api.places import place_counts, place_record
from rules.money import ore_to_kroner
from sinks import tables
from sinks.register import make_engine


def create_api(database_url: str, worker_urls: Sequence[str] = ()) -> FastAPI:
    """The read API over the register at `database_url` (its configuration as values, not settings);
    the dashboard also asks the workers at `worker_urls` (their web ports) how they are."""
    engine = make_engine(database_url)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await engine.dispose()

    app = FastAPI(title="reghub", version="0.1.0", lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        async with engine.connect() as conn:
            await conn.execute(select(1))
        return {"status": "ok"}

    @app.get("/stats")
    async def stats() -> dict[str, Any]:
        """Aggregates of the register: no person appears here."""
        async with engine.connect() as conn:
            return await _stats(conn)

    @app.get("/monitor")
    async def monitor() -> dict[str, Any]:
        """Everything the dashboard shows (`api.monitoring`): no person appears here."""
        at = monitoring.now()
        async with engine.connect() as conn:
            register = await _stats(conn)
            register["subsidy_granted_kr"] = monitoring.danish_kroner(await _subsidy(conn))
            rates = await monitoring.purchases_per_minute(conn, at)
            obligations = await monitoring.obligations_view(conn)
            places = await place_counts(conn)
        workers = await asyncio.gather(*(monitoring.worker_view(u) for u in worker_urls))
        return {
            "at": at.isoformat(),
            "register": register,
            "rates": rates,
            "obligations": obligations,
            "workers": list(workers),
            "places": places,
        }

    @app.get("/v1/places/{place}")
    async def place(place: str) -> dict[str, Any]:
        """A treatment place by SOR id or reference number, with its versions, states and fees."""
        async with engine.connect() as conn:
            found = await place_record(conn, place)
        if found is None:
            raise HTTPException(404, f"no treatment place {place}")
        return found

    @app.get("/dashboard", response_class=HTMLResponse)
    async def dashboard() -> str:
        return PAGE

    return app


async def _subsidy(conn: AsyncConnection) -> int:
    p = tables.purchases
    return int((await conn.execute(select(func.coalesce(func.sum(p.c.subsidy), 0)))).scalar() or 0)


async def _stats(conn: AsyncConnection) -> dict[str, Any]:
    """Aggregates of the register: no person appears here."""
    p, pm, b = tables.purchases, tables.parked_messages, tables.balances
    purchases, subsidy, deviations = (
        await conn.execute(
            select(
                func.count(),
                func.coalesce(func.sum(p.c.subsidy), 0),
                func.count().filter(p.c.deviation != 0),
            )
        )
    ).one()
    persons = (
        await conn.execute(select(func.count()).where(tables.persons.c.alias_of.is_(None)))
    ).scalar()  # a person's other numbers are not persons
    parked = (await conn.execute(select(func.count()).where(pm.c.replayed_at.is_(None)))).scalar()
    open_balances = (await conn.execute(select(func.count()).where(b.c.remaining != 0))).scalar()
    return {
        "purchases": purchases,
        "persons": persons,
        "subsidy_granted_kr": ore_to_kroner(int(subsidy)),
        "reports_deviating_from_the_register": deviations,
        "parked_reports": parked,
        "open_balancing_amounts": open_balances,
    }
