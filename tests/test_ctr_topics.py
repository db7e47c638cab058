"""Issue-level behaviour of the CTR topics through the real broker, worker and register."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import select

from reghub.settings import Settings
from sinks import tables
from sinks.register import Register
from streams.topics import (
    ALERTS,
    CHANGES,
    CORRECTIONS,
    DEAD_LETTER,
    DECISIONS,
    DEFERRALS,
    DISPENSINGS,
    INDIVIDUAL_GRANTS,
    MUNICIPAL_GRANTS,
    SUBSIDY_SCALES,
    TopicNames,
)
from tests.kafka_helpers import as_json, produce, read_until, running_worker
from tests.messages import PERSON, correction, grant, municipal, report

pytestmark = [pytest.mark.broker, pytest.mark.database]

KEY = PERSON.encode()


def decisions_by_id(records: list) -> dict[str, dict]:
    out = {}
    for r in records:
        body = orjson.loads(r.value)
        out[body.get("report_id") or body["message_id"]] = body
    return out


async def test_each_topic_dead_letters_inconsistent_messages_and_goes_on(
    settings: Settings, register: Register
) -> None:
    names = TopicNames(settings.topic_prefix)
    bad_scale = {
        "message_id": "scale-bad",
        "effective_from": "2025-01-01",
        "valid_to": "2025-12-31",
        "t1": 110000,
        "t2": 184500,
        "t3": 400000,
        "t4": 2190000,
        "t4_child": 2665000,
        "own_payment_cap": 485000,
        "source": "test: cap does not match the bands",
    }
    sends = [
        (INDIVIDUAL_GRANTS, KEY, grant("g-backwards", "2024-05-01", "2024-04-01")),
        (INDIVIDUAL_GRANTS, KEY, grant("g-good", "2024-01-01", "2025-12-31")),
        (MUNICIPAL_GRANTS, KEY, municipal("m-150", 101, "150")),
        (MUNICIPAL_GRANTS, KEY, municipal("m-code", 999, "50")),
        (
            DISPENSINGS,
            KEY,
            report(
                "ret-1", -10_000, "2024-03-01T10:00:00+01:00", kind="return", return_of="never-sold"
            ),
        ),
        (
            DEFERRALS,
            KEY,
            {
                "message_id": "h-end",
                "sent_at": "2024-03-01T10:00:00+01:00",
                "pharmacy_number": "12300",
                "action": "ended",
                "agreement_id": "h-unknown",
                "date": "2024-03-01",
                "person": {"key": PERSON},
            },
        ),
        (CORRECTIONS, KEY, correction("c-unknown", "cancel", report_id="never-reported")),
        (SUBSIDY_SCALES, b"2025-01-01", bad_scale),
        (DISPENSINGS, KEY, report("after-all", 50_000, "2024-03-02T10:00:00+01:00")),
    ]
    for spec, key, message in sends:
        await produce(settings.kafka_bootstrap, names(spec), [(key, as_json(message))])
    async with running_worker(settings, register):
        dead = await read_until(settings.kafka_bootstrap, names(DEAD_LETTER), lambda r: len(r) >= 7)
        good = await read_until(settings.kafka_bootstrap, names(DECISIONS), lambda r: len(r) >= 1)
        changes = await read_until(
            settings.kafka_bootstrap,
            names(CHANGES),
            lambda r: any(b'"g-good"' in x.value for x in r),
        )
    reasons = {
        dict(r.headers)["reghub-message-id"].decode(): dict(r.headers)["reghub-reason"].decode()
        for r in dead
    }
    assert "valid_to precedes valid_from" in reasons["g-backwards"]
    assert "supplement_percentage outside 0-100" in reasons["m-150"]
    assert "unknown municipality code" in reasons["m-code"]
    assert reasons["ret-1"] == "rule.return_of_unknown_report"
    assert reasons["h-end"].startswith("rule.unknown_agreement")
    assert reasons["c-unknown"] == "rule.correction_of_unknown_report"
    assert reasons["scale-bad"].startswith("scale.cap_mismatch")
    assert all(PERSON not in reason for reason in reasons.values())
    assert orjson.loads(good[0].value)["report_id"] == "after-all"
    applied = [
        orjson.loads(c.value) for c in changes if orjson.loads(c.value)["outcome"] == "applied"
    ]
    assert [c["message_id"] for c in applied] == ["g-good"]
    assert all(
        PERSON not in c.value.decode() for c in changes
    )  # monitoring carries pseudonyms only


async def test_a_correction_mid_period_makes_balancing_amounts_and_moves_the_saldo(
    settings: Settings, register: Register
) -> None:
    """§ 7 stk. 6 and § 6: correcting the first of three purchases (1,000 → 500 kr) in a 2024 period."""
    names = TopicNames(settings.topic_prefix)
    sales = [
        report("p1", 100_000, "2024-01-10T10:00:00+01:00"),
        report("p2", 100_000, "2024-02-10T10:00:00+01:00"),
        report("p3", 200_000, "2024-03-10T10:00:00+01:00"),
    ]
    await produce(settings.kafka_bootstrap, names(DISPENSINGS), [(KEY, as_json(s)) for s in sales])
    async with running_worker(settings, register):
        before = decisions_by_id(
            await read_until(settings.kafka_bootstrap, names(DECISIONS), lambda r: len(r) >= 3)
        )
        assert [before[i]["subsidy"] for i in ("p1", "p2", "p3")] == [0, 51_125, 150_850]
        fix = correction(
            "fix-p1",
            "correct",
            report_id="p1",
            lines=[{"drug_id": "028100", "reimbursement_price": 50_000, "actual_price": 50_000}],
        )
        await produce(settings.kafka_bootstrap, names(CORRECTIONS), [(KEY, as_json(fix))])
        await read_until(
            settings.kafka_bootstrap, names(CHANGES), lambda r: any(b"fix-p1" in x.value for x in r)
        )
        await produce(
            settings.kafka_bootstrap,
            names(DISPENSINGS),
            [(KEY, as_json(report("p4", 10_000, "2024-04-10T10:00:00+02:00")))],
        )
        after = decisions_by_id(
            await read_until(settings.kafka_bootstrap, names(DECISIONS), lambda r: len(r) >= 4)
        )
    # p2 was due 212.50 instead of 511.25, p3 1,423.75 instead of 1,508.50: the person owes 383.50 kr
    async with register.engine.connect() as conn:
        balances = (
            await conn.execute(select(tables.balances).order_by(tables.balances.c.arose_on))
        ).all()
        period = (await conn.execute(select(tables.subsidy_periods))).one()
        p1 = (
            await conn.execute(select(tables.purchases).where(tables.purchases.c.report_id == "p1"))
        ).one()
    assert [(b.amount, b.arose_in_period.isoformat()) for b in balances] == [
        (-29_875, "2024-01-10"),
        (-8_475, "2024-01-10"),
    ]
    assert p1.basis == 50_000 and p1.status == "corrected"
    p4 = after["p4"]
    assert p4["saldo_before"] == 350_000 and p4["saldo_after"] == 360_000
    assert p4["subsidy_entitled"] == 7_500
    assert p4["balancing_applied"] == -7_500 and p4["subsidy"] == 0
    assert p4["remaining_balancing"] == -30_850
    assert period.saldo == 360_000
    assert sum(b.remaining for b in balances) == -30_850


async def test_a_2025_scale_through_the_topic_releases_parked_2025_reports(
    settings: Settings, register: Register
) -> None:
    names = TopicNames(settings.topic_prefix)
    await produce(
        settings.kafka_bootstrap,
        names(DISPENSINGS),
        [(KEY, as_json(report("y25", 200_000, "2025-02-01T10:00:00+01:00")))],
    )
    # A scale built for the test (2025 is not in our public sources): own payment at T4 = 4,696.25 kr.
    scale = {
        "message_id": "scale-2025",
        "effective_from": "2025-01-01",
        "valid_to": "2025-12-31",
        "t1": 110_000,
        "t2": 184_500,
        "t3": 400_000,
        "t4": 2_190_000,
        "t4_child": 2_679_700,
        "own_payment_cap": 469_625,
        "source": "test scale",
    }
    async with running_worker(settings, register):
        parked = await read_until(settings.kafka_bootstrap, names(DECISIONS), lambda r: len(r) >= 1)
        first = orjson.loads(parked[0].value)
        assert first["status"] == "parked" and first["reason"].startswith("rule.unknown_scale")
        await produce(
            settings.kafka_bootstrap, names(SUBSIDY_SCALES), [(b"2025-01-01", as_json(scale))]
        )
        records = await read_until(
            settings.kafka_bootstrap, names(DECISIONS), lambda r: len(r) >= 2
        )
    released = orjson.loads(records[1].value)
    assert released["report_id"] == "y25" and released["status"] == "registered"
    # 1,100 kr at 0 % + 745 kr at 50 % + 155 kr at 75 %
    assert released["subsidy"] == 48_875
    async with register.engine.connect() as conn:
        row = (await conn.execute(select(tables.parked_messages))).one()
        stored = (await conn.execute(select(tables.subsidy_scales))).one()
    assert row.replayed_at is not None
    assert stored.t4 == 2_190_000


async def test_a_deviation_becomes_balancing_at_the_next_purchase_elsewhere(
    settings: Settings, register: Register
) -> None:
    """Two pharmacies sold at the same moment: one granted 100 kr too much; the next purchase settles it."""
    names = TopicNames(settings.topic_prefix)
    first = report("dev-1", 400_000, "2024-04-02T11:00:00+02:00", granted_subsidy=211_975)
    later = report("dev-2", 20_000, "2024-04-20T11:00:00+02:00", pharmacy_number="45600")
    await produce(
        settings.kafka_bootstrap, names(DISPENSINGS), [(KEY, as_json(first)), (KEY, as_json(later))]
    )
    async with running_worker(settings, register):
        got = decisions_by_id(
            await read_until(settings.kafka_bootstrap, names(DECISIONS), lambda r: len(r) >= 2)
        )
    assert got["dev-1"]["subsidy"] == 201_975 and got["dev-1"]["deviation"] == 10_000
    assert got["dev-1"]["remaining_balancing"] == -10_000
    assert got["dev-2"]["pharmacy_number"] == "45600"
    assert got["dev-2"]["subsidy_entitled"] == 17_000  # 200 kr at 85 %
    assert got["dev-2"]["balancing_applied"] == -10_000 and got["dev-2"]["subsidy"] == 7_000
    assert got["dev-2"]["remaining_balancing"] == 0


async def test_late_reports_raise_alerts_without_person_keys(
    settings: Settings, register: Register
) -> None:
    """§ 7 stk. 1 "immediately" and § 7 stk. 4 "the same day", measured at the record's timestamp."""
    strict = settings.model_copy(update={"report_grace_seconds": 60})
    names = TopicNames(strict.topic_prefix)
    deferral = {
        "message_id": "h-late",
        "sent_at": "2024-01-03T09:00:00+01:00",
        "pharmacy_number": "12300",
        "action": "entered",
        "agreement_id": "h-late",
        "date": "2024-01-02",
        "monthly_rate": 38_125,
        "rates": 12,
        "person": {"key": PERSON},
    }
    await produce(strict.kafka_bootstrap, names(DEFERRALS), [(KEY, as_json(deferral))])
    await produce(
        strict.kafka_bootstrap,
        names(DISPENSINGS),
        [(KEY, as_json(report("late-1", 10_000, "2024-03-01T10:00:00+01:00")))],
    )
    async with running_worker(strict, register):
        alerts = await read_until(strict.kafka_bootstrap, names(ALERTS), lambda r: len(r) >= 2)
    bodies = {orjson.loads(a.value)["message_id"]: orjson.loads(a.value) for a in alerts}
    assert bodies["late-1"]["kind"] == "late_report" and bodies["late-1"]["reporter"] == "12300"
    assert "§ 7 stk. 1" in bodies["late-1"]["detail"]
    assert "2024-01-03T00:00:00+01:00" in bodies["h-late"]["detail"]
    assert "§ 7 stk. 4" in bodies["h-late"]["detail"]
    assert all(PERSON not in a.value.decode() for a in alerts)


async def test_a_partition_full_of_rejects_raises_a_dead_letter_ratio_alert(
    settings: Settings, register: Register
) -> None:
    names = TopicNames(settings.topic_prefix)
    junk = [(KEY, b'{"report_id": "junk-%d"' % i) for i in range(30)]
    await produce(settings.kafka_bootstrap, names(DISPENSINGS), junk)
    async with running_worker(settings, register):
        dead = await read_until(
            settings.kafka_bootstrap, names(DEAD_LETTER), lambda r: len(r) >= 30
        )
        alerts = await read_until(settings.kafka_bootstrap, names(ALERTS), lambda r: len(r) >= 1)
        await produce(
            settings.kafka_bootstrap, names(DISPENSINGS), [(KEY, as_json(report("fine", 10_000)))]
        )
        good = await read_until(settings.kafka_bootstrap, names(DECISIONS), lambda r: len(r) >= 1)
    alert = orjson.loads(alerts[0].value)
    assert alert["kind"] == "dead_letter_ratio" and alert["source_topic"] == names(DISPENSINGS)
    rejected, total = (
        int(x) for x in alert["detail"].split(": ")[1].split(" messages")[0].split(" of ")
    )
    assert rejected == total >= 20
    assert len(dead) == 30 and orjson.loads(good[0].value)["report_id"] == "fine"


async def test_a_return_lowers_the_saldo_and_reverses_the_subsidy(
    settings: Settings, register: Register
) -> None:
    """spec § 7: a return carries negative amounts and reverses F(S − b) − F(S)."""
    names = TopicNames(settings.topic_prefix)
    sale = report("sale-1", 400_000, "2024-04-02T11:00:00+02:00")
    back = report("ret-1", -50_000, "2024-04-05T11:00:00+02:00", kind="return", return_of="sale-1")
    too_much = report(
        "ret-2", -400_000, "2024-04-06T11:00:00+02:00", kind="return", return_of="sale-1"
    )
    await produce(settings.kafka_bootstrap, names(DISPENSINGS), [(KEY, as_json(sale))])
    async with running_worker(settings, register):
        await read_until(settings.kafka_bootstrap, names(DECISIONS), lambda r: len(r) >= 1)
        await produce(
            settings.kafka_bootstrap,
            names(DISPENSINGS),
            [(KEY, as_json(back)), (KEY, as_json(too_much))],
        )
        got = decisions_by_id(
            await read_until(settings.kafka_bootstrap, names(DECISIONS), lambda r: len(r) >= 2)
        )
        dead = await read_until(settings.kafka_bootstrap, names(DEAD_LETTER), lambda r: len(r) >= 1)
    # saldo 4,000 → 3,500 kr: 85 kr at 85 % and 415 kr at 75 % are given back
    assert got["ret-1"]["subsidy"] == -(7_225 + 31_125)
    assert got["ret-1"]["citizen_pays"] == -50_000 + 38_350
    assert got["ret-1"]["saldo_after"] == 350_000
    assert dict(dead[0].headers)["reghub-reason"] == b"rule.return_exceeds_sale"
    async with register.engine.connect() as conn:
        sold = (
            await conn.execute(
                select(tables.purchases).where(tables.purchases.c.report_id == "sale-1")
            )
        ).one()
        saldo = (await conn.execute(select(tables.subsidy_periods.c.saldo))).scalar()
    assert sold.returned_basis == 50_000 and saldo == 350_000
