"""The register: a fresh, migrated PostgreSQL database per scenario, and the campaign's own
connection to it."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from bench.faults.progress import log
from sinks.migrations import upgrade
from sinks.register import make_engine

PG_ADMIN_DSN = os.environ.get("REGHUB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

MONITOR_APP = "reghub-faults-monitor"
"""application_name of the campaign's own connection, so pg-terminate leaves it alone."""


def _dsn(name: str) -> str:
    return f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"


def database_url(name: str) -> str:
    return _dsn(name).replace("postgresql://", "postgresql+asyncpg://", 1)


@contextlib.asynccontextmanager
async def fresh_database(label: str, keep: bool = False) -> AsyncIterator[str]:
    """A new, migrated PostgreSQL database; dropped (connections or not) when the block ends, unless
    `keep`."""
    name = f"reghub_faults_{label.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            engine = make_engine(database_url(name))
            try:
                await upgrade(engine)
            finally:
                await engine.dispose()
            yield name
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            if keep:
                log(f"database {name} kept")
            else:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


class Sql:
    """The campaign's connection to the scenario's database; reconnects after a fault took it."""

    def __init__(self, name: str) -> None:
        self.dsn = _dsn(name)
        self.conn: asyncpg.Connection | None = None

    async def _connection(self) -> asyncpg.Connection:
        if self.conn is None or self.conn.is_closed():
            self.conn = await asyncpg.connect(
                self.dsn, timeout=5, server_settings={"application_name": MONITOR_APP}
            )
        return self.conn

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record] | None:
        """Rows, or None while the database cannot be reached."""
        try:
            conn = await self._connection()
            return await conn.fetch(query, *args, timeout=10)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            if self.conn is not None:
                with contextlib.suppress(Exception):
                    self.conn.terminate()
            self.conn = None
            return None

    async def scalar(self, query: str, *args: Any) -> Any:
        rows = await self.fetch(query, *args)
        return None if not rows else rows[0][0]

    async def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                await self.conn.close()
