"""Individual grants entered, changed and ended by the agency (order § 9; sundhedsloven §§ 145, 148, 151)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from rules.corrections import Recomputed, recompute_from
from rules.dispensing import price_lines
from rules.money import Ore
from rules.outcomes import Applied, Parked, PurchaseRecord, Refused
from rules.scales import Scale
from rules.state import Grant, Period, PersonState
from schemas.dispensing import DispensingLine
from schemas.grants import IndividualGrant


def apply_grant(state: PersonState, message: IndividualGrant) -> Applied | Refused:
    """Enter a new grant, change one (same `grant_id`), or end one (its `valid_to` becomes the last day)."""
    existing = next((g for g in state.grants if g.grant_id == message.grant_id), None)
    others = tuple(g for g in state.grants if g.grant_id != message.grant_id)
    if message.action == "enter" and existing is not None:
        if existing == _grant(message):
            return Applied(state)  # the same grant entered twice: nothing changes
        return Refused("rule.grant_exists: enter of a grant_id already entered; send 'change'")
    if message.action != "enter" and existing is None:
        return Refused(f"rule.unknown_grant: {message.action} of a grant never entered")
    if existing is not None and existing.kind != message.kind:
        return Refused(
            "rule.grant_kind_changed: a grant keeps its kind; end it and enter a new one"
        )
    if message.action == "end" and existing is not None and message.valid_to > existing.valid_to:
        return Refused("rule.end_after_expiry: end date after the grant's valid_to")
    return Applied(replace(state, grants=(*others, _grant(message))))


def _grant(message: IndividualGrant) -> Grant:
    return Grant(
        message.grant_id, message.kind, message.drug_id, message.valid_from, message.valid_to
    )


def recompute_for_grant(
    state: PersonState,
    grant: Grant,
    period: Period,
    chain: tuple[PurchaseRecord, ...],
    lines: Mapping[str, Sequence[DispensingLine]],
    scales: Iterable[Scale],
) -> Recomputed | Parked | None:
    """A grant entered with a start before registered purchases applies to them too (spec § 4).

    Args:
        state: the person with the grant entered (so `price_lines` sees it).
        period: the period the purchases belong to; chain: its purchases in register order.
        lines: the registered lines of each purchase, by report id.

    Each purchase of the period on or after the grant's `valid_from` (up to its `valid_to`) is priced
    again with the grant; from the first one whose basis or terminal cover changes, the period is
    recomputed as a correction recomputes it, and each difference becomes a balancing amount owed to
    the person in the period where it arose. A grant never takes subsidy back: a negative difference
    is dropped (DECISION). None when no purchase changes.
    """
    repriced: dict[str, tuple[Ore, Ore]] = {}
    for record in chain:
        if record.status == "cancelled" or not grant.valid_from <= record.day <= grant.valid_to:
            continue
        bought = lines.get(record.report_id)
        if bought is None:
            continue
        priced = price_lines(state, list(bought), record.day)
        basis = priced.basis if priced.any_subsidised else 0
        cover = priced.terminal_cover
        if basis != record.basis or (cover and cover != record.entitled):
            repriced[record.report_id] = (basis, cover)
    if not repriced:
        return None
    return recompute_from(
        period,
        chain,
        repriced,
        scales,
        balance_id=f"grant:{grant.grant_id}",
        origin=f"grant {grant.grant_id} entered with retroactive effect",
        owed_by_person=False,
    )
