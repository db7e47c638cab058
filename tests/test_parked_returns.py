"""A return of a sale parked for want of a scale is parked with it and replayed after it (issue 31.5).

Through the real pipeline and register (SQLite and PostgreSQL), the replays fed back as the broker
would deliver them. The 2025 scale is the tests' own (`tests.messages.SCALE_2025`): T1 1,100, T2 1,845,
T3 4,000; 0 / 50 / 75 / 85 %. The sale of 2,000 kr on 1 February 2025 gets 745 × 50 % + 155 × 75 % =
488.75; returning 500 kr of it reverses F(1,500) − F(2,000) = 200.00 − 488.75 = −288.75, and the person
gets 500.00 − 288.75 = 211.25 back.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from sinks import tables
from streams.decode import Rejected, Source, decode
from streams.pipeline import BatchResult
from streams.topics import DEAD_LETTER, DECISIONS, DISPENSINGS, SUBSIDY_SCALES
from tests.hub import Hub
from tests.messages import SCALE_2025, report
from tests.test_handler_atomicity import NAMES

pytestmark = pytest.mark.database

SALE = report("s25", 200_000, "2025-02-01T10:00:00+01:00")
RETURN = report("r25", -50_000, "2025-02-10T10:00:00+01:00", kind="return", return_of="s25")


@pytest.fixture
async def hub(database_url: str) -> Any:
    h = Hub(database_url)
    await h.pipeline.start()
    yield h
    await h.register.close()


def decisions(result: BatchResult) -> dict[str, dict[str, Any]]:
    found = [orjson.loads(o.value) for o in result.outputs if o.topic == NAMES(DECISIONS)]
    return {d["report_id"]: d for d in found}


def dead_letters(result: BatchResult) -> list[str]:
    return [
        dict(o.headers)["reghub-reason"].decode()
        for o in result.outputs
        if o.topic == NAMES(DEAD_LETTER)
    ]


async def deliver_replays(hub: Hub, released: BatchResult) -> BatchResult:
    """The released reports as the broker delivers them: in the order they were published."""
    items = []
    for o in released.outputs:
        if o.topic != NAMES(DISPENSINGS):
            continue
        source = Source(o.topic, 0, hub.offset, o.key, o.value, 0)
        hub.offset += 1
        item = decode(source, DISPENSINGS)
        assert not isinstance(item, Rejected), item.reason
        items.append(item)
    return await hub.pipeline.run(items, [], {})


def replayed_ids(result: BatchResult) -> list[str]:
    return [
        dict(o.headers)["reghub-replay-of"].decode()
        for o in result.outputs
        if o.topic == NAMES(DISPENSINGS)
    ]


async def assert_registered_after_the_scale(hub: Hub) -> None:
    released = await hub.send((SUBSIDY_SCALES, SCALE_2025))
    assert replayed_ids(released) == ["s25", "r25"]  # the sale first: the return needs it
    decided = decisions(await deliver_replays(hub, released))
    sale, back = decided["s25"], decided["r25"]
    assert (sale["status"], sale["subsidy"], sale["citizen_pays"]) == (
        "registered",
        48_875,
        151_125,
    )
    assert (back["status"], back["subsidy"], back["citizen_pays"]) == (
        "registered",
        -28_875,
        -21_125,
    )
    assert (back["saldo_before"], back["saldo_after"]) == (200_000, 150_000)
    purchases = {r.report_id: r for r in await hub.rows(tables.purchases)}
    assert purchases["s25"].returned_basis == 50_000
    assert purchases["r25"].return_of == "s25" and purchases["r25"].subsidy == -28_875
    assert [
        (p.period_start.isoformat(), p.saldo) for p in await hub.rows(tables.subsidy_periods)
    ] == [("2025-02-01", 150_000)]
    assert all(p.replayed_at is not None for p in await hub.rows(tables.parked_messages))


async def test_a_return_of_a_sale_parked_earlier_is_parked_and_replayed_after_it(hub: Hub) -> None:
    first = await hub.send((DISPENSINGS, SALE))
    assert decisions(first)["s25"]["status"] == "parked"
    later = await hub.send((DISPENSINGS, RETURN))
    assert dead_letters(later) == []  # not rule.return_of_unknown_report
    back = decisions(later)["r25"]
    assert back["status"] == "parked"
    assert back["reason"] == (
        "rule.unknown_scale: the returned sale is parked: no subsidy scale in force on 2025-02-01"
    )
    assert back["subsidy"] is None and back["citizen_pays"] is None  # never 0
    parked = {p.message_id: p.day.isoformat() for p in await hub.rows(tables.parked_messages)}
    assert parked == {"s25": "2025-02-01", "r25": "2025-02-01"}
    assert await hub.rows(tables.purchases) == []
    await assert_registered_after_the_scale(hub)


async def test_a_return_in_the_batch_of_its_parked_sale_is_parked_with_it(hub: Hub) -> None:
    both = await hub.send((DISPENSINGS, SALE), (DISPENSINGS, RETURN))
    assert dead_letters(both) == []
    assert {k: d["status"] for k, d in decisions(both).items()} == {
        "s25": "parked",
        "r25": "parked",
    }
    await assert_registered_after_the_scale(hub)


async def test_a_return_of_a_sale_nobody_reported_is_still_refused(hub: Hub) -> None:
    refused = await hub.send((DISPENSINGS, RETURN))
    assert dead_letters(refused) == ["rule.return_of_unknown_report"]
    assert await hub.rows(tables.parked_messages) == []


async def test_a_return_of_another_persons_parked_sale_is_refused_when_replayed(
    hub: Hub,
) -> None:
    """Parked on the sale's id alone; the replay then finds the sale registered to someone else."""
    other = {**RETURN, "person": {"key": "0707701234"}}
    await hub.send((DISPENSINGS, SALE), (DISPENSINGS, other))
    released = await hub.send((SUBSIDY_SCALES, SCALE_2025))
    replayed = await deliver_replays(hub, released)
    assert decisions(replayed)["s25"]["status"] == "registered"
    assert dead_letters(replayed) == ["rule.return_of_unknown_report"]


async def test_a_return_that_comes_while_its_sale_is_being_replayed_follows_it(hub: Hub) -> None:
    """The scale released the sale, whose replay is not back yet: the return is sent back behind it."""
    await hub.send((DISPENSINGS, SALE))
    released = await hub.send((SUBSIDY_SCALES, SCALE_2025))
    assert replayed_ids(released) == ["s25"]
    early = await hub.send((DISPENSINGS, RETURN))
    assert dead_letters(early) == []
    assert decisions(early)["r25"]["status"] == "parked"
    assert replayed_ids(early) == ["r25"]
    first = await deliver_replays(hub, released)  # the broker delivers them in the outbox's order
    second = await deliver_replays(hub, early)
    assert decisions(first)["s25"]["status"] == "registered"
    back = decisions(second)["r25"]
    assert (back["status"], back["subsidy"], back["citizen_pays"]) == (
        "registered",
        -28_875,
        -21_125,
    )
    assert [p.message_id for p in await hub.rows(tables.parked_messages)] == ["s25"]
