"""What applying one event can come to: applied (with its result), parked for later, or refused."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from rules.money import Ore
from rules.state import Period, PersonState, Supplement
from rules.values import value
from schemas.dispensing import DispensingLine


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
    """A registered purchase as later rules (returns, corrections, grants) need it; amounts in øre."""

    report_id: str
    day: date
    period_start: date | None
    basis: Ore
    entitled: Ore
    terminal: bool
    returned_basis: Ore = 0
    status: str = "registered"
    deferred: Ore = 0  # own payment that went to a deferral agreement
    lines: tuple[DispensingLine, ...] = ()
    """The report's lines as registered (a retroactive grant prices them again); () when not loaded."""
    paid_at: datetime | None = None
    """When it was paid or invoiced: the order purchases are placed in (spec/ctr.md § 7)."""
    return_of: str | None = None
    subsidised: bool = True
    """Whether it has a line with subsidy (§ 144, or a § 145 grant): only such a sale opens a period."""
    actual: Ore = 0
    """What the pharmacy charged for it, all lines."""
    paid: Ore = 0
    """What the person paid for it, balancing aside: actual − subsidy due − supplements (a return's cap)."""


@value
class AppliedBalance:
    """One open balancing amount (udligningsbeløb, § 6) as a purchase settled it.

    `amount` is what this purchase applied of it: + paid to the person, − deducted from the subsidy.
    `period_start` is the start of the period where it arose (§ 7 stk. 3), None when it arose outside
    any period the register knows.
    """

    amount: Ore
    period_start: date | None
    arose_on: date
    origin: str


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
    line_basis: tuple[Ore, ...] = ()
    """Each line's saldo basis, in the report's order (0 for a line without subsidy); sums to `basis`."""
    health_supplement_by: Supplement | None = None
    """The municipal decision the helbredstillæg is billed to; None when there is none."""
    rights_based_by: Supplement | None = None
    """The municipal decision the rights-based amount is billed to; None when there is none."""
    balancing_parts: tuple[AppliedBalance, ...] = ()
    """The balancing amounts applied, one per open amount touched; they sum to `balancing_applied`."""


@value
class Applied:
    """The event applied: the person's new state, a purchase's result, and an earlier period it
    changed besides the current one (a return of a previous-period sale)."""

    state: PersonState
    purchase: PurchaseResult | None = None
    earlier_period: Period | None = None
