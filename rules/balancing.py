"""Balancing (udligning) of too much or too little subsidy at the next purchase: order § 6.

An amount owed to the person is paid in full; an amount owed by the person is deducted only up to the
subsidy due on the purchase, the rest carries to later purchases (stk. 2); the hardship deferral of
stk. 3 skips the deduction once. Balancing never changes the saldo.

All of it happens only at a purchase of an eligible medicine ("køb af tilskudsberettigede lægemidler",
stk. 1 and 3: general subsidy or a § 145 grant; spec/ctr.md § 6): a purchase with no eligible line pays
nothing out, deducts nothing and leaves the stk. 3 skip for the next eligible purchase. An amount keeps
the period where it arose (`Balance.arose_in_period`, § 7 stk. 3), also when it is settled in a later
period.
"""

from __future__ import annotations

from dataclasses import replace

from rules.money import Ore
from rules.state import Balance


def settle_at_purchase(
    balances: tuple[Balance, ...], entitled: Ore, *, eligible: bool = True
) -> tuple[Ore, tuple[Balance, ...]]:
    """Apply open balances to a purchase whose due subsidy on its eligible medicines is `entitled`.

    Args:
        eligible: the purchase has a line of an eligible medicine; when not, nothing is applied and
            the balances are returned as they are (the stk. 3 skip included).

    Returns:
        The amount applied (+ paid to the person, − deducted) and the balances still open afterwards,
        with any hardship deferral used up.
    """
    if not eligible:
        return 0, balances
    skip_deductions = any(b.skip_once and b.remaining < 0 for b in balances)
    applied = 0
    room = max(entitled, 0)
    after: list[Balance] = []
    for b in balances:
        if b.remaining > 0:
            applied += b.remaining
            after.append(replace(b, remaining=0))
        elif b.remaining < 0 and not skip_deductions:
            take = min(-b.remaining, room)
            room -= take
            applied -= take
            after.append(replace(b, remaining=b.remaining + take))
        else:
            after.append(replace(b, skip_once=False))
    return applied, tuple(after)


def repay(balances: tuple[Balance, ...], amount: Ore) -> tuple[Ore, tuple[Balance, ...]]:
    """A voluntary repayment (§ 6 stk. 2, 2nd sentence) settles what the person owes, oldest first.

    Returns:
        The part of `amount` not needed (more than was owed) and the balances afterwards.
    """
    left = amount
    after: list[Balance] = []
    for b in balances:
        if b.remaining < 0 and left > 0:
            take = min(-b.remaining, left)
            left -= take
            after.append(replace(b, remaining=b.remaining + take))
        else:
            after.append(b)
    return left, tuple(after)


def open_total(balances: tuple[Balance, ...]) -> Ore:
    """What the open balancing amounts add up to (+ owed to the person, − owed by the person)."""
    if not balances:  # the usual purchase: no generator to start
        return 0
    return sum(b.remaining for b in balances)
