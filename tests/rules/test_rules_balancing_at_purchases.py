"""Unit tests of § 6 balancing at the right purchases (`rules/balancing.py`, `rules/dispensing.py`,
`rules/deferral.py`, `rules/lines.py`; order § 6 and § 7 stk. 3, spec/ctr.md § 5-6).

Each rule is tried at its edge: the day before, the day, the day after. The figures are worked by hand
in each test's docstring on the 2024 adult scale (T1 1,075, T2 1,805, T3 3,915 kr): with a saldo of
4,000 kr every krone of basis is in the 85 % band, and with a saldo of 0 the first 1,075 kr are in the
0 % band. Pure: no I/O is allowed while these run.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone

import pytest

from rules.balancing import settle_at_purchase
from rules.deferral import in_subsidy_year
from rules.dispensing import RulesConfig, apply_dispensing
from rules.lines import line_charges
from rules.money import kroner_to_ore
from rules.outcomes import Applied, AppliedBalance, Parked, PurchaseResult, Refused
from rules.scales import KNOWN_SCALES
from rules.state import Agreement, Balance, Grant, GrantKind, Period, PersonState
from schemas.common import PersonRef
from schemas.dispensing import DispensingLine, DispensingReport

# --- rules_conftest: small builders -------------------------------------------------------------

KEY = "4208000001"
BORN = date(1960, 5, 5)
CPH = timezone(timedelta(hours=1))

P1_START, P1_END = date(2023, 3, 10), date(2024, 3, 9)
"""The previous period in the period tests; the next purchase after P1_END opens a new one."""


def kr(text: str) -> int:
    return kroner_to_ore(text)


def line(price: str, *, drug: str = "GEN-1", reimbursed: bool = True) -> DispensingLine:
    return DispensingLine(
        drug_id=drug,
        reimbursement_price=kr(price),
        actual_price=kr(price),
        generally_reimbursed=reimbursed,
    )


def other(price: str) -> DispensingLine:
    """A line of medicine X: no general subsidy (outside § 144)."""
    return line(price, drug="X", reimbursed=False)


def report(
    report_id: str,
    day: date,
    *lines: DispensingLine,
    granted: str | None = None,
    under_deferral: bool = False,
) -> DispensingReport:
    return DispensingReport(
        report_id=report_id,
        pharmacy_number="12300",
        pharmacy_site_p_number="1003456788",
        dispensing_id=f"d-{report_id}",
        ordination_id="01",
        paid_or_invoiced_at=datetime.combine(day, time(10, 0), tzinfo=CPH),
        person=PersonRef(key=KEY, birth_date=BORN),
        lines=list(lines),
        granted_subsidy=None if granted is None else kr(granted),
        under_deferral=under_deferral,
    )


def apply(state: PersonState, rpt: DispensingReport) -> Applied | Parked | Refused:
    day = rpt.paid_or_invoiced_at.date()
    return apply_dispensing(state, rpt, day, KNOWN_SCALES, RulesConfig())


def bought(state: PersonState, rpt: DispensingReport) -> tuple[PersonState, PurchaseResult]:
    outcome = apply(state, rpt)
    assert isinstance(outcome, Applied), outcome
    assert outcome.purchase is not None
    return outcome.state, outcome.purchase


def balance(amount: str, *, skip_once: bool = False, arose_in: date = date(2024, 1, 5)) -> Balance:
    return Balance("b1", kr(amount), kr(amount), date(2024, 1, 20), arose_in, "agency", skip_once)


def in_2024_period(*balances: Balance, grants: tuple[Grant, ...] = ()) -> PersonState:
    """An adult in the period 5 Jan 2024 - 4 Jan 2025 with a saldo of 4,000 kr (the 85 % band)."""
    period = Period(date(2024, 1, 5), date(2025, 1, 4), kr("4000"), False, None)
    return PersonState(KEY, BORN, period=period, grants=grants, balances=balances)


def in_p1(saldo: str = "4000", **kwargs: object) -> PersonState:
    """An adult whose current period is P1 (10 Mar 2023 - 9 Mar 2024)."""
    period = Period(P1_START, P1_END, kr(saldo), False, None)
    return PersonState(KEY, BORN, period=period, **kwargs)  # type: ignore[arg-type]


def grant(kind: GrantKind, drug: str | None, start: date, end: date) -> Grant:
    return Grant(f"g-{kind}", kind, drug, start, end)


GRANT_FROM, GRANT_TO = date(2024, 3, 1), date(2024, 6, 30)
S145_X = grant("s145_single", "X", GRANT_FROM, GRANT_TO)
"""A § 145 grant making medicine X eligible from 1 March to 30 June 2024."""

DAY = timedelta(days=1)


# --- § 6 stk. 1: balancing only at a purchase of an eligible medicine ------------------------------


@pytest.mark.parametrize(
    ("day", "eligible"),
    [
        (GRANT_FROM - DAY, False),
        (GRANT_FROM, True),
        (GRANT_FROM + DAY, True),
        (GRANT_TO - DAY, True),
        (GRANT_TO, True),
        (GRANT_TO + DAY, False),
    ],
)
def test_a_credit_is_paid_only_at_a_purchase_of_an_eligible_medicine(
    day: date, eligible: bool
) -> None:
    """Order § 6 stk. 1: "i forbindelse med det førstkommende køb af tilskudsberettigede lægemidler".

    50 kr is owed to the person; they buy 500 kr of X, eligible only under the § 145 grant
    (1 Mar - 30 Jun 2024). Saldo 4,000 kr: all in the 85 % band.
    - Grant in force (the first day, the day after, the day before the last, the last):
      entitled 85 % × 500 = 425.00; the 50.00 is paid in full: subsidy 475.00, the person pays
      500 − 475 = 25.00; saldo 4,500; nothing left open.
    - The day before the grant starts and the day after it ends, X is not eligible: no subsidy,
      no balancing (applied 0.00), the person pays 500.00; saldo stays 4,000; 50.00 stays open.
    """
    state, result = bought(
        in_2024_period(balance("50"), grants=(S145_X,)), report("r1", day, other("500"))
    )
    if eligible:
        expected = (kr("425"), kr("50"), kr("475"), kr("25"), kr("4500"), 0)
    else:
        expected = (0, 0, 0, kr("500"), kr("4000"), kr("50"))
    assert (
        result.subsidy_entitled,
        result.balancing_applied,
        result.subsidy,
        result.citizen_pays,
        result.saldo_after,
        result.remaining_balancing,
    ) == expected
    assert state.balances[0].remaining == expected[-1]
    assert len(result.balancing_parts) == (1 if eligible else 0)


@pytest.mark.parametrize(
    ("day", "eligible"),
    [(GRANT_FROM - DAY, False), (GRANT_FROM, True), (GRANT_FROM + DAY, True)],
)
def test_a_debt_is_deducted_only_at_a_purchase_of_an_eligible_medicine(
    day: date, eligible: bool
) -> None:
    """Order § 6 stk. 1-2.

    The person owes 300 kr; they buy 500 kr of X (eligible from 1 Mar 2024 under § 145).
    - From the grant's first day: entitled 85 % × 500 = 425.00 ≥ 300, so all 300.00 is deducted:
      subsidy 125.00, the person pays 375.00, nothing left owed.
    - The day before: X is not eligible; nothing is due and nothing is deducted: subsidy 0.00,
      the person pays 500.00, 300.00 still owed.
    """
    _, result = bought(
        in_2024_period(balance("-300"), grants=(S145_X,)), report("r1", day, other("500"))
    )
    if eligible:
        expected = (kr("425"), -kr("300"), kr("125"), kr("375"), 0)
    else:
        expected = (0, 0, 0, kr("500"), -kr("300"))
    assert (
        result.subsidy_entitled,
        result.balancing_applied,
        result.subsidy,
        result.citizen_pays,
        result.remaining_balancing,
    ) == expected


def test_a_credit_is_not_paid_at_a_purchase_of_only_a_non_reimbursed_medicine() -> None:
    """Order § 6 stk. 1 (the known fault): 50 kr owed to the person, a purchase of 100 kr of X
    without general subsidy or grant: subsidy 0.00, applied 0.00, the person pays 100.00, and the
    50.00 waits for the next purchase of an eligible medicine (on 2 Feb: 100 kr of a generally
    reimbursed medicine, entitled 85.00 + 50.00 = 135.00, the person gets 35.00 back)."""
    state, first = bought(
        in_2024_period(balance("50")), report("r1", date(2024, 2, 1), other("100"))
    )
    assert (first.balancing_applied, first.subsidy, first.citizen_pays) == (0, 0, kr("100"))
    assert (first.remaining_balancing, first.balancing_parts) == (kr("50"), ())
    _, second = bought(state, report("r2", date(2024, 2, 2), line("100")))
    assert (second.balancing_applied, second.subsidy, second.citizen_pays) == (
        kr("50"),
        kr("135"),
        -kr("35"),
    )
    assert second.remaining_balancing == 0


def test_a_purchase_with_one_eligible_line_balances_on_that_line_only() -> None:
    """Order § 6 stk. 1-2: one eligible line makes it a purchase of eligible medicines.

    The person owes 300 kr; they buy 100 kr of a generally reimbursed medicine and 400 kr of X.
    Entitled 85 % × 100 = 85.00 (X adds nothing); the deduction is capped at that 85.00:
    subsidy 0.00, the person pays 500.00, 215.00 still owed. Per line: the whole −85.00 sits on
    the eligible line (subsidy 0.00, pays 100.00); X's line pays 400.00 with no balancing.
    """
    _, result = bought(
        in_2024_period(balance("-300")), report("r1", date(2024, 2, 1), line("100"), other("400"))
    )
    assert (result.subsidy_entitled, result.balancing_applied, result.subsidy) == (
        kr("85"),
        -kr("85"),
        0,
    )
    assert (result.citizen_pays, result.remaining_balancing) == (kr("500"), -kr("215"))
    charges = line_charges(
        [kr("100"), kr("400")],
        list(result.line_basis),
        terminal=False,
        subsidy=result.subsidy,
        balancing_applied=result.balancing_applied,
        health_supplement=0,
        rights_based=0,
    )
    assert [(c.subsidy, c.balancing_applied, c.citizen_pays) for c in charges] == [
        (0, -kr("85"), kr("100")),
        (0, 0, kr("400")),
    ]


# --- § 6 stk. 3: the hardship skip is used up only by an eligible purchase -------------------------


@pytest.mark.parametrize(
    ("day", "uses_skip"),
    [(GRANT_FROM - DAY, False), (GRANT_FROM, True), (GRANT_FROM + DAY, True)],
)
def test_the_hardship_skip_is_used_up_only_by_an_eligible_purchase(
    day: date, uses_skip: bool
) -> None:
    """Order § 6 stk. 3: the deduction is postponed to "det næstfølgende køb af tilskudsberettigede
    lægemidler".

    The person owes 300 kr with the stk. 3 skip; they buy 500 kr of X (eligible from 1 Mar 2024),
    then on 1 July 240 kr of a generally reimbursed medicine (entitled 85 % × 240 = 204.00).
    - X bought from the grant's first day: that purchase uses the skip (entitled 425.00, nothing
      deducted); in July the deduction is capped at 204.00: subsidy 0.00, 96.00 still owed.
    - X bought the day before: it is no eligible purchase and leaves the skip; July's purchase
      uses it: nothing deducted, subsidy 204.00, 300.00 still owed.
    """
    state = in_2024_period(balance("-300", skip_once=True), grants=(S145_X,))
    state, first = bought(state, report("r1", day, other("500")))
    assert first.balancing_applied == 0
    assert first.remaining_balancing == -kr("300")
    assert state.balances[0].skip_once is not uses_skip
    _, july = bought(state, report("r2", date(2024, 7, 1), line("240")))
    if uses_skip:
        assert (july.balancing_applied, july.subsidy, july.remaining_balancing) == (
            -kr("204"),
            0,
            -kr("96"),
        )
    else:
        assert (july.balancing_applied, july.subsidy, july.remaining_balancing) == (
            0,
            kr("204"),
            -kr("300"),
        )


def test_settle_at_purchase_without_an_eligible_line_changes_nothing() -> None:
    """`settle_at_purchase(eligible=False)`: 0.00 applied; the balances, skip included, as they were."""
    open_ = (balance("50"), replace(balance("-300", skip_once=True), balance_id="b2"))
    assert settle_at_purchase(open_, kr("425"), eligible=False) == (0, open_)


# --- § 148 outside § 144/145 takes no part (DECISION) ----------------------------------------------

TERMINAL = grant("s148_terminal", None, GRANT_FROM, GRANT_TO)


@pytest.mark.parametrize("day", [GRANT_FROM - DAY, GRANT_FROM, GRANT_FROM + DAY])
def test_a_terminal_purchase_of_a_non_eligible_medicine_takes_no_part(day: date) -> None:
    """spec § 6 DECISION: a purchase paid 100 % under § 148 of a medicine outside § 144/145 does not
    balance.

    50 kr owed to the person; 500 kr of X. From the § 148 grant's first day X is paid in full
    (subsidy 500.00, the person pays 0.00); the day before it is not paid at all (the person pays
    500.00). Either way 0.00 is applied and 50.00 stays open.
    """
    _, result = bought(
        in_2024_period(balance("50"), grants=(TERMINAL,)), report("r1", day, other("500"))
    )
    paid = kr("500") if day >= GRANT_FROM else 0
    assert (result.subsidy, result.balancing_applied, result.remaining_balancing) == (
        paid,
        0,
        kr("50"),
    )
    assert result.citizen_pays == kr("500") - paid


def test_a_terminal_purchase_deducts_up_to_its_eligible_lines_and_only_on_them() -> None:
    """Order § 6 stk. 2 under § 148: the subsidy due on the eligible medicines caps the deduction.

    The person owes 300 kr; on 1 Mar 2024, under § 148, they buy 100 kr of a generally reimbursed
    medicine and 400 kr of X. Both are paid in full (500.00), but only the eligible line's 100.00 is
    "subsidy on eligible medicines": 100.00 is deducted, subsidy 400.00, the person pays 100.00,
    200.00 still owed. Per line: the eligible line carries the −100.00 (subsidy 0.00, pays 100.00);
    X's line keeps its 400.00.
    """
    _, result = bought(
        in_2024_period(balance("-300"), grants=(TERMINAL,)),
        report("r1", GRANT_FROM, line("100"), other("400")),
    )
    assert (result.subsidy_entitled, result.balancing_applied, result.subsidy) == (
        kr("500"),
        -kr("100"),
        kr("400"),
    )
    assert (result.citizen_pays, result.remaining_balancing) == (kr("100"), -kr("200"))
    charges = line_charges(
        [kr("100"), kr("400")],
        list(result.line_basis),
        terminal=True,
        subsidy=result.subsidy,
        balancing_applied=result.balancing_applied,
        health_supplement=0,
        rights_based=0,
    )
    assert [(c.subsidy, c.balancing_applied, c.citizen_pays) for c in charges] == [
        (0, -kr("100"), kr("100")),
        (kr("400"), 0, 0),
    ]


# --- § 7 stk. 3: an amount keeps the period where it arose, also the previous one ------------------


@pytest.mark.parametrize("day", [P1_END, P1_END + DAY, P1_END + 2 * DAY])
def test_an_amount_keeps_the_period_where_it_arose_when_applied(day: date) -> None:
    """Order § 7 stk. 3: balancing is reported to the period (previous or current) where it arose.

    50 kr owed to the person arose in P1 (from 10 Mar 2023, ends 9 Mar 2024, saldo 4,000 kr); they
    buy 500 kr of a generally reimbursed medicine.
    - On P1's last day: entitled 85 % × 500 = 425.00, + 50.00: subsidy 475.00.
    - The day after, or the day after that: the purchase opens a new period (saldo 0, 500 kr in the
      0 % band): entitled 0.00, + 50.00: subsidy 50.00.
    Every time the 50.00 applied is booked to P1 (period start 10 Mar 2023), not the new period.
    """
    state, result = bought(
        in_p1(balances=(balance("50", arose_in=P1_START),)), report("r1", day, line("500"))
    )
    entitled = kr("425") if day <= P1_END else 0
    assert (result.subsidy_entitled, result.balancing_applied, result.subsidy) == (
        entitled,
        kr("50"),
        entitled + kr("50"),
    )
    assert result.period is not None
    assert result.period.start == (P1_START if day <= P1_END else day)
    assert result.balancing_parts == (
        AppliedBalance(kr("50"), P1_START, date(2024, 1, 20), "agency"),
    )
    assert state.balances[0].arose_in_period == P1_START


@pytest.mark.parametrize("day", [P1_END - DAY, P1_END, P1_END + DAY])
def test_a_deviation_arises_in_the_period_of_its_purchase(day: date) -> None:
    """Order § 6 stk. 1 and § 7 stk. 3: a difference between the subsidy granted and the subsidy due
    arises in the period of the purchase it was granted at.

    The pharmacy grants 500.00 on 500 kr of a generally reimbursed medicine.
    - In P1 (the day before its end, and its last day; saldo 4,000 kr): due 425.00, deviation 75.00,
      a debt of 75.00 arising in P1 (10 Mar 2023).
    - The day after: a new period opens (saldo 0, the 0 % band): due 0.00, deviation 500.00, a debt
      of 500.00 arising in the new period (10 Mar 2024).
    """
    state, result = bought(in_p1(), report("r1", day, line("500"), granted="500"))
    in_previous = day <= P1_END
    debt = kr("75") if in_previous else kr("500")
    assert result.deviation == debt
    (arisen,) = state.balances
    assert (arisen.remaining, arisen.arose_on) == (-debt, day)
    assert arisen.arose_in_period == (P1_START if in_previous else P1_END + DAY)


# --- henstand: an agreement belongs to its subsidy year ---------------------------------------------


def agreement(entered_on: date) -> Agreement:
    return Agreement("a1", "12300", entered_on, kr("381.25"), 12)


@pytest.mark.parametrize(
    ("day", "deferred"),
    [(P1_END - DAY, True), (P1_END, True), (P1_END + DAY, False)],
)
def test_a_purchase_in_the_next_period_is_not_deferred_into_the_agreement(
    day: date, deferred: bool
) -> None:
    """spec § 5 henstand: the agreement spreads one subsidy year's own payment.

    The agreement was entered on 1 June 2023, inside P1 (10 Mar 2023 - 9 Mar 2024, saldo 4,000 kr).
    100 kr of a generally reimbursed medicine under deferral:
    - the day before P1 ends and on its last day: entitled 85.00, own payment 15.00 deferred, 0.00
      at the counter, the agreement's total 15.00;
    - the day after, the purchase falls in the next period: it is not deferred into P1's agreement
      (refused as `rule.no_deferral_agreement`, as without an agreement in force).
    """
    state = in_p1(agreements=(agreement(date(2023, 6, 1)),))
    outcome = apply(state, report("r1", day, line("100"), under_deferral=True))
    if not deferred:
        assert isinstance(outcome, Refused)
        assert outcome.reason.startswith("rule.no_deferral_agreement")
        assert "another subsidy year" in outcome.reason
        return
    assert isinstance(outcome, Applied) and outcome.purchase is not None
    result = outcome.purchase
    assert (result.subsidy, result.deferred_to_agreement, result.citizen_pays_at_counter) == (
        kr("85"),
        kr("15"),
        0,
    )
    assert (result.agreement_id, outcome.state.agreements[0].deferred_total) == ("a1", kr("15"))


@pytest.mark.parametrize(
    ("entered_on", "deferred"),
    [(P1_END - DAY, False), (P1_END, False), (P1_END + DAY, True)],
)
def test_an_agreement_entered_after_the_period_ended_belongs_to_the_next(
    entered_on: date, deferred: bool
) -> None:
    """spec § 5 henstand: an agreement belongs to the first period that ends on or after its entry.

    P1 ends 9 Mar 2024. On 10 Mar 2024 the person buys 1,000 kr of a generally reimbursed medicine
    under deferral; the purchase opens a new period (saldo 0, all in the 0 % band: entitled 0.00).
    - Agreement entered the day before P1's end or on its last day: it is P1's, so the purchase is
      not deferred into it (refused).
    - Entered the day after (in the gap, the day of the purchase): it is the new period's; the own
      payment 1,000.00 is deferred, 0.00 at the counter.
    """
    state = in_p1(agreements=(agreement(entered_on),))
    outcome = apply(state, report("r1", P1_END + DAY, line("1000"), under_deferral=True))
    if not deferred:
        assert isinstance(outcome, Refused)
        assert outcome.reason.startswith("rule.no_deferral_agreement")
        return
    assert isinstance(outcome, Applied) and outcome.purchase is not None
    result = outcome.purchase
    assert (result.subsidy, result.deferred_to_agreement, result.citizen_pays_at_counter) == (
        0,
        kr("1000"),
        0,
    )
    assert result.period is not None and result.period.start == P1_END + DAY


def test_in_subsidy_year_by_the_period_and_its_predecessor() -> None:
    """`in_subsidy_year`: entered after the previous period's end and by the period's own end.

    P2 runs 20 Mar 2024 - 19 Mar 2025 after P1 (ended 9 Mar 2024). An agreement entered 9 Mar 2024
    is P1's; 10 Mar (in the gap) and 19 Mar 2025 (P2's last day) are P2's; 20 Mar 2025 is not.
    With no period for the purchase (a gap), an agreement entered after the current period's end
    waits for the next one.
    """
    p1 = Period(P1_START, P1_END, 0, False, None)
    p2 = Period(date(2024, 3, 20), date(2025, 3, 19), 0, False, P1_END)
    assert not in_subsidy_year(agreement(P1_END), p2, p2)
    assert in_subsidy_year(agreement(P1_END + DAY), p2, p2)
    assert in_subsidy_year(agreement(date(2025, 3, 19)), p2, p2)
    assert not in_subsidy_year(agreement(date(2025, 3, 20)), p2, p2)
    assert in_subsidy_year(agreement(P1_END), p1, p1)
    assert not in_subsidy_year(agreement(P1_END), None, p1)
    assert in_subsidy_year(agreement(P1_END + DAY), None, p1)
    assert in_subsidy_year(agreement(P1_END), None, None)
