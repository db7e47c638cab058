"""Step 4 of a batch, `publish`: decisions, dead letters, change feed, alerts and replays, delivery awaited."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = field(default=())


class Publisher:
    """Sends a batch's outputs and waits until the broker has them all.

    Raises (from `publish`):
        aiokafka.errors.KafkaError: a message could not be delivered; the caller must not commit.
    """

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    async def publish(self, messages: list[Outgoing]) -> None:
        if not messages:
            return
        futures = [
            await self.producer.send(m.topic, m.value, key=m.key, headers=list(m.headers) or None)
            for m in messages
        ]
        await asyncio.gather(*futures)
