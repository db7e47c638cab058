"""Unit tests of returns reversed with the sale's terms (spec § 7 DECISION), worked by hand.

Scales (adult): 3 April – 31 December 2023 T1 1,045, T2 1,750, T3 3,795, T4 11,570; 2024 T1 1,075,
T2 1,805, T3 3,915, T4 21,298. Rates 0 / 50 / 75 / 85 / 100 %.
"""

from __future__ import annotations

from datetime import date

from rules.dispensing import RulesConfig, apply_dispensing
from rules.outcomes import Applied, PurchaseRecord, PurchaseResult
from rules.scales import KNOWN_SCALES
from rules.state import PersonState
from tests.rules.test_rules_dispensing import bought, in_period, kr, line, record_of, report


def returned(
    state: PersonState, rpt_day: date, amount: str, sale: PurchaseRecord, *earlier: PurchaseRecord
) -> tuple[PersonState, PurchaseResult]:
    rpt = report(f"ret-{rpt_day}", rpt_day, line(amount), kind="return", return_of=sale.report_id)
    outcome = apply_dispensing(
        state, rpt, rpt_day, KNOWN_SCALES, RulesConfig(), sale, earlier_returns=earlier
    )
    assert isinstance(outcome, Applied) and outcome.purchase is not None, outcome
    return outcome.state, outcome.purchase


def test_a_return_after_1_january_is_reversed_on_the_scale_of_the_sale() -> None:
    """The period began 1 June 2023; the saldo is 12,000, above 2023's T4 (11,570). A 500 kr sale on
    10 December 2023 is free: 500.00 subsidy, the person pays 0. Returned on 10 January 2024, under
    2024's scale the saldo 12,500 would lie in the 85 % band (T4 21,298) and reverse only 425.00,
    paying the person 75.00 for a medicine they got free. On the sale's scale: F(12,000) − F(12,500) =
    −500.00, and the person gets 0 back."""
    state = in_period(date(2023, 6, 1), "12000")
    state, sale = bought(state, report("s", date(2023, 12, 10), line("500")))
    assert (sale.subsidy, sale.citizen_pays) == (kr("500"), 0)
    state, back = returned(state, date(2024, 1, 10), "-500", record_of(sale))
    assert (back.subsidy, back.citizen_pays) == (-kr("500"), 0)
    assert state.period is not None and state.period.saldo == kr("12000")


def test_a_return_takes_back_no_more_subsidy_than_the_sale_got() -> None:
    """Saldo 1,075 (T1): a 400 kr sale gets 400 × 50 % = 200.00, the person pays 200.00. A 3,000 kr
    purchase lifts the saldo to 4,475. Returning the 400: F(4,075) − F(4,475) = −400 × 85 % = −340.00,
    more than the 200.00 granted: 200.00 is taken back and the person gets the 200.00 they paid."""
    state = in_period(date(2024, 3, 1), "1075")
    state, sale = bought(state, report("s", date(2024, 3, 2), line("400")))
    assert (sale.subsidy, sale.citizen_pays) == (kr("200"), kr("200"))
    state, _ = bought(state, report("t", date(2024, 3, 3), line("3000")))
    state, back = returned(state, date(2024, 3, 4), "-400", record_of(sale))
    assert (back.subsidy, back.citizen_pays) == (-kr("200"), -kr("200"))


def test_two_partial_returns_together_never_exceed_what_the_sale_got_or_cost() -> None:
    """As above, returned in two halves. First 200: F(4,275) − F(4,475) = −170.00 (under 200.00), the
    person gets 30.00. Second 200: F(4,075) − F(4,275) = −170.00, but only 200.00 − 170.00 = 30.00 of
    subsidy is left to take back, so the person gets 170.00. Together: 200.00 back to the register,
    200.00 to the person — what the sale got and what it cost."""
    state = in_period(date(2024, 3, 1), "1075")
    state, sale = bought(state, report("s", date(2024, 3, 2), line("400")))
    state, _ = bought(state, report("t", date(2024, 3, 3), line("3000")))
    original = record_of(sale)
    state, first = returned(state, date(2024, 3, 4), "-200", original)
    assert (first.subsidy, first.citizen_pays) == (-kr("170"), -kr("30"))
    earlier = PurchaseRecord(
        first.report_id, first.day, None, first.basis, first.subsidy_entitled, False,
        return_of="s", paid=first.citizen_pays,
    )  # fmt: skip
    original = PurchaseRecord(
        original.report_id, original.day, original.period_start, original.basis,
        original.entitled, False, returned_basis=kr("200"), actual=original.actual,
        paid=original.paid,
    )  # fmt: skip
    state, second = returned(state, date(2024, 3, 5), "-200", original, earlier)
    assert (second.subsidy, second.citizen_pays) == (-kr("30"), -kr("170"))
