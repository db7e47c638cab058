"""The pipeline's batch semantics: a batch decides exactly as the same messages one batch at a time.

Load-then-handle must not depend on where batch boundaries fall: a correction of a report in the same
batch, a return of a sale in the same batch, and the same id twice in one batch.
"""

from __future__ import annotations

from typing import Any

import pytest

from sinks.register import Register, make_engine
from streams.pipeline import Pipeline
from streams.topics import CORRECTIONS, DISPENSINGS, TopicSpec
from tests.messages import correction, report
from tests.test_handler_atomicity import CONFIG, NAMES, decoded, snapshot, two_databases

pytestmark = pytest.mark.database
__all__ = ["two_databases"]  # the fixture, shared

Message = tuple[TopicSpec, dict[str, Any]]
FIX_P2 = correction(
    "fix-p2",
    "correct",
    report_id="p2",
    lines=[{"drug_id": "028100", "reimbursement_price": 50_000, "actual_price": 50_000}],
)
CASES: dict[str, tuple[list[Message], list[Message]]] = {
    # (history in earlier batches, then the messages under test)
    "correction of a report in the same batch": (
        [(DISPENSINGS, report("p1", 100_000, "2024-01-10T10:00:00+01:00"))],
        [
            (DISPENSINGS, report("p2", 100_000, "2024-02-10T10:00:00+01:00")),
            (DISPENSINGS, report("p3", 200_000, "2024-03-10T10:00:00+01:00")),
            (CORRECTIONS, FIX_P2),
        ],
    ),
    "correction in the batch that opens the period": (
        [],
        [
            (DISPENSINGS, report("p2", 100_000, "2024-02-10T10:00:00+01:00")),
            (DISPENSINGS, report("p3", 200_000, "2024-03-10T10:00:00+01:00")),
            (CORRECTIONS, FIX_P2),
        ],
    ),
    "return of a sale in the same batch": (
        [],
        [
            (DISPENSINGS, report("s1", 300_000, "2024-02-10T10:00:00+01:00")),
            (
                DISPENSINGS,
                report(
                    "s1-back", -100_000, "2024-02-11T10:00:00+01:00", kind="return", return_of="s1"
                ),
            ),
            (DISPENSINGS, report("s2", 100_000, "2024-02-12T10:00:00+01:00")),
        ],
    ),
}


async def run(url: str, batches: list[list[Message]]) -> dict[str, Any]:
    register = Register(make_engine(url))
    try:
        pipeline = Pipeline(register, NAMES, CONFIG)
        await pipeline.start()
        offset = 0
        for messages in batches:
            items = []
            for spec, message in messages:
                items.append(decoded(spec, message, offset))
                offset += 1
            result = await pipeline.run(items, [], {})
            assert "rejected" not in result.counts, result.outputs
        return await snapshot(register)
    finally:
        await register.close()


@pytest.mark.parametrize("case", list(CASES))
async def test_one_batch_decides_as_one_message_at_a_time(
    two_databases: tuple[str, str], case: str
) -> None:
    history, messages = CASES[case]
    together = await run(two_databases[0], [history, messages] if history else [messages])
    apart = await run(two_databases[1], [history, *([m] for m in messages)])
    assert together == apart
    assert together["purchases"], "the case registered purchases"
