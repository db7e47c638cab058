"""Municipal decisions (order § 8): the health supplement (helbredstillæg) and the rights-based subsidy."""

from __future__ import annotations

from dataclasses import replace

from rules.outcomes import Applied, Refused
from rules.state import PersonState, Supplement
from schemas.municipal import MunicipalDecision


def apply_municipal(state: PersonState, message: MunicipalDecision) -> Applied | Refused:
    """Grant, change or end a decision identified by `decision_id`."""
    existing = next((s for s in state.supplements if s.decision_id == message.decision_id), None)
    others = tuple(s for s in state.supplements if s.decision_id != message.decision_id)
    if message.action == "grant" and existing is not None and existing != _supplement(message):
        return Refused(
            "rule.decision_exists: grant of a decision_id already granted; send 'change'"
        )
    if message.action != "grant" and existing is None:
        return Refused(f"rule.unknown_decision: {message.action} of a decision never granted")
    if existing is not None and existing.municipality_code != message.sender.municipality_code:
        return Refused("rule.other_municipality: the decision belongs to another municipality")
    if existing is not None and existing.kind != message.kind:
        return Refused("rule.decision_kind_changed")
    new = _supplement(message)
    if message.action == "end" and existing is not None:
        new = replace(existing, valid_to=message.valid_to)
    return Applied(replace(state, supplements=(*others, new)))


def _supplement(message: MunicipalDecision) -> Supplement:
    return Supplement(
        decision_id=message.decision_id,
        kind=message.kind,
        municipality_code=message.sender.municipality_code,
        percentage=message.supplement_percentage,
        valid_from=message.valid_from,
        valid_to=message.valid_to,
    )
