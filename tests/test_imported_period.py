"""A person imported with a snapshot (a period and its saldo, no purchases), then reports in and before
the register's latest: the late sale lands in the imported period on its saldo (issue: identity and
retention, point 8). 2024 adult scale: T1 1,075, T2 1,805, T3 3,915; 0 / 50 / 75 / 85 %."""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
import pytest

from reghub.snapshot import import_person
from schemas.snapshot import SnapshotPerson
from sinks import tables
from streams.topics import DEAD_LETTER, DISPENSINGS
from tests.hub import Hub
from tests.messages import PERSON, report
from tests.test_handler_atomicity import NAMES

pytestmark = pytest.mark.database


@pytest.fixture
async def hub(database_url: str) -> Any:
    h = Hub(database_url)
    await h.pipeline.start()
    snap = SnapshotPerson(
        person={"key": PERSON},  # type: ignore[arg-type]
        period_start=date(2024, 1, 15),
        period_end=date(2025, 1, 14),
        saldo=400_000,
        under18=False,
    )
    async with h.register.engine.begin() as conn:
        assert await import_person(conn, snap, "test") is None
    yield h
    await h.register.close()


def decision(result: Any, report_id: str) -> dict[str, Any]:
    assert not [o for o in result.outputs if o.topic == NAMES(DEAD_LETTER)]
    return next(
        orjson.loads(o.value)
        for o in result.outputs
        if o.topic.endswith("decisions.v1") and orjson.loads(o.value).get("report_id") == report_id
    )


@pytest.mark.parametrize("first_on_time", [True, False])
async def test_a_late_sale_lands_in_the_imported_period_on_its_saldo(
    hub: Hub, first_on_time: bool
) -> None:
    """Saldo 4,000 kr imported (above T3: 85 %). With or without a sale registered after the import
    (1 June), a late report paid 1 May, inside the imported period, gets 1,000 × 85 % = 850 kr on the
    imported period: the period and its saldo stay, no new period opens on the late sale's day."""
    if first_on_time:
        s1 = await hub.send((DISPENSINGS, report("s1", 100_000, "2024-06-01T10:00:00+02:00")))
        assert decision(s1, "s1")["subsidy"] == 85_000
    late = await hub.send((DISPENSINGS, report("s2", 100_000, "2024-05-01T10:00:00+02:00")))
    got = decision(late, "s2")
    assert (got["subsidy"], got["period_start"]) == (85_000, "2024-01-15")
    assert got["saldo_before"] == 400_000
    periods = await hub.rows(tables.subsidy_periods)
    saldo = 600_000 if first_on_time else 500_000
    assert [(p.period_start, p.saldo) for p in periods] == [(date(2024, 1, 15), saldo)]
    assert await hub.rows(tables.balances) == []
