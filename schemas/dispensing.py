"""`ctr.dispensings.v1`: a pharmacy's report of a dispensing (sale or return), keyed by person key.

The fields are those of BEK 764/2025 § 3 stk. 1 nr. 1-5, 8 and 9, which § 7 stk. 1 says the pharmacy
reports immediately after payment (or invoicing, when that comes first). A person who opts out
(§ 7 stk. 2) is simply not reported: there is no message for it, and the hub never infers a purchase.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from rules.deadlines import COPENHAGEN, danish_date
from schemas.common import (
    DrugId,
    EventTime,
    MessageId,
    Ore,
    PersonRef,
    PharmacyNumber,
    PharmacySystemId,
    PNumber,
    WireModel,
    once,
)


class DispensingLine(WireModel):
    """One medicine in the dispensing: its reimbursement price (tilskudspris) and actual price, in øre."""

    drug_id: DrugId
    reimbursement_price: Ore = Field(description="tilskudspris in øre; negative on a return")
    actual_price: Ore = Field(description="the price charged in øre; negative on a return")
    generally_reimbursed: bool = True


class DispensingReport(WireModel):
    """A dispensing report; `report_id` makes redelivery harmless (it is counted once)."""

    schema_version: Literal[1] = 1
    report_id: MessageId
    kind: Literal["sale", "return"] = "sale"
    return_of: MessageId | None = Field(default=None, description="report id of the sale returned")
    pharmacy_number: PharmacyNumber | None = Field(
        default=None, description="the pharmacy number and/or the site's P-number (at least one)"
    )
    pharmacy_site_p_number: PNumber | None = Field(
        default=None, description="the site's P-number and/or the pharmacy number (at least one)"
    )
    dispensing_id: PharmacySystemId
    ordination_id: PharmacySystemId
    paid_or_invoiced_at: EventTime = Field(
        description="time of payment, or of invoicing when that came first (§ 3 stk. 1 nr. 4)"
    )
    person: PersonRef
    lines: list[DispensingLine] = Field(min_length=1, max_length=100)
    granted_subsidy: Ore | None = Field(
        default=None, description="the § 146 subsidy the pharmacy granted, balancing included"
    )
    under_deferral: bool = Field(
        default=False, description="own payment goes to a henstand agreement"
    )

    @once
    def paid_day(self) -> date:
        """The Danish local date of payment or invoicing (`payment_day`): the day the register books the
        purchase by. Worked out once per report: the handler path asks for it several times. Not a
        field: neither on the wire nor in the JSON Schema. An `EventTime` lies well inside the
        calendar, so it always has one."""
        return danish_date(self.paid_at_utc)

    @once
    def paid_at_utc(self) -> datetime:
        """`paid_or_invoiced_at` in UTC, as the register stores it."""
        return self.paid_or_invoiced_at.astimezone(UTC)

    @field_validator("person")
    @classmethod
    def _born_by_the_day_of_payment(cls, person: PersonRef, info: ValidationInfo) -> PersonRef:
        """A person born after the day of payment is refused: a CPR number (or a birth date) from the
        future. "Today" is the report's own Danish local date of payment or invoicing, not the hub's
        clock, so a report gets the same answer whenever it is read (`rules.identifiers.check_born_by`).
        """
        paid = info.data.get("paid_or_invoiced_at")
        # Born a day or more before the payment's own date is born before its Danish date too (an
        # offset is less than a day, Copenhagen's is ahead of UTC): the usual case needs no time zone.
        if isinstance(paid, datetime) and (paid.date() - person.born()).days < 1:
            day = payment_day(paid)
            if day is not None:
                person.check_born_by(day)
        return person

    @model_validator(mode="after")
    def _check_site(self) -> DispensingReport:
        # order § 3 stk. 1 nr. 1, LMST field 5: "Apoteksnummer ... og/eller Ekspeditionsstedets P-nummer"
        if self.pharmacy_number is None and self.pharmacy_site_p_number is None:
            raise ValueError("a report needs pharmacy_number or pharmacy_site_p_number (or both)")
        return self

    @model_validator(mode="after")
    def _check_kind(self) -> DispensingReport:
        if self.kind == "return":
            if self.return_of is None:
                raise ValueError("a return needs return_of (the report id of the sale)")
            for ln in self.lines:
                if ln.reimbursement_price > 0 or ln.actual_price > 0:
                    raise ValueError("a return carries negative (or zero) amounts")
            return self
        if self.return_of is not None:
            raise ValueError("return_of is only for kind 'return'")
        for ln in self.lines:
            if ln.reimbursement_price < 0 or ln.actual_price < 0:
                raise ValueError("a sale carries no negative amounts")
        return self


def payment_day(paid: datetime) -> date | None:
    """The Danish local date of a payment time: the day the register books the purchase by; None for a
    time so near the ends of the calendar that it has no local date."""
    try:
        return paid.astimezone(COPENHAGEN).date()
    except (OverflowError, ValueError):
        return None
