"""End to end through the real broker, the real worker and the real register (SQLite and PostgreSQL)."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import func, select

from reghub.settings import Settings
from schemas.decisions import PurchaseDecision
from sinks import tables
from sinks.register import Register
from streams.topics import DEAD_LETTER, DECISIONS, DISPENSINGS, TopicNames
from tests.kafka_helpers import as_json, produce, read_until, running_worker
from tests.messages import PERSON, report

pytestmark = [pytest.mark.broker, pytest.mark.database]


async def test_a_report_becomes_a_row_and_a_decision(
    settings: Settings, register: Register
) -> None:
    names = TopicNames(settings.topic_prefix)
    await produce(
        settings.kafka_bootstrap,
        names(DISPENSINGS),
        [(PERSON.encode(), as_json(report("r-1", 400_000)))],
    )
    async with running_worker(settings, register):
        records = await read_until(
            settings.kafka_bootstrap, names(DECISIONS), lambda r: len(r) >= 1
        )
    decision = orjson.loads(records[0].value)
    # the decision is built without the model on the hot path: it must still be exactly the contract
    assert set(decision) == set(PurchaseDecision.model_fields)
    PurchaseDecision.model_validate_json(records[0].value)
    assert records[0].key == b"12300"
    assert decision["status"] == "registered"
    assert decision["subsidy"] == 201_975  # C06: 4,000 kr on an empty saldo in 2024
    assert decision["saldo_after"] == 400_000
    assert decision["period_start"] == "2024-04-02" and decision["period_end"] == "2025-04-01"
    async with register.engine.connect() as conn:
        row = (await conn.execute(select(tables.purchases))).one()
        period = (await conn.execute(select(tables.subsidy_periods))).one()
    assert row.report_id == "r-1" and row.subsidy == 201_975 and row.person_key == PERSON
    assert period.saldo == 400_000 and period.under18 is False


async def test_the_same_report_twice_counts_once(settings: Settings, register: Register) -> None:
    names = TopicNames(settings.topic_prefix)
    same = as_json(report("r-dup", 50_000))
    await produce(
        settings.kafka_bootstrap,
        names(DISPENSINGS),
        [(PERSON.encode(), same), (PERSON.encode(), same)],
    )
    async with running_worker(settings, register):
        records = await read_until(
            settings.kafka_bootstrap, names(DECISIONS), lambda r: len(r) >= 1
        )
        await produce(settings.kafka_bootstrap, names(DISPENSINGS), [(PERSON.encode(), same)])
        records = await read_until(
            settings.kafka_bootstrap, names(DECISIONS), lambda r: len(r) >= 2
        )
    first, again = (orjson.loads(r.value) for r in records)
    assert (first["status"], again["status"]) == ("registered", "duplicate")
    assert again == {**first, "status": "duplicate"}  # rebuilt from the register row
    async with register.engine.connect() as conn:
        count = (await conn.execute(select(func.count()).select_from(tables.purchases))).scalar()
        saldo = (await conn.execute(select(tables.subsidy_periods.c.saldo))).scalar()
    assert count == 1
    assert saldo == 50_000


async def test_a_malformed_message_is_dead_lettered_and_the_next_is_processed(
    settings: Settings, register: Register
) -> None:
    names = TopicNames(settings.topic_prefix)
    broken = b'{"report_id": "r-bad", "lines": ['
    missing = as_json({k: v for k, v in report("r-missing", 100).items() if k != "dispensing_id"})
    await produce(
        settings.kafka_bootstrap,
        names(DISPENSINGS),
        [
            (PERSON.encode(), broken),
            (PERSON.encode(), missing),
            (PERSON.encode(), as_json(report("r-good", 10_000))),
        ],
    )
    async with running_worker(settings, register):
        dead = await read_until(settings.kafka_bootstrap, names(DEAD_LETTER), lambda r: len(r) >= 2)
        good = await read_until(settings.kafka_bootstrap, names(DECISIONS), lambda r: len(r) >= 1)
    headers = [dict(r.headers) for r in dead]
    assert [r.value for r in dead] == [broken, missing]
    assert headers[0]["reghub-reason"].startswith(b"schema.json_invalid")
    assert headers[1]["reghub-reason"] == b"schema.missing: dispensing_id: Field required"
    assert {h["reghub-source-offset"] for h in headers} == {b"0", b"1"}
    assert all(h["reghub-source-topic"] == names(DISPENSINGS).encode() for h in headers)
    assert all(PERSON.encode() not in h["reghub-reason"] for h in headers)
    assert orjson.loads(good[0].value)["report_id"] == "r-good"


async def test_a_report_naming_only_one_of_pharmacy_number_and_p_number_is_registered(
    settings: Settings, register: Register
) -> None:
    """§ 3 stk. 1 nr. 1: the pharmacy number and/or the site's P-number. A report with only the
    P-number is decided under it (and answered again under it when redelivered); one with only the
    pharmacy number under that."""
    names = TopicNames(settings.topic_prefix)
    only_p = report("r-only-p", 40_000, pharmacy_site_p_number="1006959421")
    del only_p["pharmacy_number"]
    only_pharmacy = report("r-only-ph", 40_000, paid_at="2024-04-03T11:00:00+02:00")
    del only_pharmacy["pharmacy_site_p_number"]
    sent = [(PERSON.encode(), as_json(only_p)), (PERSON.encode(), as_json(only_pharmacy))]
    await produce(settings.kafka_bootstrap, names(DISPENSINGS), sent)
    async with running_worker(settings, register):
        await read_until(settings.kafka_bootstrap, names(DECISIONS), lambda r: len(r) >= 2)
        await produce(settings.kafka_bootstrap, names(DISPENSINGS), sent[:1])  # redelivered
        records = await read_until(
            settings.kafka_bootstrap, names(DECISIONS), lambda r: len(r) >= 3
        )
    decisions = [(r.key, orjson.loads(r.value)) for r in records]
    assert [(k, d["report_id"], d["status"]) for k, d in decisions] == [
        (b"1006959421", "r-only-p", "registered"),
        (b"12300", "r-only-ph", "registered"),
        (b"1006959421", "r-only-p", "duplicate"),
    ]
    assert decisions[0][1]["pharmacy_number"] is None
    assert decisions[0][1]["pharmacy_site_p_number"] == "1006959421"
    assert decisions[2][1] == {**decisions[0][1], "status": "duplicate"}
    async with register.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    tables.purchases.c.report_id,
                    tables.purchases.c.pharmacy_number,
                    tables.purchases.c.pharmacy_site_p_number,
                ).order_by(tables.purchases.c.report_id)
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("r-only-p", None, "1006959421"),
        ("r-only-ph", "12300", None),
    ]
