"""The README's "Messages you can copy" are valid and do what it says (issue 31.6).

Every block under an `<!-- example TOPIC expect=OUTCOME [field=value …] -->` comment is parsed against
its topic's schema, produced under the key its topic names to the real broker, in the README's order,
one after another, and the worker's answer is read back: a dispensing report's decision (its `status`
and the amounts the comment names), any other message's outcome on the change feed. A dead letter fails
the test with its reason. The quote goes to the read API, on the register the examples filled.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from api.tokens import TokenKeys, mint
from reghub.settings import Settings
from rules.deadlines import COPENHAGEN
from sinks.register import Register
from streams.decode import parse, record_key
from streams.topics import (
    ALL,
    CHANGES,
    DEAD_LETTER,
    DECISIONS,
    DISPENSINGS,
    INPUTS,
    TopicNames,
    TopicSpec,
)
from tests.kafka_helpers import produce, running_worker

pytestmark = [pytest.mark.broker, pytest.mark.database]

README = Path(__file__).resolve().parent.parent / "README.md"
EXAMPLE = re.compile(
    r"<!-- example (\S+) expect=(\S+)((?: \S+=\S+)*) -->\n```json\n(.*?)\n```", re.S
)
SECRET = b"readme-examples-secret-0123456789"


def examples() -> list[tuple[str, str, dict[str, int], bytes]]:
    """(topic, expected outcome, expected amounts, message) of each example, in the README's order."""
    found = []
    for topic, outcome, more, body in EXAMPLE.findall(README.read_text()):
        amounts = {k: int(v) for k, v in (pair.split("=") for pair in more.split())}
        found.append((topic, outcome, amounts, orjson.dumps(orjson.loads(body))))
    return found


def test_the_readme_has_an_example_of_every_input_topic_and_a_quote() -> None:
    topics = [topic for topic, *_ in examples()]
    assert set(topics) == {s.base for s in INPUTS} | {"quote"}
    dispensings = [o for t, o, _, m in examples() if t == DISPENSINGS.base]
    assert len(dispensings) == 2  # a sale and its return
    municipal = [orjson.loads(m)["action"] for t, _, _, m in examples() if "municipal-g" in t]
    assert municipal == ["grant", "change", "end"]


class Answers:
    """The decision, change-feed and dead-letter topics, read from their beginning as they fill."""

    def __init__(self, bootstrap: str, names: TopicNames) -> None:
        self.names = names
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self.records: list[Any] = []

    async def start(self) -> None:
        await self.consumer.start()
        await self.consumer.topics()
        parts = [
            TopicPartition(self.names(s), p)
            for s in (DECISIONS, CHANGES, DEAD_LETTER)
            for p in sorted(self.consumer.partitions_for_topic(self.names(s)) or ())
        ]
        self.consumer.assign(parts)
        await self.consumer.seek_to_beginning(*parts)

    async def answer(self, spec: TopicSpec, message: dict[str, Any]) -> tuple[str, Any]:
        """("decision", body), ("change", body) or ("dead letter", reason) for `message`."""
        source = self.names(spec)
        wanted = message.get("report_id") if spec is DISPENSINGS else message["message_id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for r in self.records:
                headers = {k: v.decode() for k, v in r.headers}
                if r.topic == self.names(DEAD_LETTER):
                    if headers.get("reghub-message-id") == wanted:
                        return "dead letter", headers["reghub-reason"]
                    continue
                body = orjson.loads(r.value)
                if r.topic == self.names(DECISIONS) and body.get("report_id") == wanted:
                    return "decision", body
                if (
                    r.topic == self.names(CHANGES)
                    and spec is not DISPENSINGS
                    and (body["source_topic"], body["message_id"]) == (source, wanted)
                ):
                    return "change", body
            batch = await self.consumer.getmany(timeout_ms=200)
            for records in batch.values():
                self.records.extend(records)
        raise AssertionError(f"no answer to {spec.base} {wanted}")


async def test_the_readme_examples_through_the_real_hub(
    settings: Settings, register: Register
) -> None:
    from api.app import create_api

    names = TopicNames(settings.topic_prefix)
    specs = {s.base: s for s in ALL}
    answers = Answers(settings.kafka_bootstrap, names)
    quotes = []
    async with running_worker(settings, register):
        await answers.start()
        try:
            for topic, outcome, amounts, value in examples():
                if topic == "quote":
                    quotes.append((outcome, amounts, value))
                    continue
                spec = specs[topic]
                message = parse(value, spec)  # the schema accepts it as it stands
                key = record_key(message, spec).encode()
                await produce(settings.kafka_bootstrap, names(spec), [(key, value)])
                kind, got = await answers.answer(spec, orjson.loads(value))
                assert kind != "dead letter", f"{topic}: dead-lettered {got}"
                if kind == "decision":
                    assert got["status"] == outcome, (topic, got)
                    assert {k: got[k] for k in amounts} == amounts, (topic, got)
                else:
                    assert (got["outcome"], amounts) == (outcome, {}), (topic, got)
        finally:
            await answers.consumer.stop()
    assert len(quotes) == 1
    (expected, amounts, body) = quotes[0]
    keys = TokenKeys(audience="reghub-api", issuer="reghub-dev", secret=SECRET)
    at = datetime(2024, 6, 4, 10, 0, tzinfo=COPENHAGEN)
    api = create_api(settings.database_url, tokens=keys, clock=lambda: at)
    bearer = mint(SECRET, "pharmacy", "till-1", audience=keys.audience, issuer=keys.issuer,
                  pharmacy_number="12300")  # fmt: skip
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://t") as c:
        got = await c.post(
            "/v1/quotes",
            content=body,
            headers={"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"},
        )
    assert str(got.status_code) == expected, got.text
    assert {k: got.json()[k] for k in amounts} == amounts, got.json()
