"""Atomic per-message effects: a handler that fails leaves the register exactly as if its message never came.

For every input topic, the real handler runs on the message and then raises (as a bug after the rules
would): on the first message of a new person, and on a person with history. The register afterwards must
equal, table by table, a register that never saw the message, and the next message of the same person
must get the same decision. Runs the real pipeline against SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from reghub.demo_places import registrations
from sinks import tables
from sinks.migrations import upgrade
from sinks.register import Register, make_engine
from streams.decode import Decoded, Rejected, Source, decode
from streams.handlers import HANDLERS
from streams.handlers.base import ApplyConfig, Handler
from streams.pipeline import Pipeline
from streams.topics import (
    CORRECTIONS,
    DEAD_LETTER,
    DECISIONS,
    DECISIONS_MADE,
    DEFERRALS,
    DISPENSINGS,
    INDIVIDUAL_GRANTS,
    MUNICIPAL_GRANTS,
    PAYMENTS,
    PERSON_EVENTS,
    REGISTRATIONS,
    SUBSIDY_SCALES,
    TREATMENT_RELATIONS,
    TopicNames,
    TopicSpec,
)
from tests.conftest import _admin, _url
from tests.messages import (
    PERSON,
    SCALE_2025,
    correction,
    death,
    grant,
    municipal,
    renumbering,
    report,
    treatment_relation,
)

pytestmark = pytest.mark.database

NAMES = TopicNames("")
CONFIG = ApplyConfig(
    group_id="atomicity",
    report_grace_seconds=10**9,
    pseudonym_secret=b"test-pseudonym-key-0123456789",
)
# Columns the clock or the database fills: they differ between any two runs.
VOLATILE = {
    "merged_at",
    "id",
    "registered_at",
    "updated_at",
    "processed_at",
    "loaded_at",
    "parked_at",
    "replayed_at",
    "received_at",
    "recorded_at",
    "computed_at",
    "imported_at",
}

DEFERRAL = {
    "message_id": "h-boom",
    "sent_at": "2024-01-02T09:00:00+01:00",
    "pharmacy_number": "12300",
    "action": "entered",
    "agreement_id": "h-boom",
    "date": "2024-01-02",
    "monthly_rate": 38_125,
    "rates": 12,
    "person": {"key": PERSON},
}
PAYMENT = {
    "message_id": "pay-boom",
    "pharmacy_number": "12300",
    "dispensing_id": "d-h2",  # the history's second report: an obligation met before it is armed
    "paid_at": "2024-01-20T10:00:00+01:00",
    "person": {"key": PERSON},
}
DECISION_MADE = {
    "message_id": "made-boom",
    "sender": {"municipality_code": 101, "user": "sagsbehandler"},
    "decision_id": "md-boom",
    "decided_at": "2024-01-21T10:00:00+01:00",
    "person": {"key": PERSON},
}
Message = tuple[TopicSpec, dict[str, Any]]
# Two demo clinics' registration steps: company, unit in SOR, treatment-place information.
CLINIC_A, CLINIC_B = (
    [(REGISTRATIONS, m) for _, m in registrations("atom", clinics=2)][i * 3 : i * 3 + 3]
    for i in (0, 1)
)
HISTORY: list[Message] = [
    (DISPENSINGS, report("h1", 150_000, "2024-01-05T10:00:00+01:00")),
    (DISPENSINGS, report("h2", 250_000, "2024-01-20T10:00:00+01:00")),
    *CLINIC_A[:2],  # the company with history: registered, its unit in SOR
]
# topic -> (the message whose handler fails when the person is new, ... when the person has history)
FAILING: dict[TopicSpec, tuple[Message, Message]] = {
    DISPENSINGS: (
        (DISPENSINGS, report("boom", 300_000, "2024-01-25T10:00:00+01:00")),
        (DISPENSINGS, report("boom", 300_000, "2024-01-25T10:00:00+01:00")),
    ),
    INDIVIDUAL_GRANTS: (
        (INDIVIDUAL_GRANTS, grant("g-boom", "2024-01-01", "2024-12-31", drug_id="028100")),
        (INDIVIDUAL_GRANTS, grant("g-boom", "2024-01-01", "2024-12-31", drug_id="028100")),
    ),
    MUNICIPAL_GRANTS: (
        (MUNICIPAL_GRANTS, municipal("m-boom", 101, "85")),
        (MUNICIPAL_GRANTS, municipal("m-boom", 101, "85")),
    ),
    PERSON_EVENTS: (
        (PERSON_EVENTS, death("e-boom", "2024-01-22")),
        (PERSON_EVENTS, renumbering("e-boom", effective_on="2024-01-22")),
    ),
    TREATMENT_RELATIONS: (
        (TREATMENT_RELATIONS, treatment_relation("t-boom", "2024-01-10")),
        (TREATMENT_RELATIONS, treatment_relation("t-boom", "2024-01-10", "2024-01-22")),
    ),
    PAYMENTS: (
        (PAYMENTS, PAYMENT),
        (PAYMENTS, PAYMENT),
    ),
    DECISIONS_MADE: (
        (DECISIONS_MADE, DECISION_MADE),
        (DECISIONS_MADE, DECISION_MADE),
    ),
    DEFERRALS: ((DEFERRALS, DEFERRAL), (DEFERRALS, DEFERRAL)),
    CORRECTIONS: (
        (CORRECTIONS, correction("c-boom", "balancing", amount=-12_345)),
        (CORRECTIONS, correction("c-boom", "cancel", report_id="h1")),
    ),
    SUBSIDY_SCALES: ((SUBSIDY_SCALES, SCALE_2025), (SUBSIDY_SCALES, SCALE_2025)),
    # keyed by company: a new company registered; the information that registers a known company's place
    REGISTRATIONS: (CLINIC_B[0], CLINIC_A[2]),
}
# The next message of the same person in the same batch: it must not see the failed message's effects.
AFTER: dict[TopicSpec, Message] = {
    SUBSIDY_SCALES: (DISPENSINGS, report("after", 120_000, "2025-02-01T10:00:00+01:00")),
}
DEFAULT_AFTER: Message = (DISPENSINGS, report("after", 120_000, "2024-01-30T10:00:00+01:00"))


class FailsAfterHandling(Exception):
    """The test's bug: raised after the real handler computed its effects."""


def failing(spec: TopicSpec, message_id: str) -> dict[TopicSpec, Handler]:
    """The real registry, whose handler of `spec` runs and then raises on `message_id`."""
    real = HANDLERS[spec]

    def handle(view: Any, d: Decoded, ctx: Any) -> Any:
        effects = real.handle(view, d, ctx)
        if d.message_id == message_id:
            raise FailsAfterHandling(f"after {effects!r:.40}")
        return effects

    return {**HANDLERS, spec: replace(real, handle=handle)}


def decoded(spec: TopicSpec, message: dict[str, Any], offset: int) -> Decoded:
    if spec is SUBSIDY_SCALES:
        key = message["effective_from"]
    elif spec is REGISTRATIONS:
        key = message["company"]["cvr"]
    else:
        key = message["person"]["key"]
    source = Source(NAMES(spec), 0, offset, key.encode(), orjson.dumps(message), 0)
    item = decode(source, spec)
    assert not isinstance(item, Rejected), item.reason
    return item


async def snapshot(register: Register) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows without the columns the clock fills, sorted."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    async with register.engine.connect() as conn:
        for table in tables.metadata.sorted_tables:
            if table.name in ("schema_migrations", "alembic_version", "outbox"):
                continue  # the outbox holds the outputs, which the tests compare as outputs
            if table is tables.register_minutes:
                continue  # keyed by the minute a batch ran in: the clock's
            columns = [c for c in table.columns if c.name not in VOLATILE]
            rows = (await conn.execute(select(*columns))).all()
            found[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return found


def without_clock(value: bytes) -> dict[str, Any]:
    body = orjson.loads(value)
    body.pop("at", None)
    return body


async def run(url: str, spec: TopicSpec, history: bool, fail: bool) -> tuple[Any, Any]:
    register = Register(make_engine(url))
    try:
        if history:
            await Pipeline(register, NAMES, CONFIG).run(
                [decoded(s, m, i) for i, (s, m) in enumerate(HISTORY)], [], {}
            )
        target_spec, target = FAILING[spec][1 if history else 0]
        target_id = target.get("message_id") or target["report_id"]
        handlers = failing(spec, target_id) if fail else HANDLERS
        pipeline = Pipeline(register, NAMES, CONFIG, handlers)
        await pipeline.start()
        after_spec, after = AFTER.get(spec, DEFAULT_AFTER)
        batch = [decoded(after_spec, after, 11)]
        if fail:
            batch.insert(0, decoded(target_spec, target, 10))
        result = await pipeline.run(batch, [], {(NAMES(DISPENSINGS), 0): 12})
        return await snapshot(register), result
    finally:
        await register.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def two_databases(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, pg_template: str
) -> AsyncIterator[tuple[str, str]]:
    if request.param == "sqlite":
        urls = []
        for _ in range(2):
            url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('atom')}/register.db"
            engine = make_engine(url)
            await upgrade(engine)
            await engine.dispose()
            urls.append(url)
        yield urls[0], urls[1]
        return
    admin = await _admin()
    names = [f"reghub_atom_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    for name in names:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield _url(names[0]), _url(names[1])
    for name in names:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest.mark.parametrize("history", [False, True], ids=["new-person", "with-history"])
@pytest.mark.parametrize("spec", list(FAILING), ids=lambda s: s.base)
async def test_a_failing_handler_leaves_the_register_as_without_its_message(
    two_databases: tuple[str, str], spec: TopicSpec, history: bool
) -> None:
    with_failure, without = two_databases
    failed, failed_result = await run(with_failure, spec, history, fail=True)
    clean, clean_result = await run(without, spec, history, fail=False)
    assert failed == clean
    dead = [o for o in failed_result.outputs if o.topic == NAMES(DEAD_LETTER)]
    assert [dict(o.headers)["reghub-reason"] for o in dead] == [b"internal_error"]
    decisions = [
        without_clock(o.value) for o in failed_result.outputs if o.topic == NAMES(DECISIONS)
    ]
    expected = [without_clock(o.value) for o in clean_result.outputs if o.topic == NAMES(DECISIONS)]
    assert decisions == expected and decisions, "the next message is decided as if alone"
    assert failed_result.counts.get("rejected") == 1


async def test_the_handled_message_would_have_changed_the_register(
    two_databases: tuple[str, str],
) -> None:
    """The failing messages above are not no-ops: run normally, each changes the register."""
    first, _ = two_databases
    register = Register(make_engine(first))
    try:
        before = await snapshot(register)
        pipeline = Pipeline(register, NAMES, CONFIG)
        await pipeline.start()
        for offset, (spec, (new, _history)) in enumerate(FAILING.items()):
            snap = await snapshot(register)
            result = await pipeline.run([decoded(new[0], new[1], offset)], [], {})
            assert result.counts.get("rejected") is None, (spec.base, result.counts)
            assert await snapshot(register) != snap, spec.base
        assert await snapshot(register) != before
    finally:
        await register.close()
