"""The needs-based subsidy of sundhedsloven § 146: the cumulative entitlement F(S) and one purchase's share.

The saldo (the period's running sum of reimbursement prices) decides the rate; each rate applies to the
slice of the saldo inside its band, so one purchase may span several bands (spec/ctr.md § 2).
"""

from __future__ import annotations

from decimal import Decimal

from rules.money import Ore, round_half_up
from rules.scales import Scale


def cumulative_entitlement(saldo: Ore, scale: Scale, under18: bool) -> Decimal:
    """F(S): the exact subsidy (in øre, unrounded) due on a saldo built up from zero under `scale`."""
    bands = scale.bands(under18)
    total = Decimal(0)
    for index, (lower, rate) in enumerate(bands):
        if saldo <= lower:
            break
        upper = bands[index + 1][0] if index + 1 < len(bands) else None
        top = saldo if upper is None else min(saldo, upper)
        total += (top - lower) * rate
    return total


def entitlement(saldo: Ore, basis: Ore, scale: Scale, under18: bool) -> Ore:
    """The subsidy due on a purchase with `basis` bought on `saldo`: F(S + b) − F(S), rounded half-up.

    A negative basis (a return) gives the reversal F(S − |b|) − F(S), which is negative (spec § 7).
    """
    after = cumulative_entitlement(saldo + basis, scale, under18)
    return round_half_up(after - cumulative_entitlement(saldo, scale, under18))


def share_of(amount: Ore, *percentages: Decimal) -> Ore:
    """`amount` times each percentage (0-100), rounded half-up to the øre once at the end."""
    exact = Decimal(amount)
    for pct in percentages:
        exact = exact * pct / 100
    return round_half_up(exact)
