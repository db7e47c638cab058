"""The stage the throughput modes share: N synthetic reports produced to a fresh broker's
dispensings topic and read once bare (the ceiling), then the closing summary of a run."""

from __future__ import annotations

import argparse
import contextlib
import random
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta

from bench.harness.broker import ceiling, produce
from bench.harness.timing import Result
from reghub import synthetic
from reghub.broker import EmbeddedBroker, create_topics
from streams.topics import DISPENSINGS, TopicNames


@dataclass(frozen=True)
class Stage:
    """A broker with N reports on its dispensings topic, and what producing and reading them took."""

    broker: EmbeddedBroker
    prefix: str
    topic: str
    produce_rate: float
    top: Result

    @property
    def broker_pid(self) -> int | None:
        return self.broker.process.pid if self.broker.process else None


@contextlib.asynccontextmanager
async def stage(args: argparse.Namespace) -> AsyncIterator[Stage]:
    """Generate `args.n` reports, start an embedded broker with the hub topics under a unique prefix,
    produce the reports, read them bare (the ceiling); print both. The broker stops on exit."""
    n: int = args.n
    run = uuid.uuid4().hex[:8]
    rng = random.Random(args.seed)
    people = synthetic.persons(args.persons, rng)
    reports = synthetic.encoded_reports(
        n,
        people,
        synthetic.pharmacies(),
        synthetic.DEMO_START,
        timedelta(days=args.days),
        seed=args.seed,
        prefix=f"b{run}-",
    )
    size = sum(len(v) for _, v, _ in reports) / max(n, 1)
    print(
        f"{n} reports of {size:.0f} bytes on average, {args.persons} persons, "
        f"{args.partitions} partitions, batches of up to {args.max_records}"
    )

    broker = EmbeddedBroker()
    broker.start()
    try:
        prefix = f"bench{run}."
        names = TopicNames(prefix)
        await create_topics(broker.bootstrap, names, args.partitions)
        topic = names(DISPENSINGS)

        seconds = await produce(broker.bootstrap, topic, reports)
        produce_rate = n / seconds
        print(f"produce:    {produce_rate:,.0f} reports/s ({seconds:.2f} s)")
        del reports, people

        top = await ceiling(broker.bootstrap, topic, n, args.max_records)
        print(
            f"ceiling:    {top.rate:,.0f} reports/s ({top.records} in {top.seconds:.2f} s, "
            f"{top.batches} batches; group join {top.join_seconds:.1f} s, excluded)"
        )
        yield Stage(broker, prefix, topic, produce_rate, top)
    finally:
        broker.stop()


def finish(
    produce_rate: float,
    top: Result,
    e2e: Result,
    dialect: str,
    mean: float,
    workers: Sequence[tuple[int, int]] | None = None,
) -> None:
    """The closing summary; `workers`: each worker process's (batches, messages) of a `--workers`
    run."""
    print()
    print(f"produce:      {produce_rate:,.0f} reports/s")
    print(f"ceiling:      {top.rate:,.0f} reports/s (aiokafka getmany + orjson)")
    if workers is None:
        print(
            f"end to end:   {e2e.rate:,.0f} reports/s into {dialect} "
            f"({e2e.batches} batches, mean {mean:,.0f} records)"
        )
    else:
        print(
            f"end to end:   {e2e.rate:,.0f} reports/s into {dialect} with {len(workers)} workers "
            f"({e2e.batches} batches, mean {mean:,.0f} records)"
        )
        for i, (batches, messages) in enumerate(workers):
            print(f"  worker {i}:   {batches} batches, {messages} messages")
    print(f"ratio:        {e2e.rate / top.rate if top.rate else 0:.2f} of the ceiling")
