"""The register's unit of work: load the persons a batch touches, then write the batch in one transaction.

Called once per batch by the processor. Set-based statements only: no ORM object per event. On
PostgreSQL the hot tables go through asyncpg directly (`COPY` for purchases, `unnest()` upserts for
persons, periods, processed ids and offsets), measured several times faster than `executemany`
(design.md, "The hot path, measured"); SQLite takes the portable SQLAlchemy Core path.
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import String, Table, and_, any_, event, literal, select, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from rules.outcomes import PurchaseRecord
from rules.scales import KNOWN_SCALES, Scale
from rules.state import Agreement, Balance, Grant, Period, PersonState, Supplement
from sinks import tables as t
from sinks.changes import BatchChanges, Row


class RegisterUnavailable(Exception):
    """The database could not be reached or refused the write; retriable: nothing was committed."""

    retriable = True


def make_engine(url: str, *, pool_size: int = 5) -> AsyncEngine:
    """An async engine for the register.

    SQLite gets write-ahead logging and a busy timeout, so the API and the CLI read beside the worker.
    """
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _wal(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_async_engine(url, pool_size=pool_size, pool_pre_ping=True)


def _upsert(conn: AsyncConnection, table: Table) -> Any:
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(table)
    keys = [c.name for c in table.primary_key.columns]
    if table is t.purchases:
        keys = ["report_id"]
    changing = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    return stmt.on_conflict_do_update(index_elements=keys, set_=changing)


class RegisterUnitOfWork:
    """One transaction on one connection; `load_*` read, `write` writes, leaving commits to the caller."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.is_postgres = conn.dialect.name == "postgresql"

    def _among(self, column: Any, values: list[str]) -> Any:
        """`column IN values`; on PostgreSQL one array parameter, so the statement text never changes."""
        if self.is_postgres:
            return column == any_(literal(values, type_=ARRAY(String)))
        return column.in_(values)

    # -- reads ------------------------------------------------------------------------------------

    async def load_states(self, keys: Iterable[str]) -> dict[str, PersonState]:
        """The current state of every known person among `keys` (unknown keys are absent)."""
        keys = list(keys)
        if not keys:
            return {}
        p, sp = t.persons, t.subsidy_periods
        query = (
            select(
                p.c.person_key,
                p.c.birth_date,
                p.c.has_extras,
                sp.c.period_start,
                sp.c.period_end,
                sp.c.previous_period_end,
                sp.c.under18,
                sp.c.saldo,
            )
            .select_from(
                p.outerjoin(
                    sp,
                    and_(
                        sp.c.person_key == p.c.person_key,
                        sp.c.period_start == p.c.current_period_start,
                    ),
                )
            )
            .where(self._among(p.c.person_key, keys))
        )
        if self.is_postgres:
            query = query.with_for_update(of=p)
        states: dict[str, PersonState] = {}
        with_extras: list[str] = []
        for row in await self.conn.execute(query):
            period = None
            if row.period_start is not None:
                period = Period(
                    row.period_start,
                    row.period_end,
                    row.saldo,
                    row.under18,
                    row.previous_period_end,
                )
            states[row.person_key] = PersonState(row.person_key, row.birth_date, period)
            if row.has_extras:
                with_extras.append(row.person_key)
        if with_extras:
            await self._load_extras(states, with_extras)
        return states

    async def _load_extras(self, states: dict[str, PersonState], keys: list[str]) -> None:
        grants: dict[str, list[Grant]] = {}
        for r in await self.conn.execute(
            select(t.grants).where(self._among(t.grants.c.person_key, keys))
        ):
            grants.setdefault(r.person_key, []).append(
                Grant(r.grant_id, r.kind, r.drug_id, r.valid_from, r.valid_to)
            )
        supplements: dict[str, list[Supplement]] = {}
        query = select(t.supplements).where(self._among(t.supplements.c.person_key, keys))
        for r in await self.conn.execute(query):
            supplements.setdefault(r.person_key, []).append(
                Supplement(
                    r.decision_id,
                    r.kind,
                    r.municipality_code,
                    r.percentage,
                    r.valid_from,
                    r.valid_to,
                )
            )
        balances: dict[str, list[Balance]] = {}
        b = t.balances
        query = (
            select(b)
            .where(self._among(b.c.person_key, keys), (b.c.remaining != 0) | b.c.skip_once)
            .order_by(b.c.person_key, b.c.arose_on, b.c.balance_id)
        )
        for r in await self.conn.execute(query):
            balances.setdefault(r.person_key, []).append(
                Balance(
                    r.balance_id,
                    r.amount,
                    r.remaining,
                    r.arose_on,
                    r.arose_in_period,
                    r.origin,
                    r.skip_once,
                )
            )
        agreements: dict[str, list[Agreement]] = {}
        a = t.deferral_agreements
        for r in await self.conn.execute(
            select(a).where(self._among(a.c.person_key, keys), a.c.settled.is_(False))
        ):
            agreements.setdefault(r.person_key, []).append(
                Agreement(
                    r.agreement_id,
                    r.pharmacy_number,
                    r.entered_on,
                    r.monthly_rate,
                    r.rates,
                    r.ended_on,
                    r.ended_by_default,
                    r.deferred_total,
                    r.settled,
                )
            )
        for key in keys:
            s = states[key]
            states[key] = PersonState(
                s.key,
                s.birth_date,
                s.period,
                tuple(grants.get(key, ())),
                tuple(supplements.get(key, ())),
                tuple(balances.get(key, ())),
                tuple(agreements.get(key, ())),
            )

    async def known_messages(
        self, topic: str, ids: list[str]
    ) -> dict[str, tuple[str, bytes | None]]:
        """Messages of `topic` already processed: id -> (outcome, output published for it)."""
        if not ids:
            return {}
        m = t.processed_messages
        query = select(m.c.message_id, m.c.outcome, m.c.output).where(
            m.c.source_topic == topic, self._among(m.c.message_id, ids)
        )
        return {r.message_id: (r.outcome, r.output) for r in await self.conn.execute(query)}

    async def load_purchases(
        self, report_ids: Iterable[str]
    ) -> dict[str, tuple[str, PurchaseRecord]]:
        """Registered purchases by report id: report_id -> (person_key, record)."""
        ids = list(set(report_ids))
        if not ids:
            return {}
        p = t.purchases
        rows = await self.conn.execute(select(p).where(self._among(p.c.report_id, ids)))
        return {r.report_id: (r.person_key, _record(r)) for r in rows}

    async def purchase_rows(self, report_ids: list[str]) -> list[dict[str, Any]]:
        """Registered purchases' rows by report id, as mappings."""
        p = t.purchases
        rows = await self.conn.execute(select(p).where(self._among(p.c.report_id, report_ids)))
        return [dict(r._mapping) for r in rows]

    async def load_chain(
        self, person_key: str, period_start: date
    ) -> tuple[Period, tuple[PurchaseRecord, ...]] | None:
        """A period and its purchases in register order, for a correction to recompute."""
        sp, p = t.subsidy_periods, t.purchases
        row = (
            await self.conn.execute(
                select(sp).where(sp.c.person_key == person_key, sp.c.period_start == period_start)
            )
        ).first()
        if row is None:
            return None
        period = Period(
            row.period_start, row.period_end, row.saldo, row.under18, row.previous_period_end
        )
        query = (
            select(p)
            .where(p.c.person_key == person_key, p.c.period_start == period_start)
            .order_by(p.c.id)
        )
        return period, tuple(_record(r) for r in await self.conn.execute(query))

    async def load_scales(self) -> tuple[Scale, ...]:
        """The known scales and those loaded through the scale topic (a loaded one supersedes)."""
        loaded = {
            r.effective_from: Scale(
                r.effective_from,
                r.valid_to,
                r.t1,
                r.t2,
                r.t3,
                r.t4,
                r.t4_child,
                r.own_payment_cap,
                r.source,
            )
            for r in await self.conn.execute(select(t.subsidy_scales))
        }
        known = tuple(s for s in KNOWN_SCALES if s.effective_from not in loaded)
        return known + tuple(loaded.values())

    async def take_parked(self, first: date, last: date | None) -> list[Row]:
        """Parked messages dated within [first, last], marked replayed in this transaction."""
        pm = t.parked_messages
        cond = [pm.c.replayed_at.is_(None), pm.c.day >= first]
        if last is not None:
            cond.append(pm.c.day <= last)
        rows = [dict(r._mapping) for r in await self.conn.execute(select(pm).where(*cond))]
        if rows:
            await self.conn.execute(
                update(pm)
                .where(
                    tuple_(pm.c.message_id, pm.c.source_topic).in_(
                        [(r["message_id"], r["source_topic"]) for r in rows]
                    )
                )
                .values(replayed_at=datetime.now(UTC))
            )
        return rows

    # -- the write --------------------------------------------------------------------------------

    async def write(self, changes: BatchChanges, group_id: str) -> None:
        """Write a whole batch. Steps, all in the caller's transaction:

        1. persons and their touched periods;
        2. purchases (new rows, then corrections of earlier rows);
        3. grants, supplements, balances and deferral agreements that changed;
        4. corrections, scales, parked messages;
        5. processed message ids with their outputs;
        6. the consumed offset per topic-partition.
        """
        now = datetime.now(UTC)
        # Step 1
        person_rows = []
        for s in changes.persons.values():
            row = {
                "person_key": s.key,
                "birth_date": s.birth_date,
                "current_period_start": s.period.start if s.period else None,
                "has_extras": _has_extras(s),
                "updated_at": now,
            }
            before = changes.loaded.get(s.key)
            if before is None or (
                (before.period.start if before.period else None) != row["current_period_start"]
                or _has_extras(before) != row["has_extras"]
            ):
                person_rows.append(row)
        period_rows = [
            {
                "person_key": key,
                "period_start": p.start,
                "period_end": p.end,
                "previous_period_end": p.previous_end,
                "under18": p.under18,
                "saldo": p.saldo,
            }
            for (key, _), p in changes.periods.items()
        ]
        offset_rows = [
            {
                "group_id": group_id,
                "topic": topic,
                "partition": part,
                "next_offset": off,
                "updated_at": now,
            }
            for (topic, part), off in changes.offsets.items()
        ]
        if self.is_postgres:
            await self._write_hot_postgres(changes, person_rows, period_rows, offset_rows)
        else:
            for table, rows in (
                (t.persons, person_rows),
                (t.subsidy_periods, period_rows),
                (t.purchases, changes.purchases),
                (t.processed_messages, [_without_replaces(r) for r in changes.processed]),
                (t.consumer_offsets, offset_rows),
            ):
                if rows:
                    await self.conn.execute(_upsert(self.conn, table), rows)
        # Step 2 (corrections of earlier purchases)
        for row in changes.purchase_updates:
            values = {k: v for k, v in row.items() if k != "report_id"}
            await self.conn.execute(
                update(t.purchases)
                .where(t.purchases.c.report_id == row["report_id"])
                .values(**values)
            )
        # Step 3
        await self._write_extras(changes, now)
        # Step 4
        for table, rows in (
            (t.corrections, changes.corrections),
            (t.subsidy_scales, changes.scales),
            (t.parked_messages, changes.parked),
        ):
            if rows:
                await self.conn.execute(_upsert(self.conn, table), rows)

    async def _write_hot_postgres(
        self,
        changes: BatchChanges,
        person_rows: list[Row],
        period_rows: list[Row],
        offset_rows: list[Row],
    ) -> None:
        await self.conn.exec_driver_sql("SELECT 1")  # opens the transaction the raw calls join
        raw = (await self.conn.get_raw_connection()).driver_connection
        assert raw is not None
        if person_rows:
            await raw.execute(
                """INSERT INTO persons (person_key, birth_date, current_period_start, has_extras, updated_at)
                SELECT * FROM unnest($1::varchar[], $2::date[], $3::date[], $4::bool[], $5::timestamptz[])
                ON CONFLICT (person_key) DO UPDATE SET current_period_start = EXCLUDED.current_period_start,
                  has_extras = EXCLUDED.has_extras, updated_at = EXCLUDED.updated_at""",
                *_columns(
                    person_rows,
                    (
                        "person_key",
                        "birth_date",
                        "current_period_start",
                        "has_extras",
                        "updated_at",
                    ),
                ),
            )
        if period_rows:
            await raw.execute(
                """INSERT INTO subsidy_periods (person_key, period_start, period_end, previous_period_end, under18, saldo)
                SELECT * FROM unnest($1::varchar[], $2::date[], $3::date[], $4::date[], $5::bool[], $6::bigint[])
                ON CONFLICT (person_key, period_start) DO UPDATE SET saldo = EXCLUDED.saldo""",
                *_columns(
                    period_rows,
                    (
                        "person_key",
                        "period_start",
                        "period_end",
                        "previous_period_end",
                        "under18",
                        "saldo",
                    ),
                ),
            )
        if changes.purchases:
            columns = list(changes.purchases[0])
            row = operator.itemgetter(*columns)
            await raw.copy_records_to_table(
                "purchases", records=[row(r) for r in changes.purchases], columns=columns
            )
        fresh = [r for r in changes.processed if not r["replaces"]]
        if fresh:
            await raw.copy_records_to_table(
                "processed_messages",
                records=[_PROCESSED_ROW(r) for r in fresh],
                columns=_PROCESSED_COLUMNS,
            )
        replacing = [r for r in changes.processed if r["replaces"]]
        if replacing:
            await raw.execute(
                """INSERT INTO processed_messages (message_id, source_topic, outcome, output, processed_at)
                SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::bytea[], $5::timestamptz[])
                ON CONFLICT (message_id, source_topic) DO UPDATE SET outcome = EXCLUDED.outcome,
                  output = EXCLUDED.output, processed_at = EXCLUDED.processed_at""",
                *_columns(replacing, _PROCESSED_COLUMNS),
            )
        if offset_rows:
            await raw.execute(
                """INSERT INTO consumer_offsets (group_id, topic, partition, next_offset, updated_at)
                SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::int[], $4::bigint[], $5::timestamptz[])
                ON CONFLICT (group_id, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset,
                  updated_at = EXCLUDED.updated_at""",
                *_columns(
                    offset_rows, ("group_id", "topic", "partition", "next_offset", "updated_at")
                ),
            )

    async def _write_extras(self, changes: BatchChanges, now: datetime) -> None:
        grant_rows: list[Row] = []
        supplement_rows: list[Row] = []
        balance_rows: list[Row] = []
        agreement_rows: list[Row] = []
        for key, state in changes.persons.items():
            before = changes.loaded.get(key)
            old = before or PersonState(key, state.birth_date)
            if (
                state.grants is old.grants
                and state.supplements is old.supplements
                and state.balances is old.balances
                and state.agreements is old.agreements
            ):
                continue  # the usual purchase: none of these changed
            for g in set(state.grants) - set(old.grants):
                grant_rows.append(
                    {
                        "person_key": key,
                        "grant_id": g.grant_id,
                        "kind": g.kind,
                        "drug_id": g.drug_id,
                        "valid_from": g.valid_from,
                        "valid_to": g.valid_to,
                        "updated_at": now,
                    }
                )
            for s in set(state.supplements) - set(old.supplements):
                supplement_rows.append(
                    {
                        "person_key": key,
                        "decision_id": s.decision_id,
                        "kind": s.kind,
                        "municipality_code": s.municipality_code,
                        "percentage": s.percentage,
                        "valid_from": s.valid_from,
                        "valid_to": s.valid_to,
                        "updated_at": now,
                    }
                )
            for b in set(state.balances) - set(old.balances):
                balance_rows.append(
                    {
                        "balance_id": b.balance_id,
                        "person_key": key,
                        "amount": b.amount,
                        "remaining": b.remaining,
                        "arose_on": b.arose_on,
                        "arose_in_period": b.arose_in_period,
                        "origin": b.origin,
                        "skip_once": b.skip_once,
                        "settled_at_report": changes.settled_by.get(b.balance_id),
                        "updated_at": now,
                    }
                )
            for a in set(state.agreements) - set(old.agreements):
                agreement_rows.append(
                    {
                        "person_key": key,
                        "agreement_id": a.agreement_id,
                        "pharmacy_number": a.pharmacy_number,
                        "entered_on": a.entered_on,
                        "monthly_rate": a.monthly_rate,
                        "rates": a.rates,
                        "ended_on": a.ended_on,
                        "ended_by_default": a.ended_by_default,
                        "deferred_total": a.deferred_total,
                        "settled": a.settled,
                        "updated_at": now,
                    }
                )
        for table, rows in (
            (t.grants, grant_rows),
            (t.supplements, supplement_rows),
            (t.balances, balance_rows),
            (t.deferral_agreements, agreement_rows),
        ):
            if rows:
                await self.conn.execute(_upsert(self.conn, table), rows)


def _has_extras(s: PersonState) -> bool:
    return bool(s.grants or s.supplements or s.balances or s.agreements)


def _without_replaces(row: Row) -> Row:
    return {k: v for k, v in row.items() if k != "replaces"}


_PROCESSED_COLUMNS = ("message_id", "source_topic", "outcome", "output", "processed_at")
_PROCESSED_ROW = operator.itemgetter(*_PROCESSED_COLUMNS)


def _columns(rows: list[Row], names: tuple[str, ...]) -> list[list[Any]]:
    return [[r[n] for r in rows] for n in names]


def _record(r: Any) -> PurchaseRecord:
    return PurchaseRecord(
        report_id=r.report_id,
        day=r.day,
        period_start=r.period_start,
        basis=r.basis,
        entitled=r.subsidy_entitled,
        terminal=r.terminal,
        returned_basis=r.returned_basis,
        status=r.status,
        deferred=r.deferred_to_agreement,
    )


class Register:
    """The register database: hands out units of work, each one transaction.

    Raises (from `unit_of_work`):
        RegisterUnavailable: the database failed; the transaction was rolled back.
    """

    unit_of_work_class: type[RegisterUnitOfWork] = RegisterUnitOfWork

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @contextlib.asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[RegisterUnitOfWork]:
        from sqlalchemy.exc import DBAPIError, OperationalError

        try:
            async with self.engine.begin() as conn:
                yield self.unit_of_work_class(conn)
        except (OperationalError, DBAPIError, OSError) as exc:
            raise RegisterUnavailable(f"{type(exc).__name__}: {exc}".splitlines()[0][:300]) from exc

    async def close(self) -> None:
        await self.engine.dispose()
