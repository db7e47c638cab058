"""Reading the output topics: following one as it grows, reading one whole, and what the campaign
keeps of a decision, a change-feed record and a dead letter."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

IDLE_S = 1.5  # reading a whole topic: nothing new for this long after its reported end is its end


class Tail:
    """Follows a topic from its beginning (no group) and calls `on_record` for each record."""

    def __init__(
        self, bootstrap: str, topic: str, on_record: Callable[[ConsumerRecord], None]
    ) -> None:
        self.consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )
        self.on_record = on_record
        self.records = 0
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                batch = await self.consumer.getmany(timeout_ms=200, max_records=10_000)
            except Exception:  # the broker may be stopped: try again
                await asyncio.sleep(0.5)
                continue
            for recs in batch.values():
                for rec in recs:
                    self.records += 1
                    self.on_record(rec)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.consumer.stop()


async def read_all(
    bootstrap: str, topic: str, keep: Callable[[ConsumerRecord], Any], timeout: float = 300.0
) -> list[Any]:
    """`keep(record)` for every record of `topic` now, read by a new consumer from the beginning until
    it has reached the end offsets the broker reports and then received nothing for `IDLE_S` (Tansu's
    reported end can be short of the real one: the base offset of the last record batch, plus one)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    try:
        await consumer.topics()
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[Any] = []
        seen = dict.fromkeys(tps, 0)
        deadline = time.monotonic() + timeout
        idle_since = time.monotonic()
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: read {len(out)} records, not to the end")
            batch = await consumer.getmany(timeout_ms=200, max_records=20_000)
            for tp, recs in batch.items():
                out.extend(keep(r) for r in recs)
                seen[tp] = recs[-1].offset + 1
            if batch:
                idle_since = time.monotonic()
            elif all(seen[tp] >= ends[tp] for tp in tps) and (
                time.monotonic() - idle_since >= IDLE_S
            ):
                return out
    finally:
        await consumer.stop()


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """What the campaign keeps of a dead letter: its headers, not the (maybe huge) value."""

    reason: str
    message_id: str
    source: tuple[str, int, int]  # topic, partition, offset of the record it rejects

    @classmethod
    def of(cls, rec: ConsumerRecord) -> DeadLetter:
        def number(name: str) -> int:
            value = header(rec, name)
            return int(value) if value.lstrip("-").isdigit() else -1

        return cls(
            header(rec, "reghub-reason"),
            header(rec, "reghub-message-id"),
            (
                header(rec, "reghub-source-topic"),
                number("reghub-source-partition"),
                number("reghub-source-offset"),
            ),
        )


def purchase_decision(rec: ConsumerRecord) -> str | None:
    """The report id of a purchase decision (None for anything else on the topic)."""
    try:
        d = orjson.loads(rec.value)
    except (orjson.JSONDecodeError, TypeError):
        return None
    if isinstance(d, dict) and d.get("kind", "purchase") == "purchase":
        rid = d.get("report_id")
        return rid if isinstance(rid, str) else None
    return None


def change_outcome(rec: ConsumerRecord) -> tuple[str, str, str] | None:
    """(source topic, message id, outcome) of a change-feed record."""
    try:
        c = orjson.loads(rec.value)
        return c["source_topic"], c["message_id"], c["outcome"]
    except (orjson.JSONDecodeError, TypeError, KeyError):
        return None


def header(rec: ConsumerRecord, name: str) -> str:
    for k, v in rec.headers or ():
        if k == name:
            return (v or b"").decode("utf-8", "replace")
    return ""
