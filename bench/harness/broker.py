"""The broker side of a benchmark: reports produced in whole batches, the moment a consumer has its
partitions, and the ceiling (a bare aiokafka consumer reading the topic)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import murmur2

from bench.harness.timing import Result

SESSION_TIMEOUT_MS = 6_000
JOIN_TIMEOUT_S = 60.0


async def produce(bootstrap: str, topic: str, reports: list[tuple[bytes, bytes, int]]) -> float:
    """Send every report in whole batches, partitioned as aiokafka's default partitioner would."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=20,
        max_batch_size=1024 * 1024,
        max_request_size=16 * 1024 * 1024,
    )
    await producer.start()
    try:
        parts = sorted(await producer.partitions_for(topic))
        partition_of: dict[bytes, int] = {}
        began = time.perf_counter()
        builders = {p: producer.create_batch() for p in parts}
        futures: list[Awaitable[Any]] = []
        for key, value, ts in reports:
            p = partition_of.get(key)
            if p is None:
                p = partition_of[key] = parts[(murmur2(key) & 0x7FFFFFFF) % len(parts)]
            builder = builders[p]
            if builder.append(key=key, value=value, timestamp=ts) is None:  # full: send it
                futures.append(await producer.send_batch(builder, topic, partition=p))
                builder = builders[p] = producer.create_batch()
                builder.append(key=key, value=value, timestamp=ts)
        for p, builder in builders.items():
            if builder.record_count():
                futures.append(await producer.send_batch(builder, topic, partition=p))
        await asyncio.gather(*futures)
        return time.perf_counter() - began
    finally:
        await producer.stop()


async def assigned_at(consumer: AIOKafkaConsumer) -> float:
    """The moment `consumer` has partitions (polled every 5 ms)."""
    deadline = time.perf_counter() + JOIN_TIMEOUT_S
    while not consumer.assignment():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"no partitions assigned within {JOIN_TIMEOUT_S:.0f} s")
        await asyncio.sleep(0.005)
    return time.perf_counter()


async def ceiling(bootstrap: str, topic: str, n: int, max_records: int) -> Result:
    """A bare consumer: `getmany` and `orjson.loads` of each value, nothing else."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-ceiling-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=1_000,
        fetch_max_wait_ms=50,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    started = time.perf_counter()
    await consumer.start()
    result = Result()
    try:
        t0 = await assigned_at(consumer)
        result.join_seconds = t0 - started
        loads = orjson.loads
        while result.records < n:
            batch = await consumer.getmany(timeout_ms=500, max_records=max_records)
            for records in batch.values():
                for r in records:
                    loads(r.value)
                result.records += len(records)
            result.batches += bool(batch)
            if time.perf_counter() - t0 > 600:
                raise TimeoutError(f"ceiling read {result.records} of {n} in 600 s")
        result.seconds = time.perf_counter() - t0
    finally:
        await consumer.stop()
    return result
