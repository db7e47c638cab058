"""A partner's ordinary Kafka client (librdkafka through `confluent-kafka`) produces to and reads our topics.

Nothing here uses aiokafka on the partner's side: the report and the malformed message go in with a
`confluent_kafka.Producer`, and the decision and the dead letter come out through a
`confluent_kafka.Consumer` in its own consumer group. The worker in between is the real one.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import orjson
import pytest
from confluent_kafka import Consumer, KafkaException, Message, Producer

from reghub.settings import Settings
from sinks.register import Register
from streams.topics import DEAD_LETTER, DECISIONS, DISPENSINGS, TopicNames
from tests.kafka_helpers import running_worker
from tests.messages import PERSON, report

pytestmark = [pytest.mark.broker, pytest.mark.database]

DEADLINE_S = 30.0


def partner_produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    """Produce with librdkafka, acks=all, and fail on any delivery error."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "broker.address.family": "v4"}
    )
    errors: list[str] = []

    def delivered(err: object, _msg: Message) -> None:
        if err is not None:
            errors.append(str(err))

    for key, value in messages:
        producer.produce(topic, value=value, key=key, on_delivery=delivered)
    remaining = producer.flush(DEADLINE_S)
    assert remaining == 0, f"{remaining} message(s) not delivered within {DEADLINE_S} s"
    assert not errors, errors


def partner_read(bootstrap: str, topic: str, count: int) -> list[Message]:
    """Read `topic` from the beginning in a fresh consumer group until `count` messages or the deadline.

    Tansu answers a group join after about half the session timeout, hence 6 s and a polling loop.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"partner-{uuid.uuid4().hex[:10]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000,
            "broker.address.family": "v4",
        }
    )
    consumer.subscribe([topic])
    got: list[Message] = []
    deadline = time.monotonic() + DEADLINE_S
    try:
        while len(got) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            got.append(msg)
    finally:
        consumer.close()
    return got


def headers_of(msg: Message) -> dict[str, bytes]:
    return {k: v for k, v in (msg.headers() or [])}


async def test_a_partner_client_produces_a_report_and_reads_its_decision(
    settings: Settings, register: Register
) -> None:
    names = TopicNames(settings.topic_prefix)
    await asyncio.to_thread(
        partner_produce,
        settings.kafka_bootstrap,
        names(DISPENSINGS),
        [(PERSON.encode(), orjson.dumps(report("r-partner-1", 400_000)))],
    )
    async with running_worker(settings, register):
        records = await asyncio.to_thread(
            partner_read, settings.kafka_bootstrap, names(DECISIONS), 1
        )
    assert len(records) == 1, "no decision read by the confluent consumer"
    msg = records[0]
    assert msg.key() == b"12300"  # decisions are keyed by pharmacy number
    decision = orjson.loads(msg.value())
    assert decision["report_id"] == "r-partner-1"
    assert decision["status"] == "registered"
    assert decision["subsidy"] == 201_975  # C06: 4,000 kr on an empty saldo in 2024
    assert decision["saldo_before"] == 0
    assert decision["saldo_after"] == 400_000
    assert decision["pharmacy_number"] == "12300"


async def test_a_partner_clients_malformed_message_lands_on_the_dead_letter_topic(
    settings: Settings, register: Register
) -> None:
    names = TopicNames(settings.topic_prefix)
    broken = b'{"report_id": "r-partner-bad", "lines": ['
    await asyncio.to_thread(
        partner_produce,
        settings.kafka_bootstrap,
        names(DISPENSINGS),
        [(PERSON.encode(), broken)],
    )
    async with running_worker(settings, register):
        dead = await asyncio.to_thread(
            partner_read, settings.kafka_bootstrap, names(DEAD_LETTER), 1
        )
    assert len(dead) == 1, "nothing read from the dead-letter topic by the confluent consumer"
    msg = dead[0]
    headers = headers_of(msg)
    assert msg.value() == broken
    assert msg.key() == PERSON.encode()  # keyed as the source message
    assert headers["reghub-reason"].startswith(b"schema.json_invalid")
    assert headers["reghub-source-topic"] == names(DISPENSINGS).encode()
    assert headers["reghub-source-offset"] == b"0"
    assert PERSON.encode() not in headers["reghub-reason"]
