"""The HTTP read side: health, register statistics and a small monitoring dashboard.

No person-level data is served here yet: § 5 access control (pharmacies, doctors, citizens) comes with
verified tokens and an audit log, and until then the API shows aggregates only.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select

from rules.money import ore_to_kroner
from sinks import tables
from sinks.register import make_engine

_DASHBOARD = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>reghub</title>
<style>body{font:15px system-ui;margin:2em;color:#222}table{border-collapse:collapse}
td,th{padding:.3em 1em;border-bottom:1px solid #ddd;text-align:right}th{text-align:left}</style></head>
<body><h1>reghub — CTR register</h1><table id="t"></table><p id="u"></p><script>
async function tick(){const r=await fetch('/stats');const s=await r.json();
document.getElementById('t').innerHTML=Object.entries(s).map(([k,v])=>
`<tr><th>${k.replaceAll('_',' ')}</th><td>${typeof v==='number'?v.toLocaleString('da-DK'):v}</td></tr>`).join('');
document.getElementById('u').textContent='updated '+new Date().toLocaleTimeString();}
tick();setInterval(tick,2000);</script></body></html>"""


def create_api(database_url: str) -> FastAPI:
    """The read API over the register at `database_url` (its configuration as values, not settings)."""
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
        p, pm, b = tables.purchases, tables.parked_messages, tables.balances
        async with engine.connect() as conn:
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
                await conn.execute(select(func.count()).select_from(tables.persons))
            ).scalar()
            parked = (
                await conn.execute(select(func.count()).where(pm.c.replayed_at.is_(None)))
            ).scalar()
            open_balances = (
                await conn.execute(select(func.count()).where(b.c.remaining != 0))
            ).scalar()
        return {
            "purchases": purchases,
            "persons": persons,
            "subsidy_granted_kr": ore_to_kroner(int(subsidy)),
            "reports_deviating_from_the_register": deviations,
            "parked_reports": parked,
            "open_balancing_amounts": open_balances,
        }

    @app.get("/dashboard", response_class=HTMLResponse)
    async def dashboard() -> str:
        return _DASHBOARD

    return app
