"""Identity before sales through the real broker and worker: one fetch holding a renumbering and a
purchase under the new number (spec § 7, DECISION).

The worker applies a batch's topics in `streams.topics.INPUTS` order, dispensings before person events;
the renumbering must still take effect first, so the purchase's counter decision is made on the merged
period, not on a fresh one under the new number later repaired by a balancing amount.
"""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import select

from reghub.settings import Settings
from sinks import tables
from sinks.register import Register
from streams.topics import DECISIONS, DISPENSINGS, PERSON_EVENTS, TopicNames
from tests.kafka_helpers import as_json, produce, read_until, running_worker
from tests.messages import NEW_NUMBER, PERSON, renumbering, report

pytestmark = [pytest.mark.broker, pytest.mark.database]


def decided(records: list) -> dict[str, dict]:
    return {orjson.loads(r.value)["report_id"]: orjson.loads(r.value) for r in records}


async def test_a_renumbering_and_a_sale_under_the_new_number_in_one_fetch(
    settings: Settings, register: Register
) -> None:
    """a1 1,000 kr under A opens A's period. Then, with the worker stopped, b1 1,000 kr under B and
    the pharmacy's renumbering A → B are produced, so the restarted worker fetches both at once. b1 is
    decided on A's period: saldo 1,000 → 2,000, 730 × 50 % + 195 × 75 % = 511.25 kr (0 kr on a
    fresh period under B), and no balancing amount is needed."""
    names = TopicNames(settings.topic_prefix)
    a1 = report("a1", 100_000, "2024-03-01T10:00:00+01:00")
    await produce(settings.kafka_bootstrap, names(DISPENSINGS), [(PERSON.encode(), as_json(a1))])
    async with running_worker(settings, register):
        first = await read_until(settings.kafka_bootstrap, names(DECISIONS), lambda r: len(r) >= 1)
    assert list(decided(first)) == ["a1"]
    b1 = report("b1", 100_000, "2024-05-01T10:00:00+02:00", person=NEW_NUMBER)
    move = renumbering("r1", PERSON, NEW_NUMBER, "2024-04-10")
    await produce(
        settings.kafka_bootstrap, names(DISPENSINGS), [(NEW_NUMBER.encode(), as_json(b1))]
    )
    await produce(
        settings.kafka_bootstrap, names(PERSON_EVENTS), [(PERSON.encode(), as_json(move))]
    )
    async with running_worker(settings, register):
        records = await read_until(
            settings.kafka_bootstrap, names(DECISIONS), lambda r: len(r) >= 2
        )
    decision = decided(records)["b1"]
    assert decision["status"] == "registered"
    assert (decision["period_start"], decision["saldo_before"]) == ("2024-03-01", 100_000)
    assert (decision["subsidy"], decision["balancing_applied"]) == (51_125, 0)
    async with register.engine.connect() as conn:
        purchase = (
            await conn.execute(select(tables.purchases).where(tables.purchases.c.report_id == "b1"))
        ).one()
        processed = (
            await conn.execute(
                select(tables.processed_messages.c.processed_at).where(
                    tables.processed_messages.c.message_id == "r1"
                )
            )
        ).scalar_one()
        balances = (await conn.execute(select(tables.balances))).all()
    assert purchase.person_key == PERSON
    assert purchase.registered_at == processed  # one batch: one clock
    assert balances == []
