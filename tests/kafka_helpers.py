"""Test helpers that talk to the real broker: produce, run the worker, and read output topics."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from reghub import wiring
from reghub.settings import Settings
from sinks.register import Register
from streams.handlers import HANDLERS
from streams.handlers.base import Handler
from streams.processor import RegisterProcessor
from streams.topics import TopicSpec


async def produce(bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


def as_json(value: dict) -> bytes:
    return orjson.dumps(value)


@contextlib.asynccontextmanager
async def running_worker(
    settings: Settings, register: Register, handlers: Mapping[TopicSpec, Handler] = HANDLERS
) -> AsyncIterator[RegisterProcessor]:
    """The real register consumer, running in this event loop until the block ends."""
    processor = wiring.processor(settings, register, handlers)
    await processor.start()
    task = asyncio.create_task(processor.run())
    try:
        yield processor
    finally:
        await processor.stop()
        await task
        await processor.close()


async def read_until(
    bootstrap: str,
    topic: str,
    done: Callable[[list[ConsumerRecord]], bool],
    timeout: float = 30.0,
) -> list[ConsumerRecord]:
    """Read `topic` from the beginning until `done(records)` holds or `timeout` passes."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout
    try:
        while not done(records) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for recs in batch.values():
                records.extend(recs)
    finally:
        await consumer.stop()
    return records
