"""`ctr.subsidy-scales.v1` (compacted, keyed by effective_from): a new § 146 scale loaded by the agency."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from rules.scales import Scale
from schemas.common import MessageId, Ore, PlainText, WireModel


class SubsidyScale(WireModel):
    schema_version: Literal[1] = 1
    message_id: MessageId
    effective_from: date
    valid_to: date | None = None
    t1: Ore = Field(gt=0)
    t2: Ore = Field(gt=0)
    t3: Ore = Field(gt=0)
    t4: Ore | None = Field(default=None, gt=0, description="adult 100% edge")
    t4_child: Ore | None = Field(default=None, gt=0, description="child 100% edge")
    own_payment_cap: Ore | None = Field(default=None, gt=0)
    source: PlainText = Field(min_length=1, max_length=500)

    def to_scale(self) -> Scale:
        return Scale(
            self.effective_from,
            self.valid_to,
            self.t1,
            self.t2,
            self.t3,
            self.t4,
            self.t4_child,
            self.own_payment_cap,
            self.source,
        )
