"""`pharmacy.payments.v1`: a chain's tills announce each subsidised payment as it happens.

Each payment arms an obligation: the pharmacy must report it to the register "immediately" (order § 7
stk. 1). The dispensing report with the same pharmacy and dispensing id fulfils it; a payment whose
report has not come by its due time raises a *missing report* alert (`rules/obligations.py`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from schemas.common import (
    MessageId,
    PersonRef,
    PharmacyNumber,
    PharmacySystemId,
    WireModel,
    person_born_by,
)


class TillPayment(WireModel):
    schema_version: Literal[1] = 1
    message_id: MessageId = Field(description="the payment's own id at the till")
    pharmacy_number: PharmacyNumber
    dispensing_id: PharmacySystemId = Field(description="as its dispensing report will carry it")
    paid_at: AwareDatetime = Field(description="payment or invoicing time (§ 3 stk. 1 nr. 4)")
    person: PersonRef

    _born_by = person_born_by("paid_at", "the day of payment")
