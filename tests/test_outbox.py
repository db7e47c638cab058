"""No output lost: a crash between the register commit and the publish, a broker that lost its log, and
resends that conflict — each through the real broker, worker and register.
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import orjson
import pytest
from aiokafka.structs import ConsumerRecord
from sqlalchemy import func, select

from reghub import wiring
from reghub.broker import EmbeddedBroker, create_topics
from reghub.settings import Settings
from reghub.synthetic import DEMO_START, encoded_reports, persons, pharmacies
from sinks import outbox, tables
from sinks.publisher import OUTPUT_ID_HEADER
from sinks.register import Register
from sinks.rows import Outgoing
from streams.pipeline import CONFLICT_REASON
from streams.topics import ALERTS, DEAD_LETTER, DECISIONS, DISPENSINGS, TopicNames
from tests.conftest import settings_for
from tests.kafka_helpers import as_json, read_until, running_worker
from tests.messages import PERSON, report

pytestmark = [pytest.mark.broker, pytest.mark.database]


async def produce_reports(
    bootstrap: str, topic: str, count: int, prefix: str, days_later: int = 0
) -> None:
    """`count` valid reports of 40 persons over 20 days, spread over the topic's partitions by person."""
    from aiokafka import AIOKafkaProducer

    rng = random.Random(prefix)
    people = persons(40, rng)
    records = encoded_reports(
        count,
        people,
        pharmacies(),
        DEMO_START + timedelta(days=days_later),
        timedelta(days=20),
        seed=len(prefix),
        prefix=prefix,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for batch_start in range(0, len(records), 500):
            sends = [
                await producer.send(topic, value, key=key)
                for key, value, _ in records[batch_start : batch_start + 500]
            ]
            await asyncio.gather(*sends)
    finally:
        await producer.stop()


def decided(records: list[ConsumerRecord]) -> set[str]:
    return {orjson.loads(r.value)["report_id"] for r in records}


async def count_rows(register: Register, table: object, *where: object) -> int:
    async with register.engine.connect() as conn:
        query = select(func.count()).select_from(table)  # type: ignore[arg-type]
        return int((await conn.execute(query.where(*where))).scalar_one())


async def test_outputs_committed_before_a_crash_are_published_at_the_next_start(
    settings: Settings, register: Register
) -> None:
    """The lost-decisions trial, step by step: the register commits batches (rows, offsets and
    outputs) and the worker dies before it publishes. The next worker publishes every decision, with
    an output id, and does not process the reports again."""
    names = TopicNames(settings.topic_prefix)
    await produce_reports(settings.kafka_bootstrap, names(DISPENSINGS), 300, "crash-")

    first = wiring.processor(settings, register)
    await first.start()
    try:
        committed = 0
        while committed < 300:  # steps 1-4 only: decode, load, handle, write — then "kill -9"
            fetched = await first.fetch()
            if fetched is None:
                continue
            offsets = {
                (tp.topic, tp.partition): r[-1].offset + 1 for tp, r in fetched.batch.items()
            }
            await first.pipeline.run(fetched.decoded, fetched.rejected, offsets, first.log_ids)
            committed += len(fetched.decoded)
    finally:
        await first.close()
    assert await count_rows(register, tables.purchases) == 300
    assert await count_rows(register, tables.outbox, tables.outbox.c.sent_at.is_(None)) >= 1
    nothing = await read_until(settings.kafka_bootstrap, names(DECISIONS), bool, timeout=2)
    assert nothing == []  # the crash lost them, as it did before the outbox

    async with running_worker(settings, register) as second:
        records = await read_until(
            settings.kafka_bootstrap, names(DECISIONS), lambda r: len(decided(r)) >= 300
        )
        await asyncio.sleep(0.5)
        assert second.stats.outcomes.get("duplicate", 0) == 0  # nothing was processed twice
        assert second.stats.messages == 0
    assert len(decided(records)) == 300
    ids = [dict(r.headers)[OUTPUT_ID_HEADER].decode() for r in records]
    assert len(set(ids)) == len(ids) == 300
    assert await count_rows(register, tables.outbox, tables.outbox.c.sent_at.is_(None)) == 0
    assert await count_rows(register, tables.purchases) == 300


async def test_a_register_read_from_a_lost_log_reads_the_new_log_from_its_start(
    database_url: str, register: Register
) -> None:
    """The embedded hub started twice: the register keeps the offsets of the first broker's log; the
    second broker starts empty and gets more reports than the first had (so only the log's identity
    tells). Every one is registered, and the worker says the log is not the one it read."""
    prefix = "again."
    registered = []
    for run, count in ((1, 120), (2, 150)):
        broker = EmbeddedBroker()
        broker.start()
        try:
            settings = settings_for(broker.bootstrap, database_url, prefix)
            names = TopicNames(prefix)
            await create_topics(settings.kafka_bootstrap, names, settings.topic_partitions)
            # the second run's reports are paid later: the same persons, later purchases
            await produce_reports(
                broker.bootstrap, names(DISPENSINGS), count, f"run{run}-", days_later=30 * run
            )
            async with running_worker(settings, register) as worker:
                while worker.stats.messages < count:
                    await asyncio.sleep(0.1)
                incidents = list(worker.stats.incidents)
            registered.append(await count_rows(register, tables.purchases))
            if run == 2:
                alerts = await read_until(
                    broker.bootstrap, names(ALERTS), lambda r: len(r) >= 2, timeout=10
                )
        finally:
            broker.stop()
    assert registered == [120, 270]
    kinds = {orjson.loads(a.value)["kind"] for a in alerts}
    assert kinds == {"log_replaced"}
    assert {i["kind"] for i in incidents} == {"log_replaced"}
    assert all("reading it from offset 0" in str(i["detail"]) for i in incidents)


async def test_a_resend_with_other_content_is_a_conflict_and_the_first_stays(
    settings: Settings, register: Register
) -> None:
    """The same report id three times in one batch, the third with another price, then once more in a
    later batch with yet another price: one purchase, one decision, and two dead letters that say so."""
    names = TopicNames(settings.topic_prefix)
    first = report("r-twice", 40_000)
    reordered = orjson.dumps(dict(reversed(list(first.items()))))  # same content, other key order
    changed = report("r-twice", 41_000)
    from tests.kafka_helpers import produce

    await produce(
        settings.kafka_bootstrap,
        names(DISPENSINGS),
        [
            (PERSON.encode(), as_json(first)),
            (PERSON.encode(), reordered),
            (PERSON.encode(), as_json(changed)),
        ],
    )
    async with running_worker(settings, register) as worker:
        while worker.stats.messages < 3:
            await asyncio.sleep(0.05)
        await produce(
            settings.kafka_bootstrap,
            names(DISPENSINGS),
            [(PERSON.encode(), as_json(report("r-twice", 42_000)))],
        )
        dead = await read_until(settings.kafka_bootstrap, names(DEAD_LETTER), lambda r: len(r) >= 2)
        for _ in range(200):  # a batch is counted once its offsets are committed, after its outputs
            if worker.stats.messages >= 4:
                break
            await asyncio.sleep(0.05)
        assert worker.stats.outcomes == {"registered": 1, "duplicate": 1, "rejected": 2}
    reasons = [dict(d.headers)["reghub-reason"].decode() for d in dead]
    assert reasons == [CONFLICT_REASON, CONFLICT_REASON]
    assert [orjson.loads(d.value)["lines"][0]["actual_price"] for d in dead] == [41_000, 42_000]
    assert await count_rows(register, tables.purchases) == 1


def test_the_outbox_frame_keeps_every_output_as_it_was() -> None:
    outputs = [
        Outgoing("a.topic", b"key", b'{"x": 1}', (("reghub-reason", b"why"), ("h", b""))),
        Outgoing("b", None, b"\xff\x00 not utf-8", ()),
        Outgoing("c", b"", b"", ()),
    ]
    assert outbox.decode(outbox.encode(outputs)) == outputs
    assert outbox.decode(outbox.encode([])) == []
    with pytest.raises(ValueError):
        outbox.decode(outbox.encode(outputs)[:-1] + b"")
    with pytest.raises(ValueError):
        outbox.decode(b"XX" + outbox.encode(outputs))
