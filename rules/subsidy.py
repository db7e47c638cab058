"""The needs-based subsidy of sundhedsloven § 146: the cumulative entitlement F(S) and one purchase's share.

The saldo (the period's running sum of reimbursement prices) decides the rate; each rate applies to the
slice of the saldo inside its band, so one purchase may span several bands (spec/ctr.md § 2).
"""

from __future__ import annotations

import itertools
from decimal import Decimal

from rules.money import Ore, round_half_up, round_hundredths_half_up
from rules.scales import CAP_TOLERANCE_ORE, Scale


def _cumulative_percent(saldo: Ore, scale: Scale, under18: bool) -> int:
    """F(S) in øre × percent: exact in integers, since every rate is a whole percentage."""
    total = 0
    for lower, upper, pct in scale.bands(under18):
        if saldo <= lower:
            break
        top = saldo if upper is None or saldo < upper else upper
        total += (top - lower) * pct
    return total


def cumulative_entitlement(saldo: Ore, scale: Scale, under18: bool) -> Decimal:
    """F(S): the exact subsidy (in øre, unrounded) due on a saldo built up from zero under `scale`."""
    return Decimal(_cumulative_percent(saldo, scale, under18)) / 100


def entitlement(saldo: Ore, basis: Ore, scale: Scale, under18: bool) -> Ore:
    """The subsidy due on a purchase with `basis` bought on `saldo`: F(S + b) − F(S), rounded half-up.

    A negative basis (a return) gives the reversal F(S − |b|) − F(S), which is negative (spec § 7).
    """
    exact = _cumulative_percent(saldo + basis, scale, under18) - _cumulative_percent(
        saldo, scale, under18
    )
    return round_hundredths_half_up(exact)


def share_of(amount: Ore, *percentages: Decimal) -> Ore:
    """`amount` times each percentage (0-100), rounded half-up to the øre once at the end."""
    exact = Decimal(amount)
    for pct in percentages:
        exact = exact * pct / 100
    return round_half_up(exact)


def scale_problems(scale: Scale) -> list[str]:
    """Why a scale may not take effect; empty when it may.

    Checks that the band edges increase and that the own payment at T4 (adults) and at T4c (children)
    equals the stated cap within 0.10 kr.
    """
    problems: list[str] = []
    if scale.valid_to is not None and scale.valid_to < scale.effective_from:
        problems.append("scale.valid_to_before_effective_from")
    edges = [scale.t1, scale.t2, scale.t3] + ([scale.t4] if scale.t4 is not None else [])
    if any(e <= 0 for e in edges) or any(a >= b for a, b in itertools.pairwise(edges)):
        problems.append("scale.bands_not_increasing")
        return problems
    if scale.t4_child is not None and scale.t4_child <= scale.t3:
        problems.append("scale.child_top_not_above_t3")
        return problems
    if scale.own_payment_cap is not None:
        for under18, top in ((False, scale.t4), (True, scale.t4_child)):
            if top is None:
                continue
            own = Decimal(top) - cumulative_entitlement(top, scale, under18)
            if abs(own - scale.own_payment_cap) > CAP_TOLERANCE_ORE:
                who = "child" if under18 else "adult"
                problems.append(
                    f"scale.cap_mismatch: {who} own payment at the 100% edge is "
                    f"{own / 100:.2f} kr, stated cap {scale.own_payment_cap / 100:.2f} kr"
                )
    return problems
