"""`ctr.corrections.v1`: corrections of the register ordered by the agency or asked for by the person.

A correction or cancellation of an earlier dispensing report (order § 7 stk. 6: the agency orders it;
stk. 7: the person asks for it), a balancing amount (udligningsbeløb, § 6) registered by the agency, and
a person's voluntary full repayment of what they owe (§ 6 stk. 2, 2nd sentence).
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, model_validator

from schemas.common import (
    EventTime,
    MessageId,
    Ore,
    PersonRef,
    PlainText,
    WireModel,
    person_born_by,
)
from schemas.dispensing import DispensingLine


class CorrectionSender(WireModel):
    ordered_by: Literal["agency", "person"] = Field(
        description="§ 7 stk. 6 (agency) or stk. 7 (person)"
    )
    reported_by: PlainText = Field(
        min_length=1, max_length=64, description="agency user or pharmacy number"
    )


class Correction(WireModel):
    schema_version: Literal[1] = 1
    message_id: MessageId
    sent_at: EventTime
    sender: CorrectionSender
    action: Literal["correct", "cancel", "balancing", "repayment"]
    report_id: MessageId | None = Field(
        default=None, description="the report corrected or cancelled"
    )
    lines: list[DispensingLine] | None = Field(default=None, description="corrected lines")
    amount: Ore | None = Field(
        default=None,
        description="balancing: + owed to the person, - owed by the person; repayment: > 0",
    )
    hardship_deferral: bool = Field(
        default=False, description="§ 6 stk. 3: skip the deduction once"
    )
    arose_on: date | None = Field(default=None, description="balancing: when it arose (its period)")
    person: PersonRef

    _born_by = person_born_by("sent_at", "the day it was sent")

    @model_validator(mode="after")
    def _check(self) -> Correction:
        if self.action in ("correct", "cancel") and self.report_id is None:
            raise ValueError(f"{self.action} needs report_id")
        if self.action == "correct" and not self.lines:
            raise ValueError("correct needs the corrected lines")
        if self.action != "correct" and self.lines is not None:
            raise ValueError("lines belong to 'correct'")
        if self.lines and any(
            ln.reimbursement_price < 0 or ln.actual_price < 0 for ln in self.lines
        ):
            raise ValueError("corrected lines carry no negative amounts")
        if self.action == "balancing" and not self.amount:
            raise ValueError("balancing needs a non-zero amount")
        if self.action == "repayment" and (self.amount is None or self.amount <= 0):
            raise ValueError("repayment needs a positive amount")
        if self.hardship_deferral and not (
            self.action == "balancing" and self.amount is not None and self.amount < 0
        ):
            raise ValueError("hardship_deferral applies to an amount owed by the person")
        return self
