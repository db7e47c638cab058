"""What applying one event can come to: applied (with its result), parked for later, or refused."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from rules.money import Ore
from rules.state import Period, PersonState


@dataclass(frozen=True, slots=True)
class Refused:
    """The event breaks a rule; `reason` is specific (`rule.…`) and never contains a person key."""

    reason: str


@dataclass(frozen=True, slots=True)
class Parked:
    """The event cannot be decided yet (no scale in force on its date); replay it when it can."""

    reason: str
    day: date


@dataclass(frozen=True, slots=True)
class PurchaseRecord:
    """A registered purchase as later rules (returns, corrections) need it; amounts in øre."""

    report_id: str
    day: date
    period_start: date | None
    basis: Ore
    entitled: Ore
    terminal: bool
    returned_basis: Ore = 0
    status: str = "registered"
    deferred: Ore = 0  # own payment that went to a deferral agreement


@dataclass(
    slots=True
)  # not frozen: built once per report, and a frozen __init__ costs twice as much
class PurchaseResult:
    """The register's decision on one dispensing: § 3 stk. 1 nr. 6-10 and what the citizen pays."""

    report_id: str
    day: date
    subsidised: bool
    terminal: bool
    basis: Ore
    subsidy_entitled: Ore
    balancing_applied: Ore
    subsidy: Ore
    health_supplement: Ore
    rights_based: Ore
    citizen_pays: Ore
    deferred_to_agreement: Ore
    citizen_pays_at_counter: Ore
    saldo_before: Ore
    saldo_after: Ore
    period: Period | None
    remaining_balancing: Ore
    deviation: Ore
    agreement_id: str | None


@dataclass(frozen=True, slots=True)
class Applied:
    state: PersonState
    purchase: PurchaseResult | None = None
