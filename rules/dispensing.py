"""Applying one dispensing report (sale or return) to a person: § 146 subsidy, supplements, § 6, deferral.

Called once per report, in the person's offset order. Pure: the caller supplies the scales, the original
sale of a return, and the local date; the result says what to register and what to tell the pharmacy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from rules.balancing import open_total, settle_at_purchase
from rules.deferral import agreement_for, in_subsidy_year
from rules.history import Placement
from rules.money import Ore
from rules.outcomes import (
    Applied,
    AppliedBalance,
    Parked,
    PurchaseRecord,
    PurchaseResult,
    Refused,
)
from rules.periods import is_under18, period_end
from rules.scales import Scale, scale_for
from rules.state import Balance, Period, PersonState, Supplement
from rules.subsidy import entitlement, share_of
from schemas.dispensing import DispensingLine, DispensingReport

HEALTH_SUPPLEMENT_SHARE = Decimal(85)
"""Helbredstillæg covers 85 % × the supplement percentage of the own payment (spec/ctr.md § 5)."""


@dataclass(frozen=True, slots=True)
class RulesConfig:
    """The DECISION knobs of spec/ctr.md, in one place."""

    rights_based_coverage: Decimal = Decimal(100)


@dataclass(
    slots=True
)  # not frozen: built once per report, and a frozen __init__ costs twice as much
class _Priced:
    """A report's lines reduced to what the scale needs: saldo basis and the amounts beside it."""

    any_subsidised: bool
    basis: Ore  # adds to the saldo and is subsidised on the scale
    actual: Ore  # everything the pharmacy charged
    terminal_cover: Ore  # 100 % under a § 148 grant
    above_basis: Ore  # what the citizen pays in full whatever the scale says
    line_basis: tuple[Ore, ...]  # each line's part of `basis`, in the report's order


def price_lines(state: PersonState, lines: list[DispensingLine], day: date) -> _Priced:
    """Split a report's lines into the saldo basis and the rest (spec/ctr.md § 2 "Basis", § 4)."""
    grants = bool(state.grants)
    terminal = grants and state.grant("s148_terminal", day) is not None
    basis = actual = above = 0
    any_subsidised = False
    line_basis: list[Ore] = []
    for line in lines:
        actual += line.actual_price
        increased = grants and state.grant("s151_increased", day, line.drug_id) is not None
        single = grants and state.grant("s145_single", day, line.drug_id) is not None
        # § 151 changes only the basis of an eligible line (§ 144 or § 145); it never makes one eligible
        if not (line.generally_reimbursed or single):
            above += line.actual_price
            line_basis.append(0)
            continue
        any_subsidised = True
        if increased:
            basis_of_line = line.actual_price
        elif line.actual_price >= 0:
            basis_of_line = min(line.reimbursement_price, line.actual_price)
        else:
            basis_of_line = max(line.reimbursement_price, line.actual_price)
        line_basis.append(basis_of_line)
        basis += basis_of_line
        above += line.actual_price - basis_of_line
    terminal_cover = actual if terminal else 0
    return _Priced(any_subsidised, basis, actual, terminal_cover, above, tuple(line_basis))


def _open_period(state: PersonState, day: date) -> Period:
    """The period the purchase on `day` falls in: the current one, or a new one with saldo 0 (§ 3)."""
    current = state.period
    if current is not None and current.covers(day):
        return current
    return Period(
        start=day,
        end=period_end(day),
        saldo=0,
        under18=is_under18(state.birth_date, day),
        previous_end=current.end if current is not None else None,
    )


def is_late(state: PersonState, report: DispensingReport, day: date) -> bool:
    """Whether a sale was paid before the person's current period began or before a purchase already
    registered in it: then it is placed by its payment date (`rules.history`), not on the saldo as it
    stands (spec/ctr.md § 7)."""
    period = state.period
    if period is None or report.kind == "return":
        return False
    if day < period.start:
        return True
    latest = period.last_paid_at
    return latest is not None and report.paid_at_utc < latest


def apply_dispensing(
    state: PersonState,
    report: DispensingReport,
    day: date,
    scales: Iterable[Scale],
    config: RulesConfig,
    original: PurchaseRecord | None = None,
    *,
    placement: Placement | None = None,
    sale_period: Period | None = None,
    earlier_returns: Sequence[PurchaseRecord] = (),
) -> Applied | Parked | Refused:
    """Apply a sale or a return on `day` (the Danish local date of payment or invoicing).

    Args:
        original: a return's sale.
        placement: a late sale's period, saldo and subsidy as `rules.history.place_sale` placed it
            (`state` is then the state after that placement). A late sale settles no balancing
            amount: those wait for the person's next purchase (§ 6 stk. 1).
        sale_period: a return's sale's period when it is an earlier one (the current one is the
            state's).
        earlier_returns: the sale's returns registered before this one.

    Returns:
        `Applied` with the new state and the purchase result; `Parked` when no scale is in force on the
        day; `Refused` when the report contradicts the register (a return of an unknown sale, …).
    """
    if placement is None and is_late(state, report, day):
        raise ValueError("a late sale is placed by rules.history.place_sale before it is applied")
    if report.kind == "return":
        return _apply_return(
            state, report, day, scales, original, config, sale_period, earlier_returns
        )
    priced = price_lines(state, report.lines, day)
    entitled = 0
    if placement is not None:
        period: Period | None = placement.period
        saldo_before = placement.saldo_before
        entitled = placement.entitled
        saldo_after = saldo_before + priced.basis
    else:
        period = state.period if state.period is not None and state.period.covers(day) else None
        saldo_before = period.saldo if period is not None else 0
        if priced.any_subsidised:
            scale = scale_for(day, scales)
            if scale is None:
                return Parked(
                    "rule.unknown_scale: no subsidy scale in force on " + day.isoformat(), day
                )
            period = _open_period(state, day)
            saldo_before = period.saldo
            entitled = entitlement(period.saldo, priced.basis, scale, period.under18)
            latest = period.last_paid_at
            paid_at = report.paid_at_utc  # the same instant; UTC times compare without offsets
            period = Period(
                period.start,
                period.end,
                period.saldo + priced.basis,
                period.under18,
                period.previous_end,
                paid_at if latest is None or paid_at > latest else latest,
            )
        saldo_after = None
    if priced.terminal_cover:
        entitled = priced.terminal_cover
    own_on_basis = 0 if priced.terminal_cover else priced.basis - entitled
    health, rights, health_by, rights_by = _supplements(state, day, max(own_on_basis, 0), config)
    applied, balances = 0, state.balances
    parts: tuple[AppliedBalance, ...] = ()
    if state.balances and placement is None:
        room = _balancing_room(
            state, report.lines, day, entitled, terminal=bool(priced.terminal_cover)
        )
        applied, balances = settle_at_purchase(state.balances, room or 0, eligible=room is not None)
        parts = _applied_parts(state.balances, balances)
    subsidy = entitled + applied
    citizen_pays = priced.actual - subsidy - health - rights
    agreement = None
    if report.under_deferral:
        agreement, this_year = agreement_for(state, day, period)
        if agreement is None:
            return Refused(
                "rule.no_deferral_agreement: under_deferral without an agreement in force"
            )
        if not this_year:
            return Refused(
                "rule.no_deferral_agreement: the agreement in force belongs to another subsidy year"
            )
    deferred = max(0, citizen_pays - priced.above_basis) if agreement is not None else 0
    agreements = state.agreements
    if agreement is not None:
        grown = replace(agreement, deferred_total=agreement.deferred_total + deferred)
        agreements = tuple(grown if a is agreement else a for a in agreements)
    deviation = 0
    if report.granted_subsidy is not None:
        deviation = report.granted_subsidy - subsidy
    if deviation:
        balances = (
            *balances,
            Balance(
                balance_id=f"deviation:{report.report_id}",
                amount=-deviation,
                remaining=-deviation,
                arose_on=day,
                arose_in_period=period.start if period is not None else None,
                origin="deviation",
            ),
        )
    current = state.period if placement is not None or period is None else period
    new_state = PersonState(
        state.key,
        state.birth_date,
        current,
        state.grants,
        state.supplements,
        balances,
        agreements,
        state.died_on,
    )
    shown_period = period if period is not None else state.period
    if saldo_after is None:
        saldo_after = shown_period.saldo if shown_period is not None else 0
    return Applied(
        new_state,
        PurchaseResult(
            report_id=report.report_id,
            day=day,
            subsidised=priced.any_subsidised,
            terminal=bool(priced.terminal_cover),
            basis=priced.basis if priced.any_subsidised else 0,
            subsidy_entitled=entitled,
            balancing_applied=applied,
            subsidy=subsidy,
            health_supplement=health,
            rights_based=rights,
            citizen_pays=citizen_pays,
            deferred_to_agreement=deferred,
            citizen_pays_at_counter=citizen_pays - deferred,
            saldo_before=saldo_before,
            saldo_after=saldo_after,
            period=shown_period,
            remaining_balancing=open_total(balances),
            deviation=deviation,
            agreement_id=agreement.agreement_id if agreement is not None else None,
            line_basis=priced.line_basis,
            health_supplement_by=health_by,
            rights_based_by=rights_by,
            balancing_parts=parts,
        ),
    )


def _balancing_room(
    state: PersonState, lines: list[DispensingLine], day: date, entitled: Ore, *, terminal: bool
) -> Ore | None:
    """What § 6 stk. 2 lets a purchase deduct: the subsidy due on its eligible medicines.

    A line is eligible with general subsidy or a § 145 grant (spec/ctr.md § 6, "køb af
    tilskudsberettigede lægemidler"); a § 151 grant never makes it so, and a § 148 grant pays a line
    outside § 144/145 without making it take part (DECISION). Under § 148 the subsidy due on the
    eligible lines is their actual price; otherwise the § 146 subsidy, which only they carry.

    Returns:
        None when no line is eligible: the purchase takes no part in balancing.
    """
    grants = bool(state.grants)
    eligible = [
        ln
        for ln in lines
        if ln.generally_reimbursed
        or (grants and state.grant("s145_single", day, ln.drug_id) is not None)
    ]
    if not eligible:
        return None
    if terminal:
        return max(0, sum(ln.actual_price for ln in eligible))
    return max(0, entitled)


def _applied_parts(
    before: tuple[Balance, ...], after: tuple[Balance, ...]
) -> tuple[AppliedBalance, ...]:
    """What a purchase applied of each open balancing amount (`settle_at_purchase` keeps their order)."""
    return tuple(
        AppliedBalance(b.remaining - a.remaining, b.arose_in_period, b.arose_on, b.origin)
        for b, a in zip(before, after, strict=True)
        if b.remaining != a.remaining
    )


def _apply_return(
    state: PersonState,
    report: DispensingReport,
    day: date,
    scales: Iterable[Scale],
    original: PurchaseRecord | None,
    config: RulesConfig,
    sale_period: Period | None,
    earlier_returns: Sequence[PurchaseRecord],
) -> Applied | Parked | Refused:
    """A return on `day`, reversed with the terms of the sale (spec/ctr.md § 7, DECISION).

    The saldo of the sale's period (the current one or an earlier one) falls by the returned basis; the
    subsidy reversed is F(S − b) − F(S) on that saldo under the scale in force on the sale's day, with
    the grants and supplements of that day (a § 148 sale is reversed at 100 %). Two caps, both counted
    with the sale's earlier returns: no more subsidy is taken back than was granted on the sale, and the
    person never gets back more than they paid for it (balancing aside). Counted per sale, not per
    returned share: a first partial return reversed at the top of the saldo takes back more subsidy
    than its share, and the caps must still leave room for the rest of the sale to come back.
    """
    if original is None or original.status == "cancelled":
        return Refused("rule.return_of_unknown_report")
    current = state.period
    if current is not None and original.period_start == current.start:
        sale_period = current  # the current period as it stands
    sale_day = original.day
    priced = price_lines(state, report.lines, sale_day)
    if -priced.basis > original.basis - original.returned_basis:
        return Refused("rule.return_exceeds_sale")
    if original.period_start is not None and (
        sale_period is None or sale_period.start != original.period_start
    ):
        return Refused("rule.return_outside_known_periods")
    period = sale_period if original.period_start is not None else None
    granted_left = max(0, original.entitled + sum(r.entitled for r in earlier_returns))
    paid_left = max(0, original.paid + sum(r.paid for r in earlier_returns))
    reversal = 0
    if original.terminal:
        reversal = priced.actual
    elif priced.basis and period is not None:
        scale = scale_for(sale_day, scales)
        if scale is None:
            return Parked(
                "rule.unknown_scale: no subsidy scale in force on " + sale_day.isoformat(),
                sale_day,
            )
        reversal = max(
            entitlement(period.saldo, priced.basis, scale, period.under18), -granted_left
        )
    if period is not None and priced.basis:
        period = replace(period, saldo=period.saldo + priced.basis)
    own = 0 if original.terminal else priced.basis - reversal
    health, rights, health_by, rights_by = _supplements(state, sale_day, min(own, 0), config)
    refund = priced.actual - reversal - health - rights
    if not original.terminal and refund < -paid_left:  # never back more than was paid for it
        refund = -paid_left
        reversal = max(priced.actual - refund - health - rights, -granted_left)
        health = priced.actual - refund - reversal - rights
    # own payment that went to a deferral agreement comes off the agreement, not back in cash
    agreements = state.agreements
    undeferred = 0
    agreement = None
    if original.deferred:  # the agreement the sale deferred to: in force that day, of its year
        agreement = next(
            (
                a
                for a in agreements
                if not a.settled
                and a.active_on(original.day)
                and in_subsidy_year(a, period, state.period)
            ),
            None,
        )
    if agreement is not None:
        undeferred = min(original.deferred, max(0, -(own - health - rights)))
        less = replace(agreement, deferred_total=agreement.deferred_total - undeferred)
        agreements = tuple(less if a is agreement else a for a in agreements)
    current = state.period
    if period is not None and current is not None and period.start == current.start:
        current = period
    return Applied(
        replace(state, period=current, agreements=agreements),
        PurchaseResult(
            report_id=report.report_id,
            day=day,
            subsidised=priced.any_subsidised,
            terminal=original.terminal,
            basis=priced.basis,
            subsidy_entitled=reversal,
            balancing_applied=0,
            subsidy=reversal,
            health_supplement=health,
            rights_based=rights,
            citizen_pays=refund,
            deferred_to_agreement=-undeferred,
            citizen_pays_at_counter=refund + undeferred,
            saldo_before=sale_period.saldo if sale_period is not None else 0,
            saldo_after=period.saldo if period is not None else 0,
            period=period if period is not None else state.period,
            remaining_balancing=open_total(state.balances),
            deviation=0,
            agreement_id=agreement.agreement_id if agreement is not None else None,
            line_basis=priced.line_basis,
            health_supplement_by=health_by,
            rights_based_by=rights_by,
        ),
        period if period is not None and period is not current else None,
    )


def _supplements(
    state: PersonState, day: date, own_on_basis: Ore, config: RulesConfig
) -> tuple[Ore, Ore, Supplement | None, Supplement | None]:
    """Helbredstillæg and the rights-based subsidy on the own payment within the basis (spec § 5).

    A negative own payment (a return) reverses them the same way.

    Returns:
        The helbredstillæg and the rights-based amount, and the municipal decision each is billed
        to (None where the amount is 0).
    """
    health = rights = 0
    if own_on_basis == 0 or not state.supplements:
        return 0, 0, None, None
    health_by = rights_by = None
    supplement = state.supplement("health_supplement", day)
    if supplement is not None and supplement.percentage:
        health = share_of(own_on_basis, HEALTH_SUPPLEMENT_SHARE, supplement.percentage)
        health_by = supplement if health else None
    rights_decision = state.supplement("rights_based", day)
    if rights_decision is not None:
        rights = share_of(own_on_basis - health, config.rights_based_coverage)
        rights_by = rights_decision if rights else None
    return health, rights, health_by, rights_by
