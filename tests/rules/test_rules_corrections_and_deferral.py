"""Unit tests of corrections and balancing (`rules/corrections.py`, order § 6 and § 7 stk. 3, 6, 7),
deferral agreements (`rules/deferral.py`, order § 3 stk. 2 nr. 2, § 7 stk. 4), individual grants
(`rules/grants.py`, order § 9) and municipal decisions (`rules/municipal.py`, order § 8).

PurchaseRecord chains are built by hand. Pure: no I/O is allowed while these run.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest

from rules.corrections import Recomputed, apply_balancing, apply_recomputed, recompute_period
from rules.deferral import Settlement, apply_deferral
from rules.dispensing import RulesConfig, apply_dispensing
from rules.grants import apply_grant
from rules.money import kroner_to_ore
from rules.municipal import apply_municipal
from rules.outcomes import Applied, Parked, PurchaseRecord, Refused
from rules.scales import KNOWN_SCALES
from rules.state import Balance, Grant, Period, PersonState, Supplement
from schemas.common import PersonRef
from schemas.corrections import Correction, CorrectionSender
from schemas.deferrals import DeferralAgreement
from schemas.dispensing import DispensingLine, DispensingReport
from schemas.grants import AgencySender, IndividualGrant
from schemas.municipal import MunicipalDecision, MunicipalSender

# --- rules_conftest: small builders -------------------------------------------------------------

KEY = "4208000001"
BORN = date(1960, 5, 5)
REF = PersonRef(key=KEY, birth_date=BORN)
CPH = timezone(timedelta(hours=1))
SENT = datetime(2024, 6, 1, 12, 0, tzinfo=CPH)
START = date(2024, 1, 5)
PERIOD = Period(START, date(2025, 1, 4), 0, False, None)


def kr(text: str) -> int:
    return kroner_to_ore(text)


def person(**kwargs: object) -> PersonState:
    return PersonState(key=KEY, birth_date=BORN, **kwargs)  # type: ignore[arg-type]


def rec(report_id: str, day: date, basis: str, entitled: str, **kwargs: object) -> PurchaseRecord:
    return PurchaseRecord(report_id, day, START, kr(basis), kr(entitled), False, **kwargs)  # type: ignore[arg-type]


def line(price: str, *, drug: str = "GEN-1") -> DispensingLine:
    return DispensingLine(drug_id=drug, reimbursement_price=kr(price), actual_price=kr(price))


def correction(action: str, *, by: str = "agency", **kwargs: object) -> Correction:
    return Correction(
        message_id=str(kwargs.pop("message_id", "c1")),
        sent_at=SENT,
        sender=CorrectionSender(ordered_by=by, reported_by="lmst-case-1"),  # type: ignore[arg-type]
        action=action,  # type: ignore[arg-type]
        person=REF,
        **kwargs,  # type: ignore[arg-type]
    )


# 2024 adult: 1,000 kr (0.00), 1,000 kr (511.25), 2,000 kr (1,508.50) — saldo 4,000 kr.
CHAIN = (
    rec("r1", date(2024, 1, 5), "1000", "0"),
    rec("r2", date(2024, 2, 1), "1000", "511.25"),
    rec("r3", date(2024, 3, 1), "2000", "1508.50"),
)
STATE = person(period=replace(PERIOD, saldo=kr("4000")))


def recomputed(message: Correction, chain: tuple[PurchaseRecord, ...] = CHAIN) -> Recomputed:
    outcome = recompute_period(STATE, message, PERIOD, chain, KNOWN_SCALES)
    assert isinstance(outcome, Recomputed), outcome
    return outcome


def balances_by_report(result: Recomputed) -> dict[str, int]:
    return {b.balance_id.rsplit(":", 1)[1]: b.amount for b in result.new_balances}


# --- order § 7 stk. 6-7 and spec § 7: corrections recompute the period ---------------------------


def test_correcting_the_first_purchase_turns_later_differences_into_balancing_amounts() -> None:
    """Order § 7 stk. 6 and stk. 3; spec § 7 DECISION.

    The saldo changes from the corrected report on; later purchases keep their subsidy and each
    difference (now due − recorded entitled) becomes a balancing amount in its period.
    """
    result = recomputed(correction("correct", report_id="r1", lines=[line("500")]))
    assert [r.report_id for r in result.records] == ["r1", "r2", "r3"]
    assert [r.status for r in result.records] == ["corrected", "registered", "registered"]
    assert [r.basis for r in result.records] == [kr("500"), kr("1000"), kr("2000")]
    assert [r.entitled for r in result.records] == [0, kr("212.50"), kr("1423.75")]
    assert balances_by_report(result) == {
        "r2": kr("212.50") - kr("511.25"),
        "r3": kr("1423.75") - kr("1508.50"),
    }
    assert result.period.saldo == kr("3500")
    assert result.period.start == START


def test_correction_balances_arise_in_their_purchases_period() -> None:
    """Order § 7 stk. 3: balancing is reported to the period where it arose."""
    result = recomputed(correction("correct", report_id="r1", lines=[line("500")]))
    for balance, day in zip(result.new_balances, (date(2024, 2, 1), date(2024, 3, 1)), strict=True):
        assert balance.arose_on == day
        assert balance.arose_in_period == START
        assert balance.remaining == balance.amount
        assert balance.origin == "correction ordered by agency"
        assert balance.skip_once is False
        assert KEY not in balance.balance_id


def test_correction_asked_for_by_the_person_names_its_origin() -> None:
    """Order § 7 stk. 7: a person may ask the pharmacy to correct an error."""
    result = recomputed(correction("correct", by="person", report_id="r1", lines=[line("500")]))
    assert {b.origin for b in result.new_balances} == {"correction ordered by person"}


def test_correcting_a_middle_purchase_leaves_earlier_records_untouched() -> None:
    result = recomputed(correction("correct", report_id="r2", lines=[line("2000")]))
    assert result.records[0] is CHAIN[0]
    assert [r.entitled for r in result.records] == [0, kr("1261.25"), kr("1608.50")]
    assert balances_by_report(result) == {"r2": kr("750"), "r3": kr("100")}
    assert result.period.saldo == kr("5000")


def test_a_cancellation_is_not_recomputed_here() -> None:
    """A cancellation may move the period's start and takes the sale's returns with it: it is replayed
    by `rules.history.cancel_sale` (tests/rules/test_rules_history.py), never recomputed in place."""
    with pytest.raises(ValueError, match="cancel_sale"):
        recomputed(correction("cancel", report_id="r1"))


def test_cancelled_records_are_kept_but_skipped() -> None:
    chain = (rec("r0", date(2024, 1, 5), "0", "0", status="cancelled"), *CHAIN)
    result = recomputed(correction("correct", report_id="r1", lines=[line("500")]), chain)
    assert result.records[0] is chain[0]
    assert result.period.saldo == kr("3500")


def test_later_terminal_purchase_keeps_its_subsidy() -> None:
    """spec § 4 DECISION, sundhedsloven § 148.

    A terminal purchase got 100 % of the actual price; an earlier correction does not change that,
    but its reimbursement price stays in the saldo.
    """
    terminal = replace(rec("r4", date(2024, 4, 1), "200", "230"), terminal=True)
    result = recomputed(
        correction("correct", report_id="r1", lines=[line("500")]), (*CHAIN, terminal)
    )
    assert result.records[3].entitled == kr("230")
    assert "r4" not in balances_by_report(result)
    assert result.period.saldo == kr("3700")


def test_applying_the_recomputation_updates_the_current_period_and_opens_balances() -> None:
    result = recomputed(correction("correct", report_id="r1", lines=[line("500")]))
    state = apply_recomputed(STATE, result)
    assert state.period is not None and state.period.saldo == kr("3500")
    assert len(state.balances) == 2
    assert sum(b.remaining for b in state.balances) == -kr("383.50")


def test_recomputing_an_earlier_period_leaves_the_current_one() -> None:
    current = Period(date(2025, 1, 5), date(2026, 1, 4), kr("100"), False, date(2025, 1, 4))
    state = person(period=current)
    outcome = recompute_period(
        state,
        correction("correct", report_id="r1", lines=[line("500")]),
        PERIOD,
        CHAIN,
        KNOWN_SCALES,
    )
    assert isinstance(outcome, Recomputed)
    after = apply_recomputed(state, outcome)
    assert after.period == current
    assert len(after.balances) == 2


def test_correcting_an_unknown_report_is_refused() -> None:
    outcome = recompute_period(
        STATE, correction("cancel", report_id="r9"), PERIOD, CHAIN, KNOWN_SCALES
    )
    assert outcome == Refused("rule.correction_of_unknown_report")


def test_correcting_a_cancelled_report_is_refused() -> None:
    chain = (replace(CHAIN[0], status="cancelled"), *CHAIN[1:])
    outcome = recompute_period(
        STATE,
        correction("correct", report_id="r1", lines=[line("500")]),
        PERIOD,
        chain,
        KNOWN_SCALES,
    )
    assert outcome == Refused("rule.report_already_cancelled")


def test_recompute_without_a_scale_is_parked() -> None:
    """spec § 2: no scale is guessed, not even when recomputing."""
    period = Period(date(2024, 12, 1), date(2025, 11, 30), kr("200"), False, None)
    chain = (
        PurchaseRecord("r1", date(2024, 12, 1), period.start, kr("100"), 0, False),
        PurchaseRecord("r2", date(2025, 1, 2), period.start, kr("100"), 0, False),
    )
    outcome = recompute_period(
        person(period=period),
        correction("correct", report_id="r1", lines=[line("50")]),
        period,
        chain,
        KNOWN_SCALES,
    )
    assert isinstance(outcome, Parked)
    assert outcome.reason.startswith("rule.unknown_scale")
    assert outcome.day == date(2025, 1, 2)


# --- order § 6: balancing amounts registered and repaid ------------------------------------------


def test_balancing_amount_is_registered_in_the_period_where_it_arose() -> None:
    """Order § 3 stk. 1 nr. 10 and § 7 stk. 3."""
    message = correction("balancing", amount=-kr("300"), arose_on=date(2024, 2, 1))
    outcome = apply_balancing(STATE, message, date(2024, 6, 1))
    assert isinstance(outcome, Applied)
    (balance,) = outcome.state.balances
    assert (balance.balance_id, balance.amount, balance.remaining) == (
        "agency:c1",
        -kr("300"),
        -kr("300"),
    )
    assert (balance.arose_on, balance.arose_in_period) == (date(2024, 2, 1), START)
    assert balance.origin == "registered by agency"
    assert outcome.state.period == STATE.period  # balancing never changes the saldo


def test_balancing_amount_outside_every_period_has_no_period_start() -> None:
    message = correction("balancing", amount=kr("50"), arose_on=date(2023, 6, 1))
    outcome = apply_balancing(STATE, message, date(2024, 6, 1))
    assert isinstance(outcome, Applied)
    assert outcome.state.balances[0].arose_in_period is None


def test_balancing_amount_that_arose_in_the_previous_period_keeps_it() -> None:
    """§ 7 stk. 3: an amount keeps the period where it arose, also the previous one. The previous
    period ran 1 June 2022 – 31 May 2023: an amount dated its last day keeps it; dated the day after
    (in no period) it has none; the current period's first day gives the current period."""
    previous = Period(date(2022, 6, 1), date(2023, 5, 31), kr("900"), False, None)
    assert STATE.period is not None

    def arose_in(day: date) -> date | None:
        message = correction("balancing", amount=kr("50"), arose_on=day)
        outcome = apply_balancing(STATE, message, date(2024, 6, 1), (previous, STATE.period))
        assert isinstance(outcome, Applied)
        return outcome.state.balances[0].arose_in_period

    assert arose_in(date(2023, 5, 31)) == date(2022, 6, 1)
    assert arose_in(date(2023, 6, 1)) is None
    assert arose_in(STATE.period.start) == STATE.period.start


def test_balancing_amount_defaults_to_the_day_it_is_applied() -> None:
    outcome = apply_balancing(STATE, correction("balancing", amount=kr("50")), date(2024, 6, 1))
    assert isinstance(outcome, Applied)
    assert outcome.state.balances[0].arose_on == date(2024, 6, 1)


def test_hardship_deferral_is_registered_as_skip_once() -> None:
    """Order § 6 stk. 3."""
    message = correction("balancing", amount=-kr("300"), hardship_deferral=True)
    outcome = apply_balancing(STATE, message, date(2024, 6, 1))
    assert isinstance(outcome, Applied)
    assert outcome.state.balances[0].skip_once is True


def test_the_same_balancing_message_twice_registers_once() -> None:
    message = correction("balancing", amount=-kr("300"))
    first = apply_balancing(STATE, message, date(2024, 6, 1))
    assert isinstance(first, Applied)
    second = apply_balancing(first.state, message, date(2024, 6, 1))
    assert isinstance(second, Applied)
    assert second.state == first.state


def _debts(*amounts: str) -> PersonState:
    return person(
        balances=tuple(
            Balance(f"b{i}", kr(a), kr(a), date(2024, 1, i + 1), START, "agency")
            for i, a in enumerate(amounts)
        )
    )


def test_repayment_settles_debt_oldest_first() -> None:
    """Order § 6 stk. 2, 2nd sentence: the person may repay what they owe at once."""
    state = _debts("-100", "50", "-200")
    outcome = apply_balancing(state, correction("repayment", amount=kr("150")), date(2024, 6, 1))
    assert isinstance(outcome, Applied)
    assert [b.remaining for b in outcome.state.balances] == [0, kr("50"), -kr("150")]


def test_repayment_of_the_full_debt() -> None:
    state = _debts("-100", "-200")
    outcome = apply_balancing(state, correction("repayment", amount=kr("300")), date(2024, 6, 1))
    assert isinstance(outcome, Applied)
    assert [b.remaining for b in outcome.state.balances] == [0, 0]


def test_repayment_of_more_than_is_owed_is_refused() -> None:
    state = _debts("-100", "-200")
    outcome = apply_balancing(state, correction("repayment", amount=kr("300.01")), date(2024, 6, 1))
    assert outcome == Refused("rule.repayment_exceeds_debt")
    no_debt = apply_balancing(_debts("50"), correction("repayment", amount=1), date(2024, 6, 1))
    assert no_debt == Refused("rule.repayment_exceeds_debt")


# --- deferral (henstand): order § 3 stk. 2 nr. 2, § 7 stk. 4 --------------------------------------


def deferral(
    action: str, day: date, *, agreement_id: str = "a1", pharmacy: str = "12300", **kwargs: object
) -> DeferralAgreement:
    return DeferralAgreement(
        message_id=f"{action}-{agreement_id}-{day.isoformat()}",
        sent_at=datetime.combine(day, time(15, 0), tzinfo=CPH),
        pharmacy_number=pharmacy,
        action=action,  # type: ignore[arg-type]
        agreement_id=agreement_id,
        date=day,
        person=REF,
        **kwargs,  # type: ignore[arg-type]
    )


def entered(state: PersonState, day: date = date(2024, 1, 2), **kwargs: object) -> PersonState:
    kwargs.setdefault("monthly_rate", kr("381.25"))
    kwargs.setdefault("rates", 12)
    outcome = apply_deferral(state, deferral("entered", day, **kwargs))
    assert isinstance(outcome, tuple), outcome
    applied, statement = outcome
    assert statement is None
    return applied.state


def sale_under_deferral(state: PersonState, report_id: str, day: date, price: str) -> PersonState:
    rpt = DispensingReport(
        report_id=report_id,
        pharmacy_number="12300",
        pharmacy_site_p_number="1003456788",
        dispensing_id=f"d-{report_id}",
        ordination_id="01",
        paid_or_invoiced_at=datetime.combine(day, time(10, 0), tzinfo=CPH),
        person=REF,
        lines=[line(price)],
        under_deferral=True,
    )
    outcome = apply_dispensing(state, rpt, day, KNOWN_SCALES, RulesConfig())
    assert isinstance(outcome, Applied), outcome
    return outcome.state


def test_agreement_entered_is_registered() -> None:
    """Order § 3 stk. 2 nr. 2 and § 7 stk. 4: the pharmacy reports the agreement the same day."""
    state = entered(person())
    (agreement,) = state.agreements
    assert (agreement.agreement_id, agreement.pharmacy_number) == ("a1", "12300")
    assert (agreement.entered_on, agreement.monthly_rate, agreement.rates) == (
        date(2024, 1, 2),
        kr("381.25"),
        12,
    )
    assert (agreement.deferred_total, agreement.ended_on, agreement.settled) == (0, None, False)


def test_settlement_pays_back_the_rates_paid_above_the_own_payment() -> None:
    """spec § 5 henstand: settled once at the end of the subsidy year.

    381.25 kr × 12 = 4,575.00 kr paid against 3,630.25 kr deferred: 944.75 kr in the citizen's
    favour.
    """
    state = entered(person())
    state = sale_under_deferral(state, "e1", date(2024, 1, 2), "5000")
    state = sale_under_deferral(state, "e2", date(2024, 6, 3), "5000")
    state = sale_under_deferral(state, "e3", date(2024, 11, 1), "5000")
    assert state.agreements[0].deferred_total == kr("3630.25")
    outcome = apply_deferral(state, deferral("settle", date(2025, 1, 2)))
    assert isinstance(outcome, tuple)
    applied, statement = outcome
    assert statement == Settlement("a1", "12300", kr("3630.25"), kr("4575.00"))
    assert statement.difference_in_citizens_favour == kr("944.75")
    (agreement,) = applied.state.agreements
    assert (agreement.settled, agreement.ended_on) == (True, date(2025, 1, 2))


def test_settlement_counts_only_the_rates_paid() -> None:
    state = entered(person())
    state = sale_under_deferral(state, "e1", date(2024, 1, 2), "5000")
    outcome = apply_deferral(state, deferral("settle", date(2025, 1, 2), rates_paid=3))
    assert isinstance(outcome, tuple)
    _, statement = outcome
    assert statement is not None
    assert statement.total_rates_paid == kr("1143.75")
    assert statement.difference_in_citizens_favour == kr("1143.75") - kr("2130.25")


def test_second_agreement_while_one_is_in_force_is_refused() -> None:
    """Order § 3 stk. 2 nr. 2: one agreement at a time."""
    state = entered(person())
    outcome = apply_deferral(
        state, deferral("entered", date(2024, 3, 1), agreement_id="a2", monthly_rate=100, rates=12)
    )
    assert isinstance(outcome, Refused)
    assert outcome.reason.startswith("rule.agreement_already_in_force")


def test_new_agreement_after_the_first_ended() -> None:
    state = entered(person())
    outcome = apply_deferral(state, deferral("ended", date(2024, 2, 1)))
    assert isinstance(outcome, tuple)
    state = entered(outcome[0].state, date(2024, 3, 1), agreement_id="a2")
    assert [a.agreement_id for a in state.agreements] == ["a1", "a2"]


def test_entering_the_same_agreement_again_is_refused() -> None:
    state = entered(person())
    outcome = apply_deferral(
        state, deferral("entered", date(2024, 1, 2), monthly_rate=kr("381.25"), rates=12)
    )
    assert outcome == Refused("rule.agreement_exists")


def test_ending_by_another_pharmacy_is_refused() -> None:
    """Order § 7 stk. 4: the pharmacy that holds the agreement ends it."""
    state = entered(person())
    outcome = apply_deferral(state, deferral("ended", date(2024, 2, 1), pharmacy="45600"))
    assert isinstance(outcome, Refused)
    assert outcome.reason.startswith("rule.other_pharmacy")


def test_ending_through_default_is_recorded() -> None:
    """spec § 5.

    Entering and ending (and whether it ended through default) are reported the same day.
    """
    state = entered(person())
    outcome = apply_deferral(state, deferral("ended", date(2024, 2, 1), ended_by_default=True))
    assert isinstance(outcome, tuple)
    (agreement,) = outcome[0].state.agreements
    assert (agreement.ended_on, agreement.ended_by_default) == (date(2024, 2, 1), True)


def test_purchases_under_deferral_end_with_the_agreement() -> None:
    state = entered(person())
    outcome = apply_deferral(state, deferral("ended", date(2024, 2, 1)))
    assert isinstance(outcome, tuple)
    state = outcome[0].state
    state = sale_under_deferral(
        state, "e1", date(2024, 2, 1), "100"
    )  # the last day is still in force
    rpt = DispensingReport(
        report_id="e2",
        pharmacy_number="12300",
        pharmacy_site_p_number="1003456788",
        dispensing_id="d-e2",
        ordination_id="01",
        paid_or_invoiced_at=datetime(2024, 2, 2, 10, 0, tzinfo=CPH),
        person=REF,
        lines=[line("100")],
        under_deferral=True,
    )
    refused = apply_dispensing(state, rpt, date(2024, 2, 2), KNOWN_SCALES, RulesConfig())
    assert isinstance(refused, Refused)


def test_ending_before_it_was_entered_is_refused() -> None:
    state = entered(person())
    assert apply_deferral(state, deferral("ended", date(2024, 1, 1))) == Refused(
        "rule.end_before_start"
    )


def test_ending_an_unknown_agreement_is_refused() -> None:
    outcome = apply_deferral(person(), deferral("ended", date(2024, 2, 1)))
    assert isinstance(outcome, Refused)
    assert outcome.reason.startswith("rule.unknown_agreement")


def test_settling_twice_is_refused() -> None:
    state = entered(person())
    outcome = apply_deferral(state, deferral("settle", date(2025, 1, 2)))
    assert isinstance(outcome, tuple)
    again = apply_deferral(outcome[0].state, deferral("settle", date(2025, 1, 3)))
    assert again == Refused("rule.agreement_settled")


# --- individual grants: order § 9, spec § 4 -------------------------------------------------------


def grant_msg(
    action: str, *, kind: str = "s151_increased", drug: str | None = "X", **kwargs: object
) -> IndividualGrant:
    values: dict[str, object] = {"valid_from": date(2024, 1, 1), "valid_to": date(2024, 12, 31)}
    values.update(kwargs)
    return IndividualGrant(
        message_id=f"gm-{action}",
        sent_at=SENT,
        sender=AgencySender(user="case-worker-1"),
        action=action,  # type: ignore[arg-type]
        grant_id="g1",
        kind=kind,  # type: ignore[arg-type]
        drug_id=drug,
        person=REF,
        **values,  # type: ignore[arg-type]
    )


def granted(state: PersonState, message: IndividualGrant) -> PersonState:
    outcome = apply_grant(state, message)
    assert isinstance(outcome, Applied), outcome
    return outcome.state


def test_grant_entered_changed_and_ended() -> None:
    """Order § 9 / spec § 4.

    Grants have a valid-from and valid-to; the agency enters, changes, ends.
    """
    state = granted(person(), grant_msg("enter"))
    assert state.grants == (
        Grant("g1", "s151_increased", "X", date(2024, 1, 1), date(2024, 12, 31)),
    )
    state = granted(state, grant_msg("change", valid_to=date(2025, 6, 30)))
    assert state.grants[0].valid_to == date(2025, 6, 30)
    state = granted(state, grant_msg("end", valid_to=date(2024, 8, 31)))
    assert len(state.grants) == 1
    assert state.grants[0].valid_to == date(2024, 8, 31)
    assert state.grant("s151_increased", date(2024, 9, 1), "X") is None
    assert state.grant("s151_increased", date(2024, 8, 31), "X") is not None


def test_grant_may_start_before_the_day_it_is_reported() -> None:
    """spec § 4.

    "a grant can start earlier than the day it is reported" (sent 1 June, valid from January).
    """
    state = granted(person(), grant_msg("enter", kind="s148_terminal", drug=None))
    assert state.grant("s148_terminal", date(2024, 1, 1)) is not None


def test_change_of_an_unknown_grant_is_refused() -> None:
    for action in ("change", "end"):
        outcome = apply_grant(person(), grant_msg(action))
        assert isinstance(outcome, Refused)
        assert outcome.reason.startswith("rule.unknown_grant")


def test_entering_the_same_grant_twice_is_a_no_op() -> None:
    state = granted(person(), grant_msg("enter"))
    outcome = apply_grant(state, grant_msg("enter"))
    assert isinstance(outcome, Applied)
    assert outcome.state is state


def test_entering_a_different_grant_under_the_same_id_is_refused() -> None:
    state = granted(person(), grant_msg("enter"))
    outcome = apply_grant(state, grant_msg("enter", valid_to=date(2025, 12, 31)))
    assert isinstance(outcome, Refused)
    assert outcome.reason.startswith("rule.grant_exists")


def test_a_grant_keeps_its_kind() -> None:
    state = granted(person(), grant_msg("enter"))
    outcome = apply_grant(state, grant_msg("change", kind="s145_single"))
    assert isinstance(outcome, Refused)
    assert outcome.reason.startswith("rule.grant_kind_changed")


def test_ending_a_grant_after_its_expiry_is_refused() -> None:
    state = granted(person(), grant_msg("enter"))
    outcome = apply_grant(state, grant_msg("end", valid_to=date(2025, 1, 1)))
    assert isinstance(outcome, Refused)
    assert outcome.reason.startswith("rule.end_after_expiry")


# --- municipal decisions: order § 8, spec § 5 -----------------------------------------------------


def decision(action: str, *, municipality: int = 101, **kwargs: object) -> MunicipalDecision:
    values: dict[str, object] = {
        "kind": "health_supplement",
        "supplement_percentage": Decimal(75),
        "valid_from": date(2024, 1, 1),
    }
    values.update(kwargs)
    return MunicipalDecision(
        message_id=f"md-{action}",
        sender=MunicipalSender(municipality_code=municipality, user="sagsbehandler-1"),
        decided_at=SENT,
        action=action,  # type: ignore[arg-type]
        decision_id="m1",
        person=REF,
        **values,  # type: ignore[arg-type]
    )


def test_health_supplement_granted_changed_and_ended() -> None:
    """Order § 8 stk. 1: the municipality reports every decision or change of a helbredstillæg."""
    outcome = apply_municipal(person(), decision("grant"))
    assert isinstance(outcome, Applied)
    assert outcome.state.supplements == (
        Supplement("m1", "health_supplement", 101, Decimal(75), date(2024, 1, 1), None),
    )
    outcome = apply_municipal(outcome.state, decision("change", supplement_percentage=Decimal(100)))
    assert isinstance(outcome, Applied)
    assert outcome.state.supplements[0].percentage == Decimal(100)
    outcome = apply_municipal(
        outcome.state, decision("end", supplement_percentage=None, valid_to=date(2024, 6, 30))
    )
    assert isinstance(outcome, Applied)
    (ended,) = outcome.state.supplements
    assert (ended.percentage, ended.valid_to) == (Decimal(100), date(2024, 6, 30))
    assert outcome.state.supplement("health_supplement", date(2024, 7, 1)) is None


def test_rights_based_entitlement_arises() -> None:
    """Order § 8 stk. 2: a rights-based entitlement arising is reported."""
    outcome = apply_municipal(
        person(),
        decision(
            "grant", kind="rights_based", supplement_percentage=None, valid_from=date(2025, 7, 1)
        ),
    )
    assert isinstance(outcome, Applied)
    assert outcome.state.supplement("rights_based", date(2025, 7, 1)) is not None
    assert outcome.state.supplement("rights_based", date(2025, 6, 30)) is None


def test_change_of_an_unknown_decision_is_refused() -> None:
    for action in ("change", "end"):
        extra = {"valid_to": date(2024, 6, 30)} if action == "end" else {}
        outcome = apply_municipal(person(), decision(action, **extra))
        assert isinstance(outcome, Refused)
        assert outcome.reason.startswith("rule.unknown_decision")


def test_granting_the_same_decision_twice_changes_nothing() -> None:
    first = apply_municipal(person(), decision("grant"))
    assert isinstance(first, Applied)
    second = apply_municipal(first.state, decision("grant"))
    assert isinstance(second, Applied)
    assert second.state == first.state


def test_granting_a_different_decision_under_the_same_id_is_refused() -> None:
    first = apply_municipal(person(), decision("grant"))
    assert isinstance(first, Applied)
    outcome = apply_municipal(first.state, decision("grant", supplement_percentage=Decimal(50)))
    assert isinstance(outcome, Refused)
    assert outcome.reason.startswith("rule.decision_exists")


def test_another_municipality_cannot_change_the_decision() -> None:
    first = apply_municipal(person(), decision("grant"))
    assert isinstance(first, Applied)
    outcome = apply_municipal(first.state, decision("change", municipality=851))
    assert isinstance(outcome, Refused)
    assert outcome.reason.startswith("rule.other_municipality")
