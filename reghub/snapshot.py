"""Import a snapshot of the current register (periods, saldo, under-18 flag, open balancing amounts)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from reghub.settings import Settings
from schemas.snapshot import SnapshotPerson
from sinks import counts, tables
from sinks.register import make_engine
from streams.decode import reason_of


async def import_person(conn: AsyncConnection, snap: SnapshotPerson, source: str) -> str | None:
    """Insert one person as the snapshot has them; returns why not, when the person is already known."""
    key = snap.person.key
    known = await conn.execute(
        select(tables.persons.c.person_key).where(tables.persons.c.person_key == key)
    )
    if known.first() is not None:
        return "person already in the register"
    now = datetime.now(UTC)
    await conn.execute(
        tables.persons.insert().values(
            person_key=key,
            birth_date=snap.person.born(),
            current_period_start=snap.period_start,
            has_extras=bool(snap.open_balances),
            updated_at=now,
        )
    )
    await counts.add(conn, 0, {}, counts.Tally(persons=1))  # the dashboard's count of persons
    await conn.execute(
        tables.subsidy_periods.insert().values(
            person_key=key,
            period_start=snap.period_start,
            period_end=snap.period_end,
            previous_period_end=snap.previous_period_end,
            under18=snap.under18,
            saldo=snap.saldo,
        )
    )
    for i, b in enumerate(snap.open_balances):
        arose_in = snap.period_start if b.arose_on >= snap.period_start else None
        await conn.execute(
            tables.balances.insert().values(
                balance_id=f"snapshot:{source}:{key}:{i}",
                person_key=key,
                amount=b.amount,
                remaining=b.amount,
                arose_on=b.arose_on,
                arose_in_period=arose_in,
                origin="imported snapshot",
                skip_once=False,
                updated_at=now,
            )
        )
    return None


async def import_file(settings: Settings, file: Path) -> tuple[int, list[tuple[int, str]]]:
    """Import every valid line in one transaction; refused lines are reported by number."""
    engine = make_engine(settings.database_url)
    refused: list[tuple[int, str]] = []
    imported = 0
    try:
        async with engine.begin() as conn:
            for number, line in enumerate(file.read_bytes().splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    snap = SnapshotPerson.model_validate_json(line)
                except ValidationError as exc:
                    refused.append((number, reason_of(exc)))
                    continue
                why = await import_person(conn, snap, file.name)
                if why:
                    refused.append((number, why))
                else:
                    imported += 1
    finally:
        await engine.dispose()
    return imported, refused
