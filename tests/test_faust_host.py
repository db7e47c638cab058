"""Faust hosts the worker's web port and timers and runs no Kafka client of its own: after a worker
ran, the broker has the register's consumer group and no faust group or leader topic beside it."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from reghub.broker import EmbeddedBroker, free_port
from reghub.settings import Settings
from streams.topics import DECISIONS, DISPENSINGS, TopicNames
from tests.kafka_helpers import as_json, produce, read_until
from tests.messages import PERSON, report
from tests.test_worker_process import wait_for_health, worker_env

pytestmark = [pytest.mark.broker, pytest.mark.database]


async def groups_and_topics(bootstrap: str) -> tuple[set[str], set[str]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        groups = {str(g[0]) for g in await admin.list_consumer_groups()}
        topics = set(await admin.list_topics())
    finally:
        await admin.close()
    return groups, topics


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_worker_leaves_no_faust_group_or_leader_topic(
    broker: EmbeddedBroker, settings: Settings, tmp_path: Path
) -> None:
    names = TopicNames(settings.topic_prefix)
    port = free_port()
    await produce(
        broker.bootstrap, names(DISPENSINGS), [(PERSON.encode(), as_json(report("r-host-1", 1000)))]
    )
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "reghub", "worker"],
            env=worker_env(broker, settings, port, tmp_path),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        records = await read_until(
            broker.bootstrap, names(DECISIONS), lambda r: len(r) >= 1, timeout=60
        )
        assert records, f"no decision within 60 s; log:\n{log_path.read_text()[-4000:]}"
        await wait_for_health(port, proc, timeout=30)  # its web port answers without faust's group
        groups, topics = await groups_and_topics(broker.bootstrap)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    faust_id = f"{settings.consumer_group}-host"
    assert settings.consumer_group in groups, (
        groups
    )  # the listing works: the register's group is there
    assert faust_id not in groups, groups
    assert not {t for t in topics if t.startswith(faust_id)}, sorted(topics)
