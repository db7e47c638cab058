"""Demo traffic for `reghub up --demo`: pharmacies selling to hundreds of persons through 2024.

A simulated clock walks through 2024 so that periods fill and bands are crossed; a few municipal
supplements and individual grants, a few returns, and now and then a malformed report, so the
dead-letter topic has something to show; and a few clinics registered in the treatment-place register
(`reghub.demo_places`).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import date, timedelta

import orjson
from aiokafka import AIOKafkaProducer

from reghub import synthetic
from reghub.demo_places import registrations
from reghub.kafka_options import kafka_client_options
from reghub.settings import Settings
from reghub.wiring import topic_names
from sinks.kafka_client import start_client
from streams.topics import DISPENSINGS, MUNICIPAL_GRANTS, REGISTRATIONS

DEMO_PERSON = synthetic.Person("4208999999", date(1960, 5, 5))
"""A person the demo always makes (a fictitious number, born 5 May 1960): its first report is theirs, so
the README's reads have someone to read. Sent again at every start, under a new report id."""


async def run_demo(
    settings: Settings, *, rate: int, persons: int, stop: asyncio.Event, stats: dict[str, int]
) -> None:
    """Produce about `rate` reports a second until `stop` is set."""
    names = topic_names(settings)
    rng = random.Random()
    run = uuid.uuid4().hex[:6]
    people = synthetic.persons(persons, rng)
    shops = synthetic.pharmacies()
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        linger_ms=20,
        enable_idempotence=settings.kafka_idempotence,
        **kafka_client_options(settings),
    )
    await start_client(producer, settings.kafka_bootstrap, settings.kafka_security_protocol)
    try:
        for key, message in registrations(run):
            await producer.send(names(REGISTRATIONS), orjson.dumps(message), key=key)
        clock = synthetic.DEMO_START
        for i, person in enumerate(p for p in people if 2024 - p.birth_date.year >= 67):
            if i % 4:
                continue
            decision = {
                "message_id": f"demo-{run}-hs{i}",
                "sender": {"municipality_code": rng.choice([101, 461, 751, 851]), "user": "demo"},
                "decided_at": clock.isoformat(),
                "kind": "health_supplement",
                "action": "grant",
                "decision_id": f"demo-{run}-hs{i}",
                "supplement_percentage": str(rng.choice([50, 75, 100])),
                "valid_from": "2024-01-01",
                "person": {"key": person.key, "birth_date": person.birth_date.isoformat()},
            }
            await producer.send(
                names(MUNICIPAL_GRANTS), orjson.dumps(decision), key=person.key.encode()
            )
        sent: list[tuple[str, synthetic.Person]] = []
        n = 0
        began = time.monotonic()
        while not stop.is_set():
            person = DEMO_PERSON if n == 0 else rng.choice(people)
            clock += timedelta(seconds=rng.randint(20, 200))
            report_id = f"demo-{run}-r{n}"  # never DDMMYY-SSSS: that would be refused
            if n and rng.random() < 0.002:
                value = b'{"report_id": "' + report_id.encode() + b'", "lines": "not a list"}'
            elif sent and rng.random() < 0.01:
                original_id, person = rng.choice(sent)
                message = synthetic.report(report_id, person, rng.choice(shops), clock, rng)
                message.update(
                    kind="return",
                    return_of=original_id,
                    lines=[{"drug_id": "000001", "reimbursement_price": -1, "actual_price": -1}],
                )
                value = orjson.dumps(message)
            else:
                message = synthetic.report(report_id, person, rng.choice(shops), clock, rng)
                value = orjson.dumps(message)
                sent.append((report_id, person))
            await producer.send(
                names(DISPENSINGS),
                value,
                key=person.key.encode(),
                timestamp_ms=int(clock.timestamp() * 1000) + 1_500,
            )
            n += 1
            stats["produced"] = n
            ahead = n / rate - (time.monotonic() - began)
            if ahead > 0:
                await asyncio.sleep(ahead)
    finally:
        await asyncio.wait_for(producer.stop(), 10)
