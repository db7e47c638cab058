"""Deferral agreements (henstandsordning, order § 3 stk. 2 nr. 2, § 7 stk. 4) and their year-end settlement.

The agreement spreads the yearly maximum own payment over equal monthly rates; at the end of the subsidy
year the pharmacy settles the rates paid against the own payment actually deferred.

An agreement belongs to one subsidy year: the first period that ends on or after the day it was entered
(the period in force that day, or, entered in a gap or before any purchase, the period the next
subsidised purchase opens). A purchase in a later period is not deferred into it (`in_subsidy_year`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from rules.money import Ore
from rules.outcomes import Applied, Refused
from rules.state import Agreement, Period, PersonState
from schemas.deferrals import DeferralAgreement


@dataclass(frozen=True, slots=True)
class Settlement:
    """The settlement statement: positive difference is paid out to the citizen with the statement."""

    agreement_id: str
    pharmacy_number: str
    total_own_payment: Ore
    total_rates_paid: Ore

    @property
    def difference_in_citizens_favour(self) -> Ore:
        return self.total_rates_paid - self.total_own_payment


def in_subsidy_year(agreement: Agreement, period: Period | None, current: Period | None) -> bool:
    """Whether `agreement` belongs to the subsidy year `period` (this module's docstring).

    Args:
        period: the period a purchase falls in; None when it falls in none (a purchase with no
            subsidised line in a gap), which counts as the year to come.
        current: the person's current (latest) period before the purchase.
    """
    entered = agreement.entered_on
    if period is None:
        return current is None or entered > current.end
    return entered <= period.end and (period.previous_end is None or entered > period.previous_end)


def agreement_for(
    state: PersonState, day: date, period: Period | None
) -> tuple[Agreement | None, bool]:
    """The agreement in force on `day`, and whether it belongs to the purchase's subsidy year `period`."""
    agreement = state.agreement_on(day)
    if agreement is None:
        return None, False
    return agreement, in_subsidy_year(agreement, period, state.period)


def apply_deferral(
    state: PersonState, message: DeferralAgreement
) -> tuple[Applied, Settlement | None] | Refused:
    """Enter, end or settle an agreement; settling returns the statement."""
    existing = next((a for a in state.agreements if a.agreement_id == message.agreement_id), None)
    others = tuple(a for a in state.agreements if a.agreement_id != message.agreement_id)
    if message.action == "entered":
        if existing is not None:
            return Refused("rule.agreement_exists")
        if any(a.ended_on is None and not a.settled for a in state.agreements):
            return Refused("rule.agreement_already_in_force: end the current agreement first")
        assert message.monthly_rate is not None and message.rates is not None
        new = Agreement(
            message.agreement_id,
            message.pharmacy_number,
            message.date,
            message.monthly_rate,
            message.rates,
        )
        return Applied(replace(state, agreements=(*others, new))), None
    if existing is None:
        return Refused(f"rule.unknown_agreement: {message.action} of an agreement never entered")
    if existing.pharmacy_number != message.pharmacy_number:
        return Refused("rule.other_pharmacy: the agreement is held by another pharmacy")
    if existing.settled:
        return Refused("rule.agreement_settled")
    if message.action == "ended":
        if message.date < existing.entered_on:
            return Refused("rule.end_before_start")
        ended = replace(existing, ended_on=message.date, ended_by_default=message.ended_by_default)
        return Applied(replace(state, agreements=(*others, ended))), None
    rates_paid = existing.rates if message.rates_paid is None else message.rates_paid
    settled = replace(existing, settled=True, ended_on=existing.ended_on or message.date)
    statement = Settlement(
        existing.agreement_id,
        existing.pharmacy_number,
        existing.deferred_total,
        existing.monthly_rate * rates_paid,
    )
    return Applied(replace(state, agreements=(*others, settled))), statement
