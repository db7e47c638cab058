"""The persons' lock: what locking a batch's persons in a statement of its own costs, on PostgreSQL.

Run as `python -m bench.person_lock [--persons 100000] [--batch 4300] [--rounds 60]`.

A fresh database migrated to the register's schema holds `--persons` persons, each with a period. Each
round, in one transaction on one asyncpg connection, `--batch` of them drawn at random are locked and
read two ways, in shuffled order:

- `lock in the read`: the read with `FOR UPDATE OF p` (one statement; what the register did before: a
  statement that waited for another worker's lock returned the person's new row and the period as it was
  before that worker committed, so the saldo lost that worker's purchases);
- `lock, then read`: `sinks.ctr_store._LOCK_PERSONS`, then `_READ_STATES` (the register's way).

Printed: the median wall time per batch and the client's CPU per batch (the first 5 rounds are warm-up),
nothing asserted. The batch's default is the size of the throughput benchmark's batches.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime

import asyncpg

from bench.harness.register import database
from sinks.ctr_store import _LOCK_PERSONS, _READ_STATES
from sinks.migrations import upgrade
from sinks.register import make_engine
from sinks.sql import joined

WARM_UP = 5


def _key(n: int) -> str:
    """A ten-digit key per person: the register's column takes any, the rules are not run here."""
    return f"{n:010d}"


async def _fill(conn: asyncpg.Connection, persons: int) -> list[str]:
    keys = [_key(n) for n in range(persons)]
    now = datetime.now(UTC)
    start, end = date(2024, 1, 1), date(2024, 12, 31)
    await conn.copy_records_to_table(
        "persons",
        records=[(k, date(1960, 1, 1), start, False, now) for k in keys],
        columns=["person_key", "birth_date", "current_period_start", "has_extras", "updated_at"],
    )
    await conn.copy_records_to_table(
        "subsidy_periods",
        records=[(k, start, end, False, 100_000) for k in keys],
        columns=["person_key", "period_start", "period_end", "under18", "saldo"],
    )
    await conn.execute("ANALYZE persons; ANALYZE subsidy_periods")
    return keys


async def main(persons: int, batch: int, rounds: int) -> None:
    async with database(None) as url:
        engine = make_engine(url)
        await upgrade(engine)
        await engine.dispose()
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
        try:
            keys = await _fill(conn, persons)

            async def in_the_read(batch_keys: list[str]) -> None:
                await conn.fetch(_READ_STATES + " FOR UPDATE OF p", joined(batch_keys))

            async def first(batch_keys: list[str]) -> None:
                listed = joined(batch_keys)  # as the store binds them
                await conn.fetchval(_LOCK_PERSONS, listed)
                await conn.fetch(_READ_STATES, listed)

            ways: dict[str, Callable[[list[str]], Awaitable[None]]] = {
                "lock in the read": in_the_read,
                "lock, then read": first,
            }
            spent: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
            rng = random.Random(7)
            for _ in range(rounds):
                order = list(ways)
                rng.shuffle(order)
                for name in order:
                    drawn = rng.sample(keys, batch)
                    wall, cpu = time.perf_counter(), time.process_time()
                    async with conn.transaction():
                        await ways[name](drawn)
                    spent[name].append((time.perf_counter() - wall, time.process_time() - cpu))
        finally:
            await conn.close()
    print(f"{batch} of {persons} persons locked and read per transaction, {rounds} rounds each:")
    for name, times in spent.items():
        kept = times[WARM_UP:]
        wall = statistics.median(t[0] for t in kept) * 1000
        cpu = statistics.median(t[1] for t in kept) * 1000
        print(f"  {name:18} {wall:6.1f} ms a batch, client CPU {cpu:5.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=4_300)
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    asyncio.run(main(args.persons, args.batch, args.rounds))
