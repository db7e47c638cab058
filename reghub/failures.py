"""The failures a `reghub` command is known to meet, each said in one line: what is wrong, what to do.

`explain` turns an exception (or the cause it was raised from) into a `Failure`; the command line's
entry point prints its line and exits with its code instead of a traceback. An exception it does not
know is a bug and keeps its traceback. `check_web_ports`, `check_broker` and `check_register` find them
before a worker starts. No line repeats a setting's value (a URL may hold a password) or a person
number.
"""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator
from types import TracebackType

from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from reghub.settings import Settings
from rules.identifiers import mask_person_numbers
from sinks.kafka_client import BrokerUnavailable

UPGRADE = "run `reghub db upgrade`"
_DATABASE_MODULES = ("sqlalchemy", "asyncpg", "aiosqlite", "sqlite3", "sinks")


class Failure(Exception):
    """A known failure: the lines to print (one, except one per wrong setting) and the exit code.

    `retriable` is true when waiting may mend it (a database that is down or starting up).
    """

    def __init__(self, lines: tuple[str, ...], exit_code: int = 1, retriable: bool = False) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines
        self.exit_code = exit_code
        self.retriable = retriable


def settings_problems(exc: ValidationError) -> list[str]:
    """One line per missing or invalid `REGHUB_*` variable: its name and what is wrong, never a value."""
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        field = str(error["loc"][0]) if error["loc"] else ""
        variable = f"REGHUB_{field.upper()}" if field else "settings"
        if error["type"] == "missing":
            info = Settings.model_fields.get(field)
            what = f" ({info.description})" if info is not None and info.description else ""
            lines.append(f"{variable} is not set{what}")
        elif error["type"] == "too_short":  # the message would tell a secret's length
            lines.append(f"{variable}: at least {error['ctx']['min_length']} characters")
        else:
            message = error["msg"].removeprefix("Value error, ")
            lines.append(message if variable == "settings" else f"{variable}: {message}")
    return lines


def explain(exc: BaseException, database_url: str | None = None) -> Failure | None:
    """The `Failure` that `exc` (or an exception it was raised from) is, or None for an unknown one.

    `database_url` names the register in the line (host, port and database name, never a password).
    """
    for e in _chain(exc):
        if isinstance(e, Failure):
            return e
        if isinstance(e, BrokerUnavailable):
            return Failure((e.hint,))
        if isinstance(e, ValidationError) and e.title == Settings.__name__:
            return Failure(tuple(settings_problems(e)), exit_code=2)
        if type(e).__module__.startswith("alembic") and "Can't locate revision" in str(e):
            where, name = describe(database_url)
            return Failure(
                (
                    f"the register ({where}, {name}) is at a revision this reghub does not know "
                    f"({str(e).rsplit(' ', 1)[-1]}) — run the reghub version that migrated it",
                )
            )
    if _from_database(exc) and (failure := _database_failure(exc, database_url)) is not None:
        return failure
    for e in _chain(exc):
        if isinstance(e, FileNotFoundError | IsADirectoryError | PermissionError) and e.filename:
            name = mask_person_numbers(str(e.filename))
            return Failure((f"{name}: {e.strerror or 'cannot be read'}",))
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then what it was raised from or during, oldest last; each once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _from_database(exc: BaseException) -> bool:
    """Whether `exc` or one in its chain was raised in the database layer (the register's store, the
    SQL toolkit or a driver): a refused connection there is the database's, not the broker's."""
    for e in _chain(exc):
        if isinstance(e, sqlite3.Error) or type(e).__module__.startswith(_DATABASE_MODULES):
            return True
        tb: TracebackType | None = e.__traceback__
        while tb is not None:
            if str(tb.tb_frame.f_globals.get("__name__", "")).startswith(_DATABASE_MODULES):
                return True
            tb = tb.tb_next
    return False


def _sqlstate(e: BaseException) -> str | None:
    state = getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)
    return state if isinstance(state, str) and len(state) == 5 else None


def describe(database_url: str | None) -> tuple[str, str]:
    """(where the register is, its database's name) for a line: `PostgreSQL at host:port`, or the
    SQLite file; never the user's password."""
    if not database_url:
        return "the register database", ""
    try:
        url = make_url(database_url)
    except ArgumentError:
        return "the register database", ""
    if url.get_backend_name() == "sqlite":
        return f"the SQLite register {url.database}", url.database or ""
    return f"PostgreSQL at {url.host or 'localhost'}:{url.port or 5432}", url.database or ""


def _database_failure(exc: BaseException, database_url: str | None) -> Failure | None:
    where, name = describe(database_url)
    fix_url = "or set REGHUB_DATABASE_URL"
    for e in _chain(exc):
        state = _sqlstate(e)
        text = str(e)
        if state == "3D000":
            return Failure(
                (
                    f'database "{name}" does not exist on {where} — create it (createdb {name}) '
                    f"and {UPGRADE}, {fix_url}",
                )
            )
        if state in ("28P01", "28000"):
            user = make_url(database_url).username if database_url else None
            return Failure(
                (
                    f'{where} refused user "{user}" (wrong password, or no such role) — check the '
                    "user and password in REGHUB_DATABASE_URL",
                )
            )
        if state in ("42P01", "42703") or (
            isinstance(e, sqlite3.OperationalError) and "no such table" in text
        ):
            return Failure((f"the register ({where}, {name}) is not migrated — {UPGRADE}",))
        if state in ("57P03", "53300"):
            reason = "starting up" if state == "57P03" else "too many connections"
            return _down(where, reason, fix_url)
        if isinstance(e, sqlite3.OperationalError) and "unable to open" in text:
            return Failure(
                (f"cannot open {where} — check that its folder exists and is yours, {fix_url}",)
            )
        if isinstance(e, ConnectionRefusedError):
            return _down(where, "connection refused", fix_url)
        if isinstance(e, socket.gaierror):
            return _down(where, "no such host", fix_url)
        if isinstance(e, TimeoutError):
            return _down(where, "no answer", fix_url)
        if isinstance(e, OSError) and "Connect call failed" in text:
            return _down(where, "connection refused", fix_url)
    return None


def _down(where: str, reason: str, fix_url: str) -> Failure:
    return Failure(
        (f"the register database does not answer ({where}: {reason}) — start it, {fix_url}",),
        retriable=True,
    )


async def check_register(database_url: str) -> None:
    """A worker's start-up check of the register: reachable, and at this code's newest revision.

    Raises:
        Failure: the database does not exist, refuses the user, or is not migrated (not retriable);
            or does not answer (retriable: the worker waits for it).
    """
    from sinks.migrations import revisions
    from sinks.register import make_engine

    engine = make_engine(database_url, pool_size=1)
    try:
        current, known = await revisions(engine)
    except Exception as exc:
        failure = explain(exc, database_url)
        if failure is None:
            raise
        raise failure from None
    finally:
        await engine.dispose()
    if not known or known[0] in current:
        return
    where, name = describe(database_url)
    register = f"the register ({where}, {name})"
    if not current:
        raise Failure((f"{register} is not migrated — {UPGRADE}",))
    newer = [r for r in current if r not in known]
    if newer:
        raise Failure(
            (
                f"{register} is at revision {', '.join(newer)}, newer than this reghub knows "
                f"({known[0]}) — run the reghub version that migrated it",
            )
        )
    raise Failure(
        (
            f"{register} is at revision {', '.join(current)}, this reghub needs {known[0]} — {UPGRADE}",
        )
    )


async def check_broker(settings: Settings) -> None:
    """A worker's start-up check of the broker: it answers a metadata request.

    Raises:
        BrokerUnavailable: nothing answers at the bootstrap address (or not as configured).
    """
    from aiokafka.admin import AIOKafkaAdminClient

    from reghub.kafka_options import kafka_client_options
    from sinks.kafka_client import start_client

    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, **kafka_client_options(settings)
    )
    await start_client(admin, settings.kafka_bootstrap, settings.kafka_security_protocol)
    await admin.close()


def check_web_ports(first: int, count: int) -> None:
    """A worker's start-up check of its web ports (health, readiness, metrics): `count` ports from
    `first` on, each free on every address as faust binds it.

    Raises:
        Failure: one of them is taken.
    """
    for port in range(first, first + count):
        with socket.socket() as probe:
            # as the web server binds: a port that only has closed connections waiting is free
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                which = "web port" if count == 1 else f"web port of worker {port - first}"
                raise Failure(
                    (
                        f"port {port} (the {which}) is taken — stop what uses it, or set "
                        "REGHUB_WEB_PORT",
                    )
                ) from None
