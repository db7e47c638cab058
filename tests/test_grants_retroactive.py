"""Individual grants to the letter (spec § 4) through the real broker, worker and register."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import select

from reghub.settings import Settings
from sinks import tables
from sinks.register import Register
from streams.topics import CHANGES, DECISIONS, DISPENSINGS, INDIVIDUAL_GRANTS, TopicNames
from tests.kafka_helpers import as_json, produce, read_until, running_worker
from tests.messages import PERSON, grant, report

pytestmark = [pytest.mark.broker, pytest.mark.database]

KEY = PERSON.encode()


def x_line(reimbursement: int, actual: int, *, reimbursed: bool) -> list[dict]:
    return [
        {
            "drug_id": "X",
            "reimbursement_price": reimbursement,
            "actual_price": actual,
            "generally_reimbursed": reimbursed,
        }
    ]


async def _enter_grant(settings: Settings, names: TopicNames, message: dict) -> None:
    await produce(settings.kafka_bootstrap, names(INDIVIDUAL_GRANTS), [(KEY, as_json(message))])
    wanted = message["message_id"].encode()
    await read_until(
        settings.kafka_bootstrap, names(CHANGES), lambda r: any(wanted in x.value for x in r)
    )


async def test_a_s151_grant_never_makes_a_medicine_eligible(
    settings: Settings, register: Register
) -> None:
    """spec § 4: a § 151 grant for X (1 Jan – 31 Dec 2024) and a purchase of X without general
    subsidy on 1 Feb (reimbursement price 200 kr, actual 260 kr): no subsidy, the person pays
    260.00 kr, the saldo stays 0 and no period opens."""
    names = TopicNames(settings.topic_prefix)
    async with running_worker(settings, register):
        await _enter_grant(
            settings,
            names,
            grant("g151", "2024-01-01", "2024-12-31", kind="s151_increased"),
        )
        sale = report(
            "x1",
            26_000,
            "2024-02-01T10:00:00+01:00",
            lines=x_line(20_000, 26_000, reimbursed=False),
        )
        await produce(settings.kafka_bootstrap, names(DISPENSINGS), [(KEY, as_json(sale))])
        records = await read_until(
            settings.kafka_bootstrap, names(DECISIONS), lambda r: len(r) >= 1
        )
    decision = orjson.loads(records[0].value)
    assert decision["report_id"] == "x1" and decision["status"] == "registered"
    assert decision["subsidy"] == 0 and decision["citizen_pays"] == 26_000
    assert decision["saldo_after"] == 0
    async with register.engine.connect() as conn:
        assert (await conn.execute(select(tables.subsidy_periods))).all() == []


async def test_a_grant_entered_with_an_earlier_start_pays_the_difference_at_the_next_purchase(
    settings: Settings, register: Register
) -> None:
    """spec § 4: purchases registered, then a § 151 grant for X entered with a start before them.

    - p1 10 Jan, 1,000 kr (general subsidy): saldo 0 → 1,000, all in the 0 % band: 0.
    - p2 10 Feb, X (general subsidy), reimbursement price 200 kr, actual 260 kr: basis 200, saldo
      1,000 → 1,200: 75 × 0 % + 125 × 50 % = 62.50.
    - The grant, from 10 Feb, is entered: p2's basis becomes 260, saldo 1,000 → 1,260: 75 × 0 % +
      185 × 50 % = 92.50; 30.00 kr owed to the person, arisen 10 Feb in the period from 10 Jan.
    - p3 10 Apr, 100 kr: saldo 1,260 → 1,360 at 50 % = 50.00, plus the 30.00 paid out: 80.00.
    """
    names = TopicNames(settings.topic_prefix)
    sales = [
        report("p1", 100_000, "2024-01-10T10:00:00+01:00"),
        report(
            "p2",
            26_000,
            "2024-02-10T10:00:00+01:00",
            lines=x_line(20_000, 26_000, reimbursed=True),
        ),
    ]
    await produce(settings.kafka_bootstrap, names(DISPENSINGS), [(KEY, as_json(s)) for s in sales])
    async with running_worker(settings, register):
        await read_until(settings.kafka_bootstrap, names(DECISIONS), lambda r: len(r) >= 2)
        await _enter_grant(
            settings,
            names,
            grant("g151-late", "2024-02-10", "2024-12-31", kind="s151_increased"),
        )
        await produce(
            settings.kafka_bootstrap,
            names(DISPENSINGS),
            [(KEY, as_json(report("p3", 10_000, "2024-04-10T10:00:00+02:00")))],
        )
        records = await read_until(
            settings.kafka_bootstrap, names(DECISIONS), lambda r: len(r) >= 3
        )
    p3 = next(orjson.loads(r.value) for r in records if b'"p3"' in r.value)
    assert p3["saldo_before"] == 126_000 and p3["saldo_after"] == 136_000
    assert p3["subsidy_entitled"] == 5_000
    assert p3["balancing_applied"] == 3_000 and p3["subsidy"] == 8_000
    assert p3["balancing"][0]["period_start"] == "2024-01-10"
