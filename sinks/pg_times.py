"""PostgreSQL's `timestamptz` between asyncpg and Python, as whole microseconds since 2000-01-01 UTC.

asyncpg's own encoder compares every value with two infinity sentinels and converts it to UTC (a new
datetime) before it subtracts the epoch: with a batch's `COPY` rows carrying four to six times a report
(the purchase's payment and registration, the obligation's arrival and update, and its event and due
time once a payment was announced), that was about 8,000 instructions a value on the worker's hot path
(callgrind; README, "What the database driver does with each value"). Here a UTC time, which is
what the register writes, is one subtraction and one integer division; any other zone is converted
first, a naive time is taken as local time and `datetime.max` / `datetime.min` (naive) are PostgreSQL's
infinities, as asyncpg does. Read back, a value is the same aware UTC datetime asyncpg returns.

Installed on each new connection of the register's PostgreSQL engine (`sinks.register.make_engine`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
"""PostgreSQL's epoch for its times."""

_MICROSECOND = timedelta(microseconds=1)
_INFINITY = 0x7FFF_FFFF_FFFF_FFFF  # PostgreSQL's 'infinity' on the wire (int64 max)
_MINUS_INFINITY = -0x8000_0000_0000_0000  # '-infinity' (int64 min)


def encode(value: datetime | date) -> tuple[int]:
    """A time as PostgreSQL's microseconds since its epoch (asyncpg's tuple format)."""
    if not isinstance(value, datetime):
        if not isinstance(value, date):
            raise TypeError(
                f"expected a datetime.date or datetime.datetime instance, got {type(value).__name__!r}"
            )
        value = datetime(value.year, value.month, value.day).astimezone()  # local midnight
    elif value.tzinfo is None:
        if value == datetime.max:
            return (_INFINITY,)
        if value == datetime.min:
            return (_MINUS_INFINITY,)
    if value.tzinfo is not UTC:  # the same instant in UTC; naive: local time
        value = value.astimezone(UTC)
    # both in the same zone object: Python subtracts them without asking either for its offset
    return ((value - PG_EPOCH) // _MICROSECOND,)


def decode(value: tuple[int]) -> datetime:
    """PostgreSQL's microseconds since its epoch as an aware UTC datetime; its infinities as asyncpg
    returns them (`datetime.max` and `datetime.min`, naive)."""
    microseconds = value[0]
    if microseconds == _INFINITY:
        return datetime.max
    if microseconds == _MINUS_INFINITY:
        return datetime.min
    return PG_EPOCH + timedelta(microseconds=microseconds)


async def install(connection: Any) -> None:
    """Use `encode` and `decode` for `timestamptz` on this asyncpg connection."""
    await connection.set_type_codec(
        "timestamptz", schema="pg_catalog", encoder=encode, decoder=decode, format="tuple"
    )
