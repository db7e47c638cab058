"""The annual fee of a registered treatment place (spec/treatment-places.md § 6), in øre.

Exempt at or below the year's de-minimis limit L; half fee for L < turnover ≤ 2L; full fee above.
The half fee is the one STPS publishes: a table carries it where STPS published it (2018: 5,580.50 kr
for 11,161 kr), else it is the exact half rounded up to whole kroner (2021, 2024: 6,388 kr for 12,775 kr).
Fee-free places register but pay nothing (spec § 1); a new owner's place and the old one both pay the
full fee for the year of the change. The fee tables are reference data per year: a year without one
has no fee (`NoFeeTable`), never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from rules.identifiers import contains_person_number
from rules.money import Ore

Band = Literal["de_minimis", "half", "full", "fee_free", "owner_change"]
FeeFreeReason = Literal["volunteer_clinic", "volunteer_large_event", "care_only"]
InvoiceChannel = Literal["ean", "digital_mailbox", "email"]

FIRST_FEE_YEAR = 2017
"""The register's first fee year (spec § 6): no fee table is older."""
AMOUNT_LIMIT = 10**13
"""A hundred billion kroner in øre: far above any fee or turnover limit, far below a 64-bit column."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class FeeTable:
    """One calendar year's fees by category and its turnover limit, in øre.

    - `limit`: the de-minimis limit L (None: no limit that year, every place pays the full fee);
    - `care_only_fee_free`: units delivering only §§ 83-87 care pay no fee that year (DECISION:
      configurable per year; stated for 2018-2024);
    - `halves`: the half fees as STPS published them, by category (None: STPS gave only the full
      amounts, and the half is the exact half rounded up to whole kroner, spec § 6).
    """

    year: int
    limit: Ore | None
    fees: Mapping[int, Ore]
    care_only_fee_free: bool
    source: str
    halves: Mapping[int, Ore] | None = None

    def __post_init__(self) -> None:
        if sorted(self.fees) != [1, 2, 3, 4, 5]:
            raise ValueError("a fee table has a fee for each of the categories 1-5")
        if any(fee <= 0 for fee in self.fees.values()):
            raise ValueError("a fee is a positive number of øre")
        if self.halves is not None:
            if sorted(self.halves) != [1, 2, 3, 4, 5]:
                raise ValueError("a table's half fees name each of the categories 1-5")
            if any(not 0 < h <= self.fees[c] for c, h in self.halves.items()):
                raise ValueError("a half fee is positive and at most the full fee")
        if self.limit is not None and self.limit < 0:
            raise ValueError("the de-minimis limit is not negative")

    def half_fee(self, category: int) -> Ore:
        """The half fee of `category` as STPS charges it (spec § 6)."""
        if self.halves is not None:
            return self.halves[category]
        return half(self.fees[category])


def new_table_refusal(table: FeeTable, this_year: int) -> str | None:
    """Why a fee table about to be loaded is refused, or None. On top of a table's own invariants
    (which tables already loaded keep): a year from 2017 to next year, amounts a register column
    holds on SQLite and PostgreSQL alike, a source without control characters or a CPR number."""
    if not FIRST_FEE_YEAR <= table.year <= this_year + 1:
        return f"the year is from {FIRST_FEE_YEAR} to next year"
    amounts = [*table.fees.values(), *(table.halves or {}).values(), table.limit or 0]
    if any(amount > AMOUNT_LIMIT for amount in amounts):
        return "an amount is at most 10^13 øre"
    if _CONTROL.search(table.source) or contains_person_number(table.source):
        return "the source holds no control character and no person number"
    return None


def _dkk(*amounts: int) -> dict[int, Ore]:
    return {category: kr * 100 for category, kr in enumerate(amounts, start=1)}


def _ore(*amounts: int) -> dict[int, Ore]:
    return dict(enumerate(amounts, start=1))


_STPS = "stps.dk, 'Gebyr for registrering af behandlingssted' (spec/treatment-places.md § 6)"
KNOWN_FEE_TABLES: tuple[FeeTable, ...] = (
    FeeTable(2017, None, _dkk(10_847, 7_234, 3_975, 2_238, 1_917), False, _STPS),
    FeeTable(
        2018,
        2_500_000,
        _dkk(11_161, 7_444, 4_090, 2_303, 1_973),
        True,
        _STPS + ", half fees as published (5,580.50 kr for category 1)",
        _ore(558_050, 372_200, 204_500, 115_150, 98_650),
    ),
    FeeTable(2019, 2_545_000, _dkk(11_362, 7_578, 4_164, 2_344, 2_009), True, _STPS),
    FeeTable(2020, 2_570_500, _dkk(11_476, 7_653, 4_205, 2_368, 2_029), True, _STPS),
    FeeTable(2021, 2_609_000, _dkk(6_389, 4_260, 2_341, 1_318, 1_130), True, _STPS + ", reduced"),
    FeeTable(2024, 2_861_500, _dkk(12_775, 8_520, 4_681, 2_636, 2_258), True, _STPS),
)
"""The years the spec found for every category; 2022, 2023, 2025 and 2026 are not here on purpose."""


class FeeBook:
    """Fee tables by year; a later table of a year replaces an earlier one (a loaded table wins over
    a bundled one)."""

    def __init__(self, tables: Iterable[FeeTable] = KNOWN_FEE_TABLES) -> None:
        self._by_year = {t.year: t for t in tables}

    def with_tables(self, tables: Iterable[FeeTable]) -> FeeBook:
        return FeeBook([*self._by_year.values(), *tables])

    def of(self, year: int) -> FeeTable | None:
        return self._by_year.get(year)


@dataclass(frozen=True, slots=True)
class Fee:
    """A place's fee for a year: the band it falls in and the amount in øre."""

    year: int
    category: int | None
    band: Band
    amount: Ore


@dataclass(frozen=True, slots=True)
class NoFeeTable:
    """The year has no fee table: no fee is computed (spec § 6: never a guess)."""

    year: int
    reason: str = "no fee table"


@dataclass(frozen=True, slots=True)
class NoCategory:
    """A care-only unit (no category, spec § 3) in a year whose table does not make it fee-free."""

    year: int
    reason: str = "no category"


@dataclass(frozen=True, slots=True)
class NoTurnover:
    """The place reported no turnover for the year, so its band is unknown."""

    year: int
    reason: str = "no turnover reported"


def half(amount: Ore) -> Ore:
    """Half of a full fee rounded up to whole kroner, as STPS publishes it where a table gives only the
    full amounts (spec § 6): 12,775 kr gives 6,388 kr, 2,258 kr gives 1,129 kr."""
    return -(-amount // 200) * 100


def annual_fee(
    book: FeeBook,
    year: int,
    category: int | None,
    turnover: Ore | None,
    *,
    fee_free: FeeFreeReason | None = None,
    owner_change: bool = False,
) -> Fee | NoFeeTable | NoTurnover | NoCategory:
    """The fee a place registered at any time in `year` owes for it (spec § 6).

    Args:
        category: the place's category (None: a care-only unit, which has none).
        turnover: the place's turnover for the year in øre (None: not reported).
        fee_free: why the place pays no fee (spec § 1), if it does not.
        owner_change: the year a new owner (a new CVR) took over: both places pay the full fee.
    """
    table = book.of(year)
    if table is None:
        return NoFeeTable(year)
    if fee_free == "care_only" and not table.care_only_fee_free:
        fee_free = None
    if fee_free is not None:
        return Fee(year, category, "fee_free", 0)
    if category is None:
        return NoCategory(year)
    full = table.fees[category]
    if owner_change:
        return Fee(year, category, "owner_change", full)
    if table.limit is None:
        return Fee(year, category, "full", full)
    if turnover is None:
        return NoTurnover(year)
    if turnover <= table.limit:
        return Fee(year, category, "de_minimis", 0)
    if turnover <= 2 * table.limit:
        return Fee(year, category, "half", table.half_fee(category))
    return Fee(year, category, "full", full)


def invoice_to(
    ean: str | None, cvr: str | None, fee_email: str | None
) -> tuple[InvoiceChannel, str] | None:
    """Where the invoice goes: the EAN number if given, else the company's digital mailbox (by CVR),
    else (no CVR) the fee e-mail; None when there is nowhere (spec § 6)."""
    if ean:
        return "ean", ean
    if cvr:
        return "digital_mailbox", cvr
    if fee_email:
        return "email", fee_email
    return None


def years_registered(first: int, last: int) -> range:
    """The calendar years a place registered from `first` to `last` (inclusive) owes a fee for."""
    return range(first, last + 1)
