"""What the unit of work and the stores share on one transaction: its connection, the driver connection
under it, the `IN` list bound at execution, the upsert by primary key, and rows packed for one
statement (`unnest()` columns, a JSON array)."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import orjson
from sqlalchemy import Table, Text, TypeDecorator, any_, bindparam, func, literal_column
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from sinks import tables as t


class OnTransaction:
    """One connection in its transaction, as the unit of work and its stores use it.

    The stores of a unit of work are built on its `OnTransaction` (`share`), so they reach the same
    driver connection: one transaction, whoever writes.
    """

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.is_postgres = conn.dialect.name == "postgresql"
        self._raw_conn: Any = None  # `_raw`: the driver's connection, once the transaction is open
        self._shared: OnTransaction | None = None

    def share(self, other: OnTransaction) -> None:
        """Use `other`'s driver connection (the unit of work's) rather than one's own."""
        self._shared = other

    def _among(self, column: Any, name: str = "among") -> Any:
        """`column IN :name`, the list given when the query runs; on PostgreSQL one text parameter
        (`among_joined`), so the statement text never changes.

        Bound at execution, not built into the statement: a statement's expression objects refer to
        one another in cycles, which only the cyclic collector frees, and the worker runs it seldom
        (`streams.processor`), so values built in stayed alive for many batches (a rebuild of
        300,000 reports held some 400,000 of their ids and keys)."""
        if self.is_postgres:
            return among_joined(column, name)
        return column.in_(bindparam(name, expanding=True))

    async def _raw(self) -> Any:
        """The asyncpg connection under this unit of work, its transaction open (PostgreSQL)."""
        if self._shared is not None:
            return await self._shared._raw()
        if self._raw_conn is None:
            await self.conn.exec_driver_sql("SELECT 1")  # opens the transaction the raw calls join
            raw = (await self.conn.get_raw_connection()).driver_connection
            assert raw is not None
            self._raw_conn = raw
        return self._raw_conn


LIST_SEPARATOR = "\x1f"
"""Between the values of a list bound as one text parameter (`joined`): the unit separator, a control
character that no key or id the register holds can contain (the schemas refuse them in each)."""
SEPARATOR_SQL = f"chr({ord(LIST_SEPARATOR)})"
"""`LIST_SEPARATOR` in SQL."""


def split_sql(parameter: str) -> str:
    """SQL for the text array of a `joined` list bound as `parameter` (`$1`, say)."""
    return f"string_to_array({parameter}::text, {SEPARATOR_SQL})"


def joined(values: Iterable[str]) -> str:
    """A list of keys or ids as one text parameter, which `string_to_array($n, chr(31))` splits again.

    asyncpg checks every element of an array parameter against two abstract base classes, about 2,900
    instructions an element: a batch of 5,000 reports binds some 19,000 keys and ids in its reads. One
    string costs it next to nothing, and PostgreSQL splits it about as fast as it decodes an array. A
    value holding the separator is left out: no row can match it, and split it could match others."""
    wanted = values if isinstance(values, list) else list(values)
    text = LIST_SEPARATOR.join(wanted)
    if wanted and text.count(LIST_SEPARATOR) != len(wanted) - 1:
        text = LIST_SEPARATOR.join(v for v in wanted if LIST_SEPARATOR not in v)
    return text


class JoinedList(TypeDecorator[list[str]]):
    """A bound list of strings sent as `joined` text (PostgreSQL)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else joined(value)


def among_joined(column: Any, name: str) -> Any:
    """`column = ANY(string_to_array(:name, chr(31)))`: `column` among the list bound as `name`
    (`joined`), on PostgreSQL. With each statement planned for its own parameters, PostgreSQL folds
    the split into the constant array an index scan takes."""
    return column == any_(
        func.string_to_array(bindparam(name, type_=JoinedList()), literal_column(SEPARATOR_SQL))
    )


def upsert(conn: AsyncConnection, table: Table) -> Any:
    """An insert of `table`'s rows that updates the row with the same primary key.

    Built once per dialect and table: a statement built per batch leaves a cycle of expression objects
    behind (its `excluded` alias), garbage only a full collection frees (`_among`)."""
    return _upsert(conn.dialect.name, table)


@functools.cache
def _upsert(dialect: str, table: Table) -> Any:
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(table)
    keys = [c.name for c in table.primary_key.columns]
    if table is t.purchases:
        keys = ["report_id"]
    changing = {
        # a column marked `once` keeps its first value: a writer that read the row before another set
        # it (a batch beside a timer) never clears it
        c.name: func.coalesce(table.c[c.name], stmt.excluded[c.name])
        if c.info.get("once")
        else stmt.excluded[c.name]
        for c in table.columns
        if c.name not in keys
    }
    return stmt.on_conflict_do_update(index_elements=keys, set_=changing)


def json_rows(rows: list[Any]) -> str:
    """Typed rows as one JSON array of arrays, for `jsonb_array_elements()`: orjson writes it in one
    call, where `unnest()` arrays cost the driver a type check per element (a third of the client
    CPU of the write, measured). Dates and times are ISO 8601 (times with their offset), integers
    exact, None null: each is cast back to its column's type in the statement."""
    return orjson.dumps(rows, default=tuple).decode()


def columns(rows: list[Any]) -> list[list[Any]]:
    """Typed rows as one array per column, for `unnest()`."""
    return [list(column) for column in zip(*rows, strict=True)]


def plain(rows: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Typed rows (`NamedTuple`s) as plain tuples, for asyncpg's `copy_records_to_table`: it reads a
    tuple subclass's values through the generic subscript, which cost about 2 µs more per purchase row
    (35 values) than the copy to a plain tuple does (measured on a batch of 5,000)."""
    return [tuple(row) for row in rows]
