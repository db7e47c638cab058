"""Alembic's environment for the register: runs the revisions in `versions/` on the connection it is given.

`sinks.migrations.upgrade` hands over an open connection in `config.attributes["connection"]` (inside its
transaction, after the PostgreSQL advisory lock). Run from the `alembic` command line instead (see
`alembic.ini`), it connects to `sqlalchemy.url`, or to `-x url=…`, sync or async driver alike.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, create_engine, make_url, pool
from sqlalchemy.ext.asyncio import create_async_engine

from sinks import places_tables, tables

assert places_tables.metadata is tables.metadata  # the treatment-place tables are in it too

config = context.config
target_metadata = tables.metadata

if config.config_file_name is not None and "connection" not in config.attributes:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        on_version_apply=config.attributes.get("on_version_apply"),
        **kwargs,
    )


def _run(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("no database: set sqlalchemy.url in alembic.ini or pass -x url=…")
    return url


async def _run_async(url: str) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def run_offline() -> None:
    """`alembic upgrade --sql`: print the SQL instead of running it."""
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = _url()
    if make_url(url).get_dialect().is_async:
        asyncio.run(_run_async(url))
        return
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.begin() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
