"""Corrections of the register: order § 7 stk. 6 (agency) and stk. 7 (person), and § 6 balancing amounts.

A corrected report changes the saldo from that point on; later purchases keep the subsidy they got, and
every difference between what was granted and what is now due becomes a balancing amount in the period
where it arose (§ 7 stk. 3; spec/ctr.md § 7 DECISION). A cancellation may move the period's start and is
replayed by `rules.history.cancel_sale`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date

from rules.balancing import repay
from rules.dispensing import price_lines
from rules.money import Ore
from rules.outcomes import Applied, Parked, PurchaseRecord, Refused
from rules.scales import Scale, scale_for
from rules.state import Balance, Period, PersonState
from rules.subsidy import entitlement
from schemas.corrections import Correction


@dataclass(frozen=True, slots=True)
class Recomputed:
    """A correction's effect on one period: the records as now due, and the period's new saldo."""

    records: tuple[PurchaseRecord, ...]
    period: Period
    new_balances: tuple[Balance, ...]


def apply_balancing(
    state: PersonState, message: Correction, day: date, periods: Iterable[Period] = ()
) -> Applied | Refused:
    """Register a balancing amount, or settle what the person owes with a voluntary repayment.

    The amount keeps the period where it arose (§ 7 stk. 3): the one of `periods` (the person's, the
    current one included) that covers its date, also an earlier one; None when none does.
    """
    assert message.amount is not None
    if message.action == "repayment":
        owed = -sum(b.remaining for b in state.balances if b.remaining < 0)
        if message.amount > owed:
            return Refused("rule.repayment_exceeds_debt")
        _, balances = repay(state.balances, message.amount)
        return Applied(replace(state, balances=balances))
    arose_on = message.arose_on or day
    covering = [p for p in (state.period, *periods) if p is not None and p.covers(arose_on)]
    arose_in = covering[0].start if covering else None
    balance = Balance(
        balance_id=f"agency:{message.message_id}",
        amount=message.amount,
        remaining=message.amount,
        arose_on=arose_on,
        arose_in_period=arose_in,
        origin=f"registered by {message.sender.ordered_by}",
        skip_once=message.hardship_deferral,
    )
    if any(b.balance_id == balance.balance_id for b in state.balances):
        return Applied(state)
    return Applied(replace(state, balances=(*state.balances, balance)))


def recompute_period(
    state: PersonState,
    message: Correction,
    period: Period,
    chain: tuple[PurchaseRecord, ...],
    scales: Iterable[Scale],
) -> Recomputed | Parked | Refused:
    """Correct one report and recompute the period's purchases from it on (a cancellation is
    `rules.history.cancel_sale`).

    Args:
        period: the period the corrected report belongs to (current or earlier).
        chain: every purchase of that period in register order, the corrected one included.
    """
    target = next((r for r in chain if r.report_id == message.report_id), None)
    if target is None:
        return Refused("rule.correction_of_unknown_report")
    if target.status == "cancelled":
        return Refused("rule.report_already_cancelled")
    if message.action != "correct":
        raise ValueError("a cancellation is replayed by rules.history.cancel_sale")
    assert message.lines is not None
    priced = price_lines(state, message.lines, target.day)
    new_basis = priced.basis if priced.any_subsidised else 0
    terminal_cover = priced.terminal_cover
    return recompute_from(
        period,
        chain,
        {target.report_id: (new_basis, terminal_cover)},
        scales,
        balance_id=f"correction:{message.message_id}",
        origin=f"correction ordered by {message.sender.ordered_by}",
        statuses={target.report_id: "corrected"},
    )


def recompute_from(
    period: Period,
    chain: tuple[PurchaseRecord, ...],
    repriced: Mapping[str, tuple[Ore, Ore]],
    scales: Iterable[Scale],
    *,
    balance_id: str,
    origin: str,
    statuses: Mapping[str, str] | None = None,
    owed_by_person: bool = True,
) -> Recomputed | Parked:
    """Recompute a period's purchases from the first repriced one on (corrections, retroactive grants).

    Args:
        repriced: per report id its new (basis, terminal cover); a terminal cover is due in full.
        balance_id: the prefix of each balancing amount's id (the report id is appended).
        statuses: new statuses of repriced reports (corrected, cancelled).
        owed_by_person: False when a difference may only be owed to the person (a grant never takes
            subsidy back); a negative difference is then dropped.

    Purchases before the first repriced one keep what they got; later purchases keep their basis and
    a terminal one its subsidy; every other difference between what is now due and what was granted
    becomes a balancing amount in the period where it arose.
    """
    statuses = statuses or {}
    saldo = 0
    reached = False
    records: list[PurchaseRecord] = []
    balances: list[Balance] = []
    for record in chain:
        if record.status == "cancelled":
            records.append(record)
            continue
        new = repriced.get(record.report_id)
        if new is not None:
            reached = True
        if not reached:
            saldo += record.basis
            records.append(record)
            continue
        basis, terminal_cover = new if new is not None else (record.basis, 0)
        if new is None and record.terminal:
            due = record.entitled
        elif terminal_cover:
            due = terminal_cover
        else:
            scale = scale_for(record.day, scales)
            if scale is None:
                return Parked(
                    "rule.unknown_scale: no scale for " + record.day.isoformat(), record.day
                )
            due = entitlement(saldo, basis, scale, period.under18)
        saldo += basis
        difference = due - record.entitled
        if difference < 0 and not owed_by_person:
            due, difference = record.entitled, 0
        if difference:
            balances.append(
                Balance(
                    balance_id=f"{balance_id}:{record.report_id}",
                    amount=difference,
                    remaining=difference,
                    arose_on=record.day,
                    arose_in_period=period.start,
                    origin=origin,
                )
            )
        records.append(
            replace(
                record,
                basis=basis,
                entitled=due,
                terminal=record.terminal or bool(terminal_cover),
                status=statuses.get(record.report_id, record.status),
            )
        )
    return Recomputed(tuple(records), replace(period, saldo=saldo), tuple(balances))


def apply_recomputed(state: PersonState, result: Recomputed) -> PersonState:
    """The person's state after a recomputation: new balances open, and the saldo if it is the current period."""
    period = state.period
    if period is not None and period.start == result.period.start:
        period = result.period
    return replace(state, period=period, balances=(*state.balances, *result.new_balances))
