"""What the campaign produces: synthetic reports, and a producer that records what the broker
acknowledged."""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from reghub import synthetic


@dataclass
class Sent:
    """What the broker acknowledged: report ids, and where each record landed."""

    ids: set[str] = field(default_factory=set)
    positions: dict[int, tuple[str, int, int]] = field(default_factory=dict)  # item → (t, p, o)
    ends: dict[tuple[str, int], int] = field(default_factory=dict)  # last offset acked + 1
    refused: Counter[str] = field(default_factory=Counter)  # non-retriable errors, by type
    retries: int = 0
    last_ack_at: float = 0.0


class Feeder:
    """Produces with acks=all, paced or at full speed; a record that fails is sent again."""

    def __init__(self, bootstrap: str, request_timeout_s: float) -> None:
        self.producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=False,
            linger_ms=5,
            request_timeout_ms=int(request_timeout_s * 1000),
            max_request_size=4 * 1024 * 1024,
        )
        self.sent = Sent()

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def send(
        self,
        items: list[tuple[int, str, bytes | None, bytes | None, int | None, str | None]],
        rate: float | None = None,
        chunk: int = 2_000,
        attempts: int = 1_000,
    ) -> None:
        """items: (index, topic, key, value, timestamp ms, report id). `rate` per second, or all at
        once in chunks. A record whose error is not retriable is tried `attempts` times at most."""
        if rate:
            chunk = max(1, int(rate * 0.05))
        started = time.monotonic()
        for c in range(0, len(items), chunk):
            if rate:
                due = started + c / rate
                if due > time.monotonic():
                    await asyncio.sleep(due - time.monotonic())
            todo = items[c : c + chunk]
            tries = 0
            while todo:
                tries += 1
                futures: list[Any] = []
                for _i, topic, key, value, ts, _rid in todo:
                    try:
                        futures.append(
                            await self.producer.send(topic, value, key=key, timestamp_ms=ts)
                        )
                    except KafkaError as exc:  # refused before it left: too large, …
                        futures.append(_failed(exc))
                results = await asyncio.gather(*futures, return_exceptions=True)
                again = []
                for item, res in zip(todo, results, strict=True):
                    if isinstance(res, BaseException):
                        retriable = isinstance(res, KafkaError) and res.retriable
                        if (not retriable and tries >= 3) or tries >= attempts:
                            self.sent.refused[type(res).__name__] += 1
                        else:
                            again.append(item)
                        continue
                    index, _t, _k, _v, _ts, rid = item
                    self.sent.positions[index] = (res.topic, res.partition, res.offset)
                    where = (res.topic, res.partition)
                    self.sent.ends[where] = max(self.sent.ends.get(where, 0), res.offset + 1)
                    if rid is not None:
                        self.sent.ids.add(rid)
                self.sent.last_ack_at = time.monotonic()
                if again:
                    self.sent.retries += len(again)
                    await asyncio.sleep(0.5)
                todo = again


async def _failed(exc: BaseException) -> None:
    raise exc


def synthetic_reports(
    args: argparse.Namespace, topic: str, label: str
) -> list[tuple[int, str, bytes | None, bytes | None, int | None, str | None]]:
    """N valid reports spread over persons (so over partitions); report ids `f-<label>-<i>`."""
    rng = random.Random(args.seed)
    people = synthetic.persons(args.persons, rng)
    prefix = f"f-{label}-"
    encoded = synthetic.encoded_reports(
        args.n,
        people,
        synthetic.pharmacies(),
        synthetic.DEMO_START,
        timedelta(days=300),
        seed=args.seed,
        prefix=prefix,
    )
    return [(i, topic, k, v, ts, f"{prefix}{i}") for i, (k, v, ts) in enumerate(encoded)]
