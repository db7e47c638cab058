"""The worker's batches leave no cycles of library objects behind, and a full collection runs on a clock.

The worker sets the collector's thresholds so high (`RegisterProcessor.start`) that Python's own full
collection comes once in hours at a steady rate; what a batch leaves in reference cycles stays until
then. A statement built per batch (an upsert's `excluded` alias) and a retry policy built per batch
were such cycles: at 300 reports/s the worker's memory grew by about 0.2 MB a minute (`bench.soak`).
"""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from reghub.settings import Settings
from sinks.register import Register
from streams import processor as processor_module
from streams.topics import DISPENSINGS, TopicNames
from tests.kafka_helpers import as_json, produce, running_worker
from tests.messages import PERSON, report

pytestmark = [pytest.mark.broker, pytest.mark.database]

REPORTS = 40


async def _run_batches(settings: Settings, register: Register) -> int:
    """REPORTS reports through the real worker in batches of two; returns the batches it took."""
    names = TopicNames(settings.topic_prefix)
    first = datetime(2024, 4, 2, 9, 0, tzinfo=UTC)
    await produce(
        settings.kafka_bootstrap,
        names(DISPENSINGS),
        [
            (
                PERSON.encode(),
                as_json(report(f"r-gc-{i}", 10_000, (first + timedelta(minutes=i)).isoformat())),
            )
            for i in range(REPORTS)
        ],
    )
    async with running_worker(settings, register) as processor:
        while processor.stats.messages < REPORTS:
            await asyncio.sleep(0.05)
        await processor.finished()
        return processor.stats.batches


def _garbage() -> Counter[str]:
    """The objects that only the cyclic collector would free now, by type name."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        found = Counter(type(o).__name__ for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    return found


async def test_batches_leave_no_statements_or_retry_policies_in_cycles(
    settings: Settings, register: Register, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(processor_module, "FULL_COLLECTION_EVERY_S", 10**9)
    settings = settings.model_copy(update={"batch_max_records": 2})
    gc.collect()
    batches = await _run_batches(settings, register)
    assert batches >= REPORTS // 2
    left = _garbage()
    # before: two `excluded` aliases (the counts' upserts) and two retry policies per batch
    assert left["Alias"] == 0, left.most_common(10)
    assert left["AsyncRetrying"] == 0, left.most_common(10)


async def test_a_full_collection_runs_between_batches_when_due(
    settings: Settings, register: Register, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(processor_module, "FULL_COLLECTION_EVERY_S", 0.0)
    settings = settings.model_copy(update={"batch_max_records": 2})
    before = gc.get_stats()[2]["collections"]
    batches = await _run_batches(settings, register)
    assert gc.get_stats()[2]["collections"] - before >= batches
