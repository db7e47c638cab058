"""The pipeline's batch semantics: a batch decides exactly as the same messages one batch at a time.

Load-then-handle must not depend on where batch boundaries fall: a correction of a report in the same
batch, a return of a sale in the same batch, and the same id twice in one batch.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select, update

from sinks import tables
from sinks.register import Register, make_engine
from sinks.rows import Outgoing
from streams.pipeline import CONFLICT_REASON, Pipeline
from streams.topics import CORRECTIONS, DEAD_LETTER, DECISIONS, DISPENSINGS, TopicSpec
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


async def test_a_registered_report_is_known_by_its_purchase_row(
    two_databases: tuple[str, str],
) -> None:
    """A registered report leaves its purchase row (with its content hash) and no processed row; sent
    again it is a duplicate answered with the same decision, and with other content it is refused. A
    purchase registered before the row kept the hash (NULL there) is known by its processed row."""
    register = Register(make_engine(two_databases[0]))
    try:
        pipeline = Pipeline(register, NAMES, CONFIG)
        await pipeline.start()
        r1 = report("r1", 100_000, "2024-02-10T10:00:00+01:00")
        first = decoded(DISPENSINGS, r1, 0)
        done = await pipeline.run([first], [], {})
        assert done.counts == {"registered": 1}
        async with register.engine.connect() as conn:
            assert (await conn.execute(select(tables.processed_messages))).all() == []
            hashes = (await conn.execute(select(tables.purchases.c.content_hash))).scalars()
            assert list(hashes) == [first.digest]

        again = await pipeline.run([decoded(DISPENSINGS, r1, 1)], [], {})
        assert again.counts == {"duplicate": 1}
        assert decisions(again.outputs) == [{**decisions(done.outputs)[0], "status": "duplicate"}]
        other = await pipeline.run([decoded(DISPENSINGS, report("r1", 90_000), 2)], [], {})
        assert other.counts == {"rejected": 1}
        assert reasons(other.outputs) == [CONFLICT_REASON]

        # as registered before purchases kept the hash: the processed row holds it
        r0 = report("r0", 50_000, "2024-02-09T10:00:00+01:00")
        old = decoded(DISPENSINGS, r0, 3)
        assert (await pipeline.run([old], [], {})).counts == {"registered": 1}
        async with register.engine.begin() as conn:
            p = tables.purchases
            await conn.execute(update(p).where(p.c.report_id == "r0").values(content_hash=None))
            await conn.execute(
                tables.processed_messages.insert(),
                [
                    {
                        "message_id": "r0",
                        "source_topic": NAMES(DISPENSINGS),
                        "outcome": "registered",
                        "output": None,
                        "processed_at": datetime.now(UTC),
                        "content_hash": old.digest,
                    }
                ],
            )
        again = await pipeline.run([decoded(DISPENSINGS, r0, 4)], [], {})
        assert again.counts == {"duplicate": 1}
        assert decisions(again.outputs)[0]["report_id"] == "r0"
        other = await pipeline.run([decoded(DISPENSINGS, report("r0", 60_000), 5)], [], {})
        assert reasons(other.outputs) == [CONFLICT_REASON]
        async with register.engine.connect() as conn:
            assert (await conn.execute(select(func.count()).select_from(p))).scalar() == 2
    finally:
        await register.close()


def decisions(outputs: list[Outgoing]) -> list[dict[str, Any]]:
    return [orjson.loads(o.value) for o in outputs if o.topic == NAMES(DECISIONS)]


def reasons(outputs: list[Outgoing]) -> list[str]:
    return [
        dict(o.headers)["reghub-reason"].decode() for o in outputs if o.topic == NAMES(DEAD_LETTER)
    ]
