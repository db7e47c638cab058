"""Forward-only, numbered schema migrations, recorded in `schema_migrations` (the `reghub db upgrade` command).

Why not Alembic: the register has one schema owner (this package) and two dialects; a numbered list of
async steps that run inside one transaction each, serialised by an advisory lock on PostgreSQL, gives the
same guarantees (ordered, recorded, idempotent, safe with two replicas starting at once) without a second
configuration tree. A new migration is a new entry at the end of `MIGRATIONS`; entries are never edited.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sinks import tables

Migration = Callable[[AsyncConnection], Awaitable[None]]


async def _initial_register(conn: AsyncConnection) -> None:
    """1: the CTR register: persons, periods, purchases, grants, supplements, balances, deferrals, …"""
    await conn.run_sync(tables.metadata.create_all)


MIGRATIONS: tuple[tuple[int, str, Migration], ...] = ((1, "initial_register", _initial_register),)

_ADVISORY_LOCK_ID = 0x7265_6768_7562  # "reghub"


async def upgrade(engine: AsyncEngine) -> list[str]:
    """Apply every migration not yet recorded; returns the names applied (empty when up to date).

    Raises:
        sqlalchemy.exc.OperationalError: the database cannot be reached.
    """
    applied: list[str] = []
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_ADVISORY_LOCK_ID})")
        await conn.run_sync(tables.schema_migrations.create, checkfirst=True)
        done = set((await conn.execute(select(tables.schema_migrations.c.version))).scalars())
        for version, name, step in MIGRATIONS:
            if version in done:
                continue
            await step(conn)
            await conn.execute(
                tables.schema_migrations.insert().values(
                    version=version, name=name, applied_at=datetime.now(UTC)
                )
            )
            applied.append(name)
    return applied
