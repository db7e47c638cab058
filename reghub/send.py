"""`reghub send`: validate a JSON Lines file against its topic's schema and produce the valid lines."""

from __future__ import annotations

from pathlib import Path

from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from reghub.kafka_options import kafka_client_options, start_client
from reghub.settings import Settings
from reghub.wiring import topic_names
from streams.decode import parse, reason_of, record_key
from streams.topics import ALL


async def send_file(
    settings: Settings, topic: str, file: Path
) -> tuple[int, list[tuple[int, str]]]:
    """Returns the number sent and (line number, reason) for each refused line."""
    spec = next((s for s in ALL if s.base == topic and s.schema is not None), None)
    if spec is None:
        raise SystemExit(
            f"unknown input topic {topic!r}; one of: " + ", ".join(s.base for s in ALL)
        )
    good: list[tuple[bytes, bytes]] = []
    bad: list[tuple[int, str]] = []
    for number, line in enumerate(file.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            message = parse(line, spec)
        except ValidationError as exc:
            bad.append((number, reason_of(exc)))
            continue
        good.append((record_key(message, spec).encode(), line))
    if good:
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=settings.kafka_idempotence,
            **kafka_client_options(settings),
        )
        await start_client(producer, settings.kafka_bootstrap, settings.kafka_security_protocol)
        try:
            name = topic_names(settings)(spec)
            futures = [await producer.send(name, value, key=key) for key, value in good]
            for f in futures:
                await f
        finally:
            await producer.stop()
    return len(good), bad
