"""Decisions a pharmacy can charge from, through the real broker, worker and register (SQLite and
PostgreSQL): per line the subsidy and what the person pays, whom a helbredstillæg is billed to, the period
of a balancing amount applied, the henstand agreement; and no amounts at all on a parked report."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import orjson
import pytest
from aiokafka.structs import ConsumerRecord

from reghub.settings import Settings
from schemas.decisions import PurchaseDecision
from sinks.register import Register
from sinks.rows import PurchaseRow
from streams.handlers.dispensings import decision, kept
from streams.topics import (
    CHANGES,
    CORRECTIONS,
    DECISIONS,
    DEFERRALS,
    DISPENSINGS,
    MUNICIPAL_GRANTS,
    TopicNames,
)
from tests.kafka_helpers import as_json, produce, read_until, running_worker
from tests.messages import PERSON, correction, municipal, report

KEY = PERSON.encode()
OTHER_PERSON = "1212701234"  # CPR-shaped: born 12 December 1970

AMOUNT_FIELDS = (
    "subsidised",
    "subsidy_entitled",
    "balancing_applied",
    "subsidy",
    "health_supplement",
    "rights_based",
    "citizen_pays",
    "deferred_to_agreement",
    "citizen_pays_at_counter",
    "saldo_before",
    "saldo_after",
    "remaining_balancing",
    "granted_subsidy",
    "deviation",
    "lines",
    "health_supplement_billed_to",
    "rights_based_billed_to",
    "balancing",
    "agreement_id",
)


def decisions_of(records: list[ConsumerRecord], report_id: str) -> list[dict[str, Any]]:
    bodies = [orjson.loads(r.value) for r in records]
    return [b for b in bodies if b.get("report_id") == report_id]


def has_change(message_id: str) -> Any:
    return lambda records: any(orjson.loads(r.value)["message_id"] == message_id for r in records)


@pytest.mark.broker
@pytest.mark.database
async def test_a_two_line_report_with_a_helbredstillaeg_a_balancing_amount_and_a_henstand(
    settings: Settings, register: Register
) -> None:
    """Worked by hand (2024 scale, adult: 0 % to T1 = 1,075 kr, 50 % to T2 = 1,805 kr; øre below).

    Set-up: a helbredstillæg of 50 % from municipality 101 (decision `m-hs`); a henstand agreement
    `h-1` at pharmacy 12300 from 1 March 2024; a purchase `r-open` of 1,000 kr on 1 March 2024 opens the
    period 2024-03-01 – 2025-02-28 with saldo 100,000; then the agency registers 30 kr owed by the
    person (`u-1`, −3,000), arisen 1 March 2024, so in that period.

    `r-two` on 10 March 2024, under the henstand agreement: line A (028100) 500 kr, reimbursement price
    500 kr; line B (045678) reimbursement price 250.01 kr, actual price 270.01 kr.

    - basis 50,000 + 25,001 = 75,001; saldo 100,000 → 175,001: 7,500 at 0 %, 67,501 at 50 % =
      33,750.5 → subsidy due 33,751 (half-up, on the sum).
    - § 6: the 3,000 owed is deducted (up to 33,751): subsidy 30,751, nothing left owed.
    - own payment within the basis 75,001 − 33,751 = 41,250; helbredstillæg 85 % × 50 % = 17,531.25 →
      17,531. The person pays 77,001 − 30,751 − 17,531 = 28,719, of which 2,000 (above B's
      reimbursement price) at the counter and 26,719 deferred to `h-1`.

    Per line (largest remainder, rules/lines.py):

    - subsidy due 33,751 over bases 50,000 : 25,001 → 22,500.0 r 27,500 and 11,250 r 47,501: the øre
      left goes to B → 22,500 and 11,251.
    - own payments 27,500 and 13,750; helbredstillæg 17,531 over them → 11,687 r 13,750 and 5,843 r
      27,500 → B gets the øre: 11,687 and 5,844.
    - deduction 3,000 over the lines' subsidy due 22,500 : 11,251 → 1,999 r 31,751 and 1,000 r 2,000 →
      A gets the øre: −2,000 and −1,000.
    - A: subsidy 22,500 − 2,000 = 20,500, pays 50,000 − 20,500 − 11,687 = 17,813;
      B: subsidy 11,251 − 1,000 = 10,251, pays 27,001 − 10,251 − 5,844 = 10,906.
    """
    names = TopicNames(settings.topic_prefix)
    boot = settings.kafka_bootstrap
    henstand = {
        "message_id": "h-1",
        "sent_at": "2024-03-01T09:00:00+01:00",
        "pharmacy_number": "12300",
        "action": "entered",
        "agreement_id": "h-1",
        "date": "2024-03-01",
        "monthly_rate": 38_125,
        "rates": 12,
        "person": {"key": PERSON},
    }
    owed = correction("u-1", "balancing", amount=-3_000, arose_on="2024-03-01")
    two = report("r-two", 0, "2024-03-10T10:00:00+01:00", under_deferral=True)
    two["lines"] = [
        {"drug_id": "028100", "reimbursement_price": 50_000, "actual_price": 50_000},
        {"drug_id": "045678", "reimbursement_price": 25_001, "actual_price": 27_001},
    ]
    parked = report("r-2013", 40_000, "2013-01-10T10:00:00+01:00", person=OTHER_PERSON)
    async with running_worker(settings, register):
        await produce(boot, names(MUNICIPAL_GRANTS), [(KEY, as_json(municipal("m-hs", 101, "50")))])
        await produce(boot, names(DEFERRALS), [(KEY, as_json(henstand))])
        await read_until(boot, names(CHANGES), has_change("m-hs"))
        await read_until(boot, names(CHANGES), has_change("h-1"))
        opening = report("r-open", 100_000, "2024-03-01T10:00:00+01:00")
        await produce(boot, names(DISPENSINGS), [(KEY, as_json(opening))])
        await read_until(boot, names(DECISIONS), lambda r: bool(decisions_of(r, "r-open")))
        await produce(boot, names(CORRECTIONS), [(KEY, as_json(owed))])
        await read_until(boot, names(CHANGES), has_change("u-1"))
        await produce(
            boot,
            names(DISPENSINGS),
            [(KEY, as_json(two)), (OTHER_PERSON.encode(), as_json(parked))],
        )
        records = await read_until(
            boot,
            names(DECISIONS),
            lambda r: bool(decisions_of(r, "r-two") and decisions_of(r, "r-2013")),
        )
        await produce(boot, names(DISPENSINGS), [(KEY, as_json(two))])  # redelivered
        records = await read_until(
            boot, names(DECISIONS), lambda r: len(decisions_of(r, "r-two")) >= 2
        )

    (first, again) = decisions_of(records, "r-two")
    for body in (first, again):
        PurchaseDecision.model_validate(body)
        assert set(body) == set(PurchaseDecision.model_fields)
    assert first["status"] == "registered"
    assert (first["saldo_before"], first["saldo_after"]) == (100_000, 175_001)
    assert (first["subsidy_entitled"], first["balancing_applied"]) == (33_751, -3_000)
    assert (first["subsidy"], first["health_supplement"], first["rights_based"]) == (
        30_751,
        17_531,
        0,
    )
    assert first["citizen_pays"] == 28_719
    assert (first["deferred_to_agreement"], first["citizen_pays_at_counter"]) == (26_719, 2_000)
    assert first["remaining_balancing"] == 0
    assert first["lines"] == [
        {
            "drug_id": "028100",
            "actual_price": 50_000,
            "subsidy": 20_500,
            "balancing_applied": -2_000,
            "health_supplement": 11_687,
            "rights_based": 0,
            "citizen_pays": 17_813,
        },
        {
            "drug_id": "045678",
            "actual_price": 27_001,
            "subsidy": 10_251,
            "balancing_applied": -1_000,
            "health_supplement": 5_844,
            "rights_based": 0,
            "citizen_pays": 10_906,
        },
    ]
    assert first["health_supplement_billed_to"] == {
        "municipality_code": 101,
        "decision_id": "m-hs",
    }
    assert first["rights_based_billed_to"] is None
    assert first["balancing"] == [
        {
            "amount": -3_000,
            "period_start": "2024-03-01",
            "arose_on": "2024-03-01",
            "origin": "registered by agency",
        }
    ]
    assert first["agreement_id"] == "h-1"
    assert first["period_start"] == "2024-03-01" and first["period_end"] == "2025-02-28"
    # the redelivered report is answered again from the register, the same to the øre
    assert again == {**first, "status": "duplicate"}

    (held,) = decisions_of(records, "r-2013")
    PurchaseDecision.model_validate(held)
    assert held["status"] == "parked" and held["reason"].startswith("rule.unknown_scale")
    assert {name: held[name] for name in AMOUNT_FIELDS} == dict.fromkeys(AMOUNT_FIELDS)
    assert held["report_id"] == "r-2013" and held["dispensing_id"] == "d-r-2013"
    assert "person_key" not in held
    everything = b"".join(r.value for r in records)
    assert PERSON.encode() not in everything and OTHER_PERSON.encode() not in everything


def registered_row(lines: str, **columns: Any) -> PurchaseRow:
    """A register row of a sale of 4,000 kr on an empty 2024 saldo (C06: 2,019.75 kr subsidy)."""
    row = PurchaseRow(
        "r-old",
        PERSON,
        "sale",
        None,
        "12300",
        "1003456788",
        "d-old",
        "01",
        datetime(2024, 4, 2, 9, 0, tzinfo=UTC),
        date(2024, 4, 2),
        lines,
        date(2024, 4, 2),
        date(2025, 4, 1),
        None,
        False,
        False,
        400_000,
        201_975,
        0,
        201_975,
        0,
        0,
        198_025,
        0,
        400_000,
        True,
        0,
        None,
        0,
        0,
        "registered",
        0,
        0,
        datetime(2024, 4, 2, 9, 0, tzinfo=UTC),
    )
    return row._replace(**columns)


def test_a_purchase_kept_before_its_details_is_answered_with_what_the_register_has() -> None:
    """A row whose `lines` column holds the list of lines alone (registered before it kept the
    decision's details): its lines are apportioned as without grants, and the details it never kept
    are null, not invented."""
    old = orjson.dumps(
        [
            {"drug_id": "A", "reimbursement_price": 300_000, "actual_price": 300_000},
            {"drug_id": "B", "reimbursement_price": 100_000, "actual_price": 100_000},
        ]
    ).decode()
    row = registered_row(old)
    body = orjson.loads(decision(row, "duplicate", kept(row)))
    PurchaseDecision.model_validate(body)
    # 201,975 over 300,000 : 100,000 = 151,481.25 and 50,493.75: the øre left to B (.75)
    assert [(ln["subsidy"], ln["citizen_pays"]) for ln in body["lines"]] == [
        (151_481, 148_519),
        (50_494, 49_506),
    ]
    assert body["balancing"] is None and body["agreement_id"] is None
    assert body["health_supplement_billed_to"] is None


def test_a_drug_id_that_reads_as_a_person_number_is_masked_in_the_decision() -> None:
    """The decisions topic never carries a CPR number (README, "Personal data on the wire"); a drug id
    is not checked for one on the way in."""
    lines = orjson.dumps(
        {
            "lines": [
                {
                    "drug_id": f"x{PERSON}",
                    "reimbursement_price": 400_000,
                    "actual_price": 400_000,
                    "generally_reimbursed": True,
                    "basis": 400_000,
                }
            ],
            "health_supplement_billed_to": None,
            "rights_based_billed_to": None,
            "balancing": [],
            "agreement_id": None,
        }
    ).decode()
    row = registered_row(lines)
    value = decision(row, "registered", kept(row))
    assert PERSON.encode() not in value
    (only,) = orjson.loads(value)["lines"]
    assert only["drug_id"] == "x**********"
    assert (only["subsidy"], only["citizen_pays"]) == (201_975, 198_025)


def test_the_handlers_purchase_row_has_every_column() -> None:
    """The handler builds its purchase row with `tuple.__new__`, which checks no arity: a column added
    to `PurchaseRow` and not to the handler would make a short row, not a TypeError. Each column the
    handler copies from the report and its record is where the row's names say."""
    from bench.handle_cpu import decode_all, records
    from rules.scales import KNOWN_SCALES, ScaleBook
    from streams.batch import Batch, Loaded
    from streams.handlers import HANDLERS
    from streams.handlers.base import ApplyConfig, Context
    from streams.outputs import Outputs

    config = ApplyConfig("row-test", 60, b"row-test-pseudonym-key-0123456789")
    now = datetime(2025, 1, 10, 12, tzinfo=UTC)
    out = Outputs(TopicNames(), config.pseudonym_secret, now)
    (d,) = decode_all(records(1, 1, seed=5))
    effects = HANDLERS[DISPENSINGS].handle(
        Batch(Loaded(), ScaleBook(KNOWN_SCALES), out), d, Context(now, config, out)
    )
    (row,) = effects.purchases
    assert type(row) is PurchaseRow
    assert len(row) == len(PurchaseRow._fields)
    assert row == PurchaseRow(*row)
    m = d.message
    assert (row.report_id, row.person_key, row.dispensing_id, row.ordination_id) == (
        m.report_id,  # type: ignore[attr-defined]
        d.person_key,
        m.dispensing_id,  # type: ignore[attr-defined]
        m.ordination_id,  # type: ignore[attr-defined]
    )
    assert (row.source_partition, row.source_offset, row.registered_at) == (
        d.source.partition,
        d.source.offset,
        now,
    )
    assert (row.status, row.returned_basis, row.content_hash) == ("registered", 0, d.digest)
