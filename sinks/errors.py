"""The register's errors by kind: transient (retry the batch) or caused by one message (isolate it).

A database error is classified by its SQLSTATE (PostgreSQL) or its DB-API class (SQLite). Reasons carry
the SQLSTATE and our own column or constraint names, never the database's message: that may quote a value.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

# A unique key that another worker (or a redelivery racing this batch) filled first: "already
# processed". Retrying reloads the register, where the message now shows as a duplicate. An obligation
# the batch did not find is inserted as new (`CtrStore._write_obligations`): one another worker wrote
# since is found, locked and updated when the batch runs again.
_ALREADY_PROCESSED = (
    "processed_messages",
    "purchases_report_id",
    "purchases.report_id",
    "obligations_pkey",
)
_TRANSIENT_CLASSES = ("08", "40", "53", "55", "57", "58", "HV")


class RegisterError(Exception):
    """The register refused or failed a batch; nothing of it was committed."""

    retriable: bool = True


class RegisterUnavailable(RegisterError):
    """Transient: the database could not be reached, timed out, or hit a serialisation failure or a
    deadlock. Retry the batch with backoff; nothing was committed."""

    retriable = True


class RegisterRefused(RegisterError):
    """Deterministic: the data itself breaks a constraint or a column type (`register.*` reason).

    Retrying the same batch fails the same way: isolate the message that causes it and dead-letter it.
    """

    retriable = False

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend([getattr(e, "orig", None), e.__cause__, e.__context__])


def classify(exc: BaseException) -> RegisterError:
    """The kind of a database error raised while loading or writing a batch."""
    for e in _chain(exc):
        state = getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)
        if isinstance(state, str) and len(state) == 5:
            return _by_sqlstate(state, e)
        if isinstance(e, sqlite3.IntegrityError):
            text = str(e)
            if "UNIQUE" in text and any(name in text for name in _ALREADY_PROCESSED):
                return RegisterUnavailable("already processed by another worker: retry")
            return RegisterRefused(f"register.integrity_error: {_sqlite_constraint(text)}")
        if isinstance(e, OverflowError):  # the driver could not encode a number for its column
            return RegisterRefused("register.data_error: a number does not fit its column")
        if isinstance(e, sqlite3.DataError):
            return RegisterRefused("register.data_error: a value does not fit its column")
    first = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    return RegisterUnavailable(first)


def _by_sqlstate(state: str, e: BaseException) -> RegisterError:
    where = getattr(e, "constraint_name", None) or getattr(e, "column_name", None)
    named = f" ({where})" if where else ""
    if state == "23505" and any(name in str(where) for name in _ALREADY_PROCESSED):
        return RegisterUnavailable(f"already processed by another worker: retry{named}")
    if state.startswith("23"):
        return RegisterRefused(f"register.integrity_error: SQLSTATE {state}{named}")
    if state.startswith("22"):
        return RegisterRefused(f"register.data_error: SQLSTATE {state}{named}")
    if state.startswith(_TRANSIENT_CLASSES):
        return RegisterUnavailable(f"transient database error: SQLSTATE {state}")
    # Anything else (a missing column, a permission) needs an operator; dead-lettering every message
    # would be worse than stalling with a loud error, so it is retried.
    return RegisterUnavailable(f"database error needing an operator: SQLSTATE {state}{named}")


def _sqlite_constraint(text: str) -> str:
    """SQLite names the constraint after a colon: `NOT NULL constraint failed: purchases.kind`."""
    kind, _, where = text.partition(" constraint failed: ")
    return f"{kind.strip()} constraint {where.strip()}" if where else "a constraint failed"
