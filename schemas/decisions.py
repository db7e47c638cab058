"""`ctr.decisions.v1` (keyed by pharmacy number): the register's answer to each dispensing report.

Every pharmacy may read this topic, so a decision identifies the report, never the person (order § 5:
each party sees what it needs): the pharmacy's own `report_id` and `dispensing_id`, and its number. The
pharmacy that sent the report knows whom it was about.

Amounts in øre. `deviation` is what the pharmacy granted minus what the register says was due; a non-zero
deviation becomes a balancing amount (§ 6), applied at the person's next purchase wherever it is.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict


class PurchaseDecision(BaseModel):
    """The register's decision on one dispensing report, to the pharmacy that sent it."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    kind: Literal["purchase"] = "purchase"
    report_id: str
    status: Literal["registered", "parked", "duplicate"]
    reason: str | None = None
    pharmacy_number: str
    dispensing_id: str
    subsidised: bool = False
    subsidy_entitled: int = 0
    balancing_applied: int = 0
    subsidy: int = 0
    health_supplement: int = 0
    rights_based: int = 0
    citizen_pays: int = 0
    deferred_to_agreement: int = 0
    citizen_pays_at_counter: int = 0
    saldo_before: int = 0
    saldo_after: int = 0
    period_start: date | None = None
    period_end: date | None = None
    previous_period_end: date | None = None
    under18: bool | None = None
    remaining_balancing: int = 0
    granted_subsidy: int | None = None
    deviation: int = 0


class SettlementStatement(BaseModel):
    """The year-end settlement of a deferral agreement (henstand), to the pharmacy that holds it; the
    agreement is identified by the pharmacy's `agreement_id`, not by the person."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    kind: Literal["deferral_settlement"] = "deferral_settlement"
    message_id: str
    agreement_id: str
    pharmacy_number: str
    period_start: date | None
    total_own_payment: int
    total_rates_paid: int
    difference_in_citizens_favour: int
    payout_with_statement: bool
