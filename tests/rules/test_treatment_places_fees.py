"""The annual fee of a treatment place, spec/treatment-places.md § 6: every row of the table, each band
edge, the fee-free cases (§ 1), the owner-change year, and a year without a table."""

from __future__ import annotations

import math

import pytest

from rules.treatment_places.fees import (
    KNOWN_FEE_TABLES,
    Fee,
    FeeBook,
    FeeTable,
    NoFeeTable,
    NoTurnover,
    annual_fee,
    half,
    invoice_to,
    new_table_refusal,
)

BOOK = FeeBook()

# spec § 6: year, L (kr), fees for categories 1-5 (kr)
TABLE = [
    (2017, None, (10_847, 7_234, 3_975, 2_238, 1_917)),
    (2018, 25_000, (11_161, 7_444, 4_090, 2_303, 1_973)),
    (2019, 25_450, (11_362, 7_578, 4_164, 2_344, 2_009)),
    (2020, 25_705, (11_476, 7_653, 4_205, 2_368, 2_029)),
    (2021, 26_090, (6_389, 4_260, 2_341, 1_318, 1_130)),
    (2024, 28_615, (12_775, 8_520, 4_681, 2_636, 2_258)),
]
ROWS = [
    (year, limit, category, kr)
    for year, limit, fees in TABLE
    for category, kr in enumerate(fees, start=1)
]
# spec § 6, STPS's published half fees (øre): "2021 and 2024: cat 1 6,388 for 12,775; cat 5 1,129
# for 2,258"; "2018 was published as 5,580.50" (category 1).
PUBLISHED_HALVES = {(2024, 1): 638_800, (2024, 5): 112_900, (2018, 1): 558_050}


def published_half(year: int, kr: int) -> int:
    """The half fee by spec § 6's DECISION, in øre: 2018's published exactly (5,580.50 kr), every other
    year the exact half rounded up to whole kroner."""
    return kr * 50 if year == 2018 else math.ceil(kr / 2) * 100


def test_the_known_tables_are_the_spec_table() -> None:
    assert [(t.year, t.limit) for t in KNOWN_FEE_TABLES] == [
        (year, None if limit is None else limit * 100) for year, limit, _ in TABLE
    ]


@pytest.mark.parametrize(("year", "limit", "category", "kr"), ROWS)
def test_every_row_full_fee_above_twice_the_limit(
    year: int, limit: int | None, category: int, kr: int
) -> None:
    """§ 6: full fee above 2L (and in 2017, which had no limit, at any turnover)."""
    turnover = 2 * limit * 100 + 1 if limit is not None else 100
    assert annual_fee(BOOK, year, category, turnover) == Fee(year, category, "full", kr * 100)


@pytest.mark.parametrize(("year", "limit", "category", "kr"), [r for r in ROWS if r[1]])
def test_every_row_half_fee_and_its_edges(year: int, limit: int, category: int, kr: int) -> None:
    """§ 6: half fee for L < turnover ≤ 2L; at L exactly, exempt (de minimis); the half as STPS
    publishes it."""
    L = limit * 100
    halved = published_half(year, kr)
    assert PUBLISHED_HALVES.get((year, category), halved) == halved
    assert annual_fee(BOOK, year, category, L) == Fee(year, category, "de_minimis", 0)
    assert annual_fee(BOOK, year, category, L + 1) == Fee(year, category, "half", halved)
    assert annual_fee(BOOK, year, category, 2 * L) == Fee(year, category, "half", halved)
    assert annual_fee(BOOK, year, category, 2 * L + 1) == Fee(year, category, "full", kr * 100)
    assert annual_fee(BOOK, year, category, 0) == Fee(year, category, "de_minimis", 0)


def test_half_fees_as_stps_published_them() -> None:
    """§ 6: 2018's category 1 was published as 5,580.50 kr; 2024's as 6,388 kr for 12,775 kr and 1,129 kr
    for 2,258 kr (the exact half rounded up to whole kroner)."""
    for (year, category), amount in PUBLISHED_HALVES.items():
        limit = BOOK.of(year).limit  # type: ignore[union-attr]
        assert annual_fee(BOOK, year, category, limit + 1) == Fee(year, category, "half", amount)
    assert half(1_277_500) == 638_800 and half(225_800) == 112_900 and half(100) == 100


def test_a_loaded_table_with_published_halves_uses_them_and_one_without_rounds_up() -> None:
    """§ 6 DECISION: a table carries the half amounts as STPS publishes them; where it gives only full
    amounts, the half is rounded up to whole kroner. Odd øre amounts are no longer refused."""
    full = {c: 100_001 * c for c in range(1, 6)}
    published = FeeTable(2025, 1_000, full, True, "test", {c: 50_000 * c for c in range(1, 6)})
    rounded = FeeTable(2025, 1_000, full, True, "test")
    assert annual_fee(FeeBook([published]), 2025, 3, 1_500).amount == 150_000  # type: ignore[union-attr]
    assert annual_fee(FeeBook([rounded]), 2025, 1, 1_500).amount == 50_100  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        FeeTable(2025, None, full, True, "test", {1: 1})  # a category missing


@pytest.mark.parametrize("year", [2016, 2022, 2023, 2025, 2026])
def test_a_year_without_a_table_has_no_fee_never_a_guess(year: int) -> None:
    """§ 6: 2022, 2023, 2025, 2026 were not found: no fee is invented."""
    assert annual_fee(BOOK, year, 3, 10_000_000) == NoFeeTable(year)
    assert annual_fee(BOOK, year, 3, None, owner_change=True) == NoFeeTable(year)
    assert annual_fee(BOOK, year, 3, None, fee_free="volunteer_clinic") == NoFeeTable(year)


def test_a_table_loaded_for_another_year_is_used() -> None:
    book = FeeBook(
        [
            *KNOWN_FEE_TABLES,
            FeeTable(2025, 2_900_000, {c: 100_000 * c for c in range(1, 6)}, True, "test"),
        ]
    )
    assert annual_fee(book, 2025, 2, 6_000_000) == Fee(2025, 2, "full", 200_000)
    with pytest.raises(ValueError):
        FeeTable(2025, None, {1: 2}, True, "test")  # a category missing
    with pytest.raises(ValueError):
        FeeTable(2025, None, {c: 0 for c in range(1, 6)}, True, "test")  # no fee
    assert book.with_tables([]).of(2025) is not None and FeeBook().of(2025) is None


@pytest.mark.parametrize("reason", ["volunteer_clinic", "volunteer_large_event", "care_only"])
def test_fee_free_places_register_and_pay_nothing(reason: str) -> None:
    """§ 1: fixed clinics with only volunteer unpaid staff, large volunteer events, care-only units."""
    assert annual_fee(BOOK, 2024, 4, 10_000_000, fee_free=reason) == Fee(2024, 4, "fee_free", 0)  # type: ignore[arg-type]


def test_care_only_is_fee_free_only_in_years_that_say_so() -> None:
    """§ 1 DECISION: configurable per year; the 2017 table does not make care-only units fee-free."""
    assert annual_fee(BOOK, 2017, 4, 100, fee_free="care_only") == Fee(2017, 4, "full", 223_800)
    assert annual_fee(BOOK, 2018, 4, 100, fee_free="care_only") == Fee(2018, 4, "fee_free", 0)


def test_both_places_of_an_owner_change_pay_the_full_fee_whatever_their_turnover() -> None:
    """§ 1: a new owner is a new place; both pay the full fee for a year where both were registered."""
    for turnover in (None, 0, 2_861_500, 5_723_000):
        assert annual_fee(BOOK, 2024, 3, turnover, owner_change=True) == Fee(
            2024, 3, "owner_change", 468_100
        )


def test_without_turnover_the_band_is_unknown() -> None:
    assert annual_fee(BOOK, 2024, 3, None) == NoTurnover(2024)
    assert annual_fee(BOOK, 2017, 3, None) == Fee(2017, 3, "full", 397_500)  # no limit in 2017


def test_the_invoice_goes_to_ean_else_digital_mailbox_else_email() -> None:
    """§ 6: EAN if given, else the company's digital mailbox, else (no CVR) the fee e-mail."""
    assert invoice_to("5790000000005", "10000009", "a@b.dk") == ("ean", "5790000000005")
    assert invoice_to(None, "10000009", "a@b.dk") == ("digital_mailbox", "10000009")
    assert invoice_to(None, None, "a@b.dk") == ("email", "a@b.dk")
    assert invoice_to(None, None, None) is None


def _table(year: int = 2025, source: str = "stps.dk", fee_1: int = 1_277_500) -> FeeTable:
    fees = {1: fee_1, 2: 852_000, 3: 468_100, 4: 263_600, 5: 225_800}
    return FeeTable(year, 2_861_500, fees, True, source)


@pytest.mark.parametrize(
    ("table", "reason"),
    [
        (_table(), None),
        (_table(2017), None),
        (_table(2027), None),  # next year, seen from 2026
        (_table(2016), "the year is from 2017 to next year"),  # § 6: the first fee year is 2017
        (_table(2028), "the year is from 2017 to next year"),
        (_table(9999), "the year is from 2017 to next year"),
        (_table(fee_1=10**13 + 2), "an amount is at most 10^13 øre"),
        (
            _table(source="stps\x00.dk"),
            "the source holds no control character and no person number",
        ),
        (_table(source="0505601234"), "the source holds no control character and no person number"),
    ],
)
def test_a_fee_table_to_load_has_a_plausible_year_amount_and_source(
    table: FeeTable, reason: str | None
) -> None:
    """Issue 29 point 7: what `reghub fee-table load` refuses before any database sees it."""
    assert new_table_refusal(table, 2026) == reason
