"""The read API on a real register: health, aggregates without persons, the dashboard page."""

from __future__ import annotations

import httpx
import pytest

from reghub.settings import Settings
from streams.topics import DECISIONS, DISPENSINGS, TopicNames
from tests.kafka_helpers import as_json, produce, read_until, running_worker
from tests.messages import PERSON, report

pytestmark = [pytest.mark.broker, pytest.mark.database]


async def test_stats_count_the_register_and_name_no_person(settings: Settings, register) -> None:
    from api.app import create_api

    names = TopicNames(settings.topic_prefix)
    sales = [report("a1", 400_000), report("a2", 10_000, granted_subsidy=9_000)]
    await produce(
        settings.kafka_bootstrap, names(DISPENSINGS), [(PERSON.encode(), as_json(s)) for s in sales]
    )
    async with running_worker(settings, register):
        await read_until(settings.kafka_bootstrap, names(DECISIONS), lambda r: len(r) >= 2)
    api = create_api(settings.database_url)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api), base_url="http://t"
    ) as client:
        health = await client.get("/health")
        stats = await client.get("/stats")
        page = await client.get("/dashboard")
    assert health.json() == {"status": "ok"}
    assert stats.json() == {
        "purchases": 2,
        "persons": 1,
        "subsidy_granted_kr": "2104.75",
        "reports_deviating_from_the_register": 1,
        "parked_reports": 0,
        "open_balancing_amounts": 1,
    }
    assert PERSON not in stats.text
    assert page.status_code == 200 and "/monitor" in page.text
