"""Unit tests of `rules/dispensing.apply_dispensing`: one dispensing report applied to a person.

Each test names what it checks: the order (BEK 764/2025) § 3, § 6, § 7, sundhedsloven §§ 145-151
via spec/ctr.md §§ 2-7. Person keys are fictitious substitute ids with a birth date.
Pure: no I/O is allowed while these run.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest

from rules.dispensing import RulesConfig, apply_dispensing, is_late
from rules.money import kroner_to_ore
from rules.outcomes import Applied, Parked, PurchaseRecord, PurchaseResult, Refused
from rules.scales import KNOWN_SCALES
from rules.state import Agreement, Balance, Grant, GrantKind, Period, PersonState, Supplement
from schemas.common import PersonRef
from schemas.dispensing import DispensingLine, DispensingReport

# --- rules_conftest: small builders -------------------------------------------------------------

KEY = "4208000001"
ADULT_BORN = date(1960, 5, 5)
CPH = timezone(timedelta(hours=1))


def kr(text: str) -> int:
    return kroner_to_ore(text)


def person(born: date = ADULT_BORN, **kwargs: object) -> PersonState:
    return PersonState(key=KEY, birth_date=born, **kwargs)  # type: ignore[arg-type]


def line(
    reimbursement: str, actual: str | None = None, *, drug: str = "GEN-1", reimbursed: bool = True
) -> DispensingLine:
    return DispensingLine(
        drug_id=drug,
        reimbursement_price=kr(reimbursement),
        actual_price=kr(reimbursement if actual is None else actual),
        generally_reimbursed=reimbursed,
    )


def report(
    report_id: str,
    day: date,
    *lines: DispensingLine,
    kind: str = "sale",
    return_of: str | None = None,
    granted: str | None = None,
    under_deferral: bool = False,
    born: date = ADULT_BORN,
) -> DispensingReport:
    return DispensingReport(
        report_id=report_id,
        kind=kind,  # type: ignore[arg-type]
        return_of=return_of,
        pharmacy_number="12300",
        pharmacy_site_p_number="1003456788",
        dispensing_id=f"d-{report_id}",
        ordination_id="01",
        paid_or_invoiced_at=datetime.combine(day, time(10, 0), tzinfo=CPH),
        person=PersonRef(key=KEY, birth_date=born),
        lines=list(lines) or [line("100")],
        granted_subsidy=None if granted is None else kr(granted),
        under_deferral=under_deferral,
    )


def apply(
    state: PersonState,
    rpt: DispensingReport,
    *,
    original: PurchaseRecord | None = None,
    config: RulesConfig | None = None,
) -> Applied | Parked | Refused:
    day = rpt.paid_or_invoiced_at.date()
    return apply_dispensing(state, rpt, day, KNOWN_SCALES, config or RulesConfig(), original)


def bought(
    state: PersonState, rpt: DispensingReport, **kwargs: object
) -> tuple[PersonState, PurchaseResult]:
    outcome = apply(state, rpt, **kwargs)  # type: ignore[arg-type]
    assert isinstance(outcome, Applied), outcome
    assert outcome.purchase is not None
    return outcome.state, outcome.purchase


def grant(kind: GrantKind, drug: str | None, start: date, end: date) -> Grant:
    return Grant(f"g-{kind}", kind, drug, start, end)


def supplement(kind: str, pct: str | None, start: date = date(2024, 1, 1)) -> Supplement:
    return Supplement(
        f"m-{kind}",
        kind,
        101,
        None if pct is None else Decimal(pct),
        start,
        None,  # type: ignore[arg-type]
    )


def in_period(start: date, saldo: str, end: date | None = None, **kwargs: object) -> PersonState:
    """An adult whose current period began on `start` with the given saldo."""
    end = end or start.replace(year=start.year + 1) - timedelta(days=1)
    return person(period=Period(start, end, kr(saldo), False, None), **kwargs)  # type: ignore[arg-type]


def record_of(result: PurchaseResult) -> PurchaseRecord:
    period_start = result.period.start if result.period is not None else None
    return PurchaseRecord(
        result.report_id,
        result.day,
        period_start,
        result.basis,
        result.subsidy_entitled,
        result.terminal,
        actual=result.citizen_pays
        + result.subsidy
        + result.health_supplement
        + result.rights_based,
        paid=result.citizen_pays + result.balancing_applied,
    )


# --- order § 3 stk. 1 nr. 6-9: the period and the saldo ------------------------------------------


def test_first_purchase_opens_a_period_with_start_end_and_under18() -> None:
    """Order § 3 stk. 1 nr. 6-9; spec § 3: the first subsidised purchase starts the period."""
    state, result = bought(person(), report("r1", date(2024, 1, 5), line("4000")))
    assert state.period == Period(date(2024, 1, 5), date(2025, 1, 4), kr("4000"), False, None)
    assert result.period == state.period
    assert (result.saldo_before, result.saldo_after) == (0, kr("4000"))
    assert (result.subsidy_entitled, result.subsidy) == (kr("2019.75"), kr("2019.75"))
    assert result.citizen_pays == kr("1980.25")
    assert result.subsidised is True


def test_child_first_purchase_is_flagged_under18() -> None:
    """Order § 3 stk. 1 nr. 6; spec § 2 children: 60 % up to T2 (500 kr in 2024 → 300 kr)."""
    state, result = bought(
        person(date(2010, 1, 1)), report("r1", date(2024, 3, 1), line("500"), born=date(2010, 1, 1))
    )
    assert state.period is not None and state.period.under18 is True
    assert result.subsidy == kr("300")


def test_under18_flag_is_fixed_at_the_period_start() -> None:
    """Order § 3 stk. 1 nr. 6; spec § 3.

    Turning 18 mid-period changes nothing until the next period.
    """
    born = date(2006, 3, 1)
    state, first = bought(person(born), report("r1", date(2024, 2, 29), line("500"), born=born))
    state, later = bought(state, report("r2", date(2024, 6, 3), line("500"), born=born))
    assert first.period is not None and first.period.under18 is True
    assert later.period is not None and later.period.under18 is True
    assert later.subsidy == kr("300")  # child 60 %, not the adult 0 % band


def test_purchase_on_the_18th_birthday_opens_an_adult_period() -> None:
    """Order § 3 stk. 1 nr. 6.

    Under 18 "ved periodens begyndelse" — 18 on the start date is adult.
    """
    born = date(2006, 3, 1)
    state, result = bought(person(born), report("r1", date(2024, 3, 1), line("500"), born=born))
    assert state.period is not None and state.period.under18 is False
    assert result.subsidy == 0


def test_last_day_stays_in_the_period_and_the_next_day_opens_a_new_one() -> None:
    """Order § 3 stk. 1 nr. 7; spec § 3.

    A new period starts with saldo 0 and the previous end recorded.
    """
    state = in_period(date(2022, 3, 1), "4000", end=date(2023, 2, 28))
    state, last_day = bought(state, report("r1", date(2023, 2, 28), line("100")))
    assert last_day.subsidy == kr("85")
    assert last_day.period is not None and last_day.period.start == date(2022, 3, 1)
    assert last_day.saldo_after == kr("4100")
    state, next_day = bought(state, report("r2", date(2023, 3, 1), line("100")))
    assert state.period == Period(
        date(2023, 3, 1), date(2024, 2, 29), kr("100"), False, date(2023, 2, 28)
    )
    assert next_day.saldo_before == 0
    assert next_day.subsidy == 0  # below T1 again


def test_a_sale_dated_before_the_current_period_is_late_and_must_be_placed_first() -> None:
    """Spec § 7: a late report is placed by its payment date (`rules.history`), never applied to the
    current saldo as if it were new, and never refused for being late."""
    state = in_period(date(2024, 3, 1), "100")
    early = report("r1", date(2024, 2, 29), line("100"))
    assert is_late(state, early, date(2024, 2, 29))
    assert not is_late(state, report("r2", date(2024, 3, 1), line("100")), date(2024, 3, 1))
    with pytest.raises(ValueError, match="late"):
        apply(state, early)


def test_a_sale_paid_before_the_latest_payment_of_its_period_is_late() -> None:
    """The day before, the same moment and a minute after the latest payment of the period."""
    latest = datetime(2024, 5, 1, 12, 0, tzinfo=CPH)
    state = in_period(date(2024, 3, 1), "100")
    assert state.period is not None
    state = replace(state, period=replace(state.period, last_paid_at=latest))

    def at(moment: datetime) -> bool:
        rpt = report("r", moment.date(), line("100")).model_copy(
            update={"paid_or_invoiced_at": moment}
        )
        return is_late(state, rpt, moment.date())

    assert at(latest - timedelta(days=1))
    assert not at(latest)
    assert not at(latest + timedelta(minutes=1))


# --- spec § 2 "Which scale": 3 April 2023 and 1 January ---------------------------------------


def test_inflation_aid_switch_3_april_2023_without_retroactive_recompute() -> None:
    """spec § 2 "Which scale".

    The scale on the purchase's date; earlier purchases never recomputed.
    """
    state, first = bought(person(), report("r1", date(2023, 1, 5), line("12000")))
    state, before = bought(state, report("r2", date(2023, 3, 31), line("500")))
    state, after = bought(state, report("r3", date(2023, 4, 3), line("500")))
    assert first.subsidy == kr("8860.50")
    assert before.subsidy == kr("425.00")
    assert after.subsidy == kr("500.00")
    assert state.period is not None and state.period.start == date(2023, 1, 5)
    assert state.period.saldo == kr("13000")


def test_1_january_indexation_applies_the_new_scale_to_the_running_saldo() -> None:
    """spec § 2.

    On 1 January a running saldo may fall back into a lower band (2021 T1 1,010; 2022 1,020).
    """
    state, autumn = bought(person(), report("r1", date(2021, 11, 1), line("1015")))
    state, january = bought(state, report("r2", date(2022, 1, 10), line("100")))
    assert autumn.subsidy == kr("2.50")
    assert january.subsidy == kr("47.50")
    assert january.period is not None and january.period.start == date(2021, 11, 1)
    assert january.saldo_after == kr("1115")


def test_purchase_without_a_scale_is_parked() -> None:
    """spec § 2.

    "A purchase whose date has no scale is not guessed: it is parked with a clear reason".
    """
    state = person()
    outcome = apply(state, report("r1", date(2025, 1, 2), line("100")))
    assert isinstance(outcome, Parked)
    assert outcome.reason.startswith("rule.unknown_scale")
    assert "2025-01-02" in outcome.reason
    assert KEY not in outcome.reason
    assert outcome.day == date(2025, 1, 2)


def test_non_subsidised_purchase_needs_no_scale() -> None:
    """spec § 2: only subsidised purchases use the scale; a non-reimbursed drug is not parked."""
    state, result = bought(person(), report("r1", date(2025, 1, 2), line("100", reimbursed=False)))
    assert result.subsidised is False
    assert (result.subsidy, result.citizen_pays, result.basis) == (0, kr("100"), 0)
    assert state.period is None


# --- spec § 2 "Basis" and the individual grants of spec § 4 (order § 3 stk. 2 nr. 1) --------------


def test_price_above_the_reimbursement_price_is_paid_in_full_by_the_citizen() -> None:
    """spec § 2 "Basis".

    The reimbursement price capped by the actual price; the rest is paid in full.
    """
    state, result = bought(
        in_period(date(2024, 1, 5), "4000"), report("r1", date(2024, 2, 1), line("200", "260"))
    )
    assert result.basis == kr("200")
    assert result.subsidy == kr("170")
    assert result.citizen_pays == kr("90")
    assert state.period is not None and state.period.saldo == kr("4200")


def test_actual_price_below_the_reimbursement_price_caps_the_basis() -> None:
    """spec § 2 "Basis": capped by the actual price."""
    state, result = bought(
        in_period(date(2024, 1, 5), "4000"), report("r1", date(2024, 2, 1), line("200", "150"))
    )
    assert result.basis == kr("150")
    assert result.subsidy == kr("127.50")
    assert state.period is not None and state.period.saldo == kr("4150")


def test_s151_increased_subsidy_is_on_the_actual_price() -> None:
    """spec § 2/§ 4, sundhedsloven § 151 (DECISION): basis = actual price; the saldo grows by it."""
    g = grant("s151_increased", "X", date(2024, 1, 1), date(2025, 12, 31))
    state, first = bought(person(grants=(g,)), report("r1", date(2024, 2, 1), line("2000")))
    state, second = bought(state, report("r2", date(2024, 2, 20), line("200", "260", drug="X")))
    assert first.subsidy == kr("511.25")
    assert second.basis == kr("260")
    assert second.subsidy == kr("195.00")
    assert second.citizen_pays == kr("65.00")
    assert state.period is not None and state.period.saldo == kr("2260")


def test_s151_grant_for_another_drug_does_not_apply() -> None:
    g = grant("s151_increased", "X", date(2024, 1, 1), date(2025, 12, 31))
    state = in_period(date(2024, 1, 5), "2000", grants=(g,))
    _, result = bought(state, report("r1", date(2024, 2, 20), line("200", "260", drug="Y")))
    assert result.basis == kr("200")
    assert result.subsidy == kr("150")


def test_s148_terminal_grant_covers_non_reimbursed_drug_without_a_period() -> None:
    """spec § 4, sundhedsloven § 148 (DECISION): 100 % of the actual price; no saldo, no period."""
    g = grant("s148_terminal", None, date(2024, 2, 1), date(2025, 1, 31))
    state, result = bought(
        person(grants=(g,)),
        report("r1", date(2024, 2, 10), line("350", reimbursed=False, drug="N")),
    )
    assert result.terminal is True
    assert (result.subsidy_entitled, result.subsidy, result.citizen_pays) == (
        kr("350"),
        kr("350"),
        0,
    )
    assert result.saldo_after == 0
    assert result.period is None and state.period is None


def test_s148_terminal_grant_on_a_reimbursed_drug_still_counts_in_the_saldo() -> None:
    """spec § 4 (DECISION).

    A subsidised medicine adds its reimbursement price; subsidy is the actual.
    """
    g = grant("s148_terminal", None, date(2024, 2, 1), date(2025, 1, 31))
    state, _ = bought(
        person(grants=(g,)), report("r1", date(2024, 2, 10), line("350", reimbursed=False))
    )
    state, result = bought(state, report("r2", date(2024, 2, 12), line("200", "230")))
    assert (result.subsidy, result.citizen_pays) == (kr("230"), 0)
    assert result.saldo_after == kr("200")
    assert state.period == Period(date(2024, 2, 12), date(2025, 2, 11), kr("200"), False, None)


def test_s148_terminal_grant_outside_its_validity_does_nothing() -> None:
    g = grant("s148_terminal", None, date(2024, 2, 1), date(2025, 1, 31))
    _, result = bought(
        person(grants=(g,)), report("r1", date(2024, 1, 31), line("350", reimbursed=False))
    )
    assert (result.terminal, result.subsidy, result.citizen_pays) == (False, 0, kr("350"))


def test_s145_single_grant_makes_a_non_reimbursed_drug_count() -> None:
    """spec § 4, sundhedsloven § 145.

    The named medicine is subsidised, counts in the saldo, normal scale.
    """
    without = in_period(date(2024, 1, 5), "4000")
    _, plain = bought(
        without, report("r1", date(2024, 2, 1), line("100", reimbursed=False, drug="S"))
    )
    assert (plain.subsidised, plain.subsidy, plain.saldo_after) == (False, 0, kr("4000"))

    g = grant("s145_single", "S", date(2024, 1, 1), date(2024, 12, 31))
    state, granted = bought(
        replace(without, grants=(g,)),
        report("r1", date(2024, 2, 1), line("100", reimbursed=False, drug="S")),
    )
    assert granted.subsidised is True
    assert granted.subsidy == kr("85")
    assert state.period is not None and state.period.saldo == kr("4100")


# --- spec § 5: helbredstillæg and the rights-based subsidy (order § 3 stk. 2 nr. 3-4) -----------


def test_health_supplement_covers_85_percent_of_own_payment_in_the_0_percent_band() -> None:
    """spec § 5: helbredstillæg 85 % × 100 % of the own payment — 500 kr first purchase 2024."""
    state = person(supplements=(supplement("health_supplement", "100"),))
    _, result = bought(state, report("r1", date(2024, 3, 1), line("500")))
    assert result.subsidy == 0
    assert result.health_supplement == kr("425.00")
    assert result.citizen_pays == kr("75.00")
    assert result.saldo_after == kr("500")


def test_health_supplement_never_covers_the_price_above_the_basis() -> None:
    """spec § 5: "on the reimbursement-price part …, never the price above it"."""
    state = person(supplements=(supplement("health_supplement", "100"),))
    _, result = bought(state, report("r1", date(2024, 3, 1), line("200", "260")))
    assert result.health_supplement == kr("170")
    assert result.citizen_pays == kr("90")


def test_health_supplement_percentage_and_rounding() -> None:
    """spec § 5: 85 % × 50 % of 100.01 kr = 42.50425 kr → 42.50 (half-up to the øre)."""
    state = person(supplements=(supplement("health_supplement", "50"),))
    _, result = bought(state, report("r1", date(2024, 3, 1), line("100.01")))
    assert result.health_supplement == kr("42.50")


def test_rights_based_covers_all_that_remains_after_the_health_supplement() -> None:
    """spec § 5 DECISION.

    Rights-based default 100 % of the own payment left after helbredstillæg.
    """
    both = person(
        supplements=(supplement("health_supplement", "100"), supplement("rights_based", None))
    )
    _, result = bought(both, report("r1", date(2024, 3, 1), line("500")))
    assert (result.health_supplement, result.rights_based, result.citizen_pays) == (
        kr("425"),
        kr("75"),
        0,
    )
    alone = person(supplements=(supplement("rights_based", None),))
    _, result = bought(alone, report("r1", date(2024, 3, 1), line("500", "560")))
    assert (result.rights_based, result.citizen_pays) == (kr("500"), kr("60"))


def test_rights_based_coverage_is_configurable() -> None:
    """spec § 5 DECISION: "a configurable coverage" — in one place, RulesConfig."""
    state = person(supplements=(supplement("rights_based", None),))
    half = RulesConfig(rights_based_coverage=Decimal(50))
    _, result = bought(state, report("r1", date(2024, 3, 1), line("500")), config=half)
    assert (result.rights_based, result.citizen_pays) == (kr("250"), kr("250"))


# --- order § 6: balancing at the next purchase --------------------------------------------------


def _owing(amount: str, *, skip_once: bool = False) -> PersonState:
    state, _ = bought(person(), report("r0", date(2024, 1, 5), line("4000")))
    debt = Balance(
        "b1", kr(amount), kr(amount), date(2024, 1, 20), date(2024, 1, 5), "agency", skip_once
    )
    return replace(state, balances=(debt,))


def test_s6_stk2_deduction_is_capped_by_the_subsidy_due_and_carries_forward() -> None:
    """Order § 6 stk. 2.

    A debt is deducted only up to the subsidy due on the purchase; the rest carries.
    """
    state = _owing("-300")
    seen = []
    for rid, day, price in (
        ("r1", date(2024, 2, 1), "240"),
        ("r2", date(2024, 3, 1), "100"),
        ("r3", date(2024, 4, 2), "100"),
    ):
        state, result = bought(state, report(rid, day, line(price)))
        seen.append(
            (
                result.subsidy_entitled,
                result.balancing_applied,
                result.subsidy,
                result.remaining_balancing,
            )
        )
    assert seen == [
        (kr("204"), -kr("204"), 0, -kr("96")),
        (kr("85"), -kr("85"), 0, -kr("11")),
        (kr("85"), -kr("11"), kr("74"), 0),
    ]
    assert state.period is not None and state.period.saldo == kr(
        "4440"
    )  # balancing never changes the saldo


def test_s6_amount_owed_to_the_person_is_paid_in_full() -> None:
    """Order § 6 stk. 1-2.

    An amount in the person's favour is paid in full, even beyond the subsidy due.
    """
    credit = Balance("b1", kr("50"), kr("50"), date(2024, 1, 1), None, "agency")
    state, result = bought(person(balances=(credit,)), report("r1", date(2024, 3, 1), line("100")))
    assert state.balances[0].remaining == 0
    assert (result.subsidy_entitled, result.balancing_applied, result.subsidy) == (
        0,
        kr("50"),
        kr("50"),
    )
    assert result.citizen_pays == kr("50")
    assert result.remaining_balancing == 0
    assert result.saldo_after == kr("100")


def test_s6_stk3_hardship_skips_the_deduction_once_then_caps() -> None:
    """Order § 6 stk. 3.

    In special cases the deduction is postponed to the next-following purchase.
    """
    state = _owing("-300", skip_once=True)
    state, first = bought(state, report("r1", date(2024, 2, 1), line("240")))
    assert (first.balancing_applied, first.subsidy, first.remaining_balancing) == (
        0,
        kr("204"),
        -kr("300"),
    )
    assert state.balances[0].skip_once is False
    state, second = bought(state, report("r2", date(2024, 3, 1), line("240")))
    assert (second.balancing_applied, second.subsidy, second.remaining_balancing) == (
        -kr("204"),
        0,
        -kr("96"),
    )


def test_deviation_from_the_due_subsidy_becomes_a_balancing_amount() -> None:
    """Order § 6 stk. 1 and § 3 stk. 1 nr. 10: granted − due becomes a balance of −deviation."""
    state = in_period(date(2024, 1, 5), "4000")
    state, result = bought(state, report("r1", date(2024, 2, 1), line("100"), granted="100"))
    assert result.subsidy == kr("85")
    assert result.deviation == kr("15")
    assert result.remaining_balancing == -kr("15")
    (balance,) = state.balances
    assert (balance.amount, balance.remaining, balance.origin) == (
        -kr("15"),
        -kr("15"),
        "deviation",
    )
    assert (balance.arose_on, balance.arose_in_period) == (date(2024, 2, 1), date(2024, 1, 5))
    assert KEY not in balance.balance_id


def test_deviation_in_the_persons_favour_is_paid_at_the_next_purchase() -> None:
    """Order § 6 stk. 1: too little subsidy granted is owed to the person."""
    state = in_period(date(2024, 1, 5), "4000")
    state, first = bought(state, report("r1", date(2024, 2, 1), line("100"), granted="80"))
    assert first.deviation == -kr("5")
    state, second = bought(state, report("r2", date(2024, 2, 2), line("100"), granted="90"))
    assert (second.balancing_applied, second.subsidy, second.deviation) == (kr("5"), kr("90"), 0)
    assert second.remaining_balancing == 0


def test_matching_granted_subsidy_creates_no_balance() -> None:
    state, result = bought(
        in_period(date(2024, 1, 5), "4000"),
        report("r1", date(2024, 2, 1), line("100"), granted="85"),
    )
    assert result.deviation == 0
    assert state.balances == ()


# --- spec § 5 henstand (order § 3 stk. 2 nr. 2) ---------------------------------------------------


def test_under_deferral_without_an_agreement_is_refused() -> None:
    """Order § 3 stk. 2 nr. 2: own payment can only go to an agreement that is in force."""
    outcome = apply(person(), report("r1", date(2024, 1, 2), line("5000"), under_deferral=True))
    assert isinstance(outcome, Refused)
    assert outcome.reason.startswith("rule.no_deferral_agreement")


def test_under_deferral_defers_the_own_payment_on_the_basis() -> None:
    """spec § 5 henstand.

    The own payment goes to the agreement; the price above the basis is paid now.
    """
    agreement = Agreement("a1", "12300", date(2024, 1, 2), kr("381.25"), 12)
    state, first = bought(
        person(agreements=(agreement,)),
        report("r1", date(2024, 1, 2), line("5000"), under_deferral=True),
    )
    assert (first.subsidy, first.citizen_pays) == (kr("2869.75"), kr("2130.25"))
    assert (first.deferred_to_agreement, first.citizen_pays_at_counter) == (kr("2130.25"), 0)
    assert first.agreement_id == "a1"
    state, second = bought(
        state, report("r2", date(2024, 6, 3), line("5000", "5060"), under_deferral=True)
    )
    assert (second.deferred_to_agreement, second.citizen_pays_at_counter) == (kr("750"), kr("60"))
    assert state.agreements[0].deferred_total == kr("2880.25")


def test_a_return_of_a_deferred_sale_comes_off_the_agreement() -> None:
    """spec § 5 henstand and § 7 returns: the returned own payment leaves the agreement, not the till."""
    agreement = Agreement("a1", "12300", date(2024, 1, 2), kr("381.25"), 12)
    state, sale = bought(
        person(agreements=(agreement,)),
        report("r1", date(2024, 1, 2), line("5000"), under_deferral=True),
    )
    original = PurchaseRecord(
        "r1", date(2024, 1, 2), date(2024, 1, 2), kr("5000"), sale.subsidy_entitled, False,
        deferred=sale.deferred_to_agreement, actual=kr("5000"), paid=sale.citizen_pays,
    )  # fmt: skip
    outcome = apply(
        state,
        report("r2", date(2024, 1, 9), line("-1000"), kind="return", return_of="r1"),
        original=original,
    )
    assert isinstance(outcome, Applied) and outcome.purchase is not None
    back = outcome.purchase
    # saldo 5,000 → 4,000 kr: 850 kr of subsidy reversed, 150 kr of own payment undone
    assert (back.subsidy, back.citizen_pays) == (-kr("850"), -kr("150"))
    assert (back.deferred_to_agreement, back.citizen_pays_at_counter) == (-kr("150"), 0)
    assert outcome.state.agreements[0].deferred_total == kr("2130.25") - kr("150")


def test_purchase_not_under_deferral_leaves_the_agreement_alone() -> None:
    agreement = Agreement("a1", "12300", date(2024, 1, 2), kr("381.25"), 12)
    state, result = bought(
        person(agreements=(agreement,)), report("r1", date(2024, 1, 3), line("500"))
    )
    assert (result.deferred_to_agreement, result.agreement_id) == (0, None)
    assert state.agreements[0].deferred_total == 0


# --- order § 7 / spec § 7: returns --------------------------------------------------------------


def test_return_of_an_unknown_sale_is_refused() -> None:
    """spec § 7: a return must name a registered sale."""
    state = in_period(date(2024, 1, 5), "4000")
    rpt = report("r9", date(2024, 2, 1), line("-100"), kind="return", return_of="r0")
    assert apply(state, rpt) == Refused("rule.return_of_unknown_report")


def test_return_of_a_cancelled_sale_is_refused() -> None:
    state, sale = bought(person(), report("r1", date(2024, 1, 5), line("4000")))
    cancelled = replace(record_of(sale), status="cancelled")
    rpt = report("r2", date(2024, 2, 1), line("-100"), kind="return", return_of="r1")
    assert apply(state, rpt, original=cancelled) == Refused("rule.return_of_unknown_report")


def test_return_reverses_the_subsidy_and_lowers_the_saldo() -> None:
    """spec § 7 DECISION: returns carry negative amounts; the reversal is F(S − b) − F(S)."""
    state, sale = bought(person(), report("r1", date(2024, 1, 5), line("4000")))
    rpt = report("r2", date(2024, 2, 1), line("-1000"), kind="return", return_of="r1")
    state, back = bought(state, rpt, original=record_of(sale))
    assert back.basis == -kr("1000")
    assert back.subsidy == -kr("758.50")
    assert back.citizen_pays == -kr("241.50")
    assert (back.saldo_before, back.saldo_after) == (kr("4000"), kr("3000"))
    assert state.period is not None and state.period.saldo == kr("3000")


def test_return_of_the_whole_sale_nets_to_zero() -> None:
    """spec § 7: sale then full return leaves saldo 0 and no subsidy."""
    state, sale = bought(person(), report("r1", date(2024, 1, 5), line("4000", "4100")))
    rpt = report("r2", date(2024, 1, 6), line("-4000", "-4100"), kind="return", return_of="r1")
    state, back = bought(state, rpt, original=record_of(sale))
    assert back.subsidy == -sale.subsidy
    assert back.citizen_pays == -sale.citizen_pays
    assert state.period is not None and state.period.saldo == 0


def test_return_larger_than_the_sale_is_refused() -> None:
    state, sale = bought(person(), report("r1", date(2024, 1, 5), line("400")))
    rpt = report("r2", date(2024, 2, 1), line("-500"), kind="return", return_of="r1")
    assert apply(state, rpt, original=record_of(sale)) == Refused("rule.return_exceeds_sale")


def test_return_of_a_sale_in_an_earlier_period_is_booked_to_that_period() -> None:
    """spec § 7: "A return of a purchase in the previous period is booked to that period".

    Period 1 (5 Jan 2023 –) holds a 1,200 kr sale: 2023 scale, 0 % up to 1,045, 50 % above, so 77.50 kr
    of subsidy and 1,122.50 kr paid. Period 2 began 5 Jan 2024 with 100 kr. Returning 400 kr of the
    sale on 1 Feb 2024 reverses F(800) − F(1,200) = −77.50 kr on period 1's saldo under the sale's
    scale, refunds 400 − 77.50 = 322.50 kr, and leaves period 2's saldo at 100 kr.
    """
    state, sale = bought(person(), report("r1", date(2023, 1, 5), line("1200")))
    earlier = state.period
    assert earlier is not None and sale.subsidy == kr("77.50")
    state, _ = bought(state, report("r2", date(2024, 1, 5), line("100")))
    rpt = report("r3", date(2024, 2, 1), line("-400"), kind="return", return_of="r1")
    day = rpt.paid_or_invoiced_at.date()
    outcome = apply_dispensing(
        state, rpt, day, KNOWN_SCALES, RulesConfig(), record_of(sale), sale_period=earlier
    )
    assert isinstance(outcome, Applied) and outcome.purchase is not None
    back = outcome.purchase
    assert (back.subsidy, back.citizen_pays) == (-kr("77.50"), -kr("322.50"))
    assert outcome.earlier_period is not None
    assert (outcome.earlier_period.start, outcome.earlier_period.saldo) == (
        date(2023, 1, 5),
        kr("800"),
    )
    assert back.period is not None and back.period.start == date(2023, 1, 5)
    assert outcome.state.period is not None and outcome.state.period.saldo == kr("100")


def test_return_of_a_terminal_sale_reverses_the_actual_price() -> None:
    """spec § 4/§ 7.

    A § 148 sale of a non-reimbursed drug is returned in full, no period touched.
    """
    g = grant("s148_terminal", None, date(2024, 2, 1), date(2025, 1, 31))
    state, sale = bought(
        person(grants=(g,)), report("r1", date(2024, 2, 10), line("350", reimbursed=False))
    )
    rpt = report(
        "r2", date(2024, 2, 11), line("-350", reimbursed=False), kind="return", return_of="r1"
    )
    state, back = bought(state, rpt, original=record_of(sale))
    assert (back.subsidy, back.citizen_pays) == (-kr("350"), 0)
    assert state.period is None


def test_return_reverses_the_health_supplement() -> None:
    """spec § 5/§ 7.

    The supplement paid on a sale is reversed with it; the citizen gets back 75 kr.
    """
    state = person(supplements=(supplement("health_supplement", "100"),))
    state, sale = bought(state, report("r1", date(2024, 3, 1), line("500")))
    assert (sale.health_supplement, sale.citizen_pays) == (kr("425"), kr("75"))
    rpt = report("r2", date(2024, 3, 2), line("-500"), kind="return", return_of="r1")
    _, back = bought(state, rpt, original=record_of(sale))
    assert (back.health_supplement, back.citizen_pays) == (-kr("425"), -kr("75"))
