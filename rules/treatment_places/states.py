"""The states of a treatment place and the moves between them (spec/treatment-places.md § 4).

`SOR_ONLY` → `REGISTERED` (once its treatment-place information is there) → `DEREGISTERED` (may
re-register) or `CLOSED_IN_SOR` (cannot be reopened: register anew). `NOTIFIED` for an exempt place;
it registers when it becomes liable. A place is registered only once the information has been added
(seed: "Et behandlingssted er først registreret, når behandlingsstedsoplysningerne er tilføjet").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Literal

State = Literal["SOR_ONLY", "REGISTERED", "DEREGISTERED", "CLOSED_IN_SOR", "NOTIFIED"]

DEREGISTRATION_DEADLINE = timedelta(days=14)
"""A place deregisters no later than 2 weeks after treatment stopped (spec § 4)."""

_MOVES: dict[str, dict[State | None, State]] = {
    "unit_added": {None: "SOR_ONLY", "NOTIFIED": "NOTIFIED"},
    "unit_changed": {
        "SOR_ONLY": "SOR_ONLY",
        "REGISTERED": "REGISTERED",
        "DEREGISTERED": "DEREGISTERED",
        "NOTIFIED": "NOTIFIED",
    },
    "unit_closed": {
        "SOR_ONLY": "CLOSED_IN_SOR",
        "REGISTERED": "CLOSED_IN_SOR",
        "DEREGISTERED": "CLOSED_IN_SOR",
        "NOTIFIED": "CLOSED_IN_SOR",
    },
    "information_added": {"SOR_ONLY": "REGISTERED", "NOTIFIED": "REGISTERED"},
    "information_changed": {"REGISTERED": "REGISTERED"},
    "deregistered": {"REGISTERED": "DEREGISTERED"},
    "reregistered": {"DEREGISTERED": "REGISTERED"},
    "exempt_place_notified": {None: "NOTIFIED", "SOR_ONLY": "NOTIFIED", "NOTIFIED": "NOTIFIED"},
}

_REFUSAL: dict[tuple[str, State | None], str] = {
    ("unit_added", "SOR_ONLY"): "rule.unit_already_in_sor",
    ("unit_added", "REGISTERED"): "rule.unit_already_in_sor",
    ("unit_added", "DEREGISTERED"): "rule.unit_already_in_sor",
    ("information_added", "REGISTERED"): "rule.already_registered_send_a_change",
    ("information_added", "DEREGISTERED"): "rule.deregistered_place_must_reregister",
    ("information_changed", "SOR_ONLY"): "rule.not_registered_add_information_first",
    ("information_changed", "NOTIFIED"): "rule.not_registered_add_information_first",
    ("information_changed", "DEREGISTERED"): "rule.deregistered_place_must_reregister",
    ("deregistered", "DEREGISTERED"): "rule.already_deregistered",
    ("reregistered", "REGISTERED"): "rule.already_registered",
    ("exempt_place_notified", "REGISTERED"): "rule.registered_place_cannot_notify",
    ("exempt_place_notified", "DEREGISTERED"): "rule.registered_place_cannot_notify",
}


def move(event: str, current: State | None) -> State | str:
    """The place's state after `event`, or a `rule.*` reason why the event cannot happen now.

    Args:
        current: the place's state (None: a unit the register does not know).
    """
    if current == "CLOSED_IN_SOR":
        return "rule.closed_in_sor_register_anew"
    moves = _MOVES[event]
    if current in moves:
        return moves[current]
    if (event, current) in _REFUSAL:
        return _REFUSAL[(event, current)]
    return "rule.unknown_unit" if current is None else "rule.not_registered"


def is_registered(state: State | None) -> bool:
    return state == "REGISTERED"


def deregistration_days_late(treatment_stopped_on: date, deregistered_on: date) -> int:
    """Days a deregistration came after its deadline (0 when on time)."""
    return max(0, (deregistered_on - (treatment_stopped_on + DEREGISTRATION_DEADLINE)).days)


def treatment_days_before_registration(
    treatment_starts_on: date | None, registered_on: date | None, today: date
) -> int:
    """Days a unit treated without being registered, as of `today` (0 when it did not): it registers
    before treatment starts (RBT § 1 stk. 3). DECISION: a registration on the start day itself is not
    late; a place still unregistered is late from the day after its start, by the days since it."""
    if treatment_starts_on is None:
        return 0
    until = registered_on if registered_on is not None else today
    return max(0, (until - treatment_starts_on).days)


def registered_in_year(history: Sequence[tuple[str, date]], year: int) -> bool:
    """Whether a place was registered at any time in `year`, from its states in order (state, since):
    the fee is owed for every such year, and a place deregistered for a whole calendar year owes
    nothing for it (spec § 4, § 6)."""
    for i, (state, since) in enumerate(history):
        if state != "REGISTERED":
            continue
        until = history[i + 1][1] if i + 1 < len(history) else None
        if since.year <= year and (until is None or until.year >= year):
            return True
    return False
