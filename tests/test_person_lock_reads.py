"""A batch that waits for another transaction's lock on a person reads the person as that transaction left
them, on PostgreSQL.

Two workers can hold one person at once: a renumbered person's reports come under both numbers, on two
partitions, and a person's grants, returns and dispensings come on different topics. Each batch locks the
persons it touches, so the second waits for the first. Under READ COMMITTED a `SELECT ... FOR UPDATE` that
waited returns the locked row's new version, but the rows it joins (the period and its saldo) as they
were when the statement began: the second batch then wrote its purchases onto the old saldo, and the
first batch's purchases were lost from it (a CI run of the two-worker renumbering test met it once).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import insert, update

from sinks import tables
from sinks.register import Register, make_engine

pytestmark = pytest.mark.database

PERSON = "0505601234"
OTHER_NUMBER = "0505601243"


async def _person_with_a_period(register: Register, saldo: int) -> None:
    now = datetime.now(UTC)
    async with register.engine.begin() as conn:
        await conn.execute(
            insert(tables.persons),
            [
                {
                    "person_key": PERSON,
                    "birth_date": date(1960, 5, 5),
                    "current_period_start": date(2024, 2, 1),
                    "has_extras": False,
                    "updated_at": now,
                    "alias_of": None,
                    "alias_from": None,
                    "alias_since": None,
                },
                {
                    "person_key": OTHER_NUMBER,
                    "birth_date": date(1960, 5, 5),
                    "current_period_start": None,
                    "has_extras": False,
                    "updated_at": now,
                    "alias_of": PERSON,
                    "alias_from": PERSON,
                    "alias_since": date(2024, 2, 6),
                },
            ],
        )
        await conn.execute(
            insert(tables.subsidy_periods),
            {
                "person_key": PERSON,
                "period_start": date(2024, 2, 1),
                "period_end": date(2025, 1, 31),
                "under18": False,
                "saldo": saldo,
            },
        )


@pytest.mark.parametrize("key", [PERSON, OTHER_NUMBER], ids=["own-number", "other-number"])
async def test_a_batch_that_waited_for_a_persons_lock_reads_the_saldo_the_other_left(
    database_url: str, key: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer and no row locks")
    register = Register(make_engine(database_url))
    try:
        await _person_with_a_period(register, 100_000)
        first_holds = asyncio.Event()
        first_may_commit = asyncio.Event()

        async def first() -> None:
            async with register.unit_of_work() as uow:
                states, _ = await uow.ctr.load_persons([PERSON])
                assert states[PERSON].period is not None
                await uow.conn.execute(
                    update(tables.subsidy_periods)
                    .where(tables.subsidy_periods.c.person_key == PERSON)
                    .values(saldo=states[PERSON].period.saldo + 50_000)
                )
                first_holds.set()
                await first_may_commit.wait()

        async def second() -> int:
            await first_holds.wait()
            async with register.unit_of_work() as uow:
                states, _ = await uow.ctr.load_persons([key])
                period = states[PERSON].period
                assert period is not None
                return period.saldo

        holder = asyncio.create_task(first())
        waiter = asyncio.create_task(second())
        await first_holds.wait()
        await asyncio.sleep(0.5)
        assert not waiter.done(), "the second read did not wait for the first's lock"
        first_may_commit.set()
        await holder
        assert await asyncio.wait_for(waiter, 10) == 150_000
    finally:
        await register.close()
