"""A person's register state as the rules see it: current period, grants, supplements, balances, deferral.

The relational register is the record; a `PersonState` is loaded from it for one batch, changed by the
rules, and written back. Every holder here is immutable; the rules return new values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from rules.money import Ore
from rules.values import value

GrantKind = Literal["s145_single", "s148_terminal", "s151_increased"]
SupplementKind = Literal["health_supplement", "rights_based"]


@value
class Period:
    """A subsidy period (tilskudsperiode): start..end inclusive, its saldo, and the under-18 flag.

    `last_paid_at` is the payment time of the latest purchase registered in it: a report paid before it
    is late and is placed by its payment date (`rules/history.py`); None where it is not known. It
    orders reports and is not part of the period's value: periods compare without it.
    """

    start: date
    end: date
    saldo: Ore
    under18: bool
    previous_end: date | None
    last_paid_at: datetime | None = field(default=None, compare=False)

    def covers(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True, slots=True)
class Grant:
    """An individual grant (§ 145 enkelttilskud, § 148 terminaltilskud, § 151 forhøjet tilskud)."""

    grant_id: str
    kind: GrantKind
    drug_id: str | None
    valid_from: date
    valid_to: date

    def covers(self, day: date, drug_id: str | None = None) -> bool:
        in_force = self.valid_from <= day <= self.valid_to
        return in_force and (self.drug_id is None or self.drug_id == drug_id)


@dataclass(frozen=True, slots=True)
class Supplement:
    """A municipal decision: health supplement (helbredstillæg) with its percentage, or the rights-based
    subsidy to own payment (§ 82 b), valid from..to (open-ended when `valid_to` is None)."""

    decision_id: str
    kind: SupplementKind
    municipality_code: int
    percentage: Decimal | None
    valid_from: date
    valid_to: date | None

    def covers(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True, slots=True)
class Balance:
    """An open balancing amount (udligningsbeløb, § 6): + owed to the person, − owed by the person.

    `arose_in_period` is the start of the period where it arose (§ 7 stk. 3); `skip_once` is the § 6
    stk. 3 hardship deferral, used up at the next purchase.
    """

    balance_id: str
    amount: Ore
    remaining: Ore
    arose_on: date
    arose_in_period: date | None
    origin: str
    skip_once: bool = False


@dataclass(frozen=True, slots=True)
class Agreement:
    """A deferral agreement (henstandsordning) with a pharmacy, and the own payment deferred under it."""

    agreement_id: str
    pharmacy_number: str
    entered_on: date
    monthly_rate: Ore
    rates: int
    ended_on: date | None = None
    ended_by_default: bool = False
    deferred_total: Ore = 0
    settled: bool = False

    def active_on(self, day: date) -> bool:
        return self.entered_on <= day and (self.ended_on is None or day <= self.ended_on)


@value
class PersonState:
    """Everything the rules need about one person; `period` is the current (latest) subsidy period."""

    key: str
    birth_date: date
    period: Period | None = None
    grants: tuple[Grant, ...] = ()
    supplements: tuple[Supplement, ...] = ()
    balances: tuple[Balance, ...] = ()
    agreements: tuple[Agreement, ...] = ()
    died_on: date | None = None

    def grant(self, kind: GrantKind, day: date, drug_id: str | None = None) -> Grant | None:
        for g in self.grants:
            if g.kind == kind and g.covers(day, drug_id):
                return g
        return None

    def supplement(self, kind: SupplementKind, day: date) -> Supplement | None:
        found = [s for s in self.supplements if s.kind == kind and s.covers(day)]
        return max(found, key=lambda s: s.valid_from) if found else None

    def agreement_on(self, day: date) -> Agreement | None:
        for a in self.agreements:
            if a.active_on(day) and not a.settled:
                return a
        return None
