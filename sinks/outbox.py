"""The transactional outbox: a batch's outputs kept in the register, in the batch's own transaction.

One row per batch holds all its outputs (decisions, settlements, dead letters, changes, alerts,
replays), framed into one blob: one insert per batch instead of one per output, and the relay reads
them back in the order they were committed (`id`). A row is `sent` once the broker acknowledged every
record in it; unsent rows are published again after a crash, so an output is never lost, and may be
published twice — each record carries `reghub-output-id: <row id>.<index>` so consumers can dedupe.

Sent rows are kept for `keep` (default 1 h, `REGHUB_OUTBOX_KEEP_HOURS`) to answer "was it sent, and
when", then deleted, every quarter of `keep` (`purge_interval`); unsent rows are never deleted. At
300 reports/s an hour of sent rows is about 0.16 GB; kept 24 h, about 4 GB (`bench.soak`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from sinks import tables
from sinks.rows import Outgoing

_MAGIC = b"RO1"
_COUNT = struct.Struct(">I")
_HEAD = struct.Struct(">HiIH")  # topic length, key length (-1: no key), value length, headers
_HEADER = struct.Struct(">HI")  # header name length, value length


def encode(outputs: Sequence[Outgoing]) -> bytes:
    """Outputs as one blob: `RO1`, a count, then each record's lengths and bytes."""
    parts = [_MAGIC, _COUNT.pack(len(outputs))]
    append = parts.append
    for m in outputs:
        topic = m.topic.encode()
        key = m.key
        append(
            _HEAD.pack(len(topic), -1 if key is None else len(key), len(m.value), len(m.headers))
        )
        append(topic)
        if key:
            append(key)
        append(m.value)
        for name, value in m.headers:
            raw = name.encode()
            append(_HEADER.pack(len(raw), len(value)))
            append(raw)
            append(value)
    return b"".join(parts)


def decode(blob: bytes) -> list[Outgoing]:
    """The outputs `encode` framed, in their order.

    Raises:
        ValueError: the blob is not an outbox payload of this version.
    """
    if blob[:3] != _MAGIC:
        raise ValueError("not an outbox payload (version RO1)")
    try:
        return _frames(memoryview(blob))
    except struct.error as exc:
        raise ValueError(f"outbox payload cut short: {exc}") from exc


def _frames(view: memoryview) -> list[Outgoing]:
    (count,) = _COUNT.unpack_from(view, 3)
    at = 3 + _COUNT.size
    out: list[Outgoing] = []
    for _ in range(count):
        topic_len, key_len, value_len, n_headers = _HEAD.unpack_from(view, at)
        at += _HEAD.size
        topic = bytes(view[at : at + topic_len]).decode()
        at += topic_len
        key = None
        if key_len >= 0:
            key = bytes(view[at : at + key_len])
            at += key_len
        value = bytes(view[at : at + value_len])
        at += value_len
        headers = []
        for _ in range(n_headers):
            name_len, header_len = _HEADER.unpack_from(view, at)
            at += _HEADER.size
            name = bytes(view[at : at + name_len]).decode()
            at += name_len
            headers.append((name, bytes(view[at : at + header_len])))
            at += header_len
        out.append(Outgoing(topic, key, value, tuple(headers)))
    if at != len(view):
        raise ValueError("outbox payload is cut short or has trailing bytes")
    return out


async def add(conn: AsyncConnection, outputs: Sequence[Outgoing], now: datetime) -> int:
    """Keep a batch's outputs in the caller's transaction; returns the row's id."""
    o = tables.outbox
    # bound when it runs, not built into the statement: the statement's objects form cycles, which
    # would keep the batch's payload (megabytes) alive until the cyclic collector ran
    row = {"created_at": now, "records": len(outputs), "payload": encode(outputs)}
    result = await conn.execute(insert(o).returning(o.c.id), row)
    return int(result.scalar_one())


async def lock(conn: AsyncConnection) -> None:
    """Serialise relays across workers (PostgreSQL: an advisory lock held until the transaction ends),
    so two of them never publish unsent rows side by side, out of order. SQLite has one writer anyway."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(7365686162)"))


async def unsent(
    conn: AsyncConnection, limit: int, created_before: datetime | None = None
) -> list[tuple[int, bytes]]:
    """The oldest unsent rows, in commit order."""
    o = tables.outbox
    query = select(o.c.id, o.c.payload).where(o.c.sent_at.is_(None)).order_by(o.c.id).limit(limit)
    if created_before is not None:
        query = query.where(o.c.created_at < created_before)
    return [(r.id, r.payload) for r in await conn.execute(query)]


async def mark_sent(conn: AsyncConnection, ids: Iterable[int], now: datetime) -> None:
    o = tables.outbox
    ids = list(ids)
    if ids:
        await conn.execute(update(o).where(o.c.id.in_(ids)).values(sent_at=now))


async def backlog(conn: AsyncConnection) -> tuple[int, datetime | None]:
    """How many rows are unsent, and when the oldest of them was committed."""
    o = tables.outbox
    row = (
        await conn.execute(
            select(func.count(), func.min(o.c.created_at)).where(o.c.sent_at.is_(None))
        )
    ).one()
    return int(row[0]), row[1]


async def unsent_records(conn: AsyncConnection) -> tuple[int, datetime | None]:
    """How many records the unsent rows hold (a row holds a batch's outputs), and when the oldest of
    them was committed."""
    o = tables.outbox
    row = (
        await conn.execute(
            select(func.coalesce(func.sum(o.c.records), 0), func.min(o.c.created_at)).where(
                o.c.sent_at.is_(None)
            )
        )
    ).one()
    return int(row[0]), row[1]


PURGE_MIN_SECONDS = 1.0
PURGE_MAX_SECONDS = 3600.0


def purge_interval(keep_hours: float) -> float:
    """Seconds between purges: a quarter of the retention, so a sent row lives at most 1.25 × `keep`
    (from 1 s, for a retention of seconds in tests, up to an hour)."""
    return min(PURGE_MAX_SECONDS, max(PURGE_MIN_SECONDS, keep_hours * 3600.0 / 4))


async def purge(conn: AsyncConnection, keep: timedelta, now: datetime) -> int:
    """Delete rows sent longer than `keep` ago; returns how many."""
    o = tables.outbox
    result = await conn.execute(delete(o).where(o.c.sent_at.is_not(None), o.c.sent_at < now - keep))
    return int(result.rowcount or 0)
