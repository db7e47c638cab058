"""A snapshot line of an existing register, for going live on top of it (`reghub register import`)."""

from __future__ import annotations

from datetime import date

from pydantic import Field, model_validator

from rules.periods import period_end
from schemas.common import Ore, PersonRef, WireModel


class SnapshotBalance(WireModel):
    amount: Ore = Field(description="+ owed to the person, − owed by the person")
    arose_on: date


class SnapshotPerson(WireModel):
    person: PersonRef
    period_start: date
    period_end: date
    previous_period_end: date | None = None
    saldo: Ore = Field(ge=0)
    under18: bool
    open_balances: list[SnapshotBalance] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> SnapshotPerson:
        if self.period_end != period_end(self.period_start):
            raise ValueError("period_end must be period_start + 1 year − 1 day")
        if self.previous_period_end is not None and self.previous_period_end >= self.period_start:
            raise ValueError("previous_period_end must precede period_start")
        return self
