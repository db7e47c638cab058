"""Individual grants entered, changed and ended by the agency (order § 9; sundhedsloven §§ 145, 148, 151)."""

from __future__ import annotations

from dataclasses import replace

from rules.outcomes import Applied, Refused
from rules.state import Grant, PersonState
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
