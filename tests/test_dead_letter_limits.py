"""A refused message near the broker's record limit never stops the worker (issue: bounded under
hostile values), through the real broker, worker and register.

The producer's `max_request_size` is set low (20 kB) to stand for Apache Kafka's 1 MB limit. A refused
message just under it would give a dead letter over the limit; capped at 8 kB it goes out, with the
original's length and SHA-256 in its headers. Without the cap the dead letter is refused for good: that
is an incident of its own (an `output_undeliverable` alert), and the next report is still decided.
"""

from __future__ import annotations

import hashlib

import orjson
import pytest

from reghub.settings import Settings
from sinks.register import Register
from streams.topics import ALERTS, DEAD_LETTER, DECISIONS, DISPENSINGS, TopicNames
from tests.kafka_helpers import as_json, produce, read_until, running_worker
from tests.messages import PERSON, report

pytestmark = [pytest.mark.broker, pytest.mark.database]

LIMIT = 20_000


def oversized() -> bytes:
    """A dispensing report just under the limit (the partner's producer sends it) that the schema
    refuses (a drug id far too long): its dead letter, the same bytes and the headers, is over it."""
    bad = report("big-1", 10_000, "2024-03-01T10:00:00+01:00")
    bad["lines"][0]["drug_id"] = ""
    bad["lines"][0]["drug_id"] = "X" * (LIMIT - 80 - len(as_json(bad)))
    return as_json(bad)


async def run(settings: Settings, register: Register) -> tuple[list, list, list]:
    names = TopicNames(settings.topic_prefix)
    good = report("after-1", 50_000, "2024-03-02T10:00:00+01:00")
    key = PERSON.encode()
    await produce(settings.kafka_bootstrap, names(DISPENSINGS), [(key, oversized())])
    await produce(settings.kafka_bootstrap, names(DISPENSINGS), [(key, as_json(good))])
    async with running_worker(settings, register):
        decided = await read_until(
            settings.kafka_bootstrap, names(DECISIONS), lambda r: len(r) >= 1
        )
        dead = await read_until(
            settings.kafka_bootstrap, names(DEAD_LETTER), lambda r: len(r) >= 1, timeout=5
        )
        alerts = await read_until(
            settings.kafka_bootstrap,
            names(ALERTS),
            lambda r: any(b"output_undeliverable" in x.value for x in r),
            timeout=5,
        )
    return decided, dead, alerts


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_dead_letter_is_capped_below_the_record_limit(
    settings: Settings, register: Register
) -> None:
    capped = settings.model_copy(
        update={"kafka_max_request_size": LIMIT, "dead_letter_max_bytes": 8_000}
    )
    decided, dead, alerts = await run(capped, register)
    assert [orjson.loads(r.value)["report_id"] for r in decided] == ["after-1"]
    [letter] = dead
    headers = dict(letter.headers)
    original = oversized()
    assert len(letter.value) == 8_000 and original.startswith(letter.value)
    assert headers["reghub-original-bytes"] == str(len(original)).encode()
    assert headers["reghub-original-sha256"] == hashlib.sha256(original).hexdigest().encode()
    assert headers["reghub-reason"].startswith(b"schema.")
    assert alerts == []


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_dead_letter_the_broker_refuses_for_good_is_an_incident_not_a_stop(
    settings: Settings, register: Register
) -> None:
    uncapped = settings.model_copy(
        update={"kafka_max_request_size": LIMIT, "dead_letter_max_bytes": 100_000}
    )
    decided, dead, alerts = await run(uncapped, register)
    assert [orjson.loads(r.value)["report_id"] for r in decided] == ["after-1"]
    assert dead == []
    [alert] = [orjson.loads(a.value) for a in alerts if b"output_undeliverable" in a.value]
    assert alert["source_topic"] == TopicNames(settings.topic_prefix)(DEAD_LETTER)
    assert "MessageSizeTooLargeError" in alert["detail"] and PERSON not in alert["detail"]
