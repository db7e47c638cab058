"""The treatment-place register's read side and the demo's registrations, through the real broker and
worker: the clinics `reghub up --demo` registers become places the API lists with their history, and the
dashboard's data counts them by state and category."""

from __future__ import annotations

import httpx
import pytest

from reghub.demo_places import registrations
from reghub.settings import Settings
from sinks.register import Register
from streams.topics import CHANGES, REGISTRATIONS, TopicNames
from tests.kafka_helpers import as_json, produce, read_until, running_worker

pytestmark = [pytest.mark.broker, pytest.mark.database]


async def test_the_demo_clinics_are_registered_and_listed_by_the_api(
    settings: Settings, register: Register
) -> None:
    from api.app import create_api

    names = TopicNames(settings.topic_prefix)
    sent = registrations("t")
    await produce(
        settings.kafka_bootstrap, names(REGISTRATIONS), [(k, as_json(m)) for k, m in sent]
    )
    async with running_worker(settings, register):
        changes = await read_until(
            settings.kafka_bootstrap, names(CHANGES), lambda r: len(r) >= len(sent), timeout=60
        )
    assert not [c for c in changes if b'"rejected"' in c.value], [c.value for c in changes]
    api = create_api(settings.database_url)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://t") as c:
        monitor = (await c.get("/monitor")).json()
        first = sent[1][1]["sor_id"]  # the first clinic's unit
        place = await c.get(f"/v1/places/{first}")
        by_reference = await c.get(f"/v1/places/BST-{first}")
        missing = await c.get("/v1/places/nowhere")
    # six clinics, every third deregistered in September
    assert monitor["places"] == {
        "by_state": {"DEREGISTERED": 2, "REGISTERED": 4},
        "by_category": {"2": 6},
    }
    assert place.status_code == 200
    shown = place.json()
    assert shown["state"]["state"] == "REGISTERED"
    assert shown["state"]["reference_number"] == f"BST-{first}"
    assert [v["category"] for v in shown["versions"]] == [2]
    assert {p["authorisation_id"] for p in shown["practitioners"]} == {"0C4MN", "1D5NP"}
    assert by_reference.json() == shown
    assert missing.status_code == 404 and "no treatment place" in missing.text
