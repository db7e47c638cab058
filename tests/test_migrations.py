"""The register's migrations on SQLite and PostgreSQL: a new database, one at the previous revision, one the
hand-rolled migrator made before Alembic, and two replicas migrating at once.

Every test makes its own empty database: the `database_url` fixture's is already migrated.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData, Table, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from sinks import places_tables, tables  # noqa: F401  (places_tables: its tables join `metadata`)
from sinks.migrations import (
    ADVISORY_LOCK_ID,
    INITIAL_REVISION,
    MigrationError,
    alembic_config,
    upgrade,
)
from sinks.register import make_engine
from tests.conftest import PG_ADMIN_DSN, _admin, _url

pytestmark = pytest.mark.database

REPO = Path(__file__).resolve().parent.parent

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()
EVERY_REVISION = [
    "0001_initial_register",
    "0002_drop_schema_migrations",
    "0003_outbox_and_log_ids",
    "0004_pharmacy_or_p_number",
    "0005_period_last_payment",
    "0006_person_identity",
    "0007_treatment_places",
    "0008_obligations",
    "0009_treatment_relations",
    "0010_read_audit",
    "0011_outbox_lz4",
    "0012_partial_obligation_indexes",
    "0013_room_for_updates",
    "0014_read_audit_place",
    "0015_fee_halves_start_alerts",
    "0016_register_counts",
    "0017_purchase_content_hash",
]
AT = datetime(2024, 5, 2, 9, 30, 15, tzinfo=UTC)

# Rows as the register writes them, for the tables a lost row would hurt most.
ROWS: dict[str, list[dict[str, Any]]] = {
    "persons": [
        {
            "person_key": "a1b2c3d4e5",
            "birth_date": date(1980, 1, 1),
            "current_period_start": date(2024, 4, 2),
            "has_extras": False,
            "updated_at": AT,
        },
        {
            "person_key": "f6e5d4c3b2",
            "birth_date": date(2010, 6, 15),
            "current_period_start": None,
            "has_extras": True,
            "updated_at": AT,
        },
    ],
    "subsidy_periods": [
        {
            "person_key": "a1b2c3d4e5",
            "period_start": date(2024, 4, 2),
            "period_end": date(2025, 4, 1),
            "previous_period_end": date(2024, 4, 1),
            "under18": False,
            "saldo": 400_000,
        }
    ],
    "purchases": [
        {
            "report_id": "r-0001",
            "person_key": "a1b2c3d4e5",
            "kind": "sale",
            "return_of": None,
            "pharmacy_number": "12345",
            "pharmacy_site_p_number": "1012345678",
            "dispensing_id": "d-0001",
            "ordination_id": "o-0001",
            "paid_or_invoiced_at": AT,
            "day": date(2024, 5, 2),
            "lines": '[{"drug_id": "028100636", "basis": 400000}]',
            "period_start": date(2024, 4, 2),
            "period_end": date(2025, 4, 1),
            "previous_period_end": date(2024, 4, 1),
            "under18": False,
            "terminal": False,
            "basis": 400_000,
            "subsidy_entitled": 400_000,
            "balancing_applied": 0,
            "subsidy": 201_975,
            "health_supplement": 0,
            "rights_based": 0,
            "citizen_pays": 198_025,
            "deferred_to_agreement": 0,
            "saldo_after": 400_000,
            "subsidised": True,
            "remaining_balancing": 0,
            "granted_subsidy": None,
            "deviation": 0,
            "returned_basis": 0,
            "status": "registered",
            "source_partition": 1,
            "source_offset": 3_000_000_000,  # past 2**31: the column is BIGINT
            "registered_at": AT,
        }
    ],
    "processed_messages": [
        {
            "message_id": "m-0001",
            "source_topic": "ctr.dispensings",
            "outcome": "registered",
            "output": b'{"report_id": "r-0001"}',
            "processed_at": AT,
        }
    ],
    "consumer_offsets": [
        {
            "group_id": "reghub-register",
            "topic": "ctr.dispensings",
            "partition": 1,
            "next_offset": 3_000_000_001,
            "updated_at": AT,
        }
    ],
}


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on a new, empty database."""
    if request.param == "sqlite":
        eng = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'register.db'}")
        try:
            yield eng
        finally:
            await eng.dispose()
        return
    name = f"reghub_mig_{uuid.uuid4().hex[:10]}"
    admin = await _admin()
    await admin.execute(f'CREATE DATABASE "{name}"')
    eng = make_engine(_url(name))
    try:
        yield eng
    finally:
        await eng.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _to_initial_revision(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: command.upgrade(alembic_config(c), INITIAL_REVISION))


def _reflected(conn: Connection, name: str) -> Table:
    """The table as the database has it, so the rows fit the old schema whatever `sinks.tables` says now."""
    return Table(name, MetaData(), autoload_with=conn)


def _insert_rows(conn: Connection) -> None:
    for name, rows in ROWS.items():
        conn.execute(_reflected(conn, name).insert(), rows)


def _plain(value: Any) -> Any:
    """SQLite hands back timestamps without their zone; compare both dialects in UTC wall time."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _read_rows(conn: Connection) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for name, rows in ROWS.items():
        table = _reflected(conn, name)
        columns = [table.c[column] for column in rows[0]]
        found[name] = [
            {k: _plain(v) for k, v in row._mapping.items()}
            for row in conn.execute(select(*columns).order_by(*table.primary_key.columns))
        ]
    return found


def _expected_rows() -> dict[str, list[dict[str, Any]]]:
    return {
        name: [{k: _plain(v) for k, v in row.items()} for row in rows]
        for name, rows in ROWS.items()
    }


def _differences(conn: Connection) -> list[Any]:
    return compare_metadata(MigrationContext.configure(conn), tables.metadata)


def _revision(conn: Connection) -> tuple[str, ...]:
    return MigrationContext.configure(conn).get_current_heads()


def _table_names(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


async def test_an_empty_database_gets_every_revision_and_matches_the_tables(
    engine: AsyncEngine,
) -> None:
    assert await upgrade(engine) == EVERY_REVISION

    async with engine.connect() as conn:
        # Nothing filtered: every table, column, type, nullability, key, unique constraint and index of
        # `sinks.tables` is what the revisions made, on both dialects.
        assert await conn.run_sync(_differences) == []
        assert await conn.run_sync(_revision) == (HEAD,)
        names = await conn.run_sync(_table_names)
    assert names == {*tables.metadata.tables, "alembic_version"}
    assert "schema_migrations" not in names


async def test_upgrade_twice_applies_nothing_the_second_time(engine: AsyncEngine) -> None:
    assert await upgrade(engine) == EVERY_REVISION
    assert await upgrade(engine) == []


async def test_a_database_at_the_previous_revision_keeps_every_row(engine: AsyncEngine) -> None:
    await _to_initial_revision(engine)
    async with engine.begin() as conn:
        assert await conn.run_sync(_revision) == (INITIAL_REVISION,)
        await conn.run_sync(_insert_rows)

    assert await upgrade(engine) == EVERY_REVISION[1:]

    async with engine.begin() as conn:
        assert await conn.run_sync(_revision) == (HEAD,)
        assert await conn.run_sync(_read_rows) == _expected_rows()
        assert await conn.run_sync(_differences) == []
        # the purchase id still counts on from the row already there (a BIGSERIAL on PostgreSQL)
        more = {**ROWS["purchases"][0], "report_id": "r-0002", "dispensing_id": "d-0002"}
        await conn.execute(tables.purchases.insert(), [more])
        ids = (await conn.execute(select(tables.purchases.c.id).order_by("id"))).scalars().all()
    assert len(ids) == 2 and ids[1] > ids[0]


async def test_a_database_the_hand_rolled_migrator_made_is_stamped_and_upgraded(
    engine: AsyncEngine,
) -> None:
    # What the hand-rolled migrator left: the revision-0001 schema (the same DDL its `create_all` ran),
    # a `schema_migrations` row for its version 1, and no `alembic_version`.
    await _to_initial_revision(engine)
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE alembic_version"))
        await conn.execute(
            text(
                "INSERT INTO schema_migrations (version, name, applied_at) "
                "VALUES (1, 'initial_register', :at)"
            ),
            {"at": AT},
        )
        await conn.run_sync(_insert_rows)
        assert await conn.run_sync(_revision) == ()

    # 0001 is stamped, not run again (it would fail on the tables already there); 0002 is applied
    assert await upgrade(engine) == EVERY_REVISION[1:]

    async with engine.connect() as conn:
        assert await conn.run_sync(_revision) == (HEAD,)
        assert await conn.run_sync(_read_rows) == _expected_rows()
        assert await conn.run_sync(_differences) == []
        assert "schema_migrations" not in await conn.run_sync(_table_names)
    assert await upgrade(engine) == []


async def test_a_hand_rolled_version_it_does_not_know_is_refused(engine: AsyncEngine) -> None:
    await _to_initial_revision(engine)
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE alembic_version"))
        await conn.execute(
            text(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES "
                "(1, 'initial_register', :at), (2, 'something_else', :at)"
            ),
            {"at": AT},
        )

    with pytest.raises(MigrationError, match=r"versions \[1, 2\]"):
        await upgrade(engine)

    async with engine.connect() as conn:
        assert await conn.run_sync(_revision) == ()
        assert "schema_migrations" in await conn.run_sync(_table_names)


REPLICA = """
import asyncio, json, sys
from sinks.migrations import upgrade
from sinks.register import make_engine

async def main():
    engine = make_engine(sys.argv[1])
    try:
        print(json.dumps(await upgrade(engine)))
    finally:
        await engine.dispose()

asyncio.run(main())
"""


# The advisory lock is PostgreSQL's; one SQLite file has one writer anyway.
@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
async def test_two_replicas_upgrading_at_once_migrate_once(engine: AsyncEngine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    # Hold the replicas' lock, start two of them (separate processes, as in production), see both wait
    # for it, then let them go together.
    holder = await asyncpg.connect(
        f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{engine.url.database}", timeout=5
    )
    try:
        await holder.execute(f"SELECT pg_advisory_lock({ADVISORY_LOCK_ID})")
        replicas = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                REPLICA,
                url,
                cwd=REPO,
                env={**os.environ, "PYTHONPATH": str(REPO)},
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            for _ in range(2)
        ]
        waiting = 0
        for _ in range(300):
            waiting = await holder.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            )
            if waiting == 2:
                break
            await asyncio.sleep(0.1)
        assert waiting == 2, "the replicas did not wait for the advisory lock"
        await holder.execute(f"SELECT pg_advisory_unlock({ADVISORY_LOCK_ID})")
        outputs = [await asyncio.wait_for(r.communicate(), 60) for r in replicas]
    finally:
        await holder.close()

    assert [r.returncode for r in replicas] == [0, 0], [err.decode() for _, err in outputs]
    assert sorted(json.loads(out) for out, _ in outputs) == [[], EVERY_REVISION]
