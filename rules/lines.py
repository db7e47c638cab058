"""A purchase's figures per line (medicine): what each line is subsidised and what the person pays for it.

The rules compute a purchase on the sum of its lines: the § 146 subsidy is F(S + b) − F(S) on the whole
basis, rounded once (`rules/subsidy.py`), and the supplements are shares of the whole own payment
(`rules/dispensing.py`). A pharmacy charges per line, so each total is apportioned over the lines in
proportion to what it was computed from, in whole øre, by the largest-remainder rule (`apportion`):

1. the subsidy as the scale gave it (the purchase's subsidy less the balancing applied) over the lines'
   saldo bases; under a § 148 grant, which pays every line in full, over their actual prices;
2. the helbredstillæg over each line's own payment within its basis (its basis less its share of 1);
3. the rights-based amount over what the helbredstillæg leaves of that own payment (2's weight less 2);
4. the balancing applied over the shares of 1 of the lines with a saldo basis, the eligible medicines
   (§ 6 balances only at a purchase of those; a line outside § 144/145 has basis 0, also when a § 148
   grant pays it); when those shares are all 0 (an amount paid out at a purchase with no subsidy due),
   over the bases, and when those are 0 too, over the actual prices;
5. a line's subsidy is its share of 1 plus its share of 4; the person pays its actual price less its
   subsidy, helbredstillæg and rights-based amount.

So the lines add up exactly to the purchase's subsidy, balancing applied, helbredstillæg, rights-based
amount and own payment, and a one-line report's line carries the totals as they are. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from rules.money import Ore


class LineCharge(NamedTuple):
    """One line's part of a purchase's figures, in øre; `subsidy` includes `balancing_applied`.

    A tuple rather than a frozen dataclass: built once per line of every report, on the hot path."""

    actual_price: Ore
    subsidy: Ore
    balancing_applied: Ore
    health_supplement: Ore
    rights_based: Ore
    citizen_pays: Ore


def apportion(total: Ore, weights: Sequence[Ore]) -> list[Ore]:
    """Split `total` over lines in proportion to `weights`, in whole øre, summing exactly to `total`.

    Largest remainder: each line first gets ⌊|total| × w / W⌋ (w its weight's magnitude, W their sum);
    the øre still missing go one each to the lines with the largest remainders, the earlier line first
    on a tie; each share takes the sign of `total`. When every weight is 0, the first line gets it all.
    A line with weight 0 gets 0 whenever some weight is not 0.
    """
    if len(weights) == 1:
        return [total]
    magnitudes = [abs(w) for w in weights]
    whole = sum(magnitudes)
    if whole == 0:
        return [total] + [0] * (len(weights) - 1)
    amount = abs(total)
    shares: list[Ore] = []
    remainders: list[int] = []
    for w in magnitudes:
        share, remainder = divmod(amount * w, whole)
        shares.append(share)
        remainders.append(remainder)
    missing = amount - sum(shares)
    if missing:
        ranked = sorted(range(len(shares)), key=lambda i: (-remainders[i], i))
        for i in ranked[:missing]:
            shares[i] += 1
    return shares if total >= 0 else [-s for s in shares]


def line_charges(
    actual: Sequence[Ore],
    basis: Sequence[Ore],
    *,
    terminal: bool,
    subsidy: Ore,
    balancing_applied: Ore,
    health_supplement: Ore,
    rights_based: Ore,
) -> list[LineCharge]:
    """A purchase's totals apportioned over its lines by steps 1-5 of this module.

    Args:
        actual: each line's actual price, in the report's order.
        basis: each line's saldo basis (0 for a line without subsidy), in the same order.
        terminal: the purchase was paid in full under a § 148 grant.
        subsidy: the subsidy granted on the purchase, balancing included.
        balancing_applied: the balancing amounts applied at the purchase (+ paid, − deducted).
        health_supplement: the purchase's helbredstillæg.
        rights_based: the purchase's rights-based amount.

    Returns:
        One `LineCharge` per line, in the report's order; their fields sum to the totals, and the
        person pays sum(actual) − subsidy − health_supplement − rights_based.
    """
    if len(actual) == 1:
        own_payment = actual[0] - subsidy - health_supplement - rights_based
        return [
            LineCharge(
                actual[0], subsidy, balancing_applied, health_supplement, rights_based, own_payment
            )
        ]
    n = len(actual)
    scale = apportion(subsidy - balancing_applied, actual if terminal else basis)
    own = [0] * n if terminal else [b - s for b, s in zip(basis, scale, strict=True)]
    health = apportion(health_supplement, own) if health_supplement else [0] * n
    if rights_based:
        rights = apportion(rights_based, [o - h for o, h in zip(own, health, strict=True)])
    else:
        rights = [0] * n
    if balancing_applied:
        eligible = [s if b else 0 for s, b in zip(scale, basis, strict=True)]
        weights = eligible if any(eligible) else basis if any(basis) else actual
        balancing = apportion(balancing_applied, weights)
    else:
        balancing = [0] * n
    charges = []
    for i in range(n):
        granted = scale[i] + balancing[i]
        pays = actual[i] - granted - health[i] - rights[i]
        charges.append(LineCharge(actual[i], granted, balancing[i], health[i], rights[i], pays))
    return charges
