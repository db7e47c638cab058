"""Unit tests of individual grants to the letter (spec § 4; sundhedsloven §§ 145, 148, 151).

Each rule is tested at its edge: the day before, the day and the day after. Figures use the 2024
scale (adult: 0 % to 1,075 kr, 50 % to 1,805 kr, 75 % to 3,915 kr) and are worked by hand in each
docstring. Pure: no I/O is allowed while these run.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from rules.corrections import Recomputed
from rules.grants import recompute_for_grant
from rules.outcomes import PurchaseRecord, PurchaseResult
from rules.scales import KNOWN_SCALES
from rules.state import Grant, GrantKind, PersonState
from schemas.dispensing import DispensingLine
from tests.rules.test_rules_dispensing import bought, in_period, kr, line, person, report

START = date(2024, 1, 5)


def grant(kind: GrantKind, drug: str | None, start: date, end: date = date(2024, 12, 31)) -> Grant:
    return Grant(f"g-{kind}", kind, drug, start, end)


def record(result: PurchaseResult) -> PurchaseRecord:
    assert result.period is not None
    return PurchaseRecord(
        result.report_id,
        result.day,
        result.period.start,
        result.basis,
        result.subsidy_entitled,
        result.terminal,
    )


# --- § 151 never makes a medicine eligible ---------------------------------------------------------


@pytest.mark.parametrize("day", [date(2024, 2, 9), date(2024, 2, 10), date(2024, 2, 11)])
def test_s151_on_a_medicine_without_general_subsidy_gives_nothing(day: date) -> None:
    """spec § 4: § 151 changes only the basis of an eligible medicine; it never makes one eligible.

    A § 151 grant for X from 10 Feb 2024; X has no general subsidy and no § 145 grant. Bought on
    9, 10 and 11 Feb (reimbursement price 200 kr, actual 260 kr) by a person with no period:
    basis 0, subsidy 0, the person pays 260.00 kr, no saldo and no period opens — on each day.
    """
    state = person(grants=(grant("s151_increased", "X", date(2024, 2, 10)),))
    x = line("200", "260", drug="X", reimbursed=False)
    after, result = bought(state, report("r1", day, x))
    assert (result.subsidised, result.basis, result.subsidy) == (False, 0, 0)
    assert result.citizen_pays == kr("260")
    assert after.period is None


@pytest.mark.parametrize("day", [date(2024, 2, 9), date(2024, 2, 10), date(2024, 2, 11)])
def test_s151_on_an_ineligible_medicine_leaves_the_saldo_alone(day: date) -> None:
    """spec § 4: in a running period (saldo 2,000 kr) the same purchase adds nothing to the saldo.

    Saldo stays 2,000.00 kr, subsidy 0, the person pays 260.00 kr on 9, 10 and 11 Feb alike.
    """
    state = in_period(START, "2000", grants=(grant("s151_increased", "X", date(2024, 2, 10)),))
    x = line("200", "260", drug="X", reimbursed=False)
    after, result = bought(state, report("r1", day, x))
    assert (result.basis, result.subsidy, result.citizen_pays) == (0, 0, kr("260"))
    assert after.period is not None and after.period.saldo == kr("2000")


@pytest.mark.parametrize(
    ("day", "basis", "subsidy", "pays"),
    [
        (date(2024, 2, 9), "200", "150.00", "110.00"),
        (date(2024, 2, 10), "260", "195.00", "65.00"),
        (date(2024, 2, 11), "260", "195.00", "65.00"),
    ],
)
def test_s151_on_a_generally_subsidised_medicine_from_valid_from(
    day: date, basis: str, subsidy: str, pays: str
) -> None:
    """spec §§ 2, 4 (DECISION): on an eligible medicine § 151 puts basis and saldo on the actual price.

    Saldo 2,000 kr (75 % band up to 3,915 kr); X: reimbursement price 200 kr, actual 260 kr; the
    grant is valid from 10 Feb.
    - 9 Feb (before): basis min(200, 260) = 200; 75 % = 150.00; pays 260 − 150 = 110.00.
    - 10 and 11 Feb: basis 260; 75 % = 195.00; pays 260 − 195 = 65.00.
    """
    state = in_period(START, "2000", grants=(grant("s151_increased", "X", date(2024, 2, 10)),))
    after, result = bought(state, report("r1", day, line("200", "260", drug="X")))
    assert (result.basis, result.subsidy, result.citizen_pays) == (kr(basis), kr(subsidy), kr(pays))
    assert after.period is not None and after.period.saldo == kr("2000") + kr(basis)


@pytest.mark.parametrize(
    ("day", "basis", "subsidy"),
    [
        (date(2024, 6, 29), "260", "195.00"),
        (date(2024, 6, 30), "260", "195.00"),
        (date(2024, 7, 1), "200", "150.00"),
    ],
)
def test_s151_ends_with_its_valid_to(day: date, basis: str, subsidy: str) -> None:
    """The grant's `valid_to` (30 Jun) is its last day: on 29 and 30 Jun basis 260, 75 % = 195.00;
    on 1 Jul the reimbursement price again: basis 200, 75 % = 150.00 (saldo 2,000 kr before)."""
    g = grant("s151_increased", "X", date(2024, 2, 10), date(2024, 6, 30))
    _, result = bought(
        in_period(START, "2000", grants=(g,)), report("r1", day, line("200", "260", drug="X"))
    )
    assert (result.basis, result.subsidy) == (kr(basis), kr(subsidy))


@pytest.mark.parametrize(
    ("day", "basis", "subsidy", "pays"),
    [
        (date(2024, 2, 9), "0", "0", "260"),
        (date(2024, 2, 10), "260", "195.00", "65.00"),
        (date(2024, 2, 11), "260", "195.00", "65.00"),
    ],
)
def test_s151_with_a_s145_grant_makes_the_actual_price_the_basis(
    day: date, basis: str, subsidy: str, pays: str
) -> None:
    """spec § 4: § 145 makes X eligible (from 10 Feb) and § 151 then puts its basis on the actual price.

    Both grants from 10 Feb; saldo 2,000 kr. 9 Feb: X not eligible, nothing, pays 260.00. 10 and
    11 Feb: basis 260, 75 % = 195.00, pays 65.00.
    """
    grants = (
        grant("s145_single", "X", date(2024, 2, 10)),
        grant("s151_increased", "X", date(2024, 2, 10)),
    )
    _, result = bought(
        in_period(START, "2000", grants=grants),
        report("r1", day, line("200", "260", drug="X", reimbursed=False)),
    )
    assert (result.basis, result.subsidy, result.citizen_pays) == (kr(basis), kr(subsidy), kr(pays))


# --- a grant entered with a start before registered purchases ------------------------------------


def _history(x: DispensingLine) -> tuple[PersonState, tuple[PurchaseRecord, ...], dict]:
    """Three purchases in the period from 5 Jan 2024 before any grant:

    - r1 5 Jan, GEN 1,500 kr: saldo 0 → 1,500: 0 % to 1,075, 50 % of 425 = 212.50;
    - r2 10 Feb, X (reimbursement price 200 kr, actual 260 kr);
    - r3 1 Mar, GEN 400 kr.
    """
    lines = {
        "r1": [line("1500", drug="GEN")],
        "r2": [x],
        "r3": [line("400", drug="GEN")],
    }
    state = person()
    records = []
    for rid, day in (("r1", START), ("r2", date(2024, 2, 10)), ("r3", date(2024, 3, 1))):
        state, result = bought(state, report(rid, day, *lines[rid]))
        records.append(record(result))
    return state, tuple(records), lines


def _enter(state: PersonState, g: Grant, records: tuple, lines: dict) -> Recomputed | None:
    state = replace(state, grants=(*state.grants, g))
    assert state.period is not None
    outcome = recompute_for_grant(state, g, state.period, records, lines, KNOWN_SCALES)
    assert not hasattr(outcome, "reason"), outcome
    return outcome  # type: ignore[return-value]


@pytest.mark.parametrize("valid_from", [date(2024, 2, 9), date(2024, 2, 10)])
def test_retroactive_s151_recomputes_into_amounts_owed_to_the_person(valid_from: date) -> None:
    """spec § 4: a § 151 grant for X entered (1 Apr) with a start on or before r2 (10 Feb).

    As registered: r2 basis 200, saldo 1,500 → 1,700, 50 % = 100.00; r3 basis 400, saldo
    1,700 → 2,100: 105 × 50 % + 295 × 75 % = 52.50 + 221.25 = 273.75. Saldo 2,100.
    With the grant: r1 (before valid_from) keeps 212.50; r2 basis 260, saldo 1,500 → 1,760,
    50 % = 130.00 (+30.00); r3 saldo 1,760 → 2,160: 45 × 50 % + 355 × 75 % = 22.50 + 266.25 =
    288.75 (+15.00). Saldo 2,160. Two amounts owed to the person, 30.00 and 15.00 kr, arising on
    10 Feb and 1 Mar in the period from 5 Jan.
    """
    state, records, lines = _history(line("200", "260", drug="X"))
    assert [r.entitled for r in records] == [kr("212.50"), kr("100"), kr("273.75")]
    result = _enter(state, grant("s151_increased", "X", valid_from), records, lines)
    assert result is not None
    assert result.period.saldo == kr("2160")
    assert [(r.basis, r.entitled) for r in result.records] == [
        (kr("1500"), kr("212.50")),
        (kr("260"), kr("130")),
        (kr("400"), kr("288.75")),
    ]
    owed = [(b.amount, b.arose_on, b.arose_in_period) for b in result.new_balances]
    assert owed == [
        (kr("30"), date(2024, 2, 10), START),
        (kr("15"), date(2024, 3, 1), START),
    ]


def test_retroactive_s151_starting_the_day_after_the_purchase_changes_nothing() -> None:
    """A § 151 grant from 11 Feb, the day after r2: no purchase of X on or after it; nothing changes."""
    state, records, lines = _history(line("200", "260", drug="X"))
    assert _enter(state, grant("s151_increased", "X", date(2024, 2, 11)), records, lines) is None


def test_retroactive_s151_on_an_ineligible_medicine_changes_nothing() -> None:
    """§ 151 never makes X (no general subsidy) eligible, retroactively either: nothing to recompute."""
    state, records, lines = _history(line("200", "260", drug="X", reimbursed=False))
    assert _enter(state, grant("s151_increased", "X", date(2024, 2, 1)), records, lines) is None


@pytest.mark.parametrize(
    ("valid_from", "changed"),
    [(date(2024, 2, 9), True), (date(2024, 2, 10), True), (date(2024, 2, 11), False)],
)
def test_retroactive_s145_makes_the_purchase_eligible(valid_from: date, changed: bool) -> None:
    """spec § 4: a § 145 grant for X (no general subsidy) entered with a start on or before r2.

    As registered: r2 not eligible (basis 0, subsidy 0); r3 saldo 1,500 → 1,900: 305 × 50 % +
    95 × 75 % = 152.50 + 71.25 = 223.75. With the grant: r2 basis min(200, 260) = 200, saldo
    1,500 → 1,700, 50 % = 100.00 (+100.00); r3 saldo 1,700 → 2,100: 52.50 + 221.25 = 273.75
    (+50.00). Saldo 2,100. From 11 Feb (the day after r2): nothing changes.
    """
    state, records, lines = _history(line("200", "260", drug="X", reimbursed=False))
    assert [r.entitled for r in records] == [kr("212.50"), 0, kr("223.75")]
    result = _enter(state, grant("s145_single", "X", valid_from), records, lines)
    if not changed:
        assert result is None
        return
    assert result is not None
    assert result.period.saldo == kr("2100")
    assert [b.amount for b in result.new_balances] == [kr("100"), kr("50")]


def test_retroactive_s148_pays_the_actual_price_in_full() -> None:
    """spec § 4: a § 148 terminal grant from 1 Mar entered later: r3 (1 Mar, GEN 400 kr, granted
    273.75) is now due 100 % of its actual price, 400.00: +126.25 owed to the person. Its saldo
    basis stays 400 (a subsidised medicine still counts, DECISION), so the saldo stays 2,100.
    r1 and r2 lie before 1 Mar and keep what they got."""
    state, records, lines = _history(line("200", "260", drug="X"))
    result = _enter(state, grant("s148_terminal", None, date(2024, 3, 1)), records, lines)
    assert result is not None
    assert result.period.saldo == kr("2100")
    assert [(b.amount, b.arose_on) for b in result.new_balances] == [
        (kr("126.25"), date(2024, 3, 1))
    ]
    assert result.records[2].terminal is True
