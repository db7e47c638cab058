"""The register's schema migrations: Alembic revisions in `versions/`, applied by `upgrade` (`reghub db upgrade`).

Revision ids are `NNNN_slug`, so what `upgrade` returns reads as a list of what changed. A new revision is a
new file in `versions/` (`alembic revision --autogenerate --rev-id 0003_… -m "…"` from the repository root
writes one against the database in `alembic.ini`); revisions already released are never edited.

Databases made before Alembic carry the hand-rolled `schema_migrations` table with version 1 and no
`alembic_version`; their schema is revision `0001_initial_register`, so `upgrade` stamps them there first.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

INITIAL_REVISION = "0001_initial_register"
_LEGACY_TABLE = "schema_migrations"
ADVISORY_LOCK_ID = (
    0x7265_6768_7562  # "reghub": serialises replicas migrating one PostgreSQL database
)

# Alembic's `context` and `op` are module-level proxies, so two runs in one process must not interleave
# (whatever databases they migrate); one lock per event loop, as an asyncio lock belongs to one loop.
_in_process: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = WeakKeyDictionary()


class MigrationError(RuntimeError):
    """The database's migration bookkeeping is in a state `upgrade` will not guess about."""


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for the revisions in this package; `connection` is the one to migrate."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _made_by_hand_rolled_migrator(connection: Connection) -> bool:
    """Whether the hand-rolled migrator left this database at its version 1 (and Alembic has not seen it)."""
    if not inspect(connection).has_table(_LEGACY_TABLE):
        return False
    versions = set(connection.execute(text(f"SELECT version FROM {_LEGACY_TABLE}")).scalars())
    if versions != {1}:
        raise MigrationError(
            f"{_LEGACY_TABLE} records versions {sorted(versions)}, but the hand-rolled migrator only "
            "ever had version 1; check the schema by hand, then stamp it with Alembic"
        )
    return True


def _upgrade(connection: Connection) -> list[str]:
    config = alembic_config(connection)
    unversioned = not MigrationContext.configure(connection).get_current_heads()
    if unversioned and _made_by_hand_rolled_migrator(connection):
        # its schema is revision 1: record that, rather than run revision 1 again
        command.stamp(config, INITIAL_REVISION)

    applied: list[str] = []

    def record(*, step: MigrationInfo, **_: Any) -> None:
        if step.is_upgrade and not step.is_stamp:
            applied.extend(step.up_revision_ids)

    config.attributes["on_version_apply"] = record
    command.upgrade(config, "head")
    return applied


async def upgrade(engine: AsyncEngine) -> list[str]:
    """Bring the register to the newest revision; returns the revision ids applied (empty when up to date).

    Runs in one transaction (PostgreSQL's DDL is transactional; SQLite's driver commits DDL as it goes). On
    PostgreSQL an advisory lock taken first makes a second replica migrating at the same time wait, then
    find nothing to do. A database Alembic has not seen yet, but the hand-rolled
    migrator left at its version 1, is stamped at `0001_initial_register` before upgrading.

    Raises:
        sqlalchemy.exc.OperationalError: the database cannot be reached.
        MigrationError: a pre-Alembic `schema_migrations` table records something other than version 1.
    """
    lock = _in_process.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with lock, engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK_ID})")
        return await conn.run_sync(_upgrade)


def _revisions(connection: Connection) -> tuple[tuple[str, ...], list[str]]:
    current = tuple(MigrationContext.configure(connection).get_current_heads())
    script = ScriptDirectory.from_config(alembic_config())
    return current, [r.revision for r in script.walk_revisions()]


async def revisions(engine: AsyncEngine) -> tuple[tuple[str, ...], list[str]]:
    """The revisions the register is at (none: never migrated), and every revision this code has,
    newest first; a worker starts only when the newest is among the former.

    Raises:
        sqlalchemy.exc.OperationalError, OSError: the database cannot be reached.
    """
    async with engine.connect() as conn:
        return await conn.run_sync(_revisions)
