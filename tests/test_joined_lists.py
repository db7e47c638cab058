"""Lists of keys and ids bound as one text parameter on PostgreSQL (`sinks.sql.joined`): the same rows
as an array parameter would find, and a value holding the separator never splits into other keys."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from sinks import tables as t
from sinks.ctr_store import CtrStore
from sinks.register import make_engine
from sinks.sql import LIST_SEPARATOR, among_joined, joined

ALICE, BOB = "0101701234", "0202802345"


def test_a_value_holding_the_separator_is_left_out() -> None:
    assert joined([ALICE, BOB]) == ALICE + LIST_SEPARATOR + BOB
    assert joined([ALICE + LIST_SEPARATOR + BOB]) == ""
    assert joined([ALICE, "x" + LIST_SEPARATOR, BOB]) == ALICE + LIST_SEPARATOR + BOB
    assert joined(iter([ALICE])) == ALICE
    assert joined([]) == ""


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_postgresql_finds_exactly_the_listed_keys(database_url: str) -> None:
    engine = make_engine(database_url)
    p = t.persons
    query = select(p.c.person_key).where(among_joined(p.c.person_key, "keys"))
    try:
        async with engine.begin() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            await raw.execute(
                "INSERT INTO persons (person_key, birth_date, has_extras, updated_at) "
                "VALUES ($1, '1970-01-01', false, now()), ($2, '1980-02-02', false, now()), "
                "($3, '1990-03-03', false, now())",
                ALICE,
                BOB,
                "0303903456",
            )

            async def found(keys: list[str]) -> set[str]:
                return {row[0] for row in await conn.execute(query, {"keys": keys})}

            assert await found([ALICE, BOB]) == {ALICE, BOB}
            assert await found([BOB, "9999999999"]) == {BOB}
            assert await found([]) == set()
            # the separator inside one value: not two keys
            assert await found([ALICE + LIST_SEPARATOR + BOB]) == set()
            assert await found([ALICE + LIST_SEPARATOR + BOB, "0303903456"]) == {"0303903456"}
            # the same through the store's own statements (lock, then read)
            store = CtrStore(conn)
            states, _ = await store.load_persons([ALICE, "0303903456", BOB + LIST_SEPARATOR])
            assert set(states) == {ALICE, "0303903456"}
    finally:
        await engine.dispose()
