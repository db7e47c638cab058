"""The needs-based subsidy of sundhedsloven § 146: the cumulative entitlement F(S) and one purchase's share.

The saldo (the period's running sum of reimbursement prices) decides the rate; each rate applies to the
slice of the saldo inside its band, so one purchase may span several bands (spec/ctr.md § 2).
"""

from __future__ import annotations

from decimal import Decimal

from rules.money import Ore, round_half_up, round_hundredths_half_up
from rules.scales import Scale


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
