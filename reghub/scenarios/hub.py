"""The hub a scenario runs against: the real broker, worker and register (`pipeline`), or the same
decode, pipeline and register in this process (`in_process`); and the router that hands each output
(decision, change record, dead letter) to whoever waits for its message id.

The broker is the embedded Tansu unless REGHUB_KAFKA_BOOTSTRAP names one; the register is a fresh
SQLite file unless REGHUB_DATABASE_URL names one. Only this module of the runner reads the register.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import tempfile
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import select

from reghub import wiring
from reghub.broker import EmbeddedBroker, create_topics
from reghub.scenarios.results import Outcome
from reghub.settings import Settings
from reghub.snapshot import import_person
from rules.money import ore_to_kroner
from schemas.snapshot import SnapshotPerson
from sinks import tables
from sinks.migrations import upgrade
from sinks.register import Register, make_engine
from streams.decode import Decoded, Source, decode
from streams.pipeline import Pipeline
from streams.topics import CHANGES, DEAD_LETTER, DECISIONS, INPUTS, TopicNames, TopicSpec

WAIT_SECONDS = 60.0


def fresh_cpr(birth: date, rng: random.Random, taken: set[str]) -> str:
    """A CPR-shaped key for a scenario person, born on `birth`, not used before in this run."""
    yy = birth.year % 100
    if 1900 <= birth.year <= 1999:
        digits = "0123"
    elif 2000 <= birth.year <= 2036:
        digits = "49" if yy <= 36 else "5678"
    else:
        digits = "5678"
    while True:
        key = f"{birth:%d%m%y}{rng.choice(digits)}{rng.randint(0, 999):03d}"
        if key not in taken:
            taken.add(key)
            return key


@dataclass
class Outputs:
    """Routes the hub's outputs to whoever waits for a message id: decisions, changes, dead letters."""

    waiters: dict[str, asyncio.Future[Outcome]] = field(default_factory=dict)

    def expect(self, message_id: str, kind: str) -> asyncio.Future[Outcome]:
        """A future for the `kind` ("decision" or "change") of output, or the message's rejection."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self.waiters[f"{kind}:{message_id}"] = future
        return future

    def deliver(self, message_id: str, kind: str, body: dict[str, Any]) -> None:
        """Resolve the waiter for `message_id`'s `kind`; a rejection resolves either kind."""
        wanted = ("decision", "change") if kind == "rejected" else (kind,)
        for want in wanted:
            future = self.waiters.pop(f"{want}:{message_id}", None)
            if future is not None and not future.done():
                future.set_result((kind, body))

    def route(
        self, names: TopicNames, topic: str, value: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> None:
        """Hand one output message to whoever waits for its message id."""
        if topic == names(DEAD_LETTER):
            found = {k: v.decode() for k, v in headers}
            self.deliver(found.get("reghub-message-id", ""), "rejected", found)
            return
        body = orjson.loads(value)
        if topic == names(DECISIONS):
            self.deliver(body.get("report_id") or body["message_id"], "decision", body)
        elif topic == names(CHANGES) and body["outcome"] != "rejected":
            self.deliver(body["message_id"], "change", body)

    async def follow(self, bootstrap: str, names: TopicNames) -> None:
        """Read the output topics from the start and route every message, until cancelled."""
        consumer = AIOKafkaConsumer(
            names(DECISIONS),
            names(CHANGES),
            names(DEAD_LETTER),
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            while True:
                for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                    for r in records:
                        self.route(names, tp.topic, r.value, r.headers)
        finally:
            await consumer.stop()


@dataclass
class Hub:
    """What a scenario needs of the running pipeline."""

    settings: Settings
    names: TopicNames
    producer: AIOKafkaProducer | None
    outputs: Outputs
    register: Register
    rng: random.Random = field(default_factory=random.Random)
    taken: set[str] = field(default_factory=set)
    notes: set[str] = field(default_factory=set)

    async def send(
        self, spec: TopicSpec, key: str, message: dict[str, Any], message_id: str, wait_for: str
    ) -> Outcome:
        """Send one message and wait for the hub's decision or change record about it."""
        future = self.outputs.expect(message_id, wait_for)
        assert self.producer is not None
        await self.producer.send_and_wait(self.names(spec), orjson.dumps(message), key=key.encode())
        return await asyncio.wait_for(future, WAIT_SECONDS)

    async def new_person(self, birth: date) -> str:
        """A fresh key for a person born on `birth`, unknown to the register and to this run."""
        async with self.register.engine.connect() as conn:
            while True:
                key = fresh_cpr(birth, self.rng, self.taken)
                q = select(tables.persons.c.person_key).where(tables.persons.c.person_key == key)
                if (await conn.execute(q)).first() is None:
                    return key

    async def import_period(self, snapshot: SnapshotPerson, source: str) -> None:
        """Put a person's current period into the register as a snapshot import would."""
        async with self.register.engine.begin() as conn:
            await import_person(conn, snapshot, source)

    async def register_view(self, key: str) -> dict[str, Any]:
        """The current period of the person `key` names (any of their numbers), as the register
        has it; nothing when they have none."""
        t = tables
        async with self.register.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(t.persons.c.person_key, t.persons.c.alias_of).where(
                        t.persons.c.person_key == key
                    )
                )
            ).first()
            if row is None:
                return {}
            internal = row.alias_of or row.person_key
            period = (
                await conn.execute(
                    select(t.subsidy_periods)
                    .join(
                        t.persons,
                        (t.persons.c.person_key == t.subsidy_periods.c.person_key)
                        & (t.persons.c.current_period_start == t.subsidy_periods.c.period_start),
                    )
                    .where(t.persons.c.person_key == internal)
                )
            ).first()
        if period is None:
            return {}
        return {
            "saldo_after": ore_to_kroner(period.saldo),
            "period_start": period.period_start.isoformat(),
            "period_end": period.period_end.isoformat(),
            "previous_period_end": (
                period.previous_period_end.isoformat() if period.previous_period_end else None
            ),
            "under18": period.under18,
        }


@dataclass
class InProcessHub(Hub):
    """The same decode, pipeline and register, without the broker: fast, for working on the rules.

    Each message is decoded and run through `streams.pipeline.Pipeline` in its own batch, one at a
    time; its outputs are routed straight back, and a parked report a new scale releases is replayed
    into the pipeline as the worker would. The broker mode is the one that counts.
    """

    pipeline: Pipeline | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _offset: int = 0

    async def send(
        self, spec: TopicSpec, key: str, message: dict[str, Any], message_id: str, wait_for: str
    ) -> Outcome:
        future = self.outputs.expect(message_id, wait_for)
        async with self._lock:
            if self.pipeline is None:
                self.pipeline = Pipeline(
                    self.register, self.names, wiring.apply_config(self.settings)
                )
                await self.pipeline.start()
            await self._run(spec, key.encode(), orjson.dumps(message))
        return await asyncio.wait_for(future, WAIT_SECONDS)

    async def _run(self, spec: TopicSpec, key: bytes | None, value: bytes) -> None:
        assert self.pipeline is not None
        self._offset += 1
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        source = Source(self.names(spec), 0, self._offset, key, value, now_ms)
        item = decode(source, spec)
        if isinstance(item, Decoded):
            result = await self.pipeline.run([item], [], {})
        else:
            result = await self.pipeline.run([], [item], {})
        for out in result.outputs:
            replayed = next((s for s in INPUTS if self.names(s) == out.topic), None)
            if replayed is not None:
                await self._run(replayed, out.key, out.value)
            else:
                self.outputs.route(self.names, out.topic, out.value, out.headers)


@contextlib.asynccontextmanager
async def in_process() -> AsyncIterator[Hub]:
    """A register (a fresh SQLite file unless REGHUB_DATABASE_URL names one) and no broker."""
    folder = tempfile.TemporaryDirectory(prefix="reghub-scenarios-")
    url = os.environ.get("REGHUB_DATABASE_URL") or f"sqlite+aiosqlite:///{folder.name}/register.db"
    settings = Settings(
        database_url=url,
        consumer_group="scenarios-in-process",
        pseudonym_key=uuid.uuid4().hex,
        report_grace_seconds=10**10,
    )
    engine = make_engine(settings.database_url)
    await upgrade(engine)
    register = Register(engine)
    try:
        yield InProcessHub(settings, TopicNames(""), None, Outputs(), register)
    finally:
        await register.close()
        folder.cleanup()


@contextlib.asynccontextmanager
async def pipeline() -> AsyncIterator[Hub]:
    """Broker (embedded unless configured), a register, the real worker, and the output router."""
    broker: EmbeddedBroker | None = None
    bootstrap = os.environ.get("REGHUB_KAFKA_BOOTSTRAP")
    if bootstrap is None:
        broker = EmbeddedBroker()
        broker.start()
        bootstrap = broker.bootstrap
    folder = tempfile.TemporaryDirectory(prefix="reghub-scenarios-")
    url = os.environ.get("REGHUB_DATABASE_URL") or f"sqlite+aiosqlite:///{folder.name}/register.db"
    prefix = f"scn{uuid.uuid4().hex[:8]}."
    settings = Settings(
        kafka_bootstrap=bootstrap,
        kafka_idempotence=False,
        database_url=url,
        topic_prefix=prefix,
        consumer_group=f"{prefix}register",
        topic_partitions=4,
        kafka_session_timeout_ms=6000,
        pseudonym_key=os.environ.get("REGHUB_PSEUDONYM_KEY") or uuid.uuid4().hex,
        report_grace_seconds=10**10,
    )
    names = TopicNames(prefix)
    engine = make_engine(settings.database_url)
    await upgrade(engine)
    register = Register(engine)
    await create_topics(bootstrap, names, settings.topic_partitions)
    processor = wiring.processor(settings, register)
    await processor.start()
    worker = asyncio.create_task(processor.run())
    outputs = Outputs()
    router = asyncio.create_task(outputs.follow(bootstrap, names))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        yield Hub(settings, names, producer, outputs, register)
    finally:
        await producer.stop()
        router.cancel()
        await processor.stop()
        await asyncio.gather(worker, router, return_exceptions=True)
        await processor.close()
        await register.close()
        if broker is not None:
            broker.stop()
        folder.cleanup()
