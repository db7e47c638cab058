"""The worker's prefetch (`RegisterProcessor.fetch`): the next batch waits until the batch in the
register starts its write, then is decoded in slices; records it took from the consumer are always
returned, also when the task is cancelled (a failed batch seeks back over them)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from streams.handlers.base import ApplyConfig
from streams.processor import DECODE_SLICE, ConsumerConfig, RegisterProcessor
from streams.topics import DISPENSINGS, TopicNames
from tests.messages import PERSON, report

NAMES = TopicNames("prefetch.")


class Consumer:
    """Hands out one batch of records, then nothing."""

    def __init__(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        self.batch = batch

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[Any, Any]:
        batch, self.batch = self.batch, {}
        return batch


def records(n: int) -> dict[TopicPartition, list[ConsumerRecord]]:
    tp = TopicPartition(NAMES(DISPENSINGS), 0)
    found = []
    for i in range(n):
        value = orjson.dumps(report(f"p{i}", 10_000))
        found.append(
            ConsumerRecord(
                tp.topic, 0, i, 1_714_640_400_000, 0, PERSON.encode(), value, None, 0,
                len(value), [],
            )
        )  # fmt: skip
    return {tp: found}


def processor(n: int) -> RegisterProcessor:
    p = RegisterProcessor(
        ConsumerConfig("127.0.0.1:1", "g"),
        ApplyConfig("g", 60, b"test-pseudonym-key-0123456789"),
        None,  # type: ignore[arg-type]  # fetch never reads the register
        NAMES,
    )
    p.consumer = Consumer(records(n))  # type: ignore[assignment]
    return p


async def test_the_next_batch_waits_for_the_write_then_decodes_everything() -> None:
    p = processor(DECODE_SLICE * 2 + 3)
    p._decode_now.clear()  # a batch is in the register, before its write
    task = asyncio.create_task(p.fetch())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not task.done()
    p.pipeline.on_write()  # type: ignore[misc]  # the batch's write begins
    fetched = await task
    assert fetched is not None
    assert [d.message_id for d in fetched.decoded] == [f"p{i}" for i in range(DECODE_SLICE * 2 + 3)]
    assert fetched.rejected == []


async def test_a_cancelled_prefetch_returns_the_records_it_took() -> None:
    for step in (2, 5):  # cancelled while waiting for the write, and while decoding in slices
        p = processor(DECODE_SLICE * 3)
        p._decode_now.clear()
        task = asyncio.create_task(p.fetch())
        for _ in range(step):
            await asyncio.sleep(0)
        if step > 2:
            p._decode_now.set()
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        task.cancel()
        fetched = await task
        assert fetched is not None and len(fetched.decoded) == DECODE_SLICE * 3
        assert not task.cancelled()
