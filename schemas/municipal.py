"""`ctr.municipal-grants.v1`: a municipality's health-supplement and rights-based decisions (order § 8).

Health supplement (helbredstillæg) with its supplement percentage, and the rights-based subsidy to own
payment (lov om aktiv socialpolitik § 82 b) arising or lapsing; both carry the decision time, from which
the "immediately" deadline runs.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from rules.identifiers import DANISH_MUNICIPALITY_CODES
from schemas.common import EventTime, MessageId, PersonRef, PlainText, WireModel, person_born_by


def _known_municipality(code: int) -> int:
    if code not in DANISH_MUNICIPALITY_CODES:
        raise ValueError("unknown municipality code (kommunekode)")
    return code


MunicipalityCode = Annotated[int, AfterValidator(_known_municipality)]


RIGHTS_BASED_FROM = date(2025, 7, 1)
"""Lov om aktiv socialpolitik § 82 b, rights-based subsidy to own payment, in force from this day."""


class MunicipalSender(WireModel):
    municipality_code: MunicipalityCode
    user: PlainText = Field(min_length=1, max_length=64)


class MunicipalDecision(WireModel):
    """One decision: grant/change/end a supplement, or an entitlement arising/lapsing."""

    schema_version: Literal[1] = 1
    message_id: MessageId
    sender: MunicipalSender
    decided_at: EventTime
    kind: Literal["health_supplement", "rights_based"]
    action: Literal["grant", "change", "end"]
    decision_id: MessageId
    supplement_percentage: Decimal | None = Field(
        default=None, description="tillægsprocent 0-100, health supplement only"
    )
    valid_from: date
    valid_to: date | None = None
    person: PersonRef

    _born_by = person_born_by("decided_at", "the day of the decision")

    @model_validator(mode="after")
    def _check(self) -> MunicipalDecision:
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError("valid_to precedes valid_from")
        if self.kind == "health_supplement":
            if self.supplement_percentage is None and self.action != "end":
                raise ValueError("a health supplement needs supplement_percentage")
            pct = self.supplement_percentage
            if pct is not None and not (Decimal(0) <= pct <= Decimal(100)):
                raise ValueError("supplement_percentage outside 0-100")
        elif self.supplement_percentage is not None:
            raise ValueError("supplement_percentage is only for a health supplement")
        elif self.valid_from < RIGHTS_BASED_FROM:
            raise ValueError("the rights-based subsidy (§ 82 b) exists from 1 July 2025")
        if self.action == "end" and self.valid_to is None:
            raise ValueError("ending a decision needs valid_to (the last day)")
        return self
