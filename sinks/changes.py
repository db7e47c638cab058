"""`BatchChanges`: everything one batch will write to the register, gathered before the one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from rules.state import Period, PersonState

Row = dict[str, Any]


@dataclass
class BatchChanges:
    """Filled by the processor while it applies a batch; written by `RegisterUnitOfWork.write`.

    `loaded` keeps each person as read, so only what changed is written.
    """

    loaded: dict[str, PersonState | None] = field(default_factory=dict)
    persons: dict[str, PersonState] = field(default_factory=dict)
    periods: dict[tuple[str, date], Period] = field(default_factory=dict)
    purchases: list[Row] = field(default_factory=list)
    purchase_updates: list[Row] = field(default_factory=list)
    processed: list[Row] = field(default_factory=list)
    corrections: list[Row] = field(default_factory=list)
    scales: list[Row] = field(default_factory=list)
    parked: list[Row] = field(default_factory=list)
    settled_by: dict[str, str] = field(default_factory=dict)  # balance_id -> report_id
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)

    def keep(self, state: PersonState) -> None:
        """Record a person's state after an event, with the period it now has."""
        self.persons[state.key] = state
        if state.period is not None:
            self.periods[(state.key, state.period.start)] = state.period
