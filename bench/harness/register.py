"""The register a benchmark writes into: a fresh PostgreSQL database per run (dropped after), a
temporary SQLite file, or a given URL; and its purchase rows counted."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator

import asyncpg
from sqlalchemy import func, select

from sinks import tables
from sinks.register import Register

PG_ADMIN_DSN = os.environ.get("REGHUB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_url(name: str) -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


@contextlib.asynccontextmanager
async def database(url: str | None) -> AsyncIterator[str]:
    """The register's URL: a fresh PostgreSQL database (dropped after), a temporary SQLite file for
    `sqlite`, or `url` as given (left in place)."""
    if url == "sqlite":
        folder = tempfile.mkdtemp(prefix="reghub-bench-")
        try:
            yield f"sqlite+aiosqlite:///{folder}/register.db"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    if url is not None:
        yield url
        return
    name = f"reghub_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield _pg_url(name)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def count_purchases(register: Register) -> int:
    """The purchase rows the register holds."""
    async with register.engine.connect() as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(tables.purchases))).scalar()
        )
