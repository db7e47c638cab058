"""`BatchChanges`: everything one batch will write to the register, gathered before the one transaction;
values only (no SQL): the unit of work and its stores write it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from rules.identity import Alias
from rules.state import Period, PersonState
from sinks.rows import (
    CorrectionRow,
    ParkedRow,
    PersonMergeRow,
    ProcessedRow,
    PurchaseRow,
    ScaleRow,
)


@dataclass(frozen=True, slots=True)
class Merge:
    """Two persons found to be one: `alias.key` (the merged person) becomes an alias of
    `alias.person_key` (the kept one); `record` is what the operator can inspect."""

    alias: Alias
    birth_date: date
    record: PersonMergeRow


@dataclass
class BatchChanges:
    """Filled by the batch driver as it merges each message's effects; written by
    `RegisterUnitOfWork.write`.

    `loaded` keeps each person as read, so only what changed is written. `purchase_updates` holds the
    changed columns of purchases registered before this batch (report id -> column -> value); a purchase
    registered in this batch is changed in `purchases` itself. `removed_periods` are periods of the
    register to delete (a late report moved their start back, a cancellation their opening purchase). `replacing` are processed ids that
    overwrite an earlier outcome (a parked report decided on replay).
    """

    loaded: dict[str, PersonState | None] = field(default_factory=dict)
    persons: dict[str, PersonState] = field(default_factory=dict)
    periods: dict[tuple[str, date], Period] = field(default_factory=dict)
    removed_periods: set[tuple[str, date]] = field(default_factory=set)
    purchases: list[PurchaseRow] = field(default_factory=list)
    purchase_updates: dict[str, dict[str, Any]] = field(default_factory=dict)
    processed: list[ProcessedRow] = field(default_factory=list)
    replacing: list[ProcessedRow] = field(default_factory=list)
    corrections: list[CorrectionRow] = field(default_factory=list)
    scales: list[ScaleRow] = field(default_factory=list)
    parked: list[ParkedRow] = field(default_factory=list)
    settled_by: dict[str, str] = field(default_factory=dict)  # balance_id -> report_id
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    log_ids: dict[str, str] = field(default_factory=dict)  # topic -> the log the offsets belong to
    rows: list[Any] = field(
        default_factory=list
    )  # typed rows of other tables, upserted by their stores
    aliases: list[tuple[Alias, date]] = field(default_factory=list)  # new numbers, with birth dates
    merges: list[Merge] = field(default_factory=list)
    # the obligation ids the batch found in the register (loaded, locked): a row of any other is new
    known_obligations: set[str] = field(default_factory=set)

    def keep(self, state: PersonState) -> None:
        """Record a person's state after an event, with the period it now has."""
        self.persons[state.key] = state
        if state.period is not None:
            self.periods[(state.key, state.period.start)] = state.period
