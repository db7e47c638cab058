"""Unit tests of `rules/lines.py`: a purchase's figures per line, as a pharmacy charges them.

The subsidy of sundhedsloven § 146 is computed on the whole report, F(S + b) − F(S) rounded once
(spec/ctr.md § 2); the helbredstillæg on the whole own payment (§ 5); balancing at the purchase (order
§ 6). Apportioned over the lines by the largest-remainder rule, the lines add up to those totals exactly.
Pure: no I/O is allowed while these run.
"""

from __future__ import annotations

from datetime import date

from rules.lines import LineCharge, apportion, line_charges
from rules.outcomes import PurchaseResult
from rules.state import Balance
from tests.rules.test_rules_dispensing import (
    bought,
    grant,
    in_period,
    line,
    person,
    report,
    supplement,
)

START = date(2024, 1, 10)


def charges_of(result: PurchaseResult, actual: list[int]) -> list[LineCharge]:
    return line_charges(
        actual,
        list(result.line_basis),
        terminal=result.terminal,
        subsidy=result.subsidy,
        balancing_applied=result.balancing_applied,
        health_supplement=result.health_supplement,
        rights_based=result.rights_based,
    )


def assert_adds_up(charges: list[LineCharge], result: PurchaseResult) -> None:
    assert sum(c.subsidy for c in charges) == result.subsidy
    assert sum(c.balancing_applied for c in charges) == result.balancing_applied
    assert sum(c.health_supplement for c in charges) == result.health_supplement
    assert sum(c.rights_based for c in charges) == result.rights_based
    assert sum(c.citizen_pays for c in charges) == result.citizen_pays


# --- apportion: the largest-remainder rule ---------------------------------------------------------


def test_apportion_one_line_takes_the_total_as_it_is() -> None:
    assert apportion(12_345, [0]) == [12_345]
    assert apportion(-7, [100]) == [-7]


def test_apportion_gives_the_missing_oere_to_the_largest_remainders() -> None:
    # 10 over 1:1:1 is 3.33 each: the one øre left goes to the first line (equal remainders)
    assert apportion(10, [1, 1, 1]) == [4, 3, 3]
    # 102 over 101:102 is 50.75 and 51.25: 50 + 51, and the øre left to the larger remainder (.75)
    assert apportion(102, [101, 102]) == [51, 51]
    # negative totals (a return, a deduction) the same way, by magnitude
    assert apportion(-10, [1, 1, 1]) == [-4, -3, -3]
    assert apportion(-10, [-1, -1, -1]) == [-4, -3, -3]


def test_apportion_never_gives_a_line_of_weight_zero_anything_unless_all_are_zero() -> None:
    assert apportion(5, [0, 3, 0, 3]) == [0, 3, 0, 2]
    assert apportion(5, [0, 0]) == [5, 0]
    assert apportion(0, [4, 5]) == [0, 0]


# --- line_charges, from the rules' own results ----------------------------------------------------


def test_a_one_line_report_carries_the_totals() -> None:
    """Spec § 2: 4,000 kr on an empty 2024 saldo is due 2,019.75 kr; the one line is the purchase."""
    _, result = bought(person(), report("r1", date(2024, 4, 2), line("4000", drug="028100")))
    (only,) = charges_of(result, [400_000])
    assert only == LineCharge(400_000, 201_975, 0, 0, 0, 198_025)
    assert result.line_basis == (400_000,)


def test_two_lines_share_a_subsidy_computed_on_their_sum_and_its_rounding() -> None:
    """Spec § 2: two lines of 1.01 kr in the 50 % band (saldo at T1 = 1,075 kr in 2024): the subsidy is
    F(S + 2.02) − F(S) = 1.01 kr on the sum, 50.5 øre a line; the øre left goes to the first line."""
    state = in_period(START, "1075")
    two = report("r2", date(2024, 2, 1), line("1.01", drug="A"), line("1.01", drug="B"))
    _, result = bought(state, two)
    assert (result.subsidy, result.citizen_pays) == (101, 101)
    charges = charges_of(result, [101, 101])
    assert [(c.subsidy, c.citizen_pays) for c in charges] == [(51, 50), (50, 51)]
    assert_adds_up(charges, result)


def test_a_line_without_general_subsidy_gets_nothing_and_its_person_pays_it_all() -> None:
    """Spec §§ 2 and 5: 100 kr eligible in the 50 % band and 50 kr without general subsidy, with a 100 %
    helbredstillæg: 50 kr subsidy and 42.50 kr helbredstillæg (85 % of the 50 kr own payment) both go
    to the first line; the second line's 50 kr is the person's."""
    state = in_period(START, "1075", supplements=(supplement("health_supplement", "100"),))
    mixed = report(
        "r3",
        date(2024, 2, 1),
        line("100", drug="GEN-1"),
        line("50", drug="OTC-1", reimbursed=False),
    )
    _, result = bought(state, mixed)
    assert result.line_basis == (10_000, 0)
    charges = charges_of(result, [10_000, 5_000])
    assert charges == [
        LineCharge(10_000, 5_000, 0, 4_250, 0, 750),
        LineCharge(5_000, 0, 0, 0, 0, 5_000),
    ]
    assert_adds_up(charges, result)
    assert result.health_supplement_by is not None
    assert (result.health_supplement_by.municipality_code, result.rights_based_by) == (101, None)


def test_a_deduction_is_shared_by_the_lines_subsidy_and_keeps_its_period() -> None:
    """Order § 6 stk. 2 and § 7 stk. 3: 30 kr owed is deducted from the 225 kr due on 300 kr + 150 kr in
    the 50 % band (150 kr + 75 kr): 20 kr from the first line and 10 kr from the second, in proportion
    to their subsidy; the amount keeps the period it arose in."""
    debt = Balance("b-1", -3_000, -3_000, date(2024, 1, 15), START, "registered by agency")
    state = in_period(START, "1075", balances=(debt,))
    two = report("r4", date(2024, 2, 1), line("300", drug="A"), line("150", drug="B"))
    _, result = bought(state, two)
    assert (result.subsidy_entitled, result.balancing_applied) == (22_500, -3_000)
    charges = charges_of(result, [30_000, 15_000])
    assert [(c.subsidy, c.balancing_applied) for c in charges] == [
        (13_000, -2_000),
        (6_500, -1_000),
    ]
    assert_adds_up(charges, result)
    (part,) = result.balancing_parts
    assert (part.amount, part.period_start, part.origin) == (-3_000, START, "registered by agency")


def test_a_payout_at_a_purchase_with_no_subsidy_due_falls_on_the_bases() -> None:
    """Order § 6 stk. 1: 50 kr owed to the person is paid in full at a purchase in the 0 % band; with no
    line's subsidy to follow, it is shared over the lines' bases (2:1)."""
    credit = Balance("b-2", 5_000, 5_000, date(2024, 1, 15), START, "registered by agency")
    state = in_period(START, "0", balances=(credit,))
    two = report("r5", date(2024, 2, 1), line("200", drug="A"), line("100", drug="B"))
    _, result = bought(state, two)
    assert (result.subsidy_entitled, result.balancing_applied) == (0, 5_000)
    charges = charges_of(result, [20_000, 10_000])
    assert [c.balancing_applied for c in charges] == [3_333, 1_667]
    assert [c.citizen_pays for c in charges] == [16_667, 8_333]
    assert_adds_up(charges, result)


def test_a_terminal_grant_pays_each_line_its_actual_price() -> None:
    """Sundhedsloven § 148 (spec § 4): 100 % of the actual price of every line, with or without subsidy."""
    state = person(grants=(grant("s148_terminal", None, date(2024, 1, 1), date(2024, 12, 31)),))
    two = report(
        "r6", date(2024, 2, 1), line("100", "120", drug="A"), line("0", "80", reimbursed=False)
    )
    _, result = bought(state, two)
    charges = charges_of(result, [12_000, 8_000])
    assert [(c.subsidy, c.citizen_pays) for c in charges] == [(12_000, 0), (8_000, 0)]
    assert_adds_up(charges, result)
