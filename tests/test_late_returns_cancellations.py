"""Late reports, returns and cancellations (spec § 7) through the real broker, worker and register.

Figures worked by hand; 2023 (from 3 April) adult scale T1 1,045, T2 1,750, T3 3,795, T4 11,570; 2024
T1 1,075, T2 1,805, T3 3,915, T4 21,298; rates 0 / 50 / 75 / 85 / 100 %.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import select

from reghub.settings import Settings
from sinks import tables
from sinks.register import Register
from streams.topics import CHANGES, CORRECTIONS, DECISIONS, DISPENSINGS, TopicNames
from tests.kafka_helpers import as_json, produce, read_until, running_worker
from tests.messages import PERSON, correction, report

pytestmark = [pytest.mark.broker, pytest.mark.database]

KEY = PERSON.encode()


async def _decide(
    settings: Settings, register: Register, reports: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Send the reports one at a time, in this order, each after the previous one's decision."""
    names = TopicNames(settings.topic_prefix)
    async with running_worker(settings, register):
        for n, sent in enumerate(reports, start=1):
            await produce(settings.kafka_bootstrap, names(DISPENSINGS), [(KEY, as_json(sent))])
            records = await read_until(
                settings.kafka_bootstrap, names(DECISIONS), lambda r, n=n: len(r) >= n
            )
    decisions = [orjson.loads(r.value) for r in records]
    return {d["report_id"]: d for d in decisions}


async def _purchases(register: Register) -> dict[str, Any]:
    async with register.engine.connect() as conn:
        rows = (await conn.execute(select(tables.purchases))).all()
    return {r.report_id: r for r in rows}


async def _periods(register: Register) -> list[tuple[str, int]]:
    async with register.engine.connect() as conn:
        rows = (await conn.execute(select(tables.subsidy_periods))).all()
    return sorted((r.period_start.isoformat(), r.saldo) for r in rows)


async def test_a_late_report_from_a_second_pharmacy_overtaken_by_a_newer_one(
    settings: Settings, register: Register
) -> None:
    """p1 1,000 kr (1 March, pharmacy 12300) opens the period. p3 1,000 kr (10 April) gets F(2,000) −
    F(1,000) = 730 × 50 % + 195 × 75 % = 511.25. p2 500 kr, paid on 1 April at pharmacy 45600 whose
    till was offline, arrives after p3: it is placed before p3 on saldo 1,000 and gets 425 × 50 % =
    212.50; p3 is now due F(2,500) − F(1,500) = 152.50 + 521.25 = 673.75, so 162.50 is owed to the
    person, in the period of 1 March. p4 100 kr (1 May) on saldo 2,500: 75.00 due plus 162.50 paid
    out, 237.50 in all."""
    late = report("p2", 50_000, "2024-04-01T10:00:00+02:00", pharmacy_number="45600")
    decided = await _decide(
        settings,
        register,
        [
            report("p1", 100_000, "2024-03-01T10:00:00+01:00"),
            report("p3", 100_000, "2024-04-10T10:00:00+02:00"),
            late,
            report("p4", 10_000, "2024-05-01T10:00:00+02:00"),
        ],
    )
    assert decided["p3"]["subsidy"] == 51_125
    p2 = decided["p2"]
    assert (p2["status"], p2["pharmacy_number"]) == ("registered", "45600")
    assert (p2["saldo_before"], p2["saldo_after"]) == (100_000, 150_000)
    assert (p2["subsidy_entitled"], p2["subsidy"], p2["citizen_pays"]) == (21_250, 21_250, 28_750)
    assert (p2["period_start"], p2["balancing_applied"]) == ("2024-03-01", 0)
    p4 = decided["p4"]
    assert (p4["saldo_before"], p4["subsidy_entitled"]) == (250_000, 7_500)
    assert (p4["balancing_applied"], p4["subsidy"]) == (16_250, 23_750)
    assert p4["balancing"][0]["period_start"] == "2024-03-01"
    rows = await _purchases(register)
    assert rows["p3"].subsidy_entitled == 67_375 and rows["p3"].subsidy == 51_125
    assert await _periods(register) == [("2024-03-01", 260_000)]


async def test_a_late_report_before_the_period_moves_its_start_back(
    settings: Settings, register: Register
) -> None:
    """p1 2,000 kr on 1 March 2024 opens a period and gets 511.25. p0 500 kr paid 20 February arrives
    later: the period now starts 20 February (ends 19 February 2025); p0 gets F(500) = 0 and p1 is due
    F(2,500) − F(500) = 365.00 + 521.25 = 886.25, so 375.00 is owed to the person."""
    decided = await _decide(
        settings,
        register,
        [
            report("p1", 200_000, "2024-03-01T10:00:00+01:00"),
            report("p0", 50_000, "2024-02-20T10:00:00+01:00"),
        ],
    )
    p0 = decided["p0"]
    assert (p0["period_start"], p0["period_end"]) == ("2024-02-20", "2025-02-19")
    assert (p0["subsidy"], p0["saldo_after"]) == (0, 50_000)
    assert await _periods(register) == [("2024-02-20", 250_000)]
    rows = await _purchases(register)
    assert rows["p1"].period_start.isoformat() == "2024-02-20"
    assert rows["p1"].subsidy_entitled == 88_625
    async with register.engine.connect() as conn:
        person = (await conn.execute(select(tables.persons))).one()
        owed = (await conn.execute(select(tables.balances))).all()
    assert person.current_period_start.isoformat() == "2024-02-20"
    assert [(b.amount, b.arose_in_period.isoformat()) for b in owed] == [(37_500, "2024-02-20")]


async def test_a_return_across_1_january_is_reversed_on_the_scale_of_the_sale(
    settings: Settings, register: Register
) -> None:
    """p1 12,000 kr on 1 June 2023 opens the period above T4 (11,570). s 500 kr on 10 December 2023
    is free (100 %). Returned on 10 January 2024: on the sale's scale the 500 kr come off at 100 %,
    −500.00, and the person gets nothing back (on 2024's scale they would have got 75.00)."""
    back = report(
        "r1",
        -50_000,
        "2024-01-10T10:00:00+01:00",
        kind="return",
        return_of="s",
    )
    decided = await _decide(
        settings,
        register,
        [
            report("p1", 1_200_000, "2023-06-01T10:00:00+02:00"),
            report("s", 50_000, "2023-12-10T10:00:00+01:00"),
            back,
        ],
    )
    assert (decided["s"]["subsidy"], decided["s"]["citizen_pays"]) == (50_000, 0)
    r1 = decided["r1"]
    assert (r1["subsidy"], r1["citizen_pays"], r1["saldo_after"]) == (-50_000, 0, 1_200_000)


async def test_a_return_of_a_previous_period_sale_is_booked_to_that_period(
    settings: Settings, register: Register
) -> None:
    """s 1,200 kr on 5 January 2023 (scale to 2 April 2023: T1 1,045): 155 × 50 % = 77.50. p 100 kr
    on 10 January 2024 opens the next period. Returning 400 kr of s on 1 February 2024 reverses
    F(800) − F(1,200) = −77.50 in the period of 5 January 2023 (saldo 800) and refunds 322.50; the
    current period keeps its 100 kr."""
    decided = await _decide(
        settings,
        register,
        [
            report("s", 120_000, "2023-01-05T10:00:00+01:00"),
            report("p", 10_000, "2024-01-10T10:00:00+01:00"),
            report("r", -40_000, "2024-02-01T10:00:00+01:00", kind="return", return_of="s"),
        ],
    )
    r = decided["r"]
    assert (r["status"], r["period_start"]) == ("registered", "2023-01-05")
    assert (r["subsidy"], r["citizen_pays"]) == (-7_750, -32_250)
    assert await _periods(register) == [("2023-01-05", 80_000), ("2024-01-10", 10_000)]
    async with register.engine.connect() as conn:
        person = (await conn.execute(select(tables.persons))).one()
    assert person.current_period_start.isoformat() == "2024-01-10"


async def test_a_cancellation_takes_its_return_and_the_later_purchase_is_balanced(
    settings: Settings, register: Register
) -> None:
    """a 2,000 kr (1 March 2024) opens the period: 511.25. r returns 500 kr of it: F(1,500) −
    F(2,000) = −298.75. b 1,000 kr (1 April) on saldo 1,500: 673.75. The agency cancels a: a and r
    leave, the period starts again at b (1 April), b is now due 0, and the person owes 673.75. c
    100 kr (1 May) on saldo 1,000: 25 × 50 % = 12.50 due, all of it deducted: subsidy 0, 661.25
    still owed."""
    names = TopicNames(settings.topic_prefix)
    before = [
        report("a", 200_000, "2024-03-01T10:00:00+01:00"),
        report("r", -50_000, "2024-03-05T10:00:00+01:00", kind="return", return_of="a"),
        report("b", 100_000, "2024-04-01T10:00:00+02:00"),
    ]
    await produce(settings.kafka_bootstrap, names(DISPENSINGS), [(KEY, as_json(s)) for s in before])
    async with running_worker(settings, register):
        await read_until(settings.kafka_bootstrap, names(DECISIONS), lambda r: len(r) >= 3)
        cancel = correction("c1", "cancel", report_id="a")
        await produce(settings.kafka_bootstrap, names(CORRECTIONS), [(KEY, as_json(cancel))])
        await read_until(
            settings.kafka_bootstrap, names(CHANGES), lambda rs: any(b'"c1"' in x.value for x in rs)
        )
        later = report("c", 10_000, "2024-05-01T10:00:00+02:00")
        await produce(settings.kafka_bootstrap, names(DISPENSINGS), [(KEY, as_json(later))])
        records = await read_until(
            settings.kafka_bootstrap, names(DECISIONS), lambda r: len(r) >= 4
        )
    decided = {d["report_id"]: d for d in (orjson.loads(r.value) for r in records)}
    assert decided["r"]["subsidy"] == -29_875 and decided["b"]["subsidy"] == 67_375
    c = decided["c"]
    assert (c["period_start"], c["saldo_before"], c["subsidy_entitled"]) == (
        "2024-04-01",
        100_000,
        1_250,
    )
    assert (c["balancing_applied"], c["subsidy"], c["remaining_balancing"]) == (
        -1_250,
        0,
        -66_125,
    )
    rows = await _purchases(register)
    assert (rows["a"].status, rows["r"].status, rows["b"].status) == (
        "cancelled",
        "cancelled",
        "registered",
    )
    assert await _periods(register) == [("2024-04-01", 110_000)]
