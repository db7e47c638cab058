"""`ctr.deferrals.v1`: a pharmacy reports a deferral (henstand) agreement entered, ended or settled.

Entering and ending are due the same day, 24:00 Europe/Copenhagen (order § 7 stk. 4). The agreement
spreads the person's yearly maximum own payment over equal monthly rates; `settle` asks the register for
the year-end settlement statement against the rates paid.
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
    PharmacyNumber,
    WireModel,
    person_born_by,
)


class DeferralAgreement(WireModel):
    schema_version: Literal[1] = 1
    message_id: MessageId
    sent_at: EventTime
    pharmacy_number: PharmacyNumber
    action: Literal["entered", "ended", "settle"]
    agreement_id: MessageId
    date: date
    monthly_rate: Ore | None = Field(default=None, ge=1, description="øre per month; on 'entered'")
    rates: int | None = Field(
        default=None, ge=1, le=12, description="number of rates; on 'entered'"
    )
    rates_paid: int | None = Field(
        default=None, ge=0, le=12, description="on 'settle'; default all"
    )
    ended_by_default: bool = False
    person: PersonRef

    _born_by = person_born_by("sent_at", "the day it was sent")

    @model_validator(mode="after")
    def _check(self) -> DeferralAgreement:
        if self.action == "entered" and (self.monthly_rate is None or self.rates is None):
            raise ValueError("an agreement entered needs monthly_rate and rates")
        if self.action != "entered" and (self.monthly_rate is not None or self.rates is not None):
            raise ValueError("monthly_rate and rates belong to 'entered'")
        if self.ended_by_default and self.action != "ended":
            raise ValueError("ended_by_default belongs to 'ended'")
        return self
