"""`reghub send`: validate a JSON Lines file against its topic's schema, produce the valid lines, and with
`--wait` print what the hub made of each one.

A line is checked as the worker would check it where that needs no register: the schema, and for a
subsidy scale its cap against its bands (`rules.subsidy.scale_problems`). With `--wait` the outcome
topics are read from their ends as they were before the first line was sent: a dispensing report is
answered by its decision (`ctr.decisions.v1`, matched by report id and pharmacy), any other message by
its change-feed entry (`ctr.changes.v1`, matched by topic and message id), and a rejected one by its
dead letter (`ctr.dead-letter.v1`, matched by the sent record's partition and offset).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from pydantic import BaseModel, ValidationError

from reghub.kafka_options import kafka_client_options
from reghub.settings import Settings
from reghub.wiring import topic_names
from rules.identifiers import mask_person_numbers
from rules.subsidy import scale_problems
from sinks.kafka_client import log_ends, start_client
from streams.decode import parse, reason_of, record_key
from streams.topics import (
    ALL,
    CHANGES,
    DEAD_LETTER,
    DECISIONS,
    DISPENSINGS,
    SUBSIDY_SCALES,
    TopicSpec,
)

CHECKS: dict[TopicSpec, Callable[[Any], list[str]]] = {
    SUBSIDY_SCALES: lambda scale: scale_problems(scale.to_scale()),
}
"""What the worker checks beyond the schema without the register, per topic: a line failing one is
refused here, before it is sent, with the reason the worker would give."""


@dataclass(frozen=True, slots=True)
class Sent:
    """One produced line and where it landed."""

    line: int
    message_id: str
    reporter: str | None  # a dispensing report's decision key: pharmacy number, or its P-number
    partition: int
    offset: int


@dataclass(slots=True)
class SendResult:
    """What `send_file` did: the lines sent, the lines refused, and with `wait` each sent line's answer
    (line number -> one line of text; absent: none came in time)."""

    sent: list[Sent] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)
    answers: dict[int, str] = field(default_factory=dict)
    dead_lettered: int = 0


def _message_id(message: BaseModel, spec: TopicSpec) -> str:
    if spec is DISPENSINGS:
        return message.report_id  # type: ignore[attr-defined]
    inner = getattr(message, "root", message)  # a registration event is a union of forms
    return str(getattr(inner, "message_id", ""))


def _reporter(message: BaseModel, spec: TopicSpec) -> str | None:
    if spec is not DISPENSINGS:
        return None
    return message.pharmacy_number or message.pharmacy_site_p_number  # type: ignore[attr-defined]


def _kr(ore: object) -> str:
    return f"{ore / 100:.2f} kr" if isinstance(ore, int) else "null"


def _decision_text(d: dict[str, Any]) -> str:
    status = d.get("status")
    if status == "parked":
        return f"parked ({d.get('reason')})"
    return (
        f"{status}: subsidy {_kr(d.get('subsidy'))}, citizen pays {_kr(d.get('citizen_pays'))}, "
        f"saldo {_kr(d.get('saldo_before'))} -> {_kr(d.get('saldo_after'))}"
    )


async def send_file(
    settings: Settings, topic: str, file: Path, wait: float | None = None
) -> SendResult:
    """Validate `file`, produce its valid lines in order, and with `wait` (seconds) read each one's
    outcome.

    Raises:
        SystemExit: `topic` is not an input topic.
        BrokerUnavailable: no broker answers.
    """
    spec = next((s for s in ALL if s.base == topic and s.schema is not None), None)
    if spec is None or spec is DEAD_LETTER:
        raise SystemExit(
            f"unknown input topic {topic!r}; one of: " + ", ".join(s.base for s in ALL)
        )
    result = SendResult()
    good: list[tuple[int, bytes, bytes, BaseModel]] = []
    for number, line in enumerate(file.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            message = parse(line, spec, int(time.time() * 1000))  # it reaches the broker now
        except ValidationError as exc:
            result.refused.append((number, reason_of(exc)))
            continue
        check = CHECKS.get(spec)
        problems = check(message) if check is not None else []
        if problems:
            result.refused.append((number, "; ".join(problems)))
            continue
        good.append((number, record_key(message, spec).encode(), line, message))
    if not good:
        return result
    names = topic_names(settings)
    watcher = None
    if wait is not None:
        outcomes = [CHANGES, DEAD_LETTER] + ([DECISIONS] if spec is DISPENSINGS else [])
        watcher = await _watch(settings, [names(s) for s in outcomes])
    try:
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=settings.kafka_idempotence,
            **kafka_client_options(settings),
        )
        await start_client(producer, settings.kafka_bootstrap, settings.kafka_security_protocol)
        try:
            name = names(spec)
            futures = [await producer.send(name, value, key=key) for _, key, value, _ in good]
            for (number, _, _, message), f in zip(good, futures, strict=True):
                meta = await f
                result.sent.append(
                    Sent(
                        number,
                        _message_id(message, spec),
                        _reporter(message, spec),
                        meta.partition,
                        meta.offset,
                    )
                )
        finally:
            await producer.stop()
        if watcher is not None and wait is not None:
            await _answers(watcher, names, spec, result, wait)
    finally:
        if watcher is not None:
            await watcher.stop()
    return result


async def _watch(settings: Settings, topics: list[str]) -> AIOKafkaConsumer:
    """A consumer of `topics` positioned at their ends as they are now, before anything is sent."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        **kafka_client_options(settings),
    )
    await start_client(consumer, settings.kafka_bootstrap, settings.kafka_security_protocol)
    await consumer.topics()  # metadata of the topics below
    parts = [
        TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())
    ]
    consumer.assign(parts)
    ends = await log_ends(consumer, parts)
    for tp, end in ends.items():
        consumer.seek(tp, end)
    return consumer


async def _answers(
    consumer: AIOKafkaConsumer,
    names: Callable[[TopicSpec], str],
    spec: TopicSpec,
    result: SendResult,
    wait: float,
) -> None:
    """Read the outcome topics until every sent line has its answer or `wait` seconds have passed."""
    source = names(spec)
    by_position = {(s.partition, s.offset): s for s in result.sent}
    by_id = {(s.message_id, s.reporter): s for s in result.sent}
    deadline = time.monotonic() + wait
    while len(result.answers) < len(result.sent) and time.monotonic() < deadline:
        batch = await consumer.getmany(timeout_ms=200)
        for tp, records in batch.items():
            for r in records:
                headers = {k: v.decode(errors="replace") for k, v in r.headers}
                try:
                    body = orjson.loads(r.value or b"")
                except orjson.JSONDecodeError:
                    body = None
                if tp.topic == names(DEAD_LETTER):
                    if headers.get("reghub-source-topic") != source:
                        continue
                    where = (
                        int(headers.get("reghub-source-partition", -1)),
                        int(headers.get("reghub-source-offset", -1)),
                    )
                    found = by_position.get(where)
                    if found is not None and found.line not in result.answers:
                        reason = mask_person_numbers(headers.get("reghub-reason", ""))
                        result.answers[found.line] = f"dead-lettered: {reason}"
                        result.dead_lettered += 1
                elif not isinstance(body, dict):
                    continue
                elif tp.topic == names(DECISIONS):
                    found = by_id.get((body.get("report_id"), r.key.decode() if r.key else None))
                    if found is not None and found.line not in result.answers:
                        result.answers[found.line] = _decision_text(body)
                elif body.get("source_topic") == source and body.get("outcome") != "rejected":
                    # rejections are answered by their dead letter, which says which record it was
                    found = by_id.get((body.get("message_id"), None))
                    if found is not None and found.line not in result.answers:
                        reason = body.get("reason")
                        outcome = str(body.get("outcome"))
                        result.answers[found.line] = f"{outcome} ({reason})" if reason else outcome
