"""Missing reports found by the worker's own timer, through the real broker, with a kill in between.

The production worker (`python -m reghub worker`, faust timer every 0.5 s, grace 2 s): three till
payments. r1's report comes at once (on time); r3's carries a broker time 5 s after the payment (late:
the register judges by when the report reached the broker); r2's does not come. At its due time the
`report_missing` alert appears on `ctr.alerts.v1`. The worker is killed (SIGKILL) and another started:
the alert is not raised again. r2's report comes after all: one `report_resolved` alert.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import select

from reghub.broker import EmbeddedBroker, free_port
from reghub.settings import Settings
from sinks import tables
from sinks.register import Register
from streams.topics import ALERTS, DECISIONS, DISPENSINGS, PAYMENTS, TopicNames
from tests.kafka_helpers import as_json, produce, read_until
from tests.messages import PERSON, report
from tests.test_worker_process import spawn_reghub, worker_env

pytestmark = [pytest.mark.broker, pytest.mark.database]


def start(env: dict[str, str], tmp: Path, name: str) -> subprocess.Popen[bytes]:
    return spawn_reghub(
        ["worker"], {**env, "REGHUB_WEB_PORT": str(free_port())}, tmp / f"{name}.log", tmp
    )


async def produce_at(bootstrap: str, topic: str, key: bytes, value: bytes, at_ms: int) -> None:
    """One record with its broker time set by the producer (CreateTime)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key, timestamp_ms=at_ms)
    finally:
        await producer.stop()


def kinds(records: list) -> list[tuple[str, str]]:
    """The report alerts' (kind, obligation) in log order, each alert once: the relay is at-least-once,
    so a worker killed before it marked its outbox row sent publishes the same record again (same
    bytes, same `at`); an alert raised twice would differ in `at`."""
    found = []
    for value in dict.fromkeys(r.value for r in records):
        alert = orjson.loads(value)
        if alert["kind"].startswith("report_"):
            found.append((alert["kind"], alert["message_id"]))
    return found


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # one is enough
async def test_a_missing_report_is_alerted_once_across_a_kill_and_resolved_when_it_comes(
    broker: EmbeddedBroker, settings: Settings, register: Register, tmp_path: Path
) -> None:
    names = TopicNames(settings.topic_prefix)
    env = {
        **worker_env(broker, settings, 0, tmp_path),
        "REGHUB_REPORT_GRACE_SECONDS": "2",
        "REGHUB_OBLIGATION_CHECK_SECONDS": "0.5",
    }
    paid = datetime.now(UTC).isoformat()
    payments = [
        {
            "message_id": f"pay-{n}",
            "pharmacy_number": "12300",
            "dispensing_id": f"d-r{n}",
            "paid_at": paid,
            "person": {"key": PERSON},
        }
        for n in (1, 2, 3)
    ]
    workers = [start(env, tmp_path, "w1")]
    try:
        await produce(
            broker.bootstrap, names(PAYMENTS), [(PERSON.encode(), as_json(p)) for p in payments]
        )
        await produce(
            broker.bootstrap,
            names(DISPENSINGS),
            [(PERSON.encode(), as_json(report("r1", 10_000, paid)))],
        )
        await produce_at(
            broker.bootstrap,
            names(DISPENSINGS),
            PERSON.encode(),
            as_json(report("r3", 10_000, paid)),
            int(datetime.fromisoformat(paid).timestamp() * 1000) + 5_000,
        )
        missing = ("report_missing", "payment:12300:d-r2")
        records = await read_until(
            broker.bootstrap, names(ALERTS), lambda rs: missing in kinds(rs), timeout=90
        )
        assert missing in kinds(records), (tmp_path / "w1.log").read_text()[-3000:]
        os.killpg(workers[0].pid, signal.SIGKILL)
        workers[0].wait()
        workers.append(start(env, tmp_path, "w2"))
        await asyncio.sleep(8)  # the new worker joins and its timer ticks many times
        await produce(
            broker.bootstrap,
            names(DISPENSINGS),
            [(PERSON.encode(), as_json(report("r2", 10_000, paid)))],
        )
        await read_until(broker.bootstrap, names(DECISIONS), lambda rs: len(rs) >= 3, timeout=60)
        resolved = ("report_resolved", "payment:12300:d-r2")
        records = await read_until(
            broker.bootstrap, names(ALERTS), lambda rs: resolved in kinds(rs), timeout=60
        )
        await asyncio.sleep(2)
        records = await read_until(broker.bootstrap, names(ALERTS), lambda rs: False, timeout=2)
    finally:
        for w in workers:
            if w.poll() is None:
                os.killpg(w.pid, signal.SIGTERM)
                w.wait(30)
    assert sorted(kinds(records)) == [missing, resolved]
    async with register.engine.connect() as conn:
        states = {r.obligation_id: r.state for r in await conn.execute(select(tables.obligations))}
    assert states == {
        "payment:12300:d-r1": "on_time",
        "payment:12300:d-r2": "resolved",
        "payment:12300:d-r3": "late",
    }
