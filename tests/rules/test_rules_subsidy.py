"""Unit tests of the § 146 subsidy in `rules/subsidy.py` and the money helpers in `rules/money.py`.

Every test names the section of spec/ctr.md (sundhedsloven § 146, BEK 764/2025) it checks.
Pure: no I/O is allowed while these run.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from rules.money import kroner_to_ore, ore_to_kroner, round_half_up
from rules.scales import KNOWN_SCALES, Scale, scale_for
from rules.subsidy import cumulative_entitlement, entitlement, share_of


def kr(text: str) -> int:
    return kroner_to_ore(text)


SCALE_2024: Scale = scale_for(date(2024, 6, 1), KNOWN_SCALES)  # type: ignore[assignment]
ADULT, CHILD = False, True

# (edge in kr, F(edge) in kr, rate just below, rate just above) for the 2024 scale (spec § 2 table).
ADULT_EDGES = [
    ("T1", "1075", "0", "0", "0.50"),
    ("T2", "1805", "365", "0.50", "0.75"),
    ("T3", "3915", "1947.50", "0.75", "0.85"),
    ("T4", "21298", "16723.05", "0.85", "1"),
    ("T4c (no adult edge)", "26085", "21510.05", "1", "1"),
]
CHILD_EDGES = [
    ("T1 (no child edge)", "1075", "645", "0.60", "0.60"),
    ("T2", "1805", "1083", "0.60", "0.75"),
    ("T3", "3915", "2665.50", "0.75", "0.85"),
    ("T4 (no child edge)", "21298", "17441.05", "0.85", "0.85"),
    ("T4c", "26085", "21510", "0.85", "1"),
]


def test_scale_2024_is_the_one_under_test() -> None:
    """spec § 2 table, row 2024: T1 1,075, T2 1,805, T3 3,915, T4 21,298, T4c 26,085."""
    assert (SCALE_2024.t1, SCALE_2024.t2, SCALE_2024.t3) == (kr("1075"), kr("1805"), kr("3915"))
    assert (SCALE_2024.t4, SCALE_2024.t4_child) == (kr("21298"), kr("26085"))


@pytest.mark.parametrize(
    ("under18", "name", "edge", "f_edge", "below", "above"),
    [(ADULT, *row) for row in ADULT_EDGES] + [(CHILD, *row) for row in CHILD_EDGES],
    ids=[f"adult-{r[0]}" for r in ADULT_EDGES] + [f"child-{r[0]}" for r in CHILD_EDGES],
)
def test_cumulative_entitlement_at_each_band_edge(
    under18: bool, name: str, edge: str, f_edge: str, below: str, above: str
) -> None:
    """spec § 2 / sundhedsloven § 146.

    F(S) at an edge, 1 øre below (lower rate) and above (upper rate).
    """
    s = kr(edge)
    assert cumulative_entitlement(s, SCALE_2024, under18) == kr(f_edge)
    assert cumulative_entitlement(s - 1, SCALE_2024, under18) == kr(f_edge) - Decimal(below)
    assert cumulative_entitlement(s + 1, SCALE_2024, under18) == kr(f_edge) + Decimal(above)


@pytest.mark.parametrize(
    ("under18", "name", "edge", "f_edge", "below", "above"),
    [(ADULT, *row) for row in ADULT_EDGES] + [(CHILD, *row) for row in CHILD_EDGES],
    ids=[f"adult-{r[0]}" for r in ADULT_EDGES] + [f"child-{r[0]}" for r in CHILD_EDGES],
)
def test_entitlement_of_one_krone_just_below_and_just_above_each_edge(
    under18: bool, name: str, edge: str, f_edge: str, below: str, above: str
) -> None:
    """spec § 2.

    A 1 kr purchase ending at the edge gets the lower rate, one starting at it the upper.
    """
    s = kr(edge)
    assert entitlement(s - 100, 100, SCALE_2024, under18) == round_half_up(100 * Decimal(below))
    assert entitlement(s, 100, SCALE_2024, under18) == round_half_up(100 * Decimal(above))
    assert entitlement(0, s, SCALE_2024, under18) == round_half_up(Decimal(kr(f_edge)))


def test_cumulative_entitlement_of_zero_saldo_is_zero() -> None:
    """spec § 2: F(0) = 0 for adults and children."""
    assert cumulative_entitlement(0, SCALE_2024, ADULT) == 0
    assert cumulative_entitlement(0, SCALE_2024, CHILD) == 0


def test_own_payment_at_t4_is_the_2024_cap() -> None:
    """spec § 2 table, 2024 own-payment cap 4,575 kr.

    T4 − F(T4) within 0.10 kr, T4c − F(T4c) exact.
    """
    adult_own = SCALE_2024.t4 - cumulative_entitlement(SCALE_2024.t4, SCALE_2024, ADULT)
    child_own = SCALE_2024.t4_child - cumulative_entitlement(SCALE_2024.t4_child, SCALE_2024, CHILD)
    assert adult_own == kr("4574.95")
    assert child_own == kr("4575")


@pytest.mark.parametrize(
    ("basis", "expected"),
    [("4000", "2019.75"), ("25000", "20425.05")],
)
def test_purchase_spanning_several_bands_on_empty_saldo(basis: str, expected: str) -> None:
    """spec § 2 "each rate applies to the slice of the saldo inside its band" (adult, 2024)."""
    assert entitlement(0, kr(basis), SCALE_2024, ADULT) == kr(expected)


def test_child_first_purchase_gets_60_percent() -> None:
    """spec § 2, children: 60 % up to T2 — 500 kr on empty saldo in 2024 gives 300 kr."""
    assert entitlement(0, kr("500"), SCALE_2024, CHILD) == kr("300")


def test_purchase_is_the_difference_of_cumulative_entitlements() -> None:
    """spec § 2.

    A purchase on saldo S is entitled to F(S + b) − F(S), so splitting it changes nothing.
    """
    whole = entitlement(kr("1000"), kr("3000"), SCALE_2024, ADULT)
    parts = entitlement(kr("1000"), kr("1000"), SCALE_2024, ADULT) + entitlement(
        kr("2000"), kr("2000"), SCALE_2024, ADULT
    )
    assert whole == parts == kr("2019.75")


def test_rounding_is_half_up_to_the_ore() -> None:
    """spec § 2 DECISION.

    Saldo 5,000 kr, basis 100.10 kr in 2024 is 85.085 kr exact → 85.09 (not 85.08).
    """
    assert entitlement(kr("5000"), kr("100.10"), SCALE_2024, ADULT) == kr("85.09")


def test_return_gives_the_negative_reversal() -> None:
    """spec § 7 DECISION: a return of b on saldo S is F(S − b) − F(S), a negative amount."""
    reversal = entitlement(kr("4000"), -kr("1000"), SCALE_2024, ADULT)
    assert reversal == -kr("758.50")
    exact = cumulative_entitlement(kr("3000"), SCALE_2024, ADULT) - cumulative_entitlement(
        kr("4000"), SCALE_2024, ADULT
    )
    assert reversal == round_half_up(exact)


def test_return_of_a_half_ore_purchase_reverses_it_exactly() -> None:
    """spec § 2/§ 7: half-up rounds away from zero, so a sale and its full return net to zero."""
    sale = entitlement(kr("5000"), kr("100.10"), SCALE_2024, ADULT)
    back = entitlement(kr("5100.10"), -kr("100.10"), SCALE_2024, ADULT)
    assert (sale, back) == (kr("85.09"), -kr("85.09"))


def test_return_below_t1_reverses_nothing() -> None:
    """spec § 7: a return inside the 0 % band reverses no subsidy."""
    assert entitlement(kr("900"), -kr("400"), SCALE_2024, ADULT) == 0


def test_share_of_applies_every_percentage_then_rounds_once() -> None:
    """spec § 5.

    Helbredstillæg is 85 % × the supplement percentage, rounded half-up to the øre once.
    """
    assert share_of(kr("500"), Decimal(85), Decimal(100)) == kr("425")
    assert share_of(kr("500"), Decimal(85), Decimal(50)) == kr("212.50")
    # 3 øre × 85 % × 50 % = 1.275 øre → 1; rounding after each step would give 2.
    assert share_of(3, Decimal(85), Decimal(50)) == 1
    assert share_of(1, Decimal(50)) == 1  # 0.5 øre rounds up
    assert share_of(kr("75"), Decimal(100)) == kr("75")
    assert share_of(kr("75")) == kr("75")


@pytest.mark.parametrize(
    ("text", "ore"),
    [("123.45", 12345), ("0.05", 5), ("-0.05", -5), ("4000", 400000), ("100.1", 10010)],
)
def test_kroner_to_ore_parses_kroner(text: str, ore: int) -> None:
    """spec § 2: money is DKK with øre, computed in integer øre."""
    assert kroner_to_ore(text) == ore


def test_kroner_to_ore_accepts_a_decimal() -> None:
    assert kroner_to_ore(Decimal("85.09")) == 8509


@pytest.mark.parametrize("text", ["0.001", "85.085", "-0.005", "1.999"])
def test_kroner_to_ore_refuses_fractions_of_an_ore(text: str) -> None:
    """spec § 2: never a rounding on input — more than two decimals is an error."""
    with pytest.raises(ValueError, match="fractions of an øre"):
        kroner_to_ore(text)


@pytest.mark.parametrize("text", ["", "abc", "12,50", "1.2.3", "kr 5", "NaN", "sNaN"])
def test_kroner_to_ore_refuses_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        kroner_to_ore(text)


@pytest.mark.parametrize("text", ["Infinity", "-inf"])
def test_kroner_to_ore_refuses_infinity_with_value_error(text: str) -> None:
    """kroner_to_ore's contract: "Raises: ValueError: the text is not a number"."""
    with pytest.raises(ValueError):
        kroner_to_ore(text)


@pytest.mark.parametrize(
    ("ore", "text"),
    [
        (12345, "123.45"),
        (-5, "-0.05"),
        (0, "0.00"),
        (5, "0.05"),
        (-12345, "-123.45"),
        (100, "1.00"),
    ],
)
def test_ore_to_kroner_prints_two_decimals(ore: int, text: str) -> None:
    assert ore_to_kroner(ore) == text
    assert kroner_to_ore(text) == ore


def test_round_half_up_rounds_away_from_zero_at_half() -> None:
    """spec § 2 DECISION: half-up to the øre; a negative half goes away from zero too."""
    assert round_half_up(Decimal("8508.5")) == 8509
    assert round_half_up(Decimal("-8508.5")) == -8509
    assert round_half_up(Decimal("8508.49")) == 8508
