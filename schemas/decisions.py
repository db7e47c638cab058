"""`ctr.decisions.v1` (keyed by pharmacy number): the register's answer to each dispensing report.

Every pharmacy may read this topic, so a decision identifies the report, never the person (order § 5:
each party sees what it needs): the pharmacy's own `report_id` and `dispensing_id`, and its number. The
pharmacy that sent the report knows whom it was about.

Amounts in øre. `deviation` is what the pharmacy granted minus what the register says was due; a non-zero
deviation becomes a balancing amount (§ 6), applied at the person's next purchase wherever it is.

A pharmacy charges from a registered report's decision: per line (medicine) the subsidy, the
helbredstillæg, the rights-based amount and what the person pays, adding up exactly to the totals
(`rules/lines.py` says how a total computed on the whole report is apportioned); the municipality and
decision each municipal amount is billed to; the period each balancing amount applied arose in; the
henstand agreement the own payment was deferred to. A decision without the register's answer (status
"parked") has every amount null, never 0, so that no one reads it as free.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue
from pydantic_core import CoreSchema


class SelfContainedJsonSchema(GenerateJsonSchema):
    """A JSON Schema with every `$defs` entry written out where it is referred to, so that it can be
    embedded in another document as it is (the topic's schema is a `oneOf` of the decision and the
    settlement: a `#/$defs/…` reference would point at that document's root). The models have no
    cycles."""

    def generate(self, schema: CoreSchema, mode: JsonSchemaMode = "validation") -> JsonSchemaValue:
        generated = super().generate(schema, mode)
        defs = generated.pop("$defs", {})
        prefix = self.ref_template.split("{model}")[0]

        def inline(node: Any) -> Any:
            if isinstance(node, list):
                return [inline(v) for v in node]
            if not isinstance(node, dict):
                return node
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(prefix) and ref[len(prefix) :] in defs:
                rest = {k: inline(v) for k, v in node.items() if k != "$ref"}
                return {**inline(defs[ref[len(prefix) :]]), **rest}
            return {k: inline(v) for k, v in node.items()}

        return inline(generated)


class DecisionLine(BaseModel):
    """One line (medicine) of the report, in the report's order, and what it is charged with.

    `subsidy` includes the line's share of the balancing applied (`balancing_applied`); the person pays
    `actual_price − subsidy − health_supplement − rights_based`. A `drug_id` that reads as a CPR number
    is masked.
    """

    model_config = ConfigDict(frozen=True)

    drug_id: str
    actual_price: int
    subsidy: int
    balancing_applied: int
    health_supplement: int
    rights_based: int
    citizen_pays: int


class MunicipalBilling(BaseModel):
    """The municipality (kommunekode) and its decision that a helbredstillæg or rights-based amount is
    billed to."""

    model_config = ConfigDict(frozen=True)

    municipality_code: int
    decision_id: str


class BalancingApplied(BaseModel):
    """One balancing amount (udligningsbeløb, § 6) applied at this purchase: + paid to the person, −
    deducted from the subsidy; `period_start` is the start of the period it arose in (§ 7 stk. 3), null
    when it arose outside a period the register knows."""

    model_config = ConfigDict(frozen=True)

    amount: int
    period_start: date | None
    arose_on: date
    origin: str


class PurchaseDecision(BaseModel):
    """The register's decision on one dispensing report, to the pharmacy that sent it.

    Every amount (and `subsidised`, `lines`, `balancing`) is set when the register decided the report
    ("registered", and "duplicate" when a redelivered report is answered again from the register) and
    null otherwise ("parked": no scale in force on its date yet), never 0.
    """

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    kind: Literal["purchase"] = "purchase"
    report_id: str
    status: Literal["registered", "parked", "duplicate"]
    reason: str | None = None
    pharmacy_number: str | None = None  # the report's pharmacy number and/or P-number, as it came
    pharmacy_site_p_number: str | None = None
    dispensing_id: str
    subsidised: bool | None = None
    subsidy_entitled: int | None = None
    balancing_applied: int | None = None
    subsidy: int | None = None
    health_supplement: int | None = None
    rights_based: int | None = None
    citizen_pays: int | None = None
    deferred_to_agreement: int | None = None
    citizen_pays_at_counter: int | None = None
    saldo_before: int | None = None
    saldo_after: int | None = None
    period_start: date | None = None
    period_end: date | None = None
    previous_period_end: date | None = None
    under18: bool | None = None
    remaining_balancing: int | None = None
    granted_subsidy: int | None = None
    deviation: int | None = None
    lines: list[DecisionLine] | None = Field(
        default=None,
        description="per line of the report, in its order; the lines add up to the totals",
    )
    health_supplement_billed_to: MunicipalBilling | None = Field(
        default=None, description="the municipal decision the helbredstillæg is billed to"
    )
    rights_based_billed_to: MunicipalBilling | None = Field(
        default=None, description="the municipal decision the rights-based amount is billed to"
    )
    balancing: list[BalancingApplied] | None = Field(
        default=None,
        description="the balancing amounts applied, summing to balancing_applied; null where the "
        "register did not keep them (purchases registered before it did)",
    )
    agreement_id: str | None = Field(
        default=None, description="the henstand agreement the purchase was deferred to"
    )

    @classmethod
    def model_json_schema(  # type: ignore[override]
        cls,
        *args: Any,
        schema_generator: type[GenerateJsonSchema] = SelfContainedJsonSchema,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The decision's JSON Schema, self-contained (no `$defs`): see `SelfContainedJsonSchema`."""
        return super().model_json_schema(*args, schema_generator=schema_generator, **kwargs)


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
