"""The API's personal-data endpoints, each behind a verified token, § 5 access and the audit log; and
a treatment place, whose record is personal data when its registrant is a person
(`rules.treatment_places.access` decides the view).

Every request about a person goes the same way: the token is verified (401 otherwise), the person key checked
(400), the register facts gathered and `rules.access.decide` asked (403 with its reason), and only then is
the data read and cut down to the fields allowed. The outcome, allowed or refused, is written to the audit
log in the same transaction as the read: a read that cannot be audited is not served (503).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, Literal

from fastapi import APIRouter, Header, Path, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api import person_reads
from api.gate import RefusalTally
from api.places import place_record
from api.quotes import QuoteRefused, QuoteRequest, quote
from api.tokens import TokenRefused, TokenVerifier
from rules.access import Allowed, Denied, Principal, Resource, decide
from rules.deadlines import COPENHAGEN
from rules.dispensing import RulesConfig
from rules.identifiers import contains_person_number, normalise_person_key, parse_person_key
from rules.privacy import pseudonym
from rules.treatment_places.access import PlaceRead, place_read
from sinks import read_audit
from sinks.read_audit import AuditEntry
from sinks.register import Register

PURPOSE_PATTERN = r"^[a-z_]{1,32}$"
"""A stated purpose is a word (`rules.access.PURPOSES` are the ones that open anything)."""


class Refusal(Exception):
    """A request refused before any data is read: its status and reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ReadContext:
    """What the personal-data endpoints share: the register, the token verifier, the rules' settings
    (for quotes), the clock (today is the Copenhagen date of `clock()`), the metrics registry and the
    pseudonym key (a caller whose token's subject holds a CPR number is audited by its pseudonym)."""

    engine: AsyncEngine
    verifier: TokenVerifier
    rules: RulesConfig
    clock: Callable[[], datetime]
    metrics: CollectorRegistry
    pseudonym_secret: bytes = b""
    tally: RefusalTally | None = None  # refusals without a valid token, audited per minute


NOT_IN_REGISTER = "no person with that number in the register"


async def _known(conn: AsyncConnection, person: str) -> None:
    """Refuse (404) a read of a person the register does not know: an empty status would read as a
    zero saldo. Known is a person with reports or entitlements of their own, or named by the CPR
    register's custody or a doctor's treatment relation (a child without purchases is known to the
    parent reading its status, a patient without any to the doctor treating them). Asked
    only once § 5 allows the read, so a refusal by access never tells whether the person exists.

    Raises:
        Refusal: 404 for a person the register has no row of.
    """
    if not await person_reads.known(conn, person):
        raise Refusal(404, NOT_IN_REGISTER)


def personal_routes(ctx: ReadContext) -> APIRouter:
    """The routes of § 5: a person's status, their purchases, quotes and the audit log; and a
    treatment place."""
    router = APIRouter(prefix="/v1")
    reads = Counter(
        "reghub_api_reads",
        "Reads of personal data by resource and outcome",
        ["resource", "outcome"],
        registry=ctx.metrics,
    )

    async def serve(
        resource: Resource,
        authorization: str | None,
        key: str | None,
        purpose: str | None,
        read: Callable[[AsyncConnection, Principal, str, Allowed, date], Awaitable[Any]],
    ) -> JSONResponse:
        now = ctx.clock()
        today = now.astimezone(COPENHAGEN).date()
        try:
            principal = await ctx.verifier.principal(authorization)
        except TokenRefused as exc:
            return await refuse(resource, key, purpose, now, Refusal(401, exc.reason))
        person, body, fields, refusal = key, None, (), None
        try:
            async with ctx.engine.begin() as conn:
                facts = None
                if key is not None:
                    facts = await person_reads.facts(conn, principal, key, today)
                    person = facts.person
                verdict = decide(principal, resource, purpose, facts)
                if isinstance(verdict, Denied):
                    refusal = Refusal(verdict.status, verdict.reason)
                else:
                    try:
                        body = await read(conn, principal, person or "", verdict, today)
                        fields = tuple(sorted(verdict.fields))
                    except (QuoteRefused, Refusal) as exc:
                        refusal = Refusal(exc.status, exc.reason)
                entry = _entry(principal, resource, person, purpose, now, fields, refusal)
                entry = _pseudonymous(entry, ctx.pseudonym_secret)
                await read_audit.record(conn, entry)
        except SQLAlchemyError:
            return _error(503, "the register is unavailable; nothing was read")
        reads.labels(resource, entry.outcome).inc()
        if refusal is not None:
            return _error(refusal.status, refusal.reason)
        return JSONResponse(body)

    async def refuse(
        resource: Resource, person: str | None, purpose: str | None, now: datetime, why: Refusal
    ) -> JSONResponse:
        """A request refused before its caller is known (no valid token, not a person key). One
        without a valid token is counted, and audited per minute with the others (`api.gate`)."""
        if why.status == 401 and ctx.tally is not None:
            ctx.tally.add(resource)
            reads.labels(resource, "refused").inc()
            return _error(why.status, why.reason, {"WWW-Authenticate": "Bearer"})
        try:
            async with ctx.engine.begin() as conn:
                await read_audit.record(conn, _entry(None, resource, person, purpose, now, (), why))
        except SQLAlchemyError:
            return _error(503, "the register is unavailable; the refusal could not be audited")
        reads.labels(resource, "refused").inc()
        headers = {"WWW-Authenticate": "Bearer"} if why.status == 401 else None
        return _error(why.status, why.reason, headers)

    def person_key(raw: str) -> str:
        try:
            return parse_person_key(normalise_person_key(raw)).value
        except ValueError as exc:
            raise Refusal(400, f"person: {exc}") from None

    async def checked(
        resource: Resource,
        authorization: str | None,
        raw_key: str,
        purpose: str | None,
        read: Callable[[AsyncConnection, Principal, str, Allowed, date], Awaitable[Any]],
    ) -> JSONResponse:
        try:
            key = person_key(raw_key)
        except Refusal as exc:
            return await refuse(resource, None, purpose, ctx.clock(), exc)
        return await serve(resource, authorization, key, purpose, read)

    @router.get(
        "/persons/{person}/status",
        summary="A person's CTR status, cut to what the caller may see (§ 5)",
        responses={**_REFUSALS, 404: {"description": NOT_IN_REGISTER}},
    )
    async def person_status(
        person: str,
        purpose: str | None = Query(
            default=None,
            description="why it is read: a pharmacy's dispensing, information or "
            "deferral_assessment (§ 5 stk. 1); the agency's operation or data_quality (§ 5 stk. 3)",
            pattern=PURPOSE_PATTERN,
        ),
        authorization: str | None = Header(default=None),
    ) -> JSONResponse:
        async def read(
            conn: AsyncConnection, _p: Principal, key: str, allowed: Allowed, today: date
        ) -> Any:
            await _known(conn, key)
            full = await person_reads.status(conn, key, today)
            return {
                "as_of": today.isoformat(),
                "fields": sorted(allowed.fields),
                "status": {k: v for k, v in full.items() if k in allowed.fields},
            }

        return await checked("status", authorization, person, purpose, read)

    @router.get(
        "/persons/{person}/purchases",
        summary="A person's purchases in the current or previous period (§ 5 stk. 1, § 5 stk. 3)",
        responses={**_REFUSALS, 404: {"description": NOT_IN_REGISTER}},
    )
    async def person_purchases(
        person: str,
        period: Literal["current", "previous"] = "current",
        purpose: str | None = Query(
            default=None,
            description="why it is read: a pharmacy's information (§ 5 stk. 1); the agency's "
            "operation or data_quality (§ 5 stk. 3)",
            pattern=PURPOSE_PATTERN,
        ),
        authorization: str | None = Header(default=None),
    ) -> JSONResponse:
        async def read(
            conn: AsyncConnection, _p: Principal, key: str, _a: Allowed, today: date
        ) -> Any:
            await _known(conn, key)
            found = await person_reads.purchases(conn, key, period, today)
            return {"as_of": today.isoformat(), "fields": ["purchases"], **found}

        return await checked("purchases", authorization, person, purpose, read)

    @router.post(
        "/quotes",
        summary="What a sale about to be made gives: subsidy per line, supplement, balancing and "
        "what the citizen pays, as the register would decide it now; nothing is written",
        responses={**_REFUSALS, 409: {"description": "no subsidy scale in force on the day"}},
    )
    async def quotes(
        request: QuoteRequest,
        purpose: str | None = Query(
            default=None,
            description="a pharmacy quotes for dispensing (the default); the agency names "
            "operation or data_quality (§ 5 stk. 3)",
            pattern=PURPOSE_PATTERN,
        ),
        authorization: str | None = Header(default=None),
    ) -> JSONResponse:
        async def read(
            _c: AsyncConnection, principal: Principal, _k: str, _a: Allowed, _t: date
        ) -> Any:
            number = principal.pharmacy_number or request.pharmacy_number
            if principal.pharmacy_number and request.pharmacy_number not in (None, number):
                raise QuoteRefused(403, "a pharmacy quotes for its own pharmacy number only")
            if number is None:
                raise QuoteRefused(422, "pharmacy_number: required for a quote by the agency")
            return await quote(Register(ctx.engine), ctx.rules, request, number)

        stated = purpose or "dispensing"
        return await checked("quote", authorization, request.person_key, stated, read)

    @router.get(
        "/audit",
        summary="The audit log of reads, newest first (the agency only)",
        responses=_REFUSALS,
    )
    async def audit(
        person: str | None = Query(default=None, max_length=11),
        limit: int = Query(default=100, ge=1, le=1000),
        purpose: str | None = Query(
            default=None,
            description="operation or data_quality (§ 5 stk. 3)",
            pattern=PURPOSE_PATTERN,
        ),
        authorization: str | None = Header(default=None),
    ) -> JSONResponse:
        wanted: str | None = None
        if person is not None:
            try:
                wanted = person_key(person)
            except Refusal as exc:
                return await refuse("audit", None, purpose, ctx.clock(), exc)

        async def read(conn: AsyncConnection, _p: Principal, _k: str, _a: Allowed, _t: date) -> Any:
            internal = None
            if wanted is not None:
                internal, _ = await person_reads.internal_id(conn, wanted)
            return {"entries": await read_audit.entries(conn, person_key=internal, limit=limit)}

        return await serve("audit", authorization, None, purpose, read)

    @router.get(
        "/places/{place}",
        summary="A treatment place by SOR id or reference number: in full to STPS, the agency and its "
        "own registrant; to anyone else what STPS publishes about a registered place",
        responses={
            401: {"description": "no valid token"},
            404: {"description": "no such place, or none the caller may see"},
            503: {"description": "the register is unavailable"},
        },
    )
    async def place(
        place: str = Path(max_length=40),
        authorization: str | None = Header(default=None),
    ) -> JSONResponse:
        """Token (401), then the place and the caller's view of it (404 when there is none), and the
        audit entry of either in the transaction that reads."""
        now = ctx.clock()
        asked = None if contains_person_number(place) else place  # the audit keeps no CPR number
        principal: Principal | None = None
        shown: PlaceRead | None = None
        refusal: Refusal | None = None
        try:
            principal = await ctx.verifier.principal(authorization)
        except TokenRefused as exc:
            if ctx.tally is not None:  # audited per minute with the others (`api.gate`)
                ctx.tally.add("place")
                reads.labels("place", "refused").inc()
                return _error(401, exc.reason, {"WWW-Authenticate": "Bearer"})
            refusal = Refusal(401, exc.reason)
        try:
            async with ctx.engine.begin() as conn:
                if principal is not None:
                    # PostgreSQL's text holds no NUL: such an id names no place and is not sent there
                    record = None if "\x00" in place else await place_record(conn, place)
                    if record is not None:
                        asked = record["state"]["sor_id"]
                        shown = place_read(principal, record)
                    if shown is None:
                        refusal = Refusal(
                            404, "no treatment place with that SOR id or reference number"
                        )
                entry = AuditEntry(
                    at=now,
                    subject=principal.subject if principal else "-",
                    role=principal.role if principal else None,
                    actor=principal.actor if principal else None,
                    person_key=None,
                    place=asked,
                    resource="place",
                    purpose=None,
                    fields=shown.fields if shown else (),
                    status=refusal.status if refusal else 200,
                    reason=refusal.reason if refusal else None,
                )
                entry = _pseudonymous(entry, ctx.pseudonym_secret)
                await read_audit.record(conn, entry)
        except SQLAlchemyError:
            return _error(503, "the register is unavailable; nothing was read")
        reads.labels("place", entry.outcome).inc()
        if refusal is not None:
            headers = {"WWW-Authenticate": "Bearer"} if refusal.status == 401 else None
            return _error(refusal.status, refusal.reason, headers)
        assert shown is not None
        return JSONResponse(jsonable_encoder({"view": shown.view, **shown.body}))

    return router


def resource_of(path: str) -> Resource | None:
    """The resource a request path reads, for the audit; None outside the personal-data routes."""
    if path.startswith("/v1/persons/"):
        return "purchases" if path.endswith("/purchases") else "status"
    if path.startswith("/v1/places/"):
        return "place"  # type: ignore[return-value]
    return {"/v1/quotes": "quote", "/v1/audit": "audit"}.get(path.rstrip("/"))  # type: ignore[return-value]


_REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {"description": "not a person key"},
    401: {"description": "no valid token"},
    403: {"description": "§ 5 does not give the caller this read"},
    503: {"description": "the register is unavailable"},
}


def _entry(
    principal: Principal | None,
    resource: Resource,
    person: str | None,
    purpose: str | None,
    at: datetime,
    fields: tuple[str, ...],
    refusal: Refusal | None,
) -> AuditEntry:
    return AuditEntry(
        at=at,
        subject=principal.subject if principal else "-",
        role=principal.role if principal else None,
        actor=principal.actor if principal else None,
        person_key=person,
        resource=resource,
        purpose=purpose,
        fields=fields,
        status=refusal.status if refusal else 200,
        reason=refusal.reason if refusal else None,
    )


def _pseudonymous(entry: AuditEntry, secret: bytes) -> AuditEntry:
    """The audit entry with a caller whose token's subject or actor holds a CPR number named by its
    pseudonym instead (spec § 8: the audit names the caller by a pseudonym)."""
    subject, actor = entry.subject, entry.actor
    if contains_person_number(subject):
        subject = "pseudonym " + pseudonym(subject, secret)
    if actor is not None and contains_person_number(actor):
        actor = "pseudonym " + pseudonym(actor, secret)
    return replace(entry, subject=subject, actor=actor)


def _error(status: int, reason: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": reason}, status_code=status, headers=headers)
