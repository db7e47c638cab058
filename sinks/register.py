"""The register's unit of work: the one transaction a batch has, and the stores of its registers.

A batch is loaded through the stores (`sinks.ctr_store` for the CTR, `sinks.places_store` for the
treatment-place register) and written by `RegisterUnitOfWork.write`: each store's rows, the message ids
processed, the consumed offset per topic-partition with its log's identity, and the batch's outputs in
the outbox (`keep_outputs`), all in one transaction. Errors are classified here (`sinks.errors`): a
transient failure, or data the register refuses. Called once per batch by the pipeline.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, literal, null, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from sinks import outbox, pg_times
from sinks import tables as t
from sinks.changes import BatchChanges
from sinks.ctr_store import CtrStore
from sinks.errors import RegisterError, RegisterRefused, RegisterUnavailable, classify
from sinks.places_store import PlacesStore
from sinks.rows import OffsetRow, Outgoing, ProcessedRow
from sinks.sql import OnTransaction, columns, plain, upsert

__all__ = [
    "Register",
    "RegisterError",
    "RegisterRefused",
    "RegisterUnavailable",
    "make_engine",
    "worker_engine",
]

Row = dict[str, Any]


def make_engine(url: str, *, pool_size: int = 5, pre_ping: bool = True) -> AsyncEngine:
    """An async engine for the register.

    SQLite gets write-ahead logging and a busy timeout, so the API and the CLI read beside the worker;
    PostgreSQL plans every statement for its own parameters and has its times encoded by
    `sinks.pg_times`. `pre_ping` tests each connection as it is taken from the pool (two round
    trips): see `worker_engine` for the one caller that does not.
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
    # A batch's reads are the same few statements with other arrays of keys. PostgreSQL switches a
    # prepared statement to a generic plan after five runs, and one made while the tables were young
    # scans them whole for ever after (200-500 ms a batch at 100,000 rows): plan each run instead.
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        pool_pre_ping=pre_ping,
        connect_args={"server_settings": {"plan_cache_mode": "force_custom_plan"}},
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _times(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.run_async(
            pg_times.install
        )  # timestamptz encoded faster (`sinks.pg_times`)

    return engine


def worker_engine(url: str) -> AsyncEngine:
    """The worker's engine: no test of a pooled connection before each batch and each outbox mark.

    The worker retries whatever fails, so a connection the server dropped costs one batch attempt
    (the error invalidates the pool, and the retry connects anew) instead of two round trips on every
    checkout: a quarter of the round trips of a small batch, and of its latency at 2,000 reports/s.
    """
    return make_engine(url, pre_ping=False)


class RegisterUnitOfWork(OnTransaction):
    """One transaction on one connection, with a store per register on it (`ctr`, `places`); the
    stores read and write, `write` writes a whole batch, and the caller commits."""

    def __init__(self, conn: AsyncConnection) -> None:
        super().__init__(conn)
        self.ctr = CtrStore(conn)
        self.ctr.share(self)
        self.places = PlacesStore(conn)

    async def known_messages(
        self, ids: Iterable[tuple[str, str]], by_purchase: Iterable[str] = ()
    ) -> dict[tuple[str, str], tuple[str, bytes | None, int | None]]:
        """Messages already processed, in one round trip: (topic, id) -> (outcome, output kept for it,
        content hash).

        On the topics `by_purchase` a registered message is known by its purchase row (report id =
        message id), which holds its content hash; a row registered before that column (hash NULL)
        has a processed row as well, and that one answers."""
        wanted = set(ids)
        if not wanted:
            return {}
        m = t.processed_messages
        query: Any = select(
            m.c.source_topic, m.c.message_id, m.c.outcome, m.c.output, m.c.content_hash
        ).where(self._among(m.c.message_id, "ids"), self._among(m.c.source_topic, "topics"))
        ids = sorted({mid for _, mid in wanted})
        topics = sorted({topic for topic, _ in wanted})
        params: dict[str, Any] = {"ids": ids, "topics": topics}
        purchase_topics = sorted(set(by_purchase) & set(topics))
        if purchase_topics:
            p = t.purchases
            rids = sorted({mid for topic, mid in wanted if topic in purchase_topics})
            # a batch of reports alone asks for the same ids twice: one list, sent once
            rids_name = "ids" if rids == ids else "rids"
            query = query.union_all(
                select(
                    null().label("source_topic"),
                    p.c.report_id,
                    literal("registered").label("outcome"),
                    null().label("output"),
                    p.c.content_hash,
                ).where(self._among(p.c.report_id, rids_name), p.c.content_hash.is_not(None))
            )
            params[rids_name] = rids
        found = {}
        for r in await self.conn.execute(query, params):
            if r.source_topic is None:  # a purchase row: the same id on each topic known by rows
                for topic in purchase_topics:
                    found.setdefault((topic, r.message_id), (r.outcome, r.output, r.content_hash))
            elif (r.source_topic, r.message_id) in wanted:
                found[(r.source_topic, r.message_id)] = (r.outcome, r.output, r.content_hash)
        return {k: v for k, v in found.items() if k in wanted}

    async def keep_outputs(self, outputs: list[Outgoing], now: datetime) -> int:
        """The batch's outputs as one outbox row (`sinks.outbox`); returns its id."""
        return await outbox.add(self.conn, outputs, now)

    # -- the write --------------------------------------------------------------------------------

    async def write(self, changes: BatchChanges, group_id: str) -> None:
        """Write a whole batch. Steps, all in this transaction:

        0-4. the CTR's rows (`CtrStore.write_batch`: merges and aliases, persons and periods,
           purchases, grants and the like, obligations, custody, relations, corrections, scales,
           parked messages);
        4b. the treatment-place register's rows (`PlacesStore.write_rows`);
        5. processed message ids with their outputs (a registered dispensing has none: its purchase
           row, written in step 2 with its content hash, tells it was processed);
        6. the consumed offset per topic-partition, with the log it belongs to;
        7. the counts the dashboard reads (`CtrStore.write_counts`). Last, so their row locks are
           held shortest.

        Raises:
            RegisterUnavailable: a person's key was registered by another worker meanwhile (a report
                under a new number and its renumbering at once): run the batch again.
            sqlalchemy.exc.DBAPIError, asyncpg.PostgresError, OSError: the database refused or failed;
                `Register.unit_of_work` classifies it.
        """
        now = datetime.now(UTC)
        # Steps 0-4
        total = await self.ctr.write_batch(changes, now)
        await self.places.write_rows(changes.rows)
        # Steps 5-6
        offset_rows = [
            OffsetRow(group_id, topic, part, off, now, changes.log_ids.get(topic))
            for (topic, part), off in changes.offsets.items()
        ]
        if self.is_postgres:
            await self._write_processed_postgres(changes, offset_rows)
        else:
            for table, rows in (
                (t.processed_messages, changes.processed + changes.replacing),
                (t.consumer_offsets, offset_rows),
            ):
                if rows:
                    await self.conn.execute(upsert(self.conn, table), [r._asdict() for r in rows])
        # Step 7
        await self.ctr.write_counts(changes, total)

    async def _write_processed_postgres(
        self, changes: BatchChanges, offset_rows: list[OffsetRow]
    ) -> None:
        raw = await self._raw()
        if changes.processed:
            await raw.copy_records_to_table(
                "processed_messages", records=plain(changes.processed), columns=ProcessedRow._fields
            )
        if changes.replacing:
            await raw.execute(
                """INSERT INTO processed_messages (message_id, source_topic, outcome, output, processed_at, content_hash)
                SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::bytea[], $5::timestamptz[], $6::bigint[])
                ON CONFLICT (message_id, source_topic) DO UPDATE SET outcome = EXCLUDED.outcome,
                  output = EXCLUDED.output, processed_at = EXCLUDED.processed_at,
                  content_hash = EXCLUDED.content_hash""",
                *columns(changes.replacing),
            )
        if offset_rows:
            await raw.execute(
                """INSERT INTO consumer_offsets (group_id, topic, partition, next_offset, updated_at, log_id)
                SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::int[], $4::bigint[], $5::timestamptz[], $6::varchar[])
                ON CONFLICT (group_id, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset,
                  updated_at = EXCLUDED.updated_at, log_id = EXCLUDED.log_id""",
                *columns(offset_rows),
            )

    async def consumer_offsets(
        self, group_id: str
    ) -> dict[tuple[str, int], tuple[int, str | None]]:
        """The offsets this consumer group's batches committed with the register: (topic, partition)
        -> (next offset, the log it belongs to)."""
        o = t.consumer_offsets
        query = select(o.c.topic, o.c.partition, o.c.next_offset, o.c.log_id).where(
            o.c.group_id == group_id
        )
        return {
            (r.topic, r.partition): (r.next_offset, r.log_id)
            for r in await self.conn.execute(query)
        }


class Register:
    """The register database: hands out units of work, each one transaction.

    Raises (from `unit_of_work`):
        RegisterUnavailable: a transient failure (connection, timeout, serialisation, deadlock);
            the transaction was rolled back. Retry.
        RegisterRefused: the data broke a constraint or a column type; rolled back. Retrying the same
            batch fails again: find the message that causes it.
    """

    unit_of_work_class: type[RegisterUnitOfWork] = RegisterUnitOfWork

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @contextlib.asynccontextmanager
    async def unit_of_work(self, *, rollback: bool = False) -> AsyncIterator[RegisterUnitOfWork]:
        """One transaction; committed when the block ends, or rolled back if `rollback` (a trial)."""
        from sqlalchemy.exc import SQLAlchemyError

        try:
            async with self.engine.connect() as conn:
                transaction = await conn.begin()
                try:
                    yield self.unit_of_work_class(conn)
                except BaseException:
                    await transaction.rollback()
                    raise
                if rollback:
                    await transaction.rollback()
                else:
                    await transaction.commit()
        except RegisterError:
            raise
        except (SQLAlchemyError, OSError, sqlite3.Error) as exc:
            raise classify(exc) from exc
        except Exception as exc:
            if _is_driver_error(exc):
                raise classify(exc) from exc
            raise

    async def close(self) -> None:
        await self.engine.dispose()


def _is_driver_error(exc: BaseException) -> bool:
    """asyncpg's own errors (raised by the raw `COPY` and `unnest()` calls) and its connection errors."""
    import asyncpg

    return isinstance(
        exc, asyncpg.PostgresError | asyncpg.InterfaceError | TimeoutError | OverflowError
    )
