"""Fixtures: a real Tansu broker per session, a fresh PostgreSQL database per session, unique topics per test.

A missing broker or database fails the run with a clear message; it never skips.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

import rules.obligations
import rules.outcomes
import rules.state
import sinks.rows
import streams.decode
from reghub.broker import EmbeddedBroker, create_topics
from reghub.settings import Settings
from rules.values import VALUES
from sinks.migrations import upgrade
from sinks.register import Register, make_engine
from streams.topics import TopicNames

PG_ADMIN_DSN = os.environ.get("REGHUB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

assert {rules.obligations.Obligation, rules.outcomes.Applied, rules.state.PersonState} <= set(
    VALUES
)
assert {sinks.rows.Outgoing, streams.decode.Decoded} <= set(VALUES)


def _set_once(self: object, name: str, new: object) -> None:
    """A `rules.values.value`'s field is set by its `__init__` and never again."""
    try:
        getattr(self, name)
    except AttributeError:
        object.__setattr__(self, name, new)
        return
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r} of a value")


def _never_deleted(self: object, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r} of a value")


# Every test runs with the values immutable, as frozen dataclasses are: a change to one fails the suite.
for _cls in VALUES:
    _cls.__setattr__ = _set_once  # type: ignore[method-assign, assignment]
    _cls.__delattr__ = _never_deleted  # type: ignore[method-assign, assignment]


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    b = EmbeddedBroker()
    b.start()
    yield b
    b.stop()


async def _admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_ADMIN_DSN} ({exc}); the integration tests need a "
            "real PostgreSQL (set REGHUB_TEST_PG to an admin DSN)",
            pytrace=False,
        )


def _url(name: str) -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


@pytest.fixture(scope="session")
async def pg_template() -> AsyncIterator[str]:
    """A migrated PostgreSQL database for this session, used as the template of each test's database."""
    name = f"reghub_tmpl_{uuid.uuid4().hex[:10]}"
    admin = await _admin()
    await admin.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(_url(name))
    await upgrade(engine)
    await engine.dispose()
    yield name
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, pg_template: str
) -> AsyncIterator[str]:
    """A migrated register for one test: a new SQLite file, or a fresh PostgreSQL database."""
    if request.param == "postgresql":
        name = f"reghub_test_{uuid.uuid4().hex[:10]}"
        admin = await _admin()
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
        yield _url(name)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        return
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('reg')}/register.db"
    engine = make_engine(url)
    await upgrade(engine)
    await engine.dispose()
    yield url


def settings_for(bootstrap: str, database_url: str, prefix: str) -> Settings:
    """A test's settings: its topics and consumer group under `prefix`, on a Tansu broker."""
    return Settings(
        kafka_bootstrap=bootstrap,
        kafka_idempotence=False,
        database_url=database_url,
        topic_prefix=prefix,
        consumer_group=f"{prefix}register",
        topic_partitions=2,
        kafka_session_timeout_ms=6000,
        pseudonym_key="test-pseudonym-key-0123456789",
        report_grace_seconds=10**9,
    )


@pytest.fixture
async def settings(broker: EmbeddedBroker, database_url: str) -> Settings:
    """Settings for one test: its own topics and consumer group on the session broker."""
    s = settings_for(broker.bootstrap, database_url, f"t{uuid.uuid4().hex[:8]}.")
    await create_topics(s.kafka_bootstrap, TopicNames(s.topic_prefix), s.topic_partitions)
    return s


@pytest.fixture
async def register(settings: Settings) -> AsyncIterator[Register]:
    reg = Register(make_engine(settings.database_url))
    yield reg
    await reg.close()
