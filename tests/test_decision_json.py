"""The decision's JSON, written value by value (`streams.handlers.dispensings.decision`), is byte for byte
what `orjson.dumps` gives the decision's dict: over generated register rows and kept details, with
strings that need escaping, non-ASCII text, dates, extreme integers, nulls and nested details. The
decisions of real reports, through the broker and the worker, are checked against `PurchaseDecision` in
`tests/test_decision_lines.py`; here one of one line and one of two lines are too."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.identifiers import mask_person_numbers
from schemas.decisions import PurchaseDecision
from sinks.rows import PurchaseRow
from streams.handlers.dispensings import decision

I64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)  # a BIGINT column
TEXT = st.text(max_size=12) | st.sampled_from(["r-1", 'a"b', "a\\b", "æøå", "\x00\n\t", "\u2028"])
DAYS = st.none() | st.dates()


def oracle(row: PurchaseRow, status: str, details: dict[str, Any]) -> bytes:
    """The decision as it was written before: its dict, encoded by orjson."""
    lines = details["lines"]
    shown = [
        mask_person_numbers(ln["drug_id"]) if len(ln["drug_id"]) >= 10 else ln["drug_id"]
        for ln in lines
    ]
    assert len(lines) == 1, "the generated details hold one line; more go through orjson as before"
    actual = lines[0]["actual_price"]
    return orjson.dumps(
        {
            "schema_version": 1,
            "kind": "purchase",
            "report_id": row.report_id,
            "status": status,
            "reason": None,
            "pharmacy_number": row.pharmacy_number,
            "pharmacy_site_p_number": row.pharmacy_site_p_number,
            "dispensing_id": row.dispensing_id,
            "subsidised": row.subsidised,
            "subsidy_entitled": row.subsidy_entitled,
            "balancing_applied": row.balancing_applied,
            "subsidy": row.subsidy,
            "health_supplement": row.health_supplement,
            "rights_based": row.rights_based,
            "citizen_pays": row.citizen_pays,
            "deferred_to_agreement": row.deferred_to_agreement,
            "citizen_pays_at_counter": row.citizen_pays - row.deferred_to_agreement,
            "saldo_before": row.saldo_after - row.basis,
            "saldo_after": row.saldo_after,
            "period_start": row.period_start,
            "period_end": row.period_end,
            "previous_period_end": row.previous_period_end,
            "under18": row.under18,
            "remaining_balancing": row.remaining_balancing,
            "granted_subsidy": row.granted_subsidy,
            "deviation": row.deviation,
            "lines": [
                {
                    "drug_id": shown[0],
                    "actual_price": actual,
                    "subsidy": row.subsidy,
                    "balancing_applied": row.balancing_applied,
                    "health_supplement": row.health_supplement,
                    "rights_based": row.rights_based,
                    "citizen_pays": actual - row.subsidy - row.health_supplement - row.rights_based,
                }
            ],
            "health_supplement_billed_to": details["health_supplement_billed_to"],
            "rights_based_billed_to": details["rights_based_billed_to"],
            "balancing": details["balancing"],
            "agreement_id": details["agreement_id"],
        }
    )


# small enough that the sums the decision works out stay within orjson's 64 bits, as amounts do
AMOUNT = st.integers(min_value=-(2**61), max_value=2**61)


@st.composite
def rows(draw: st.DrawFn) -> PurchaseRow:
    return PurchaseRow(
        report_id=draw(TEXT),
        person_key="p",
        kind="sale",
        return_of=None,
        pharmacy_number=draw(st.none() | TEXT),
        pharmacy_site_p_number=draw(st.none() | TEXT),
        dispensing_id=draw(TEXT),
        ordination_id="o",
        paid_or_invoiced_at=datetime(2024, 1, 1, tzinfo=UTC),
        day=date(2024, 1, 1),
        lines="[]",
        period_start=draw(DAYS),
        period_end=draw(DAYS),
        previous_period_end=draw(DAYS),
        under18=draw(st.none() | st.booleans()),
        terminal=False,
        basis=draw(AMOUNT),
        subsidy_entitled=draw(I64),
        balancing_applied=draw(AMOUNT),
        subsidy=draw(AMOUNT),
        health_supplement=draw(AMOUNT),
        rights_based=draw(AMOUNT),
        citizen_pays=draw(AMOUNT),
        deferred_to_agreement=draw(AMOUNT),
        saldo_after=draw(AMOUNT),
        subsidised=draw(st.booleans()),
        remaining_balancing=draw(I64),
        granted_subsidy=draw(st.none() | I64),
        deviation=draw(I64),
        returned_basis=0,
        status="registered",
        source_partition=0,
        source_offset=0,
        registered_at=datetime(2024, 1, 1, tzinfo=UTC),
    )


BILLING = st.none() | st.fixed_dictionaries({"municipality_code": TEXT, "decision_id": TEXT})
PART = st.fixed_dictionaries(
    {"amount": I64, "period_start": DAYS, "arose_on": DAYS, "origin": TEXT}
)
DETAILS = st.fixed_dictionaries(
    {
        "lines": st.lists(
            st.fixed_dictionaries(
                {
                    "drug_id": TEXT | st.sampled_from(["0101701234", "x0101701234y"]),
                    "actual_price": AMOUNT,
                }
            ),
            min_size=1,
            max_size=1,
        ),
        "health_supplement_billed_to": BILLING,
        "rights_based_billed_to": BILLING,
        "balancing": st.none() | st.lists(PART, max_size=2),
        "agreement_id": st.none() | TEXT,
    }
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows(), st.sampled_from(["registered", "duplicate"]), DETAILS)
def test_the_decision_is_the_bytes_orjson_writes(
    row: PurchaseRow, status: str, details: dict[str, Any]
) -> None:
    assert decision(row, status, details) == oracle(row, status, details)


def registered_row() -> PurchaseRow:
    """A sale of 770.01 kr in a period with 1,000 kr on its saldo before, no subsidy."""
    return PurchaseRow(
        "r-2", "p", "sale", None, "12300", None, "d-2", "o-2",
        datetime(2024, 3, 10, tzinfo=UTC), date(2024, 3, 10), "[]",
        date(2024, 3, 1), date(2025, 2, 28), None, False, False,
        77_001, 0, 0, 0, 0, 0, 77_001, 0, 177_001, True, 0, None, 0, 0, "registered", 0, 0,
        datetime(2024, 3, 10, tzinfo=UTC),
    )  # fmt: skip


def test_a_decision_of_one_line_is_a_valid_purchase_decision() -> None:
    details = {
        "lines": [{"drug_id": "028100", "actual_price": 77_001}],
        "health_supplement_billed_to": None,
        "rights_based_billed_to": None,
        "balancing": [],
        "agreement_id": None,
    }
    written = decision(registered_row(), "registered", details)
    assert written == oracle(registered_row(), "registered", details)
    got = PurchaseDecision.model_validate_json(written)
    assert (got.citizen_pays, got.saldo_before, got.lines[0].citizen_pays) == (
        77_001,
        100_000,
        77_001,
    )


def test_a_decision_of_two_lines_is_a_valid_purchase_decision() -> None:
    """More than one line: the lines apportioned as before, through orjson; the model takes it."""
    details = {
        "lines": [
            {"drug_id": "028100", "actual_price": 50_000, "basis": 50_000},
            {"drug_id": "045678", "actual_price": 27_001, "basis": 25_001},
        ],
        "health_supplement_billed_to": None,
        "rights_based_billed_to": None,
        "balancing": [],
        "agreement_id": None,
    }
    got = PurchaseDecision.model_validate_json(decision(registered_row(), "registered", details))
    assert [ln.actual_price for ln in got.lines] == [50_000, 27_001]
    assert sum(ln.citizen_pays for ln in got.lines) == got.citizen_pays == 77_001
    assert got.saldo_before == 100_000
