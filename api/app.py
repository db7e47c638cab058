"""The HTTP read side: a person's status, purchases and quotes behind § 5 access control and the audit
log, and treatment places behind a token and the same log (`api.reads`); health, readiness and
metrics; register aggregates, places counted, and the monitoring dashboard, which show no person.

The OpenAPI document is at `/openapi.json` (and `/docs`). A request the API cannot parse gets a 422 that
says what is wrong without repeating what was sent (it may hold a CPR number).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    disable_created_metrics,
    generate_latest,
)
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from api import monitoring
from api.dashboard import PAGE
from api.gate import Gate, RefusalTally
from api.lag import BrokerView, KafkaAccess
from api.places import place_counts
from api.reads import ReadContext, personal_routes, resource_of
from api.tokens import TokenKeys, TokenRefused, TokenVerifier
from rules.dispensing import RulesConfig
from rules.money import ore_to_kroner
from sinks import counts, read_audit, tables
from sinks.read_audit import anonymous_refusal
from sinks.register import make_engine

NO_TOKEN_KEYS = TokenKeys(audience="reghub-api", issuer="reghub-dev")
disable_created_metrics()  # no `*_created` series: a counter's start time is no figure to graph
MONITOR_ROLES = ("monitoring", "operator", "agency")
"""Who sees the workers' addresses and error texts on `/monitor`."""


def _now() -> datetime:
    return datetime.now(UTC)


def create_api(
    database_url: str,
    worker_urls: Sequence[str] = (),
    *,
    tokens: TokenKeys = NO_TOKEN_KEYS,
    rules: RulesConfig | None = None,
    clock: Callable[[], datetime] = _now,
    pseudonym_secret: bytes = b"",
    kafka: KafkaAccess | None = None,
) -> FastAPI:
    """The read API over the register at `database_url` (its configuration as values, not settings).

    The dashboard also asks the workers at `worker_urls` (their web ports) how they are; `tokens` says
    how bearer tokens are verified (without keys every personal-data read is refused); `rules` are the
    stream's rule settings, for quotes; `clock` gives "today" for § 5 (tests move it);
    `pseudonym_secret` is the hub's pseudonym key (the audit names a caller whose token's subject
    holds a CPR number by its pseudonym); `kafka` says where the dashboard asks the register's lag
    (`api.lag`; without it the lag is not shown).
    """
    engine = make_engine(database_url)
    metrics = CollectorRegistry()
    verifier = TokenVerifier(tokens)
    tally = RefusalTally(engine, clock, metrics)
    broker = BrokerView(kafka) if kafka is not None else None
    asking: list[asyncio.Task[None]] = []  # the broker view's task, started by the first /monitor
    compliance = monitoring.Compliance()

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        writer = asyncio.create_task(tally.run())
        yield
        for task in (writer, *asking):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await engine.dispose()

    app = FastAPI(
        title="reghub",
        version="0.1.0",
        description="The CTR's read side: § 5 access with bearer tokens, every read audited.",
        lifespan=lifespan,
    )
    context = ReadContext(
        engine, verifier, rules or RulesConfig(), clock, metrics, pseudonym_secret, tally
    )
    app.include_router(personal_routes(context))
    app.add_middleware(Gate, verifier=verifier, tally=tally, resource_of=resource_of)
    app.state.refusals = tally

    @app.exception_handler(RequestValidationError)
    async def unparsable(request: Request, exc: RequestValidationError) -> JSONResponse:
        """422 naming each field and what is wrong with it, never the value sent; on a personal-data
        endpoint the refusal is audited like any other."""
        problems = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        resource = resource_of(request.url.path)
        if resource is not None:
            fields = ", ".join(".".join(str(part) for part in p["loc"]) for p in problems)
            entry = anonymous_refusal(clock(), resource, 422, f"request not understood: {fields}")
            try:
                async with engine.begin() as conn:
                    await read_audit.record(conn, entry)
            except SQLAlchemyError:
                return JSONResponse({"detail": "the register is unavailable"}, status_code=503)
        return JSONResponse({"detail": problems}, status_code=422)

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Alive: the process answers (it does not touch the register)."""
        return {"status": "ok"}

    @app.get(
        "/ready", responses={503: {"description": "the register or its audit log is unreachable"}}
    )
    async def ready() -> JSONResponse:
        """Ready to serve reads: the register answers and the audit log is there to write to."""
        try:
            async with engine.connect() as conn:
                await conn.execute(select(tables.read_audit.c.id).limit(1))
        except (SQLAlchemyError, OSError):
            return JSONResponse({"status": "unavailable", "reason": "register"}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", response_class=Response)
    async def prometheus() -> Response:
        """Prometheus text: reads of personal data by resource and outcome."""
        return Response(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    @app.get("/stats")
    async def stats() -> dict[str, Any]:
        """Aggregates of the register: no person appears here."""
        async with engine.connect() as conn:
            return await _stats(conn)

    @app.get("/monitor")
    async def monitor(authorization: str | None = Header(default=None)) -> dict[str, Any]:
        """Everything the dashboard shows (`api.monitoring`): no person appears here. The workers'
        addresses and error texts (hosts, ports, SQLSTATEs) only with a token of the monitoring,
        operator or agency role; without one, each problem by its kind."""
        try:
            trusted = (await verifier.principal(authorization)).role in MONITOR_ROLES
        except TokenRefused:
            trusted = False
        if broker is not None and (not asking or asking[-1].done()):
            asking[:] = [asyncio.create_task(broker.run())]  # again, should it ever have ended
        at = monitoring.now()
        found: dict[str, Any] = {}
        try:
            async with engine.connect() as conn:
                found["register"] = await _stats(conn, kroner=monitoring.danish_kroner)
                found["rates"] = await monitoring.purchases_per_minute(conn, at)
                found["obligations"] = await monitoring.obligations_view(conn, at)
                found["compliance"] = await compliance.get(conn, at)
                found["places"] = await place_counts(conn)
                found["reads"] = await monitoring.reads_view(conn, at)
        except (SQLAlchemyError, OSError):
            found = {}  # shown as the register not answering, not as a failed page
        workers = await asyncio.gather(*(monitoring.worker_view(u) for u in worker_urls))
        if not trusted:
            workers = tuple(monitoring.redacted(w, n) for n, w in enumerate(workers, 1))
        lag = broker.view(monitoring.THRESHOLDS.broker_stale_s) if broker is not None else None
        obligations = found.get("obligations")
        state = monitoring.overall(
            register_up=bool(found),
            workers=list(workers),
            broker=lag,
            overdue=obligations["overdue"] if obligations else [],
            at_risk=obligations["at_risk"] if obligations else [],
            now=at,
        )
        return {
            "at": at.isoformat(),
            "state": state,
            "register": found.get("register"),
            "rates": found.get("rates", []),
            "obligations": obligations,
            "compliance": found.get("compliance"),
            "lag": lag,
            "workers": list(workers),
            "places": found.get("places"),
            "reads": found.get("reads"),
        }

    @app.get("/dashboard", response_class=HTMLResponse)
    async def dashboard() -> str:
        return PAGE

    return app


async def _stats(
    conn: AsyncConnection, kroner: Callable[[int], str] = ore_to_kroner
) -> dict[str, Any]:
    """Aggregates of the register as it is now: no person appears here.

    `purchases`: purchase rows in the register (sales, returns and cancelled ones alike; a retention
    run's deletions are gone from it); `subsidy_granted_kr`: their subsidy summed, after corrections;
    `reports_deviating_from_the_register`: those of them whose subsidy differs from what the pharmacy
    granted; `persons`: persons, not their other numbers. These four come from the counts the batches
    keep (`sinks.counts`), at most `counts.SLOTS` rows read. `parked_reports`: reports waiting for a
    scale; `open_balancing_amounts`: balancing amounts not yet settled. Those two are counted from
    partial indexes holding only such rows. `kroner` writes the subsidy (`/monitor`: Danish style).
    """
    pm, b = tables.parked_messages, tables.balances
    total = await counts.totals(conn)
    parked = (await conn.execute(select(func.count()).where(pm.c.replayed_at.is_(None)))).scalar()
    open_balances = (
        await conn.execute(select(func.count()).select_from(b).where(tables.OPEN_BALANCE))
    ).scalar()
    return {
        "purchases": total.purchases,
        "persons": total.persons,
        "subsidy_granted_kr": kroner(total.subsidy),
        "reports_deviating_from_the_register": total.deviations,
        "parked_reports": parked,
        "open_balancing_amounts": open_balances,
    }
