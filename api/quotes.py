"""`POST /v1/quotes`: what a sale about to be made would give, for the pharmacy's counter (order § 5
stk. 1: "beregning af tilskud, kommunalt helbredstillæg og egenbetaling i forbindelse med udlevering").

The quote is the stream's own computation: the lines become a dispensing report validated by the topic's
schema, the person and the scales are loaded by the register's own unit of work (rolled back), and the
report goes through `rules.dispensing.apply_dispensing` and `rules.lines.line_charges` as the stream's
handler does. So a quote is the decision the register would give the same report now; nothing is written.
A quote for a person whose death the CPR register reported says so (`died_on`, `notice`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rules.deadlines import COPENHAGEN
from rules.dispensing import RulesConfig, apply_dispensing, is_late
from rules.lines import line_charges
from rules.outcomes import Parked, PurchaseResult, Refused
from rules.scales import ScaleBook
from rules.state import PersonState
from schemas.common import EventTime
from schemas.dispensing import DispensingReport
from sinks.register import Register


class QuoteLine(BaseModel):
    """One medicine about to be sold."""

    model_config = ConfigDict(extra="forbid")

    drug_id: str = Field(description="the medicine (varenummer)", max_length=40)
    reimbursement_price: int = Field(description="tilskudspris in øre", ge=0, le=10**10)
    actual_price: int = Field(description="the price charged in øre", ge=0, le=10**10)
    generally_reimbursed: bool = True


class QuoteRequest(BaseModel):
    """A sale about to be made: the person, the lines and when (default: now)."""

    model_config = ConfigDict(extra="forbid")

    person_key: str = Field(description="CPR number or substitute id", max_length=11)
    birth_date: str | None = Field(
        default=None, description="with a fictitious number only (YYYY-MM-DD)", max_length=10
    )
    pharmacy_number: str | None = Field(
        default=None,
        description="the selling pharmacy; a pharmacy's token's own number when left out",
        max_length=5,
    )
    paid_at: EventTime | None = Field(default=None, description="the time of sale; now if null")
    lines: list[QuoteLine] = Field(min_length=1, max_length=100)
    under_deferral: bool = False


class QuoteRefused(Exception):
    """The quote cannot be given: the HTTP status and a reason that names no person."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def quote(
    register: Register, rules: RulesConfig, request: QuoteRequest, pharmacy_number: str
) -> dict[str, Any]:
    """The decision the register would give this sale now, without a report's identifiers.

    Raises:
        QuoteRefused: 422 when the report would be refused (its reason), 409 when no subsidy scale is
            in force on the day of sale.
    """
    report = _report(request, pharmacy_number)
    day = report.paid_or_invoiced_at.astimezone(COPENHAGEN).date()
    async with register.unit_of_work(rollback=True) as uow:
        states, aliases = await uow.ctr.load_persons([report.person.key], lock=False)
        scales = ScaleBook(await uow.ctr.load_scales())
    alias = aliases.get(report.person.key)
    key = alias.person_key if alias is not None else report.person.key
    state = states.get(key) or PersonState(key, report.person.born())
    if is_late(state, report, day):
        raise QuoteRefused(
            422,
            "paid_at: before a purchase already registered; a quote is for a sale now "
            "(a late report is placed among the earlier purchases when it is reported)",
        )
    outcome = apply_dispensing(state, report, day, scales, rules)
    if isinstance(outcome, Refused):
        raise QuoteRefused(422, outcome.reason)
    if isinstance(outcome, Parked):
        raise QuoteRefused(409, outcome.reason)
    assert outcome.purchase is not None
    return {**_shown(report, outcome.purchase), **_death(state, day)}


def _death(state: PersonState, day: date) -> dict[str, Any]:
    """The person's registered death (from the CPR register), said plainly when the sale is after it:
    the register will take the report, and flag it as a purchase after death."""
    if state.died_on is None:
        return {"died_on": None, "notice": None}
    notice = None
    if day > state.died_on:
        notice = (
            f"the CPR register reports this person dead on {state.died_on.isoformat()}: a sale "
            "after the death is registered and flagged (purchase_after_death)"
        )
    return {"died_on": state.died_on.isoformat(), "notice": notice}


_HEX_DIGITS_AS_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def new_quote_id() -> str:
    """A new quote's id, used as its report, dispensing and ordination id: 96 random bits written in
    letters only. As hex, about one id in 1,250 held ten digits that read as a CPR number, and the
    schema (`schemas.common.MessageId`) refused the pharmacy's quote with a 422."""
    return "quote-" + uuid.uuid4().hex[:24].translate(_HEX_DIGITS_AS_LETTERS)


def _report(request: QuoteRequest, pharmacy_number: str) -> DispensingReport:
    """The sale as the dispensing topic would carry it, validated by that topic's schema."""
    quote_id = new_quote_id()
    person: dict[str, Any] = {"key": request.person_key}
    if request.birth_date is not None:
        person["birth_date"] = request.birth_date
    paid_at = request.paid_at or datetime.now(UTC)
    raw = {
        "report_id": quote_id,
        "kind": "sale",
        "pharmacy_number": pharmacy_number,
        "dispensing_id": quote_id,
        "ordination_id": quote_id,
        "paid_or_invoiced_at": paid_at.isoformat(),
        "person": person,
        "lines": [line.model_dump() for line in request.lines],
        "under_deferral": request.under_deferral,
    }
    try:
        return DispensingReport.model_validate_json(orjson.dumps(raw))
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise QuoteRefused(422, f"{where}: {first['msg']}") from None


def _shown(report: DispensingReport, r: PurchaseResult) -> dict[str, Any]:
    """The quote: the decision's amounts and lines as the stream would publish them."""
    charges = line_charges(
        [ln.actual_price for ln in report.lines],
        list(r.line_basis),
        terminal=r.terminal,
        subsidy=r.subsidy,
        balancing_applied=r.balancing_applied,
        health_supplement=r.health_supplement,
        rights_based=r.rights_based,
    )  # one line carries the totals as they are, as in the stream's decisions
    lines = [
        {"drug_id": ln.drug_id, **c._asdict()} for ln, c in zip(report.lines, charges, strict=True)
    ]
    period = r.period
    return {
        "paid_at": report.paid_or_invoiced_at.isoformat(),
        "subsidised": r.subsidised,
        "subsidy_entitled": r.subsidy_entitled,
        "balancing_applied": r.balancing_applied,
        "subsidy": r.subsidy,
        "health_supplement": r.health_supplement,
        "rights_based": r.rights_based,
        "citizen_pays": r.citizen_pays,
        "deferred_to_agreement": r.deferred_to_agreement,
        "citizen_pays_at_counter": r.citizen_pays_at_counter,
        "saldo_before": r.saldo_before,
        "saldo_after": r.saldo_after,
        "period_start": period.start.isoformat() if period else None,
        "period_end": period.end.isoformat() if period else None,
        "under18": period.under18 if period else None,
        "remaining_balancing": r.remaining_balancing,
        "lines": lines,
        "balancing": [
            {
                "amount": p.amount,
                "period_start": p.period_start.isoformat() if p.period_start else None,
                "arose_on": p.arose_on.isoformat(),
                "origin": p.origin,
            }
            for p in r.balancing_parts
        ],
        "agreement_id": r.agreement_id,
    }
