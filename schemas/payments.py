"""`pharmacy.payments.v1`: a chain's tills announce each subsidised payment as it happens, and the
pharmacy system each deferral agreement entered or ended (`event`).

A payment arms an obligation: the pharmacy must report it to the register "immediately" (order § 7
stk. 1); the dispensing report with the same pharmacy and dispensing id meets it. A deferral agreement
entered or ended must be reported the same day (§ 7 stk. 4); its message on `ctr.deferrals.v1` meets it.
An announced event not reported by its due time raises a *missing report* alert (`rules/obligations.py`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from schemas.common import (
    EventTime,
    MessageId,
    PersonRef,
    PharmacyNumber,
    PharmacySystemId,
    WireModel,
    person_born_by,
)


class TillPayment(WireModel):
    schema_version: Literal[1] = 1
    message_id: MessageId = Field(description="the announcement's own id")
    event: Literal["payment", "deferral_entered", "deferral_ended"] = "payment"
    pharmacy_number: PharmacyNumber
    dispensing_id: PharmacySystemId | None = Field(
        default=None, description="payment: as its dispensing report will carry it"
    )
    agreement_id: MessageId | None = Field(
        default=None, description="deferral_entered/ended: the agreement"
    )
    paid_at: EventTime = Field(
        description="payment or invoicing time (§ 3 stk. 1 nr. 4); for a deferral agreement, when it "
        "was entered or ended"
    )
    person: PersonRef

    _born_by = person_born_by("paid_at", "the day of payment")

    @model_validator(mode="after")
    def _check(self) -> TillPayment:
        if self.event == "payment" and (self.dispensing_id is None or self.agreement_id):
            raise ValueError("a payment names its dispensing_id and no agreement_id")
        if self.event != "payment" and (self.agreement_id is None or self.dispensing_id):
            raise ValueError(f"{self.event} names its agreement_id and no dispensing_id")
        return self
